//! The receipt key file: `data_dir/receipt.key`, an Ed25519 private key in PKCS#8 PEM, mode
//! 0600, created once and never replaced; and its public JWK with the RFC 7638 `kid`.

use std::io::{self, Write};
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::digest::{digest, SHA256};

/// The key's file name in `data_dir`.
pub const FILE_NAME: &str = "receipt.key";

/// Why the receipt key cannot be used; one line naming the file. The agent exits 2.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file exists but cannot be read: fix its owner or mode; never delete it, backends
    /// pin its public key.
    #[error("{file}: cannot read the receipt key: {source}; fix its owner or mode (backends pin this key: do not delete it)")]
    Read {
        /// The key file.
        file: String,
        /// Why.
        source: io::Error,
    },
    /// The file is not an Ed25519 PKCS#8 PEM key: restore it from a backup.
    #[error("{file}: not an Ed25519 private key in PKCS#8 PEM; restore it from a backup (backends pin this key: do not replace it)")]
    Corrupt {
        /// The key file.
        file: String,
    },
    /// The file could not be created: fix `data_dir`.
    #[error("{file}: cannot create the receipt key: {source}")]
    Create {
        /// The key file.
        file: String,
        /// Why.
        source: io::Error,
    },
}

/// The loaded key.
pub struct Key {
    /// The private key, PKCS#8 DER (what the signer takes).
    pub pkcs8: Vec<u8>,
    /// RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// The public JWK, one line of JSON.
    pub jwk: String,
}

/// Reads the key in `data_dir`, creating it first when there is none.
pub fn load_or_create(data_dir: &Path) -> Result<Key, KeyError> {
    let path = data_dir.join(FILE_NAME);
    let file = path.display().to_string();
    let pem = match std::fs::read_to_string(&path) {
        Ok(pem) => pem,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            create(data_dir, &path).map_err(|source| KeyError::Create {
                file: file.clone(),
                source,
            })?
        }
        Err(err) if err.kind() == io::ErrorKind::InvalidData => {
            return Err(KeyError::Corrupt { file })
        }
        Err(source) => return Err(KeyError::Read { file, source }),
    };
    let pair =
        rcgen::KeyPair::from_pem(&pem).map_err(|_| KeyError::Corrupt { file: file.clone() })?;
    if pair.algorithm() != &rcgen::PKCS_ED25519 {
        return Err(KeyError::Corrupt { file });
    }
    Ok(Key::of(&pair))
}

impl Key {
    fn of(pair: &rcgen::KeyPair) -> Key {
        let x = URL_SAFE_NO_PAD.encode(pair.public_key_raw());
        let kid = thumbprint(&x);
        let jwk = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"{kid}"}}"#);
        Key {
            pkcs8: pair.serialize_der(),
            kid,
            jwk,
        }
    }
}

/// The RFC 7638 thumbprint of the Ed25519 public key `x` (base64url): SHA-256 of the
/// required members, sorted, without whitespace (`x` is base64url: nothing to escape).
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()))
}

/// Writes a new key next to `path` and links it into place, so a crash never leaves a
/// half-written key and an existing key is never replaced. Returns its PEM.
fn create(data_dir: &Path, path: &Path) -> io::Result<String> {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(io::Error::other)?;
    let pem = pair.serialize_pem();
    std::fs::create_dir_all(data_dir)?;
    let staging = data_dir.join(format!("{FILE_NAME}.new"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&staging)?;
    file.write_all(pem.as_bytes())?;
    file.sync_all()?;
    // `hard_link` fails when the key appeared meanwhile: that key wins, never ours.
    let linked = std::fs::hard_link(&staging, path);
    std::fs::remove_file(&staging)?;
    match linked {
        Ok(()) => {
            tracing::info!(file = %path.display(), "receipt key created; backends pin its public key (caisse-ap-relay receipt-key)");
            Ok(pem)
        }
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => std::fs::read_to_string(path),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_private_and_its_kid_is_the_rfc7638_thumbprint() {
        let dir = tempfile::tempdir().unwrap();
        let key = load_or_create(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let jwk: serde_json::Value = serde_json::from_str(&key.jwk).unwrap();
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["kid"], key.kid.as_str());
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert!(!dir.path().join(format!("{FILE_NAME}.new")).exists());
    }

    #[test]
    fn the_thumbprint_matches_rfc8037_appendix_a3() {
        // RFC 8037 A.3: the thumbprint of the example public key.
        let kid = thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!(kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn a_corrupt_key_is_an_error_naming_the_file_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "not a key").unwrap();
        let err = load_or_create(dir.path()).err().unwrap().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a key");

        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        std::fs::write(&path, other.serialize_pem()).unwrap();
        assert!(matches!(
            load_or_create(dir.path()),
            Err(KeyError::Corrupt { .. })
        ));
    }
}
