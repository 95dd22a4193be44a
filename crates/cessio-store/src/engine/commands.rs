//! One function per command: each decides its operation against the batch's working set
//! and adds its rows to the plan. A refusal leaves both for the caller to roll back.

use cessio_core::chain::{BankClient, ChainError, NotCedibleReason};
use cessio_core::debt::DebtPosition;
use cessio_core::f24::{self, F24Choice, F24Error};
use cessio_core::law::LawTable;
use cessio_core::ledger::{
    AccountKind, LedgerError, Movement, PartyId, RataId, TransferId, TransferKind,
};
use cessio_core::money::Cents;

use super::movements::{issue, record, resolve};
use super::{AccountKey, LiveDelegation, Plan, SuspensionFact, Working, is_suspension};
use crate::StoreError;
use crate::model::{
    AccountRef, ChoiceRecord, Command, DelegationChange, NewCredit, NewOperatorEvent, NewParty,
    Operation, Party, Receipt, TransferRequest, WriterCheck,
};

fn validate_user(op: &Operation) -> Result<(), StoreError> {
    if op.acting_user.is_empty() || op.acting_user.len() > Operation::MAX_USER_LEN {
        return Err(StoreError::InvalidOperation {
            reason: "l'utente che agisce deve essere indicato (al massimo 128 caratteri)".into(),
        });
    }
    Ok(())
}

/// One operation being decided: the request, the id it gets, its day in Rome and the
/// receipt it will answer with.
struct Step<'a> {
    op: &'a Operation,
    id: i64,
    today: chrono::NaiveDate,
    receipt: Receipt,
}

pub(super) fn apply(
    op: &Operation,
    w: &mut Working,
    plan: &mut Plan,
) -> Result<Receipt, StoreError> {
    validate_user(op)?;
    if let Some(d) = &op.delegate {
        check_delegation(d, w)?;
    }
    for c in &op.checks {
        check_writer_rule(c, op, w)?;
    }
    plan.head.last_operation += 1;
    let id = plan.head.last_operation;
    let mut s = Step {
        op,
        id,
        today: cessio_core::time::rome_date(op.at),
        receipt: Receipt {
            operation_id: id,
            at: op.at,
            replayed: false,
            transfers: Vec::new(),
            amount: Cents::ZERO,
            party: None,
            credit: None,
        },
    };
    match &op.command {
        Command::RegisterParty(p) => register_party(&mut s, w, plan, p)?,
        Command::IssueCredit(c) => issue_credit(&mut s, w, plan, c)?,
        Command::F24Choice {
            rata,
            party,
            declared,
            on,
        } => f24_choice(&mut s, w, plan, rata, party, declared, on)?,
        Command::DebtPosition { party, position } => {
            debt_position(&mut s, w, plan, party, position)?
        }
        Command::Delegation(change) => delegation(&mut s, w, plan, change)?,
        Command::Split {
            rata,
            party,
            amount,
            credit,
        } => split(&mut s, w, plan, rata, party, amount, credit)?,
        Command::Transfer(requests) => transfer(&mut s, w, plan, requests)?,
        Command::OperatorEvent { event, void } => operator_event(&mut s, w, plan, event, void)?,
    }
    Ok(s.receipt)
}

/// R-PARTY: a new subject, never a second spelling of one already registered.
fn register_party(
    s: &mut Step<'_>,
    w: &mut Working,
    plan: &mut Plan,
    p: &NewParty,
) -> Result<(), StoreError> {
    let name = p.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(StoreError::InvalidOperation {
            reason: "la denominazione è obbligatoria (al massimo 200 caratteri)".into(),
        });
    }
    // An omocodic variant of a registered code names the same person: refused as
    // a duplicate, naming the form registered.
    if let Some(registered) =
        p.cf.omocode_variants()
            .into_iter()
            .find(|v| w.cfs.contains(v.as_str()))
    {
        return Err(StoreError::PartyExists {
            cf: registered.as_str().to_string(),
        });
    }
    w.cfs.insert(p.cf.as_str().to_string());
    plan.head.last_party += 1;
    let id = plan.head.last_party;
    w.parties.insert(id);
    plan.parties.push((
        Party {
            id,
            cf: p.cf.clone(),
            name: name.to_string(),
            kind: p.kind,
            deceased: false,
        },
        s.op.at,
    ));
    s.receipt.party = Some(id);

    Ok(())
}

/// A communication of the option (F8): the credit, its rate and their issuance.
fn issue_credit(
    s: &mut Step<'_>,
    w: &mut Working,
    plan: &mut Plan,
    c: &NewCredit,
) -> Result<(), StoreError> {
    let (issued, ids, amount) = issue(
        s.op,
        s.id,
        w,
        plan,
        c,
        Vec::new(),
        (TransferKind::Issue, Some(c.beneficiary)),
        None,
    )?;
    s.receipt.amount = amount;
    s.receipt.transfers = ids;
    s.receipt.credit = Some(issued);

    Ok(())
}

/// R-F24-CHOICE: a holder declares or revokes the choice for one of its holdings.
fn f24_choice(
    s: &mut Step<'_>,
    w: &mut Working,
    plan: &mut Plan,
    rata: &RataId,
    party: &PartyId,
    declared: &bool,
    on: &chrono::NaiveDate,
) -> Result<(), StoreError> {
    if !w.rate.contains(rata) {
        return Err(StoreError::UnknownRata { rata: *rata });
    }
    if !w
        .ids
        .contains_key(&AccountKey::of(*rata, AccountRef::Holder(*party)))
    {
        return Err(StoreError::NoHolding {
            rata: *rata,
            party: *party,
        });
    }
    // Decided on the choice and the reservations the batch sees: a choice declared twice
    // in a race, or revoked while an F24 reserves part of the rata, is refused here.
    let current = w.choices.get(&(*rata, *party)).copied().unwrap_or_default();
    let law = law()?;
    let choice = if *declared {
        // Only tracciabili rate reach here: the app refuses the others on the rata's
        // traceability, which never changes.
        f24::declare_choice(true, current, *on, law)
    } else {
        let reserved = w
            .ids
            .get(&AccountKey::of(*rata, AccountRef::Holder(*party)))
            .and_then(|id| w.ledger.account(*id))
            .map_or(Cents::ZERO, |a| a.balance.debits_pending);
        f24::revoke_choice(current, reserved, *on, law)
    }
    .map_err(|e| f24_rule(&e))?;
    w.choices.insert((*rata, *party), choice);
    plan.choices.push((
        ChoiceRecord {
            rata: *rata,
            party: *party,
            choice,
        },
        s.id,
        s.op.at,
    ));
    s.receipt.party = Some(*party);

    Ok(())
}

/// A party's debt position as the operator records it (the debit side of an F24).
fn debt_position(
    s: &mut Step<'_>,
    w: &mut Working,
    plan: &mut Plan,
    party: &PartyId,
    position: &DebtPosition,
) -> Result<(), StoreError> {
    if !w.parties.contains(party) {
        return Err(StoreError::UnknownParty { party: *party });
    }
    if position.loads.len() > 1_000 {
        return Err(StoreError::InvalidOperation {
            reason: "una posizione debitoria ha al massimo 1.000 carichi".into(),
        });
    }
    w.debts.insert(*party, position.clone());
    plan.debt_positions
        .push((*party, position.clone(), s.id, s.op.at));
    s.receipt.party = Some(*party);

    Ok(())
}

/// A titolare grants or revokes a delegation (R-DELEGA-SCOPE, R-DELEGA-END).
fn delegation(
    s: &mut Step<'_>,
    w: &mut Working,
    plan: &mut Plan,
    change: &DelegationChange,
) -> Result<(), StoreError> {
    // The user is not loaded here: the app resolves it by name before submitting,
    // and users are never deleted.
    let party = match change {
        DelegationChange::Grant { party, .. } | DelegationChange::Revoke { party, .. } => *party,
    };
    if !w.parties.contains(&party) {
        return Err(StoreError::UnknownParty { party });
    }
    // Later operations of the batch see the change (a grant supersedes the live
    // delegation of the pair; a revocation ends it).
    match change {
        DelegationChange::Grant {
            user,
            party,
            scope,
            until,
        } => {
            w.delegations.insert(
                (*user, *party),
                vec![LiveDelegation {
                    scope: *scope,
                    until: *until,
                }],
            );
        }
        DelegationChange::Revoke { user, party } => {
            w.delegations.insert((*user, *party), Vec::new());
        }
    }
    plan.delegations
        .push((change.clone(), s.id, s.op.acting_user.clone(), s.op.at));
    s.receipt.party = Some(party);

    Ok(())
}

/// F6: a rata leaves its holder and comes back as a new credit of smaller rate (R-SPLIT-*).
fn split(
    s: &mut Step<'_>,
    w: &mut Working,
    plan: &mut Plan,
    rata: &RataId,
    party: &PartyId,
    amount: &Cents,
    credit: &NewCredit,
) -> Result<(), StoreError> {
    if credit.holder != *party || credit.awaiting_answer {
        return Err(StoreError::InvalidOperation {
            reason: "le rate della ripartizione vanno al titolare, senza accettazione".into(),
        });
    }
    let total = Cents::checked_sum(credit.rate.iter().map(|r| r.amount))
        .ok_or(StoreError::Ledger(LedgerError::Overflow))?;
    if total != *amount {
        return Err(StoreError::InvalidOperation {
            reason: format!(
                "le rate della ripartizione sommano {total}, non {amount} (R-SPLIT-CENTS)"
            ),
        });
    }
    let out = resolve(
        &TransferRequest::Move {
            rata: *rata,
            from: AccountRef::Holder(*party),
            to: AccountRef::System(AccountKind::Split),
            amount: *amount,
            kind: TransferKind::Split,
            pending: false,
            disclose: false,
            path: None,
        },
        w,
        plan,
    )?;
    let (issued, ids, _moved) = issue(
        s.op,
        s.id,
        w,
        plan,
        credit,
        vec![out],
        (TransferKind::Split, Some(*party)),
        Some(*rata),
    )?;
    // The amount split, not the sum of both sides of the operation.
    s.receipt.amount = *amount;
    s.receipt.transfers = ids;
    s.receipt.party = Some(*party);
    s.receipt.credit = Some(issued);

    Ok(())
}

/// Movements between accounts: cessions, answers, F24 uses and annulments.
fn transfer(
    s: &mut Step<'_>,
    w: &mut Working,
    plan: &mut Plan,
    requests: &[TransferRequest],
) -> Result<(), StoreError> {
    if requests.is_empty() || requests.len() > Operation::MAX_MOVEMENTS {
        return Err(StoreError::InvalidOperation {
            reason: format!(
                "un'operazione contiene da 1 a {} movimenti",
                Operation::MAX_MOVEMENTS
            ),
        });
    }
    let mut movements = Vec::with_capacity(requests.len());
    for r in requests {
        match r {
            TransferRequest::Post { pending } | TransferRequest::Void { pending } => {
                check_not_suspended(*pending, s.today, w)?;
            }
            TransferRequest::Move {
                rata,
                from: AccountRef::Holder(party),
                kind: TransferKind::Cession,
                ..
            } => check_not_chosen(*rata, *party, w)?,
            TransferRequest::Move {
                rata,
                from,
                to,
                amount,
                kind: TransferKind::Seize,
                ..
            } => check_seizure(*rata, from, to, *amount, w)?,
            TransferRequest::Move { .. } => {}
        }
        let mut planned = resolve(r, w, plan)?;
        if matches!(
            planned.movement,
            Movement::Post { .. } | Movement::Void { .. }
        ) && s.op.on_behalf_of.is_some()
        {
            // An answer records who gave it: the cessionario accepting or
            // refusing, or the sender annulling its own communication.
            planned.party = s.op.on_behalf_of;
        }
        movements.push(planned);
    }
    let (ids, amount) = record(s.op, s.id, w, plan, &movements)?;
    // Recorded: later operations of the batch see what is now under seizure.
    for r in requests {
        if let TransferRequest::Move {
            rata,
            from,
            to,
            amount,
            kind: TransferKind::Seize,
            ..
        } = r
        {
            match (from, to) {
                (AccountRef::Holder(h), _) => {
                    w.seized.insert((*rata, *h), *amount);
                }
                (_, AccountRef::Holder(h)) => {
                    let left = seized(w, *rata, *h).checked_sub(*amount);
                    w.seized.insert((*rata, *h), left.unwrap_or(Cents::ZERO));
                }
                _ => {}
            }
        }
    }
    s.receipt.transfers = ids;
    s.receipt.amount = amount;

    Ok(())
}

fn seized(w: &Working, rata: RataId, holder: PartyId) -> Cents {
    w.seized
        .get(&(rata, holder))
        .copied()
        .unwrap_or(Cents::ZERO)
}

/// R-SEIZE, on what the batch sees under seizure for the holder: one open seizure per
/// holding, and a release of no more than is seized. A rata's `seized` account holds every
/// holder's seizure, so its balance alone would let one holder's release take another's.
fn check_seizure(
    rata: RataId,
    from: &AccountRef,
    to: &AccountRef,
    amount: Cents,
    w: &Working,
) -> Result<(), StoreError> {
    match (from, to) {
        (AccountRef::Holder(h), _) if seized(w, rata, *h).is_positive() => Err(rule(
            "R-SEIZE",
            "r_seize_open",
            "Il credito di questo soggetto è già sotto sequestro: un secondo sequestro della stessa rata non è stato registrato. Il sequestro in corso resta valido (R-SEIZE)",
        )),
        (_, AccountRef::Holder(h)) if amount > seized(w, rata, *h) => Err(rule(
            "R-SEIZE",
            "r_seize_not_open",
            "Per questo soggetto non c'è un sequestro aperto di questo importo su questa rata, forse già rilasciato: l'operazione non è stata eseguita. Consultare lo stato del sequestro della rata prima di ripeterla (R-SEIZE)",
        )),
        _ => Ok(()),
    }
}

/// An entry of the operator's register; a suspension and its end are decided here (R-SUSP),
/// with the void of the communication an annulment or a negative outcome carries.
fn operator_event(
    s: &mut Step<'_>,
    w: &mut Working,
    plan: &mut Plan,
    event: &NewOperatorEvent,
    void: &Option<TransferId>,
) -> Result<(), StoreError> {
    if event.kind.trim().is_empty() || event.kind.len() > 64 {
        return Err(StoreError::InvalidOperation {
            reason: "il tipo di annotazione è obbligatorio (al massimo 64 caratteri)".into(),
        });
    }
    let transfer = event.transfer.filter(|_| is_suspension(&event.kind));
    let mut ended = None;
    if let Some(t) = transfer {
        let open = w.suspensions.get(&t).copied();
        if event.kind == crate::model::SUSPENSION_EVENT {
            let awaiting = w
                .ledger
                .pending(t)
                .is_some_and(|p| p.state == cessio_core::ledger::PendingState::Pending);
            if !awaiting {
                return Err(rule(
                    "R-SUSP",
                    "r_susp_answered",
                    "la comunicazione ha già avuto risposta: non può più essere sospesa (R-SUSP)",
                ));
            }
            if open.is_some() {
                return Err(rule(
                    "R-SUSP",
                    "r_susp_once",
                    "la comunicazione è già stata sospesa: una sola sospensione per comunicazione (R-SUSP)",
                ));
            }
        } else {
            let Some(fact) = open.filter(|f| !f.ended) else {
                return Err(rule(
                    "R-SUSP",
                    "r_susp_not_open",
                    "la comunicazione non ha una sospensione aperta (R-SUSP)",
                ));
            };
            ended = Some(fact);
        }
    }
    if let Some(pending) = void {
        let planned = resolve(&TransferRequest::Void { pending: *pending }, w, plan)?;
        let (ids, amount) = record(s.op, s.id, w, plan, &[planned])?;
        s.receipt.transfers = ids;
        s.receipt.amount = amount;
    }
    match (transfer, ended) {
        (Some(t), Some(fact)) => {
            w.suspensions.insert(
                t,
                SuspensionFact {
                    ended: true,
                    ..fact
                },
            );
        }
        (Some(t), None) => {
            let Some(fact) = SuspensionFact::fold([(event.kind.as_str(), &event.data)]) else {
                return Err(StoreError::InvalidOperation {
                    reason: "una sospensione indica le date \"from\" e \"until\"".into(),
                });
            };
            w.suspensions.insert(t, fact);
        }
        _ => {}
    }
    if event.kind == crate::model::BANK_CLIENT_EVENT
        && let (Some(bank), Some(client)) = (event.party, event.counterparty)
    {
        w.bank_clients
            .entry((bank, client))
            .or_default()
            .push((event.at, crate::model::bank_client_in(&event.data)));
    }
    plan.events.push((event.clone(), s.id));
    s.receipt.party = event.party;

    Ok(())
}

fn rule(rule: &'static str, code: &'static str, detail: &str) -> StoreError {
    StoreError::Rule {
        rule,
        code,
        detail: detail.to_string(),
    }
}

/// R-SUSP, decided on the register the batch sees: a suspended communication can be
/// neither accepted nor refused until the operator ends the suspension or it lapses.
fn check_not_suspended(
    pending: TransferId,
    today: chrono::NaiveDate,
    w: &Working,
) -> Result<(), StoreError> {
    match w.suspensions.get(&pending) {
        Some(f) if f.holds_on(today) => Err(StoreError::Rule {
            rule: "R-SUSP",
            code: cessio_core::suspension::ANSWER_REFUSED,
            detail: cessio_core::suspension::answer_refused(f.suspension.until),
        }),
        _ => Ok(()),
    }
}

/// R-F24-CHOICE, on the choices the batch sees: a rata whose choice to use it in F24 is
/// declared is not cedible. Only a tracciabile rata can have the choice declared.
fn check_not_chosen(rata: RataId, party: PartyId, w: &Working) -> Result<(), StoreError> {
    match w.choices.get(&(rata, party)) {
        Some(F24Choice::Declared { .. }) => {
            let e = ChainError::NotCedible(NotCedibleReason::F24ChoiceDeclared);
            Err(StoreError::Rule {
                rule: e.rule(),
                code: e.code(),
                detail: e.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// A rule the app named for the writer ([`WriterCheck`]), decided on the state the batch
/// sees.
fn check_writer_rule(c: &WriterCheck, op: &Operation, w: &Working) -> Result<(), StoreError> {
    match c {
        WriterCheck::ChoiceDeclared { rata, party } => {
            let choice = w.choices.get(&(*rata, *party)).copied().unwrap_or_default();
            if f24::choice_allows_use(true, choice) {
                Ok(())
            } else {
                Err(f24_rule(&F24Error::ChoiceRequired))
            }
        }
        WriterCheck::OffsetAllowed { party, on, natures } => {
            let none = DebtPosition::default();
            let debts = w.debts.get(party).unwrap_or(&none);
            f24::check_offset_ban(debts, natures, *on, law()?).map_err(|e| f24_rule(&e))
        }
        WriterCheck::HoldingReceived {
            rata,
            party,
            received,
        } => {
            let now = w
                .ids
                .get(&AccountKey::of(*rata, AccountRef::Holder(*party)))
                .and_then(|id| w.ledger.account(*id))
                .map_or(Cents::ZERO, |a| a.balance.credits_posted);
            if now == *received {
                Ok(())
            } else {
                Err(rule(
                    "R-CHAIN",
                    "r_chain_holding_changed",
                    "Mentre la cessione veniva registrata il cedente ha ricevuto un'altra parte di questa rata, e la cedibilità va verificata di nuovo (R-CHAIN): l'operazione non è stata eseguita, ripeterla",
                ))
            }
        }
        WriterCheck::BankClient {
            bank,
            client,
            admitted,
        } => {
            // As the §5 history reads it: the last relation recorded up to the operation's
            // time.
            let relation = w
                .bank_clients
                .get(&(*bank, *client))
                .and_then(|list| list.iter().rev().find(|(at, _)| *at <= op.at))
                .map_or(BankClient::No, |(_, r)| *r);
            if admitted.contains(&relation) {
                Ok(())
            } else {
                Err(rule(
                    "R-BANK-CLIENT",
                    "r_bank_client_changed",
                    "La relazione di conto corrente tra la banca cedente e il cessionario è cambiata mentre la cessione veniva registrata, e con quella ora in vigore la cessione non è consentita: l'operazione non è stata eseguita. Verificare con l'operatore la relazione registrata prima di ripeterla (R-BANK-CLIENT)",
                ))
            }
        }
    }
}

fn f24_rule(e: &F24Error) -> StoreError {
    StoreError::Rule {
        rule: e.rule(),
        code: e.code(),
        detail: e.to_string(),
    }
}

/// The law's dated rules, as the app reads them.
fn law() -> Result<&'static LawTable, StoreError> {
    LawTable::builtin_shared().map_err(|e| StoreError::InvalidOperation {
        reason: format!("tabella delle regole di legge non valida: {e}"),
    })
}

/// The delegation an operation is made under, on the delegations the batch sees: a
/// revocation committed before it refuses it (R-DELEGA-END), as does a view-only scope
/// (R-DELEGA-SCOPE).
fn check_delegation(d: &crate::model::DelegateCheck, w: &Working) -> Result<(), StoreError> {
    let live: Vec<&LiveDelegation> = w
        .delegations
        .get(&(d.user, d.party))
        .into_iter()
        .flatten()
        .filter(|l| l.until.is_none_or(|u| d.on <= u))
        .collect();
    if live.is_empty() {
        return Err(rule(
            "R-DELEGA-END",
            "delegation_ended",
            "La delega per questo soggetto è stata revocata o è scaduta: l'operazione non è stata eseguita (R-DELEGA-END)",
        ));
    }
    if !live
        .iter()
        .any(|l| l.scope == crate::model::DelegationScope::Disposizione)
    {
        return Err(rule(
            "R-DELEGA-SCOPE",
            "delegation_view_only",
            "La delega ricevuta per questo soggetto è di sola consultazione: per disporre dei crediti serve una delega anche alla disposizione (R-DELEGA-SCOPE)",
        ));
    }
    Ok(())
}
