//! Strong login (SPID/CIE through OpenID Connect) for `cessio serve`: a configured issuer,
//! or, for the demo, the project's own test provider started beside the server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use cessio_oidc::{
    AcrLevel, ClientKeys, DevIdentity, DevProvider, OidcClient, RegisteredClient, RelyingParty,
    RpKey, RunningProvider,
};
use cessio_web::ui::StrongLogin;

/// Where the identity provider is and who Cessio is to it.
#[derive(clap::Args, Debug, Clone)]
pub struct StrongArgs {
    /// OpenID Connect issuer of the SPID/CIE gateway (enables "Entra con SPID o CIE").
    #[arg(long, env = "CESSIO_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The client_id registered with the provider (for SPID/CIE, the RP's HTTPS identifier).
    #[arg(long, env = "CESSIO_OIDC_CLIENT_ID", default_value = "cessio")]
    pub oidc_client_id: String,
    /// The relying party's RSA private key (PEM, PKCS#8 or PKCS#1, 2048 to 4096 bits): it
    /// signs the request objects and the client assertions (private_key_jwt); its public
    /// half is served at /oidc/jwks.json. Required with --oidc-issuer; the demo makes one.
    #[arg(long, env = "CESSIO_OIDC_CLIENT_KEY")]
    pub oidc_client_key: Option<PathBuf>,
    /// A second RSA private key (PEM), not the signing one, that the provider encrypts the
    /// UserInfo response to (JWE, as SPID/CIE require); its public half is served at
    /// /oidc/jwks.json with use "enc". Without it, a provider that encrypts is refused.
    #[arg(long, env = "CESSIO_OIDC_CLIENT_ENC_KEY")]
    pub oidc_client_enc_key: Option<PathBuf>,
    /// The lowest SPID level accepted, asked for in acr_values: 1, 2 or 3 (CIE uses the
    /// same levels).
    #[arg(long, env = "CESSIO_OIDC_ACR", default_value = "2")]
    pub oidc_acr: AcrLevel,
    /// The address users reach Cessio at (for the login's return address); defaults to
    /// the listening address.
    #[arg(long, env = "CESSIO_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// The demo's people with a digital identity: Mario Rossi has a user in the demo
/// register; the second person has none, to show how that is refused.
fn demo_identities() -> Vec<DevIdentity> {
    vec![
        DevIdentity {
            fiscal_code: "RSSMRA45C12F205C".into(),
            given_name: "Mario".into(),
            family_name: "Rossi".into(),
        },
        DevIdentity {
            fiscal_code: "VRDGNN80A41H501U".into(),
            given_name: "Giovanna".into(),
            family_name: "Verdi".into(),
        },
    ]
}

/// The strong login to offer, if any, and the test provider to keep running with it.
pub async fn configure(
    args: &StrongArgs,
    listening: SocketAddr,
    demo: bool,
) -> Result<Option<(Arc<StrongLogin>, Option<RunningProvider>)>> {
    let public = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{listening}"));
    let redirect = format!("{}/accesso/spid/ritorno", public.trim_end_matches('/'));
    let (issuer, key, provider, label) = match (&args.oidc_issuer, demo) {
        (Some(issuer), _) => {
            let Some(path) = &args.oidc_client_key else {
                bail!(
                    "--oidc-issuer needs --oidc-client-key PATH: the relying party's RSA private key (PEM), which SPID/CIE require for private_key_jwt and the signed request object"
                );
            };
            (
                issuer.clone(),
                read_keys(path, args.oidc_client_enc_key.as_deref())?,
                None,
                "Entra con SPID o CIE",
            )
        }
        (None, true) => {
            let key = match &args.oidc_client_key {
                Some(path) => read_keys(path, args.oidc_client_enc_key.as_deref())?,
                None => RpKey::generate(),
            };
            // The test provider reads the RP's keys where a real one would: at the URL the
            // RP publishes them.
            let jwks_uri = format!("{}/oidc/jwks.json", public.trim_end_matches('/'));
            let provider = DevProvider::start(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                vec![RegisteredClient {
                    client_id: args.oidc_client_id.clone(),
                    keys: ClientKeys::JwksUri(jwks_uri),
                    redirect_uris: vec![redirect.clone()],
                }],
                demo_identities(),
            )
            .await
            .context("starting the test identity provider")?;
            (
                provider.issuer.clone(),
                key,
                Some(provider),
                "Entra con SPID o CIE (provider di prova)",
            )
        }
        (None, false) => return Ok(None),
    };
    let rp = RelyingParty {
        client_id: args.oidc_client_id.clone(),
        key,
        redirect_uri: redirect,
        acr: args.oidc_acr,
    };
    let client = OidcClient::discover(&issuer, rp)
        .await
        .with_context(|| format!("reading the configuration of the identity provider {issuer}"))?;
    Ok(Some((
        Arc::new(StrongLogin {
            client,
            label: label.into(),
        }),
        provider,
    )))
}

/// The relying party's key files; each way one can be wrong is said with its path.
fn read_keys(signing: &Path, encryption: Option<&Path>) -> Result<RpKey> {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .with_context(|| format!("reading the OpenID client key {}", path.display()))
    };
    let key = RpKey::from_pem(&read(signing)?)
        .with_context(|| format!("the OpenID client key {}", signing.display()))?;
    match encryption {
        Some(path) => key
            .with_encryption_pem(&read(path)?)
            .with_context(|| format!("the OpenID client encryption key {}", path.display())),
        None => {
            tracing::warn!(
                "no --oidc-client-enc-key: the relying party publishes no encryption key, and a provider that encrypts UserInfo, as SPID/CIE require, will be refused"
            );
            Ok(key)
        }
    }
}
