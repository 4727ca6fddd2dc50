//! The data directory's privacy (contract §7.6): `data_dir` holds the journal (card data,
//! masked), the paired tills' token hashes and other secrets, so on Unix it is 0700 and its
//! files 0600 whatever the umask. Wider modes found at start are tightened with one log
//! line; a command run by another user than the directory's owner refuses to write there
//! (files it created would belong to the wrong user) and says which user to run it as.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;

/// Mode of `data_dir`.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in `data_dir`.
pub const FILE_MODE: u32 = 0o600;

/// `options` creating a file readable and writable by its owner only, whatever the umask.
pub fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, FILE_MODE);
    options
}

/// Creates `dir` if needed (0700 from the start), then tightens it to 0700 and its files to
/// 0600, with one log line when anything was wider.
pub fn secure(dir: &Path) -> io::Result<()> {
    create(dir)?;
    let tightened = tighten_all(dir)?;
    if !tightened.is_empty() {
        tracing::warn!(
            dir = %dir.display(),
            "data_dir was readable by others: modes tightened to 0700/0600 for {}",
            tightened.join(", ")
        );
    }
    Ok(())
}

/// Creates `dir` and its missing parents, private to the owner whatever the umask.
fn create(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Tightens `dir` and its files; the names of those that were wider.
#[cfg(unix)]
fn tighten_all(dir: &Path) -> io::Result<Vec<String>> {
    let mut tightened = Vec::new();
    if tighten(dir, DIR_MODE)? {
        tightened.push(dir.display().to_string());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && tighten(&entry.path(), FILE_MODE)? {
            tightened.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(tightened)
}

#[cfg(not(unix))]
fn tighten_all(_dir: &Path) -> io::Result<Vec<String>> {
    Ok(Vec::new())
}

/// Removes group and other bits beyond `mode`; whether anything changed.
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if current & !mode == 0 {
        return Ok(false);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & mode))?;
    Ok(true)
}

/// For a command about to write into `dir` (`pair`, `resolve`, `till revoke`, `receipt-key`
/// creating the key): an error naming the user to run `command` as, when the current user
/// does not own `dir`. A missing `dir` is fine (the command creates it, owned by whoever
/// runs it).
pub fn check_owner(dir: &Path, command: &str) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata(dir) else {
            return Ok(());
        };
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            let owner = user_name(meta.uid()).unwrap_or_else(|| format!("#{}", meta.uid()));
            return Err(format!(
                "{} belongs to user {owner}: files written now would belong to another user \
                 and the agent could not read them; run as that user: \
                 sudo -u {owner} caisse-ap-relay {command}",
                dir.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (dir, command);
    Ok(())
}

/// The login name of `uid` from `/etc/passwd`, if listed there.
#[cfg(unix)]
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id.parse() == Ok(uid)).then(|| name.to_owned())
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn wide_modes_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let journal = data.join("journal.log");
        std::fs::write(&journal, "x").unwrap();
        std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut tightened = tighten_all(&data).unwrap();
        tightened.sort();
        assert_eq!(
            tightened,
            [data.display().to_string(), "journal.log".into()]
        );
        assert_eq!((mode(&data), mode(&journal)), (0o700, 0o600));
    }

    #[test]
    fn a_new_data_dir_is_private_from_the_start_so_nothing_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        create(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(tighten_all(&data).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_owner_may_write() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check_owner(dir.path(), "pair --till t"), Ok(()));
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }
}
