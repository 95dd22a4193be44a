//! The relying party as the SPID/CIE OpenID Connect rules have it: discovery, the
//! authorization request as a signed request object (PKCE S256, `acr_values`, `claims`),
//! the code exchange authenticated by `private_key_jwt`, the ID token (with `acr` and
//! `at_hash`), and the person's attributes read from the signed UserInfo response.
//!
//! One [`OidcClient`] per configured provider, built once at start-up and shared; it holds
//! the provider's metadata and its key set (refreshed when a token names a key it does not
//! know, so the provider can rotate keys without a restart here).

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rand_core::RngCore as _;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::acr::AcrLevel;
use crate::error::{Endpoint, OidcError, UserinfoFault};
use crate::jwt::{self, Audience, Expected, Jwks, Unverified};
use crate::rp_key::RpKey;

/// The whole exchange with the provider must fit in this; a user is waiting.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bodies larger than this are not a provider's metadata, keys or tokens.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Longest `error` code kept from a provider's refusal; longer ones are not RFC 6749's.
const MAX_ERROR_CODE_LEN: usize = 64;
/// Random bytes in `state`, `nonce` and the PKCE verifier (RFC 7636 asks for 32).
const SECRET_BYTES: usize = 32;
/// SPID asks for the attributes in `claims`, not by scope; `openid` alone is the scope.
const SCOPE: &str = "openid";
/// SPID/CIE: `consent login` makes the provider authenticate again and ask for consent.
const PROMPT: &str = "consent login";
/// Lifetime of the request object and of the client assertion: each is used at once.
const ASSERTION_LIFETIME_SECS: i64 = 120;
/// RFC 7523 §2.2.
pub(crate) const CLIENT_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What the web layer must remember between [`OidcClient::begin`] and
/// [`OidcClient::finish`]: bound to one browser, used once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub code_verifier: String,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin").finish_non_exhaustive()
    }
}

/// Who logged in, as the provider vouched for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The provider's stable identifier for the person (`sub`).
    pub subject: String,
    /// From UserInfo's `https://attributes.eid.gov.it/fiscal_number`, `TINIT-` removed and
    /// upper-cased; not checked against R-CF here (`cessio-core` is the judge of that).
    pub fiscal_code: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub name: Option<String>,
    /// The level the provider authenticated at: at least the one asked for.
    pub level: AcrLevel,
}

/// A verified ID token: whom it names and at which level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdToken {
    pub subject: String,
    pub level: AcrLevel,
}

/// `TINIT-RSSMRA80A01H501U` → `RSSMRA80A01H501U`. SPID and CIE send the Italian tax number
/// with its ISO 3166 prefix; a foreign one (`TINFR-…`) or a bare code is not that format.
fn fiscal_code_from(raw: &str) -> Result<String, OidcError> {
    let upper = raw.trim().to_uppercase();
    match upper.strip_prefix("TINIT-") {
        Some(code) if !code.is_empty() => Ok(code.to_owned()),
        _ => Err(OidcError::FiscalNumberMalformed),
    }
}

/// The part of the discovery document we use.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    jwks_uri: String,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// Who this relying party is to the provider.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    /// For SPID/CIE, the RP's HTTPS identifier, as registered with the federation.
    pub client_id: String,
    /// Signs the client assertions and request objects.
    pub key: RpKey,
    pub redirect_uri: String,
    /// The lowest level accepted, and the one asked for in `acr_values`.
    pub acr: AcrLevel,
}

/// A relying party registered with one OpenID provider.
#[derive(Debug)]
pub struct OidcClient {
    http: reqwest::Client,
    issuer: String,
    rp: RelyingParty,
    authorization_endpoint: Url,
    token_endpoint: Url,
    userinfo_endpoint: Url,
    jwks_uri: Url,
    jwks: RwLock<Arc<Jwks>>,
}

impl OidcClient {
    /// Reads the provider's configuration and keys. Call once at start-up.
    pub async fn discover(issuer: &str, rp: RelyingParty) -> Result<OidcClient, OidcError> {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            // A redirect from the token endpoint would resend the code somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| OidcError::Transport {
                endpoint: Endpoint::Discovery,
                source: Some(source),
                status: None,
            })?;
        let discovery_url = parse_endpoint(
            &format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ),
            "issuer",
        )?;
        let body = get_json(&http, discovery_url, Endpoint::Discovery).await?;
        let metadata: Metadata = serde_json::from_slice(&body)
            .map_err(|e| OidcError::Discovery(format!("documento incompleto ({e})")))?;
        // OpenID Connect Discovery §4.3: exactly equal, or a look-alike could vouch for users.
        if metadata.issuer != issuer {
            return Err(OidcError::IssuerMismatch {
                expected: issuer.to_owned(),
                found: metadata.issuer,
            });
        }
        if metadata
            .token_endpoint_auth_methods_supported
            .as_ref()
            .is_some_and(|methods| !methods.iter().any(|m| m == "private_key_jwt"))
        {
            return Err(OidcError::Discovery(
                "il provider non accetta private_key_jwt".into(),
            ));
        }
        let jwks_uri = parse_endpoint(&metadata.jwks_uri, "jwks_uri")?;
        let jwks = fetch_jwks(&http, &jwks_uri).await?;
        Ok(OidcClient {
            http,
            issuer: metadata.issuer,
            rp,
            authorization_endpoint: parse_endpoint(
                &metadata.authorization_endpoint,
                "authorization_endpoint",
            )?,
            token_endpoint: parse_endpoint(&metadata.token_endpoint, "token_endpoint")?,
            userinfo_endpoint: parse_endpoint(&metadata.userinfo_endpoint, "userinfo_endpoint")?,
            jwks_uri,
            jwks: RwLock::new(Arc::new(jwks)),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn client_id(&self) -> &str {
        &self.rp.client_id
    }

    /// The JWK Set this relying party publishes for the provider (`/oidc/jwks.json`).
    pub fn public_jwks(&self) -> serde_json::Value {
        self.rp.key.public_jwks()
    }

    /// The URL to send the browser to, and what to keep until it comes back. `now` is unix
    /// seconds (the request object's `iat`).
    ///
    /// Every parameter travels in the signed request object; `client_id`, `response_type`,
    /// `scope` and the PKCE challenge are repeated in the query, as SPID requires.
    pub fn begin(&self, now: i64) -> (String, PendingLogin) {
        let pending = PendingLogin {
            state: random_secret(),
            nonce: random_secret(),
            code_verifier: random_secret(),
        };
        let challenge = pkce_challenge(&pending.code_verifier);
        // SPID releases attributes on request only, and only from UserInfo (OpenID
        // Connect Core §5.5); `null` asks for a claim without insisting.
        let claims = serde_json::json!({
            "userinfo": {
                jwt::EID_FISCAL_NUMBER: { "essential": true },
                "given_name": null,
                "family_name": null,
            },
        });
        let request_object = serde_json::json!({
            "iss": self.rp.client_id,
            "aud": self.issuer,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
            "jti": random_secret(),
            "client_id": self.rp.client_id,
            "response_type": "code",
            "scope": SCOPE,
            "redirect_uri": self.rp.redirect_uri,
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "prompt": PROMPT,
            "acr_values": self.rp.acr.uri(),
            "claims": claims,
        });
        let mut url = self.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.rp.client_id)
            .append_pair("response_type", "code")
            .append_pair("scope", SCOPE)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("request", &self.rp.key.sign(&request_object));
        (url.into(), pending)
    }

    /// Completes a login from the redirect's `code` and `state`. `now` is unix seconds.
    ///
    /// When the redirect carries `error` instead of `code`, build
    /// [`OidcError::AuthorizationRefused`] instead of calling this.
    pub async fn finish(
        &self,
        pending: &PendingLogin,
        code: &str,
        returned_state: &str,
        now: i64,
    ) -> Result<Identity, OidcError> {
        if !bool::from(returned_state.as_bytes().ct_eq(pending.state.as_bytes())) {
            return Err(OidcError::StateMismatch);
        }
        let tokens = self
            .exchange_code(code, &pending.code_verifier, now)
            .await?;
        let id_token = self
            .verify_id_token(&tokens.id_token, &pending.nonce, &tokens.access_token, now)
            .await?;
        self.userinfo(&tokens.access_token, &id_token, now).await
    }

    /// Checks an ID token from this provider, issued with `access_token`.
    pub async fn verify_id_token(
        &self,
        id_token: &str,
        nonce: &str,
        access_token: &str,
        now: i64,
    ) -> Result<IdToken, OidcError> {
        let expected = Expected {
            issuer: &self.issuer,
            client_id: &self.rp.client_id,
            nonce,
            now,
            min_acr: self.rp.acr,
            access_token,
        };
        let claims: jwt::IdClaims = self.verified(id_token).await?;
        claims.check(&expected)?;
        let level = claims
            .level()
            .ok_or(OidcError::MalformedToken("livello mancante"))?;
        Ok(IdToken {
            subject: claims.sub,
            level,
        })
    }

    /// The token's payload once its signature verifies with the provider's keys.
    async fn verified<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, OidcError> {
        let cached = Arc::clone(&self.jwks.read().unwrap_or_else(PoisonError::into_inner));
        match Unverified::parse(token)?.verified(&cached) {
            // The provider may have rotated its keys since we fetched them. One refetch per
            // token is enough and cannot be abused: the token came over TLS from the
            // provider in exchange for our signed assertion, not from the browser.
            Err(OidcError::UnknownKey { kid }) => {
                tracing::info!(
                    ?kid,
                    "token signed with an unknown key; fetching the JWKS again"
                );
                let fresh = Arc::new(fetch_jwks(&self.http, &self.jwks_uri).await?);
                *self.jwks.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&fresh);
                Unverified::parse(token)?.verified(&fresh)
            }
            other => other,
        }
    }

    /// `private_key_jwt` (OpenID Connect Core §9): who we are, signed, for the token
    /// endpoint only, once.
    fn client_assertion(&self, now: i64) -> String {
        self.rp.key.sign(&serde_json::json!({
            "iss": self.rp.client_id,
            "sub": self.rp.client_id,
            "aud": self.token_endpoint.as_str(),
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
            "jti": random_secret(),
        }))
    }

    async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
        now: i64,
    ) -> Result<Tokens, OidcError> {
        let assertion = self.client_assertion(now);
        let response = self
            .http
            .post(self.token_endpoint.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.rp.redirect_uri),
                ("code_verifier", code_verifier),
                ("client_id", &self.rp.client_id),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ])
            .send()
            .await
            .map_err(|source| transport(Endpoint::Token, source))?;
        let status = response.status();
        let body = read_limited(response, Endpoint::Token).await?;
        if !status.is_success() {
            return Err(token_refusal(status.as_u16(), &body));
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            id_token: Option<String>,
            access_token: Option<String>,
            token_type: Option<String>,
        }
        let tokens: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| OidcError::TokenResponse("non è JSON".into()))?;
        if !tokens
            .token_type
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
        {
            return Err(OidcError::TokenResponse("token_type non è Bearer".into()));
        }
        Ok(Tokens {
            id_token: tokens
                .id_token
                .ok_or_else(|| OidcError::TokenResponse("id_token mancante".into()))?,
            access_token: tokens
                .access_token
                .ok_or_else(|| OidcError::TokenResponse("access_token mancante".into()))?,
        })
    }

    /// The person's attributes, from the UserInfo endpoint: a signed JWT whose `sub` must
    /// be the ID token's (OpenID Connect Core §5.3.2).
    async fn userinfo(
        &self,
        access_token: &str,
        id_token: &IdToken,
        now: i64,
    ) -> Result<Identity, OidcError> {
        let response = self
            .http
            .get(self.userinfo_endpoint.clone())
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/jwt, application/jose")
            .send()
            .await
            .map_err(|source| transport(Endpoint::Userinfo, source))?;
        let status = response.status();
        let body = read_limited(response, Endpoint::Userinfo).await?;
        if !status.is_success() {
            return Err(OidcError::Transport {
                endpoint: Endpoint::Userinfo,
                source: None,
                status: Some(status.as_u16()),
            });
        }
        let text = std::str::from_utf8(&body)
            .map_err(|_| OidcError::Userinfo(UserinfoFault::NotSignedJwt))?
            .trim();
        // Signed, or signed and then encrypted to this relying party (the rules' form).
        let opened;
        let signed = match text.split('.').count() {
            3 => text,
            5 => {
                opened = self.rp.key.decrypt(text).map_err(OidcError::Userinfo)?;
                std::str::from_utf8(&opened)
                    .map_err(|_| OidcError::Userinfo(UserinfoFault::NotSignedJwt))?
                    .trim()
            }
            _ => return Err(OidcError::Userinfo(UserinfoFault::NotSignedJwt)),
        };
        if signed.split('.').count() != 3 {
            return Err(OidcError::Userinfo(UserinfoFault::NotSignedJwt));
        }
        let claims: UserinfoClaims = self.verified(signed).await.map_err(|error| {
            OidcError::Userinfo(match error {
                OidcError::BadSignature => UserinfoFault::BadSignature,
                OidcError::UnknownKey { .. } => UserinfoFault::UnknownKey,
                _ => UserinfoFault::NotSignedJwt,
            })
        })?;
        claims.into_identity(&self.issuer, &self.rp.client_id, id_token, now)
    }
}

struct Tokens {
    id_token: String,
    access_token: String,
}

/// The UserInfo response's claims.
#[derive(Deserialize)]
struct UserinfoClaims {
    iss: Option<String>,
    aud: Option<Audience>,
    sub: Option<String>,
    #[serde(default, deserialize_with = "optional_numeric_date")]
    exp: Option<i64>,
    given_name: Option<String>,
    family_name: Option<String>,
    name: Option<String>,
    #[serde(rename = "https://attributes.eid.gov.it/fiscal_number")]
    fiscal_number: Option<String>,
}

fn optional_numeric_date<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    jwt::numeric_date(deserializer).map(Some)
}

impl UserinfoClaims {
    /// The SPID/CIE rules: `iss` the provider, `aud` this client, `sub` the ID token's,
    /// not expired; then the fiscal number, which this service cannot do without.
    fn into_identity(
        self,
        issuer: &str,
        client_id: &str,
        id_token: &IdToken,
        now: i64,
    ) -> Result<Identity, OidcError> {
        let fault = |fault| Err(OidcError::Userinfo(fault));
        if self.iss.as_deref() != Some(issuer) {
            return fault(UserinfoFault::WrongIssuer);
        }
        if !self.aud.as_ref().is_some_and(|aud| aud.contains(client_id)) {
            return fault(UserinfoFault::WrongAudience);
        }
        let same_subject = self
            .sub
            .as_deref()
            .is_some_and(|sub| bool::from(sub.as_bytes().ct_eq(id_token.subject.as_bytes())));
        if !same_subject {
            return fault(UserinfoFault::SubjectMismatch);
        }
        if self.exp.is_none_or(|exp| exp <= now - jwt::LEEWAY_SECS) {
            return fault(UserinfoFault::Expired);
        }
        let raw = self.fiscal_number.ok_or(OidcError::FiscalNumberMissing)?;
        Ok(Identity {
            subject: id_token.subject.clone(),
            fiscal_code: fiscal_code_from(&raw)?,
            given_name: self.given_name,
            family_name: self.family_name,
            name: self.name,
            level: id_token.level,
        })
    }
}

fn token_refusal(status: u16, body: &[u8]) -> OidcError {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
        error_description: Option<String>,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        // Only RFC 6749's character set survives, so a hostile provider cannot put
        // arbitrary text into a message we show.
        Ok(refusal)
            if refusal.error.len() <= MAX_ERROR_CODE_LEN
                && refusal
                    .error
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            OidcError::TokenRefused {
                status,
                error: refusal.error,
                description: refusal.error_description,
            }
        }
        _ => OidcError::Transport {
            endpoint: Endpoint::Token,
            source: None,
            status: Some(status),
        },
    }
}

fn random_secret() -> String {
    let mut bytes = [0_u8; SECRET_BYTES];
    rand_core::OsRng.fill_bytes(&mut bytes);
    jwt::b64(&bytes)
}

pub(crate) fn pkce_challenge(verifier: &str) -> String {
    jwt::b64(&Sha256::digest(verifier.as_bytes()))
}

/// HTTPS, or plain HTTP to this machine only (the local provider, a gateway in a test).
fn parse_endpoint(raw: &str, field: &str) -> Result<Url, OidcError> {
    let url = Url::parse(raw).map_err(|_| OidcError::Discovery(format!("{field} non è un URL")))?;
    let loopback = match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(OidcError::Discovery(format!("{field} deve usare HTTPS"))),
    }
}

fn transport(endpoint: Endpoint, source: reqwest::Error) -> OidcError {
    let status = source.status().map(|s| s.as_u16());
    OidcError::Transport {
        endpoint,
        source: Some(source),
        status,
    }
}

async fn get_json(
    http: &reqwest::Client,
    url: Url,
    endpoint: Endpoint,
) -> Result<Vec<u8>, OidcError> {
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|source| transport(endpoint, source))?;
    if !response.status().is_success() {
        return Err(OidcError::Transport {
            endpoint,
            source: None,
            status: Some(response.status().as_u16()),
        });
    }
    read_limited(response, endpoint).await
}

async fn fetch_jwks(http: &reqwest::Client, url: &Url) -> Result<Jwks, OidcError> {
    Jwks::from_json(&get_json(http, url.clone(), Endpoint::Jwks).await?)
}

async fn read_limited(
    mut response: reqwest::Response,
    endpoint: Endpoint,
) -> Result<Vec<u8>, OidcError> {
    let status = Some(response.status().as_u16());
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| transport(endpoint, source))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(OidcError::Transport {
                endpoint,
                source: None,
                status,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fiscal_number_prefix_stripped_and_upper_cased() {
        assert_eq!(
            fiscal_code_from(" tinit-rssmra80a01h501u ").ok().as_deref(),
            Some("RSSMRA80A01H501U")
        );
    }

    #[test]
    fn fiscal_number_without_tinit_prefix_is_malformed() {
        for raw in ["RSSMRA80A01H501U", "TINIT-", "TINFR-123", ""] {
            assert!(
                matches!(fiscal_code_from(raw), Err(OidcError::FiscalNumberMalformed)),
                "{raw:?}"
            );
        }
    }

    fn userinfo(claims: serde_json::Value) -> Result<Identity, OidcError> {
        let id_token = IdToken {
            subject: "abc".into(),
            level: AcrLevel::SpidL2,
        };
        serde_json::from_value::<UserinfoClaims>(claims)
            .expect("claims parse")
            .into_identity("https://op.example.it", "cessio", &id_token, 2_000_000_000)
    }

    fn userinfo_claims() -> serde_json::Value {
        serde_json::json!({
            "iss": "https://op.example.it", "aud": "cessio", "sub": "abc",
            "iat": 2_000_000_000, "exp": 2_000_000_300,
            "given_name": "Mario", "family_name": "Rossi",
            jwt::EID_FISCAL_NUMBER: "TINIT-RSSMRA80A01H501U",
        })
    }

    #[test]
    fn userinfo_gives_the_identity() {
        let identity = userinfo(userinfo_claims()).expect("valid claims");
        assert_eq!(identity.fiscal_code, "RSSMRA80A01H501U");
        assert_eq!(identity.given_name.as_deref(), Some("Mario"));
        assert_eq!(identity.level, AcrLevel::SpidL2);
    }

    #[test]
    fn userinfo_refusals_name_the_broken_rule() {
        let cases = [
            (
                "iss",
                serde_json::json!("https://altro.example.it"),
                UserinfoFault::WrongIssuer,
            ),
            (
                "aud",
                serde_json::json!("altro"),
                UserinfoFault::WrongAudience,
            ),
            (
                "sub",
                serde_json::json!("xyz"),
                UserinfoFault::SubjectMismatch,
            ),
            (
                "exp",
                serde_json::json!(1_999_999_000),
                UserinfoFault::Expired,
            ),
        ];
        for (claim, value, fault) in cases {
            let mut claims = userinfo_claims();
            claims[claim] = value;
            let result = userinfo(claims);
            assert!(
                matches!(&result, Err(OidcError::Userinfo(f)) if *f == fault),
                "{claim}: {result:?}"
            );
        }
    }

    #[test]
    fn userinfo_without_fiscal_number_is_refused() {
        let mut claims = userinfo_claims();
        claims
            .as_object_mut()
            .expect("object")
            .remove(jwt::EID_FISCAL_NUMBER);
        assert!(matches!(
            userinfo(claims),
            Err(OidcError::FiscalNumberMissing)
        ));
    }

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn pending_login_secrets_are_32_random_bytes_url_safe() {
        let a = PendingLogin {
            state: random_secret(),
            nonce: random_secret(),
            code_verifier: random_secret(),
        };
        assert_eq!(a.state.len(), 43);
        assert!(
            a.code_verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(a.state, a.nonce);
        assert!(!format!("{a:?}").contains(&a.state));
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(parse_endpoint("http://127.0.0.1:8080/token", "t").is_ok());
        assert!(parse_endpoint("http://localhost/token", "t").is_ok());
        assert!(parse_endpoint("https://id.example.it/token", "t").is_ok());
        assert!(parse_endpoint("http://id.example.it/token", "t").is_err());
    }
}
