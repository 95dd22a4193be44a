//! F1 Monitoraggio: a party's credits per type and reference year.
//!
//! The sums come from the store: for today from `party_summary`, kept by the writer with
//! the transfers; for a past date from `party_summary_days`, kept with it per day. Today's residual is also split by
//! cedibilità (§5), from what `monitor_cache` keeps per party.

use std::collections::BTreeMap;

use cessio_core::ledger::{PartyId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::split::is_split_code;
use cessio_store::EntryState;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::check_date;
use crate::{App, AppError, Principal};

/// F1: one row per credit type and reference year.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MonitorRow {
    pub type_key: String,
    pub type_name: String,
    pub year: u16,
    pub received_pending: Cents,
    pub received_accepted: Cents,
    pub received_refused: Cents,
    pub ceded_accepted: Cents,
    pub ceded_pending: Cents,
    pub used_done: Cents,
    pub used_reserved: Cents,
    /// Moved to expired by the year-end close (R-F24-WINDOW-121/122): with it, received −
    /// ceded − used − expired reconciles to the residual.
    #[serde(default)]
    pub expired: Cents,
    /// Residual the holder may cede (to anyone, as far as the rules of this release go).
    pub residual_cedible: Cents,
    /// Residual usable only in F24 (split rate: R-SPLIT-NOCEDE; §5: R-CHAIN exhausted,
    /// R-ONCE, R-BANK-CLIENT; seized: R-SEIZE).
    pub residual_not_cedible: Cents,
    /// Of `residual_cedible`, what may go only to soggetti qualificati or to the holding
    /// bank's own clients (R-CHAIN, R-BANK-CLIENT), not to banks (R-ECO-2018), or only
    /// once (R-ONCE).
    #[serde(default)]
    pub residual_restricted: Cents,
}

impl App {
    /// F1 Monitoraggio: per type and reference year, as of now or the end of a past day.
    pub async fn monitoring(
        &self,
        p: &Principal,
        party: PartyId,
        as_of: Option<NaiveDate>,
    ) -> Result<Vec<MonitorRow>, AppError> {
        self.authorize_view(p, party).await?;
        let as_of_day = match as_of {
            Some(d) => Some(check_date("as_of", d)?),
            None => None,
        };
        let totals = self
            .listing_read(party, |s| async move {
                s.monitor_totals(party, as_of_day).await
            })
            .await?;
        let mut rows: BTreeMap<(String, u16), MonitorRow> = BTreeMap::new();
        let add = |c: &mut Cents, v: Cents| *c = c.checked_add(v).unwrap_or(Cents::MAX);
        for t in &totals {
            let row = rows
                .entry((t.type_key.clone(), t.year.get()))
                .or_insert_with(|| MonitorRow {
                    type_key: t.type_key.clone(),
                    type_name: self.type_name(&t.type_key),
                    year: t.year.get(),
                    ..MonitorRow::default()
                });
            let split = is_split_code(&self.catalogue, &t.codice_tributo);
            match (t.kind, t.state, t.received) {
                // R-SEIZE: a seized amount stays the holder's residual, not cedible; its
                // release makes it cedible again.
                (TransferKind::Seize, EntryState::Accepted, received) => {
                    let sub = |c: &mut Cents| *c = c.checked_sub(t.amount).unwrap_or(Cents::ZERO);
                    if split {
                        // Split rate are not cedible, seized or not.
                    } else if received {
                        sub(&mut row.residual_not_cedible);
                        add(&mut row.residual_cedible, t.amount);
                    } else {
                        sub(&mut row.residual_cedible);
                        add(&mut row.residual_not_cedible, t.amount);
                    }
                    continue;
                }
                // Annulment on request: the accepted cession is undone, as after a refusal.
                (TransferKind::Correction, EntryState::Accepted, received) => {
                    let residual = if split {
                        &mut row.residual_not_cedible
                    } else {
                        &mut row.residual_cedible
                    };
                    if received {
                        add(residual, t.amount);
                        row.ceded_accepted = row
                            .ceded_accepted
                            .checked_sub(t.amount)
                            .unwrap_or(Cents::ZERO);
                    } else {
                        *residual = residual.checked_sub(t.amount).unwrap_or(Cents::ZERO);
                        row.received_accepted = row
                            .received_accepted
                            .checked_sub(t.amount)
                            .unwrap_or(Cents::ZERO);
                    }
                    continue;
                }
                _ => {}
            }
            let residual = if split {
                &mut row.residual_not_cedible
            } else {
                &mut row.residual_cedible
            };
            if matches!(
                t.kind,
                TransferKind::Split | TransferKind::Reduce | TransferKind::Expire
            ) {
                // Not a cession: split rate (or an annulled split's amount) coming in, or
                // an amount leaving the holding for good (split, reduced, expired).
                if t.received {
                    add(residual, t.amount);
                } else {
                    *residual = residual.checked_sub(t.amount).unwrap_or(Cents::ZERO);
                    if t.kind == TransferKind::Expire {
                        add(&mut row.expired, t.amount);
                    }
                }
                continue;
            }
            if t.received {
                match t.state {
                    EntryState::Pending => add(&mut row.received_pending, t.amount),
                    EntryState::Accepted => {
                        add(&mut row.received_accepted, t.amount);
                        add(residual, t.amount);
                    }
                    EntryState::Refused => add(&mut row.received_refused, t.amount),
                    EntryState::Annulled => {}
                }
            } else if matches!(t.state, EntryState::Pending | EntryState::Accepted) {
                // A refused cession and an annulled communication moved nothing for good.
                let (pending, done) = match t.kind {
                    TransferKind::Use => (&mut row.used_reserved, &mut row.used_done),
                    _ => (&mut row.ceded_pending, &mut row.ceded_accepted),
                };
                add(
                    if t.state == EntryState::Pending {
                        pending
                    } else {
                        done
                    },
                    t.amount,
                );
                // The beneficiary's communication moves no holding of its own.
                if t.kind != TransferKind::Issue {
                    *residual = residual.checked_sub(t.amount).unwrap_or(Cents::ZERO);
                }
            }
        }
        if as_of.is_none() {
            // §5 today: what the rules leave not cedible, or cedible only to some.
            let catalogue = &self.catalogue;
            rows = self
                .with_holding_classes(p, party, move |view| {
                    let sums: Vec<_> = view.sums().collect();
                    // What is not cedible leaves the cedible residual first; what is cedible
                    // only to some is at most what remains of it.
                    for (type_key, year, codice_tributo, sum) in &sums {
                        let Some(row) = rows.get_mut(&(type_key.to_string(), *year)) else {
                            continue;
                        };
                        // Split rate are counted not cedible by their code already.
                        if !is_split_code(catalogue, codice_tributo) {
                            let moved = sum.not_cedible.min(row.residual_cedible);
                            row.residual_cedible = row
                                .residual_cedible
                                .checked_sub(moved)
                                .unwrap_or(Cents::ZERO);
                            add(&mut row.residual_not_cedible, moved);
                        }
                    }
                    for (type_key, year, _, sum) in &sums {
                        if let Some(row) = rows.get_mut(&(type_key.to_string(), *year)) {
                            let room = row
                                .residual_cedible
                                .checked_sub(row.residual_restricted)
                                .unwrap_or(Cents::ZERO);
                            add(&mut row.residual_restricted, sum.restricted.min(room));
                        }
                    }
                    rows
                })
                .await?;
        }
        Ok(rows.into_values().collect())
    }
}
