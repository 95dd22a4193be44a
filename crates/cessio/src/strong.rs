//! Strong login (SPID/CIE through OpenID Connect) for `cessio serve`: a configured issuer,
//! or, for the demo, the project's own test provider started beside the server.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use cessio_oidc::{DevIdentity, DevProvider, OidcClient, RegisteredClient, RunningProvider};
use cessio_web::ui::StrongLogin;

/// Where the identity provider is and who Cessio is to it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StrongArgs {
    /// OpenID Connect issuer of the SPID/CIE gateway (enables "Entra con SPID o CIE").
    #[arg(long, env = "CESSIO_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    #[arg(long, env = "CESSIO_OIDC_CLIENT_ID", default_value = "cessio")]
    pub oidc_client_id: String,
    #[arg(long, env = "CESSIO_OIDC_CLIENT_SECRET", default_value = "")]
    pub oidc_client_secret: String,
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
    let (issuer, secret, provider, label) = match (&args.oidc_issuer, demo) {
        (Some(issuer), _) => (
            issuer.clone(),
            args.oidc_client_secret.clone(),
            None,
            "Entra con SPID o CIE",
        ),
        (None, true) => {
            let secret = format!("demo-{}", std::process::id());
            let provider = DevProvider::start(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                vec![RegisteredClient {
                    client_id: args.oidc_client_id.clone(),
                    client_secret: secret.clone(),
                    redirect_uris: vec![redirect.clone()],
                }],
                demo_identities(),
            )
            .await
            .context("starting the test identity provider")?;
            (
                provider.issuer.clone(),
                secret,
                Some(provider),
                "Entra con SPID o CIE (provider di prova)",
            )
        }
        (None, false) => return Ok(None),
    };
    let client = OidcClient::discover(&issuer, args.oidc_client_id.clone(), secret, redirect)
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
