//! Webhooks: a party's events pushed to an address it registered, signed with a secret
//! of the subscription's own, delivered at least once. The events are those of the feed
//! (`events.rs`), from the cursor each subscription keeps, so a webhook and a reader of
//! the feed are told the same things in the same order.
//!
//! Who may act for a party (its users and delegates "disposizione") subscribes and ends a
//! subscription; who may see the party's movements sees its subscriptions and where each
//! delivery stands: failures in a row, the last status and error, the next attempt. A
//! subscription delivers only while the user who made it may still see the party: when a
//! delegation ends, so do the delegate's subscriptions, at their next delivery. The
//! deliverer (the web layer's, which speaks HTTP) asks the app what is due and records
//! each outcome here, on a clock of its own: retries and leases are timing, not facts of
//! the register.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use cessio_core::ledger::PartyId;
use cessio_store::webhooks::{Delivery, MAX_PER_PARTY, NewWebhook, Webhook};

use crate::{App, AppError, EventPage, Principal};

/// The longest address accepted.
pub const URL_MAX_CHARS: usize = 2_000;
/// Events in one delivery, at most.
pub const EVENTS_PER_DELIVERY: usize = 100;
/// The longest wait between retries of a failing address.
pub const BACKOFF_MAX: Duration = Duration::from_secs(3_600);
/// How often an address with nothing to deliver is looked at again.
pub const IDLE_POLL: Duration = Duration::from_secs(2);

/// A subscription as its party sees it: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Webhook")]
pub struct WebhookView {
    pub id: i64,
    pub url: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The events cursor the next delivery starts after (as `GET …/events?after=`).
    pub after: String,
    /// Events delivered in all.
    pub delivered: i64,
    /// Failed deliveries since the last that succeeded; the same events are sent again.
    pub failures: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub last_delivered_at: Option<DateTime<Utc>>,
}

impl From<Webhook> for WebhookView {
    fn from(h: Webhook) -> Self {
        WebhookView {
            id: h.id,
            url: h.url,
            created_at: h.created_at,
            created_by: h.created_by,
            revoked_at: h.revoked_at,
            after: h.cursor,
            delivered: h.delivered,
            failures: h.failures,
            next_attempt_at: h.next_attempt_at,
            last_attempt_at: h.last_attempt_at,
            last_status: h.last_status,
            last_error: h.last_error,
            last_delivered_at: h.last_delivered_at,
        }
    }
}

/// A new subscription, with the secret its deliveries are signed with: shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookCreated {
    pub webhook: WebhookView,
    /// The key of the deliveries' signatures: shown only now.
    pub secret: String,
}

/// An address deliveries may go to: HTTPS, or plain HTTP to this machine (a receiver
/// behind a local proxy, a test). No credentials in it, no spaces.
fn check_url(url: &str) -> Result<String, AppError> {
    let url = url.trim();
    let invalid = |reason: &str| AppError::invalid("url", reason);
    if url.chars().count() > URL_MAX_CHARS {
        return Err(invalid("l'indirizzo supera i 2.000 caratteri"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("l'indirizzo non può contenere spazi"));
    }
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if !matches!(name, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(invalid(
                "serve un indirizzo https:// (http:// solo verso questa macchina)",
            ));
        }
        rest
    } else {
        return Err(invalid("serve un indirizzo https://"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err(invalid(
            "l'indirizzo deve nominare un host, senza credenziali",
        ));
    }
    Ok(url.to_string())
}

/// The wait before retrying an address that failed `failures` times in a row: doubling
/// from one second, at most [`BACKOFF_MAX`].
pub fn backoff(failures: u32) -> Duration {
    let secs = 1u64.checked_shl(failures.min(20)).unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(BACKOFF_MAX)
}

fn after(at: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    at + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
}

impl App {
    /// Subscribes `url` to the party's events from now on.
    pub async fn subscribe_webhook(
        &self,
        p: &Principal,
        party: PartyId,
        url: &str,
    ) -> Result<WebhookCreated, AppError> {
        self.authorize_act(p, party).await?;
        let url = check_url(url)?;
        let cursor = self.events_end_cursor(party).await?;
        let mut bytes = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        let secret = format!("whsec_{}", cessio_core::ledger::hash_to_hex(&bytes));
        let id = self
            .store
            .create_webhook(NewWebhook {
                party,
                user: p.user_id,
                url,
                secret: secret.clone(),
                created_by: p.actor(),
                at: self.now(),
                cursor,
            })
            .await?
            .ok_or_else(|| AppError::Conflict {
                reason: format!(
                    "il soggetto ha già {MAX_PER_PARTY} indirizzi attivi: revocarne uno prima di aggiungerne un altro"
                ),
            })?;
        let webhook = self
            .store
            .webhooks_of(party)
            .await?
            .into_iter()
            .find(|h| h.id == id)
            .map(WebhookView::from)
            .ok_or(AppError::NotFound { what: "Webhook" })?;
        Ok(WebhookCreated { webhook, secret })
    }

    /// The party's subscriptions and where each delivery stands.
    pub async fn webhooks(
        &self,
        p: &Principal,
        party: PartyId,
    ) -> Result<Vec<WebhookView>, AppError> {
        self.authorize_view(p, party).await?;
        Ok(self
            .store
            .webhooks_of(party)
            .await?
            .into_iter()
            .map(WebhookView::from)
            .collect())
    }

    /// Ends a subscription: nothing more is delivered to it.
    pub async fn revoke_webhook(
        &self,
        p: &Principal,
        party: PartyId,
        id: i64,
    ) -> Result<(), AppError> {
        self.authorize_act(p, party).await?;
        if self.store.revoke_webhook(party, id, self.now()).await? {
            Ok(())
        } else {
            Err(AppError::NotFound { what: "Webhook" })
        }
    }

    /// For the deliverer: the subscriptions due by `now`, leased to it for `lease`.
    pub async fn due_webhooks(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Webhook>, AppError> {
        Ok(self
            .store
            .claim_due_webhooks(now, after(now, lease), limit)
            .await?)
    }

    /// For the deliverer: the events a subscription's next delivery carries; `None` when
    /// the user who subscribed may no longer see the party (its delegation ended, say):
    /// the subscription is ended then, and nothing more is sent to it.
    pub async fn webhook_events(
        &self,
        hook: &Webhook,
        now: DateTime<Utc>,
    ) -> Result<Option<EventPage>, AppError> {
        let subscriber = self.store.user(hook.user).await?;
        let allowed = match subscriber {
            Some(u) => {
                let p = Principal::from_user(&u, crate::LoginMethod::Token);
                match self.authorize_view(&p, hook.party).await {
                    Ok(()) => true,
                    Err(AppError::Forbidden { .. }) => false,
                    Err(e) => return Err(e),
                }
            }
            None => false,
        };
        if !allowed {
            tracing::info!(
                webhook = hook.id,
                "webhook ended: its subscriber may no longer see the party"
            );
            self.store.revoke_webhook(hook.party, hook.id, now).await?;
            return Ok(None);
        }
        self.events_for_delivery(hook.party, &hook.cursor, EVENTS_PER_DELIVERY)
            .await
            .map(Some)
    }

    /// For the deliverer: how a delivery went, and when the subscription is due again.
    pub async fn webhook_attempted(
        &self,
        hook: &Webhook,
        now: DateTime<Utc>,
        outcome: Attempt,
    ) -> Result<(), AppError> {
        let delivery = match outcome {
            Attempt::Delivered {
                after: cursor,
                events,
                status,
            } => Delivery::Delivered {
                cursor,
                events,
                status,
                // More may be waiting behind a full delivery: due again at once.
                next_attempt_at: now,
            },
            Attempt::Nothing => Delivery::Idle {
                next_attempt_at: after(now, IDLE_POLL),
            },
            Attempt::Failed { status, error } => Delivery::Failed {
                status,
                error: error.chars().take(500).collect(),
                next_attempt_at: after(now, backoff(hook.failures)),
            },
        };
        Ok(self.store.record_delivery(hook.id, now, &delivery).await?)
    }
}

/// What the deliverer did with a subscription that was due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver took the events (a 2xx); `after` is the page's cursor.
    Delivered {
        after: String,
        events: i64,
        status: u16,
    },
    /// There was nothing to deliver.
    Nothing,
    Failed {
        status: Option<u16>,
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_https_or_this_machine() {
        for ok in [
            "https://banca.example/cessio",
            "https://banca.example:8443/h?x=1",
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://banca.example/hook",
            "ftp://banca.example",
            "https://",
            "https://user:pw@banca.example/",
            "https://banca.example/a b",
            "banca.example",
            "http://127.0.0.1.evil.example/",
        ] {
            let code = check_url(bad).err().map(|e| e.code());
            assert_eq!(code, Some("invalid"), "{bad}");
        }
        let long = format!("https://banca.example/{}", "a".repeat(URL_MAX_CHARS));
        assert!(check_url(&long).is_err());
    }

    #[test]
    fn retries_double_from_a_second_up_to_an_hour() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(32));
        assert_eq!(backoff(12), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }
}
