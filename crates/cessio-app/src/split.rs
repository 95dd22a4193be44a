//! F6 Ulteriore rateazione (art. 9 c.4 DL 176/2022; seed S4): the holder replaces the
//! residual of a rata, or a part of it, with ten annual rate (codes 7771/7772/7773), and may
//! annul the split while its rate are untouched.
//!
//! The rules are core's (`cessio_core::split`); this module finds the holding they look at,
//! turns a planned split into the store's `Command::Split` (holder → the rata's split
//! account, and a new credit whose rate are issued to the holder, recording `split_of`),
//! and an annulment into one transfer operation (each split rata holder → its split
//! account, the original rata's split account → holder).
//!
//! Zero-amount rate: the store refuses a rata of zero (R-CONSERVE: credit exists only as a
//! positive amount). A split of less than ten cents therefore creates only the rate with a
//! non-zero amount (a 1-cent split creates one rata of 1 cent, in the year after the
//! original's), while the recap still shows the ten rows of R-SPLIT-CENTS, zeros included.

use cessio_core::ledger::{AccountKind, PartyId, RataId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::split::{self, SplitError, SplitRata, SplitRataState};
use cessio_store::{
    AccountRef, Command, Credit, HoldingInfo, HoldingQuery, NewCredit, Receipt, TransferRequest,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::f24::law;
use crate::{App, AppError, Principal, fingerprint};

/// A refusal of core's F6 rules, naming the rule.
pub(crate) fn split_error(e: &SplitError) -> AppError {
    AppError::Rule {
        rule: e.rule(),
        code: e.code(),
        detail: e.to_string(),
    }
}

/// F6 recap shown before confirming: the rata split and the ten rate that replace the amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SplitPreview {
    pub rata: RataId,
    pub type_key: String,
    pub codice_tributo: String,
    pub year: u16,
    /// What the holder has available on the rata before the split.
    pub residual: Cents,
    pub amount: Cents,
    /// Always ten rows (R-SPLIT-CENTS), the remainder cents on the first; rows of zero are
    /// shown but not created.
    pub rate: Vec<SplitRecapRow>,
}

/// One row of the F6 recap: year, amount, last day of use, codice tributo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SplitRecapRow {
    pub year: u16,
    pub amount: Cents,
    pub last_day_of_use: NaiveDate,
    pub codice_tributo: String,
}

impl From<SplitRata> for SplitRecapRow {
    fn from(r: SplitRata) -> Self {
        SplitRecapRow {
            year: r.year.get(),
            amount: r.amount,
            last_day_of_use: r.last_day_of_use,
            codice_tributo: r.codice_tributo,
        }
    }
}

/// One rata a split created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SplitRataIssued {
    pub rata: RataId,
    pub codice_univoco: String,
    pub codice_tributo: String,
    pub year: u16,
    pub amount: Cents,
    pub last_day_of_use: NaiveDate,
}

/// F6: the split done. `split_credit` is what [`App::annul_split`] names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SplitReceipt {
    pub operation_id: i64,
    pub at: DateTime<Utc>,
    /// The split, as its annulment names it.
    pub split_credit: i64,
    pub protocol: String,
    /// The original rata.
    pub rata: RataId,
    pub amount: Cents,
    /// The rate created, first year first (only the non-zero ones).
    pub rate: Vec<SplitRataIssued>,
    pub replayed: bool,
}

/// Which split an annulment names: the split credit, or the original rata (its latest split
/// not yet annulled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SplitTarget {
    Credit(i64),
    OriginalRata(RataId),
}

/// R-SPLIT-ANNUL done: the split rate are gone and the original rata is back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SplitAnnulReceipt {
    pub operation_id: i64,
    pub split_credit: i64,
    /// The original rata, back with its code, year and deadline.
    pub rata: RataId,
    pub restored: SplitRecapRow,
    pub replayed: bool,
}

impl App {
    /// The party's holding of `rata`, with its available amount.
    async fn split_holding(
        &self,
        party: PartyId,
        rata: RataId,
    ) -> Result<(HoldingInfo, Credit, Cents), AppError> {
        let info = self
            .store
            .holding_infos(&HoldingQuery::of_rata(party, rata))
            .await?
            .into_iter()
            .find(|h| h.rata.id == rata)
            .ok_or(AppError::NotFound { what: "Rata" })?;
        let credit = self
            .store
            .credit(info.rata.credit)
            .await?
            .ok_or(AppError::NotFound { what: "Credito" })?;
        let available = info.account.balance.available().unwrap_or(Cents::ZERO);
        Ok((info, credit, available))
    }

    async fn plan_split(
        &self,
        party: PartyId,
        rata: RataId,
        amount: Cents,
    ) -> Result<(SplitPreview, Credit, Vec<SplitRata>), AppError> {
        let (info, credit, residual) = self.split_holding(party, rata).await?;
        let ty = self
            .catalogue
            .get(&info.type_key)
            .ok_or(AppError::NotFound {
                what: "Tipo di credito",
            })?;
        let rate = split::plan_split(
            ty,
            split::RataToSplit {
                code: &info.rata.codice_tributo,
                communicated_on: credit.communicated_on,
                rata_year: info.rata.year,
            },
            amount,
            residual,
            self.today(),
            &self.law,
        )
        .map_err(|e| split_error(&e))?;
        Ok((
            SplitPreview {
                rata,
                type_key: info.type_key.clone(),
                codice_tributo: info.rata.codice_tributo.clone(),
                year: info.rata.year.get(),
                residual,
                amount,
                rate: rate.iter().cloned().map(SplitRecapRow::from).collect(),
            },
            credit,
            rate,
        ))
    }

    /// F6 recap: the ten rate `amount` of `rata` would become (R-SPLIT-ELIGIBLE refuses
    /// with its reason; R-SPLIT-CENTS). Writes nothing.
    pub async fn split_preview(
        &self,
        p: &Principal,
        party: PartyId,
        rata: RataId,
        amount: Cents,
    ) -> Result<SplitPreview, AppError> {
        self.authorize_view(p, party).await?;
        Ok(self.plan_split(party, rata, amount).await?.0)
    }

    /// F6: splits `amount` of the party's holding of `rata` into ten annual rate, usable
    /// only in F24 by the holder (R-SPLIT-NOCEDE). Needs the PIN unless signed in with SPID.
    pub async fn split_rata(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        rata: RataId,
        amount: Cents,
    ) -> Result<SplitReceipt, AppError> {
        self.authorize_act(p, party).await?;
        let fp = fingerprint("split_rata", Some(party), &(rata, amount));
        if let Some(r) = self.replay(p, key, &fp).await? {
            return self.split_receipt(&r, rata).await;
        }
        self.check_pin(p, pin).await?;
        let (_, original, rate) = self.plan_split(party, rata, amount).await?;
        let command = Command::Split {
            rata,
            party,
            amount,
            credit: NewCredit::split_of(&original, party, rate),
        };
        let receipt = self
            .submit(self.operation(p, key, Some(party), command, fp)?)
            .await
            .map_err(|e| {
                e.when_taken_meanwhile(|requested, available| {
                    split_error(&SplitError::OverResidual {
                        requested,
                        residual: available,
                    })
                })
            })?;
        self.split_receipt(&receipt, rata).await
    }

    async fn split_receipt(&self, r: &Receipt, rata: RataId) -> Result<SplitReceipt, AppError> {
        let issued = r.credit.as_ref().ok_or_else(|| AppError::Conflict {
            reason: "l'operazione indicata non è una ripartizione".into(),
        })?;
        let credit = self
            .store
            .credit(issued.id)
            .await?
            .ok_or(AppError::NotFound { what: "Credito" })?;
        Ok(SplitReceipt {
            operation_id: r.operation_id,
            at: r.at,
            split_credit: credit.id,
            protocol: credit.protocol.clone(),
            rata,
            amount: r.amount,
            rate: credit
                .rate
                .iter()
                .map(|x| SplitRataIssued {
                    rata: x.id,
                    codice_univoco: x.codice_univoco.clone(),
                    codice_tributo: x.codice_tributo.clone(),
                    year: x.year.get(),
                    amount: x.amount,
                    last_day_of_use: x.year.last_day(),
                })
                .collect(),
            replayed: r.replayed,
        })
    }

    /// The state of each rata of a split credit held by `party`, and whether the split was
    /// already annulled (its rate moved to their split accounts).
    async fn split_states(
        &self,
        party: PartyId,
        credit: &Credit,
    ) -> Result<(Vec<SplitRataState>, bool), AppError> {
        let mut states = Vec::with_capacity(credit.rate.len());
        let mut annulled = false;
        for r in &credit.rate {
            let balance = |a: Option<cessio_core::ledger::Account>| a.map(|a| a.balance);
            let used = balance(
                self.store
                    .account(r.id, AccountRef::System(AccountKind::Used))
                    .await?,
            )
            .unwrap_or_default();
            let expired = balance(
                self.store
                    .account(r.id, AccountRef::System(AccountKind::Expired))
                    .await?,
            )
            .unwrap_or_default();
            let split_back = balance(
                self.store
                    .account(r.id, AccountRef::System(AccountKind::Split))
                    .await?,
            )
            .unwrap_or_default();
            if split_back.credits_posted.is_positive() {
                annulled = true;
            }
            let holder = balance(self.store.account(r.id, AccountRef::Holder(party)).await?)
                .unwrap_or_default();
            let available = holder.available().unwrap_or(Cents::ZERO);
            let state = SplitRataState {
                year: r.year,
                amount: r.amount,
                used: used.credits_posted,
                reserved: used.credits_pending,
                expired: expired.credits_posted,
            };
            // Anything else that left the holding (a reduction, a seizure) touches it too.
            let explained =
                Cents::checked_sum([available, state.used, state.reserved, state.expired])
                    .unwrap_or(Cents::MAX);
            if !annulled && explained < r.amount {
                return Err(split_error(&SplitError::AnnulRataTouched {
                    year: r.year,
                    amount: r.amount.checked_sub(available).unwrap_or(r.amount),
                    what: "ridotti o bloccati",
                }));
            }
            states.push(state);
        }
        Ok((states, annulled))
    }

    /// The split credit a target names, checked to be a split the party made.
    async fn split_credit_of(
        &self,
        party: PartyId,
        target: SplitTarget,
    ) -> Result<(Credit, RataId), AppError> {
        let not_found = AppError::NotFound {
            what: "Ripartizione",
        };
        let credit = match target {
            SplitTarget::Credit(id) => self.store.credit(id).await?,
            SplitTarget::OriginalRata(rata) => {
                let mut found = None;
                for id in self.store.splits_of(rata).await?.into_iter().rev() {
                    let Some(c) = self.store.credit(id).await? else {
                        continue;
                    };
                    if c.holder == party && !self.split_states(party, &c).await?.1 {
                        found = Some(c);
                        break;
                    }
                }
                found
            }
        };
        let credit = credit.ok_or_else(|| not_found.clone())?;
        match credit.split_of {
            Some(original) if credit.holder == party => Ok((credit, original)),
            _ => Err(not_found),
        }
    }

    /// R-SPLIT-ANNUL: annuls a split whose rate are all untouched: they are removed and the
    /// original rata comes back with its code, year and deadline. Refused whole, writing
    /// nothing, if any part of a split rata was used, reserved, expired or reduced.
    pub async fn annul_split(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        target: SplitTarget,
    ) -> Result<SplitAnnulReceipt, AppError> {
        self.authorize_act(p, party).await?;
        let fp = fingerprint("annul_split", Some(party), &target);
        let replay = self.replay(p, key, &fp).await?;
        if replay.is_none() {
            self.check_pin(p, pin).await?;
        }
        // A retry names the split its first request annulled, which is no longer the
        // original rata's latest split not yet annulled.
        let target = match (&replay, target) {
            (Some(r), SplitTarget::OriginalRata(_)) => {
                let rows = self.store.operation_transfers(r.operation_id).await?;
                let first_rata = rows.first().map(|t| t.rata);
                let mut found = target;
                if let (Some(last), Some(first_rata)) = (rows.last(), first_rata) {
                    for id in self.store.splits_of(last.rata).await? {
                        if let Some(c) = self.store.credit(id).await?
                            && c.rate.iter().any(|x| x.id == first_rata)
                        {
                            found = SplitTarget::Credit(c.id);
                        }
                    }
                }
                found
            }
            _ => target,
        };
        let (credit, original) = self.split_credit_of(party, target).await?;
        let Some(first) = credit.rate.first() else {
            return Err(AppError::NotFound {
                what: "Ripartizione",
            });
        };
        let (info, _, _) = self.split_holding(party, original).await?;
        let (code, year) = (info.rata.codice_tributo.clone(), info.rata.year);
        let law = law()?;
        if let Some(r) = replay {
            let total =
                Cents::checked_sum(credit.rate.iter().map(|r| r.amount)).unwrap_or(Cents::MAX);
            return Ok(SplitAnnulReceipt {
                operation_id: r.operation_id,
                split_credit: credit.id,
                rata: original,
                restored: SplitRecapRow {
                    codice_tributo: code,
                    year: year.get(),
                    amount: total,
                    last_day_of_use: year.last_day(),
                },
                replayed: true,
            });
        }
        let (states, annulled) = self.split_states(party, &credit).await?;
        if annulled {
            return Err(AppError::Conflict {
                reason: format!(
                    "la ripartizione {} (rate dal {}) è già stata annullata",
                    credit.protocol,
                    first.year.get()
                ),
            });
        }
        let restored = split::check_annul(&code, year, &states, self.today(), law)
            .map_err(|e| split_error(&e))?;
        let mut moves: Vec<TransferRequest> = credit
            .rate
            .iter()
            .map(|r| TransferRequest::Move {
                rata: r.id,
                from: AccountRef::Holder(party),
                to: AccountRef::System(AccountKind::Split),
                amount: r.amount,
                kind: TransferKind::Split,
                pending: false,
                disclose: false,
                path: None,
            })
            .collect();
        moves.push(TransferRequest::Move {
            rata: original,
            from: AccountRef::System(AccountKind::Split),
            to: AccountRef::Holder(party),
            amount: restored.amount,
            kind: TransferKind::Split,
            pending: false,
            disclose: false,
            path: None,
        });
        let receipt = self
            .submit(self.operation(p, key, Some(party), Command::Transfer(moves), fp)?)
            .await
            .map_err(|e| {
                e.when_taken_meanwhile(|requested, available| {
                    split_error(&SplitError::AnnulRataTouched {
                        year: first.year,
                        amount: requested.checked_sub(available).unwrap_or(requested),
                        what: "utilizzati o prenotati nel frattempo",
                    })
                })
            })?;
        Ok(SplitAnnulReceipt {
            operation_id: receipt.operation_id,
            split_credit: credit.id,
            rata: original,
            restored: SplitRecapRow {
                year: restored.year.get(),
                amount: restored.amount,
                last_day_of_use: restored.last_day_of_use,
                codice_tributo: restored.codice_tributo,
            },
            replayed: receipt.replayed,
        })
    }
}
