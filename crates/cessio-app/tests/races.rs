//! Rules that can race, through the app on both backends. One request is decided and then
//! held before the writer (`App::hold_next_submit`) while a competing one runs to the end;
//! released, the first must be decided on the state the second left: the writer decides
//! R-SUSP and the delegation a request runs under, and the ledger's balances decide the
//! amounts (R-PARTIAL, R-PENDING-OUT, R-SPLIT-ANNUL). Each race runs in both orders, and
//! the register verifies.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

#[macro_use]
mod support;

use cessio_app::{F24LineInput, SplitTarget};
use cessio_core::time::rome_date;
use cessio_store::PartyKind;
use chrono::Datelike;
use support::*;

backends!(
    r_susp_race_the_operator_suspends_while_the_bank_answers,
    r_chain_race_two_cessions_of_one_rata,
    r_split_annul_race_an_f24_against_a_split_being_annulled,
    r_delega_end_race_a_delegation_revoked_while_the_delegate_cedes,
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
