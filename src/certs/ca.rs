//! The local root CA: created once in `tls.dir`, then only ever loaded. It signs leaves and
//! checks that a leaf on disk is its own.

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, GeneralSubtree,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use super::files::{self, Access, CA_CERT, CA_KEY};
use super::host::{HostNames, SanName};
use super::CertError;
use crate::config::TlsConfig;

/// The CA's validity: ten years.
const CA_LIFETIME: Duration = Duration::days(3650);
/// Certificates start slightly in the past so a till whose clock is a little behind accepts them.
const BACKDATE: Duration = Duration::hours(1);

/// Private and loopback ranges a constrained CA may certify.
const PERMITTED_RANGES: [(&str, u8); 7] = [
    ("10.0.0.0", 8),
    ("172.16.0.0", 12),
    ("192.168.0.0", 16),
    ("127.0.0.0", 8),
    ("::1", 128),
    ("fc00::", 7),
    ("fe80::", 10),
];

/// The local CA, ready to sign.
pub(crate) struct LocalCa {
    pem: String,
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl LocalCa {
    /// Loads the CA of `dir`, or creates it if neither file exists; half a CA is an error.
    pub(crate) fn load_or_create(
        dir: &Path,
        host: &HostNames,
        tls: &TlsConfig,
    ) -> Result<Self, CertError> {
        let (cert, key) = (dir.join(CA_CERT), dir.join(CA_KEY));
        match (files::exists(&cert)?, files::exists(&key)?) {
            (true, true) => Self::load(&cert, &key),
            (false, false) => Self::create(&cert, &key, host, tls),
            (true, false) => Err(CertError::MissingHalf {
                path: key,
                partner: cert,
            }),
            (false, true) => Err(CertError::MissingHalf {
                path: cert,
                partner: key,
            }),
        }
    }

    fn load(cert: &Path, key: &Path) -> Result<Self, CertError> {
        let bytes = files::read(cert)?;
        let der = files::parse_certs(cert, &bytes)?.swap_remove(0);
        let key_pair = KeyPair::try_from(&files::key(key)?)
            .map_err(|_| CertError::invalid(key, "not a usable private key"))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der)
            .map_err(|err| CertError::invalid(cert, err.to_string()))?;
        if *parsed.public_key().subject_public_key.data != *key_pair.public_key_raw() {
            let reason = format!("does not match {}", cert.display());
            return Err(CertError::invalid(key, reason));
        }
        let issuer = Issuer::from_ca_cert_der(&der, key_pair)
            .map_err(|err| CertError::invalid(cert, format!("not a usable CA: {err}")))?;
        let pem = String::from_utf8_lossy(&bytes).into_owned();
        Ok(LocalCa { pem, der, issuer })
    }

    fn create(
        cert: &Path,
        key: &Path,
        host: &HostNames,
        tls: &TlsConfig,
    ) -> Result<Self, CertError> {
        let key_pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let params = ca_params(host, tls)?;
        let certificate = params.self_signed(&key_pair)?;
        // Key first: a crash in between leaves a lone key, which was never trusted by anyone.
        files::write_atomic(key, key_pair.serialize_pem().as_bytes(), Access::Secret)?;
        files::write_atomic(cert, certificate.pem().as_bytes(), Access::Public)?;
        tracing::info!(file = %cert.display(), "created a local CA");
        Ok(LocalCa {
            pem: certificate.pem(),
            der: certificate.der().clone(),
            issuer: Issuer::new(params, key_pair),
        })
    }

    /// The CA certificate as PEM.
    pub(crate) fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA certificate as DER.
    pub(crate) fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// The signer for leaves.
    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// Whether `leaf` carries this CA's signature.
    pub(crate) fn signed(&self, leaf: &CertificateDer<'_>) -> bool {
        let Ok((_, parsed)) = x509_parser::parse_x509_certificate(leaf) else {
            return false;
        };
        let key =
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, self.issuer.key().public_key_raw());
        key.verify(
            parsed.tbs_certificate.as_ref(),
            &parsed.signature_value.data,
        )
        .is_ok()
    }
}

/// `(not_before, not_after)` for a certificate living `lifetime` from now (minus the backdate).
pub(crate) fn validity(lifetime: Duration) -> (OffsetDateTime, OffsetDateTime) {
    let start = OffsetDateTime::now_utc() - BACKDATE;
    (start, start + lifetime)
}

fn ca_params(host: &HostNames, tls: &TlsConfig) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::default();
    let label = match host.hostname() {
        "" => "caisse-ap-relay CA".to_string(),
        name => format!("caisse-ap-relay CA ({name})"),
    };
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, label);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "caisse-ap-relay");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (params.not_before, params.not_after) = validity(CA_LIFETIME);
    if tls.name_constraints {
        params.name_constraints = Some(name_constraints(host, &tls.extra_names));
    }
    Ok(params)
}

/// Limits the CA to LAN names and private addresses, so a stolen CA key cannot impersonate
/// public sites to the tills that trust it.
fn name_constraints(host: &HostNames, extra_names: &[String]) -> NameConstraints {
    let base = ["local".to_string(), "localhost".to_string()];
    let names = base
        .into_iter()
        .chain(host.dns_names().into_iter().take(1))
        .map(SanName::Dns)
        .chain(extra_names.iter().map(|name| SanName::parse(name)));
    let ranges = PERMITTED_RANGES.iter().map(|(addr, prefix)| {
        let addr: IpAddr = addr.parse().expect("constant address");
        GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(addr, *prefix))
    });
    let permitted_subtrees = names
        .map(|name| match name {
            SanName::Dns(dns) => GeneralSubtree::DnsName(dns),
            SanName::Ip(ip) => GeneralSubtree::IpAddress(single_address(ip)),
        })
        .chain(ranges)
        .collect();
    NameConstraints {
        permitted_subtrees,
        excluded_subtrees: Vec::new(),
    }
}

fn single_address(ip: IpAddr) -> CidrSubnet {
    let prefix = if ip.is_ipv4() { 32 } else { 128 };
    CidrSubnet::from_addr_prefix(ip, prefix)
}
