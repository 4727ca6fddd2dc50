//! The leaf certificate the agent serves: loading a pair from disk, issuing a new one from
//! the local CA, and deciding when the current one must be replaced.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

use super::ca::{validity, LocalCa};
use super::files::{self, Access, LEAF_CERT, LEAF_KEY};
use super::host::SanName;
use super::CertError;

/// A leaf's total validity; browsers refuse more than 397 days.
const LEAF_LIFETIME: Duration = Duration::days(396);

/// What the renewal decision needs to know about a leaf.
#[derive(Debug, Clone)]
pub(crate) struct LeafInfo {
    /// Its subject alternative names.
    pub(crate) names: BTreeSet<SanName>,
    /// Start of validity.
    pub(crate) not_before: OffsetDateTime,
    /// End of validity.
    pub(crate) not_after: OffsetDateTime,
}

impl LeafInfo {
    /// Reads names and validity from the DER of `path`'s first certificate.
    fn inspect(path: &Path, der: &[u8]) -> Result<Self, CertError> {
        let invalid = |err: String| CertError::invalid(path, err);
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|err| invalid(format!("not a valid X.509 certificate: {err}")))?;
        let names = match cert.subject_alternative_name() {
            Ok(Some(ext)) => ext.value.general_names.iter().filter_map(san).collect(),
            Ok(None) => BTreeSet::new(),
            Err(err) => return Err(invalid(format!("bad subject alternative names: {err}"))),
        };
        let time = |t: &x509_parser::time::ASN1Time| {
            OffsetDateTime::from_unix_timestamp(t.timestamp())
                .map_err(|err| invalid(format!("bad validity: {err}")))
        };
        Ok(LeafInfo {
            names,
            not_before: time(&cert.validity().not_before)?,
            not_after: time(&cert.validity().not_after)?,
        })
    }

    /// Why this leaf must be re-issued at `now` to serve `wanted`, or `None` if it is fine.
    pub(crate) fn renewal_reason(
        &self,
        wanted: &BTreeSet<SanName>,
        now: OffsetDateTime,
    ) -> Option<&'static str> {
        let lifetime = self.not_after - self.not_before;
        if !wanted.is_subset(&self.names) {
            Some("a wanted name is missing")
        } else if self.names.iter().any(|name| !wanted.contains(name)) {
            Some("it names an address or name no longer wanted")
        } else if now < self.not_before {
            Some("it is not valid yet")
        } else if self.not_after - now < lifetime / 3 {
            Some("less than a third of its validity remains")
        } else {
            None
        }
    }
}

fn san(name: &GeneralName<'_>) -> Option<SanName> {
    match name {
        GeneralName::DNSName(dns) => Some(SanName::Dns(dns.to_ascii_lowercase())),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
            16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
            _ => None,
        }
        .map(SanName::Ip),
        _ => None,
    }
}

/// A leaf ready to serve, with what is known about it.
pub(crate) struct Leaf {
    /// Chain and signing key for rustls.
    pub(crate) key: Arc<CertifiedKey>,
    /// Names and validity.
    pub(crate) info: LeafInfo,
}

impl Leaf {
    /// Loads a certificate chain and its private key; unusable files are errors naming them.
    pub(crate) fn load(
        cert: &Path,
        key: &Path,
        provider: &CryptoProvider,
    ) -> Result<Self, CertError> {
        let chain = files::certs(cert)?;
        let signing_key = provider
            .key_provider
            .load_private_key(files::key(key)?)
            .map_err(|_| CertError::invalid(key, "not a usable private key"))?;
        let info = LeafInfo::inspect(cert, &chain[0])?;
        let key = Arc::new(CertifiedKey::new(chain, signing_key));
        Ok(Leaf { key, info })
    }

    /// Whether the private key belongs to the certificate.
    pub(crate) fn keys_match(&self) -> bool {
        self.key.keys_match().is_ok()
    }

    /// The end-entity certificate.
    pub(crate) fn end_entity(&self) -> &CertificateDer<'static> {
        &self.key.cert[0]
    }

    /// Issues a new leaf for `wanted` from `ca` and writes it to `dir`.
    pub(crate) fn issue(
        ca: &LocalCa,
        dir: &Path,
        wanted: &BTreeSet<SanName>,
        provider: &CryptoProvider,
    ) -> Result<Self, CertError> {
        let key_pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = leaf_params(wanted)?.signed_by(&key_pair, ca.issuer())?;
        let cert_path = dir.join(LEAF_CERT);
        // Key first: a crash in between leaves a mismatched pair, which is re-issued at start.
        let key_pem = key_pair.serialize_pem();
        files::write_atomic(&dir.join(LEAF_KEY), key_pem.as_bytes(), Access::Secret)?;
        files::write_atomic(&cert_path, cert.pem().as_bytes(), Access::Public)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        let signing_key = provider.key_provider.load_private_key(key_der)?;
        let info = LeafInfo::inspect(&cert_path, cert.der())?;
        let key = Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing_key));
        tracing::info!(not_after = %info.not_after, names = info.names.len(), "issued a leaf certificate");
        Ok(Leaf { key, info })
    }
}

fn leaf_params(wanted: &BTreeSet<SanName>) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "caisse-ap-relay agent");
    params.subject_alt_names = wanted
        .iter()
        .map(|name| match name {
            SanName::Dns(dns) => Ok(SanType::DnsName(dns.clone().try_into()?)),
            SanName::Ip(ip) => Ok(SanType::IpAddress(*ip)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    (params.not_before, params.not_after) = validity(LEAF_LIFETIME);
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(names: &[&str], age_days: i64) -> LeafInfo {
        let not_before = OffsetDateTime::now_utc() - Duration::days(age_days);
        LeafInfo {
            names: names.iter().map(|name| SanName::parse(name)).collect(),
            not_before,
            not_after: not_before + LEAF_LIFETIME,
        }
    }

    fn wanted(names: &[&str]) -> BTreeSet<SanName> {
        names.iter().map(|name| SanName::parse(name)).collect()
    }

    #[test]
    fn a_fresh_leaf_with_the_wanted_names_is_kept() {
        let leaf = info(&["localhost", "10.0.0.2"], 1);
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            leaf.renewal_reason(&wanted(&["localhost", "10.0.0.2"]), now),
            None
        );
    }

    #[test]
    fn a_missing_or_stale_name_triggers_renewal() {
        let leaf = info(&["localhost", "10.0.0.2"], 1);
        let now = OffsetDateTime::now_utc();
        let new_ip = wanted(&["localhost", "10.0.0.2", "10.0.0.3"]);
        assert_eq!(
            leaf.renewal_reason(&new_ip, now),
            Some("a wanted name is missing")
        );
        let gone_ip = wanted(&["localhost"]);
        assert!(leaf.renewal_reason(&gone_ip, now).is_some());
    }

    #[test]
    fn the_last_third_of_life_triggers_renewal() {
        let now = OffsetDateTime::now_utc();
        let names = wanted(&["localhost"]);
        assert_eq!(info(&["localhost"], 260).renewal_reason(&names, now), None);
        assert_eq!(
            info(&["localhost"], 270).renewal_reason(&names, now),
            Some("less than a third of its validity remains")
        );
    }
}
