//! The relying party's own keys: RSA, at least 2048 bits, read from PEM. The signing key
//! signs the `client_assertion` of `private_key_jwt` and the request object (RS256); the
//! encryption key, a different one, opens the UserInfo responses the provider encrypts to
//! it (JWE). Their public halves are the JWKS the RP publishes.

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
    #[error("la chiave di cifratura del client OpenID deve essere diversa da quella di firma")]
    SameAsSigning,
}

/// The key UserInfo is encrypted to, with its own `kid`.
#[derive(Clone)]
struct EncryptionKey {
    private: rsa::RsaPrivateKey,
    kid: String,
}

/// An RSA private key with its RFC 7638 thumbprint as `kid`.
#[derive(Clone)]
pub struct RpKey {
    private: rsa::RsaPrivateKey,
    signer: rsa::pkcs1v15::SigningKey<Sha256>,
    kid: String,
    encryption: Option<EncryptionKey>,
}

impl std::fmt::Debug for RpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpKey")
            .field("kid", &self.kid)
            .field(
                "encryption_kid",
                &self.encryption.as_ref().map(|e| e.kid.as_str()),
            )
            .finish_non_exhaustive()
    }
}

impl RpKey {
    /// PKCS#8 (`-----BEGIN PRIVATE KEY-----`, what `openssl genpkey` writes) or PKCS#1
    /// (`-----BEGIN RSA PRIVATE KEY-----`). Encrypted keys are refused: the server has
    /// nobody to ask for a passphrase.
    /// The signing key alone: a provider that encrypts UserInfo cannot be used until
    /// [`RpKey::with_encryption_pem`] adds the encryption key.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        Self::from_private(read_pem(pem)?)
    }

    /// Adds the key UserInfo is encrypted to, which must not be the signing key.
    pub fn with_encryption_pem(mut self, pem: &str) -> Result<Self, KeyError> {
        let private = checked(read_pem(pem)?)?;
        if private.n() == self.private.n() {
            return Err(KeyError::SameAsSigning);
        }
        self.encryption = Some(EncryptionKey {
            kid: thumbprint(&private),
            private,
        });
        Ok(self)
    }

    /// Fresh signing and encryption keys, for the demo and tests: nothing outside this
    /// process trusts them.
    pub fn generate() -> Self {
        // Generation only fails on a broken random source, and 2048 bits is within the
        // bounds `checked` enforces: neither has a recovery.
        let generate = || {
            rsa::RsaPrivateKey::new(&mut rand_core::OsRng, GENERATED_BITS)
                .expect("RSA key generation")
        };
        let mut key = Self::from_private(generate()).expect("generated key has the right size");
        let private = generate();
        key.encryption = Some(EncryptionKey {
            kid: thumbprint(&private),
            private,
        });
        key
    }

    fn from_private(private: rsa::RsaPrivateKey) -> Result<Self, KeyError> {
        let private = checked(private)?;
        Ok(RpKey {
            signer: rsa::pkcs1v15::SigningKey::new(private.clone()),
            kid: thumbprint(&private),
            private,
            encryption: None,
        })
    }

    /// The PKCS#8 PEM of the encryption key, if there is one (tests, first set-up).
    pub fn encryption_pem(&self) -> Option<String> {
        let key = self.encryption.as_ref()?;
        key.private
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .map(|pem| pem.to_string())
            .ok()
    }

    /// Opens a UserInfo response encrypted to this relying party: the nested JWS.
    pub(crate) fn decrypt(&self, jwe: &str) -> Result<Vec<u8>, crate::error::UserinfoFault> {
        use crate::error::UserinfoFault;
        let key = self
            .encryption
            .as_ref()
            .ok_or(UserinfoFault::NoEncryptionKey)?;
        if crate::jwe::key_id(jwe).is_some_and(|kid| kid != key.kid) {
            return Err(UserinfoFault::Undecryptable);
        }
        crate::jwe::decrypt(jwe, &key.private).map_err(|error| match error {
            crate::jwe::JweError::Unsupported => UserinfoFault::UnsupportedEncryption,
            crate::jwe::JweError::Malformed | crate::jwe::JweError::Undecryptable => {
                UserinfoFault::Undecryptable
            }
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

    /// The JWK Set the relying party publishes (`/oidc/jwks.json`): the signing key and,
    /// when there is one, the encryption key (`use: enc`, for RSA-OAEP or RSA-OAEP-256).
    pub fn public_jwks(&self) -> serde_json::Value {
        let mut keys = vec![self.public_jwk()];
        if let Some(enc) = &self.encryption {
            let (n, e) = components(&enc.private);
            keys.push(
                serde_json::json!({ "kty": "RSA", "n": n, "e": e, "use": "enc", "kid": enc.kid }),
            );
        }
        serde_json::json!({ "keys": keys })
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

fn read_pem(pem: &str) -> Result<rsa::RsaPrivateKey, KeyError> {
    rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| KeyError::NotRsaPem)
}

fn checked(private: rsa::RsaPrivateKey) -> Result<rsa::RsaPrivateKey, KeyError> {
    let bits = private.n().bits();
    if (MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        Ok(private)
    } else {
        Err(KeyError::Size { bits })
    }
}

/// The key's RFC 7638 thumbprint: members in lexicographic order, no spaces (§3).
fn thumbprint(key: &rsa::RsaPrivateKey) -> String {
    let (n, e) = components(key);
    b64(&Sha256::digest(
        format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#).as_bytes(),
    ))
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
    fn encryption_key_is_published_apart_and_never_the_signing_key() {
        let key = RpKey::generate();
        let jwks = key.public_jwks();
        assert_eq!(jwks["keys"][0]["use"], "sig");
        assert_eq!(jwks["keys"][1]["use"], "enc");
        assert_ne!(jwks["keys"][0]["kid"], jwks["keys"][1]["kid"]);
        let signing = RpKey::from_pem(&key.to_pem()).expect("PEM");
        assert!(signing.encryption_pem().is_none());
        assert!(matches!(
            signing.clone().with_encryption_pem(&key.to_pem()),
            Err(KeyError::SameAsSigning)
        ));
        let both = signing
            .with_encryption_pem(&key.encryption_pem().expect("enc PEM"))
            .expect("a second key");
        assert_eq!(both.public_jwks(), jwks);
    }

    #[test]
    fn debug_shows_only_the_kid() {
        let key = RpKey::generate();
        let debug = format!("{key:?}");
        assert!(debug.contains(key.kid()));
        assert!(!debug.contains("private"));
    }
}
