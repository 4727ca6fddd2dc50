//! Secret material for pairing: random tokens and codes, their hashes, constant-time checks.
//!
//! Only hashes reach the disk. Tokens carry 256 random bits, so a plain SHA-256 is enough;
//! pairing codes have only 10^8 values, so each stored code hash is salted with its own
//! random salt (a stolen store then needs a brute force per code, within its 10 minutes).

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// Digits in a pairing code.
pub const CODE_DIGITS: usize = 8;
/// 10^CODE_DIGITS.
const CODE_SPACE: u32 = 100_000_000;
/// Largest multiple of `CODE_SPACE` under `u32::MAX`: draws at or above it are redrawn so
/// every code is equally likely.
const CODE_DRAW_LIMIT: u32 = CODE_SPACE * 42;

/// The system random generator failed (no entropy source): nothing secret can be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random generator failed")]
pub struct RandomError;

fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| RandomError)?;
    Ok(bytes)
}

/// A fresh till token: 256 random bits as 64 lowercase hex digits.
pub fn new_token() -> Result<String, RandomError> {
    Ok(to_hex(&random_bytes::<32>()?))
}

/// A fresh pairing code: `CODE_DIGITS` uniformly random decimal digits.
pub fn new_code() -> Result<String, RandomError> {
    loop {
        let draw = u32::from_be_bytes(random_bytes::<4>()?);
        if draw < CODE_DRAW_LIMIT {
            return Ok(format!(
                "{:0width$}",
                draw % CODE_SPACE,
                width = CODE_DIGITS
            ));
        }
    }
}

/// A fresh salt for one code hash, as hex.
pub fn new_salt() -> Result<String, RandomError> {
    Ok(to_hex(&random_bytes::<16>()?))
}

/// Whether `code` has the shape of a pairing code (checked before any hashing).
pub fn is_code_shaped(code: &str) -> bool {
    code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// SHA-256 of a token, as hex: what the store keeps.
pub fn token_hash(token: &str) -> String {
    to_hex(digest(&SHA256, token.as_bytes()).as_ref())
}

/// SHA-256 of `salt` then `code`, as hex.
pub fn code_hash(salt: &str, code: &str) -> String {
    let mut input = Vec::with_capacity(salt.len() + code.len());
    input.extend_from_slice(salt.as_bytes());
    input.extend_from_slice(code.as_bytes());
    to_hex(digest(&SHA256, &input).as_ref())
}

/// Constant-time equality of two secrets or hashes (the length is not hidden; it is public).
pub fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_hex_and_differ() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn codes_are_eight_digits() {
        for _ in 0..200 {
            let code = new_code().unwrap();
            assert!(is_code_shaped(&code), "{code}");
        }
    }

    #[test]
    fn code_shape_rejects_others() {
        assert!(!is_code_shaped("1234567"));
        assert!(!is_code_shaped("123456789"));
        assert!(!is_code_shaped("1234567a"));
        assert!(!is_code_shaped("１２３４５６７８"));
    }

    #[test]
    fn hashes_are_sha256_and_salted() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(code_hash("s1", "12345678"), code_hash("s2", "12345678"));
        assert_eq!(code_hash("s1", "12345678"), code_hash("s1", "12345678"));
    }

    #[test]
    fn same_compares_whole_strings() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
