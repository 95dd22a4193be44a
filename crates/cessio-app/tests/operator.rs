//! F9, the Agency's functions, through the app on both backends: R-SUSP (suspend within 5
//! working days, at most 30 days, release, void), the risk rules on every communication,
//! R-SEIZE and the annulment on request. Every scenario ends with `verify`.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

#[macro_use]
mod support;

use cessio_app::{MovementState, RiskHitFilter, SuspensionState};
use cessio_core::risk::RiskConfig;
use cessio_core::suspension::SuspensionEnd;
use cessio_store::{AccountRef, Party, PartyKind};
use support::*;

backends!(
    r_susp_within_the_5th_working_day_around_easter_monday_and_25_april,
    r_susp_at_most_30_days_and_only_once,
    r_susp_answer_refused_while_suspended_then_release,
    r_susp_a_suspended_cession_is_sospesa_with_its_last_day_in_f4_and_the_csv,
    r_susp_void_restores_balances_exactly,
    r_susp_void_after_the_last_day_is_refused_and_it_takes_effect,
    r_susp_only_the_operator,
    risk_cycle_of_length_2,
    risk_cycle_of_length_5,
    risk_amount_far_above_history,
    risk_amount_history_grows_row_by_row_within_one_file,
    risk_amount_history_in_a_job_is_the_files_rows_before_each,
    risk_velocity_many_cessions_of_one_rata,
    risk_deceased_party_and_automatic_suspension,
    r_seize_blocks_and_release_extends_the_deadline,
    annulment_on_request_returns_the_amount_to_the_cedente,
    annulment_on_request_refused_when_used_or_ceded,
);

/// A and B, A holding a tracciabile superbonus (rate of 1.000,00 €): its first rata.
async fn two(t: &TestApp) -> (Holder, Holder, i64) {
    let a = t.holder(1, PartyKind::Company).await;
    let b = t.holder(2, PartyKind::Company).await;
    let rata = t
        .holding(&a.party, &a.user, "superbonus", 400_000, tracciabile_day())
        .await
        .rate[0]
        .id;
    (a, b, rata)
}

/// A cedes the whole rata to B: the pending transfer.
async fn cede(t: &TestApp, from: &Holder, to: &Party, rata: i64) -> i64 {
    t.cede(&from.user, &from.party, &[line(rata, to, None)])
        .await
        .unwrap()
        .transfers[0]
}

async fn r_susp_within_the_5th_working_day_around_easter_monday_and_25_april(t: TestApp) {
    // Thursday 17 April 2025: Fri 18 (1), Easter Monday off, Tue 22 (2), Wed 23 (3),
    // Thu 24 (4), 25 April off, Mon 28 (5).
    t.set_rome(2025, 4, 17, 10, 0);
    let (a, b, rata) = two(&t).await;
    let late = t.company(3).await;
    let first = cede(&t, &a, &b.party, rata).await;
    let other_rata = t
        .holding(&a.party, &a.user, "superbonus", 400_000, tracciabile_day())
        .await
        .rate[0]
        .id;
    let second = cede(&t, &a, &late, other_rata).await;
    t.set_rome(2025, 4, 28, 18, 0);
    let s = t.app.suspend(&t.op, first, 30, "verifica").await.unwrap();
    assert_eq!((s.from, s.until), (date(2025, 4, 28), date(2025, 5, 27)));
    assert_eq!(s.state, SuspensionState::Suspended);
    t.set_rome(2025, 4, 29, 9, 0);
    let e = t
        .app
        .suspend(&t.op, second, 30, "verifica")
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e), ("R-SUSP", "r_susp_too_late"));
    assert!(e.to_string().contains("fino al 28/04/2025"), "{e}");
    t.verify_clean().await;
}

async fn r_susp_at_most_30_days_and_only_once(t: TestApp) {
    let (a, b, rata) = two(&t).await;
    let transfer = cede(&t, &a, &b.party, rata).await;
    for days in [0, 31] {
        let e = t
            .app
            .suspend(&t.op, transfer, days, "verifica")
            .await
            .unwrap_err();
        assert_eq!(rule_of(&e), ("R-SUSP", "r_susp_bad_length"));
    }
    assert_eq!(
        t.app
            .suspend(&t.op, transfer, 30, " ")
            .await
            .unwrap_err()
            .code(),
        "invalid"
    );
    t.app
        .suspend(&t.op, transfer, 30, "verifica")
        .await
        .unwrap();
    assert_eq!(
        t.app
            .suspend(&t.op, transfer, 10, "ancora")
            .await
            .unwrap_err()
            .code(),
        "conflict"
    );
    // A movement that is not a pending communication cannot be suspended.
    assert_eq!(
        t.app
            .suspend(&t.op, 999_999, 10, "x")
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    let open = t.app.suspensions(&t.op, true).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].cessionario_cf, b.party.cf.as_str());
    t.verify_clean().await;
}

async fn r_susp_answer_refused_while_suspended_then_release(t: TestApp) {
    let (a, b, rata) = two(&t).await;
    let transfer = cede(&t, &a, &b.party, rata).await;
    t.app
        .suspend(&t.op, transfer, 30, "verifica")
        .await
        .unwrap();
    t.advance_days(8);
    let groups = t.incoming(&b.user, &b.party).await;
    assert_eq!(groups[0].suspended, 1);
    assert_eq!(groups[0].suspended_until, Some(date(2024, 3, 30)));
    let e = t
        .answer(&b.user, &b.party, by_cedente(&a.party), true)
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e), ("R-SUSP", "r_susp_suspended"));
    assert!(e.to_string().contains("30/03/2024"), "{e}");
    // Neither side can use or cede the amount meanwhile.
    assert_eq!(t.available(&a.party, rata).await, cents(0));
    assert_eq!(t.max_cedibile(&b.user, &b.party, rata).await, cents(0));
    let s = t
        .app
        .end_suspension(&t.op, &t.key(), transfer, SuspensionEnd::Released)
        .await
        .unwrap();
    assert_eq!(s.state, SuspensionState::Released);
    assert_eq!(t.incoming(&b.user, &b.party).await[0].suspended, 0);
    t.answer(&b.user, &b.party, by_cedente(&a.party), true)
        .await
        .unwrap();
    assert_eq!(t.available(&b.party, rata).await, cents(100_000));
    t.verify_clean().await;
}

async fn r_susp_a_suspended_cession_is_sospesa_with_its_last_day_in_f4_and_the_csv(t: TestApp) {
    let (a, b, rata) = two(&t).await;
    let transfer = cede(&t, &a, &b.party, rata).await;
    t.app
        .suspend(&t.op, transfer, 30, "verifica")
        .await
        .unwrap();
    for (who, party) in [(&a.user, &a.party), (&b.user, &b.party)] {
        let rows = t.movements(who, party).await;
        let row = rows.iter().find(|r| r.id == transfer).unwrap();
        assert_eq!(row.state, cessio_app::MovementState::Sospesa);
        assert_eq!(row.suspended_until, Some(date(2024, 3, 30)));
        assert_eq!(row.state_text(), "Sospesa dall'Agenzia fino al 30/03/2024");
    }
    // The filter finds it, and "in attesa" no longer does.
    let only = |state| cessio_app::MovementFilter {
        registered_from: Some(date(2000, 1, 1)),
        state: Some(state),
        ..cessio_app::MovementFilter::default()
    };
    let suspended = t
        .app
        .movements(
            &b.user,
            b.party.id,
            &only(cessio_app::MovementState::Sospesa),
        )
        .await
        .unwrap();
    assert_eq!(
        suspended.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![transfer]
    );
    let waiting = t
        .app
        .movements(
            &b.user,
            b.party.id,
            &only(cessio_app::MovementState::InAttesa),
        )
        .await
        .unwrap();
    assert!(waiting.iter().all(|r| r.id != transfer));
    // The CSV says it too.
    let mut export = t
        .app
        .movements_export(
            &b.user,
            b.party.id,
            &only(cessio_app::MovementState::Sospesa),
        )
        .await
        .unwrap();
    let mut csv = Vec::new();
    while let Some(piece) = export.next_csv().await {
        csv.extend(piece.unwrap());
    }
    assert!(
        String::from_utf8_lossy(&csv).contains("Sospesa dall'Agenzia fino al 30/03/2024"),
        "{}",
        String::from_utf8_lossy(&csv)
    );
    // Released, it is awaiting an answer again.
    t.app
        .end_suspension(&t.op, &t.key(), transfer, SuspensionEnd::Released)
        .await
        .unwrap();
    let rows = t.movements(&b.user, &b.party).await;
    let row = rows.iter().find(|r| r.id == transfer).unwrap();
    assert_eq!(
        (row.state, row.suspended_until),
        (cessio_app::MovementState::InAttesa, None)
    );
}

async fn r_susp_void_restores_balances_exactly(t: TestApp) {
    let (a, b, rata) = two(&t).await;
    let before_a = t.monitor(&a.party, "superbonus", 2024).await;
    let transfer = cede(&t, &a, &b.party, rata).await;
    t.app
        .suspend(&t.op, transfer, 10, "verifica")
        .await
        .unwrap();
    let key = t.key();
    let s = t
        .app
        .end_suspension(&t.op, &key, transfer, SuspensionEnd::Voided)
        .await
        .unwrap();
    assert_eq!(s.state, SuspensionState::Voided);
    // A retry of the same request answers the same and voids nothing twice.
    let again = t
        .app
        .end_suspension(&t.op, &key, transfer, SuspensionEnd::Voided)
        .await
        .unwrap();
    assert_eq!(again.state, SuspensionState::Voided);
    assert_eq!(t.available(&a.party, rata).await, cents(100_000));
    let b_account = t
        .app
        .store()
        .account(rata, AccountRef::Holder(b.party.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b_account.balance.credits_pending, cents(0));
    assert_eq!(b_account.balance.credits_posted, cents(0));
    assert_eq!(
        t.monitor(&a.party, "superbonus", 2024)
            .await
            .residual_cedible,
        before_a.residual_cedible
    );
    assert!(t.incoming(&b.user, &b.party).await.is_empty());
    assert_eq!(
        code(
            t.answer(&b.user, &b.party, by_cedente(&a.party), true)
                .await
        ),
        "conflict"
    );
    // A can cede it again.
    assert_eq!(
        t.max_cedibile(&a.user, &a.party, rata).await,
        cents(100_000)
    );
    // F4 tells both parties the cession never took effect, not that B refused it.
    for h in [&a, &b] {
        let rows = t.movements(&h.user, &h.party).await;
        let row = rows.iter().find(|r| r.id == transfer).unwrap();
        assert_eq!(row.state, MovementState::NonEffettuata, "{}", h.party.cf);
    }
    t.verify_clean().await;
}

async fn r_susp_void_after_the_last_day_is_refused_and_it_takes_effect(t: TestApp) {
    let (a, b, rata) = two(&t).await;
    let transfer = cede(&t, &a, &b.party, rata).await;
    t.app.suspend(&t.op, transfer, 5, "verifica").await.unwrap();
    t.advance_days(5);
    let e = t
        .app
        .end_suspension(&t.op, &t.key(), transfer, SuspensionEnd::Voided)
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e), ("R-SUSP", "r_susp_lapsed"));
    t.advance_days(3);
    assert_eq!(t.incoming(&b.user, &b.party).await[0].suspended, 0);
    t.answer(&b.user, &b.party, by_cedente(&a.party), true)
        .await
        .unwrap();
    assert_eq!(t.available(&b.party, rata).await, cents(100_000));
    t.verify_clean().await;
}

async fn r_susp_only_the_operator(t: TestApp) {
    let (a, b, rata) = two(&t).await;
    let transfer = cede(&t, &a, &b.party, rata).await;
    for who in [&a.user, &b.user] {
        assert_eq!(
            t.app
                .suspend(who, transfer, 10, "x")
                .await
                .unwrap_err()
                .code(),
            "forbidden"
        );
        assert_eq!(
            t.app
                .risk_hits(who, &RiskHitFilter::default())
                .await
                .unwrap_err()
                .code(),
            "forbidden"
        );
    }
    t.verify_clean().await;
}

async fn hits(t: &TestApp, rule: &str) -> Vec<cessio_app::RiskHitView> {
    t.app
        .risk_hits(
            &t.op,
            &RiskHitFilter {
                rule: Some(rule.into()),
                ..RiskHitFilter::default()
            },
        )
        .await
        .unwrap()
}

async fn pass(t: &TestApp, from: &Holder, to: &Holder, rata: i64) {
    cede(t, from, &to.party, rata).await;
    t.advance_days(8);
    t.answer(&to.user, &to.party, by_cedente(&from.party), true)
        .await
        .unwrap();
}

async fn risk_cycle_of_length_2(t: TestApp) {
    // Banks, so that R-CHAIN lets the credit come back.
    let a = t.holder(1, PartyKind::Bank).await;
    let b = t.holder(2, PartyKind::Bank).await;
    let rata = t
        .holding(&a.party, &a.user, "superbonus", 400_000, tracciabile_day())
        .await
        .rate[0]
        .id;
    pass(&t, &a, &b, rata).await;
    assert!(hits(&t, "risk_cycle").await.is_empty());
    let back = cede(&t, &b, &a.party, rata).await;
    let found = hits(&t, "risk_cycle").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].transfer, Some(back));
    assert_eq!(found[0].cessionario_cf, a.party.cf.as_str());
    assert!(
        found[0].reason.ends_with("ciclo di 2 passaggi"),
        "{}",
        found[0].reason
    );
    assert!(!found[0].suspended);
    t.verify_clean().await;
}

async fn risk_cycle_of_length_5(t: TestApp) {
    // Before 17/02/2022 cessions had no limit: A → B → C → D → E → A.
    t.set_rome(2022, 1, 10, 10, 0);
    let mut h = Vec::new();
    for n in 1..=5 {
        h.push(t.holder(n, PartyKind::Company).await);
    }
    let rata = t
        .holding(
            &h[0].party,
            &h[0].user,
            "ecobonus",
            100_000,
            date(2022, 1, 10),
        )
        .await
        .rate[0]
        .id;
    for i in 0..4 {
        pass(&t, &h[i], &h[i + 1], rata).await;
    }
    assert!(hits(&t, "risk_cycle").await.is_empty());
    cede(&t, &h[4], &h[0].party, rata).await;
    let found = hits(&t, "risk_cycle").await;
    assert_eq!(found.len(), 1);
    assert!(
        found[0].reason.ends_with("ciclo di 5 passaggi"),
        "{}",
        found[0].reason
    );
    t.verify_clean().await;
}

/// Four rows of one beneficiary. Superbonus 2022: four rate of a quarter each. 80.000,00 €
/// with no history is above the 50.000,00 € floor; then the history is rate of
/// 20.000,00 €, threshold 100.000,00 €: 80.000,00 € passes, 120.000,00 € does not.
fn growing_file(b: &str, h: &str) -> String {
    format!(
        "cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione;riferimento\n\
         {b};superbonus;2022;sconto;{h};80.000,00;10/03/2022;A\n\
         {b};superbonus;2022;sconto;{h};80.000,00;10/03/2022;B\n\
         {b};superbonus;2022;sconto;{h};80.000,00;10/03/2022;C\n\
         {b};superbonus;2022;sconto;{h};120.000,00;10/03/2022;D\n"
    )
}

/// [`growing_file`]'s hits: the first row (no history) and the last (twelve rate before it).
async fn assert_hits_at_0_and_12(t: &TestApp, beneficiary: &str) {
    let found: Vec<String> = hits(t, "risk_amount_above_history")
        .await
        .into_iter()
        .filter(|hit| hit.cedente_cf == beneficiary)
        .map(|hit| hit.reason)
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    for history in ["di 0 operazioni", "di 12 operazioni"] {
        assert!(found.iter().any(|r| r.contains(history)), "{found:?}");
    }
}

/// A file's rows join their beneficiary's history as they are registered (the history is
/// read once per file): the second row is compared with the first, and so on.
async fn risk_amount_history_grows_row_by_row_within_one_file(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let (b, h) = (ben.cf.as_str(), holder.cf.as_str());
    let file = growing_file(b, h);
    let report = t
        .app
        .import_communications(&t.op, None, file.as_bytes(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.registered, 4, "{:?}", report.rows);
    assert_hits_at_0_and_12(&t, b).await;
}

/// In a bulk job the rows are registered at once, and each is compared with its
/// beneficiary's history before the job and the file's rows before it: the same hits as
/// registered row by row.
async fn risk_amount_history_in_a_job_is_the_files_rows_before_each(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let (b, h) = (ben.cf.as_str(), holder.cf.as_str());
    let file = growing_file(b, h);
    let job = t
        .app
        .submit_import_job(&t.op, None, file.as_bytes())
        .await
        .unwrap();
    let done = t
        .app
        .run_one_bulk_job(Some(job.id), |_| {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.applied, 4, "{done:?}");
    assert_hits_at_0_and_12(&t, b).await;
}

async fn risk_amount_far_above_history(t: TestApp) {
    // p95 of three cessions of 20.000,00 € is 20.000,00 €; k = 5: threshold 100.000,00 €.
    let a = t.holder(1, PartyKind::Company).await;
    let b = t.company(2).await;
    let small = t
        .holding(
            &a.party,
            &a.user,
            "superbonus",
            8_000_000,
            tracciabile_day(),
        )
        .await;
    // The option communication itself (80.000,00 € from a beneficiary with no history)
    // is above the 50.000,00 € floor: a hit with the beneficiary as cedente.
    let of_a = |found: Vec<cessio_app::RiskHitView>| -> Vec<cessio_app::RiskHitView> {
        found
            .into_iter()
            .filter(|h| h.cedente_cf == a.party.cf.as_str())
            .collect()
    };
    let f8 = hits(&t, "risk_amount_above_history").await;
    assert_eq!(f8.len(), 1);
    assert_eq!(f8[0].cessionario_cf, a.party.cf.as_str());
    assert!(f8[0].reason.contains("0 operazioni"), "{}", f8[0].reason);
    for r in &small.rate[..3] {
        cede(&t, &a, &b, r.id).await;
    }
    assert!(of_a(hits(&t, "risk_amount_above_history").await).is_empty());
    let big = t
        .holding(
            &a.party,
            &a.user,
            "superbonus",
            40_000_004,
            tracciabile_day(),
        )
        .await;
    // 10.000.001 cents: the first rata carries the remainder.
    assert_eq!(big.rate[0].amount, cents(10_000_001));
    assert_eq!(big.rate[1].amount, cents(10_000_001));
    cede(&t, &a, &b, big.rate[1].id).await;
    // 10.000.001 > 10.000.000: one hit, with the figures of the formula.
    let found = of_a(hits(&t, "risk_amount_above_history").await);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].reason.contains("100.000,00 €"),
        "{}",
        found[0].reason
    );
    assert!(
        found[0].reason.contains("3 operazioni"),
        "{}",
        found[0].reason
    );
    t.verify_clean().await;
}

async fn risk_velocity_many_cessions_of_one_rata(t: TestApp) {
    // A non-tracciabile rata ceded in parts: the third cession within 7 days hits.
    let a = t.holder(1, PartyKind::Company).await;
    let rata = t
        .holding(&a.party, &a.user, "ecobonus", 100_000, old_day())
        .await
        .rate[0]
        .id;
    for n in 2..=3 {
        let to = t.company(n).await;
        t.cede(&a.user, &a.party, &[line(rata, &to, Some(100))])
            .await
            .unwrap();
        t.advance_days(2);
    }
    assert!(hits(&t, "risk_velocity").await.is_empty());
    let to = t.company(4).await;
    t.cede(&a.user, &a.party, &[line(rata, &to, Some(100))])
        .await
        .unwrap();
    let found = hits(&t, "risk_velocity").await;
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].reason,
        "3 cessioni dello stesso credito in 168 ore (soglia 3)"
    );
    t.verify_clean().await;
}

async fn risk_deceased_party_and_automatic_suspension(mut t: TestApp) {
    t.app.settings.risk_auto_suspend_days = Some(30);
    t.app.settings.risk = RiskConfig::default();
    let (a, b, rata) = two(&t).await;
    assert_eq!(
        t.app
            .set_deceased(&a.user, b.party.cf.as_str(), true)
            .await
            .unwrap_err()
            .code(),
        "forbidden"
    );
    let p = t
        .app
        .set_deceased(&t.op, b.party.cf.as_str(), true)
        .await
        .unwrap();
    assert!(p.deceased);
    let transfer = cede(&t, &a, &b.party, rata).await;
    let found = hits(&t, "risk_party_deceased").await;
    assert_eq!(found.len(), 1);
    assert!(found[0].reason.contains("deceduto"), "{}", found[0].reason);
    assert!(found[0].suspended);
    // Suspended at once, as configured: F3 shows it and refuses the answer.
    let open = t.app.suspensions(&t.op, true).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].transfer, transfer);
    assert_eq!(open[0].risk_rule.as_deref(), Some("risk_party_deceased"));
    t.advance_days(8);
    assert_eq!(
        code(
            t.answer(&b.user, &b.party, by_cedente(&a.party), true)
                .await
        ),
        "r_susp_suspended"
    );
    // Filter by party and day.
    let by_party = t
        .app
        .risk_hits(
            &t.op,
            &RiskHitFilter {
                party_cf: Some(a.party.cf.as_str().into()),
                since: Some(date(2024, 3, 1)),
                rule: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(by_party.len(), 1);
    t.verify_clean().await;
}

async fn r_seize_blocks_and_release_extends_the_deadline(t: TestApp) {
    let (a, b, rata) = two(&t).await;
    let seized = t
        .app
        .seize(
            &t.op,
            &t.key(),
            a.party.cf.as_str(),
            rata,
            "Decreto GIP n. 12/2024",
        )
        .await
        .unwrap();
    assert_eq!(seized.seized, cents(100_000));
    // Blocked: not cedible, not available, F1 not cedible.
    assert_eq!(t.available(&a.party, rata).await, cents(0));
    assert_eq!(t.max_cedibile(&a.user, &a.party, rata).await, cents(0));
    assert!(
        t.cede(&a.user, &a.party, &[line(rata, &b.party, None)])
            .await
            .is_err()
    );
    let row = t.monitor(&a.party, "superbonus", 2024).await;
    assert_eq!(row.residual_not_cedible, cents(100_000));
    assert_eq!(row.ceded_accepted, cents(0));
    let state = t.app.seizure_extension(a.party.id, rata).await.unwrap();
    assert!(state.open);
    assert_eq!(
        code(
            t.app
                .seize(&t.op, &t.key(), a.party.cf.as_str(), rata, "di nuovo")
                .await
        ),
        "conflict"
    );
    t.advance_days(10);
    let released = t
        .app
        .release_seizure(&t.op, &t.key(), a.party.cf.as_str(), rata)
        .await
        .unwrap();
    assert_eq!(released.seized, cents(0));
    assert_eq!(released.extension_days, 10);
    let state = t.app.seizure_extension(a.party.id, rata).await.unwrap();
    assert!(!state.open);
    assert_eq!(state.extension_days, 10);
    assert_eq!(
        t.max_cedibile(&a.user, &a.party, rata).await,
        cents(100_000)
    );
    let row = t.monitor(&a.party, "superbonus", 2024).await;
    assert_eq!(row.residual_cedible, cents(100_000));
    assert_eq!(row.residual_not_cedible, cents(0));
    assert_eq!(
        code(
            t.app
                .release_seizure(&t.op, &t.key(), a.party.cf.as_str(), rata)
                .await
        ),
        "conflict"
    );
    t.verify_clean().await;
}

async fn annulment_on_request_returns_the_amount_to_the_cedente(t: TestApp) {
    let (a, b, rata) = two(&t).await;
    let transfer = cede(&t, &a, &b.party, rata).await;
    // Not accepted yet: nothing to annul.
    assert_eq!(
        code(
            t.app
                .annul_acceptance(&t.op, &t.key(), transfer, "PEC 1")
                .await
        ),
        "conflict"
    );
    t.advance_days(8);
    t.answer(&b.user, &b.party, by_cedente(&a.party), true)
        .await
        .unwrap();
    assert_eq!(
        code(
            t.app
                .annul_acceptance(&b.user, &t.key(), transfer, "PEC 1")
                .await
        ),
        "forbidden"
    );
    let key = t.key();
    let r = t
        .app
        .annul_acceptance(&t.op, &key, transfer, "PEC prot. 2024/123")
        .await
        .unwrap();
    assert_eq!(r.amount, cents(100_000));
    assert!(
        t.app
            .annul_acceptance(&t.op, &key, transfer, "PEC prot. 2024/123")
            .await
            .unwrap()
            .replayed
    );
    assert_eq!(t.available(&a.party, rata).await, cents(100_000));
    assert_eq!(t.available(&b.party, rata).await, cents(0));
    let ma = t.monitor(&a.party, "superbonus", 2024).await;
    assert_eq!(
        (ma.ceded_accepted, ma.residual_cedible),
        (cents(0), cents(100_000))
    );
    let mb = t.monitor(&b.party, "superbonus", 2024).await;
    assert_eq!(
        (mb.received_accepted, mb.residual_cedible),
        (cents(0), cents(0))
    );
    // F4 no longer calls it accepted, for either party.
    for h in [&a, &b] {
        let rows = t.movements(&h.user, &h.party).await;
        let row = rows.iter().find(|r| r.id == transfer).unwrap();
        assert_eq!(row.state, MovementState::AccettazioneAnnullata);
    }
    let recorded = t.app.annulments(&t.op).await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].data["reference"], "PEC prot. 2024/123");
    // Once only.
    assert_eq!(
        code(
            t.app
                .annul_acceptance(&t.op, &t.key(), transfer, "PEC 2")
                .await
        ),
        "annulment_not_allowed"
    );
    t.verify_clean().await;
}

async fn annulment_on_request_refused_when_used_or_ceded(t: TestApp) {
    let a = t.holder(1, PartyKind::Company).await;
    let b = t.holder(2, PartyKind::Company).await;
    let bank = t.party(3, PartyKind::Bank).await;
    let rata = t
        .holding(&a.party, &a.user, "ecobonus", 100_000, old_day())
        .await
        .rate[0]
        .id;
    let transfer = cede(&t, &a, &b.party, rata).await;
    t.answer(&b.user, &b.party, by_cedente(&a.party), true)
        .await
        .unwrap();
    // B cedes a part on to a bank: the acceptance can no longer be annulled.
    t.cede(&b.user, &b.party, &[line(rata, &bank, Some(100))])
        .await
        .unwrap();
    let e = t
        .app
        .annul_acceptance(&t.op, &t.key(), transfer, "PEC 1")
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e), ("F9-ANNUL", "annulment_not_allowed"));
    assert_eq!(t.available(&a.party, rata).await, cents(0));
    t.verify_clean().await;
}
