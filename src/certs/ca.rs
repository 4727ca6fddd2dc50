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
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::parse_x509_certificate;

use super::files::{self, Access, CA_CERT, CA_KEY};
use super::host::{HostNames, SanName};
use super::CertError;
use crate::config::TlsConfig;

/// The CA's validity: ten years.
const CA_LIFETIME: Duration = Duration::days(3650);
/// Certificates start slightly in the past so a till whose clock is a little behind accepts them.
const BACKDATE: Duration = Duration::hours(1);

/// Private, link-local and loopback ranges a constrained CA may certify.
const PERMITTED_RANGES: [(&str, u8); 8] = [
    ("10.0.0.0", 8),
    ("172.16.0.0", 12),
    ("192.168.0.0", 16),
    ("169.254.0.0", 16),
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
    permitted: Permitted,
}

/// The names a CA's name constraints permit; `None` for a name type it does not constrain.
#[derive(Debug, Default)]
struct Permitted {
    dns: Option<Vec<String>>,
    /// `(address, mask)` pairs in network byte order.
    ips: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Permitted {
    /// Reads the permitted subtrees of the CA certificate `der` (from `path`).
    fn of(path: &Path, der: &[u8]) -> Result<Self, CertError> {
        let invalid =
            |err: String| CertError::invalid(path, format!("bad name constraints: {err}"));
        let (_, cert) = parse_x509_certificate(der).map_err(|err| invalid(err.to_string()))?;
        let constraints = cert
            .name_constraints()
            .map_err(|err| invalid(err.to_string()))?;
        let Some(subtrees) = constraints.and_then(|ext| ext.value.permitted_subtrees.as_ref())
        else {
            return Ok(Permitted::default());
        };
        let mut permitted = Permitted::default();
        for subtree in subtrees {
            match subtree.base {
                GeneralName::DNSName(dns) => permitted
                    .dns
                    .get_or_insert_with(Vec::new)
                    .push(dns.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => {
                    let (addr, mask) = bytes.split_at(bytes.len() / 2);
                    let ips = permitted.ips.get_or_insert_with(Vec::new);
                    ips.push((addr.to_vec(), mask.to_vec()));
                }
                _ => {}
            }
        }
        Ok(permitted)
    }

    fn allows(&self, name: &SanName) -> bool {
        match name {
            SanName::Dns(dns) => self
                .dns
                .as_ref()
                .is_none_or(|bases| bases.iter().any(|base| within_domain(dns, base))),
            SanName::Ip(ip) => self.ips.as_ref().is_none_or(|ranges| {
                let bytes = match ip {
                    IpAddr::V4(v4) => v4.octets().to_vec(),
                    IpAddr::V6(v6) => v6.octets().to_vec(),
                };
                ranges
                    .iter()
                    .any(|(addr, mask)| in_range(&bytes, addr, mask))
            }),
        }
    }
}

/// `name` is `base` or a subdomain of it (RFC 5280 DNS name constraint).
fn within_domain(name: &str, base: &str) -> bool {
    name == base
        || name
            .strip_suffix(base)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

fn in_range(ip: &[u8], addr: &[u8], mask: &[u8]) -> bool {
    ip.len() == addr.len()
        && ip.len() == mask.len()
        && ip
            .iter()
            .zip(addr)
            .zip(mask)
            .all(|((i, a), m)| i & m == a & m)
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
        let (_, parsed) = parse_x509_certificate(&der)
            .map_err(|err| CertError::invalid(cert, err.to_string()))?;
        if *parsed.public_key().subject_public_key.data != *key_pair.public_key_raw() {
            let reason = format!("does not match {}", cert.display());
            return Err(CertError::invalid(key, reason));
        }
        let issuer = Issuer::from_ca_cert_der(&der, key_pair)
            .map_err(|err| CertError::invalid(cert, format!("not a usable CA: {err}")))?;
        Ok(LocalCa {
            pem: String::from_utf8_lossy(&bytes).into_owned(),
            permitted: Permitted::of(cert, &der)?,
            der,
            issuer,
        })
    }

    fn create(
        cert: &Path,
        key: &Path,
        host: &HostNames,
        tls: &TlsConfig,
    ) -> Result<Self, CertError> {
        let key_pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let params = ca_params(host, tls);
        let certificate = params.self_signed(&key_pair)?;
        // Key first: a crash in between leaves a lone key, which was never trusted by anyone.
        files::write_atomic(key, key_pair.serialize_pem().as_bytes(), Access::Secret)?;
        files::write_atomic(cert, certificate.pem().as_bytes(), Access::Public)?;
        tracing::info!(file = %cert.display(), "created a local CA");
        Ok(LocalCa {
            pem: certificate.pem(),
            der: certificate.der().clone(),
            issuer: Issuer::new(params, key_pair),
            permitted: Permitted::of(cert, certificate.der())?,
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

    /// Whether this CA may certify `name`: a leaf naming anything else would be rejected
    /// whole by clients, so such names are left out of it.
    pub(crate) fn permits(&self, name: &SanName) -> bool {
        self.permitted.allows(name)
    }

    /// Whether `leaf` carries this CA's signature.
    pub(crate) fn signed(&self, leaf: &CertificateDer<'_>) -> bool {
        let Ok((_, parsed)) = parse_x509_certificate(leaf) else {
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

fn ca_params(host: &HostNames, tls: &TlsConfig) -> CertificateParams {
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
    params
}

/// DNS names (with their subdomains) a constrained CA may certify: the names LANs use.
const PERMITTED_DNS: [&str; 5] = ["localhost", "local", "lan", "home.arpa", "internal"];

/// Limits the CA to LAN names and private addresses, so a stolen CA key cannot impersonate
/// public sites to the tills that trust it.
fn name_constraints(host: &HostNames, extra_names: &[String]) -> NameConstraints {
    let names = PERMITTED_DNS
        .map(String::from)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn permitted() -> Permitted {
        let ranges = [("192.168.0.0", 16), ("fc00::", 7)].map(|(addr, prefix)| {
            match CidrSubnet::from_addr_prefix(addr.parse().unwrap(), prefix) {
                CidrSubnet::V4(addr, mask) => (addr.to_vec(), mask.to_vec()),
                CidrSubnet::V6(addr, mask) => (addr.to_vec(), mask.to_vec()),
            }
        });
        Permitted {
            dns: Some(vec!["local".into(), "till-7".into()]),
            ips: Some(ranges.to_vec()),
        }
    }

    #[test]
    fn dns_constraints_match_the_name_and_its_subdomains_only() {
        let allowed = |name: &str| permitted().allows(&SanName::parse(name));
        assert!(allowed("local") && allowed("till-7.local") && allowed("till-7"));
        assert!(!allowed("notlocal") && !allowed("example.com") && !allowed("till-70"));
    }

    #[test]
    fn ip_constraints_match_their_ranges_and_family_only() {
        let allowed = |name: &str| permitted().allows(&SanName::parse(name));
        assert!(allowed("192.168.40.1") && allowed("fd12::1"));
        assert!(!allowed("192.169.0.1") && !allowed("2001:db8::1") && !allowed("10.0.0.1"));
    }

    #[test]
    fn an_unconstrained_ca_permits_everything() {
        assert!(Permitted::default().allows(&SanName::parse("example.com")));
        assert!(Permitted::default().allows(&SanName::parse("203.0.113.9")));
    }
}
