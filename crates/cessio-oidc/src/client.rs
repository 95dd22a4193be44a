//! The relying party: discovery, the authorize URL, the code exchange and the ID token.
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

use crate::error::{Endpoint, OidcError};
use crate::jwt::{self, Expected, IdClaims, Jwks, Unverified};

/// The whole exchange with the provider must fit in this; a user is waiting.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bodies larger than this are not a provider's metadata, keys or tokens.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Longest `error` code kept from a provider's refusal; longer ones are not RFC 6749's.
const MAX_ERROR_CODE_LEN: usize = 64;
/// Random bytes in `state`, `nonce` and the PKCE verifier (RFC 7636 asks for 32).
const SECRET_BYTES: usize = 32;
/// `openid` for the ID token, `profile` for the names.
const SCOPE: &str = "openid profile";

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
    /// Upper case, `TINIT-` prefix removed; not checked against R-CF here.
    pub fiscal_code: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub name: Option<String>,
}

impl From<IdClaims> for Identity {
    fn from(claims: IdClaims) -> Self {
        let fiscal_code = claims
            .eid_fiscal_number
            .or(claims.fiscal_number)
            .and_then(|raw| normalise_fiscal_number(&raw));
        Identity {
            subject: claims.sub,
            fiscal_code,
            given_name: claims.given_name,
            family_name: claims.family_name,
            name: claims.name,
        }
    }
}

/// `TINIT-RSSMRA80A01H501U` → `RSSMRA80A01H501U`. Other `TIN<country>-` prefixes are
/// kept: a foreign tax number is not a codice fiscale, and the caller's parser should say so.
fn normalise_fiscal_number(raw: &str) -> Option<String> {
    let upper = raw.trim().to_uppercase();
    let code = upper.strip_prefix("TINIT-").unwrap_or(&upper);
    (!code.is_empty()).then(|| code.to_owned())
}

/// The part of the discovery document we use.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A client secret that never prints.
#[derive(Clone)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A relying party registered with one OpenID provider.
#[derive(Debug)]
pub struct OidcClient {
    http: reqwest::Client,
    issuer: String,
    client_id: String,
    client_secret: Secret,
    redirect_uri: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    jwks_uri: Url,
    jwks: RwLock<Arc<Jwks>>,
}

impl OidcClient {
    /// Reads the provider's configuration and keys. Call once at start-up.
    pub async fn discover(
        issuer: &str,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        redirect_uri: impl Into<String>,
    ) -> Result<OidcClient, OidcError> {
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
        let jwks_uri = parse_endpoint(&metadata.jwks_uri, "jwks_uri")?;
        let jwks = fetch_jwks(&http, &jwks_uri).await?;
        Ok(OidcClient {
            http,
            issuer: metadata.issuer,
            client_id: client_id.into(),
            client_secret: Secret(client_secret.into()),
            redirect_uri: redirect_uri.into(),
            authorization_endpoint: parse_endpoint(
                &metadata.authorization_endpoint,
                "authorization_endpoint",
            )?,
            token_endpoint: parse_endpoint(&metadata.token_endpoint, "token_endpoint")?,
            jwks_uri,
            jwks: RwLock::new(Arc::new(jwks)),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The URL to send the browser to, and what to keep until it comes back.
    pub fn begin(&self) -> (String, PendingLogin) {
        let pending = PendingLogin {
            state: random_secret(),
            nonce: random_secret(),
            code_verifier: random_secret(),
        };
        let challenge = pkce_challenge(&pending.code_verifier);
        // SPID and CIE release attributes on request only; asking in `claims` (OpenID
        // Connect Core §5.5) is how their OpenID Connect profile requests the fiscal number.
        let claims = serde_json::json!({
            "id_token": { jwt::EID_FISCAL_NUMBER: { "essential": true } },
            "userinfo": {
                jwt::EID_FISCAL_NUMBER: { "essential": true },
                "given_name": null,
                "family_name": null,
            },
        });
        let mut url = self.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", SCOPE)
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("claims", &claims.to_string());
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
        let id_token = self.exchange_code(code, &pending.code_verifier).await?;
        self.verify_id_token(&id_token, &pending.nonce, now).await
    }

    /// Checks an ID token from this provider and reads the identity in it.
    pub async fn verify_id_token(
        &self,
        id_token: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Identity, OidcError> {
        let expected = Expected {
            issuer: &self.issuer,
            client_id: &self.client_id,
            nonce,
            now,
        };
        let cached = Arc::clone(&self.jwks.read().unwrap_or_else(PoisonError::into_inner));
        match Unverified::parse(id_token)?.verify(&cached, &expected) {
            // The provider may have rotated its keys since we fetched them. One refetch per
            // token is enough and cannot be abused: the token came over TLS from the token
            // endpoint in exchange for our secret, not from the browser.
            Err(OidcError::UnknownKey { kid }) => {
                tracing::info!(
                    ?kid,
                    "ID token signed with an unknown key; fetching the JWKS again"
                );
                let fresh = Arc::new(fetch_jwks(&self.http, &self.jwks_uri).await?);
                *self.jwks.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&fresh);
                Unverified::parse(id_token)?.verify(&fresh, &expected)
            }
            other => other,
        }
        .map(Identity::from)
    }

    async fn exchange_code(&self, code: &str, code_verifier: &str) -> Result<String, OidcError> {
        // RFC 6749 §2.3.1: both halves are form-encoded before going into Basic.
        let user: String = form_urlencoded::byte_serialize(self.client_id.as_bytes()).collect();
        let password: String =
            form_urlencoded::byte_serialize(self.client_secret.0.as_bytes()).collect();
        let response = self
            .http
            .post(self.token_endpoint.clone())
            .basic_auth(user, Some(password))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
                ("code_verifier", code_verifier),
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
        tokens
            .id_token
            .ok_or_else(|| OidcError::TokenResponse("id_token mancante".into()))
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
            normalise_fiscal_number(" tinit-rssmra80a01h501u ").as_deref(),
            Some("RSSMRA80A01H501U")
        );
        assert_eq!(
            normalise_fiscal_number("RSSMRA80A01H501U").as_deref(),
            Some("RSSMRA80A01H501U")
        );
        assert_eq!(normalise_fiscal_number("TINIT-"), None);
        assert_eq!(
            normalise_fiscal_number("TINFR-123").as_deref(),
            Some("TINFR-123")
        );
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
