//! Compact JWS: the key set, signature checks (RS256, ES256) and ID-token claim checks, and
//! the ES256 signer the local provider uses. The relying party's own RS256 key is in
//! `rp_key.rs`.
//!
//! Only asymmetric algorithms are accepted. `none` would let anyone mint tokens, and HS*
//! would make the client secret a signing key that the client itself holds.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::acr::AcrLevel;
use crate::error::OidcError;

/// Tolerated clock difference with the provider.
pub(crate) const LEEWAY_SECS: i64 = 30;
/// Larger tokens are refused before decoding; real ID tokens are a few KiB.
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Below this an RSA key is breakable; above, `rsa` itself refuses (4096).
const MIN_RSA_BITS: usize = 2048;
/// A key set larger than this is not a real provider's.
pub(crate) const MAX_JWKS_KEYS: usize = 64;

/// The claim SPID and CIE OpenID Connect use for the fiscal number (`TINIT-<CF>`).
pub(crate) const EID_FISCAL_NUMBER: &str = "https://attributes.eid.gov.it/fiscal_number";

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn unb64(text: &str, what: &'static str) -> Result<Vec<u8>, OidcError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| OidcError::MalformedToken(what))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    pub(crate) fn parse(name: &str) -> Result<Self, OidcError> {
        match name {
            "RS256" => Ok(Alg::Rs256),
            "ES256" => Ok(Alg::Es256),
            other => Err(OidcError::UnsupportedAlgorithm(
                other.chars().take(16).collect(),
            )),
        }
    }
}

#[derive(Clone)]
enum PublicKey {
    Rs256(rsa::pkcs1v15::VerifyingKey<Sha256>),
    Es256(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    fn alg(&self) -> Alg {
        match self {
            PublicKey::Rs256(_) => Alg::Rs256,
            PublicKey::Es256(_) => Alg::Es256,
        }
    }

    fn verify(&self, input: &[u8], signature: &[u8]) -> Result<(), OidcError> {
        let ok = match self {
            PublicKey::Rs256(key) => rsa::pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|sig| key.verify(input, &sig).is_ok()),
            // JWS carries ES256 as the raw 64-byte r||s, not DER.
            PublicKey::Es256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(input, &sig).is_ok()),
        };
        if ok {
            Ok(())
        } else {
            Err(OidcError::BadSignature)
        }
    }
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

impl RawJwk {
    /// `None` for keys that are not ours to use (encryption keys, other curves...): a key
    /// set may legitimately mix them with the signing keys.
    fn into_key(self) -> Option<(Option<String>, PublicKey)> {
        if self.usage.as_deref().is_some_and(|u| u != "sig") {
            return None;
        }
        let key = match self.kty.as_str() {
            "EC" if self.crv.as_deref() == Some("P-256") => {
                let x = URL_SAFE_NO_PAD.decode(self.x?).ok()?;
                let y = URL_SAFE_NO_PAD.decode(self.y?).ok()?;
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let point = p256::EncodedPoint::from_affine_coordinates(
                    p256::FieldBytes::from_slice(&x),
                    p256::FieldBytes::from_slice(&y),
                    false,
                );
                PublicKey::Es256(p256::ecdsa::VerifyingKey::from_encoded_point(&point).ok()?)
            }
            "RSA" => {
                let n = rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(self.n?).ok()?);
                let e = rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(self.e?).ok()?);
                if n.bits() < MIN_RSA_BITS {
                    return None;
                }
                let key = rsa::RsaPublicKey::new(n, e).ok()?;
                PublicKey::Rs256(rsa::pkcs1v15::VerifyingKey::new(key))
            }
            _ => return None,
        };
        if self
            .alg
            .as_deref()
            .is_some_and(|a| Alg::parse(a).ok() != Some(key.alg()))
        {
            return None;
        }
        Some((self.kid, key))
    }
}

/// The provider's signing keys, as published at its `jwks_uri`.
#[derive(Clone, Default)]
pub(crate) struct Jwks {
    keys: Vec<(Option<String>, PublicKey)>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|(kid, key)| (kid, key.alg())))
            .finish()
    }
}

impl Jwks {
    pub(crate) fn from_json(body: &[u8]) -> Result<Self, OidcError> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<serde_json::Value>,
        }
        let set: Set = serde_json::from_slice(body)
            .map_err(|_| OidcError::Jwks("il documento non è un JWK Set".into()))?;
        if set.keys.len() > MAX_JWKS_KEYS {
            return Err(OidcError::Jwks(format!("più di {MAX_JWKS_KEYS} chiavi")));
        }
        let keys: Vec<_> = set
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<RawJwk>(value).ok()?.into_key())
            .collect();
        if keys.is_empty() {
            return Err(OidcError::Jwks(
                "nessuna chiave di firma RS256 o ES256".into(),
            ));
        }
        Ok(Jwks { keys })
    }

    /// With a `kid`, only that key; without one, the single key of the right kind, since
    /// guessing among several would make any of them acceptable.
    fn find(&self, kid: Option<&str>, alg: Alg) -> Option<&PublicKey> {
        let mut candidates = self
            .keys
            .iter()
            .filter(|(key_kid, key)| {
                key.alg() == alg && (kid.is_none() || key_kid.as_deref() == kid)
            })
            .map(|(_, key)| key);
        let first = candidates.next()?;
        if kid.is_none() && candidates.next().is_some() {
            return None;
        }
        Some(first)
    }
}

/// What the ID token must say for this login.
#[derive(Debug)]
pub(crate) struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now: i64,
    /// The lowest `acr` this login accepts.
    pub min_acr: AcrLevel,
    /// The access token issued with the ID token, which `at_hash` must match.
    pub access_token: &'a str,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub(crate) fn as_slice(&self) -> &[String] {
        match self {
            Audience::One(aud) => std::slice::from_ref(aud),
            Audience::Many(auds) => auds,
        }
    }

    pub(crate) fn contains(&self, wanted: &str) -> bool {
        self.as_slice().iter().any(|aud| aud == wanted)
    }
}

/// The claims of an ID token that passed every check.
#[derive(Debug, Deserialize)]
pub(crate) struct IdClaims {
    iss: String,
    pub sub: String,
    aud: Audience,
    azp: Option<String>,
    #[serde(deserialize_with = "numeric_date")]
    exp: i64,
    #[serde(deserialize_with = "numeric_date")]
    iat: i64,
    nonce: Option<String>,
    /// The level the provider authenticated at; SPID and CIE always send it.
    acr: Option<String>,
    at_hash: Option<String>,
}

/// RFC 7519 allows fractional seconds; the fraction never matters here.
pub(crate) fn numeric_date<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<i64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if !value.is_finite() || value.abs() > 1e15 {
        return Err(serde::de::Error::custom("date out of range"));
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "range checked above; fractions of a second are dropped on purpose"
    )]
    Ok(value.floor() as i64)
}

/// The parts of a token before its signature is checked: enough to pick the key.
pub(crate) struct Unverified<'t> {
    alg: Alg,
    pub kid: Option<String>,
    signing_input: &'t str,
    payload: &'t str,
    signature: Vec<u8>,
}

impl<'t> Unverified<'t> {
    pub(crate) fn parse(token: &'t str) -> Result<Self, OidcError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(OidcError::MalformedToken("token troppo lungo"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(OidcError::MalformedToken("non è un JWS compatto"));
        };
        let header: Header = serde_json::from_slice(&unb64(header, "intestazione")?)
            .map_err(|_| OidcError::MalformedToken("intestazione"))?;
        let alg = Alg::parse(&header.alg)?;
        // RFC 7515 §4.1.11: an extension we do not understand must make the token invalid.
        if header.crit.is_some() {
            return Err(OidcError::MalformedToken(
                "estensioni critiche non supportate",
            ));
        }
        let signing_input = &token[..token.len() - signature.len() - 1];
        Ok(Unverified {
            alg,
            kid: header.kid,
            signing_input,
            payload,
            signature: unb64(signature, "firma")?,
        })
    }

    /// The payload, as `T`, once the signature is checked against `jwks`. `UnknownKey` is
    /// the one error worth retrying after fetching the key set again.
    pub(crate) fn verified<T: serde::de::DeserializeOwned>(
        &self,
        jwks: &Jwks,
    ) -> Result<T, OidcError> {
        let key =
            jwks.find(self.kid.as_deref(), self.alg)
                .ok_or_else(|| OidcError::UnknownKey {
                    kid: self.kid.clone(),
                })?;
        key.verify(self.signing_input.as_bytes(), &self.signature)?;
        serde_json::from_slice(&unb64(self.payload, "contenuto")?)
            .map_err(|_| OidcError::MalformedToken("contenuto"))
    }

    /// The payload without any check: only to learn who claims to have signed it, so as
    /// to pick the keys to check it with.
    pub(crate) fn unverified_payload<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&unb64(self.payload, "contenuto").ok()?).ok()
    }

    /// An ID token: signature, then OpenID Connect Core §3.1.3.7 and the SPID/CIE rules.
    #[cfg(test)]
    pub(crate) fn verify(
        self,
        jwks: &Jwks,
        expected: &Expected<'_>,
    ) -> Result<IdClaims, OidcError> {
        let claims: IdClaims = self.verified(jwks)?;
        claims.check(expected)?;
        Ok(claims)
    }
}

/// OpenID Connect Core §3.3.2.11: the left half of the access token's SHA-256, for the
/// 256-bit algorithms this crate accepts.
pub(crate) fn at_hash(access_token: &str) -> String {
    b64(&Sha256::digest(access_token.as_bytes())[..16])
}

impl IdClaims {
    /// OpenID Connect Core §3.1.3.7, in its order.
    pub(crate) fn check(&self, expected: &Expected<'_>) -> Result<(), OidcError> {
        if self.iss != expected.issuer {
            return Err(OidcError::WrongIssuer);
        }
        let audiences = self.aud.as_slice();
        if !self.aud.contains(expected.client_id) {
            return Err(OidcError::WrongAudience);
        }
        // With several audiences, only `azp` says which of them the token was issued to.
        match &self.azp {
            Some(azp) if azp != expected.client_id => return Err(OidcError::WrongAudience),
            None if audiences.len() > 1 => return Err(OidcError::WrongAudience),
            _ => {}
        }
        if self.exp <= expected.now - LEEWAY_SECS {
            return Err(OidcError::Expired {
                exp: self.exp,
                now: expected.now,
            });
        }
        if self.iat > expected.now + LEEWAY_SECS {
            return Err(OidcError::IssuedInFuture {
                iat: self.iat,
                now: expected.now,
            });
        }
        let nonce_ok = self
            .nonce
            .as_deref()
            .is_some_and(|nonce| bool::from(nonce.as_bytes().ct_eq(expected.nonce.as_bytes())));
        if !nonce_ok {
            return Err(OidcError::WrongNonce);
        }
        if self.sub.is_empty() {
            return Err(OidcError::MalformedToken("soggetto mancante"));
        }
        // SPID/CIE: the RP must check that at_hash matches the access token given with it.
        let hash_ok = self.at_hash.as_deref().is_some_and(|hash| {
            bool::from(
                hash.as_bytes()
                    .ct_eq(at_hash(expected.access_token).as_bytes()),
            )
        });
        if !hash_ok {
            return Err(OidcError::AccessTokenMismatch);
        }
        let level = self.acr.as_deref().and_then(AcrLevel::from_uri);
        if level.is_none_or(|level| level < expected.min_acr) {
            return Err(OidcError::AcrTooLow {
                requested: expected.min_acr,
                returned: self.acr.clone(),
            });
        }
        Ok(())
    }

    /// The level checked in [`IdClaims::check`].
    pub(crate) fn level(&self) -> Option<AcrLevel> {
        self.acr.as_deref().and_then(AcrLevel::from_uri)
    }
}

/// An ES256 key pair with its RFC 7638 thumbprint as `kid`.
#[derive(Clone)]
pub(crate) struct Es256Signer {
    key: p256::ecdsa::SigningKey,
    kid: String,
}

impl std::fmt::Debug for Es256Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es256Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Es256Signer {
    pub(crate) fn generate() -> Self {
        let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let (x, y) = coordinates(key.verifying_key());
        // Members in lexicographic order, no spaces: RFC 7638 §3.
        let thumbprint_input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = b64(&Sha256::digest(thumbprint_input.as_bytes()));
        Es256Signer { key, kid }
    }

    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn jwk(&self) -> serde_json::Value {
        let (x, y) = coordinates(self.key.verifying_key());
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "use": "sig", "alg": "ES256", "kid": self.kid,
        })
    }

    /// Signs `claims` as a compact JWS; `kid` is a parameter so tests can lie about it.
    pub(crate) fn sign_with_kid(&self, claims: &serde_json::Value, kid: &str) -> String {
        let header = serde_json::json!({ "alg": "ES256", "typ": "JWT", "kid": kid });
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature: p256::ecdsa::Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(&signature.to_bytes()))
    }

    pub(crate) fn sign(&self, claims: &serde_json::Value) -> String {
        self.sign_with_kid(claims, &self.kid)
    }
}

fn coordinates(key: &p256::ecdsa::VerifyingKey) -> (String, String) {
    let point = key.to_encoded_point(false);
    let coordinate = |c: Option<&p256::FieldBytes>| c.map(|bytes| b64(bytes)).unwrap_or_default();
    (coordinate(point.x()), coordinate(point.y()))
}

#[cfg(test)]
mod tests;
