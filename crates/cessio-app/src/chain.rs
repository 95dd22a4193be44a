//! SPEC §5 in the app: what a holder may still do with a holding (cedibilità) and whether
//! one cession may go to one cessionario (R-CHAIN, R-BANK-CLIENT, R-ONCE, R-PA,
//! R-ECO-2018), decided by `cessio_core::chain` from a [`RataHistory`] built here.
//!
//! The history is computed from the rata's own ledger history (`Store::history`): the
//! accepted option communication and cessions, with their dates and parties, replayed
//! through `chain::check_cession` / `chain::next_counts` so that each holder gets the counts
//! of the path that brought the rata to it. A cession carries its cedente's path as it
//! stood when the cession was registered, and gives it to the cessionario when accepted.
//! No counter is stored: a rata has a handful of movements, and the replay is the
//! definition. Where a holder received the same rata along more than one path (partial
//! cessions of a non-tracciabile rata), the most restrictive path counts.
//!
//! R-SEIZE is read from the same history: a seizure moves the holder's amount to the
//! rata's `seized` account, its release moves it back (see `operator`).

use std::collections::HashMap;

use cessio_core::catalogue::{CessionRegime, UsageWindow};
use cessio_core::chain::{
    BankClient, Cedibilita, CessionCounts, CessionEffect, Cessionario, ChainError, PartyClass,
    RataHistory, check_cession, next_counts,
};
use cessio_core::f24::F24Choice;
use cessio_core::ledger::{PartyId, Phase, RataId, TransferId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::suspension::Seizure;
use cessio_core::time::{RefYear, rome_date};
use cessio_store::engine::TransferRow;
use cessio_store::paths::{CarriedPath, HoldingPath};
use cessio_store::{OperatorEventQuery, Party, PartyKind, WriterCheck};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{App, AppError};

pub(crate) use cessio_store::BANK_CLIENT_EVENT;

/// The class of a holding's cedibilità, as F1, F2 and the API name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CedibilitaClass {
    /// To anyone.
    Anyone,
    /// To anyone, once; the next holder may only use it in F24 (R-ONCE).
    Once,
    /// To anyone but banks and financial intermediaries (R-ECO-2018).
    AnyoneExceptBanks,
    /// Only to soggetti qualificati (R-CHAIN).
    QualifiedOnly,
    /// Only to the holding bank's own non-consumer current-account clients (R-BANK-CLIENT).
    OwnBankClientsOnly,
    NotCedible,
}

/// A holding's cedibilità with its Italian label and, when not cedible, the rule and reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Cedibilita")]
pub struct CedibilitaView {
    pub class: CedibilitaClass,
    pub label: String,
    /// The rule that makes it not cedible.
    pub rule: Option<String>,
    /// Why it is not cedible, in Italian, with the figures.
    pub reason: Option<String>,
}

impl CedibilitaClass {
    pub fn of(c: &Cedibilita) -> Self {
        match c {
            Cedibilita::Anyone => CedibilitaClass::Anyone,
            Cedibilita::Once => CedibilitaClass::Once,
            Cedibilita::AnyoneExceptBanks => CedibilitaClass::AnyoneExceptBanks,
            Cedibilita::QualifiedOnly => CedibilitaClass::QualifiedOnly,
            Cedibilita::OwnBankClientsOnly => CedibilitaClass::OwnBankClientsOnly,
            Cedibilita::NotCedible(_) => CedibilitaClass::NotCedible,
        }
    }
}

impl CedibilitaClass {
    /// The F1/F4 label of the class: the core's, whatever the reason when not cedible.
    pub fn label(self) -> &'static str {
        match self {
            CedibilitaClass::Anyone => Cedibilita::Anyone.label(),
            CedibilitaClass::Once => Cedibilita::Once.label(),
            CedibilitaClass::AnyoneExceptBanks => Cedibilita::AnyoneExceptBanks.label(),
            CedibilitaClass::QualifiedOnly => Cedibilita::QualifiedOnly.label(),
            CedibilitaClass::OwnBankClientsOnly => Cedibilita::OwnBankClientsOnly.label(),
            CedibilitaClass::NotCedible => cessio_core::chain::NOT_CEDIBLE_LABEL,
        }
    }
}

impl CedibilitaView {
    pub fn of(c: &Cedibilita) -> Self {
        let (rule, reason) = match c {
            Cedibilita::NotCedible(r) => (Some(r.rule().to_string()), Some(r.to_string())),
            _ => (None, None),
        };
        CedibilitaView {
            class: CedibilitaClass::of(c),
            label: c.label().to_string(),
            rule,
            reason,
        }
    }

    pub fn is_cedible(&self) -> bool {
        self.class != CedibilitaClass::NotCedible
    }
}

/// A current-account relationship between a bank and a client, as the operator records it
/// (R-BANK-CLIENT).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "BankClient")]
pub struct BankClientEntry {
    pub bank_cf: String,
    pub client_cf: String,
    pub relation: BankClient,
    pub recorded_at: DateTime<Utc>,
}

pub(crate) fn party_class(kind: PartyKind) -> PartyClass {
    PartyClass::parse(kind.as_str()).unwrap_or(PartyClass::Company)
}

/// One accepted movement that gave the rata to a holder: the option communication or a
/// cession (recorded pending and accepted, or posted at once).
#[derive(Clone, Copy, Debug)]
struct Edge {
    transfer: TransferId,
    /// The movement that accepted it: its answer, or itself when posted at once.
    accepted: TransferId,
    kind: TransferKind,
    from: Option<PartyId>,
    to: PartyId,
    at: DateTime<Utc>,
}

/// What the ledger history of one rata says about its holders.
#[derive(Clone, Debug, Default)]
pub(crate) struct RataLedger {
    edges: Vec<Edge>,
    /// Per holder: seizures (from the `seize` movements).
    seizures: HashMap<PartyId, Vec<Seizure>>,
    /// Registration instants of the rata's cessions (accepted or not, refused ones too:
    /// the velocity rule counts communications).
    pub(crate) cession_instants: Vec<DateTime<Utc>>,
}

/// The path state of one holder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PathState {
    counts: CessionCounts,
    bank_client: bool,
    received_on: Option<NaiveDate>,
}

impl PathState {
    /// What a holding's kept row says (`cessio_store::paths`), when it says all of it
    /// (not marked for the replay).
    pub(crate) fn kept(p: &HoldingPath) -> Option<Self> {
        p.is_complete().then(|| PathState {
            counts: CessionCounts {
                before_cutoff: p.before_cutoff,
                from_cutoff: p.from_cutoff,
            },
            bank_client: p.bank_client,
            received_on: p
                .received_on
                .and_then(cessio_store::summary_days::day_of_number),
        })
    }
}

impl RataLedger {
    pub(crate) fn from_history(rows: &[TransferRow]) -> Self {
        let answered: HashMap<TransferId, (Phase, TransferId)> = rows
            .iter()
            .filter_map(|r| r.pending_id.map(|p| (p, (r.phase, r.id))))
            .collect();
        let mut out = RataLedger::default();
        let mut open: HashMap<PartyId, Vec<(DateTime<Utc>, Cents)>> = HashMap::new();
        for r in rows {
            let at = DateTime::from_timestamp_micros(r.at_micros).unwrap_or_default();
            match (r.kind, r.phase) {
                (TransferKind::Issue | TransferKind::Cession, Phase::Posted | Phase::Pending) => {
                    if r.kind == TransferKind::Cession {
                        out.cession_instants.push(at);
                    }
                    let accepted = match (r.phase, answered.get(&r.id)) {
                        (Phase::Posted, _) => Some(r.id),
                        (_, Some((Phase::PostPending, answer))) => Some(*answer),
                        _ => None,
                    };
                    if let (Some(accepted), Some(to)) = (accepted, r.counterparty) {
                        out.edges.push(Edge {
                            transfer: r.id,
                            accepted,
                            kind: r.kind,
                            from: r.party,
                            to,
                            at,
                        });
                    }
                }
                (TransferKind::Seize, Phase::Posted) => match (r.party, r.counterparty) {
                    // Holder → seized account: a seizure starts.
                    (Some(holder), None) => {
                        open.entry(holder).or_default().push((at, r.amount));
                    }
                    // Seized account → holder: it ends.
                    (None, Some(holder)) => {
                        if let Some(list) = open.get_mut(&holder)
                            && !list.is_empty()
                        {
                            let (from, _) = list.remove(0);
                            out.seizures.entry(holder).or_default().push(Seizure {
                                seized_on: rome_date(from),
                                released_on: Some(rome_date(at)),
                            });
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        for (holder, list) in open {
            for (from, _) in list {
                out.seizures.entry(holder).or_default().push(Seizure {
                    seized_on: rome_date(from),
                    released_on: None,
                });
            }
        }
        out
    }

    /// The seizures of a holder's holding (ended and open).
    pub(crate) fn seizures_of(&self, holder: PartyId) -> &[Seizure] {
        self.seizures.get(&holder).map_or(&[], Vec::as_slice)
    }

    /// Every party that appears in the rata's accepted path, for one registry read.
    pub(crate) fn parties(&self) -> Vec<PartyId> {
        let mut ids: Vec<PartyId> = self
            .edges
            .iter()
            .flat_map(|e| [e.from, Some(e.to)])
            .flatten()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The holders through which the credit came to `holder`, first holder first (the
    /// beneficiary of the option communication before it), `holder` last. Each step goes
    /// back to a movement registered earlier, so a cycle in the history cannot loop.
    pub(crate) fn path_to(&self, holder: PartyId) -> Vec<PartyId> {
        let mut path = vec![holder];
        let mut current = holder;
        let mut before = TransferId::MAX;
        while let Some(e) = self
            .edges
            .iter()
            .rev()
            .find(|e| e.to == current && e.transfer < before)
        {
            match e.from {
                Some(from) => {
                    path.push(from);
                    current = from;
                    before = e.transfer;
                }
                None => break,
            }
            if e.kind == TransferKind::Issue {
                break;
            }
        }
        path.reverse();
        path
    }
}

/// What the rules need about a rata besides its history.
#[derive(Clone, Debug)]
pub(crate) struct RataFacts {
    pub type_key: String,
    pub year: RefYear,
    /// R-ECO-2018: the beneficiary declared the no-tax area in the communication.
    pub beneficiary_no_tax_area: bool,
    pub tracciabile: bool,
    pub split_rata: bool,
    /// The day the option communication was sent, read for art. 122 credits only (whose
    /// use and further cession end with its year, R-F24-WINDOW-122).
    pub communicated_on: Option<NaiveDate>,
    /// The day of the option communication when it was a cessione, read only while a
    /// `once` chain rule is in force (R-ONCE).
    pub option_cessione_on: Option<NaiveDate>,
}

/// A bank-client relation recorded at an instant.
type Relation = (DateTime<Utc>, BankClient);

/// The registry facts a replay needs: classes, and bank-client relations by bank.
#[derive(Clone, Debug, Default)]
pub(crate) struct Registry {
    classes: HashMap<PartyId, PartyClass>,
    /// (bank, client) → relations recorded, oldest first.
    clients: HashMap<(PartyId, PartyId), Vec<Relation>>,
}

impl Registry {
    pub(crate) fn class(&self, p: PartyId) -> PartyClass {
        self.classes.get(&p).copied().unwrap_or(PartyClass::Company)
    }

    /// The relation recorded for (bank, client) as of `at`.
    pub(crate) fn client(&self, bank: PartyId, client: PartyId, at: DateTime<Utc>) -> BankClient {
        self.clients
            .get(&(bank, client))
            .and_then(|list| list.iter().rev().find(|(t, _)| *t <= at))
            .map_or(BankClient::No, |(_, r)| *r)
    }
}

impl App {
    pub(crate) async fn rata_ledger(&self, rata: RataId) -> Result<RataLedger, AppError> {
        Ok(RataLedger::from_history(&self.store.history(rata).await?))
    }

    /// Adds to `reg` the facts of the parties in `ids` it does not know yet, so that a list
    /// of many holdings looks each party up once rather than once per holding.
    pub(crate) async fn extend_registry(
        &self,
        reg: &mut Registry,
        mut ids: Vec<PartyId>,
    ) -> Result<(), AppError> {
        ids.retain(|id| !reg.classes.contains_key(id));
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort_unstable();
        ids.dedup();
        let parties = self.store.parties(&ids).await?;
        for p in &parties {
            reg.classes.insert(p.id, party_class(p.kind));
        }
        for p in parties.iter().filter(|p| p.kind == PartyKind::Bank) {
            for e in self
                .store
                .operator_events(&OperatorEventQuery {
                    kinds: vec![BANK_CLIENT_EVENT.into()],
                    party: Some(p.id),
                    ..OperatorEventQuery::default()
                })
                .await?
            {
                let (Some(bank), Some(client)) = (e.party, e.counterparty) else {
                    continue;
                };
                let relation = e
                    .data
                    .get("relation")
                    .cloned()
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or(BankClient::No);
                reg.clients
                    .entry((bank, client))
                    .or_default()
                    .push((e.at, relation));
            }
        }
        Ok(())
    }

    fn history_base(&self, facts: &RataFacts, holder: PartyClass) -> RataHistory {
        RataHistory {
            type_key: facts.type_key.clone(),
            regime: self.regime_of(&facts.type_key),
            holder,
            counts: CessionCounts::default(),
            received_as_bank_client: false,
            tracciabile: facts.tracciabile,
            f24_choice: F24Choice::NotDeclared,
            split_rata: facts.split_rata,
            received_by_cession_on: None,
            // Set per holder by `holding_history`: it depends on when the holder received
            // the rata (R-F24-WINDOW-122) and on its seizures (R-SEIZE).
            last_day_of_use: None,
            beneficiary_no_tax_area: facts.beneficiary_no_tax_area,
            option_cessione_on: facts.option_cessione_on,
            suspended: false,
            seized: false,
        }
    }

    /// Replays the rata's accepted movements: each holder's counts, bank-client flag and
    /// day of receipt. A cession carries the path of its cedente as it stood when the
    /// cession was registered (what the cedente could see and the rules were checked
    /// against), and gives it to the cessionario when accepted: so a holder's path changes
    /// only when a movement reaches its own holding, which is what lets F1 keep a bank's
    /// cedibilità and recompute only the holdings that moved.
    fn replay_chain(
        &self,
        ledger: &RataLedger,
        facts: &RataFacts,
        reg: &Registry,
    ) -> HashMap<PartyId, PathState> {
        // Registrations and acceptances in the order the ledger recorded them; a movement
        // posted at once is registered, then accepted.
        let mut events: Vec<(TransferId, bool, usize)> = ledger
            .edges
            .iter()
            .enumerate()
            .flat_map(|(i, e)| [(e.transfer, false, i), (e.accepted, true, i)])
            .collect();
        events.sort_unstable();
        let mut carried: Vec<PathState> = vec![PathState::default(); ledger.edges.len()];
        let mut states: HashMap<PartyId, PathState> = HashMap::new();
        for (_, acceptance, i) in events {
            let e = &ledger.edges[i];
            if !acceptance {
                carried[i] = self.carried_path(e, &states, facts, reg);
                continue;
            }
            let next = carried[i];
            let merged = match states.get(&e.to) {
                None => next,
                Some(old) => PathState {
                    counts: CessionCounts {
                        before_cutoff: old.counts.before_cutoff.max(next.counts.before_cutoff),
                        from_cutoff: old.counts.from_cutoff.max(next.counts.from_cutoff),
                    },
                    bank_client: old.bank_client || next.bank_client,
                    received_on: old.received_on.max(next.received_on),
                },
            };
            states.insert(e.to, merged);
        }
        states
    }

    /// The path a movement gives its receiver, from its cedente's path at registration.
    fn carried_path(
        &self,
        e: &Edge,
        states: &HashMap<PartyId, PathState>,
        facts: &RataFacts,
        reg: &Registry,
    ) -> PathState {
        match (e.kind, e.from) {
            (TransferKind::Cession, Some(from)) => {
                let on = rome_date(e.at);
                let s = states.get(&from).copied().unwrap_or_default();
                let history = RataHistory {
                    counts: s.counts,
                    received_as_bank_client: s.bank_client,
                    received_by_cession_on: self.cession_day(facts, s.received_on),
                    ..self.history_base(facts, reg.class(from))
                };
                let to = Cessionario {
                    class: reg.class(e.to),
                    client_of_cedente: reg.client(from, e.to, e.at),
                };
                // A cession the ledger accepted counts; one the rules of its day would
                // not have allowed (registered before they were enforced) counts as an
                // ordinary cession.
                let effect = check_cession(&history, to, on, &self.law).unwrap_or(CessionEffect {
                    counted: true,
                    to_bank_client: false,
                });
                PathState {
                    counts: next_counts(s.counts, effect, on, &self.law),
                    bank_client: effect.to_bank_client,
                    received_on: Some(on),
                }
            }
            _ => PathState::default(),
        }
    }

    /// The cession whose day the §5 rules read for this holder: for art. 122 credits the
    /// beneficiary's (see `f24::first_cession_day`), otherwise the one it received it by.
    fn cession_day(&self, facts: &RataFacts, received_on: Option<NaiveDate>) -> Option<NaiveDate> {
        match (self.usage_window(&facts.type_key), facts.communicated_on) {
            (Some(window), Some(day)) => crate::f24::first_cession_day(window, day, received_on),
            _ => received_on,
        }
    }

    /// The §5 path of `holder`'s holding of a rata, replayed from the rata's history.
    pub(crate) fn replayed_path(
        &self,
        ledger: &RataLedger,
        facts: &RataFacts,
        reg: &Registry,
        holder: PartyId,
    ) -> PathState {
        self.replay_chain(ledger, facts, reg)
            .get(&holder)
            .copied()
            .unwrap_or_default()
    }

    /// The path a cession carries to its cessionario, kept with it (`cessio_store::paths`):
    /// the cedente's counts after this cession by the rules of `on`, and whether it is an
    /// R-BANK-CLIENT cession. What `carried_path` gives the same cession in a replay.
    pub(crate) fn path_carried_by(
        &self,
        cedente: &RataHistory,
        effect: CessionEffect,
        on: NaiveDate,
    ) -> CarriedPath {
        let counts = next_counts(cedente.counts, effect, on, &self.law);
        CarriedPath {
            before_cutoff: counts.before_cutoff,
            from_cutoff: counts.from_cutoff,
            bank_client: effect.to_bank_client,
        }
    }

    /// The §5 history of `holder`'s holding of a rata, on `today`, from its path (kept or
    /// replayed) and its seizures.
    pub(crate) fn holding_history(
        &self,
        s: PathState,
        facts: &RataFacts,
        holder: PartyClass,
        seizures: &[Seizure],
        today: NaiveDate,
    ) -> RataHistory {
        // What expired stays in the holding until the year-end close moves it to the
        // expired account; between the last day of use and that run it is already neither
        // usable nor cedible (R-F24-WINDOW-121). Art. 122 credits close with the year of
        // their cession, which `cedibilita` refuses under R-F24-WINDOW-122.
        let window = self
            .usage_window(&facts.type_key)
            .unwrap_or(UsageWindow::RefYear);
        let last_day_of_use = (window == UsageWindow::RefYear)
            .then(|| {
                cessio_core::f24::last_day_of_use(&cessio_core::f24::HoldingUse {
                    window,
                    ref_year: facts.year,
                    received_by_cession_on: s.received_on,
                    seized_days: cessio_core::suspension::seizure_days(seizures),
                    use_until: self.law.use_deadline(&facts.type_key).map(|d| d.last_day),
                })
            })
            .flatten();
        RataHistory {
            counts: s.counts,
            received_as_bank_client: s.bank_client,
            received_by_cession_on: self.cession_day(facts, s.received_on),
            last_day_of_use,
            seized: cessio_core::suspension::check_not_seized(seizures, today).is_err(),
            ..self.history_base(facts, holder)
        }
    }

    /// R-SEIZE for F5: how many days ended seizures add to the usage deadline of `holder`'s
    /// holding of `rata`, and whether a seizure is open on it today.
    pub async fn seizure_extension(
        &self,
        holder: PartyId,
        rata: RataId,
    ) -> Result<SeizureState, AppError> {
        let ledger = self.rata_ledger(rata).await?;
        let seizures = ledger.seizures_of(holder);
        Ok(SeizureState {
            open: cessio_core::suspension::check_not_seized(seizures, self.today_rome()).is_err(),
            extension_days: cessio_core::suspension::seizure_days(seizures),
        })
    }

    pub(crate) fn today_rome(&self) -> NaiveDate {
        rome_date(self.now())
    }

    /// The usage window of a type (for F5's deadline with the seizure extension).
    pub fn usage_window(&self, type_key: &str) -> Option<UsageWindow> {
        self.catalogue.get(type_key).map(|t| t.usage_window)
    }

    /// §5 for one line of a cession: may `history`'s holder cede to `to` today? A bank's
    /// cession depends on its relation with the cessionario (R-BANK-CLIENT), which the
    /// operator may change before the cession is written: the check comes back with the
    /// relations under which the decision stays the same, for the writer to decide on the
    /// relation it sees. `None` when no relation changes it.
    pub(crate) async fn check_chain(
        &self,
        cedente: PartyId,
        history: &RataHistory,
        to: &Party,
    ) -> Result<(CessionEffect, Option<WriterCheck>), AppError> {
        let client = if history.holder == PartyClass::Bank {
            let mut reg = Registry::default();
            self.extend_registry(&mut reg, vec![cedente]).await?;
            reg.client(cedente, to.id, self.now())
        } else {
            BankClient::No
        };
        let today = self.today_rome();
        let decide = |client_of_cedente| {
            check_cession(
                history,
                Cessionario {
                    class: party_class(to.kind),
                    client_of_cedente,
                },
                today,
                &self.law,
            )
        };
        let effect = decide(client).map_err(chain_error)?;
        if history.holder != PartyClass::Bank {
            return Ok((effect, None));
        }
        let admitted: Vec<BankClient> = BankClient::ALL
            .into_iter()
            .filter(|r| decide(*r).ok() == Some(effect))
            .collect();
        let check = (admitted.len() < BankClient::ALL.len()).then_some(WriterCheck::BankClient {
            bank: cedente,
            client: to.id,
            admitted,
        });
        Ok((effect, check))
    }

    pub(crate) fn regime_of(&self, type_key: &str) -> CessionRegime {
        self.catalogue
            .get(type_key)
            .map_or(CessionRegime::Art121, |t| t.cession_regime)
    }
}

/// R-SEIZE state of one holding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SeizureState {
    /// A seizure is open: the holding may be neither used nor ceded.
    pub open: bool,
    /// Days by which ended seizures extend the usage deadline.
    pub extension_days: u32,
}

/// A §5 refusal as the app reports it, naming the rule and the figures.
pub(crate) fn chain_error(e: ChainError) -> AppError {
    AppError::Rule {
        rule: e.rule(),
        code: e.code(),
        detail: e.to_string(),
    }
}
