//! Why a login did not succeed.
//!
//! `Display` is Italian text a user may read: it names the step that failed and never
//! carries a secret or a token. Details for operators (the provider's own description, the
//! transport error) sit in the fields and in `source()`.

use crate::acr::AcrLevel;

/// A step of the flow that talks to the provider over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/.well-known/openid-configuration`.
    Discovery,
    /// The key set (`jwks_uri`).
    Jwks,
    /// The token endpoint.
    Token,
    /// The UserInfo endpoint.
    Userinfo,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Endpoint::Discovery => "configurazione del provider",
            Endpoint::Jwks => "chiavi di firma del provider",
            Endpoint::Token => "scambio del codice di autorizzazione",
            Endpoint::Userinfo => "attributi dell'utente",
        })
    }
}

/// Everything that can stop a login, each with the rule it broke.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// The provider could not be reached, or answered with something that is not JSON.
    #[error(
        "Il provider di identità non risponde correttamente ({endpoint}). Riprovare più tardi."
    )]
    Transport {
        endpoint: Endpoint,
        #[source]
        source: Option<reqwest::Error>,
        /// HTTP status when there was one.
        status: Option<u16>,
    },
    /// The configuration document is missing a field or has an unusable URL.
    #[error("La configurazione del provider di identità non è valida: {0}.")]
    Discovery(String),
    /// The configuration document names another issuer than the one configured.
    #[error("Il provider di identità si presenta con un identificativo diverso da quello atteso.")]
    IssuerMismatch { expected: String, found: String },
    /// The key set has no key this crate can use.
    #[error("Le chiavi di firma del provider di identità non sono utilizzabili.")]
    Jwks(String),
    /// The `state` returned on the redirect is not the one this login sent.
    #[error(
        "La risposta del provider non corrisponde a questo tentativo di accesso. Ripetere l'accesso."
    )]
    StateMismatch,
    /// The provider sent the user back with an error instead of a code (`access_denied`
    /// when the user cancelled).
    #[error("{}", authorization_refused_text(.error))]
    AuthorizationRefused { error: String },
    /// The token endpoint refused the code; `error` is its RFC 6749 code.
    #[error(
        "Il provider di identità ha rifiutato il codice di accesso ({error}). Ripetere l'accesso."
    )]
    TokenRefused {
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// The token response lacks an ID token or is not an OpenID Connect answer.
    #[error("La risposta del provider di identità non contiene un'identità valida.")]
    TokenResponse(String),
    /// The ID token is not a well-formed signed JWT.
    #[error("Il token di identità non è leggibile.")]
    MalformedToken(&'static str),
    /// The token is signed with an algorithm we refuse (`none`, HS*, ...).
    #[error("Il token di identità usa un algoritmo di firma non ammesso ({0}).")]
    UnsupportedAlgorithm(String),
    /// No key in the provider's key set matches the token, even after fetching it again.
    #[error("Il token di identità è firmato con una chiave sconosciuta.")]
    UnknownKey { kid: Option<String> },
    /// The signature does not verify.
    #[error("La firma del token di identità non è valida.")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("Il token di identità è stato emesso da un altro provider.")]
    WrongIssuer,
    /// `aud` does not contain our client id, or `azp` names someone else.
    #[error("Il token di identità è destinato a un altro servizio.")]
    WrongAudience,
    /// `exp` has passed (beyond the leeway).
    #[error("Il token di identità è scaduto. Ripetere l'accesso.")]
    Expired { exp: i64, now: i64 },
    /// `iat` is in the future (beyond the leeway): clocks are apart or the token is forged.
    #[error(
        "Il token di identità ha una data di emissione futura: controllare l'orologio del server."
    )]
    IssuedInFuture { iat: i64, now: i64 },
    /// The token's `nonce` is not the one this login sent: a replayed or injected token.
    #[error(
        "Il token di identità non appartiene a questo tentativo di accesso. Ripetere l'accesso."
    )]
    WrongNonce,
    /// `at_hash` is missing or does not match the access token it came with.
    #[error("Il token di identità non corrisponde al token di accesso ricevuto con esso.")]
    AccessTokenMismatch,
    /// The provider authenticated the person at a lower level than asked (or names none).
    #[error(
        "L'identità digitale è stata verificata a un livello di sicurezza inferiore a quello richiesto ({requested}). Ripetere l'accesso con SPID di {requested} o con CIE."
    )]
    AcrTooLow {
        requested: AcrLevel,
        returned: Option<String>,
    },
    /// The UserInfo response cannot be trusted.
    #[error("Gli attributi dell'utente inviati dal provider di identità non sono validi: {0}.")]
    Userinfo(UserinfoFault),
    /// UserInfo carries no `https://attributes.eid.gov.it/fiscal_number`.
    #[error("Il provider di identità non ha comunicato il codice fiscale.")]
    FiscalNumberMissing,
    /// The fiscal number is not `TINIT-` followed by a code.
    #[error(
        "Il codice fiscale comunicato dal provider di identità non è nel formato TINIT-<codice fiscale>."
    )]
    FiscalNumberMalformed,
}

/// Why a UserInfo response was refused; each says what the rules require of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserinfoFault {
    /// Not a compact JWS, nor a JWE holding one.
    NotSignedJwt,
    /// Encrypted (JWE), but the relying party has no encryption key configured.
    NoEncryptionKey,
    /// Encrypted with an algorithm the rules do not name (RSA-OAEP or RSA-OAEP-256, then
    /// A128CBC-HS256 or A256CBC-HS512), or compressed.
    UnsupportedEncryption,
    /// Encrypted to another key, or altered: it does not open.
    Undecryptable,
    /// The signature does not verify with the provider's keys.
    BadSignature,
    /// Signed with a key the provider does not publish, even after fetching its keys again.
    UnknownKey,
    /// `iss` is not the provider.
    WrongIssuer,
    /// `aud` does not name this client.
    WrongAudience,
    /// `sub` differs from the ID token's: the attributes of someone else.
    SubjectMismatch,
    /// `exp` is missing or has passed.
    Expired,
}

impl std::fmt::Display for UserinfoFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UserinfoFault::NotSignedJwt => "non sono un JWT firmato",
            UserinfoFault::NoEncryptionKey => {
                "sono cifrati, ma il servizio non ha una chiave di cifratura configurata (--oidc-client-enc-key)"
            }
            UserinfoFault::UnsupportedEncryption => {
                "sono cifrati con un algoritmo che le regole SPID/CIE non prevedono"
            }
            UserinfoFault::Undecryptable => {
                "sono cifrati per un'altra chiave o sono stati alterati"
            }
            UserinfoFault::BadSignature => "la firma non è valida",
            UserinfoFault::UnknownKey => "sono firmati con una chiave sconosciuta",
            UserinfoFault::WrongIssuer => "sono stati emessi da un altro provider",
            UserinfoFault::WrongAudience => "sono destinati a un altro servizio",
            UserinfoFault::SubjectMismatch => {
                "riguardano una persona diversa da quella autenticata"
            }
            UserinfoFault::Expired => "sono scaduti",
        })
    }
}

fn authorization_refused_text(error: &str) -> &'static str {
    match error {
        "access_denied" => "Accesso annullato.",
        "login_required" | "interaction_required" | "consent_required" => {
            "Il provider di identità richiede di completare l'accesso. Ripetere l'accesso."
        }
        _ => "Il provider di identità non ha concesso l'accesso.",
    }
}
