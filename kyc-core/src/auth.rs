//! Credentials: random tokens stored only as hashes, HMAC request signatures,
//! and the sealing of secrets the server must be able to read back (a
//! company's HMAC secret) under a master key.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a random credential is for; its prefix makes a leaked one easy to
/// recognise (and to find with a secret scanner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Session,
    CompanyKey,
    CompanySecret,
    Staff,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Session => "kst_",
            Self::CompanyKey => "kck_",
            Self::CompanySecret => "kcs_",
            Self::Staff => "kyc_staff_",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error("sealed secret is damaged or was sealed under another master key")]
    Unseal,
    #[error("master key must be 32 bytes, given as 64 hex digits or base64")]
    MasterKey,
}

/// 256 random bits, base64url, behind the kind's prefix.
pub fn new_token(kind: TokenKind) -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(format!(
        "{}{}",
        kind.prefix(),
        URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// 64 bits from the operating system's generator (e.g. the seed of an
/// attempt's liveness challenges, which must not be predictable).
pub fn random_u64() -> Result<u64, AuthError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(u64::from_le_bytes(bytes))
}

/// How a token is stored and looked up: hex SHA-256. The tokens carry 256
/// random bits, so a fast hash is enough; nothing can be guessed from it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The first characters of a credential, safe to show in listings.
pub fn token_hint(token: &str) -> String {
    let visible: String = token.chars().take(12).collect();
    format!("{visible}…")
}

/// Why a request signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Signature header is missing; this company signs its requests")]
    Missing,
    #[error("the X-Signature header is malformed: expected t=<unix seconds>,v1=<hex HMAC-SHA256>")]
    Malformed,
    #[error(
        "the signature timestamp is {age} s away from the server's clock; at most {tolerance} s are allowed"
    )]
    Stale { age: i64, tolerance: i64 },
    #[error("the signature does not match the request")]
    Mismatch,
}

/// Seconds a signature's timestamp may differ from the server's clock.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// The signature of `body` at `timestamp`: hex HMAC-SHA256(secret, "<t>." + body).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks an `X-Signature: t=<unix seconds>,v1=<hex>` header (several `v1`
/// entries are allowed, for rotating secrets) against `body`.
pub fn verify_signature(
    header: Option<&str>,
    secret: &[u8],
    body: &[u8],
    now_secs: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (name, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match name {
            "t" => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                )
            }
            "v1" => candidates.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let age = now_secs - timestamp;
    if age.abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureError::Stale {
            age,
            tolerance: SIGNATURE_TOLERANCE_SECS,
        });
    }
    let expected = mac(secret, timestamp, body).finalize().into_bytes();
    let mut any = subtle::Choice::from(0);
    for candidate in &candidates {
        any |= expected.as_slice().ct_eq(candidate.as_slice());
    }
    if bool::from(any) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Seals and unseals secrets with ChaCha20-Poly1305 under the master key.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(master_key: &[u8; 32]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(master_key)),
        }
    }

    /// Reads a master key written as 64 hex digits or as base64.
    pub fn parse_master_key(text: &str) -> Result<[u8; 32], AuthError> {
        let text = text.trim();
        let bytes = hex::decode(text)
            .ok()
            .or_else(|| STANDARD.decode(text).ok())
            .ok_or(AuthError::MasterKey)?;
        bytes.try_into().map_err(|_| AuthError::MasterKey)
    }

    pub fn new_master_key() -> Result<[u8; 32], AuthError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| AuthError::Random(e.to_string()))?;
        Ok(key)
    }

    /// base64(nonce ‖ ciphertext).
    pub fn seal(&self, plaintext: &str) -> Result<String, AuthError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| AuthError::Random(e.to_string()))?;
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .map_err(|_| AuthError::Unseal)?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(STANDARD.encode(out))
    }

    pub fn unseal(&self, sealed: &str) -> Result<String, AuthError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| AuthError::Unseal)?;
        if bytes.len() < 12 {
            return Err(AuthError::Unseal);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| AuthError::Unseal)?;
        String::from_utf8(plain).map_err(|_| AuthError::Unseal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hash_stably() {
        let a = new_token(TokenKind::Session).unwrap();
        let b = new_token(TokenKind::Session).unwrap();
        assert!(a.starts_with("kst_"));
        assert_eq!(a.len(), 4 + 43);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn signature_round_trip_and_refusals() {
        let secret = b"kcs_secret";
        let body = br#"{"company_key":"k"}"#;
        let now = 1_700_000_000;
        let header = format!("t={now},v1={}", sign(secret, now, body));
        assert_eq!(
            verify_signature(Some(&header), secret, body, now + 10),
            Ok(())
        );
        assert_eq!(
            verify_signature(Some(&header), secret, b"{}", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(&header), b"other", body, now),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_signature(Some(&header), secret, body, now + 301),
            Err(SignatureError::Stale { .. })
        ));
        assert_eq!(
            verify_signature(None, secret, body, now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(Some("v1=00"), secret, body, now),
            Err(SignatureError::Malformed)
        );
        let rotating = format!("t={now},v1=00ff,v1={}", sign(secret, now, body));
        assert_eq!(verify_signature(Some(&rotating), secret, body, now), Ok(()));
    }

    #[test]
    fn matches_openssl() {
        // printf '%s' '1700000000.{}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            sign(b"secret", 1_700_000_000, b"{}"),
            "b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }

    #[test]
    fn sealing_round_trip_and_tamper() {
        let sealer = Sealer::new(&[7u8; 32]);
        let sealed = sealer.seal("kcs_abc").unwrap();
        assert_eq!(sealer.unseal(&sealed).unwrap(), "kcs_abc");
        assert!(Sealer::new(&[8u8; 32]).unseal(&sealed).is_err());
        assert!(sealer.unseal("AAAA").is_err());
        let key = Sealer::new_master_key().unwrap();
        assert_eq!(Sealer::parse_master_key(&hex::encode(key)).unwrap(), key);
    }
}
