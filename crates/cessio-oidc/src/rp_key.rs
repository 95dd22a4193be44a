//! The relying party's own key: RSA, at least 2048 bits, read from PEM. It signs the
//! `client_assertion` of `private_key_jwt` and the request object (RS256), and its public
//! half is what the RP publishes as its JWKS for the provider to check them.

use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
use rsa::traits::PublicKeyParts as _;
use sha2::{Digest as _, Sha256};

use crate::jwt::b64;

/// SPID and CIE accept nothing weaker; `rsa` itself stops at 4096 on verification.
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 4096;
/// What [`RpKey::generate`] makes: the demo's and the tests' throwaway keys.
const GENERATED_BITS: usize = 2048;

/// Why a key file cannot be the relying party's key. `Display` never carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error(
        "la chiave del client OpenID non è una chiave privata RSA in PEM (PKCS#8 \"PRIVATE KEY\" o PKCS#1 \"RSA PRIVATE KEY\")"
    )]
    NotRsaPem,
    #[error(
        "la chiave del client OpenID ha {bits} bit: ne servono da {MIN_RSA_BITS} a {MAX_RSA_BITS}"
    )]
    Size { bits: usize },
}

/// An RSA private key with its RFC 7638 thumbprint as `kid`.
#[derive(Clone)]
pub struct RpKey {
    private: rsa::RsaPrivateKey,
    signer: rsa::pkcs1v15::SigningKey<Sha256>,
    kid: String,
}

impl std::fmt::Debug for RpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl RpKey {
    /// PKCS#8 (`-----BEGIN PRIVATE KEY-----`, what `openssl genpkey` writes) or PKCS#1
    /// (`-----BEGIN RSA PRIVATE KEY-----`). Encrypted keys are refused: the server has
    /// nobody to ask for a passphrase.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| KeyError::NotRsaPem)?;
        Self::from_private(private)
    }

    /// A fresh key, for the demo and tests: nothing outside this process trusts it.
    pub fn generate() -> Self {
        // Generation only fails on a broken random source, and 2048 bits is within the
        // bounds `from_private` checks: neither has a recovery.
        let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, GENERATED_BITS)
            .expect("RSA key generation");
        Self::from_private(private).expect("generated key has the right size")
    }

    fn from_private(private: rsa::RsaPrivateKey) -> Result<Self, KeyError> {
        let bits = private.n().bits();
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(KeyError::Size { bits });
        }
        let (n, e) = components(&private);
        // Members in lexicographic order, no spaces: RFC 7638 §3.
        let kid = b64(&Sha256::digest(
            format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#).as_bytes(),
        ));
        Ok(RpKey {
            signer: rsa::pkcs1v15::SigningKey::new(private.clone()),
            private,
            kid,
        })
    }

    /// The PKCS#8 PEM of this key, to write a key file (tests, first set-up).
    pub fn to_pem(&self) -> String {
        self.private
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .map(|pem| pem.to_string())
            .unwrap_or_default()
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK, for signatures only.
    pub fn public_jwk(&self) -> serde_json::Value {
        let (n, e) = components(&self.private);
        serde_json::json!({
            "kty": "RSA", "n": n, "e": e, "use": "sig", "alg": "RS256", "kid": self.kid,
        })
    }

    /// The JWK Set the relying party publishes (`/oidc/jwks.json`).
    pub fn public_jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.public_jwk()] })
    }

    /// `claims` as a compact RS256 JWS carrying this key's `kid`.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": self.kid });
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        // With a random source `rsa` blinds the private-key operation, so its time does not
        // follow the key (RUSTSEC-2023-0071; see SECURITY.md). The signature itself stays
        // the deterministic PKCS#1 v1.5 one.
        let signature = self
            .signer
            .sign_with_rng(&mut rand_core::OsRng, input.as_bytes());
        format!("{input}.{}", b64(&signature.to_bytes()))
    }
}

fn components(key: &rsa::RsaPrivateKey) -> (String, String) {
    (b64(&key.n().to_bytes_be()), b64(&key.e().to_bytes_be()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{Jwks, Unverified};

    #[test]
    fn pem_round_trip_keeps_the_kid_and_signs_verifiably() {
        let key = RpKey::generate();
        let again = RpKey::from_pem(&key.to_pem()).expect("own PEM reads back");
        assert_eq!(again.kid(), key.kid());
        let jwks = Jwks::from_json(key.public_jwks().to_string().as_bytes()).expect("JWKS");
        let token = again.sign(&serde_json::json!({ "iss": "cessio" }));
        let claims: serde_json::Value = Unverified::parse(&token)
            .and_then(|t| t.verified(&jwks))
            .expect("signature verifies with the published key");
        assert_eq!(claims["iss"], "cessio");
    }

    #[test]
    fn not_a_key_is_refused_without_echoing_it() {
        let error =
            RpKey::from_pem("-----BEGIN PRIVATE KEY-----\nsegreto\n").expect_err("not a key");
        assert!(matches!(error, KeyError::NotRsaPem));
        assert!(!error.to_string().contains("segreto"));
    }

    #[test]
    fn short_rsa_key_is_refused() {
        let small =
            rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).expect("1024-bit key generates");
        let pem = small
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .expect("PEM")
            .to_string();
        assert!(matches!(
            RpKey::from_pem(&pem),
            Err(KeyError::Size { bits: 1024 })
        ));
    }

    #[test]
    fn debug_shows_only_the_kid() {
        let key = RpKey::generate();
        let debug = format!("{key:?}");
        assert!(debug.contains(key.kid()));
        assert!(!debug.contains("private"));
    }
}
