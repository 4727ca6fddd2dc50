//! The one error type of the certificate module: every variant names the file at fault, so an
//! operator can fix it without reading code.

use std::path::PathBuf;

/// Why certificates could not be loaded, created or renewed.
///
/// Nothing here is retried automatically: the agent refuses to start (or, during a periodic
/// renewal, keeps the current leaf) and the operator fixes the named file.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file or directory could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The system error.
        source: std::io::Error,
    },
    /// A file or directory could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The system error.
        source: std::io::Error,
    },
    /// A file exists but its content is unusable; it is never replaced silently.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// One half of the CA is missing: creating a new CA would silently break every till that
    /// trusts the old one, so the operator must restore the file or delete both.
    #[error(
        "{}: missing while {} exists; restore it, or delete both to create a new CA \
         (every till must then trust the new one)",
        path.display(),
        partner.display()
    )]
    MissingHalf {
        /// The missing file.
        path: PathBuf,
        /// The file that is present.
        partner: PathBuf,
    },
    /// A PEM text given to [`root_store`](super::root_store) holds no usable certificate.
    #[error("CA PEM: {0}")]
    CaPem(String),
    /// Certificate generation failed (e.g. an extra name that is not ASCII).
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

impl CertError {
    /// An [`CertError::Invalid`] for `path`.
    pub(crate) fn invalid(path: &std::path::Path, reason: impl Into<String>) -> Self {
        CertError::Invalid {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}
