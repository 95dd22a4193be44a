//! The webhook deliverer: posts each due subscription's next events to its address,
//! signed, and records how it went (`cessio_app::webhooks` decides what is due and when
//! to retry). Every process serving the register runs one; the store's leases keep two
//! from posting the same events at once.
//!
//! A delivery is `POST` of `{"webhook", "events", "after"}` as JSON, with:
//! - `Cessio-Signature: t=<unix seconds>,v1=<hex>`, the HMAC-SHA256 of `"<t>.<body>"` under
//!   the subscription's secret: the receiver recomputes it and refuses a body that was
//!   changed or a `t` too old (a replay);
//! - `Cessio-Delivery`, the same for every attempt of the same events, and each event's own
//!   stable `id`: delivery is at least once, so a receiver acts on an id once.
//!
//! A 2xx moves the subscription past the events; anything else (or no answer within
//! [`TIMEOUT`]) is retried after a wait that doubles, and the subscriber sees the failures,
//! the last status and error in `GET …/webhooks`. Redirects are not followed: the address
//! registered is the one that receives.

use std::sync::Arc;
use std::time::Duration;

use cessio_app::{App, Attempt, EventPage};
use cessio_core::time::Clock;
use cessio_store::webhooks::Webhook;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// How long a receiver has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a deliverer holds the subscriptions it claimed: longer than a delivery takes.
const LEASE: Duration = Duration::from_secs(60);
/// Subscriptions handled per round.
const PER_ROUND: usize = 32;
/// The pause between rounds.
const ROUND: Duration = Duration::from_millis(500);

/// The signature header's value for a body sent at `t` (unix seconds).
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let v1 = cessio_core::ledger::hash_to_hex(&mac.finalize().into_bytes());
    format!("t={t},v1={v1}")
}

#[derive(Clone, Debug)]
pub struct Deliverer {
    app: App,
    client: reqwest::Client,
    /// Timing of attempts and retries: the wall clock in service, a fixed one in tests.
    clock: Arc<dyn Clock>,
}

impl Deliverer {
    pub fn new(app: App, clock: Arc<dyn Clock>) -> Result<Deliverer, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Cessio-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Deliverer { app, client, clock })
    }

    /// One round: one delivery to each subscription due now. Returns how many were due.
    pub async fn deliver_due(&self) -> Result<usize, cessio_app::AppError> {
        let due = self
            .app
            .due_webhooks(self.clock.now(), LEASE, PER_ROUND)
            .await?;
        let attempts = due.iter().map(|hook| self.deliver(hook));
        for (hook, result) in due
            .iter()
            .zip(futures_util::future::join_all(attempts).await)
        {
            if let Err(e) = result {
                tracing::warn!(webhook = hook.id, error = %e, "webhook delivery not recorded");
            }
        }
        Ok(due.len())
    }

    /// Rounds until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.deliver_due().await {
                tracing::warn!(error = %e, "webhook round failed");
            }
            tokio::select! {
                () = tokio::time::sleep(ROUND) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    async fn deliver(&self, hook: &Webhook) -> Result<(), cessio_app::AppError> {
        let Some(page) = self.app.webhook_events(hook, self.clock.now()).await? else {
            // Ended: its subscriber may no longer see the party.
            return Ok(());
        };
        let attempt = if page.events.is_empty() {
            Attempt::Nothing
        } else {
            self.post(hook, &page).await
        };
        if let Attempt::Failed { status, error } = &attempt {
            tracing::info!(webhook = hook.id, status = ?status, error = %error, "webhook delivery failed");
        }
        self.app
            .webhook_attempted(hook, self.clock.now(), attempt)
            .await
    }

    async fn post(&self, hook: &Webhook, page: &EventPage) -> Attempt {
        let body = serde_json::json!({
            "webhook": hook.id,
            "events": page.events,
            "after": page.after,
        });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let t = self.clock.now().timestamp();
        // The same events are the same delivery, however many attempts it takes.
        let delivery = cessio_core::ledger::hash_to_hex(&Sha256::digest(format!(
            "{}:{}",
            hook.id, hook.cursor
        )));
        let sent = self
            .client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("cessio-webhook", hook.id.to_string())
            .header("cessio-delivery", &delivery[..32])
            .header("cessio-signature", signature(&hook.secret, t, &body))
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Attempt::Delivered {
                after: page.after.clone(),
                events: i64::try_from(page.events.len()).unwrap_or(i64::MAX),
                status: r.status().as_u16(),
            },
            Ok(r) => Attempt::Failed {
                status: Some(r.status().as_u16()),
                error: format!("il ricevente ha risposto {}", r.status()),
            },
            Err(e) => Attempt::Failed {
                status: None,
                error: if e.is_timeout() {
                    format!("nessuna risposta entro {} secondi", TIMEOUT.as_secs())
                } else if e.is_connect() {
                    "connessione non riuscita".to_string()
                } else {
                    "invio non riuscito".to_string()
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_time_and_body() {
        // As a receiver computes it, e.g. Python's
        // hmac.new(b"whsec_x", b"1700000000.{}", hashlib.sha256).hexdigest().
        let s = signature("whsec_x", 1_700_000_000, b"{}");
        assert_eq!(
            s,
            "t=1700000000,v1=be8cb8325f2202445260a855532f967e30ad2a9394ce28da66ee02880ddcb661"
        );
        assert_ne!(s, signature("whsec_y", 1_700_000_000, b"{}"));
        assert_ne!(s, signature("whsec_x", 1_700_000_001, b"{}"));
        assert_ne!(s, signature("whsec_x", 1_700_000_000, b"{ }"));
    }
}
