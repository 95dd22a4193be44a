//! Strong login through OpenID Connect, as the SPID and CIE id OpenID Connect rules have it.
//!
//! Two halves:
//! - [`client`]: the relying party. Authorization-code flow with PKCE (S256), the request
//!   as a request object signed by the RP's key ([`RpKey`]), `acr_values` with the SPID
//!   levels, client authentication by `private_key_jwt`, ID tokens signed RS256 or ES256
//!   and checked against the issuer's JWKS (with `acr` and `at_hash`), and the codice
//!   fiscale read from the signed UserInfo response, encrypted to the RP's second key
//!   (JWE, `jwe.rs`) when the provider encrypts it. It owns no session storage:
//!   [`client::PendingLogin`] is handed to the caller, who keeps it until the callback.
//! - [`provider`]: a small OpenID provider of our own, over real HTTP, for tests and for
//!   `cessio serve --demo`, speaking the same profile: it checks the RP's signatures
//!   against the RP's JWKS, enforces PKCE, returns `acr` and serves UserInfo as a signed
//!   JWT, encrypted to the RP's `enc` key when it publishes one. It signs with a key made at start and serves a plain HTML page with one button
//!   per test identity.
//!
//! Architecture invariant: this crate knows nothing of Cessio's domain or store. The web
//! layer turns an [`client::Identity`] into a user; the fiscal code comes out normalised but
//! not validated, so that `cessio-core`'s parser stays the only judge of R-CF.
//!
//! Architecture invariant: no secret (private key, code, token, verifier) ever appears in
//! an error's `Display` or in a `Debug` output.

mod acr;
pub mod client;
mod error;
mod jwe;
mod jwt;
pub mod provider;
mod rp_key;

pub use acr::AcrLevel;
pub use client::{IdToken, Identity, OidcClient, PendingLogin, RelyingParty};
pub use error::{Endpoint, OidcError, UserinfoFault};
pub use provider::{
    ClientKeys, DevIdentity, DevProvider, ProviderError, RegisteredClient, RunningProvider,
};
pub use rp_key::{KeyError, RpKey};
