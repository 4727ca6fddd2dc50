//! Signed receipts (contract §8): the agent's Ed25519 key in `data_dir`, its public JWK, and
//! the compact JWS that seals every final record and every resolution.
//!
//! A POS backend gets results from a browser it cannot trust; the receipt lets it check that
//! this agent produced them. [`Receipts::seal`] is the engine's one hook: the ledger calls it
//! when a change has its `seq` and before it is journaled, so a receipt is made once, stored
//! with its record and sent unchanged by `get`, replays and webhooks. The key file is created
//! once and never replaced: backends pin its public key.
//!
//! Signing is `ring`'s Ed25519 with the key pair parsed once at load: a compact JWS is
//! `b64(header) . b64(payload) . b64(signature)`, and the protected header never changes, so
//! it is encoded once too (`jsonwebtoken`, which the tests verify receipts with, parses the
//! PKCS#8 key again for every signature: half the cost of a seal). The key file is PKCS#8
//! PEM, made and read by `rcgen` (also on `ring`).

mod claims;
mod key;

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::Ed25519KeyPair;

use crate::engine::record::Record;

pub use key::{KeyError, FILE_NAME};

/// The protected header's `typ`.
pub const TYPE: &str = "caisse-ap-receipt+jwt";

/// The receipt key and the issuer name: everything needed to seal records.
pub struct Receipts {
    signing: Ed25519KeyPair,
    /// `b64(protected header) .`, the start of every signing input.
    header: String,
    jwk: String,
    issuer: String,
}

impl Receipts {
    /// Reads `data_dir/receipt.key`, or creates it (0600) when it does not exist yet;
    /// `issuer` is the receipts' `iss` (`[server] name`).
    pub fn load_or_create(data_dir: &Path, issuer: &str) -> Result<Receipts, KeyError> {
        let key = key::load_or_create(data_dir)?;
        let signing = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key.pkcs8).map_err(|_| {
            KeyError::Corrupt {
                file: data_dir.join(FILE_NAME).display().to_string(),
            }
        })?;
        let header = serde_json::json!({"alg": "EdDSA", "kid": key.kid, "typ": TYPE});
        Ok(Receipts {
            signing,
            header: format!("{}.", URL_SAFE_NO_PAD.encode(header.to_string())),
            jwk: key.jwk,
            issuer: issuer.to_owned(),
        })
    }

    /// The public key as one line of JSON (RFC 8037 JWK with its RFC 7638 `kid`).
    pub fn jwk_json(&self) -> &str {
        &self.jwk
    }

    /// Sets `record.receipt`: a new receipt when the record is final or resolved, none
    /// otherwise (a receipt never outlives the change it signs).
    pub fn seal(&self, record: &mut Record) {
        record.receipt = None;
        if !record.state.is_final() && record.resolution.is_none() {
            return;
        }
        let claims = claims::of(record, &self.issuer);
        // Header, payload and signature in base64 (4/3 of each) and two dots.
        let mut jws = String::with_capacity(self.header.len() + claims.len() * 4 / 3 + 96);
        jws.push_str(&self.header);
        URL_SAFE_NO_PAD.encode_string(claims, &mut jws);
        let signature = self.signing.sign(jws.as_bytes());
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jws);
        record.receipt = Some(jws);
    }
}

/// The default issuer: the host's name.
pub fn default_issuer() -> String {
    hostname::get()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "caisse-ap-relay".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::{sample, Resolution, ResolvedAs, State};
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    fn verify(receipts: &Receipts, jws: &str) -> jsonwebtoken::errors::Result<serde_json::Value> {
        let jwk: serde_json::Value = serde_json::from_str(receipts.jwk_json()).unwrap();
        let x = jwk["x"].as_str().unwrap();
        let key = DecodingKey::from_ed_components(x).unwrap();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Value>(jws, &key, &validation).map(|data| data.claims)
    }

    #[test]
    fn final_and_resolved_records_are_sealed_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let receipts = Receipts::load_or_create(dir.path(), "shop-1").unwrap();
        let mut record = sample("sale.1.2", State::Approved);
        record.seq = 7;
        record.updated_at = "2026-03-01T10:20:30.456Z".into();
        receipts.seal(&mut record);
        let jws = record.receipt.clone().unwrap();
        let claims = verify(&receipts, &jws).unwrap();
        assert_eq!(claims["jti"], "sale.1.2.7");
        assert_eq!(claims["iss"], "shop-1");
        assert_eq!(claims["iat"], 1772360430);
        assert_eq!(claims["amount"], 100);
        let header = jsonwebtoken::decode_header(&jws).unwrap();
        assert_eq!(header.typ.as_deref(), Some(TYPE));

        let mut pending = sample("b", State::Sent);
        pending.receipt = Some("stale".into());
        receipts.seal(&mut pending);
        assert_eq!(pending.receipt, None, "no receipt before the final state");

        let mut resolved = sample("c", State::Unknown);
        resolved.resolution = Some(Resolution {
            outcome: ResolvedAs::NotCharged,
            note: Some("ticket says no".into()),
            till: "till-2".into(),
            by_role: crate::engine::record::ResolvedBy::Cashier,
            at: "2026-03-01T10:21:00.000Z".into(),
        });
        receipts.seal(&mut resolved);
        let claims = verify(&receipts, resolved.receipt.as_ref().unwrap()).unwrap();
        assert_eq!(claims["state"], "unknown");
        assert_eq!(claims["resolution"]["outcome"], "not_charged");
        assert!(claims["resolution"].get("note").is_none());
    }

    #[test]
    fn a_tampered_receipt_fails() {
        let dir = tempfile::tempdir().unwrap();
        let receipts = Receipts::load_or_create(dir.path(), "shop").unwrap();
        let mut record = sample("a", State::Declined);
        receipts.seal(&mut record);
        let jws = record.receipt.unwrap();
        let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
        let payload = URL_SAFE_NO_PAD.decode(&parts[1]).unwrap();
        let forged = String::from_utf8(payload)
            .unwrap()
            .replace("\"declined\"", "\"approved\"");
        parts[1] = URL_SAFE_NO_PAD.encode(forged);
        assert!(verify(&receipts, &parts.join(".")).is_err());
    }

    #[test]
    fn the_key_is_kept_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let first = Receipts::load_or_create(dir.path(), "a").unwrap();
        let again = Receipts::load_or_create(dir.path(), "a").unwrap();
        assert_eq!(first.jwk_json(), again.jwk_json());
        let mut record = sample("a", State::Approved);
        first.seal(&mut record);
        assert!(verify(&again, record.receipt.as_ref().unwrap()).is_ok());
    }
}
