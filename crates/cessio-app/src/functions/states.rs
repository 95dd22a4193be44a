//! The §5 state of a party's holdings, as F1's first look, F2's list and a cession's lines
//! need it: per holding with an available amount and a §5 path, its codes, its credit's
//! facts and its cedibilità today.
//!
//! A holding's path is read from its kept row (`cessio_store::paths`, written by the writer
//! in the batch that registered, accepted or seized). The rata's history is read and
//! replayed (`chain::replay_chain`, the definition) only for the holdings whose row sends
//! them there: seized (the seizures' days move the last day of use) or reached by a
//! cession without a recorded path (registered before paths were kept). A holding without
//! a row received the rata by neither an option nor a cession (a split's rate, under
//! R-SPLIT-NOCEDE): it has no path and is not listed. The test
//! `r_chain_kept_paths_equal_the_replay_after_every_kind_of_movement` holds the kept rows
//! to the replay.

use std::collections::HashMap;

use cessio_core::catalogue::{CessionRegime, UsageWindow};
use cessio_core::chain::RataHistory;
use cessio_core::ledger::{Account, AccountId, PartyId, RataId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::rules;
use cessio_core::split::is_split_code;
use cessio_store::engine::TransferRow;

use super::CedibleHolding;
use crate::chain::{PathState, RataFacts, RataLedger, Registry};
use crate::{App, AppError};

/// What a list of holdings' §5 states reads once per request: the registry of the parties
/// along the paths, and the party's F24 choices.
#[derive(Debug, Default)]
pub(crate) struct StatesContext {
    registry: Registry,
    choices: Option<HashMap<RataId, cessio_core::f24::F24Choice>>,
    /// Every path replayed from its history, the kept rows unread: what the kept paths
    /// are tested against.
    pub(crate) replay: bool,
}

/// The party received the rata by this movement: an option communication or a cession
/// to it, registered (answered or not). A split's rate reach their holder otherwise: they
/// have no §5 path of their own and are never cedible (R-SPLIT-NOCEDE).
fn received_by_option_or_cession(party: PartyId, r: &TransferRow) -> bool {
    matches!(r.kind, TransferKind::Issue | TransferKind::Cession)
        && matches!(
            r.phase,
            cessio_core::ledger::Phase::Posted | cessio_core::ledger::Phase::Pending
        )
        && r.counterparty == Some(party)
}

/// One holding of a batch with a §5 path: its rata, its available amount, and its path
/// when the kept row says all of it (`None`: replayed from the history).
type WithPath = (RataId, Cents, Option<PathState>);

impl App {
    /// The §5 states of `holdings`, accounts of `party`. The caller has authorised the
    /// view. `ctx` carries what is read once per request (the registry of the parties in
    /// the replayed paths, the party's F24 choices) across calls: F1 goes through a bank's
    /// holdings in chunks, so that memory holds one chunk, not all of them.
    ///
    /// Per batch of holdings: their kept paths, then the rate with their credits by
    /// primary key, and the histories of the few holdings sent to the replay.
    pub(crate) async fn states_of_holdings(
        &self,
        party: PartyId,
        holdings: &[Account],
        ctx: &mut StatesContext,
    ) -> Result<Vec<(CedibleHolding, RataHistory)>, AppError> {
        let today = self.today();
        let once_in_force = self.law.chain_on(today).is_some_and(|r| r.once);
        // Each holding's F24 choice (R-F24-CHOICE) feeds its cedibilità.
        if ctx.choices.is_none() {
            ctx.choices = Some(
                self.store
                    .f24_choices(party)
                    .await?
                    .into_iter()
                    .map(|c| (c.rata, c.choice))
                    .collect(),
            );
        }
        let choices = ctx.choices.take().unwrap_or_default();
        let candidates: Vec<(AccountId, RataId, Cents)> = holdings
            .iter()
            .filter_map(|h| {
                let available = h.balance.available().unwrap_or(Cents::ZERO);
                available.is_positive().then_some((h.id, h.rata, available))
            })
            .collect();
        let mut out = Vec::with_capacity(candidates.len());
        self.extend_registry(&mut ctx.registry, vec![party]).await?;
        let holder = ctx.registry.class(party);
        // In batches: a round trip per batch rather than per holding, and memory bounded
        // by a batch.
        for batch in candidates.chunks(1_000) {
            let (with_path, ledgers) = self.paths_of(party, batch, ctx).await?;
            let rate: Vec<RataId> = with_path.iter().map(|(rata, ..)| *rata).collect();
            let facts: HashMap<RataId, (cessio_store::Rata, cessio_store::Credit)> = self
                .store
                .rate_with_credits(&rate)
                .await?
                .into_iter()
                .map(|(r, c)| (r.id, (r, c)))
                .collect();
            for (rata, available, kept) in &with_path {
                let Some((r, credit)) = facts.get(rata) else {
                    continue;
                };
                // Only the 2018 ecobonus regime asks what the beneficiary declared, only
                // art. 122 credits when the option was communicated, and art. 121 credits
                // how it was made only while DL 4/2022's one cession is in force (R-ONCE).
                let regime = self.regime(&credit.type_key);
                let eco2018 = regime == CessionRegime::Eco2018;
                let art122 =
                    self.usage_window(&credit.type_key) == Some(UsageWindow::YearOfCession);
                let once = regime == CessionRegime::Art121 && once_in_force;
                let facts = RataFacts {
                    type_key: credit.type_key.clone(),
                    year: r.year,
                    beneficiary_no_tax_area: eco2018 && credit.beneficiary_no_tax_area,
                    tracciabile: credit.tracciabile,
                    split_rata: is_split_code(&self.catalogue, &r.codice_tributo),
                    communicated_on: (eco2018 || art122 || once).then_some(credit.communicated_on),
                    option_cessione_on: (once
                        && credit.origin == cessio_store::CreditOrigin::Cessione)
                        .then_some(credit.communicated_on),
                };
                let (path, seizures) = match (kept, ledgers.get(rata)) {
                    (Some(path), _) => (*path, &[][..]),
                    (None, Some(ledger)) => (
                        self.replayed_path(ledger, &facts, &ctx.registry, party),
                        ledger.seizures_of(party),
                    ),
                    (None, None) => continue,
                };
                let mut history = self.holding_history(path, &facts, holder, seizures, today);
                if let Some(choice) = choices.get(rata) {
                    history.f24_choice = *choice;
                }
                let cedibilita = cessio_core::chain::cedibilita(&history, today, &self.law);
                out.push((
                    CedibleHolding {
                        rata: *rata,
                        credit: credit.id,
                        type_key: credit.type_key.clone(),
                        type_name: self.type_name(&credit.type_key),
                        year: r.year.get(),
                        codice_tributo: r.codice_tributo.clone(),
                        codice_univoco: r.codice_univoco.clone(),
                        protocol: credit.protocol.clone(),
                        tracciabile: credit.tracciabile,
                        max_cedibile: *available,
                        partial_allowed: rules::partial_cession_allowed(credit.tracciabile, regime),
                        cedibilita: crate::CedibilitaView::of(&cedibilita),
                    },
                    history,
                ));
            }
        }
        ctx.choices = Some(choices);
        Ok(out)
    }

    /// The holdings of a batch that have a §5 path, each with its kept path when the row
    /// says all of it; the others' histories, replayed, by rata (with the parties along
    /// their paths added to `ctx`'s registry).
    async fn paths_of(
        &self,
        party: PartyId,
        batch: &[(AccountId, RataId, Cents)],
        ctx: &mut StatesContext,
    ) -> Result<(Vec<WithPath>, HashMap<RataId, RataLedger>), AppError> {
        let kept: HashMap<AccountId, cessio_store::paths::HoldingPath> = if ctx.replay {
            HashMap::new()
        } else {
            let accounts: Vec<AccountId> = batch.iter().map(|(a, ..)| *a).collect();
            self.store
                .holding_paths(&accounts)
                .await?
                .into_iter()
                .collect()
        };
        let mut with_path: Vec<WithPath> = Vec::with_capacity(batch.len());
        let mut replay: Vec<RataId> = Vec::new();
        for &(account, rata, available) in batch {
            let path = match (ctx.replay, kept.get(&account)) {
                (true, _) => None,
                (false, Some(row)) => PathState::kept(row),
                // No row: received by neither an option nor a cession.
                (false, None) => continue,
            };
            if path.is_none() {
                replay.push(rata);
            }
            with_path.push((rata, available, path));
        }
        let mut histories: HashMap<RataId, Vec<TransferRow>> = HashMap::new();
        if !replay.is_empty() {
            for row in self.store.histories(&replay).await? {
                histories.entry(row.rata).or_default().push(row);
            }
        }
        let ledgers: HashMap<RataId, RataLedger> = replay
            .iter()
            .filter_map(|rata| {
                let history = histories.get(rata).map_or(&[][..], Vec::as_slice);
                history
                    .iter()
                    .any(|r| received_by_option_or_cession(party, r))
                    .then(|| (*rata, RataLedger::from_history(history)))
            })
            .collect();
        with_path.retain(|(rata, _, path)| path.is_some() || ledgers.contains_key(rata));
        let ids: Vec<PartyId> = ledgers.values().flat_map(RataLedger::parties).collect();
        self.extend_registry(&mut ctx.registry, ids).await?;
        Ok((with_path, ledgers))
    }
}

/// A party's holdings, each with its §5 state.
#[cfg(feature = "testing")]
type HoldingStates = Vec<(CedibleHolding, RataHistory)>;

#[cfg(feature = "testing")]
impl App {
    /// Each of `party`'s holdings with its §5 state, from the kept paths and replayed from
    /// the histories, in that order: what the kept paths are tested against.
    pub async fn holding_states_kept_and_replayed(
        &self,
        party: PartyId,
    ) -> Result<(HoldingStates, HoldingStates), AppError> {
        let holdings = self.store.holdings(party).await?;
        let kept = self
            .states_of_holdings(party, &holdings, &mut StatesContext::default())
            .await?;
        let mut replay = StatesContext {
            replay: true,
            ..StatesContext::default()
        };
        let replayed = self
            .states_of_holdings(party, &holdings, &mut replay)
            .await?;
        Ok((kept, replayed))
    }
}
