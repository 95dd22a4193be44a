//! Strong login through OpenID Connect, the way SPID and CIE gateways offer it.
//!
//! Two halves:
//! - [`client`]: the relying party. Authorization-code flow with PKCE (S256), ID tokens
//!   signed RS256 or ES256 and checked against the issuer's JWKS, the codice fiscale read
//!   from the eID claim. It owns no session storage: [`client::PendingLogin`] is handed to
//!   the caller, who keeps it (for example in its session cookie) until the callback.
//! - [`provider`]: a small OpenID provider of our own, over real HTTP, for tests and for
//!   `cessio serve --demo`. It signs with a key made at start and serves a plain HTML page
//!   with one button per test identity.
//!
//! Architecture invariant: this crate knows nothing of Cessio's domain or store. The web
//! layer turns an [`client::Identity`] into a user; the fiscal code comes out normalised but
//! not validated, so that `cessio-core`'s parser stays the only judge of R-CF.
//!
//! Architecture invariant: no secret (client secret, code, token, verifier) ever appears in
//! an error's `Display` or in a `Debug` output.

pub mod client;
mod error;
mod jwt;
pub mod provider;

pub use client::{Identity, OidcClient, PendingLogin};
pub use error::{Endpoint, OidcError};
pub use provider::{DevIdentity, DevProvider, ProviderError, RegisteredClient, RunningProvider};
