//! Rules that can race, through the app on both backends. One request is decided and then
//! held before the writer (`App::hold_next_submit`) while a competing one runs to the end;
//! released, the first must be decided on the state the second left: the writer decides
//! R-SUSP, the delegation a request runs under, the F24 choice (R-F24-CHOICE), the
//! offset bans (R-BAN-100K), a bank's relation with its client (R-BANK-CLIENT), what is
//! under seizure per holder (R-SEIZE) and the history §5 was decided on (R-CHAIN), and the
//! ledger's balances decide the amounts (R-PARTIAL,
//! R-PENDING-OUT, R-SPLIT-ANNUL). Each race runs in both orders where both orders can
//! refuse, and the register verifies.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

#[macro_use]
mod support;

use cessio_app::{F24LineInput, SplitTarget};
use cessio_core::chain::BankClient;
use cessio_core::debt::{DebtKind, DebtLoad, DebtPosition};
use cessio_core::time::rome_date;
use cessio_store::PartyKind;
use chrono::Datelike;
use support::*;

backends!(
    r_susp_race_the_operator_suspends_while_the_bank_answers,
    r_chain_race_two_cessions_of_one_rata,
    r_split_annul_race_an_f24_against_a_split_being_annulled,
    r_delega_end_race_a_delegation_revoked_while_the_delegate_cedes,
    r_f24_choice_race_a_cession_while_the_choice_is_declared,
    r_f24_choice_race_an_f24_while_the_choice_is_revoked,
    r_ban_100k_race_a_debt_recorded_while_the_holder_reserves_an_f24,
    r_bank_client_race_the_relation_ended_while_the_bank_cedes_to_its_client,
    r_seize_race_one_holder_released_twice_while_another_holder_is_seized,
    r_seize_race_one_holding_seized_twice,
    r_chain_race_another_part_of_the_rata_received_while_ceding,
);

/// Runs `held` until it has decided, runs `other` to the end, then lets `held` reach the
/// writer.
async fn held_while<A, B>(
    gate: std::sync::Arc<cessio_app::SubmitGate>,
    held: impl std::future::Future<Output = A>,
    other: impl std::future::Future<Output = B>,
) -> (A, B) {
    tokio::join!(held, async {
        tokio::time::timeout(std::time::Duration::from_secs(10), gate.arrived())
            .await
            .expect("the held request never reached the writer");
        let b = other.await;
        gate.release();
        b
    })
}

/// A holder with a whole tracciabile rata of 4,000 euro.
async fn holding(t: &TestApp, n: u32) -> (Holder, i64) {
    let a = t.holder(n, PartyKind::Company).await;
    let rata = t
        .holding(&a.party, &a.user, "superbonus", 400_000, tracciabile_day())
        .await
        .rate[0]
        .id;
    (a, rata)
}

async fn verified(t: &TestApp) {
    let report = t.app.store().verify().await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

async fn r_susp_race_the_operator_suspends_while_the_bank_answers(t: TestApp) {
    for round in 0..2 {
        t.set_rome(2024, 3, 1, 10, 0);
        let (a, rata) = holding(&t, 10 * round + 1).await;
        let bank = t.holder(10 * round + 2, PartyKind::Bank).await;
        let transfer = t
            .cede(&a.user, &a.party, &[line(rata, &bank.party, None)])
            .await
            .unwrap()
            .transfers[0];
        // The 5th working day after the cession: the last day it may be suspended and the
        // first it may be answered (R-WAIT5), so both requests are possible.
        let day = cessio_core::rules::wait5_earliest_answer(rome_date(t.app.now()));
        t.set_rome(day.year(), day.month(), day.day(), 10, 0);
        if round == 0 {
            // The bank decided to accept; the suspension lands first.
            let gate = t.app.hold_next_submit(&bank.user);
            let (answered, suspended) = held_while(
                gate,
                t.answer(&bank.user, &bank.party, by_cedente(&a.party), true),
                t.app.suspend(&t.op, transfer, 30, "verifica"),
            )
            .await;
            suspended.unwrap();
            let e = answered.unwrap_err();
            assert_eq!(e.rule(), Some("R-SUSP"), "{e}");
            assert_eq!(
                t.max_cedibile(&bank.user, &bank.party, rata).await,
                cents(0)
            );
        } else {
            // The operator decided to suspend; the acceptance lands first.
            let gate = t.app.hold_next_submit(&t.op);
            let (suspended, answered) = held_while(
                gate,
                t.app.suspend(&t.op, transfer, 30, "verifica"),
                t.answer(&bank.user, &bank.party, by_cedente(&a.party), true),
            )
            .await;
            answered.unwrap();
            let e = suspended.unwrap_err();
            assert_eq!(e.rule(), Some("R-SUSP"), "{e}");
            assert!(e.to_string().contains("risposta"), "{e}");
        }
    }
    verified(&t).await;
}

async fn r_chain_race_two_cessions_of_one_rata(t: TestApp) {
    let (a, rata) = holding(&t, 1).await;
    let b = t.company(2).await;
    let c = t.company(3).await;
    // A tracciabile rata moves whole (R-PARTIAL): the cession decided first but written
    // second finds the rata already committed (R-PENDING-OUT).
    let (lines_b, lines_c) = ([line(rata, &b, None)], [line(rata, &c, None)]);
    let gate = t.app.hold_next_submit(&a.user);
    let (to_b, to_c) = held_while(
        gate,
        t.cede(&a.user, &a.party, &lines_b),
        t.cede(&a.user, &a.party, &lines_c),
    )
    .await;
    to_c.unwrap();
    assert!(to_b.is_err(), "{to_b:?}");
    assert_eq!(t.max_cedibile(&a.user, &a.party, rata).await, cents(0));
    let incoming_b = t.incoming(&t.user_for(&b, "ub").await, &b).await;
    assert!(incoming_b.is_empty());
    verified(&t).await;
}

async fn r_split_annul_race_an_f24_against_a_split_being_annulled(t: TestApp) {
    for round in 0..2 {
        t.set_rome(2024, 3, 1, 10, 0);
        let a = t.holder(10 * round + 1, PartyKind::Company).await;
        let credit = t
            .holding(&a.party, &a.user, "superbonus", 1_000_000, old_day())
            .await;
        let rata = rata_of(&credit, 2024);
        let split = t
            .app
            .split_rata(
                &a.user,
                &t.key(),
                Some(PIN),
                a.party.id,
                rata,
                cents(100_000),
            )
            .await
            .unwrap();
        t.set_rome(2025, 1, 10, 10, 0);
        let lines = [F24LineInput {
            codice_tributo: "7771".into(),
            year: 2025,
            amount: cents(100),
        }];
        let (key_f24, key_annul) = (t.key(), t.key());
        let reserve = t.reserve_f24(&a.user, &a.party, &key_f24, date(2025, 1, 10), &lines, &[]);
        let annul = t.app.annul_split(
            &a.user,
            &key_annul,
            Some(PIN),
            a.party.id,
            SplitTarget::Credit(split.split_credit),
        );
        let gate = t.app.hold_next_submit(&a.user);
        if round == 0 {
            // The annulment was decided on untouched rate; the F24 lands first.
            let (annulled, used) = held_while(gate, annul, reserve).await;
            used.unwrap();
            let e = annulled.unwrap_err();
            assert_eq!(e.code(), "r_split_annul_rata_touched", "{e}");
        } else {
            // The F24 was decided on the split rata; the annulment lands first.
            let (used, annulled) = held_while(gate, reserve, annul).await;
            annulled.unwrap();
            assert!(used.is_err(), "{used:?}");
        }
    }
    verified(&t).await;
}

async fn r_delega_end_race_a_delegation_revoked_while_the_delegate_cedes(t: TestApp) {
    let (a, rata) = holding(&t, 1).await;
    let b = t.company(2).await;
    let studio = t.intermediary(3, "studio", &a.party).await;
    let before = t.max_cedibile(&a.user, &a.party, rata).await;
    let (lines, key) = ([line(rata, &b, None)], t.key());
    // The delegate's cession was decided under a live delegation; the revocation lands
    // first, and the writer refuses the cession on the delegation it sees.
    let gate = t.app.hold_next_submit(&studio);
    let (ceded, revoked) = held_while(
        gate,
        t.cede(&studio, &a.party, &lines),
        t.app
            .revoke_delegation_by_titolare(&a.user, &key, Some(PIN), a.party.id, "studio"),
    )
    .await;
    revoked.unwrap();
    let e = ceded.unwrap_err();
    assert_eq!(e.rule(), Some("R-DELEGA-END"), "{e}");
    assert_eq!(t.max_cedibile(&a.user, &a.party, rata).await, before);
    verified(&t).await;
}

/// A holder with a tracciabile Superbonus credit, on 1 March 2024: its rata of 2024
/// (1,000.00) and that rata's codice tributo.
async fn rata_2024(t: &TestApp, n: u32) -> (Holder, i64, String) {
    t.set_rome(2024, 3, 1, 10, 0);
    let a = t.holder(n, PartyKind::Company).await;
    let credit = t
        .holding(&a.party, &a.user, "superbonus", 400_000, tracciabile_day())
        .await;
    let rata = rata_of(&credit, 2024);
    let code = credit
        .rate
        .iter()
        .find(|r| r.id == rata)
        .unwrap()
        .codice_tributo
        .clone();
    (a, rata, code)
}

fn one_line(code: &str, amount: i64) -> [F24LineInput; 1] {
    [F24LineInput {
        codice_tributo: code.into(),
        year: 2024,
        amount: cents(amount),
    }]
}

async fn r_f24_choice_race_a_cession_while_the_choice_is_declared(t: TestApp) {
    let (a, rata, _) = rata_2024(&t, 1).await;
    let b = t.company(2).await;
    let lines = [line(rata, &b, None)];
    // The cession was decided on a rata with no choice; the choice lands first, and the
    // writer refuses the cession of a rata now chosen for F24.
    let gate = t.app.hold_next_submit(&a.user);
    let key = t.key();
    let (ceded, declared) = held_while(
        gate,
        t.cede(&a.user, &a.party, &lines),
        t.app
            .declare_f24_choice(&a.user, &key, Some(PIN), a.party.id, rata),
    )
    .await;
    declared.unwrap();
    let e = ceded.unwrap_err();
    assert_eq!(
        (e.rule(), e.code()),
        (Some("R-F24-CHOICE"), "not_cedible"),
        "{e}"
    );
    assert!(t.incoming(&t.user_for(&b, "ub").await, &b).await.is_empty());
    verified(&t).await;
}

async fn r_f24_choice_race_an_f24_while_the_choice_is_revoked(t: TestApp) {
    for round in 0..2 {
        let (a, rata, code) = rata_2024(&t, 10 * round + 1).await;
        t.app
            .declare_f24_choice(&a.user, &t.key(), Some(PIN), a.party.id, rata)
            .await
            .unwrap();
        let lines = one_line(&code, 500);
        let (key_f24, key_revoke) = (t.key(), t.key());
        let reserve = t.reserve_f24(&a.user, &a.party, &key_f24, date(2024, 3, 1), &lines, &[]);
        let revoke = t
            .app
            .revoke_f24_choice(&a.user, &key_revoke, Some(PIN), a.party.id, rata);
        let gate = t.app.hold_next_submit(&a.user);
        if round == 0 {
            // The F24 was decided on a chosen rata; the revocation lands first.
            let (used, revoked) = held_while(gate, reserve, revoke).await;
            revoked.unwrap();
            let e = used.unwrap_err();
            assert_eq!(e.code(), "f24_choice_required", "{e}");
            assert_eq!(
                t.max_cedibile(&a.user, &a.party, rata).await,
                cents(100_000)
            );
        } else {
            // The revocation was decided with nothing reserved; the F24 lands first.
            let (revoked, used) = held_while(gate, revoke, reserve).await;
            used.unwrap();
            let e = revoked.unwrap_err();
            assert_eq!(e.code(), "f24_choice_reserved", "{e}");
            assert_eq!(t.max_cedibile(&a.user, &a.party, rata).await, cents(0));
        }
    }
    verified(&t).await;
}

async fn r_ban_100k_race_a_debt_recorded_while_the_holder_reserves_an_f24(t: TestApp) {
    let (a, rata, code) = rata_2024(&t, 1).await;
    t.app
        .declare_f24_choice(&a.user, &t.key(), Some(PIN), a.party.id, rata)
        .await
        .unwrap();
    // The ban applies to F24 sent from 1 July 2024 (L. 213/2023).
    t.set_rome(2024, 7, 1, 9, 0);
    let lines = one_line(&code, 500);
    let key = t.key();
    let debts = DebtPosition::new(vec![DebtLoad::overdue(
        DebtKind::Erariale,
        cents(10_000_001),
    )]);
    // The F24 was decided with no debt on record; the operator's record lands first.
    let gate = t.app.hold_next_submit(&a.user);
    let (used, recorded) = held_while(
        gate,
        t.reserve_f24(&a.user, &a.party, &key, date(2024, 7, 1), &lines, &[]),
        t.app.set_debt_position(&t.op, &t.key(), a.party.id, &debts),
    )
    .await;
    recorded.unwrap();
    let e = used.unwrap_err();
    assert_eq!(
        (e.rule(), e.code()),
        (Some("R-BAN-100K"), "r_ban_100k"),
        "{e}"
    );
    assert!(e.to_string().contains("100.000,01"), "{e}");
    verified(&t).await;
}

async fn r_bank_client_race_the_relation_ended_while_the_bank_cedes_to_its_client(t: TestApp) {
    // A tracciabile rata through two free cessions and a bank: the second bank may cede
    // it only to its own non-consumer clients (R-CHAIN, R-BANK-CLIENT).
    let (a, rata) = holding(&t, 1).await;
    let mut from = a;
    for (n, kind) in [
        (2, PartyKind::Company),
        (3, PartyKind::Bank),
        (4, PartyKind::Bank),
    ] {
        let to = t.holder(n, kind).await;
        t.cede(&from.user, &from.party, &[line(rata, &to.party, None)])
            .await
            .unwrap();
        t.advance_days(8);
        t.answer(&to.user, &to.party, by_cedente(&from.party), true)
            .await
            .unwrap();
        from = to;
    }
    let bank = from;
    let client = t.company(10).await;
    let relation = |r| {
        t.app
            .set_bank_client(&t.op, bank.party.cf.as_str(), client.cf.as_str(), r)
    };
    relation(BankClient::NonConsumer).await.unwrap();
    // The cession was decided while the client was one; the relation ends first.
    let gate = t.app.hold_next_submit(&bank.user);
    let (ceded, ended) = held_while(
        gate,
        t.cede(&bank.user, &bank.party, &[line(rata, &client, None)]),
        relation(BankClient::No),
    )
    .await;
    ended.unwrap();
    let e = ceded.unwrap_err();
    assert_eq!(
        (e.rule(), e.code()),
        (Some("R-BANK-CLIENT"), "r_bank_client_changed"),
        "{e}"
    );
    assert_eq!(
        t.max_cedibile(&bank.user, &bank.party, rata).await,
        cents(100_000)
    );
    verified(&t).await;
}

/// Two holders of one rata (a non-tracciabile rata of 2,000.00, 1,500.00 of it ceded), each
/// with its holding seized: the rata's `seized` account holds both seizures, the second
/// larger than the first.
async fn two_seized_holders(t: &TestApp) -> (Holder, Holder, i64) {
    t.set_rome(2024, 3, 1, 10, 0);
    let a = t.holder(1, PartyKind::Company).await;
    let b = t.holder(2, PartyKind::Company).await;
    let credit = t
        .holding(&a.party, &a.user, "superbonus", 1_000_000, old_day())
        .await;
    let rata = rata_of(&credit, 2024);
    t.cede(&a.user, &a.party, &[line(rata, &b.party, Some(150_000))])
        .await
        .unwrap();
    t.answer(&b.user, &b.party, by_cedente(&a.party), true)
        .await
        .unwrap();
    for h in [&a, &b] {
        t.app
            .seize(&t.op, &t.key(), h.party.cf.as_str(), rata, "decreto 1/2024")
            .await
            .unwrap();
    }
    (a, b, rata)
}

async fn r_seize_race_one_holder_released_twice_while_another_holder_is_seized(t: TestApp) {
    let (a, b, rata) = two_seized_holders(&t).await;
    let release = |key: String| {
        let cf = a.party.cf.as_str().to_string();
        let app = t.app.clone();
        let op = t.op.clone();
        async move { app.release_seizure(&op, &key, &cf, rata).await }
    };
    // Both releases were decided on A's open seizure of 500.00; one lands first. The
    // rata's `seized` account still holds B's 1,500.00, which the other would take.
    let gate = t.app.hold_next_submit(&t.op);
    let (second, first) = held_while(gate, release(t.key()), release(t.key())).await;
    assert_eq!(first.unwrap().seized, cents(0));
    let e = second.unwrap_err();
    assert_eq!(
        (e.rule(), e.code()),
        (Some("R-SEIZE"), "r_seize_not_open"),
        "{e}"
    );
    assert_eq!(t.max_cedibile(&a.user, &a.party, rata).await, cents(50_000));
    let b_seized = t.app.seizure_extension(b.party.id, rata).await.unwrap();
    assert!(b_seized.open);
    verified(&t).await;
}

async fn r_seize_race_one_holding_seized_twice(t: TestApp) {
    let (a, rata) = holding(&t, 1).await;
    let seize = |key: String| {
        let cf = a.party.cf.as_str().to_string();
        let app = t.app.clone();
        let op = t.op.clone();
        async move { app.seize(&op, &key, &cf, rata, "decreto 2/2024").await }
    };
    let gate = t.app.hold_next_submit(&t.op);
    let (second, first) = held_while(gate, seize(t.key()), seize(t.key())).await;
    assert_eq!(first.unwrap().seized, cents(100_000));
    let e = second.unwrap_err();
    assert_eq!(
        (e.rule(), e.code()),
        (Some("R-SEIZE"), "r_seize_open"),
        "{e}"
    );
    verified(&t).await;
}

async fn r_chain_race_another_part_of_the_rata_received_while_ceding(t: TestApp) {
    // A non-tracciabile rata of 2,000.00 moves in parts: B holds 500.00 of it.
    t.set_rome(2024, 3, 1, 10, 0);
    let a = t.holder(1, PartyKind::Company).await;
    let b = t.holder(2, PartyKind::Company).await;
    // After the first cession, only to qualified parties (R-CHAIN).
    let c = t.party(3, PartyKind::Bank).await;
    let credit = t
        .holding(&a.party, &a.user, "superbonus", 1_000_000, old_day())
        .await;
    let rata = rata_of(&credit, 2024);
    let pass = |amount| {
        let (a, b) = (&a, &b);
        let t = &t;
        async move {
            t.cede(&a.user, &a.party, &[line(rata, &b.party, Some(amount))])
                .await
                .unwrap();
            t.answer(&b.user, &b.party, by_cedente(&a.party), true)
                .await
                .unwrap();
        }
    };
    pass(50_000).await;
    // B's cession was decided on a history of one path; another part reaches B first.
    let gate = t.app.hold_next_submit(&b.user);
    let (ceded, ()) = held_while(
        gate,
        t.cede(&b.user, &b.party, &[line(rata, &c, Some(50_000))]),
        pass(50_000),
    )
    .await;
    let e = ceded.unwrap_err();
    assert_eq!(
        (e.rule(), e.code()),
        (Some("R-CHAIN"), "r_chain_holding_changed"),
        "{e}"
    );
    assert_eq!(
        t.max_cedibile(&b.user, &b.party, rata).await,
        cents(100_000)
    );
    // Decided again on the history the writer sees, it passes.
    t.cede(&b.user, &b.party, &[line(rata, &c, Some(50_000))])
        .await
        .unwrap();
    verified(&t).await;
}
