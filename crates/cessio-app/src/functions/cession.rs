//! F2 Cessione: the cedible holdings and their §5 states, the CF check, the preview, the cession.

use std::collections::{HashMap, HashSet};

use cessio_core::ledger::{PartyId, RataId, TransferId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::split::is_split_code;
use cessio_store::paths::CarriedPath;
use cessio_store::{AccountRef, Command, StoreError, TransferRequest, WriterCheck};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{StatesContext, check_may_acquire};
use crate::{App, AppError, Principal, fingerprint};

/// A cession's lines' holdings by rata: each with its §5 history and what the holder had
/// received of the rata in all when it was read.
type CedibleMap = HashMap<RataId, (CedibleHolding, cessio_core::chain::RataHistory, Cents)>;

/// F2: a holding the party may cede, with the maximum cedibile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CedibleHolding {
    pub rata: RataId,
    pub credit: i64,
    pub type_key: String,
    pub type_name: String,
    pub year: u16,
    pub codice_tributo: String,
    pub codice_univoco: String,
    pub protocol: String,
    pub tracciabile: bool,
    pub max_cedibile: Cents,
    /// R-PARTIAL: whether a lower amount than the maximum may be ceded.
    pub partial_allowed: bool,
    /// §5: to whom it may be ceded (R-CHAIN, R-BANK-CLIENT, R-ONCE, R-ECO-2018).
    pub cedibilita: crate::CedibilitaView,
}

/// F2 input: one row of a (bulk) cession.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CessionLine {
    pub rata: RataId,
    pub cessionario_cf: String,
    /// Defaults to the maximum cedibile.
    #[serde(default)]
    pub amount: Option<Cents>,
}

/// What F2's CF check shows next to a row (R-CF, R-CF-EXISTS), without revealing whose it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CfCheck {
    pub cf: String,
    pub valid: bool,
    pub registered: bool,
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CessionReceipt {
    pub operation_id: i64,
    pub at: DateTime<Utc>,
    pub transfers: Vec<TransferId>,
    pub amount: Cents,
    pub replayed: bool,
}

impl App {
    /// F2: the holdings the party may cede, each with its maximum cedibile and its
    /// cedibilità (§5); holdings the rules leave not cedible are not listed.
    pub async fn cedible(
        &self,
        p: &Principal,
        party: PartyId,
    ) -> Result<Vec<CedibleHolding>, AppError> {
        let states = self.holding_states(p, party).await?;
        // R-F24-CHOICE: a tracciabile rata chosen for use in F24 is not cedible.
        let chosen = self.f24_chosen(party).await?;
        Ok(states
            .into_iter()
            .filter(|(h, _)| h.cedibilita.is_cedible())
            .filter(|(h, _)| !(h.tracciabile && chosen.contains(&h.rata)))
            .map(|(h, _)| h)
            .collect())
    }

    /// Every holding of the party with an available amount, with its §5 history and
    /// cedibilità today (also the not cedible ones, with the reason).
    pub(crate) async fn holding_states(
        &self,
        p: &Principal,
        party: PartyId,
    ) -> Result<Vec<(CedibleHolding, cessio_core::chain::RataHistory)>, AppError> {
        self.holding_states_of(p, party, None).await
    }

    /// [`Self::holding_states`] for the rate in `only` (all when `None`). A cession needs
    /// the §5 history of its own lines only, and replaying every holding of a bank with
    /// thousands of them would make each cession cost as much as its whole F2 list.
    pub(crate) async fn holding_states_of(
        &self,
        p: &Principal,
        party: PartyId,
        only: Option<&HashSet<RataId>>,
    ) -> Result<Vec<(CedibleHolding, cessio_core::chain::RataHistory)>, AppError> {
        self.authorize_view(p, party).await?;
        // A cession's lines are read by rata rather than as part of everything the party
        // holds.
        let only_rate: Vec<RataId> = only.map_or_else(Vec::new, |o| {
            let mut v: Vec<RataId> = o.iter().copied().collect();
            v.sort_unstable();
            v
        });
        if only.is_some() && only_rate.is_empty() {
            return Ok(Vec::new());
        }
        let holdings = match only {
            Some(_) => self.store.holdings_in(party, &only_rate).await?,
            None => self.store.holdings(party).await?,
        };
        self.states_of_holdings(party, &holdings, &mut StatesContext::default())
            .await
    }

    /// R-CF and R-CF-EXISTS for a form row. Says whether the code is valid and registered;
    /// never whose it is.
    pub async fn check_cf(&self, cf: &str) -> Result<CfCheck, AppError> {
        match self.party_by_cf(cf).await {
            Ok(party) => Ok(CfCheck {
                cf: party.cf.as_str().to_string(),
                valid: true,
                registered: true,
                message: None,
            }),
            Err(e @ AppError::Cf(_)) => Ok(CfCheck {
                cf: cf.to_string(),
                valid: false,
                registered: false,
                message: Some(e.to_string()),
            }),
            Err(e @ AppError::CfUnknown { .. }) => Ok(CfCheck {
                cf: cf.to_string(),
                valid: true,
                registered: false,
                message: Some(e.to_string()),
            }),
            Err(e) => Err(e),
        }
    }

    /// F2: cede one or more holdings, all or none. Needs the PIN unless signed in with SPID,
    /// and the cedente's consent to show its name to the cessionario (`disclose_name`),
    /// without which the cession cannot proceed.
    pub async fn cede(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        lines: &[CessionLine],
        disclose_name: bool,
    ) -> Result<CessionReceipt, AppError> {
        self.authorize_act(p, party).await?;
        let fp = fingerprint("cede", Some(party), &(lines, disclose_name));
        if let Some(r) = self.replay(p, key, &fp).await? {
            return Ok(cession_receipt(r));
        }
        if lines.is_empty() || lines.len() > 1_000 {
            return Err(AppError::invalid("lines", "da 1 a 1.000 righe"));
        }
        if !disclose_name {
            return Err(AppError::name_consent_required());
        }
        self.check_pin(p, pin).await?;
        let cedible = self.cedible_map(p, party, lines).await?;
        let mut seen = std::collections::HashSet::new();
        let mut moves = Vec::with_capacity(lines.len());
        let mut total = Cents::ZERO;
        let cedente = self
            .store
            .party(party)
            .await?
            .ok_or(AppError::NotFound { what: "Soggetto" })?;
        let sent = self.sent_stats(party).await?;
        let mut risks = Vec::with_capacity(lines.len());
        let mut checks = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let (to, amount, check, carried) = self
                .check_cession_line(party, &cedible, &mut seen, line)
                .await
                .map_err(|e| match e {
                    AppError::Invalid { field, reason } => AppError::Invalid {
                        field: format!("lines[{i}].{field}"),
                        reason,
                    },
                    other => other,
                })?;
            total = total.checked_add(amount).unwrap_or(Cents::MAX);
            checks.extend(check);
            if let Some(cessionario) = self.store.party(to).await? {
                let hits = self
                    .risk_of(&cedente, &cessionario, amount, Some(line.rata), sent)
                    .await?;
                risks.push((i, to, hits));
            }
            moves.push(TransferRequest::Move {
                rata: line.rata,
                from: AccountRef::Holder(party),
                to: AccountRef::Holder(to),
                amount,
                kind: TransferKind::Cession,
                pending: true,
                disclose: disclose_name,
                path: Some(carried),
            });
        }
        let mut op = self.operation(p, key, Some(party), Command::Transfer(moves), fp)?;
        op.checks = checks;
        let receipt = self.submit(op).await?;
        // A retry racing its first request can reach the store second and get the first
        // request's receipt back (replayed), computed from what was cedible then.
        debug_assert!(receipt.replayed || receipt.amount == total);
        if !receipt.replayed {
            // F9 risk rules on every communication: hits recorded, suspension if configured.
            for (i, to, hits) in &risks {
                if let Some(t) = receipt.transfers.get(*i) {
                    self.record_risk(p, *t, party, *to, hits).await;
                }
            }
        }
        Ok(cession_receipt(receipt))
    }

    /// The party's holdings of the lines' rate with an available amount, by rata, with
    /// their §5 history.
    async fn cedible_map(
        &self,
        p: &Principal,
        party: PartyId,
        lines: &[CessionLine],
    ) -> Result<CedibleMap, AppError> {
        self.authorize_view(p, party).await?;
        let mut rate: Vec<RataId> = lines.iter().map(|l| l.rata).collect();
        rate.sort_unstable();
        rate.dedup();
        // The accounts are read before the histories: what the writer finds received since
        // (`WriterCheck::HoldingReceived`) is what these histories may miss.
        let holdings = self.store.holdings_in(party, &rate).await?;
        let received: HashMap<RataId, Cents> = holdings
            .iter()
            .map(|a| (a.rata, a.balance.credits_posted))
            .collect();
        Ok(self
            .states_of_holdings(party, &holdings, &mut StatesContext::default())
            .await?
            .into_iter()
            .map(|(h, history)| {
                let got = received.get(&h.rata).copied().unwrap_or(Cents::ZERO);
                (h.rata, (h, history, got))
            })
            .collect())
    }

    /// Why a rata is not among the party's cedible holdings: a rata of a ten-instalment
    /// split is named by its rule (R-SPLIT-NOCEDE); anything else is simply not held.
    async fn why_not_held(&self, party: PartyId, rata: RataId) -> AppError {
        let infos = match self
            .store
            .holding_infos(&cessio_store::HoldingQuery::of_rata(party, rata))
            .await
        {
            Ok(infos) => infos,
            Err(e) => return e.into(),
        };
        let held = infos.iter().find(|i| i.rata.id == rata);
        if held.is_some_and(|i| {
            i.account.balance.debits_pending.is_positive()
                && !i
                    .account
                    .balance
                    .available()
                    .unwrap_or(Cents::ZERO)
                    .is_positive()
        }) {
            return AppError::Rule {
                rule: "R-PENDING-OUT",
                code: "r_pending_out",
                detail: "La rata è già impegnata in una cessione in attesa di risposta o in un F24 prenotato: si potrà cedere di nuovo solo se la cessione sarà rifiutata o l'F24 scartato (R-PENDING-OUT)".into(),
            };
        }
        let split = held.is_some_and(|i| is_split_code(&self.catalogue, &i.rata.codice_tributo));
        if split {
            return AppError::Rule {
                rule: "R-SPLIT-NOCEDE",
                code: "r_split_nocede",
                detail: "Le rate dell'ulteriore rateazione (codici 7771, 7772, 7773) non si possono cedere: si usano solo in F24 (R-SPLIT-NOCEDE)".into(),
            };
        }
        AppError::invalid(
            "rata",
            "rata non detenuta o non disponibile per questo soggetto",
        )
    }

    /// The rules one line of a cession must pass (R-CF-EXISTS, R-PA, §5: R-CHAIN,
    /// R-BANK-CLIENT, R-ONCE, R-ECO-2018; R-PARTIAL, the amount available), shared by
    /// `cede` and its preview. Returns the cessionario, the amount and the checks the
    /// writer repeats on the state it writes on (§5's history, R-BANK-CLIENT).
    async fn check_cession_line(
        &self,
        party: PartyId,
        cedible: &CedibleMap,
        seen: &mut std::collections::HashSet<RataId>,
        line: &CessionLine,
    ) -> Result<(PartyId, Cents, Vec<WriterCheck>, CarriedPath), AppError> {
        if !seen.insert(line.rata) {
            return Err(AppError::invalid(
                "rata",
                "la stessa rata compare due volte",
            ));
        }
        let Some((holding, history, received)) = cedible.get(&line.rata) else {
            return Err(self.why_not_held(party, line.rata).await);
        };
        let to = self.party_by_cf(&line.cessionario_cf).await?;
        if to.id == party {
            return Err(AppError::invalid(
                "cessionario_cf",
                "il cessionario deve essere diverso dal cedente",
            ));
        }
        check_may_acquire(&to)?;
        let (effect, relation) = self.check_chain(party, history, &to).await?;
        let carried = self.path_carried_by(history, effect, self.today_rome());
        let checks = [
            Some(WriterCheck::HoldingReceived {
                rata: line.rata,
                party,
                received: *received,
            }),
            relation,
        ];
        let amount = match line.amount {
            Some(a) => a.ensure_positive_amount()?,
            None => holding.max_cedibile,
        };
        if !holding.partial_allowed && amount != holding.max_cedibile {
            return Err(AppError::r_partial(amount, holding.max_cedibile));
        }
        if amount > holding.max_cedibile {
            return Err(AppError::Store(StoreError::Ledger(
                cessio_core::ledger::LedgerError::InsufficientAvailable {
                    account: 0,
                    requested: amount,
                    available: holding.max_cedibile,
                },
            )));
        }
        Ok((
            to.id,
            amount,
            checks.into_iter().flatten().collect(),
            carried,
        ))
    }

    /// F2's summary before confirming: each line checked as `cede` would check it now,
    /// without the PIN and without changing anything. `None` for a line that passes.
    pub async fn preview_cession(
        &self,
        p: &Principal,
        party: PartyId,
        lines: &[CessionLine],
    ) -> Result<Vec<Option<AppError>>, AppError> {
        self.authorize_act(p, party).await?;
        if lines.is_empty() || lines.len() > 1_000 {
            return Err(AppError::invalid("lines", "da 1 a 1.000 righe"));
        }
        let cedible = self.cedible_map(p, party, lines).await?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(lines.len());
        for line in lines {
            out.push(
                self.check_cession_line(party, &cedible, &mut seen, line)
                    .await
                    .err(),
            );
        }
        Ok(out)
    }
}

fn cession_receipt(r: cessio_store::Receipt) -> CessionReceipt {
    CessionReceipt {
        operation_id: r.operation_id,
        at: r.at,
        transfers: r.transfers,
        amount: r.amount,
        replayed: r.replayed,
    }
}
