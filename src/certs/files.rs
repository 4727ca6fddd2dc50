//! Reading and writing the PEM files of `tls.dir` (or the operator's own pair): typed errors
//! naming the file, atomic replacement, private keys readable by the owner only.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::CertError;

/// The local CA certificate.
pub(crate) const CA_CERT: &str = "ca.pem";
/// The local CA private key.
pub(crate) const CA_KEY: &str = "ca.key";
/// The leaf certificate the agent serves.
pub(crate) const LEAF_CERT: &str = "agent.pem";
/// The leaf private key.
pub(crate) const LEAF_KEY: &str = "agent.key";

/// Who may read a written file.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Access {
    /// Certificates: world-readable.
    Public,
    /// Private keys: owner only (0600).
    Secret,
}

/// Whether `path` exists; an unreadable parent is an error, not "absent".
pub(crate) fn exists(path: &Path) -> Result<bool, CertError> {
    path.try_exists().map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Creates `dir` (owner-only on Unix) if it does not exist.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), CertError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| CertError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

/// Reads a whole file.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    fs::read(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses every PEM certificate of `bytes` (read from `path`), leaf first; at least one, each
/// a well-formed X.509 certificate.
pub(crate) fn parse_certs(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let chain = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| CertError::invalid(path, format!("not a PEM certificate: {err}")))?;
    if chain.is_empty() {
        return Err(CertError::invalid(path, "not a PEM certificate"));
    }
    for der in &chain {
        x509_parser::parse_x509_certificate(der).map_err(|err| {
            CertError::invalid(path, format!("not a valid X.509 certificate: {err}"))
        })?;
    }
    Ok(chain)
}

/// Reads and parses the certificates of `path`.
pub(crate) fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    parse_certs(path, &read(path)?)
}

/// Reads the PEM private key (PKCS#8, PKCS#1 or SEC1) of `path`.
pub(crate) fn key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    PrivateKeyDer::from_pem_slice(&read(path)?)
        .map_err(|_| CertError::invalid(path, "not a PEM private key"))
}

/// Replaces `path` with `contents` atomically: a crash leaves the old file or the new one,
/// never half of either.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], access: Access) -> Result<(), CertError> {
    let temp = temp_path(path);
    let error = |source| CertError::Write {
        path: path.to_path_buf(),
        source,
    };
    let result = write_new(&temp, contents, access).and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        // Best effort: the temporary file is ours and useless after a failure.
        let _ = fs::remove_file(&temp);
    }
    result.map_err(error)?;
    sync_parent(path).map_err(error)
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

fn write_new(path: &Path, contents: &[u8], access: Access) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(
        &mut options,
        match access {
            Access::Public => 0o644,
            Access::Secret => 0o600,
        },
    );
    #[cfg(not(unix))]
    let _ = access;
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Makes the rename itself durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.key");
        write_atomic(&path, b"one", Access::Secret).unwrap();
        write_atomic(&path, b"two", Access::Secret).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.key");
        write_atomic(&path, b"k", Access::Secret).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn garbage_is_not_a_certificate_and_names_the_file() {
        let path = Path::new("certs/agent.pem");
        let err = parse_certs(path, b"hello").unwrap_err();
        assert_eq!(err.to_string(), "certs/agent.pem: not a PEM certificate");
    }

    #[test]
    fn pem_wrapped_garbage_is_not_x509() {
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = parse_certs(Path::new("c.pem"), pem).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("c.pem: not a valid X.509 certificate"));
    }
}
