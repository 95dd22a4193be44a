//! The contract every backend passes: one suite, instantiated once per backend with
//! [`contract_tests!`](crate::contract_tests). Each test gets a fresh, empty store.

#![expect(
    clippy::unwrap_used,
    reason = "test suite: a failed unwrap is a failed test"
)]

use std::sync::Arc;

use cessio_core::cf::CodiceFiscale;
use cessio_core::ledger::{AccountKind, PartyId, RataId, TransferId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::time::RefYear;
use cessio_test_support::{SplitMix64, entity_cf};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use crate::{
    AccountRef, ChangeMarks, Command, Credit, CreditOrigin, DELEGATION_GRANTED_EVENT,
    DELEGATION_REVOKED_EVENT, DelegationChange, DelegationScope, EntryQuery, HoldingQuery,
    IdempotencyKey, LoginAttempt, NewCredit, NewParty, NewRata, NewSession, NewUser, Operation,
    OperatorEventQuery, PartyKind, Receipt, Role, SecretKey, SessionLimits, Store, StoreError,
    TransferRequest,
};

/// Generates one `#[tokio::test]` per contract test. `$make` is an async expression giving
/// `Option<Arc<dyn Store>>` (None skips, e.g. PostgreSQL without a configured URL).
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@each $make;
            registers_parties_and_refuses_duplicate_cf,
            r_cf_omocodic_variants_name_one_party,
            r_conserve_issue_answer_cede_refuse_keeps_balances,
            r_conserve_race_for_the_same_amount_exactly_one_wins,
            idempotent_retry_returns_first_receipt_and_applies_nothing,
            idempotent_concurrent_retries_apply_once,
            idempotency_key_reused_for_another_request_is_refused,
            group_commit_batches_and_isolates_failures,
            bad_input_is_refused_and_leaves_store_unchanged,
            r_answer_pending_is_answered_only_once,
            r_history_records_user_parties_and_operation,
            r_history_of_several_rate_in_one_read,
            protocols_and_codici_univoci_are_unique,
            r_conserve_large_amounts_stay_exact,
            users_pins_delegations_and_tokens,
            delegations_have_scope_end_date_history_and_audit,
            r_history_party_entries_as_of_a_past_time,
            f9_deceased_flag_and_operator_register,
            f1_summary_equals_the_history_after_random_concurrent_operations,
            f1_as_of_a_past_day_reads_the_sums_kept_for_that_day,
            holding_changes_name_what_moved_since_a_mark,
            entries_are_counted_streamed_and_narrowed_to_a_cedente_or_cessionario,
            holdings_are_read_in_pages_and_by_rata,
            rate_are_read_with_their_credits_by_id,
            r_chain_paths_are_kept_by_the_writer_with_each_registration_answer_and_seizure,
            sessions_are_found_by_hash_touched_expire_and_end,
            sessions_are_capped_per_user_and_in_all,
            login_flows_are_taken_once_expire_and_are_capped,
            login_attempts_are_counted_in_windows_refused_forgiven_and_trimmed,
            r_susp_is_decided_by_the_writer_on_the_state_it_writes_on,
            r_delega_end_is_decided_by_the_writer_on_the_state_it_writes_on,
            r_f24_choice_and_r_ban_100k_are_decided_by_the_writer_on_the_state_it_writes_on,
            r_bank_client_is_decided_by_the_writer_on_the_relation_in_force,
            r_chain_history_is_checked_by_the_writer_on_what_the_holding_received,
            feed_tells_both_sides_of_a_cession_and_of_its_answer,
            operation_record_has_its_log_entry_transfers_credits_and_parties,
            webhooks_are_capped_leased_once_retried_and_revoked
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                if let Some(store) = $make.await {
                    $crate::contract::$name(store).await;
                }
            }
        )*
    };
}

pub type DynStore = Arc<dyn Store>;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap()
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

pub fn op(k: &str, command: Command) -> Operation {
    Operation {
        idempotency_key: key(k),
        acting_user: "tester".into(),
        on_behalf_of: None,
        at: t0(),
        command,
        request_hash: None,
        delegate: None,
        checks: Vec::new(),
    }
}

pub async fn party(store: &DynStore, n: u32) -> PartyId {
    party_of(store, n, PartyKind::Company).await
}

pub async fn party_of(store: &DynStore, n: u32, kind: PartyKind) -> PartyId {
    store
        .submit(op(
            &format!("party-{n}"),
            Command::RegisterParty(NewParty {
                cf: entity_cf(n),
                name: format!("Impresa {n} S.r.l."),
                kind,
            }),
        ))
        .await
        .unwrap()
        .party
        .unwrap()
}

pub fn new_credit(holder: PartyId, amounts: &[i64], awaiting_answer: bool) -> NewCredit {
    NewCredit {
        type_key: "superbonus".into(),
        beneficiary: holder,
        holder,
        origin: CreditOrigin::Cessione,
        expense_year: 2023,
        communicated_on: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
        tracciabile: true,
        rate: amounts
            .iter()
            .enumerate()
            .map(|(i, a)| NewRata {
                year: RefYear::new(2024 + u16::try_from(i).unwrap()),
                amount: Cents::new(*a),
                codice_tributo: "7701".into(),
            })
            .collect(),
        awaiting_answer,
        beneficiary_no_tax_area: false,
    }
}

/// Issues a one-rata credit already held by `holder` and returns the rata.
pub async fn funded(store: &DynStore, k: &str, holder: PartyId, amount: i64) -> RataId {
    let r = store
        .submit(op(
            k,
            Command::IssueCredit(new_credit(holder, &[amount], false)),
        ))
        .await
        .unwrap();
    r.credit.unwrap().rate[0].id
}

pub fn cede(rata: RataId, from: PartyId, to: PartyId, amount: i64) -> Command {
    Command::Transfer(vec![TransferRequest::Move {
        rata,
        from: AccountRef::Holder(from),
        to: AccountRef::Holder(to),
        amount: Cents::new(amount),
        kind: TransferKind::Cession,
        pending: true,
        disclose: false,
        path: Some(crate::paths::CarriedPath {
            before_cutoff: 1,
            from_cutoff: 0,
            bank_client: false,
        }),
    }])
}

/// The answer to a pending transfer: accepted (posted) or refused (voided).
pub fn answer(pending: TransferId, accept: bool) -> Command {
    Command::Transfer(vec![if accept {
        TransferRequest::Post { pending }
    } else {
        TransferRequest::Void { pending }
    }])
}

pub async fn available(store: &DynStore, rata: RataId, party: PartyId) -> i64 {
    store
        .account(rata, AccountRef::Holder(party))
        .await
        .unwrap()
        .map(|a| a.balance.available().unwrap().get())
        .unwrap_or(0)
}

/// A party's feed holds what concerns it: what it ceded, what was ceded to it, and the
/// answer to each, though an answer's row names only who gave it. A third party's feed
/// holds none of it; a page starts after the movement it is given.
pub async fn feed_tells_both_sides_of_a_cession_and_of_its_answer(store: DynStore) {
    let cedente = party(&store, 1).await;
    let bank = party(&store, 2).await;
    let other = party(&store, 3).await;
    let rata = funded(&store, "funded", cedente, 10_000).await;
    let issued = store.party_feed(cedente, 0, 100).await.unwrap();
    assert_eq!(issued.len(), 1, "{issued:?}");
    let cession = store
        .submit(op("cede", cede(rata, cedente, bank, 4_000)))
        .await
        .unwrap();
    let refusal = store
        .submit(Operation {
            on_behalf_of: Some(bank),
            ..op("refuse", answer(cession.transfers[0], false))
        })
        .await
        .unwrap();
    let sent = cession.transfers[0];
    let refused = refusal.transfers[0];
    let ids = |rows: &[crate::feed::FeedRow]| rows.iter().map(|r| r.transfer).collect::<Vec<_>>();
    let of_cedente = store.party_feed(cedente, 0, 100).await.unwrap();
    assert_eq!(ids(&of_cedente), vec![issued[0].transfer, sent, refused]);
    let answer_row = &of_cedente[2];
    assert_eq!(answer_row.party, Some(bank));
    let answered = answer_row.answers.unwrap();
    assert_eq!(
        (answered.transfer, answered.party, answered.counterparty),
        (sent, Some(cedente), Some(bank))
    );
    assert_eq!(answered.amount, Cents::new(4_000));
    assert_eq!(answer_row.rata, rata);
    assert!(!answer_row.codice_univoco.is_empty(), "{answer_row:?}");
    let of_bank = store.party_feed(bank, 0, 100).await.unwrap();
    assert_eq!(ids(&of_bank), vec![sent, refused]);
    assert!(store.party_feed(other, 0, 100).await.unwrap().is_empty());
    // Paged: after the cession, one row at a time.
    assert_eq!(
        ids(&store.party_feed(cedente, sent, 1).await.unwrap()),
        vec![refused]
    );
    assert_eq!(store.party_feed_end(cedente).await.unwrap(), (refused, 0));
    assert_eq!(store.party_feed_end(other).await.unwrap(), (0, 0));
    let rows = store.feed_rows(&[refused, sent, 999_999]).await.unwrap();
    assert_eq!(ids(&rows), vec![sent, refused]);
    assert_verified(&store).await;
}

/// Webhook subscriptions: at most ten live per party; a due one is leased to one
/// deliverer until its lease runs out; a failure counts and moves the next attempt, a
/// delivery moves the cursor and clears the count; a revoked one is never due again.
pub async fn webhooks_are_capped_leased_once_retried_and_revoked(store: DynStore) {
    use crate::webhooks::{Delivery, MAX_PER_PARTY, NewWebhook};
    let party = party(&store, 1).await;
    let at = t0();
    let user = store
        .create_user(
            NewUser {
                username: "banca".into(),
                display_name: "Banca".into(),
                password_hash: "h".into(),
                pin_hash: "p".into(),
                party: Some(party),
                role: Role::User,
            },
            "tester",
            at,
        )
        .await
        .unwrap();
    let hook = |n: usize| NewWebhook {
        party,
        user,
        url: format!("https://banca.example/hook/{n}"),
        secret: format!("segreto-{n}"),
        created_by: "banca#1".into(),
        at,
        cursor: "c0".into(),
    };
    let mut ids = Vec::new();
    for n in 0..MAX_PER_PARTY {
        ids.push(store.create_webhook(hook(n)).await.unwrap().unwrap());
    }
    assert_eq!(store.create_webhook(hook(99)).await.unwrap(), None);
    for id in &ids[1..] {
        assert!(store.revoke_webhook(party, *id, at).await.unwrap());
    }
    assert!(!store.revoke_webhook(party, ids[1], at).await.unwrap());
    assert!(!store.revoke_webhook(party + 1, ids[0], at).await.unwrap());
    let id = ids[0];
    let listed = store.webhooks_of(party).await.unwrap();
    assert_eq!(listed.len(), MAX_PER_PARTY);
    assert_eq!((listed[0].id, listed[0].revoked_at), (id, None));
    assert_eq!(listed[0].secret, "segreto-0");

    // How many subscriptions a deliverer claims at `now`, leasing them until `until`.
    let claims = |now, until| {
        let store = store.clone();
        async move {
            store
                .claim_due_webhooks(now, until, 10)
                .await
                .unwrap()
                .len()
        }
    };
    let lease = at + chrono::Duration::seconds(30);
    let claimed = store.claim_due_webhooks(at, lease, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|h| h.id).collect::<Vec<_>>(), vec![id]);
    // Leased: no one else gets it until the lease runs out.
    assert_eq!(claims(at, lease).await, 0);
    let later = lease + chrono::Duration::seconds(1);
    assert_eq!(
        claims(later, later + chrono::Duration::seconds(30)).await,
        1
    );

    let retry = later + chrono::Duration::seconds(2);
    store
        .record_delivery(
            id,
            later,
            &Delivery::Failed {
                status: Some(500),
                error: "HTTP 500".into(),
                next_attempt_at: retry,
            },
        )
        .await
        .unwrap();
    let h = &store.webhooks_of(party).await.unwrap()[0];
    assert_eq!(
        (h.failures, h.last_status, h.cursor.as_str()),
        (1, Some(500), "c0")
    );
    assert_eq!(h.last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(h.next_attempt_at, retry);
    assert_eq!(claims(later, later).await, 0);
    assert_eq!(claims(retry, retry).await, 1);
    store
        .record_delivery(
            id,
            retry,
            &Delivery::Delivered {
                cursor: "c5".into(),
                events: 5,
                status: 204,
                next_attempt_at: retry,
            },
        )
        .await
        .unwrap();
    let h = &store.webhooks_of(party).await.unwrap()[0];
    assert_eq!((h.failures, h.delivered, h.cursor.as_str()), (0, 5, "c5"));
    assert_eq!((h.last_status, h.last_error.as_deref()), (Some(204), None));
    assert_eq!(h.last_delivered_at, Some(retry));
    // Nothing new: the attempt is not recorded as one.
    let idle = retry + chrono::Duration::seconds(1);
    assert_eq!(claims(retry, retry).await, 1);
    store
        .record_delivery(
            id,
            idle,
            &Delivery::Idle {
                next_attempt_at: idle,
            },
        )
        .await
        .unwrap();
    let h = &store.webhooks_of(party).await.unwrap()[0];
    assert_eq!((h.last_attempt_at, h.next_attempt_at), (Some(retry), idle));
    assert!(store.revoke_webhook(party, id, idle).await.unwrap());
    assert_eq!(claims(idle, idle).await, 0);
}

async fn assert_verified(store: &DynStore) {
    let report = store.verify().await.unwrap();
    assert!(report.ok(), "verify found problems: {:?}", report.problems);
}

pub async fn registers_parties_and_refuses_duplicate_cf(store: DynStore) {
    let a = party(&store, 1).await;
    let found = store.party_by_cf(&entity_cf(1)).await.unwrap().unwrap();
    assert_eq!(found.id, a);
    assert_eq!(found.name, "Impresa 1 S.r.l.");
    let before = store.counts().await.unwrap();
    let err = store
        .submit(op(
            "dup",
            Command::RegisterParty(NewParty {
                cf: entity_cf(1),
                name: "Altro".into(),
                kind: PartyKind::Bank,
            }),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "party_exists");
    assert_eq!(store.counts().await.unwrap(), before);
    assert!(store.party(a + 100).await.unwrap().is_none());
}

/// Omocodia: the Agency gives a person whose code collides another spelling of the same
/// code (letters for some digits, the check character recomputed). Either spelling finds
/// the one party; registering the other is a duplicate, in one batch or in two.
pub async fn r_cf_omocodic_variants_name_one_party(store: DynStore) {
    let register = |k: &str, cf: &str| {
        op(
            k,
            Command::RegisterParty(NewParty {
                cf: CodiceFiscale::parse(cf).unwrap(),
                name: "Mario Rossi".into(),
                kind: PartyKind::Person,
            }),
        )
    };
    let base = "RSSMRA45C12F205C";
    let omocode = "RSSMRA45C12F20RX";
    let id = store
        .submit(register("p-base", base))
        .await
        .unwrap()
        .party
        .unwrap();
    for cf in [base, omocode, "RSSMRAQRCMNFNLRG"] {
        let found = store
            .party_by_cf(&CodiceFiscale::parse(cf).unwrap())
            .await
            .unwrap();
        assert_eq!(found.map(|p| p.id), Some(id), "{cf}");
    }
    let e = store.submit(register("p-omo", omocode)).await.unwrap_err();
    assert_eq!(e.code(), "party_exists");
    assert!(e.to_string().contains(base), "{e}");
    // Two spellings of another person in one batch: one party.
    let (a, b) = tokio::join!(
        store.submit(register("q-a", "BNCGNN80A01H501T")),
        store.submit(register("q-b", "BNCGNN80A01H50ML")),
    );
    assert_eq!(
        usize::from(a.is_ok()) + usize::from(b.is_ok()),
        1,
        "{a:?} {b:?}"
    );
    // An unrelated code is still unknown.
    let other = CodiceFiscale::parse("VRDLGU70M41F205M").unwrap();
    assert!(store.party_by_cf(&other).await.unwrap().is_none());
}

pub async fn r_conserve_issue_answer_cede_refuse_keeps_balances(store: DynStore) {
    let fornitore = party(&store, 1).await;
    let bank = party(&store, 2).await;
    let issued = store
        .submit(op(
            "issue",
            Command::IssueCredit(new_credit(fornitore, &[100_003, 100_000], true)),
        ))
        .await
        .unwrap();
    let credit = issued.credit.unwrap();
    let rata = credit.rate[0].id;
    // Pending until the fornitore answers (F3): nothing available yet.
    assert_eq!(available(&store, rata, fornitore).await, 0);
    let acc = store
        .account(rata, AccountRef::Holder(fornitore))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acc.balance.pending_in(), Cents::new(100_003));
    store
        .submit(op("accept", answer(credit.pending[0], true)))
        .await
        .unwrap();
    assert_eq!(available(&store, rata, fornitore).await, 100_003);
    // Cede, refuse: the amount comes back whole.
    let cession = store
        .submit(op("cede-1", cede(rata, fornitore, bank, 100_003)))
        .await
        .unwrap();
    assert_eq!(available(&store, rata, fornitore).await, 0);
    store
        .submit(op("refuse", answer(cession.transfers[0], false)))
        .await
        .unwrap();
    assert_eq!(available(&store, rata, fornitore).await, 100_003);
    // Cede again and accept: the bank holds it.
    let cession = store
        .submit(op("cede-2", cede(rata, fornitore, bank, 100_003)))
        .await
        .unwrap();
    store
        .submit(op("accept-2", answer(cession.transfers[0], true)))
        .await
        .unwrap();
    assert_eq!(available(&store, rata, bank).await, 100_003);
    assert_eq!(available(&store, rata, fornitore).await, 0);
    // F24 use into the system account.
    store
        .submit(op(
            "use",
            Command::Transfer(vec![TransferRequest::Move {
                rata,
                from: AccountRef::Holder(bank),
                to: AccountRef::System(AccountKind::Used),
                amount: Cents::new(3),
                kind: TransferKind::Use,
                pending: false,
                disclose: false,
                path: None,
            }]),
        ))
        .await
        .unwrap();
    assert_eq!(available(&store, rata, bank).await, 100_000);
    let holdings = store.holdings(bank).await.unwrap();
    assert_eq!(holdings.len(), 1);
    let stored = store.credit(credit.id).await.unwrap().unwrap();
    assert_eq!(stored.rate.len(), 2);
    assert_eq!(stored.rate[0].amount, Cents::new(100_003));
    assert_eq!(stored.protocol, credit.protocol);
    assert_verified(&store).await;
}

pub async fn r_conserve_race_for_the_same_amount_exactly_one_wins(store: DynStore) {
    let holder = party(&store, 1).await;
    let mut takers = Vec::new();
    for n in 2..34 {
        takers.push(party(&store, n).await);
    }
    let rata = funded(&store, "fund", holder, 50_000).await;
    let mut tasks = Vec::new();
    for (i, to) in takers.iter().enumerate() {
        let store = store.clone();
        let to = *to;
        tasks.push(tokio::spawn(async move {
            store
                .submit(op(&format!("race-{i}"), cede(rata, holder, to, 50_000)))
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(e) => assert_eq!(e.code(), "insufficient_available", "{e}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(available(&store, rata, holder).await, 0);
    let acc = store
        .account(rata, AccountRef::Holder(holder))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acc.balance.pending_out(), Cents::new(50_000));
    assert_verified(&store).await;
}

pub async fn idempotent_retry_returns_first_receipt_and_applies_nothing(store: DynStore) {
    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let rata = funded(&store, "fund", a, 1_000).await;
    let first = store
        .submit(op("retry-me", cede(rata, a, b, 400)))
        .await
        .unwrap();
    let before = store.counts().await.unwrap();
    let mut again = op("retry-me", cede(rata, a, b, 400));
    again.at = t0() + chrono::Duration::seconds(30);
    let second = store.submit(again).await.unwrap();
    assert!(second.replayed);
    assert_eq!(
        Receipt {
            replayed: false,
            ..second
        },
        first
    );
    assert_eq!(store.counts().await.unwrap(), before);
    assert_eq!(available(&store, rata, a).await, 600);
    assert_eq!(store.receipt(&key("retry-me")).await.unwrap(), Some(first));
}

pub async fn idempotent_concurrent_retries_apply_once(store: DynStore) {
    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let rata = funded(&store, "fund", a, 1_000).await;
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.submit(op("same-key", cede(rata, a, b, 100))).await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut fresh = 0;
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        ids.insert(r.operation_id);
        if !r.replayed {
            fresh += 1;
        }
    }
    assert_eq!(ids.len(), 1, "every retry sees the same operation");
    assert_eq!(fresh, 1);
    assert_eq!(available(&store, rata, a).await, 900);
    assert_verified(&store).await;
}

pub async fn idempotency_key_reused_for_another_request_is_refused(store: DynStore) {
    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let rata = funded(&store, "fund", a, 1_000).await;
    store.submit(op("k", cede(rata, a, b, 100))).await.unwrap();
    let err = store
        .submit(op("k", cede(rata, a, b, 200)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "idempotency_conflict");
    assert_eq!(available(&store, rata, a).await, 900);
}

pub async fn group_commit_batches_and_isolates_failures(store: DynStore) {
    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let rata = funded(&store, "fund", a, 100_000).await;
    let before = store.counts().await.unwrap();
    let (batches_before, ops_before) = store.write_stats();
    // 400 requests at once; every fourth asks for too much and must fail alone.
    let mut tasks = Vec::new();
    for i in 0..400 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let amount = if i % 4 == 0 { 1_000_000 } else { 10 };
            store
                .submit(op(&format!("gc-{i}"), cede(rata, a, b, amount)))
                .await
        }));
    }
    // Readiness pings queued among them are answered with their batch and counted as no
    // operation.
    let pings: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.ping_writer().await })
        })
        .collect();
    let mut ok = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(i % 4, 0, "request {i} failed: {e}");
                assert_eq!(e.code(), "insufficient_available");
            }
        }
    }
    assert_eq!(ok, 300);
    let (batches, ops) = store.write_stats();
    assert_eq!(ops - ops_before, 400);
    assert!(
        batches - batches_before < 400,
        "400 concurrent requests took {} transactions: no batching",
        batches - batches_before
    );
    let after = store.counts().await.unwrap();
    assert_eq!(after.operations, before.operations + 300);
    assert_eq!(after.transfers, before.transfers + 300);
    assert_eq!(available(&store, rata, a).await, 100_000 - 3_000);
    for p in pings {
        p.await.unwrap().unwrap();
    }
    // The ledger head's counters are the row counts; a ping alone writes and counts nothing.
    assert_eq!(store.head_counts().await.unwrap(), after);
    store.ping_writer().await.unwrap();
    assert_eq!(store.write_stats(), (batches, ops));
    assert_eq!(store.counts().await.unwrap(), after);
    assert_verified(&store).await;
}

pub async fn bad_input_is_refused_and_leaves_store_unchanged(store: DynStore) {
    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let rata = funded(&store, "fund", a, 1_000).await;
    let before = store.counts().await.unwrap();
    let cases: Vec<(&str, Command)> = vec![
        ("party_unknown", cede(rata, a, 999, 10)),
        ("rata_unknown", cede(rata + 999, a, b, 10)),
        ("no_holding", cede(rata, b, a, 10)),
        ("amount_not_positive", cede(rata, a, b, 0)),
        ("amount_not_positive", cede(rata, a, b, -5)),
        ("insufficient_available", cede(rata, a, b, 1_001)),
        ("invalid_operation", Command::Transfer(vec![])),
        (
            "invalid_operation",
            Command::Transfer(vec![TransferRequest::Move {
                rata,
                from: AccountRef::System(AccountKind::Issuance),
                to: AccountRef::Holder(b),
                amount: Cents::new(10),
                kind: TransferKind::Issue,
                pending: false,
                disclose: false,
                path: None,
            }]),
        ),
        (
            "unknown_pending",
            Command::Transfer(vec![TransferRequest::Post { pending: 9_999 }]),
        ),
        (
            "party_unknown",
            Command::IssueCredit(new_credit(12_345, &[10], false)),
        ),
        (
            "invalid_operation",
            Command::IssueCredit(new_credit(a, &[], false)),
        ),
        (
            "invalid_operation",
            Command::IssueCredit(new_credit(a, &[10, 0], false)),
        ),
        // The second movement fails: the first must not apply either.
        (
            "insufficient_available",
            Command::Transfer(vec![
                TransferRequest::Move {
                    rata,
                    from: AccountRef::Holder(a),
                    to: AccountRef::Holder(b),
                    amount: Cents::new(600),
                    kind: TransferKind::Cession,
                    pending: true,
                    disclose: false,
                    path: None,
                },
                TransferRequest::Move {
                    rata,
                    from: AccountRef::Holder(a),
                    to: AccountRef::System(AccountKind::Used),
                    amount: Cents::new(600),
                    kind: TransferKind::Use,
                    pending: false,
                    disclose: false,
                    path: None,
                },
            ]),
        ),
    ];
    for (i, (code, command)) in cases.into_iter().enumerate() {
        let err = store
            .submit(op(&format!("bad-{i}"), command))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "case {i}: {err}");
        assert!(!err.to_string().is_empty());
    }
    let mut blank_user = op("blank-user", cede(rata, a, b, 1));
    blank_user.acting_user = String::new();
    assert_eq!(
        store.submit(blank_user).await.unwrap_err().code(),
        "invalid_operation"
    );
    assert!(IdempotencyKey::parse("").is_err());
    assert!(IdempotencyKey::parse("has space").is_err());
    assert!(IdempotencyKey::parse(&"x".repeat(129)).is_err());
    assert_eq!(store.counts().await.unwrap(), before);
    assert_eq!(available(&store, rata, a).await, 1_000);
    // A failed request left no trace, so the same key may carry a corrected request.
    store
        .submit(op("bad-5", cede(rata, a, b, 1_000)))
        .await
        .unwrap();
    assert_verified(&store).await;
}

pub async fn r_answer_pending_is_answered_only_once(store: DynStore) {
    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let rata = funded(&store, "fund", a, 1_000).await;
    let c = store
        .submit(op("cede", cede(rata, a, b, 1_000)))
        .await
        .unwrap();
    let pending = c.transfers[0];
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let answer = if i % 2 == 0 {
                TransferRequest::Post { pending }
            } else {
                TransferRequest::Void { pending }
            };
            store
                .submit(op(&format!("answer-{i}"), Command::Transfer(vec![answer])))
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), "pending_already_resolved"),
        }
    }
    assert_eq!(ok, 1, "R-ANSWER: one answer, irreversible");
    let total = available(&store, rata, a).await + available(&store, rata, b).await;
    assert_eq!(total, 1_000);
    assert_verified(&store).await;
}

pub async fn r_history_records_user_parties_and_operation(store: DynStore) {
    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let rata = funded(&store, "fund", a, 1_000).await;
    let mut o = op("hist", cede(rata, a, b, 250));
    o.acting_user = "intermediario-7".into();
    o.on_behalf_of = Some(a);
    let r = store.submit(o).await.unwrap();
    let history = store.history(rata).await.unwrap();
    let row = history.iter().find(|t| t.id == r.transfers[0]).unwrap();
    assert_eq!(row.operation, r.operation_id);
    assert_eq!(row.acting_user, "intermediario-7");
    assert_eq!(row.party, Some(a));
    assert_eq!(row.counterparty, Some(b));
    assert_eq!(row.amount, Cents::new(250));
    assert_eq!(row.kind, TransferKind::Cession);
    assert_eq!(row.at_micros, t0().timestamp_micros());
    assert_eq!(history[0].kind, TransferKind::Issue);
}

pub async fn r_history_of_several_rate_in_one_read(store: DynStore) {
    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let first = funded(&store, "fund-1", a, 1_000).await;
    let second = funded(&store, "fund-2", a, 2_000).await;
    store
        .submit(op("c1", cede(second, a, b, 300)))
        .await
        .unwrap();
    store
        .submit(op("c2", cede(first, a, b, 100)))
        .await
        .unwrap();
    let mut expected = store.history(first).await.unwrap();
    expected.extend(store.history(second).await.unwrap());
    assert_eq!(
        store.histories(&[second, first, 9_999]).await.unwrap(),
        expected,
        "by rata, then oldest first; an unknown rata has no rows"
    );
    assert!(store.histories(&[]).await.unwrap().is_empty());
}

pub async fn protocols_and_codici_univoci_are_unique(store: DynStore) {
    let a = party(&store, 1).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .submit(op(
                    &format!("c-{i}"),
                    Command::IssueCredit(new_credit(a, &[100, 100, 100], false)),
                ))
                .await
        }));
    }
    let mut protocols = std::collections::HashSet::new();
    let mut codes = std::collections::HashSet::new();
    for t in tasks {
        let c = t.await.unwrap().unwrap().credit.unwrap();
        assert_eq!(c.protocol.len(), 17);
        assert!(protocols.insert(c.protocol.clone()));
        for r in c.rate {
            assert_eq!(r.codice_univoco.len(), 30);
            assert!(r.codice_univoco.starts_with(&c.protocol));
            assert!(codes.insert(r.codice_univoco));
        }
    }
    assert_eq!(codes.len(), 150);
    assert_verified(&store).await;
}

pub async fn r_conserve_large_amounts_stay_exact(store: DynStore) {
    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    // €10^12 in cents: beyond f64's exact cents, exact in i64.
    let huge = 100_000_000_000_000i64;
    let rata = funded(&store, "fund", a, huge).await;
    let c = store
        .submit(op("cede", cede(rata, a, b, huge - 1)))
        .await
        .unwrap();
    store
        .submit(op("accept", answer(c.transfers[0], true)))
        .await
        .unwrap();
    assert_eq!(available(&store, rata, a).await, 1);
    assert_eq!(available(&store, rata, b).await, huge - 1);
    let err = store
        .submit(op("too-much", cede(rata, b, a, i64::MAX)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "insufficient_available");
    assert_verified(&store).await;
}

/// Used by backends' own tests: a store with some history to tamper with.
pub async fn seed_history(store: &DynStore) -> (RataId, Vec<i64>) {
    let a = party(store, 1).await;
    let b = party(store, 2).await;
    let rata = funded(store, "fund", a, 10_000).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = store
            .submit(op(&format!("seed-{i}"), cede(rata, a, b, 100)))
            .await
            .unwrap();
        ids.extend(r.transfers);
    }
    assert_verified(store).await;
    (rata, ids)
}

pub fn is_unavailable(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable { .. })
}

pub async fn users_pins_delegations_and_tokens(store: DynStore) {
    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let new = |name: &str, party| NewUser {
        username: name.into(),
        display_name: format!("Utente {name}"),
        password_hash: "hash".into(),
        pin_hash: "pin".into(),
        party,
        role: Role::User,
    };
    let u = store
        .create_user(new("mario", Some(a)), "operatore", t0())
        .await
        .unwrap();
    let err = store
        .create_user(new("mario", None), "operatore", t0())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "user_exists");
    let found = store.user_by_name("mario").await.unwrap().unwrap();
    assert_eq!(
        (found.id, found.party, found.role),
        (u, Some(a), Role::User)
    );
    assert!(
        !store.has_operator().await.unwrap(),
        "a titolare's user is no operator"
    );
    store
        .create_user(
            NewUser {
                role: Role::Operator,
                ..new("operatore", None)
            },
            "cessio-cli",
            t0(),
        )
        .await
        .unwrap();
    assert!(store.has_operator().await.unwrap());
    assert_eq!(store.pin_failed(u, Utc::now()).await.unwrap(), 1);
    assert_eq!(store.pin_failed(u, Utc::now()).await.unwrap(), 2);
    store.pin_reset(u, Some("operatore"), t0()).await.unwrap();
    assert_eq!(store.user(u).await.unwrap().unwrap().pin_failures, 0);
    assert_eq!(
        store
            .pin_failed(9_999, Utc::now())
            .await
            .unwrap_err()
            .code(),
        "user_unknown"
    );
    let grant = Command::Delegation(DelegationChange::Grant {
        user: u,
        party: b,
        scope: DelegationScope::Disposizione,
        until: None,
    });
    store.submit(op("grant", grant)).await.unwrap();
    let live = store.delegations(u).await.unwrap();
    assert_eq!(live.iter().map(|d| d.party).collect::<Vec<_>>(), vec![b]);
    let revoke = Command::Delegation(DelegationChange::Revoke { user: u, party: b });
    store.submit(op("revoke", revoke)).await.unwrap();
    assert!(store.delegations(u).await.unwrap().is_empty());
    let t = store
        .create_token(u, "tokenhash", "script", t0())
        .await
        .unwrap();
    assert_eq!(store.token_user("tokenhash").await.unwrap().unwrap().id, u);
    assert!(
        !store.revoke_token(u + 1, t, t0()).await.unwrap(),
        "only its owner revokes a token"
    );
    assert!(store.revoke_token(u, t, t0()).await.unwrap());
    assert!(store.token_user("tokenhash").await.unwrap().is_none());
}

/// A delegation has a scope and an optional last day; a new grant of the same pair
/// supersedes the live one; rows are closed, never deleted; every grant and revocation is
/// an entry of the operator's register naming who did it; a retry applies nothing.
pub async fn delegations_have_scope_end_date_history_and_audit(store: DynStore) {
    let family = party(&store, 1).await;
    let studio_party = party(&store, 2).await;
    let studio = store
        .create_user(
            NewUser {
                username: "studio".into(),
                display_name: "Studio".into(),
                password_hash: "hash".into(),
                pin_hash: "pin".into(),
                party: Some(studio_party),
                role: Role::User,
            },
            "operatore",
            t0(),
        )
        .await
        .unwrap();
    let until = NaiveDate::from_ymd_opt(2024, 12, 31).unwrap();
    let as_titolare = |k: &str, change: DelegationChange, minutes: i64| Operation {
        acting_user: "titolare#7".into(),
        at: t0() + chrono::Duration::minutes(minutes),
        ..op(k, Command::Delegation(change))
    };
    let grant = as_titolare(
        "g1",
        DelegationChange::Grant {
            user: studio,
            party: family,
            scope: DelegationScope::Consultazione,
            until: Some(until),
        },
        0,
    );
    let first = store.submit(grant.clone()).await.unwrap();
    assert_eq!(first.party, Some(family));
    let again = store.submit(grant).await.unwrap();
    assert!(again.replayed, "a retry applies nothing");
    let live = store.delegations(studio).await.unwrap();
    assert_eq!(live.len(), 1);
    let d = &live[0];
    assert_eq!(
        (
            d.party,
            d.scope,
            d.until,
            d.granted_at,
            d.granted_by.as_deref()
        ),
        (
            family,
            DelegationScope::Consultazione,
            Some(until),
            t0(),
            Some("titolare#7")
        )
    );
    assert!(d.live_on(until) && !d.live_on(until.succ_opt().unwrap()));

    store
        .submit(as_titolare(
            "g2",
            DelegationChange::Grant {
                user: studio,
                party: family,
                scope: DelegationScope::Disposizione,
                until: None,
            },
            1,
        ))
        .await
        .unwrap();
    let live = store.delegations(studio).await.unwrap();
    assert_eq!(live.len(), 1, "a new grant supersedes the live one");
    assert_eq!(
        (live[0].scope, live[0].until),
        (DelegationScope::Disposizione, None)
    );

    let revoke = DelegationChange::Revoke {
        user: studio,
        party: family,
    };
    store
        .submit(as_titolare("r1", revoke.clone(), 2))
        .await
        .unwrap();
    // Nothing live to end: recorded as an operation, but no audit entry of a revocation.
    store.submit(as_titolare("r2", revoke, 3)).await.unwrap();
    assert!(store.delegations(studio).await.unwrap().is_empty());

    let history = store.party_delegations(family, 10).await.unwrap();
    assert_eq!(history.len(), 2, "rows are closed, never deleted");
    assert!(history[0].id > history[1].id, "newest first");
    assert_eq!(
        history[0].revoked_at,
        Some(t0() + chrono::Duration::minutes(2))
    );
    assert_eq!(history[1].revoked_by.as_deref(), Some("titolare#7"));
    assert_eq!(store.party_delegations(family, 1).await.unwrap().len(), 1);
    assert!(
        store
            .party_delegations(studio_party, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let audit = store
        .operator_events(&OperatorEventQuery {
            kinds: vec![
                DELEGATION_GRANTED_EVENT.into(),
                DELEGATION_REVOKED_EVENT.into(),
            ],
            party: Some(family),
            ..OperatorEventQuery::default()
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = audit.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            DELEGATION_GRANTED_EVENT,
            DELEGATION_GRANTED_EVENT,
            DELEGATION_REVOKED_EVENT
        ]
    );
    assert!(audit.iter().all(|e| e.actor == "titolare#7"));
    assert_eq!(audit[0].data["user"], studio);
    assert_eq!(audit[0].data["scope"], "consultazione");
    assert_eq!(audit[0].data["until"], "2024-12-31");
    assert_eq!(audit[0].data["operation"], first.operation_id);

    let unknown = store
        .submit(op(
            "g-unknown",
            Command::Delegation(DelegationChange::Grant {
                user: studio,
                party: 9_999,
                scope: DelegationScope::Disposizione,
                until: None,
            }),
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), "party_unknown");
}

pub async fn r_history_party_entries_as_of_a_past_time(store: DynStore) {
    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let rata = funded(&store, "fund", a, 1_000).await;
    let mut c = op("cede", cede(rata, a, b, 400));
    c.at = t0() + chrono::Duration::hours(1);
    let c = store.submit(c).await.unwrap();
    let mut accept = op("accept", answer(c.transfers[0], true));
    accept.at = t0() + chrono::Duration::hours(2);
    store.submit(accept).await.unwrap();
    let now = store.party_entries(b, None).await.unwrap();
    assert_eq!(now.len(), 1);
    let e = &now[0];
    assert_eq!(
        (e.party, e.counterparty, e.amount),
        (Some(a), Some(b), Cents::new(400))
    );
    assert!(e.pending);
    assert!(e.answer.unwrap().accepted);
    assert_eq!(e.type_key, "superbonus");
    let before_answer = store
        .party_entries(b, Some(t0() + chrono::Duration::minutes(90)))
        .await
        .unwrap();
    assert!(before_answer[0].answer.is_none());
    let before_cession = store.party_entries(b, Some(t0())).await.unwrap();
    assert!(before_cession.is_empty());
    // The issuance shows the beneficiary as cedente.
    let of_a = store.party_entries(a, None).await.unwrap();
    assert_eq!(of_a.len(), 2);
    assert_eq!(of_a[0].kind, TransferKind::Issue);
    assert_eq!(of_a[0].party, Some(a));
    assert_eq!(store.parties(&[b, a, 777]).await.unwrap().len(), 2);
}

/// F9: the deceased flag is set and cleared (unknown party refused); the operator's
/// register keeps every entry, in order, selected by kind, transfer, party and time.
pub async fn f9_deceased_flag_and_operator_register(store: DynStore) {
    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let rata = funded(&store, "funded", a, 500).await;
    let history = store.history(rata).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(store.transfer(last.id).await.unwrap().as_ref(), Some(last));
    assert_eq!(store.transfer(last.id + 1000).await.unwrap(), None);
    store.set_deceased(a, true, "op", t0()).await.unwrap();
    assert!(store.party(a).await.unwrap().unwrap().deceased);
    assert!(!store.party(b).await.unwrap().unwrap().deceased);
    store.set_deceased(a, false, "op", t0()).await.unwrap();
    assert!(!store.party(a).await.unwrap().unwrap().deceased);
    assert_eq!(
        store.set_deceased(999, true, "op", t0()).await,
        Err(StoreError::UnknownParty { party: 999 })
    );

    let event = |kind: &str, transfer: Option<i64>, party: Option<PartyId>, minutes: i64| {
        crate::NewOperatorEvent {
            kind: kind.into(),
            at: t0() + chrono::Duration::minutes(minutes),
            actor: "op".into(),
            transfer,
            party,
            counterparty: Some(b),
            data: serde_json::json!({ "reason": format!("{kind} {minutes}"), "days": 30 }),
        }
    };
    let first = store
        .append_operator_event(event("suspend", Some(7), Some(a), 0))
        .await
        .unwrap();
    let second = store
        .append_operator_event(event("risk_hit", Some(7), None, 1))
        .await
        .unwrap();
    store
        .append_operator_event(event("suspend", Some(8), Some(a), 2))
        .await
        .unwrap();
    assert!(second > first);
    let q = |kinds: &[&str], transfer, party, since| crate::OperatorEventQuery {
        kinds: kinds.iter().map(|k| k.to_string()).collect(),
        transfer,
        party,
        since,
        after: None,
        limit: None,
    };
    let all = store
        .operator_events(&crate::OperatorEventQuery::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].id, first);
    assert_eq!(all[0].data["reason"], "suspend 0");
    assert_eq!(all[0].at, t0());
    assert_eq!(all[1].party, None);
    let kinds: Vec<i64> = store
        .operator_events(&q(&["suspend"], None, None, None))
        .await
        .unwrap()
        .iter()
        .map(|e| e.transfer.unwrap())
        .collect();
    assert_eq!(kinds, [7, 8]);
    assert_eq!(
        store
            .operator_events(&q(&["suspend", "risk_hit"], Some(7), None, None))
            .await
            .unwrap()
            .len(),
        2
    );
    // The party matches either side.
    assert_eq!(
        store
            .operator_events(&q(&[], None, Some(b), None))
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store
            .operator_events(&q(
                &[],
                None,
                Some(a),
                Some(t0() + chrono::Duration::minutes(1))
            ))
            .await
            .unwrap()
            .len(),
        1
    );
    let limited = store
        .operator_events(&crate::OperatorEventQuery {
            limit: Some(1),
            ..crate::OperatorEventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
}

/// F1's summary (kept by the writer) against F1 recomputed from the history, after a
/// seeded random mix of communications, cessions, answers (accepted, refused, annulled)
/// and F24 uses sent by concurrent writers: equal for every party, and `verify` agrees.
pub async fn f1_summary_equals_the_history_after_random_concurrent_operations(store: DynStore) {
    const PARTIES: u32 = 5;
    const WRITERS: u64 = 8;
    const STEPS: u64 = 40;
    let mut parties = Vec::new();
    for n in 1..=PARTIES {
        parties.push(party(&store, n).await);
    }
    let parties = Arc::new(parties);
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (store, parties) = (store.clone(), parties.clone());
        tasks.push(tokio::spawn(async move {
            // One seeded stream per writer: the same operations on every run.
            let mut rng = SplitMix64::new(0x5EED_u64 + w);
            let mut next = move |n: u64| rng.below(n);
            let pick = |i: u64| parties[usize::try_from(i).unwrap()];
            let holder = pick(next(u64::from(PARTIES)));
            let issued = store
                .submit(op(
                    &format!("w{w}-issue"),
                    Command::IssueCredit(new_credit(holder, &[500_003, 400_000, 300_000], true)),
                ))
                .await
                .unwrap();
            let credit = issued.credit.unwrap();
            // The first holder accepts rate 0 and 1 and refuses rata 2's communication.
            for (i, pending) in credit.pending.iter().enumerate() {
                let answer = if i < 2 {
                    TransferRequest::Post { pending: *pending }
                } else {
                    TransferRequest::Void { pending: *pending }
                };
                store
                    .submit(op(
                        &format!("w{w}-answer-{i}"),
                        Command::Transfer(vec![answer]),
                    ))
                    .await
                    .unwrap();
            }
            let mut holders = [holder, holder];
            let mut pending: Vec<(usize, i64, PartyId)> = Vec::new();
            for s in 0..STEPS {
                let k = format!("w{w}-{s}");
                let r = usize::try_from(next(2)).unwrap();
                let rata = credit.rate[r].id;
                let from = holders[r];
                match next(4) {
                    // Cede part of what the holder has to someone else, pending.
                    0 | 1 => {
                        let have = available(&store, rata, from).await;
                        let to = pick(next(u64::from(PARTIES)));
                        if have > 0 && to != from {
                            let amount =
                                1 + i64::try_from(next(u64::try_from(have).unwrap())).unwrap();
                            let receipt = store
                                .submit(op(&k, cede(rata, from, to, amount)))
                                .await
                                .unwrap();
                            pending.push((r, receipt.transfers[0], to));
                        }
                    }
                    // Answer the oldest pending cession: accept, refuse or annul.
                    2 => {
                        if !pending.is_empty() {
                            let (r, id, to) = pending.remove(0);
                            let answer = if next(3) == 0 {
                                TransferRequest::Void { pending: id }
                            } else {
                                TransferRequest::Post { pending: id }
                            };
                            let accepted = matches!(answer, TransferRequest::Post { .. });
                            let mut o = op(&k, Command::Transfer(vec![answer]));
                            // The cedente voids its own (annulled) one time in two.
                            o.on_behalf_of = Some(if next(2) == 0 { holders[r] } else { to });
                            store.submit(o).await.unwrap();
                            if accepted
                                && available(&store, credit.rate[r].id, holders[r]).await == 0
                            {
                                holders[r] = to;
                            }
                        }
                    }
                    // Use some in F24.
                    _ => {
                        let have = available(&store, rata, from).await;
                        if have > 1 {
                            store
                                .submit(op(
                                    &k,
                                    Command::Transfer(vec![TransferRequest::Move {
                                        rata,
                                        from: AccountRef::Holder(from),
                                        to: AccountRef::System(AccountKind::Used),
                                        amount: Cents::new(have / 2),
                                        kind: TransferKind::Use,
                                        pending: false,
                                        disclose: false,
                                        path: None,
                                    }]),
                                ))
                                .await
                                .unwrap();
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let far = NaiveDate::from_ymd_opt(2100, 1, 1).unwrap();
    let key = |t: &crate::MonitorTotal| {
        (
            t.type_key.clone(),
            t.year,
            t.codice_tributo.clone(),
            t.received,
            t.kind.as_str(),
            format!("{:?}", t.state),
        )
    };
    for p in parties.iter() {
        let mut summary = store.monitor_totals(*p, None).await.unwrap();
        let mut history: Vec<_> = store
            .monitor_totals(*p, Some(far))
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.amount != Cents::ZERO)
            .collect();
        summary.sort_by_key(key);
        history.sort_by_key(key);
        assert!(!summary.is_empty(), "party {p} has no movements");
        assert_eq!(summary, history, "party {p}");
    }
    assert_verified(&store).await;
}

/// F1 as of the end of a past Rome day, kept per day for a bank and read from the history
/// for a company: a cession counts from the day it was registered, its answer from the day
/// it was given, and a movement recorded after later ones with an earlier instant (old
/// history imported) lands on its own day and every day after it.
pub async fn f1_as_of_a_past_day_reads_the_sums_kept_for_that_day(store: DynStore) {
    // A and B are banks, whose sums are kept per day; C and D companies, whose sums are
    // read from their history.
    let (a, b, c, d) = (
        party_of(&store, 1, PartyKind::Bank).await,
        party_of(&store, 2, PartyKind::Bank).await,
        party(&store, 3).await,
        party(&store, 4).await,
    );
    // The Rome day counts, not UTC's: 22:30 UTC on 1 March is 23:30 in Rome, still the
    // 1st; 23:30 UTC is 00:30 on the 2nd.
    let at = |day: u32, hour: u32| Utc.with_ymd_and_hms(2024, 3, day, hour, 30, 0).unwrap();
    let on = |k: &str, when, command| Operation {
        at: when,
        ..op(k, command)
    };
    let rata = {
        let r = store
            .submit(on(
                "issue",
                at(1, 22),
                Command::IssueCredit(new_credit(a, &[100_000], false)),
            ))
            .await
            .unwrap();
        r.credit.unwrap().rate[0].id
    };
    let first = store
        .submit(on("cede-b", at(1, 23), cede(rata, a, b, 60_000)))
        .await
        .unwrap()
        .transfers[0];
    store
        .submit(Operation {
            on_behalf_of: Some(b),
            ..on("accept-b", at(3, 10), answer(first, true))
        })
        .await
        .unwrap();
    let second = store
        .submit(on("cede-c", at(4, 10), cede(rata, a, c, 10_000)))
        .await
        .unwrap()
        .transfers[0];
    store
        .submit(Operation {
            on_behalf_of: Some(c),
            ..on("refuse-c", at(4, 11), answer(second, false))
        })
        .await
        .unwrap();
    // Recorded last, registered on 2 March.
    store
        .submit(on("cede-d", at(2, 12), cede(rata, a, d, 5_000)))
        .await
        .unwrap();
    let sent = |totals: &[crate::MonitorTotal], state: crate::EntryState| -> i64 {
        totals
            .iter()
            .filter(|t| !t.received && t.kind == TransferKind::Cession && t.state == state)
            .map(|t| t.amount.get())
            .sum()
    };
    let day = |n: u32| NaiveDate::from_ymd_opt(2024, 3, n).unwrap();
    let as_of = |n| {
        let store = store.clone();
        async move { store.monitor_totals(a, Some(day(n))).await.unwrap() }
    };
    assert!(
        as_of(1).await.iter().all(|t| t.kind == TransferKind::Issue),
        "the cession registered at 00:30 on 2 March, Rome time, is not there on the 1st"
    );
    assert!(
        store
            .monitor_totals(a, Some(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()))
            .await
            .unwrap()
            .is_empty(),
        "nothing before the first movement"
    );
    let issued: i64 = as_of(1).await.iter().map(|t| t.amount.get()).sum();
    assert_eq!(issued, 100_000, "issued late on 1 March, Rome time");
    let expected = [
        (2, [65_000, 0, 0]),
        (3, [5_000, 60_000, 0]),
        (4, [5_000, 60_000, 10_000]),
        (5, [5_000, 60_000, 10_000]),
    ];
    for (n, [pending, accepted, refused]) in expected {
        let totals = as_of(n).await;
        assert_eq!(
            sent(&totals, crate::EntryState::Pending),
            pending,
            "pending on {n}"
        );
        assert_eq!(
            sent(&totals, crate::EntryState::Accepted),
            accepted,
            "accepted on {n}"
        );
        assert_eq!(
            sent(&totals, crate::EntryState::Refused),
            refused,
            "refused on {n}"
        );
    }
    let received_by_b = store.monitor_totals(b, Some(day(2))).await.unwrap();
    assert!(
        received_by_b
            .iter()
            .all(|t| t.received && t.state == crate::EntryState::Pending),
        "{received_by_b:?}"
    );
    let received = |totals: &[crate::MonitorTotal]| -> Vec<(crate::EntryState, i64)> {
        totals
            .iter()
            .filter(|t| t.received)
            .map(|t| (t.state, t.amount.get()))
            .collect()
    };
    for (p, n, want) in [
        (c, 3, vec![]),
        (c, 4, vec![(crate::EntryState::Refused, 10_000)]),
        (d, 1, vec![]),
        (d, 2, vec![(crate::EntryState::Pending, 5_000)]),
    ] {
        let got = store.monitor_totals(p, Some(day(n))).await.unwrap();
        assert_eq!(received(&got), want, "party {p} on {n}");
    }
    // Today's sums and the last kept day agree.
    let key = |t: &crate::MonitorTotal| {
        (
            t.type_key.clone(),
            t.kind.as_str(),
            t.received,
            format!("{:?}", t.state),
        )
    };
    for p in [a, b, c, d] {
        let mut today = store.monitor_totals(p, None).await.unwrap();
        let mut kept = store.monitor_totals(p, Some(day(31))).await.unwrap();
        today.sort_by_key(key);
        kept.sort_by_key(key);
        assert_eq!(today, kept, "party {p}");
    }
    assert_verified(&store).await;
}

/// F1 keeps a party's cedibilità and asks what moved since it looked: every movement of one
/// of the party's holdings (a refusal too, which names only the party refusing), and every
/// F24 choice; never a refused operation.
pub async fn holding_changes_name_what_moved_since_a_mark(store: DynStore) {
    let fornitore = party(&store, 1).await;
    let bank = party(&store, 2).await;
    let r1 = funded(&store, "f1", fornitore, 1_000).await;
    let r2 = funded(&store, "f2", fornitore, 2_000).await;
    funded(&store, "f3", bank, 3_000).await;
    let changes = |p: PartyId, since: ChangeMarks| {
        let store = store.clone();
        async move {
            let mut c = store.holding_changes(p, since).await.unwrap();
            c.rate.sort_unstable();
            c
        }
    };
    let now = changes(
        fornitore,
        ChangeMarks {
            transfer: i64::MAX,
            choice: i64::MAX,
        },
    )
    .await;
    assert!(now.rate.is_empty());
    let m0 = now.marks;
    assert!(changes(fornitore, m0).await.rate.is_empty());
    let cession = store
        .submit(op("cede", cede(r1, fornitore, bank, 1_000)))
        .await
        .unwrap();
    let after = changes(fornitore, m0).await;
    assert_eq!(after.rate, vec![r1]);
    assert_eq!(changes(bank, m0).await.rate, vec![r1]);
    let m1 = after.marks;
    assert!(m1.transfer > m0.transfer);
    store
        .submit(op("refuse", answer(cession.transfers[0], false)))
        .await
        .unwrap();
    assert_eq!(changes(fornitore, m1).await.rate, vec![r1]);
    let m2 = changes(bank, m1).await.marks;
    // Refused: more than is held. Nothing moved, nothing is named.
    assert!(
        store
            .submit(op("too-much", cede(r2, fornitore, bank, 2_001)))
            .await
            .is_err()
    );
    assert!(changes(fornitore, m2).await.rate.is_empty());
    store
        .submit(op(
            "choice",
            Command::F24Choice {
                rata: r2,
                party: fornitore,
                declared: true,
                on: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
            },
        ))
        .await
        .unwrap();
    let chosen = changes(fornitore, m2).await;
    assert_eq!(chosen.rate, vec![r2]);
    assert!(chosen.marks.choice > m2.choice);
    assert!(changes(bank, m2).await.rate.is_empty());
    // A party's holdings of some rate, by rata; a rata it does not hold is not there.
    let held = store
        .holdings_in(fornitore, &[r2, r1, r2 + 1_000])
        .await
        .unwrap();
    assert_eq!(
        held.iter().map(|a| a.rata).collect::<Vec<_>>(),
        vec![r1, r2]
    );
}

/// F4 reads through three doors that must agree: `find_entries` (the list), `count_entries`
/// (R-50000's count) and `stream_entries` (the export, in batches); a named cedente or
/// cessionario narrows all three.
pub async fn entries_are_counted_streamed_and_narrowed_to_a_cedente_or_cessionario(
    store: DynStore,
) {
    let (a, b, c) = (
        party(&store, 1).await,
        party(&store, 2).await,
        party(&store, 3).await,
    );
    let rata = funded(&store, "fund", a, 1_000_000).await;
    // More movements than a stream's batch, so that the export crosses batches.
    let many = crate::STREAM_BATCH * 2 + 7;
    let to_b = |n: usize| match cede(rata, a, b, 1) {
        Command::Transfer(one) => Command::Transfer(one.iter().cycle().take(n).cloned().collect()),
        _ => unreachable!(),
    };
    store.submit(op("many-to-b", to_b(many))).await.unwrap();
    for i in 0..3 {
        store
            .submit(op(&format!("to-c-{i}"), cede(rata, a, c, 5)))
            .await
            .unwrap();
    }
    let streamed = |q: EntryQuery| {
        let store = store.clone();
        async move {
            let mut stream = store.stream_entries(q).await.unwrap();
            let mut all = Vec::new();
            while let Some(batch) = stream.next().await {
                let batch = batch.unwrap();
                assert!(!batch.is_empty() && batch.len() <= crate::STREAM_BATCH);
                all.extend(batch);
            }
            all
        }
    };
    let of_a = EntryQuery::of(a);
    let listed = store.find_entries(&of_a).await.unwrap();
    assert_eq!(listed.len(), 1 + many + 3, "the issue and every cession");
    assert_eq!(streamed(of_a.clone()).await, listed);
    assert_eq!(
        store.count_entries(&of_a, usize::MAX).await.unwrap(),
        listed.len()
    );
    assert_eq!(
        store.count_entries(&of_a, 10).await.unwrap(),
        10,
        "counted up to the cap"
    );
    // Narrowed to a cessionario, to a cedente, to both.
    let to_c = EntryQuery {
        cessionario: Some(c),
        ..EntryQuery::of(a)
    };
    let rows = streamed(to_c.clone()).await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|e| e.counterparty == Some(c)));
    assert_eq!(store.count_entries(&to_c, usize::MAX).await.unwrap(), 3);
    let from_a = EntryQuery {
        cedente: Some(a),
        ..EntryQuery::of(b)
    };
    assert_eq!(store.find_entries(&from_a).await.unwrap().len(), many);
    assert_eq!(
        store.count_entries(&from_a, usize::MAX).await.unwrap(),
        many
    );
    let from_c = EntryQuery {
        cedente: Some(c),
        ..EntryQuery::of(b)
    };
    assert!(store.find_entries(&from_c).await.unwrap().is_empty());
    assert!(streamed(from_c).await.is_empty());
    // A reader that stops after one batch frees the stream's slot: more streams than the
    // slots, each dropped early, and the store still answers.
    for _ in 0..crate::STREAMS * 2 {
        let mut stream = store.stream_entries(of_a.clone()).await.unwrap();
        assert!(stream.next().await.unwrap().is_ok());
    }
    assert_eq!(
        store.count_entries(&of_a, usize::MAX).await.unwrap(),
        listed.len()
    );
}

/// A bank holds more rate than one page of `holding_infos`: reading them all goes page by
/// page, and one holding is read by its rata, not found among the party's all.
pub async fn holdings_are_read_in_pages_and_by_rata(store: DynStore) {
    let (a, b) = (party(&store, 1).await, party(&store, 2).await);
    let mut rate = Vec::new();
    for i in 0..5 {
        rate.push(funded(&store, &format!("fund-{i}"), a, 1_000 + i).await);
    }
    funded(&store, "fund-b", b, 1_000).await;
    let whole = store.holding_infos(&HoldingQuery::of(a)).await.unwrap();
    assert_eq!(whole.len(), 5);
    let paged = crate::all_holding_infos(
        &*store,
        HoldingQuery {
            limit: 2,
            ..HoldingQuery::of(a)
        },
    )
    .await
    .unwrap();
    assert_eq!(paged, whole, "three pages, the last one short");
    let one_page = HoldingQuery {
        limit: 5,
        ..HoldingQuery::of(a)
    };
    assert_eq!(
        crate::all_holding_infos(&*store, one_page).await.unwrap(),
        whole
    );
    let third = store
        .holding_infos(&HoldingQuery::of_rata(a, rate[2]))
        .await
        .unwrap();
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].rata.id, rate[2]);
    assert!(
        store
            .holding_infos(&HoldingQuery::of_rata(b, rate[2]))
            .await
            .unwrap()
            .is_empty(),
        "another party's rata"
    );
    // By codice tributo (an F24's lines).
    let by_code = |codes: Vec<String>| {
        let store = store.clone();
        async move {
            store
                .holding_infos(&HoldingQuery {
                    codes,
                    ..HoldingQuery::of(a)
                })
                .await
                .unwrap()
        }
    };
    let code = whole[0].rata.codice_tributo.clone();
    assert_eq!(by_code(vec![code.clone(), "9999".into()]).await, whole);
    assert!(by_code(vec!["9999".into()]).await.is_empty());
    // And by reference year, with the codes or without.
    let by_year = |codes: Vec<String>, years: Vec<u16>| {
        let store = store.clone();
        async move {
            store
                .holding_infos(&HoldingQuery {
                    codes,
                    years,
                    ..HoldingQuery::of(a)
                })
                .await
                .unwrap()
        }
    };
    let year = whole[0].rata.year.get();
    assert_eq!(by_year(Vec::new(), vec![year, year + 1]).await, whole);
    assert_eq!(by_year(vec![code.clone()], vec![year]).await, whole);
    assert!(by_year(vec![code], vec![year + 1]).await.is_empty());
    assert!(by_year(Vec::new(), vec![year - 1]).await.is_empty());
}

/// §5 paths kept with the projections (`crate::paths`): an option gives its holder an
/// empty path; a cession gives its cessionario the path it carries only when accepted, the
/// most restrictive path counting; a cession without a recorded path, and a seizure, send
/// the holding to its history; `verify` recomputes every row.
pub async fn r_chain_paths_are_kept_by_the_writer_with_each_registration_answer_and_seizure(
    store: DynStore,
) {
    use crate::paths::{CarriedPath, HoldingPath};
    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let c = party(&store, 3).await;
    let rata = funded(&store, "fund", a, 10_000).await;
    let move_to = |from, to, amount: i64, pending, path| {
        Command::Transfer(vec![TransferRequest::Move {
            rata,
            from: AccountRef::Holder(from),
            to: AccountRef::Holder(to),
            amount: Cents::new(amount),
            kind: TransferKind::Cession,
            pending,
            disclose: false,
            path,
        }])
    };
    let carried = |before_cutoff, bank_client| {
        Some(CarriedPath {
            before_cutoff,
            from_cutoff: 0,
            bank_client,
        })
    };
    let to_b = store
        .submit(op("a-b", move_to(a, b, 1_000, true, carried(1, false))))
        .await
        .unwrap()
        .transfers[0];
    let account = |p| {
        let store = store.clone();
        async move {
            store
                .holdings_in(p, &[rata])
                .await
                .unwrap()
                .first()
                .map(|h| h.id)
                .unwrap()
        }
    };
    let (ha, hb) = (account(a).await, account(b).await);
    let kept = |ids: Vec<i64>| {
        let store = store.clone();
        async move {
            store
                .holding_paths(&ids)
                .await
                .unwrap()
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>()
        }
    };
    let now = kept(vec![ha, hb]).await;
    assert_eq!(now[&ha], HoldingPath::default(), "the first holder's");
    assert_eq!(
        now[&hb],
        HoldingPath::default(),
        "registered, not yet accepted: a path, with nothing counted"
    );
    store
        .submit(op("accept", answer(to_b, true)))
        .await
        .unwrap();
    let day = crate::summary_days::rome_day(t0().timestamp_micros());
    let counted = HoldingPath {
        before_cutoff: 1,
        received_on: Some(day),
        ..HoldingPath::default()
    };
    assert_eq!(kept(vec![hb]).await[&hb], counted);
    // Posted at once, a bank-client cession: counted and marked in the same batch.
    store
        .submit(op("b-c", move_to(b, c, 100, false, carried(2, true))))
        .await
        .unwrap();
    let hc = account(c).await;
    let bank = HoldingPath {
        before_cutoff: 2,
        bank_client: true,
        received_on: Some(day),
        ..HoldingPath::default()
    };
    assert_eq!(kept(vec![hc]).await[&hc], bank);
    // A second path to the same holder counting less leaves the most restrictive.
    store
        .submit(op("a-c", move_to(a, c, 100, false, carried(1, false))))
        .await
        .unwrap();
    assert_eq!(kept(vec![hc]).await[&hc], bank);
    // Without a recorded path, the holding is read from its history.
    store
        .submit(op("a-c-unknown", move_to(a, c, 100, false, None)))
        .await
        .unwrap();
    assert!(kept(vec![hc]).await[&hc].unknown);
    // A refused cession gives nothing; a seizure marks its holder.
    let refused = store
        .submit(op("a-b-2", move_to(a, b, 100, true, carried(5, true))))
        .await
        .unwrap()
        .transfers[0];
    store
        .submit(op("refuse", answer(refused, false)))
        .await
        .unwrap();
    assert_eq!(kept(vec![hb]).await[&hb], counted);
    store
        .submit(op(
            "seize",
            Command::Transfer(vec![TransferRequest::Move {
                rata,
                from: AccountRef::Holder(b),
                to: AccountRef::System(AccountKind::Seized),
                amount: Cents::new(100),
                kind: TransferKind::Seize,
                pending: false,
                disclose: false,
                path: None,
            }]),
        ))
        .await
        .unwrap();
    let seized = kept(vec![hb]).await[&hb];
    assert!(seized.seized && !seized.is_complete(), "{seized:?}");
    assert_eq!(
        store.holding_paths(&[999_999]).await.unwrap(),
        Vec::new(),
        "an unknown account has no row"
    );
    assert_verified(&store).await;
}

/// A list of holdings reads their rate and credits by primary key: each rata with its
/// own credit, in rata order, a credit read once for its several rate, an unknown id left
/// out.
pub async fn rate_are_read_with_their_credits_by_id(store: DynStore) {
    let a = party(&store, 1).await;
    let three = store
        .submit(op(
            "three",
            Command::IssueCredit(new_credit(a, &[100, 200, 300], false)),
        ))
        .await
        .unwrap()
        .credit
        .unwrap();
    let one = funded(&store, "one", a, 50).await;
    assert!(store.rate_with_credits(&[]).await.unwrap().is_empty());
    let asked = [three.rate[2].id, one, 999_999, three.rate[0].id];
    let read = store.rate_with_credits(&asked).await.unwrap();
    let ids: Vec<RataId> = read.iter().map(|(r, _)| r.id).collect();
    let mut expected = vec![three.rate[0].id, three.rate[2].id, one];
    expected.sort_unstable();
    assert_eq!(ids, expected, "in rata order, the unknown one left out");
    for (rata, credit) in &read {
        assert_eq!(rata.credit, credit.id);
        let stored = store.credit(credit.id).await.unwrap().unwrap();
        assert!(stored.rate.contains(rata), "{rata:?}");
        assert_eq!(
            *credit,
            Credit {
                rate: Vec::new(),
                ..stored
            }
        );
    }
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

fn new_session(token: &str, user: i64, at: DateTime<Utc>, idle_minutes: i64) -> NewSession {
    NewSession {
        key: SecretKey::of(token),
        user,
        data: format!("{{\"token\":\"{token}\"}}"),
        at,
        expires_at: at + minutes(idle_minutes),
    }
}

pub async fn sessions_are_found_by_hash_touched_expire_and_end(store: DynStore) {
    let limits = SessionLimits::default();
    let k = SecretKey::of("cookie-a");
    assert!(
        store
            .create_session(new_session("cookie-a", 7, t0(), 30), limits)
            .await
            .unwrap()
    );
    let s = store.session(&k, t0() + minutes(1)).await.unwrap().unwrap();
    assert_eq!((s.user, s.notice.clone()), (7, None));
    assert!(
        s.data.contains("cookie-a"),
        "the web layer's data comes back"
    );
    assert_eq!(s.expires_at, t0() + minutes(30));
    // Only the hash of the cookie names the session: neither another value nor the hash
    // taken as a cookie finds it.
    assert!(
        store
            .session(&SecretKey::of("cookie-b"), t0())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .session(&SecretKey::of(k.as_str()), t0())
            .await
            .unwrap()
            .is_none()
    );
    // Expired: as good as ended, and it cannot be touched back to life.
    assert!(
        store
            .session(&k, t0() + minutes(30))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !store
            .touch_session(&k, t0() + minutes(31), t0() + minutes(61))
            .await
            .unwrap()
    );
    // Used in time, it lives on; a touch never shortens it.
    assert!(
        store
            .touch_session(&k, t0() + minutes(20), t0() + minutes(50))
            .await
            .unwrap()
    );
    assert!(
        !store
            .touch_session(&k, t0() + minutes(21), t0() + minutes(40))
            .await
            .unwrap()
    );
    assert!(
        store
            .session(&k, t0() + minutes(45))
            .await
            .unwrap()
            .is_some()
    );
    // A notice is taken once.
    let now = t0() + minutes(21);
    assert!(
        store
            .set_session_notice(&k, Some("fatto".into()), now)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .session(&k, now)
            .await
            .unwrap()
            .unwrap()
            .notice
            .as_deref(),
        Some("fatto")
    );
    let takes = futures_join(
        store.take_session_notice(&k, now),
        store.take_session_notice(&k, now),
    )
    .await;
    let taken: Vec<String> = [takes.0.unwrap(), takes.1.unwrap()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(taken, vec!["fatto".to_string()], "taken exactly once");
    // Signing out ends it; ending it again finds nothing.
    assert!(store.end_session(&k).await.unwrap());
    assert!(store.session(&k, now).await.unwrap().is_none());
    assert!(!store.end_session(&k).await.unwrap());
    // The sweep deletes what has expired, and only that.
    store
        .create_session(new_session("old", 7, t0(), 1), limits)
        .await
        .unwrap();
    store
        .create_session(new_session("live", 7, t0(), 60), limits)
        .await
        .unwrap();
    assert_eq!(store.sweep_expired(t0() + minutes(2)).await.unwrap(), 1);
    assert!(
        store
            .session(&SecretKey::of("live"), t0() + minutes(2))
            .await
            .unwrap()
            .is_some()
    );
}

async fn futures_join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    tokio::join!(a, b)
}

pub async fn sessions_are_capped_per_user_and_in_all(store: DynStore) {
    let limits = SessionLimits {
        per_user: 3,
        total: 5,
    };
    let live = |token: &'static str, at: DateTime<Utc>| {
        let store = store.clone();
        async move {
            store
                .session(&SecretKey::of(token), at)
                .await
                .unwrap()
                .is_some()
        }
    };
    for (i, token) in ["u1-a", "u1-b", "u1-c"].into_iter().enumerate() {
        let at = t0() + minutes(i64::try_from(i).unwrap());
        assert!(
            store
                .create_session(new_session(token, 1, at, 30), limits)
                .await
                .unwrap()
        );
    }
    // The first is used again: the least recently used is now the second.
    assert!(
        store
            .touch_session(
                &SecretKey::of("u1-a"),
                t0() + minutes(5),
                t0() + minutes(35)
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .create_session(new_session("u1-d", 1, t0() + minutes(6), 30), limits)
            .await
            .unwrap()
    );
    let now = t0() + minutes(7);
    assert!(!live("u1-b", now).await, "the least recently used went");
    for token in ["u1-a", "u1-c", "u1-d"] {
        assert!(live(token, now).await, "{token} stays");
    }
    // Five live in all: the next sign-in is refused, and signs no one out.
    for token in ["u2-a", "u2-b"] {
        assert!(
            store
                .create_session(new_session(token, 2, now, 10), limits)
                .await
                .unwrap()
        );
    }
    assert!(
        !store
            .create_session(new_session("u3-a", 3, now, 30), limits)
            .await
            .unwrap()
    );
    assert!(!live("u3-a", now).await);
    for token in ["u1-a", "u1-c", "u1-d", "u2-a", "u2-b"] {
        assert!(live(token, now).await, "{token} stays");
    }
    // Expired sessions do not count, swept or not.
    let later = now + minutes(11);
    assert!(
        store
            .create_session(new_session("u3-a", 3, later, 30), limits)
            .await
            .unwrap()
    );
    assert!(live("u3-a", later).await);
}

pub async fn login_flows_are_taken_once_expire_and_are_capped(store: DynStore) {
    let (a, b, c) = (
        SecretKey::of("flow-a"),
        SecretKey::of("flow-b"),
        SecretKey::of("flow-c"),
    );
    let end = t0() + minutes(10);
    assert!(
        store
            .start_login_flow(&a, "A".into(), end, t0(), 2)
            .await
            .unwrap()
    );
    assert!(
        store
            .start_login_flow(&b, "B".into(), end, t0(), 2)
            .await
            .unwrap()
    );
    assert!(
        !store
            .start_login_flow(&c, "C".into(), end, t0(), 2)
            .await
            .unwrap(),
        "past the cap new logins are refused"
    );
    let now = t0() + minutes(1);
    let takes = futures_join(
        store.take_login_flow(&a, now),
        store.take_login_flow(&a, now),
    )
    .await;
    let taken: Vec<String> = [takes.0.unwrap(), takes.1.unwrap()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(taken, vec!["A".to_string()], "taken exactly once");
    assert!(
        store
            .start_login_flow(&c, "C".into(), end, now, 2)
            .await
            .unwrap()
    );
    assert_eq!(
        store.take_login_flow(&b, end).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(store.sweep_expired(end).await.unwrap(), 1);
    assert_eq!(store.take_login_flow(&c, end).await.unwrap(), None);
}

pub async fn login_attempts_are_counted_in_windows_refused_forgiven_and_trimmed(store: DynStore) {
    let window = chrono::Duration::seconds(60);
    let count = |key: &'static str, now: DateTime<Utc>| {
        let store = store.clone();
        async move {
            store
                .count_login_attempt(key, 3, now, now - window)
                .await
                .unwrap()
        }
    };
    for n in 1..=3 {
        assert_eq!(
            count("c", t0()).await,
            LoginAttempt::Counted {
                window_start: t0(),
                attempts: n
            }
        );
    }
    let later = t0() + chrono::Duration::seconds(30);
    assert_eq!(
        count("c", later).await,
        LoginAttempt::Refused { window_start: t0() }
    );
    // Refused attempts are not counted: once the window is over, a new one starts.
    let next = t0() + window;
    assert_eq!(
        count("c", next).await,
        LoginAttempt::Counted {
            window_start: next,
            attempts: 1
        }
    );
    store.uncount_login_attempt("c", next).await.unwrap();
    assert_eq!(
        count("c", next).await,
        LoginAttempt::Counted {
            window_start: next,
            attempts: 1
        },
        "taken back"
    );
    count("c", next).await;
    store
        .forgive_login_attempts(&["c".to_string()], next - window)
        .await
        .unwrap();
    assert_eq!(
        count("c", next).await,
        LoginAttempt::Counted {
            window_start: next,
            attempts: 2
        },
        "one forgiven"
    );
    for _ in 0..2 {
        store
            .forgive_login_attempts(&["c".to_string()], next - window)
            .await
            .unwrap();
    }
    assert_eq!(
        store.trim_login_attempts(next - window, 100).await.unwrap(),
        0,
        "a window emptied by forgiveness goes"
    );
    // Concurrent attempts cannot all slip under the limit.
    let tries: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .count_login_attempt("hot", 5, next, next - window)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut counted = 0;
    for t in tries {
        counted += usize::from(matches!(t.await.unwrap(), LoginAttempt::Counted { .. }));
    }
    assert_eq!(counted, 5);
    // Trimming: the expired go, then the oldest beyond what is kept.
    for i in 0..10i64 {
        let key = format!("k{i}");
        store
            .count_login_attempt(&key, 5, next + chrono::Duration::seconds(i), next - window)
            .await
            .unwrap();
    }
    assert_eq!(
        store.trim_login_attempts(next - window, 4).await.unwrap(),
        4
    );
    let kept = store
        .count_login_attempt("k9", 5, next + chrono::Duration::seconds(9), next - window)
        .await
        .unwrap();
    assert!(
        matches!(kept, LoginAttempt::Counted { attempts: 2, .. }),
        "the newest windows stay: {kept:?}"
    );
    assert_eq!(
        store
            .trim_login_attempts(next + chrono::Duration::seconds(9), 100)
            .await
            .unwrap(),
        0,
        "all expired"
    );
}

/// A register with rows in every table the log projects, and in `party_summary`,
/// `ledger_head` and the log: the ground of the tamper suite. Returns the idempotency key
/// of a cession, for the retry check.
pub async fn seed_every_table(store: &DynStore) -> &'static str {
    let (rata, cessions) = seed_history(store).await;
    let a = party(store, 1).await;
    let b = party(store, 2).await;
    // One cession accepted: its cessionario's kept path counts it (`holding_paths`).
    store
        .submit(op(
            "accept-one",
            Command::Transfer(vec![TransferRequest::Post {
                pending: cessions[0],
            }]),
        ))
        .await
        .unwrap();
    // A bank, whose F1 is kept per day (`party_summary_days`).
    let bank = party_of(store, 4, PartyKind::Bank).await;
    store
        .submit(op("to-the-bank", cede(rata, a, bank, 100)))
        .await
        .unwrap();
    let user = store
        .create_user(
            NewUser {
                username: "studio".into(),
                display_name: "Studio Rossi".into(),
                password_hash: "hash".into(),
                pin_hash: "pin".into(),
                party: Some(a),
                role: Role::User,
            },
            "operatore",
            t0(),
        )
        .await
        .unwrap();
    store.pin_failed(user, t0()).await.unwrap();
    let token = store
        .create_token(user, "token-1", "gestionale", t0())
        .await
        .unwrap();
    store
        .create_token(user, "token-2", "vecchio", t0())
        .await
        .unwrap();
    store.revoke_token(user, token, t0()).await.unwrap();
    store
        .set_deceased(b, true, "operatore", t0())
        .await
        .unwrap();
    for (k, command) in [
        (
            "delega",
            Command::Delegation(DelegationChange::Grant {
                user,
                party: b,
                scope: DelegationScope::Disposizione,
                until: None,
            }),
        ),
        (
            "scelta-f24",
            Command::F24Choice {
                rata,
                party: a,
                declared: true,
                on: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
            },
        ),
        (
            "debiti",
            Command::DebtPosition {
                party: a,
                position: cessio_core::debt::DebtPosition::new(Vec::new()),
            },
        ),
    ] {
        store.submit(op(k, command)).await.unwrap();
    }
    store
        .append_operator_event(crate::NewOperatorEvent {
            kind: "suspension".into(),
            at: t0(),
            actor: "operatore".into(),
            transfer: Some(1),
            party: Some(a),
            counterparty: Some(b),
            data: serde_json::json!({"reason": "controllo"}),
        })
        .await
        .unwrap();
    // The last party holds nothing, so that deleting it leaves no row pointing at it.
    party(store, 3).await;
    assert_verified(store).await;
    "seed-2"
}

/// One tampering: `key` is SQL giving the row's key before the change, `sql` the change
/// (`{k}` stands for that key), and `names` what `verify` must report (same `{k}`). The SQL
/// is what both backends accept.
#[derive(Debug)]
pub struct Tamper {
    pub key: &'static str,
    pub sql: &'static str,
    pub names: &'static str,
}

const fn t(key: &'static str, sql: &'static str, names: &'static str) -> Tamper {
    Tamper { key, sql, names }
}

/// An edit, a deletion and an insertion in every table of the register (the web layer's
/// sessions, logins in progress and throttle are not the register's: see
/// `crate::log::TABLES`).
pub const TAMPERS: &[Tamper] = &[
    t(
        "SELECT MAX(id) FROM parties",
        "UPDATE parties SET name = 'Altro' WHERE id = {k}",
        "parties {k} column name",
    ),
    t(
        "SELECT MIN(id) FROM parties",
        "UPDATE parties SET cf = (SELECT MAX(cf) FROM parties) || 'X' WHERE id = {k}",
        "parties {k} column cf",
    ),
    t(
        "SELECT MAX(id) FROM parties",
        "DELETE FROM parties WHERE id = {k}",
        "parties {k}: expected a row",
    ),
    t(
        "SELECT MAX(id) + 100 FROM parties",
        "INSERT INTO parties (id, cf, name, kind, deceased, created_at) VALUES ({k}, 'ZZZZZZ00A00Z000Z', 'Intruso', 'person', false, 0)",
        "parties {k}: expected no row",
    ),
    t(
        "SELECT MIN(id) FROM credits",
        "UPDATE credits SET holder = (SELECT MAX(id) FROM parties) WHERE id = {k}",
        "credits {k} column holder",
    ),
    t(
        "SELECT MIN(id) FROM credits",
        "DELETE FROM credits WHERE id = {k}",
        "credits {k}: expected a row",
    ),
    t(
        "SELECT MAX(id) + 100 FROM credits",
        "INSERT INTO credits (id, protocol, type_key, beneficiary, holder, origin, expense_year, communicated_on, tracciabile, created_at, split_of, no_tax_area) SELECT {k}, protocol || 'X', type_key, beneficiary, holder, origin, expense_year, communicated_on, tracciabile, created_at, split_of, no_tax_area FROM credits WHERE id = (SELECT MIN(id) FROM credits)",
        "credits {k}: expected no row",
    ),
    t(
        "SELECT MIN(id) FROM rate",
        "UPDATE rate SET codice_tributo = '6890' WHERE id = {k}",
        "rate {k} column codice_tributo",
    ),
    t(
        "SELECT MIN(id) FROM rate",
        "DELETE FROM rate WHERE id = {k}",
        "rate {k}: expected a row",
    ),
    t(
        "SELECT MAX(id) + 100 FROM rate",
        "INSERT INTO rate (id, credit, idx, year, amount, codice_tributo, codice_univoco) SELECT {k}, credit, idx + 1, year + 1, amount, codice_tributo, codice_univoco || 'X' FROM rate WHERE id = (SELECT MIN(id) FROM rate)",
        "rate {k}: expected no row",
    ),
    t(
        "SELECT MIN(id) FROM accounts WHERE kind = 'holder'",
        "UPDATE accounts SET party = (SELECT MAX(id) FROM parties) WHERE id = {k}",
        "accounts {k} column party",
    ),
    t(
        "SELECT MIN(id) FROM accounts WHERE kind = 'holder'",
        "DELETE FROM accounts WHERE id = {k}",
        "accounts {k}: expected a row",
    ),
    t(
        "SELECT MAX(id) + 100 FROM accounts",
        "INSERT INTO accounts (id, rata, kind, party, debits_pending, debits_posted, credits_pending, credits_posted, last_transfer) SELECT {k}, rata, 'holder', (SELECT MAX(id) FROM parties), 0, 0, 0, 0, 0 FROM accounts WHERE id = (SELECT MIN(id) FROM accounts)",
        "accounts {k}: expected no row",
    ),
    t(
        "SELECT MIN(id) FROM accounts WHERE kind = 'holder'",
        "UPDATE accounts SET credits_posted = credits_posted + 100 WHERE id = {k}",
        "account {k}: stored balance",
    ),
    t(
        "SELECT MAX(id) FROM operations",
        "UPDATE operations SET receipt = '{}' WHERE id = {k}",
        "operations {k} column receipt",
    ),
    t(
        "SELECT MAX(id) FROM operations",
        "DELETE FROM operations WHERE id = {k}",
        "operations {k}: expected a row",
    ),
    t(
        "SELECT MAX(id) + 100 FROM operations",
        "INSERT INTO operations (id, idempotency_key, request_hash, acting_user, on_behalf_of, at, kind, receipt) VALUES ({k}, 'intruso', 'h', 'x', NULL, 0, 'transfer', '{}')",
        "operations {k}: expected no row",
    ),
    t(
        "SELECT MIN(id) + 2 FROM transfers",
        "UPDATE transfers SET amount = 99 WHERE id = {k}",
        "transfer {k}: hash",
    ),
    t(
        "SELECT MIN(id) + 3 FROM transfers",
        "DELETE FROM transfers WHERE id = {k}",
        "expected id {k}",
    ),
    t(
        "SELECT MAX(id) + 1 FROM transfers",
        "INSERT INTO transfers (id, operation, rata, debit, credit, amount, kind, phase, pending_id, at, acting_user, party, counterparty, disclose, hash) SELECT {k}, operation, rata, debit, credit, amount, kind, 'posted', NULL, at, acting_user, party, counterparty, disclose, hash FROM transfers WHERE id = (SELECT MIN(id) FROM transfers)",
        "transfer {k}: hash",
    ),
    t(
        "SELECT MAX(id) FROM users",
        "UPDATE users SET role = 'operator' WHERE id = {k}",
        "users {k} column role",
    ),
    t(
        "SELECT MAX(id) FROM users",
        "UPDATE users SET pin_failures = 0 WHERE id = {k}",
        "users {k} column pin_failures",
    ),
    t(
        "SELECT MAX(id) FROM users",
        "DELETE FROM users WHERE id = {k}",
        "users {k}: expected a row",
    ),
    t(
        "SELECT COALESCE(MAX(id), 0) + 100 FROM users",
        "INSERT INTO users (id, username, display_name, password_hash, pin_hash, pin_failures, party, role, created_at) VALUES ({k}, 'intruso', 'Intruso', 'h', 'p', 0, NULL, 'operator', 0)",
        "users {k}: expected no row",
    ),
    t(
        "SELECT MAX(id) FROM delegations",
        "UPDATE delegations SET revoked_at = 1 WHERE id = {k}",
        "delegations {k} column revoked_at",
    ),
    t(
        "SELECT MAX(id) FROM delegations",
        "DELETE FROM delegations WHERE id = {k}",
        "delegations {k}: expected a row",
    ),
    t(
        "SELECT MAX(id) + 100 FROM delegations",
        "INSERT INTO delegations (id, user_id, party, created_at, scope) SELECT {k}, user_id, (SELECT MIN(id) FROM parties), 0, 'disposizione' FROM delegations WHERE id = (SELECT MAX(id) FROM delegations)",
        "delegations {k}: expected no row",
    ),
    t(
        "SELECT MIN(id) FROM api_tokens",
        "UPDATE api_tokens SET revoked_at = NULL WHERE id = {k}",
        "api_tokens {k} column revoked_at",
    ),
    t(
        "SELECT MIN(id) FROM api_tokens",
        "DELETE FROM api_tokens WHERE id = {k}",
        "api_tokens {k}: expected a row",
    ),
    t(
        "SELECT MAX(id) + 100 FROM api_tokens",
        "INSERT INTO api_tokens (id, user_id, token_hash, name, created_at) SELECT {k}, user_id, 'rubato', 'intruso', 0 FROM api_tokens WHERE id = (SELECT MIN(id) FROM api_tokens)",
        "api_tokens {k}: expected no row",
    ),
    t(
        "SELECT MIN(id) FROM audit_log",
        "UPDATE audit_log SET actor = 'nessuno' WHERE id = {k}",
        "audit_log {k} column actor",
    ),
    t(
        "SELECT MIN(id) FROM audit_log",
        "DELETE FROM audit_log WHERE id = {k}",
        "audit_log {k}: expected a row",
    ),
    t(
        "SELECT MAX(id) + 100 FROM audit_log",
        "INSERT INTO audit_log (id, at, actor, action, detail) VALUES ({k}, 0, 'x', 'create_user', 'finto')",
        "audit_log {k}: expected no row",
    ),
    t(
        "SELECT MAX(id) FROM f24_choices",
        "UPDATE f24_choices SET declared = NOT declared WHERE id = {k}",
        "f24_choices {k} column declared",
    ),
    t(
        "SELECT MAX(id) FROM f24_choices",
        "DELETE FROM f24_choices WHERE id = {k}",
        "f24_choices {k}: expected a row",
    ),
    t(
        "SELECT MAX(id) + 100 FROM f24_choices",
        "INSERT INTO f24_choices (id, operation, rata, party, declared, on_date, at) SELECT {k}, operation, rata, party, NOT declared, on_date, at FROM f24_choices WHERE id = (SELECT MAX(id) FROM f24_choices)",
        "f24_choices {k}: expected no row",
    ),
    t(
        "SELECT MAX(id) FROM debt_positions",
        "UPDATE debt_positions SET position = '{\"loads\":[]} ' WHERE id = {k}",
        "debt_positions {k} column position",
    ),
    t(
        "SELECT MAX(id) FROM debt_positions",
        "DELETE FROM debt_positions WHERE id = {k}",
        "debt_positions {k}: expected a row",
    ),
    t(
        "SELECT MAX(id) + 100 FROM debt_positions",
        "INSERT INTO debt_positions (id, operation, party, position, at) SELECT {k}, operation, party, position, at FROM debt_positions WHERE id = (SELECT MAX(id) FROM debt_positions)",
        "debt_positions {k}: expected no row",
    ),
    t(
        "SELECT MAX(id) FROM operator_events",
        "UPDATE operator_events SET kind = 'suspension_end' WHERE id = {k}",
        "operator_events {k} column kind",
    ),
    t(
        "SELECT MAX(id) FROM operator_events",
        "DELETE FROM operator_events WHERE id = {k}",
        "operator_events {k}: expected a row",
    ),
    t(
        "SELECT MAX(id) + 100 FROM operator_events",
        "INSERT INTO operator_events (id, kind, at, actor, transfer, party, counterparty, data) VALUES ({k}, 'bank_client', 0, 'x', NULL, 1, 2, '{}')",
        "operator_events {k}: expected no row",
    ),
    t(
        "SELECT MIN(party) FROM party_summary",
        "UPDATE party_summary SET amount = amount + 1 WHERE party = {k}",
        "party {k}: F1 summary",
    ),
    t(
        "SELECT MIN(party) FROM party_summary",
        "DELETE FROM party_summary WHERE party = {k}",
        "party {k}: F1 summary",
    ),
    t(
        "SELECT MAX(id) FROM parties",
        "INSERT INTO party_summary (party, type_key, year, codice_tributo, received, kind, state, amount) VALUES ({k}, 'superbonus', 2024, '7701', 1, 'cession', 'accepted', 500)",
        "party {k}: F1 summary",
    ),
    t(
        "SELECT MIN(party) FROM party_summary_days",
        "UPDATE party_summary_days SET amount = amount + 1 WHERE party = {k}",
        "party {k}: F1 summary as of",
    ),
    t(
        "SELECT MIN(party) FROM party_summary_days",
        "DELETE FROM party_summary_days WHERE party = {k}",
        "party {k}: F1 summary as of",
    ),
    t(
        "SELECT MAX(id) FROM parties",
        "INSERT INTO party_summary_days (party, type_key, year, codice_tributo, received, kind, state, day, amount) VALUES ({k}, 'superbonus', 2024, '7701', 1, 'cession', 'accepted', 20240101, 500)",
        "party {k}: F1 summary as of",
    ),
    // A row for a party whose days are not kept: `verify` goes party by party, and must
    // look at the parties that have rows as well as the kinds that keep them.
    t(
        "SELECT MIN(id) FROM parties WHERE kind = 'company'",
        "INSERT INTO party_summary_days (party, type_key, year, codice_tributo, received, kind, state, day, amount) VALUES ({k}, 'superbonus', 2024, '7701', 1, 'cession', 'accepted', 20240101, 500)",
        "party {k}: F1 summary as of",
    ),
    t(
        "SELECT MAX(transfer) FROM party_feed",
        "UPDATE party_feed SET party = party + 1000 WHERE transfer = {k}",
        ", {k}): expected a row",
    ),
    t(
        "SELECT MAX(transfer) FROM party_feed",
        "DELETE FROM party_feed WHERE transfer = {k}",
        ", {k}): expected a row",
    ),
    t(
        "SELECT MAX(transfer) + 100 FROM party_feed",
        "INSERT INTO party_feed (party, transfer) VALUES (1, {k})",
        "party_feed (1, {k}): expected no row",
    ),
    t(
        "SELECT CAST(1 AS BIGINT)",
        "UPDATE ledger_head SET last_party = last_party + 1",
        "ledger head: last_party",
    ),
    t(
        "SELECT CAST(1 AS BIGINT)",
        "UPDATE ledger_head SET log_seq = log_seq - 1",
        "ledger head: head names log entry",
    ),
    t(
        "SELECT MIN(seq) + 1 FROM log",
        "UPDATE log SET actor = 'altro' WHERE seq = {k}",
        "log entry {k}: hash",
    ),
    t(
        "SELECT MIN(seq) + 1 FROM log",
        "DELETE FROM log WHERE seq = {k}",
        "log entry",
    ),
    t(
        "SELECT MAX(seq) + 1 FROM log",
        "INSERT INTO log (seq, operation, idempotency_key, request_hash, on_behalf_of, receipt, kind, actor, at, body, hash) SELECT {k}, NULL, NULL, NULL, NULL, NULL, 'create_user', 'x', 0, body, hash FROM log WHERE seq = (SELECT MAX(seq) FROM log)",
        "log entry {k}: hash",
    ),
    t(
        "SELECT MIN(transfer) FROM cession_paths",
        "UPDATE cession_paths SET from_cutoff = 3 WHERE transfer = {k}",
        "cession_paths {k} column from_cutoff",
    ),
    t(
        "SELECT MIN(transfer) FROM cession_paths",
        "DELETE FROM cession_paths WHERE transfer = {k}",
        "cession_paths {k}: expected a row",
    ),
    t(
        "SELECT MIN(id) FROM transfers",
        "INSERT INTO cession_paths (transfer, before_cutoff, from_cutoff, bank_client, received_on) VALUES ({k}, 0, 0, 0, 20240301)",
        "cession_paths {k}: expected no row",
    ),
    t(
        "SELECT MIN(account) FROM holding_paths WHERE before_cutoff = 1",
        "UPDATE holding_paths SET before_cutoff = 0 WHERE account = {k}",
        "holding_paths {k} column before_cutoff",
    ),
    t(
        "SELECT MIN(account) FROM holding_paths WHERE before_cutoff = 1",
        "UPDATE holding_paths SET unknown = 1 WHERE account = {k}",
        "holding_paths {k} column unknown",
    ),
    t(
        "SELECT MIN(account) FROM holding_paths",
        "DELETE FROM holding_paths WHERE account = {k}",
        "holding_paths {k}: expected a row",
    ),
    t(
        "SELECT MIN(id) FROM accounts WHERE kind <> 'holder'",
        "INSERT INTO holding_paths (account, before_cutoff, from_cutoff, bank_client, received_on, seized, unknown) VALUES ({k}, 0, 0, 0, NULL, 0, 0)",
        "holding_paths {k}: expected no row",
    ),
];

impl Tamper {
    /// The change and what `verify` must name, for the key the register gave.
    pub fn with_key(&self, key: i64) -> (String, String) {
        let k = key.to_string();
        (self.sql.replace("{k}", &k), self.names.replace("{k}", &k))
    }
}

/// After the tampering: some problem names the table and key.
pub fn assert_named(tamper: &Tamper, names: &str, report: &crate::VerifyReport) {
    assert!(!report.ok(), "{tamper:?}: verify found nothing");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.to_string().contains(names)),
        "{tamper:?}: no problem names '{names}': {:?}",
        report
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
}

/// With the row of `operations` that recorded `key` deleted, a retry of the same request is
/// still answered from the log: replayed, nothing applied twice.
pub async fn assert_retry_replayed_after_deletion(store: &DynStore, key: &str) {
    let before = store.head_counts().await.unwrap();
    let (rata, a, b) = {
        let a = party(store, 1).await;
        let b = party(store, 2).await;
        let rata = funded(store, "fund", a, 10_000).await;
        (rata, a, b)
    };
    let again = store.submit(op(key, cede(rata, a, b, 100))).await.unwrap();
    assert!(again.replayed, "the retry was applied a second time");
    assert_eq!(store.head_counts().await.unwrap(), before);
}

fn suspension_event(
    transfer: TransferId,
    party: PartyId,
    counterparty: PartyId,
) -> crate::NewOperatorEvent {
    crate::NewOperatorEvent {
        kind: crate::SUSPENSION_EVENT.into(),
        at: t0(),
        actor: "operatore".into(),
        transfer: Some(transfer),
        party: Some(party),
        counterparty: Some(counterparty),
        data: serde_json::json!({"from": "2024-03-01", "until": "2024-03-31", "reason": "verifica"}),
    }
}

/// R-SUSP decided in the batch: an answer submitted after a suspension committed is
/// refused however the caller decided it; a suspension after the answer is refused; the
/// end of a suspension with a void voids in the same operation; one suspension only.
pub async fn r_susp_is_decided_by_the_writer_on_the_state_it_writes_on(store: DynStore) {
    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let rata = funded(&store, "fund", a, 10_000).await;
    let t1 = store
        .submit(op("c1", cede(rata, a, b, 100)))
        .await
        .unwrap()
        .transfers[0];
    let t2 = store
        .submit(op("c2", cede(rata, a, b, 200)))
        .await
        .unwrap()
        .transfers[0];
    let suspend = |k: &str, t| {
        op(
            k,
            Command::OperatorEvent {
                event: suspension_event(t, a, b),
                void: None,
            },
        )
    };
    store.submit(suspend("s1", t1)).await.unwrap();
    // An answer decided before the suspension reaches the writer after it: refused.
    let e = store.submit(op("a1", answer(t1, true))).await.unwrap_err();
    assert_eq!(e.code(), "r_susp_suspended", "{e}");
    let e = store
        .submit(op("a1v", answer(t1, false)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "r_susp_suspended", "{e}");
    // Once per communication.
    let e = store.submit(suspend("s1-again", t1)).await.unwrap_err();
    assert_eq!(e.code(), "r_susp_once", "{e}");
    // A communication answered first cannot be suspended after.
    store.submit(op("a2", answer(t2, true))).await.unwrap();
    let e = store.submit(suspend("s2", t2)).await.unwrap_err();
    assert_eq!(e.code(), "r_susp_answered", "{e}");
    // A suspension and an answer racing: whichever the writer takes first wins, and
    // the other is refused on the state it sees.
    let t3 = store
        .submit(op("c3", cede(rata, a, b, 300)))
        .await
        .unwrap()
        .transfers[0];
    let results =
        submit_concurrently(&store, vec![suspend("s3", t3), op("a3", answer(t3, true))]).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    // The operator ends it as "non effettuata": the end and the void in one operation.
    let end = crate::NewOperatorEvent {
        kind: crate::SUSPENSION_END_EVENT.into(),
        data: serde_json::json!({"outcome": "voided"}),
        ..suspension_event(t1, a, b)
    };
    let r = store
        .submit(op(
            "end1",
            Command::OperatorEvent {
                event: end.clone(),
                void: Some(t1),
            },
        ))
        .await
        .unwrap();
    assert_eq!(r.transfers.len(), 1);
    let e = store
        .submit(op(
            "end1-again",
            Command::OperatorEvent {
                event: end,
                void: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "r_susp_not_open", "{e}");
    // 10,000 − 200 accepted − 300 pending; the voided 100 is back.
    assert_eq!(available(&store, rata, a).await, 9_500);
    assert_verified(&store).await;
}

async fn submit_concurrently(
    store: &DynStore,
    ops: Vec<Operation>,
) -> Vec<Result<Receipt, StoreError>> {
    let mut handles = Vec::new();
    for o in ops {
        let s = store.clone();
        handles.push(tokio::spawn(async move { s.submit(o).await }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// A delegation revoked before an operation made under it reaches the writer refuses
/// it (R-DELEGA-END), whatever the app saw when it decided; a view-only one refuses
/// disposal (R-DELEGA-SCOPE).
pub async fn r_delega_end_is_decided_by_the_writer_on_the_state_it_writes_on(store: DynStore) {
    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let rata = funded(&store, "fund", a, 10_000).await;
    let delegate = store
        .create_user(
            NewUser {
                username: "studio".into(),
                display_name: "Studio".into(),
                password_hash: "h".into(),
                pin_hash: "p".into(),
                party: Some(b),
                role: Role::User,
            },
            "operatore",
            t0(),
        )
        .await
        .unwrap();
    let grant = |scope| {
        Command::Delegation(DelegationChange::Grant {
            user: delegate,
            party: a,
            scope,
            until: None,
        })
    };
    let as_delegate = |k: &str| Operation {
        on_behalf_of: Some(a),
        delegate: Some(crate::DelegateCheck {
            user: delegate,
            party: a,
            on: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
        }),
        ..op(k, cede(rata, a, b, 100))
    };
    let e = store.submit(as_delegate("none")).await.unwrap_err();
    assert_eq!(e.code(), "delegation_ended", "{e}");
    store
        .submit(op("g1", grant(DelegationScope::Consultazione)))
        .await
        .unwrap();
    let e = store.submit(as_delegate("view")).await.unwrap_err();
    assert_eq!(e.code(), "delegation_view_only", "{e}");
    store
        .submit(op("g2", grant(DelegationScope::Disposizione)))
        .await
        .unwrap();
    store.submit(as_delegate("ok")).await.unwrap();
    store
        .submit(op(
            "revoke",
            Command::Delegation(DelegationChange::Revoke {
                user: delegate,
                party: a,
            }),
        ))
        .await
        .unwrap();
    let e = store.submit(as_delegate("after")).await.unwrap_err();
    assert_eq!(e.code(), "delegation_ended", "{e}");
    assert_eq!(available(&store, rata, a).await, 9_900);
    assert_verified(&store).await;
}

/// R-F24-CHOICE and R-BAN-100K on the choices and debt positions the writer sees, whatever
/// the app read: a rata chosen for F24 is not ceded, an F24 needs the choice it was
/// decided on, a choice is declared once and revoked only while nothing is reserved, and
/// an F24 is refused on the debt position in force.
pub async fn r_f24_choice_and_r_ban_100k_are_decided_by_the_writer_on_the_state_it_writes_on(
    store: DynStore,
) {
    use crate::WriterCheck;
    use cessio_core::debt::{DebtKind, DebtLoad, DebtPosition};
    use cessio_core::f24::CreditNature;

    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let rata = funded(&store, "fund", a, 10_000).await;
    let on = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
    let choice = |declared| Command::F24Choice {
        rata,
        party: a,
        declared,
        on,
    };
    let used = |k: &str, checks: Vec<WriterCheck>| Operation {
        checks,
        ..op(
            k,
            Command::Transfer(vec![TransferRequest::Move {
                rata,
                from: AccountRef::Holder(a),
                to: AccountRef::System(AccountKind::Used),
                amount: Cents::new(100),
                kind: TransferKind::Use,
                pending: true,
                disclose: false,
                path: None,
            }]),
        )
    };
    let chosen = || vec![WriterCheck::ChoiceDeclared { rata, party: a }];
    let e = store.submit(used("unchosen", chosen())).await.unwrap_err();
    assert_eq!(e.code(), "f24_choice_required", "{e}");
    let e = store
        .submit(op("revoke0", choice(false)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "f24_choice_not_declared", "{e}");
    store.submit(op("declare", choice(true))).await.unwrap();
    let e = store
        .submit(op("declare2", choice(true)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "f24_choice_already_declared", "{e}");
    let e = store
        .submit(op("cede", cede(rata, a, b, 100)))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.to_string().contains("R-F24-CHOICE")),
        ("not_cedible", true),
        "{e}"
    );
    store.submit(used("reserve", chosen())).await.unwrap();
    let e = store
        .submit(op("revoke1", choice(false)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "f24_choice_reserved", "{e}");

    // R-BAN-100K: from 1 July 2024, on the position the writer sees.
    let summer = NaiveDate::from_ymd_opt(2024, 7, 1).unwrap();
    let offset = || {
        let mut c = chosen();
        c.push(WriterCheck::OffsetAllowed {
            party: a,
            on: summer,
            natures: vec![CreditNature::Agevolativa],
        });
        c
    };
    store.submit(used("before-debt", offset())).await.unwrap();
    let debts = |cents| Command::DebtPosition {
        party: a,
        position: DebtPosition::new(vec![DebtLoad::overdue(
            DebtKind::Erariale,
            Cents::new(cents),
        )]),
    };
    store.submit(op("debt", debts(10_000_001))).await.unwrap();
    let e = store.submit(used("banned", offset())).await.unwrap_err();
    assert_eq!(e.code(), "r_ban_100k", "{e}");
    store.submit(op("paid", debts(10_000_000))).await.unwrap();
    store.submit(used("after-debt", offset())).await.unwrap();
    assert_eq!(available(&store, rata, a).await, 9_700);
    assert_verified(&store).await;
}

/// R-BANK-CLIENT on the relation the writer sees in force at the operation's time: the last
/// recorded up to it.
pub async fn r_bank_client_is_decided_by_the_writer_on_the_relation_in_force(store: DynStore) {
    use crate::WriterCheck;
    use cessio_core::chain::BankClient;

    let bank = party(&store, 1).await;
    let client = party(&store, 2).await;
    let rata = funded(&store, "fund", bank, 10_000).await;
    let event = |minutes: i64, relation: BankClient| crate::NewOperatorEvent {
        kind: crate::BANK_CLIENT_EVENT.into(),
        at: t0() + chrono::Duration::minutes(minutes),
        actor: "op".into(),
        transfer: None,
        party: Some(bank),
        counterparty: Some(client),
        data: serde_json::json!({ "relation": relation }),
    };
    let to_client = |k: &str| Operation {
        checks: vec![WriterCheck::BankClient {
            bank,
            client,
            admitted: vec![BankClient::NonConsumer, BankClient::Professional],
        }],
        ..op(k, cede(rata, bank, client, 100))
    };
    let e = store.submit(to_client("none")).await.unwrap_err();
    assert_eq!(e.code(), "r_bank_client_changed", "{e}");
    store
        .append_operator_event(event(-10, BankClient::NonConsumer))
        .await
        .unwrap();
    // Recorded after the operation's time: not yet in force for it.
    store
        .append_operator_event(event(10, BankClient::No))
        .await
        .unwrap();
    store.submit(to_client("client")).await.unwrap();
    // A consumer from five minutes before the operation: no longer admitted.
    store
        .append_operator_event(event(-5, BankClient::Consumer))
        .await
        .unwrap();
    let e = store.submit(to_client("after")).await.unwrap_err();
    assert_eq!(e.code(), "r_bank_client_changed", "{e}");
    assert_eq!(available(&store, rata, bank).await, 9_900);
    assert_verified(&store).await;
}

/// §5 was decided on a holding's history: the writer refuses the cession if the holding has
/// received more of the rata than when that history was read.
pub async fn r_chain_history_is_checked_by_the_writer_on_what_the_holding_received(
    store: DynStore,
) {
    use crate::WriterCheck;

    let a = party(&store, 1).await;
    let b = party(&store, 2).await;
    let rata = funded(&store, "fund", a, 10_000).await;
    let read_with = |k: &str, received: i64| Operation {
        checks: vec![WriterCheck::HoldingReceived {
            rata,
            party: a,
            received: Cents::new(received),
        }],
        ..op(k, cede(rata, a, b, 100))
    };
    let e = store.submit(read_with("stale", 9_999)).await.unwrap_err();
    assert_eq!(e.code(), "r_chain_holding_changed", "{e}");
    store.submit(read_with("current", 10_000)).await.unwrap();
    assert_eq!(available(&store, rata, a).await, 9_900);
    assert_verified(&store).await;
}

/// A receipt's read: the operation, its entry's place in the log, the transfers it wrote
/// (and those its answers answered), the credits of their rate and the parties they name.
pub async fn operation_record_has_its_log_entry_transfers_credits_and_parties(store: DynStore) {
    let cedente = party(&store, 1).await;
    let cessionario = party(&store, 2).await;
    let other = party(&store, 3).await;
    let issued = store
        .submit(op(
            "issue",
            Command::IssueCredit(new_credit(cedente, &[100_003, 100_000], false)),
        ))
        .await
        .unwrap();
    let credit = issued.credit.clone().unwrap();
    let rata = credit.rate[1].id;
    let cession = store
        .submit(op("cede", cede(rata, cedente, cessionario, 100_000)))
        .await
        .unwrap();
    let accept = store
        .submit(op("accept", answer(cession.transfers[0], true)))
        .await
        .unwrap();

    let record = store
        .operation_record(cession.operation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.entry.id, cession.operation_id);
    assert_eq!(record.entry.kind, "transfer");
    assert_eq!(record.entry.acting_user, "tester");
    assert_eq!(record.entry.at, t0());
    assert_eq!(record.entry.receipt.transfers, cession.transfers);
    assert_eq!(record.entry.receipt.amount, Cents::new(100_000));
    assert_eq!(record.entry.log_hash.len(), 64, "{}", record.entry.log_hash);
    assert!(record.entry.log_hash.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(record.transfers.len(), 1);
    assert_eq!(record.transfers[0].id, cession.transfers[0]);
    assert_eq!(record.transfers[0].party, Some(cedente));
    assert_eq!(record.transfers[0].counterparty, Some(cessionario));
    assert!(record.answered.is_empty());
    let (c, r) = record.rata(rata).unwrap();
    assert_eq!(c.protocol, credit.protocol);
    assert_eq!(r.codice_univoco, credit.rate[1].codice_univoco);
    let named: Vec<PartyId> = record.parties.iter().map(|p| p.id).collect();
    assert_eq!(named, vec![cedente, cessionario]);
    assert!(record.concerns(cedente) && record.concerns(cessionario));
    assert!(!record.concerns(other));

    // The answer names the cession it answered; each operation has its own entry, in order.
    let answered = store
        .operation_record(accept.operation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answered.answered.len(), 1);
    assert_eq!(answered.answered[0].id, cession.transfers[0]);
    assert_eq!(answered.entry.log_seq, record.entry.log_seq + 1);
    assert_ne!(answered.entry.log_hash, record.entry.log_hash);
    assert!(answered.concerns(cedente) && answered.concerns(cessionario));

    // The issuance names its credit and holder even where it moved nothing pending.
    let issue = store
        .operation_record(issued.operation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(issue.credits.len(), 1);
    assert_eq!(issue.credits[0].rate.len(), 2);
    assert!(issue.concerns(cedente));

    // Reading is the same twice (a receipt is deterministic) and an unknown id is none.
    assert_eq!(
        store.operation_record(cession.operation_id).await.unwrap(),
        Some(record)
    );
    assert_eq!(store.operation_record(999_999).await.unwrap(), None);
    assert_eq!(store.operation_record(-1).await.unwrap(), None);
}
