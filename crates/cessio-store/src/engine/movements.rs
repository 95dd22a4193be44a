//! Movements as the ledger records them: issuing a credit's rate, resolving a request to
//! accounts, recording transfers on the hash chain, and the next protocol.

use cessio_core::ledger::{
    Account, AccountId, AccountKind, Balance, GENESIS_HASH, LedgerError, Movement, PartyId, RataId,
    TransferId, TransferKind, chain_hash,
};
use cessio_core::money::Cents;
use cessio_core::rata::{CodiceUnivoco, Protocol};
use cessio_core::time::to_rome;
use chrono::{DateTime, Utc};

use super::{AccountKey, Plan, TransferRow, Working};
use crate::StoreError;
use crate::model::{
    AccountRef, Credit, IssuedCredit, IssuedRata, NewCredit, Operation, Rata, TransferRequest,
};

/// Creates a credit and issues its rate to the holder, after `before` (the movements that
/// make room for it, for a split), all in one operation. `recorded` is the kind and party
/// the issuance rows record.
#[expect(
    clippy::too_many_arguments,
    reason = "one operation's context and its parts"
)]
pub(super) fn issue(
    op: &Operation,
    operation_id: i64,
    w: &mut Working,
    plan: &mut Plan,
    c: &NewCredit,
    before: Vec<Planned>,
    recorded: (TransferKind, Option<PartyId>),
    split_of: Option<RataId>,
) -> Result<(IssuedCredit, Vec<TransferId>, Cents), StoreError> {
    for p in [c.beneficiary, c.holder] {
        if !w.parties.contains(&p) {
            return Err(StoreError::UnknownParty { party: p });
        }
    }
    if c.rate.is_empty() || c.rate.len() > 10 {
        return Err(StoreError::InvalidOperation {
            reason: "una comunicazione ha da 1 a 10 rate".into(),
        });
    }
    plan.head.last_credit += 1;
    let credit_id = plan.head.last_credit;
    let protocol = next_protocol(&plan.head.last_protocol, op.at)?;
    plan.head.last_protocol = protocol.as_str().to_string();
    let mut rate = Vec::with_capacity(c.rate.len());
    let mut movements = before;
    movements.reserve(c.rate.len());
    let mut issued = IssuedCredit {
        id: credit_id,
        protocol: protocol.as_str().to_string(),
        rate: Vec::new(),
        pending: Vec::new(),
    };
    for (i, r) in c.rate.iter().enumerate() {
        if !r.amount.is_positive() {
            return Err(StoreError::InvalidOperation {
                reason: format!("la rata {} ha un importo non positivo", i + 1),
            });
        }
        plan.head.last_rata += 1;
        let rata_id = plan.head.last_rata;
        let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let univoco =
            CodiceUnivoco::new(&protocol, 1, index).map_err(|e| StoreError::InvalidOperation {
                reason: e.to_string(),
            })?;
        w.rate.insert(rata_id);
        let issuance = new_account(w, plan, rata_id, AccountRef::System(AccountKind::Issuance));
        let holder = new_account(w, plan, rata_id, AccountRef::Holder(c.holder));
        movements.push(Planned {
            rata: rata_id,
            kind: recorded.0,
            movement: Movement::Move {
                debit: issuance,
                credit: holder,
                amount: r.amount,
                pending: c.awaiting_answer,
            },
            party: recorded.1,
            disclose: true,
            path: None,
        });
        issued.rate.push(IssuedRata {
            id: rata_id,
            codice_univoco: univoco.as_str().to_string(),
        });
        rate.push(Rata {
            id: rata_id,
            credit: credit_id,
            index,
            year: r.year,
            amount: r.amount,
            codice_tributo: r.codice_tributo.clone(),
            codice_univoco: univoco.as_str().to_string(),
        });
    }
    let (ids, amount) = record(op, operation_id, w, plan, &movements)?;
    if c.awaiting_answer {
        issued.pending.clone_from(&ids);
    }
    plan.credits.push(Credit {
        id: credit_id,
        protocol: protocol.as_str().to_string(),
        type_key: c.type_key.clone(),
        beneficiary: c.beneficiary,
        holder: c.holder,
        origin: c.origin,
        expense_year: c.expense_year,
        communicated_on: c.communicated_on,
        tracciabile: c.tracciabile,
        created_at: op.at,
        rate,
        split_of,
        beneficiary_no_tax_area: c.beneficiary_no_tax_area,
    });
    Ok((issued, ids, amount))
}

pub(super) fn resolve(
    r: &TransferRequest,
    w: &mut Working,
    plan: &mut Plan,
) -> Result<Planned, StoreError> {
    match *r {
        TransferRequest::Move {
            rata,
            from,
            to,
            amount,
            kind,
            pending,
            disclose,
            path,
        } => {
            if !w.rate.contains(&rata) {
                return Err(StoreError::UnknownRata { rata });
            }
            if from == AccountRef::System(AccountKind::Issuance)
                || to == AccountRef::System(AccountKind::Issuance)
            {
                // Credit is created only by issuing a credit (R-CONSERVE).
                return Err(StoreError::InvalidOperation {
                    reason:
                        "il credito si crea solo con una comunicazione dell'opzione (R-CONSERVE)"
                            .into(),
                });
            }
            if !amount.is_positive() {
                return Err(StoreError::Ledger(LedgerError::NonPositiveAmount {
                    amount,
                }));
            }
            let debit = match w.ids.get(&AccountKey::of(rata, from)) {
                Some(id) => *id,
                None => {
                    return Err(match from {
                        AccountRef::Holder(party) => StoreError::NoHolding { rata, party },
                        AccountRef::System(_) => {
                            StoreError::Ledger(LedgerError::InsufficientAvailable {
                                account: 0,
                                requested: amount,
                                available: Cents::ZERO,
                            })
                        }
                    });
                }
            };
            if let AccountRef::Holder(p) = to
                && !w.parties.contains(&p)
            {
                return Err(StoreError::UnknownParty { party: p });
            }
            let credit = match w.ids.get(&AccountKey::of(rata, to)) {
                Some(id) => *id,
                None => new_account(w, plan, rata, to),
            };
            Ok(Planned {
                rata,
                kind,
                movement: Movement::Move {
                    debit,
                    credit,
                    amount,
                    pending,
                },
                party: None,
                disclose,
                path: path.filter(|_| kind == TransferKind::Cession),
            })
        }
        TransferRequest::Post { pending } | TransferRequest::Void { pending } => {
            let p = w
                .ledger
                .pending(pending)
                .ok_or(StoreError::Ledger(LedgerError::UnknownPending { pending }))?;
            let rata = w
                .ledger
                .account(p.debit)
                .map(|a| a.rata)
                .ok_or(StoreError::Ledger(LedgerError::UnknownPending { pending }))?;
            let movement = if matches!(r, TransferRequest::Post { .. }) {
                Movement::Post { pending }
            } else {
                Movement::Void { pending }
            };
            // The answer keeps the kind of what it answers; the phase tells them apart.
            Ok(Planned {
                rata,
                kind: TransferKind::Cession,
                movement,
                party: None,
                disclose: false,
                path: None,
            })
        }
    }
}

fn new_account(w: &mut Working, plan: &mut Plan, rata: RataId, r: AccountRef) -> AccountId {
    plan.head.last_account += 1;
    let id = plan.head.last_account;
    let key = AccountKey::of(rata, r);
    let account = Account {
        id,
        rata,
        kind: key.kind,
        party: (key.kind == AccountKind::Holder).then_some(key.party),
        balance: Balance::default(),
    };
    w.ids.insert(key, id);
    w.ledger.insert_account(account);
    plan.new_accounts.push(account);
    id
}

/// One movement decided for an operation, with what its history row records beyond the
/// ledger's view.
pub(super) struct Planned {
    rata: RataId,
    kind: TransferKind,
    pub(super) movement: Movement,
    /// Recorded as the movement's party when the debit account has none: the beneficiary
    /// of an issuance is the cedente of the option communication.
    pub(super) party: Option<PartyId>,
    disclose: bool,
    /// The §5 path a cession carries (`crate::paths`).
    pub(super) path: Option<crate::paths::CarriedPath>,
}

/// Applies movements to the ledger and appends their history rows, chained.
pub(super) fn record(
    op: &Operation,
    operation_id: i64,
    w: &mut Working,
    plan: &mut Plan,
    movements: &[Planned],
) -> Result<(Vec<TransferId>, Cents), StoreError> {
    // Everything that can fail is checked before the ledger changes: once `apply`
    // succeeds, nothing may fail, or the working set would keep a failed operation's
    // balances for the rest of the batch.
    let total = movements
        .iter()
        .try_fold(Cents::ZERO, |acc, m| match m.movement {
            Movement::Move { amount, .. } => acc.checked_add(amount),
            Movement::Post { pending } | Movement::Void { pending } => {
                acc.checked_add(w.ledger.pending(pending).map_or(Cents::ZERO, |p| p.amount))
            }
        })
        .ok_or(StoreError::Ledger(LedgerError::Overflow))?;
    let only: Vec<Movement> = movements.iter().map(|m| m.movement).collect();
    let mut next = plan.head.last_transfer;
    let applied = w.ledger.apply(&only, || {
        next += 1;
        next
    })?;
    let at_micros = op.at.timestamp_micros();
    let mut ids = Vec::with_capacity(applied.len());
    for (m, a) in movements.iter().zip(applied) {
        let (rata, kind, movement) = (&m.rata, &m.kind, &m.movement);
        plan.head.last_transfer += 1;
        let id = plan.head.last_transfer;
        // An answer names only the party that gave it, when the caller said who that is;
        // guessing it from the accounts would make a refusal look like an annulment.
        let party = match movement {
            Movement::Post { .. } | Movement::Void { .. } => m.party,
            Movement::Move { .. } => m
                .party
                .or_else(|| w.ledger.account(a.debit).and_then(|x| x.party)),
        };
        let counterparty = w.ledger.account(a.credit).and_then(|x| x.party);
        // Answers are recorded under the kind of the transfer they answer.
        let kind = match movement {
            Movement::Post { pending } | Movement::Void { pending } => {
                w.pending_kinds.get(pending).copied().unwrap_or(*kind)
            }
            Movement::Move { pending: true, .. } => {
                w.pending_kinds.insert(id, *kind);
                *kind
            }
            Movement::Move { .. } => *kind,
        };
        let mut row = TransferRow {
            id,
            operation: operation_id,
            rata: *rata,
            debit: a.debit,
            credit: a.credit,
            amount: a.amount,
            kind,
            phase: a.phase,
            pending_id: a.pending_id,
            at_micros,
            acting_user: op.acting_user.clone(),
            party,
            counterparty,
            disclose: m.disclose,
            hash: GENESIS_HASH,
        };
        row.hash = chain_hash(&plan.head.last_hash, &row.fields());
        plan.head.last_hash = row.hash;
        if let (Some(path), Movement::Move { .. }) = (m.path, movement) {
            plan.cession_paths.push(crate::paths::CessionPath {
                transfer: id,
                path,
                day: crate::summary_days::rome_day(at_micros),
            });
        }
        plan.transfers.push(row);
        ids.push(id);
    }
    Ok((ids, total))
}

/// The next protocol: the registration time in Rome plus a progressive within that second.
/// Protocols only grow, so if more than 99,999 arrive within one second the time part
/// moves on to the next second rather than repeat a number.
fn next_protocol(last: &str, at: DateTime<Utc>) -> Result<Protocol, StoreError> {
    let local = to_rome(at);
    let candidate_prefix = local.format("%y%m%d%H%M%S").to_string();
    let err = |e: &dyn std::fmt::Display| StoreError::InvalidOperation {
        reason: e.to_string(),
    };
    if last.len() == 17 && last[..12] >= candidate_prefix[..] {
        let progressive: u32 = last[12..].parse().unwrap_or(0);
        if progressive < 99_999 {
            return Protocol::parse(&format!("{}{:05}", &last[..12], progressive + 1))
                .map_err(|e| err(&e));
        }
        let last_time = chrono::NaiveDateTime::parse_from_str(&last[..12], "%y%m%d%H%M%S")
            .map_err(|e| err(&e))?;
        return Protocol::new(last_time + chrono::Duration::seconds(1), 1).map_err(|e| err(&e));
    }
    Protocol::new(local, 1).map_err(|e| err(&e))
}
