//! Delegations (SPEC §2): a titolare lets an intermediary (its tax adviser, a "studio")
//! work for it, from the app and with the PIN, as the operator can for anyone.
//!
//! - **Scope**: `consultazione` lets the delegate see the party's credits and lists;
//!   `disposizione` also lets it cede, answer, communicate, use in F24, split (R-DELEGA-SCOPE,
//!   checked by [`App::authorize_act`]).
//! - **End date**: an optional last day, inclusive, as a date in Rome; from the next day the
//!   delegation grants nothing (R-DELEGA-END), by the app's clock, with no job to run.
//! - **Who**: only the titolare of the party (a user whose own party it is) or the operator
//!   grants and revokes; a delegate cannot pass its delegation on.
//! - **Audit**: each grant and revocation is an operation under an idempotency key, and the
//!   store records it with an entry of the operator's register in the same transaction;
//!   delegation rows are closed, never deleted, so the titolare's list shows the past ones.

use cessio_core::law::it_date;
use cessio_core::ledger::PartyId;
use cessio_store::{
    Command, Delegation, DelegationChange, DelegationScope, IdempotencyKey, Party, Role, User,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{App, AppError, Principal, fingerprint};

/// At most this many delegations of one party are listed (newest first): a family has a
/// few, a company a few dozen over the years.
pub const DELEGATIONS_LISTED: usize = 500;

/// Where a delegation stands today.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DelegationState {
    Active,
    /// Past its last day.
    Expired,
    Revoked,
}

/// One delegation as its titolare (or the operator) sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "GrantedDelegation")]
pub struct DelegationView {
    pub id: i64,
    pub delegate_username: String,
    pub delegate_name: String,
    pub party_cf: String,
    pub scope: DelegationScope,
    /// Last day it holds, inclusive; `None`: until revoked.
    pub until: Option<NaiveDate>,
    pub state: DelegationState,
    pub granted_at: DateTime<Utc>,
    /// The username that granted it (`None` for delegations older than this record).
    pub granted_by: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

/// A party the user holds a live delegation for, as the intermediary sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HeldDelegation {
    pub party: Party,
    pub scope: DelegationScope,
    pub until: Option<NaiveDate>,
    pub granted_at: DateTime<Utc>,
}

/// What a grant or a revocation recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DelegationReceipt {
    pub operation_id: i64,
    pub at: DateTime<Utc>,
    pub replayed: bool,
    pub party_cf: String,
    pub delegate_username: String,
    /// The scope granted; `None` for a revocation.
    pub scope: Option<DelegationScope>,
    pub until: Option<NaiveDate>,
}

impl DelegationReceipt {
    /// A grant's or revocation's receipt, first time or replayed alike.
    fn recorded(
        r: cessio_store::Receipt,
        grantor: &Party,
        delegate_username: &str,
        scope: Option<DelegationScope>,
        until: Option<NaiveDate>,
    ) -> Self {
        DelegationReceipt {
            operation_id: r.operation_id,
            at: r.at,
            replayed: r.replayed,
            party_cf: grantor.cf.as_str().to_string(),
            delegate_username: delegate_username.trim().to_string(),
            scope,
            until,
        }
    }
}

/// Whether a change asks for the PIN.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pin<'a> {
    /// The titolare's (or the operator's) dispositive request: the PIN gate of SPEC §2.
    Check(Option<&'a str>),
    /// The operator's registry forms, which delegated without a PIN before titolari could
    /// and keep doing so: the operator is already an audited, strongly vetted role.
    OperatorForm,
}

/// "username#id" as the history records actors, shown as the username.
fn actor_name(actor: Option<&str>) -> Option<String> {
    actor.map(|a| a.rsplit_once('#').map_or(a, |(name, _)| name).to_string())
}

impl App {
    /// The delegation of `party` to the user that grants something today, if any.
    pub(crate) async fn live_delegation(
        &self,
        p: &Principal,
        party: PartyId,
    ) -> Result<Option<Delegation>, AppError> {
        let today = self.today_rome();
        Ok(self
            .store
            .delegations(p.user_id)
            .await?
            .into_iter()
            .find(|d| d.party == party && d.live_on(today)))
    }

    /// The party whose delegations are granted, revoked or listed.
    async fn grantor(&self, party: PartyId) -> Result<Party, AppError> {
        self.store
            .party(party)
            .await?
            .ok_or(AppError::NotFound { what: "Soggetto" })
    }

    /// Only the titolare of the party, or the operator, grants and revokes. A delegate is
    /// told so; anyone else gets the refusal of a party it may not see (no probing).
    async fn authorize_titolare(&self, p: &Principal, party: PartyId) -> Result<(), AppError> {
        if p.is_operator() || (p.role == Role::User && p.party == Some(party)) {
            return Ok(());
        }
        self.authorize_view(p, party).await?;
        Err(AppError::forbidden(
            "solo il titolare del soggetto concede e revoca le deleghe",
        ))
    }

    async fn delegate_user(&self, party: &Party, username: &str) -> Result<User, AppError> {
        let username = username.trim();
        if username.is_empty() || username.len() > 64 {
            return Err(AppError::invalid(
                "username",
                "indicare il nome utente dell'intermediario",
            ));
        }
        let user = self
            .store
            .user_by_name(username)
            .await?
            .ok_or(AppError::NotFound { what: "Utente" })?;
        if user.role == Role::Operator {
            return Err(AppError::invalid(
                "username",
                "l'operatore dell'Agenzia consulta già ogni soggetto: non si delega",
            ));
        }
        if user.party == Some(party.id) {
            return Err(AppError::invalid(
                "username",
                "è un'utenza del soggetto stesso: non serve una delega",
            ));
        }
        Ok(user)
    }

    /// Records a change under the caller's key; a retry of the same request replays it.
    async fn submit_delegation(
        &self,
        p: &Principal,
        key: &IdempotencyKey,
        party: PartyId,
        change: DelegationChange,
        fp: String,
    ) -> Result<cessio_store::Receipt, AppError> {
        let op =
            self.operation_with_key(p, key.clone(), Some(party), Command::Delegation(change), fp)?;
        self.submit(op).await
    }

    /// The titolare (or the operator) delegates `delegate_username` for `party`, with a
    /// scope and an optional last day (inclusive, Rome). Needs the PIN unless signed in
    /// with SPID/CIE. A live delegation of the same intermediary is replaced, so that
    /// changing the scope or the end date is a new grant.
    #[expect(clippy::too_many_arguments, reason = "mirrors the titolare's form")]
    pub async fn grant_delegation(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        delegate_username: &str,
        scope: DelegationScope,
        until: Option<NaiveDate>,
    ) -> Result<DelegationReceipt, AppError> {
        let change = (party, delegate_username, scope, until);
        self.grant(p, key, Pin::Check(pin), change).await
    }

    pub(crate) async fn grant(
        &self,
        p: &Principal,
        key: &str,
        pin: Pin<'_>,
        (party, delegate_username, scope, until): (
            PartyId,
            &str,
            DelegationScope,
            Option<NaiveDate>,
        ),
    ) -> Result<DelegationReceipt, AppError> {
        self.authorize_titolare(p, party).await?;
        let k = crate::scoped_key(p, key)?;
        let fp = fingerprint(
            "grant_delegation",
            Some(party),
            &(delegate_username.trim(), scope, until),
        );
        let grantor = self.grantor(party).await?;
        let receipt =
            |r| DelegationReceipt::recorded(r, &grantor, delegate_username, Some(scope), until);
        if let Some(r) = self.replay_key(&k, &fp).await? {
            return Ok(receipt(r));
        }
        let user = self.delegate_user(&grantor, delegate_username).await?;
        if let Some(last) = until
            && last < self.today_rome()
        {
            return Err(AppError::Rule {
                rule: "R-DELEGA-END",
                code: "delegation_until_past",
                detail: format!(
                    "La data di fine della delega ({}) è già passata: indicare oggi o un giorno successivo, oppure nessuna data",
                    it_date(last)
                ),
            });
        }
        if let Pin::Check(pin) = pin {
            self.check_pin(p, pin).await?;
        }
        let change = DelegationChange::Grant {
            user: user.id,
            party,
            scope,
            until,
        };
        let r = self.submit_delegation(p, &k, party, change, fp).await?;
        Ok(receipt(r))
    }

    /// The titolare (or the operator) revokes the live delegation of `party` to
    /// `delegate_username`, with the PIN unless signed in with SPID/CIE. It takes effect at
    /// once: every check reads the delegations fresh.
    pub async fn revoke_delegation_by_titolare(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        delegate_username: &str,
    ) -> Result<DelegationReceipt, AppError> {
        self.revoke(p, key, Pin::Check(pin), party, delegate_username)
            .await
    }

    pub(crate) async fn revoke(
        &self,
        p: &Principal,
        key: &str,
        pin: Pin<'_>,
        party: PartyId,
        delegate_username: &str,
    ) -> Result<DelegationReceipt, AppError> {
        self.authorize_titolare(p, party).await?;
        let k = crate::scoped_key(p, key)?;
        let fp = fingerprint("revoke_delegation", Some(party), &delegate_username.trim());
        let grantor = self.grantor(party).await?;
        let receipt = |r| DelegationReceipt::recorded(r, &grantor, delegate_username, None, None);
        if let Some(r) = self.replay_key(&k, &fp).await? {
            return Ok(receipt(r));
        }
        let user = self.delegate_user(&grantor, delegate_username).await?;
        // An expired delegation may still be revoked: it closes the record.
        let open = self.store.delegations(user.id).await?;
        if !open.iter().any(|d| d.party == party) {
            return Err(AppError::NotFound {
                what: "Delega attiva",
            });
        }
        if let Pin::Check(pin) = pin {
            self.check_pin(p, pin).await?;
        }
        let change = DelegationChange::Revoke {
            user: user.id,
            party,
        };
        let r = self.submit_delegation(p, &k, party, change, fp).await?;
        Ok(receipt(r))
    }

    /// The delegations `party` granted, active and past, newest first, with scope, end
    /// date, who granted or revoked and when. For its titolare and the operator.
    pub async fn delegations_granted(
        &self,
        p: &Principal,
        party: PartyId,
    ) -> Result<Vec<DelegationView>, AppError> {
        self.authorize_titolare(p, party).await?;
        let grantor = self.grantor(party).await?;
        let rows = self
            .store
            .party_delegations(party, DELEGATIONS_LISTED)
            .await?;
        let today = self.today_rome();
        let mut users: std::collections::HashMap<i64, Option<User>> =
            std::collections::HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for d in rows {
            if let std::collections::hash_map::Entry::Vacant(slot) = users.entry(d.user) {
                slot.insert(self.store.user(d.user).await?);
            }
            let user = users.get(&d.user).and_then(Option::as_ref);
            let state = if d.revoked_at.is_some() {
                DelegationState::Revoked
            } else if d.live_on(today) {
                DelegationState::Active
            } else {
                DelegationState::Expired
            };
            out.push(DelegationView {
                id: d.id,
                delegate_username: user.map(|u| u.username.clone()).unwrap_or_default(),
                delegate_name: user.map(|u| u.display_name.clone()).unwrap_or_default(),
                party_cf: grantor.cf.as_str().to_string(),
                scope: d.scope,
                until: d.until,
                state,
                granted_at: d.granted_at,
                granted_by: actor_name(d.granted_by.as_deref()),
                revoked_at: d.revoked_at,
                revoked_by: actor_name(d.revoked_by.as_deref()),
            });
        }
        Ok(out)
    }

    /// The parties the user holds a live delegation for, with scope and end date, by
    /// name: what an intermediary chooses from.
    pub async fn delegations_held(&self, p: &Principal) -> Result<Vec<HeldDelegation>, AppError> {
        let today = self.today_rome();
        let live: Vec<Delegation> = self
            .store
            .delegations(p.user_id)
            .await?
            .into_iter()
            .filter(|d| d.live_on(today))
            .collect();
        let ids: Vec<PartyId> = live.iter().map(|d| d.party).collect();
        let parties = self.store.parties(&ids).await?;
        let mut out: Vec<HeldDelegation> = live
            .into_iter()
            .filter_map(|d| {
                let party = parties.iter().find(|x| x.id == d.party)?.clone();
                Some(HeldDelegation {
                    party,
                    scope: d.scope,
                    until: d.until,
                    granted_at: d.granted_at,
                })
            })
            .collect();
        out.sort_by(|a, b| a.party.name.cmp(&b.party.name));
        Ok(out)
    }
}
