//! F5 Gestione F24 through the app, on both backends: the F24 choice, the usage windows
//! and the year-end close, the whole-F24 check, the offset bans, idempotent retries and
//! two F24 racing for the same amount.

#![expect(clippy::unwrap_used, reason = "tests")]

#[macro_use]
mod support;

use std::sync::Arc;

use cessio_app::{F24Form, F24LineInput, Principal};
use cessio_core::debt::{DebtKind, DebtLoad, DebtPosition, InstalmentPlan};
use cessio_store::{Credit, Party};
use chrono::NaiveDate;
use support::*;

backends!(
    r_f24_choice_needed_for_tracciabili_and_makes_rata_not_cedible,
    r_f24_choice_revoke_refused_while_reserved,
    r_f24_choice_required_only_when_the_choice_would_cover_the_line,
    r_f24_window_121_last_minute_of_the_year_and_close_year,
    r_f24_window_122_cessionario_uses_by_31_december_of_the_cession,
    r_f24_window_122_first_cessionario_uses_by_31_december_of_the_communication,
    r_f24_window_122_adeguamento_ambienti_usable_only_until_30_june_2021,
    r_f24_future_rata_usable_from_1_january,
    r_f24_over_whole_f24_rejected_nothing_reserved,
    r_ban_100k_threshold_suspended_and_plans,
    r_ban_1500_does_not_touch_agevolativi_credits,
    f24_confirm_uses_discard_releases_each_once,
    f24_reserve_retry_with_same_key_reserves_once,
    f24_reserve_refuses_a_past_or_far_payment_date_with_its_own_code,
    f24_concurrent_double_use_exactly_one_wins,
    f24_availability_reports_cessions_awaiting_an_answer_apart_from_reservations,
);

/// A holder with a non-tracciabile Superbonus credit (communicated 2022-03-01: five rate
/// 2022–2026 of 2,000.00 each) and its user.
async fn old_credit(t: &TestApp) -> (Party, Principal, Credit) {
    let holder = t.company(1).await;
    let h = t.user_for(&holder, "titolare").await;
    let credit = t
        .holding(&holder, &h, "superbonus", 1_000_000, old_day())
        .await;
    assert!(!credit.tracciabile);
    (holder, h, credit)
}

fn rata_of(credit: &Credit, year: u16) -> (i64, String) {
    let r = credit.rate.iter().find(|r| r.year.get() == year).unwrap();
    (r.id, r.codice_tributo.clone())
}

fn f24_line(code: &str, year: u16, amount: i64) -> F24LineInput {
    F24LineInput {
        codice_tributo: code.into(),
        year,
        amount: cents(amount),
    }
}

async fn reserve(
    t: &TestApp,
    who: &Principal,
    party: &Party,
    on: NaiveDate,
    lines: &[F24LineInput],
) -> Result<cessio_app::F24Reservation, cessio_app::AppError> {
    t.reserve_f24(who, party, &t.key(), on, lines, &[]).await
}

async fn usable(t: &TestApp, who: &Principal, party: &Party, code: &str, year: u16) -> i64 {
    t.app
        .f24_availability(who, party.id)
        .await
        .unwrap()
        .iter()
        .find(|r| r.codice_tributo == code && r.year == year)
        .map_or(0, |r| r.usable.get())
}

fn today() -> NaiveDate {
    date(2024, 3, 1)
}

async fn r_f24_choice_needed_for_tracciabili_and_makes_rata_not_cedible(t: TestApp) {
    let holder = t.company(1).await;
    let h = t.user_for(&holder, "titolare").await;
    let credit = t
        .holding(&holder, &h, "superbonus", 400_000, tracciabile_day())
        .await;
    assert!(credit.tracciabile);
    let (rata, code) = rata_of(&credit, 2024);
    let r = reserve(&t, &h, &holder, today(), &[f24_line(&code, 2024, 100)]).await;
    assert_eq!(code_of(r), "f24_choice_required");
    assert_eq!(usable(&t, &h, &holder, &code, 2024).await, 0);
    assert!(t.max_cedibile(&h, &holder, rata).await.is_positive());

    let c = t
        .app
        .declare_f24_choice(&h, &t.key(), Some(PIN), holder.id, rata)
        .await
        .unwrap();
    assert!(matches!(
        c.choice,
        cessio_core::f24::F24Choice::Declared { .. }
    ));
    // R-F24-CHOICE: after the choice the rata is not cedible.
    assert_eq!(t.max_cedibile(&h, &holder, rata).await, cents(0));
    let again = t
        .app
        .declare_f24_choice(&h, &t.key(), Some(PIN), holder.id, rata)
        .await;
    assert_eq!(code_of(again), "f24_choice_already_declared");
    assert_eq!(usable(&t, &h, &holder, &code, 2024).await, 100_000);
    reserve(&t, &h, &holder, today(), &[f24_line(&code, 2024, 100)])
        .await
        .unwrap();

    // A non-tracciabile rata needs no choice, and has none to declare.
    let (old_holder, oh, old) = {
        let p = t.company(2).await;
        let u = t.user_for(&p, "vecchio").await;
        let c = t.holding(&p, &u, "superbonus", 1_000_000, old_day()).await;
        (p, u, c)
    };
    let (old_rata, old_code) = rata_of(&old, 2024);
    let refused = t
        .app
        .declare_f24_choice(&oh, &t.key(), Some(PIN), old_holder.id, old_rata)
        .await;
    assert_eq!(code_of(refused), "f24_choice_not_tracciabile");
    reserve(
        &t,
        &oh,
        &old_holder,
        today(),
        &[f24_line(&old_code, 2024, 100)],
    )
    .await
    .unwrap();
}

async fn r_f24_choice_required_only_when_the_choice_would_cover_the_line(t: TestApp) {
    let holder = t.company(1).await;
    let h = t.user_for(&holder, "titolare").await;
    let credit = t
        .holding(&holder, &h, "superbonus", 400_000, tracciabile_day())
        .await;
    let (_, code) = rata_of(&credit, 2024);
    // The rata of 2024 is 1,000.00 and awaits the choice: a line of 1,000.00 asks for it,
    // one cent more is over whatever the holder declares.
    let covered = reserve(&t, &h, &holder, today(), &[f24_line(&code, 2024, 100_000)]).await;
    assert_eq!(code_of(covered), "f24_choice_required");
    let over = reserve(&t, &h, &holder, today(), &[f24_line(&code, 2024, 100_001)]).await;
    assert_eq!(code_of(over), "f24_over");
    assert_eq!(usable(&t, &h, &holder, &code, 2024).await, 0);
}

async fn r_f24_choice_revoke_refused_while_reserved(t: TestApp) {
    let holder = t.company(1).await;
    let h = t.user_for(&holder, "titolare").await;
    let credit = t
        .holding(&holder, &h, "superbonus", 400_000, tracciabile_day())
        .await;
    let (rata, code) = rata_of(&credit, 2024);
    t.app
        .declare_f24_choice(&h, &t.key(), Some(PIN), holder.id, rata)
        .await
        .unwrap();
    let res = reserve(&t, &h, &holder, today(), &[f24_line(&code, 2024, 500)])
        .await
        .unwrap();
    let revoke = t
        .app
        .revoke_f24_choice(&h, &t.key(), Some(PIN), holder.id, rata)
        .await;
    assert_eq!(code_of(revoke), "f24_choice_reserved");
    t.app
        .discard_f24(&h, &t.key(), Some(PIN), holder.id, res.reservation)
        .await
        .unwrap();
    t.app
        .revoke_f24_choice(&h, &t.key(), Some(PIN), holder.id, rata)
        .await
        .unwrap();
    // Cedible again, whole.
    assert_eq!(t.max_cedibile(&h, &holder, rata).await, cents(100_000));
}

async fn r_f24_window_121_last_minute_of_the_year_and_close_year(t: TestApp) {
    let (holder, h, credit) = old_credit(&t).await;
    let (_, code) = rata_of(&credit, 2024);
    // 31/12/2024 23:59 in Rome: still usable, and the year is not closed yet.
    t.set_rome(2024, 12, 31, 23, 59);
    let last = reserve(
        &t,
        &h,
        &holder,
        date(2024, 12, 31),
        &[f24_line(&code, 2024, 50_000)],
    )
    .await
    .unwrap();
    let early = t.app.close_year(&t.op, 2024).await;
    assert_eq!(code_of(early), "year_not_closed");
    // 01/01/2025 00:00: expired, even before the close has run.
    t.set_rome(2025, 1, 1, 0, 0);
    let r = reserve(
        &t,
        &h,
        &holder,
        date(2025, 1, 1),
        &[f24_line(&code, 2024, 100)],
    )
    .await;
    let e = r.unwrap_err();
    assert_eq!(
        (e.code(), e.rule()),
        ("f24_expired", Some("R-F24-WINDOW-121"))
    );
    // Nor cedible: the amount is still in the holding until the close runs, but neither
    // F2 lists it nor a cession takes it.
    let rata = rata_of(&credit, 2024).0;
    assert!(t.cedible(&h, &holder).await.iter().all(|c| c.rata != rata));
    let other = t.company(77).await;
    let e = t
        .cede(&h, &holder, &[line(rata, &other, None)])
        .await
        .unwrap_err();
    assert_eq!(e.rule(), Some("R-F24-WINDOW-121"), "{e}");
    assert!(e.to_string().contains("31/12/2024"), "{e}");
    let report = t.app.close_year(&t.op, 2024).await.unwrap();
    // The 2022, 2023 and 2024 rate: all unused amounts of years up to 2024.
    assert_eq!(report.holdings, 3);
    assert_eq!(report.amount, cents(200_000 * 3 - 50_000));
    // Idempotent: nothing left to expire.
    let again = t.app.close_year(&t.op, 2024).await.unwrap();
    assert_eq!((again.holdings, again.amount), (0, cents(0)));
    // The reservation of 31/12 is still there and can be confirmed.
    t.app
        .confirm_f24(&h, &t.key(), Some(PIN), holder.id, last.reservation)
        .await
        .unwrap();
    let row = t.monitor(&holder, "superbonus", 2024).await;
    assert_eq!(row.used_done, cents(50_000));
    assert_eq!(row.residual_cedible, cents(0));
    // F1 shows what the close took, so the row reconciles: received − ceded − used −
    // expired = residual.
    assert_eq!(row.expired, cents(150_000));
    let out = [row.ceded_accepted, row.used_done, row.expired]
        .iter()
        .fold(row.received_accepted, |left, x| {
            left.checked_sub(*x).unwrap()
        });
    assert_eq!(
        out,
        row.residual_cedible
            .checked_add(row.residual_not_cedible)
            .unwrap()
    );
    assert!(t.app.store().verify().await.unwrap().ok());
    // The 2025 rata was untouched.
    assert_eq!(usable(&t, &h, &holder, &code, 2025).await, 200_000);
}

async fn r_f24_window_122_cessionario_uses_by_31_december_of_the_cession(t: TestApp) {
    // A rent credit of 2021, ceded in 2021: the cessionario may use it by 31/12/2021.
    t.set_rome(2021, 6, 1, 10, 0);
    let (holder, c) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "cedente").await;
    let cu = t.user_for(&c, "cessionario").await;
    let landlord = t.company(3).await;
    let rent = cessio_app::OptionInput {
        expense_year: 2021,
        ..t.option(
            &landlord,
            &holder,
            "canoni_locazione",
            50_000,
            date(2021, 6, 1),
        )
    };
    let credit = t.try_communicate(&rent).await.unwrap();
    assert!(!credit.tracciabile);
    t.accept_all(&h, &holder).await;
    let rata = credit.rate[0].id;
    t.cede(&h, &holder, &[line(rata, &c, Some(20_000))])
        .await
        .unwrap();
    t.advance_days(10);
    t.accept_all(&cu, &c).await;
    let code = t
        .app
        .f24_availability(&cu, c.id)
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap()
        .codice_tributo;
    t.set_rome(2021, 12, 31, 23, 59);
    reserve(
        &t,
        &cu,
        &c,
        date(2021, 12, 31),
        &[f24_line(&code, 2021, 1_000)],
    )
    .await
    .unwrap();
    t.set_rome(2022, 1, 1, 0, 0);
    let e = reserve(
        &t,
        &cu,
        &c,
        date(2022, 1, 1),
        &[f24_line(&code, 2021, 1_000)],
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code(), e.rule()),
        ("f24_expired", Some("R-F24-WINDOW-122"))
    );
    let report = t.app.close_year(&t.op, 2021).await.unwrap();
    assert!(report.amount >= cents(19_000), "{report:?}");
    assert!(t.app.store().verify().await.unwrap().ok());
}

async fn r_f24_window_122_first_cessionario_uses_by_31_december_of_the_communication(t: TestApp) {
    // The tenant cedes its 2021 rent credit to the landlord's company in the option
    // communication itself: the company is the first cessionario, bound like any later one
    // (seeds 000 and 002, art. 122 c.3 DL 34/2020): by 31/12/2021, then lost.
    t.set_rome(2021, 6, 1, 10, 0);
    let (tenant, landlord) = (t.company(1).await, t.company(2).await);
    let lu = t.user_for(&landlord, "locatore").await;
    let other = t.company(3).await;
    let rent = cessio_app::OptionInput {
        expense_year: 2021,
        ..t.option(
            &tenant,
            &landlord,
            "canoni_locazione",
            50_000,
            date(2021, 6, 1),
        )
    };
    let credit = t.try_communicate(&rent).await.unwrap();
    t.accept_all(&lu, &landlord).await;
    let code = t
        .app
        .f24_availability(&lu, landlord.id)
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap()
        .codice_tributo;
    t.set_rome(2021, 12, 31, 23, 59);
    reserve(
        &t,
        &lu,
        &landlord,
        date(2021, 12, 31),
        &[f24_line(&code, 2021, 1_000)],
    )
    .await
    .unwrap();
    t.set_rome(2022, 1, 1, 0, 0);
    let e = reserve(
        &t,
        &lu,
        &landlord,
        date(2022, 1, 1),
        &[f24_line(&code, 2021, 1_000)],
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code(), e.rule()),
        ("f24_expired", Some("R-F24-WINDOW-122"))
    );
    // Nor can it be ceded on in the new year.
    let e = t
        .cede(
            &lu,
            &landlord,
            &[line(credit.rate[0].id, &other, Some(1_000))],
        )
        .await
        .unwrap_err();
    assert_eq!(e.rule(), Some("R-F24-WINDOW-122"), "{e}");
    // The year-end close takes what was not used.
    let report = t.app.close_year(&t.op, 2021).await.unwrap();
    assert_eq!(report.amount, cents(49_000), "{report:?}");
    let left = t.app.f24_availability(&lu, landlord.id).await.unwrap();
    assert!(
        left.iter()
            .all(|a| a.usable == cents(0) && a.expired == cents(0)),
        "{left:?}"
    );
    assert!(t.app.store().verify().await.unwrap().ok());
}

async fn r_f24_window_122_adeguamento_ambienti_usable_only_until_30_june_2021(t: TestApp) {
    // Art. 120: expenses of 2020, used from 1/1/2021 until 30/06/2021 (L. 178/2020
    // c.1098), though the art. 122 window alone would run to 31/12/2021.
    t.set_rome(2021, 3, 1, 10, 0);
    let (employer, bank) = (t.company(1).await, t.company(2).await);
    let bu = t.user_for(&bank, "banca").await;
    let input = cessio_app::OptionInput {
        expense_year: 2020,
        ..t.option(
            &employer,
            &bank,
            "adeguamento_ambienti",
            80_000,
            date(2021, 3, 1),
        )
    };
    t.try_communicate(&input).await.unwrap();
    t.accept_all(&bu, &bank).await;
    let row = t
        .app
        .f24_availability(&bu, bank.id)
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(row.last_day, Some(date(2021, 6, 30)), "{row:?}");
    t.set_rome(2021, 6, 30, 23, 59);
    reserve(
        &t,
        &bu,
        &bank,
        date(2021, 6, 30),
        &[f24_line(&row.codice_tributo, 2021, 1_000)],
    )
    .await
    .unwrap();
    t.set_rome(2021, 7, 1, 0, 0);
    let e = reserve(
        &t,
        &bu,
        &bank,
        date(2021, 7, 1),
        &[f24_line(&row.codice_tributo, 2021, 1_000)],
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code(), e.rule()),
        ("f24_expired", Some("R-F24-WINDOW-122"))
    );
    // The year-end close takes the rest.
    t.set_rome(2022, 1, 1, 0, 0);
    let report = t.app.close_year(&t.op, 2021).await.unwrap();
    assert_eq!(report.amount, cents(79_000), "{report:?}");
    assert!(t.app.store().verify().await.unwrap().ok());
}

async fn r_f24_future_rata_usable_from_1_january(t: TestApp) {
    let (holder, h, credit) = old_credit(&t).await;
    let (_, code) = rata_of(&credit, 2025);
    let e = reserve(&t, &h, &holder, today(), &[f24_line(&code, 2025, 100)])
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.rule()),
        ("f24_future_year", Some("R-F24-FUTURE"))
    );
    assert!(e.to_string().contains("01/01/2025"), "{e}");
    let row = t
        .app
        .f24_availability(&h, holder.id)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.year == 2025)
        .unwrap();
    assert_eq!((row.usable, row.not_yet_usable), (cents(0), cents(200_000)));
    assert_eq!(row.usable_from, Some(date(2025, 1, 1)));
}

async fn r_f24_over_whole_f24_rejected_nothing_reserved(t: TestApp) {
    let (holder, h, credit) = old_credit(&t).await;
    let (_, code) = rata_of(&credit, 2024);
    let e = reserve(
        &t,
        &h,
        &holder,
        today(),
        &[
            f24_line(&code, 2024, 150_000),
            f24_line(&code, 2024, 50_001),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!((e.code(), e.rule()), ("f24_over", Some("R-F24-OVER")));
    assert!(e.to_string().contains("riga 2"), "{e}");
    assert_eq!(usable(&t, &h, &holder, &code, 2024).await, 200_000);
    let row = t.monitor(&holder, "superbonus", 2024).await;
    assert_eq!((row.used_reserved, row.used_done), (cents(0), cents(0)));
    // Exactly the available amount, over two lines, passes.
    reserve(
        &t,
        &h,
        &holder,
        today(),
        &[
            f24_line(&code, 2024, 150_000),
            f24_line(&code, 2024, 50_000),
        ],
    )
    .await
    .unwrap();
    let row = t.monitor(&holder, "superbonus", 2024).await;
    assert_eq!(row.used_reserved, cents(200_000));
}

async fn set_debts(t: &TestApp, party: &Party, loads: Vec<DebtLoad>) {
    t.app
        .set_debt_position(&t.op, &t.key(), party.id, &DebtPosition::new(loads))
        .await
        .unwrap();
}

async fn r_ban_100k_threshold_suspended_and_plans(t: TestApp) {
    let (holder, h, credit) = old_credit(&t).await;
    let (_, code) = rata_of(&credit, 2024);
    let one = [f24_line(&code, 2024, 100)];
    // The ban applies to F24 sent from 1 July 2024 (L. 213/2023).
    t.set_rome(2024, 7, 1, 9, 0);
    let today = || date(2024, 7, 1);
    // €100,000.00 exactly: allowed.
    set_debts(
        &t,
        &holder,
        vec![DebtLoad::overdue(DebtKind::Erariale, cents(10_000_000))],
    )
    .await;
    reserve(&t, &h, &holder, today(), &one).await.unwrap();
    // €100,000.01: banned, with the figures.
    set_debts(
        &t,
        &holder,
        vec![DebtLoad::overdue(DebtKind::Erariale, cents(10_000_001))],
    )
    .await;
    let e = reserve(&t, &h, &holder, today(), &one).await.unwrap_err();
    assert_eq!((e.code(), e.rule()), ("r_ban_100k", Some("R-BAN-100K")));
    assert!(e.to_string().contains("100.000,01"), "{e}");
    // One cent suspended brings it back within the limit.
    set_debts(
        &t,
        &holder,
        vec![DebtLoad {
            suspended: cents(1),
            ..DebtLoad::overdue(DebtKind::Erariale, cents(10_000_001))
        }],
    )
    .await;
    reserve(&t, &h, &holder, today(), &one).await.unwrap();
    // A live instalment plan does not count; a lapsed one does.
    set_debts(
        &t,
        &holder,
        vec![DebtLoad {
            plan: InstalmentPlan::InForce,
            ..DebtLoad::overdue(DebtKind::AttoAgenzia, cents(50_000_000))
        }],
    )
    .await;
    reserve(&t, &h, &holder, today(), &one).await.unwrap();
    set_debts(
        &t,
        &holder,
        vec![DebtLoad {
            plan: InstalmentPlan::Lapsed,
            ..DebtLoad::overdue(DebtKind::AttoAgenzia, cents(50_000_000))
        }],
    )
    .await;
    assert_eq!(
        code_of(reserve(&t, &h, &holder, today(), &one).await),
        "r_ban_100k"
    );
    // Only the operator records debt positions.
    let not_op = t
        .app
        .set_debt_position(&h, &t.key(), holder.id, &DebtPosition::default())
        .await;
    assert_eq!(code_of(not_op), "forbidden");
}

async fn r_ban_1500_does_not_touch_agevolativi_credits(t: TestApp) {
    let (holder, h, credit) = old_credit(&t).await;
    let (_, code) = rata_of(&credit, 2024);
    set_debts(
        &t,
        &holder,
        vec![DebtLoad::overdue(DebtKind::Erariale, cents(5_000_000))],
    )
    .await;
    // €50,000 of erariali debts: above €1,500, but these credits are not erariali.
    let before = usable(&t, &h, &holder, &code, 2024).await;
    let r = reserve(&t, &h, &holder, today(), &[f24_line(&code, 2024, 100)])
        .await
        .unwrap();
    assert_eq!(r.amount, cents(100));
    assert_eq!(usable(&t, &h, &holder, &code, 2024).await, before - 100);
}

async fn f24_confirm_uses_discard_releases_each_once(t: TestApp) {
    let (holder, h, credit) = old_credit(&t).await;
    let (_, code) = rata_of(&credit, 2024);
    let a = reserve(&t, &h, &holder, today(), &[f24_line(&code, 2024, 30_000)])
        .await
        .unwrap();
    let b = reserve(&t, &h, &holder, today(), &[f24_line(&code, 2024, 20_000)])
        .await
        .unwrap();
    assert_eq!(usable(&t, &h, &holder, &code, 2024).await, 150_000);
    let done = t
        .app
        .confirm_f24(&h, &t.key(), Some(PIN), holder.id, a.reservation)
        .await
        .unwrap();
    assert_eq!(done.amount, cents(30_000));
    t.app
        .discard_f24(&h, &t.key(), Some(PIN), holder.id, b.reservation)
        .await
        .unwrap();
    let row = t.monitor(&holder, "superbonus", 2024).await;
    assert_eq!(
        (row.used_done, row.used_reserved),
        (cents(30_000), cents(0))
    );
    assert_eq!(usable(&t, &h, &holder, &code, 2024).await, 170_000);
    let twice = t
        .app
        .discard_f24(&h, &t.key(), Some(PIN), holder.id, a.reservation)
        .await;
    assert_eq!(code_of(twice), "conflict");
    // Another party's user cannot end it.
    let other = t.company(5).await;
    let o = t.user_for(&other, "altro").await;
    let e = t
        .app
        .confirm_f24(&o, &t.key(), Some(PIN), holder.id, b.reservation)
        .await;
    assert_eq!(code_of(e), "forbidden");
    assert!(t.app.store().verify().await.unwrap().ok());
}

async fn f24_reserve_retry_with_same_key_reserves_once(t: TestApp) {
    let (holder, h, credit) = old_credit(&t).await;
    let (_, code) = rata_of(&credit, 2024);
    let lines = [f24_line(&code, 2024, 200_000)];
    let first = t
        .app
        .reserve_f24(
            &h,
            "f24-1",
            Some(PIN),
            holder.id,
            F24Form {
                payment_date: today(),
                lines: &lines,
                debits: &[],
            },
        )
        .await
        .unwrap();
    let retry = t
        .app
        .reserve_f24(
            &h,
            "f24-1",
            Some(PIN),
            holder.id,
            F24Form {
                payment_date: today(),
                lines: &lines,
                debits: &[],
            },
        )
        .await
        .unwrap();
    assert!(retry.replayed && !first.replayed);
    assert_eq!(retry.reservation, first.reservation);
    assert_eq!(retry.takes, first.takes);
    assert_eq!(usable(&t, &h, &holder, &code, 2024).await, 0);
    let other = t
        .app
        .reserve_f24(
            &h,
            "f24-1",
            Some(PIN),
            holder.id,
            F24Form {
                payment_date: today(),
                lines: &[f24_line(&code, 2024, 1)],
                debits: &[],
            },
        )
        .await;
    assert_eq!(code_of(other), "idempotency_mismatch");
}

async fn f24_concurrent_double_use_exactly_one_wins(t: TestApp) {
    let (holder, h, credit) = old_credit(&t).await;
    let (_, code) = rata_of(&credit, 2024);
    let h = t.strong(&h.username).await;
    let app = Arc::new(t.app.clone());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (app, h, code) = (app.clone(), h.clone(), code.clone());
        let party = holder.id;
        tasks.push(tokio::spawn(async move {
            app.reserve_f24(
                &h,
                &format!("race-{i}"),
                None,
                party,
                F24Form {
                    payment_date: today(),
                    lines: &[f24_line(&code, 2024, 150_000)],
                    debits: &[],
                },
            )
            .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(e.code(), "f24_over", "{e}"),
        }
    }
    assert_eq!(won, 1);
    let row = t.monitor(&holder, "superbonus", 2024).await;
    assert_eq!(row.used_reserved, cents(150_000));
    assert!(t.app.store().verify().await.unwrap().ok());
}

fn code_of<T: std::fmt::Debug>(r: Result<T, cessio_app::AppError>) -> &'static str {
    r.unwrap_err().code()
}

async fn f24_availability_reports_cessions_awaiting_an_answer_apart_from_reservations(t: TestApp) {
    let (holder, h, credit) = old_credit(&t).await;
    let (rata, code) = rata_of(&credit, 2024);
    let other = t.company(9).await;
    t.cede(&h, &holder, &[line(rata, &other, Some(30_000))])
        .await
        .unwrap();
    reserve(&t, &h, &holder, today(), &[f24_line(&code, 2024, 20_000)])
        .await
        .unwrap();
    let row = t
        .app
        .f24_availability(&h, holder.id)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.codice_tributo == code && r.year == 2024)
        .unwrap();
    assert_eq!(row.reserved, cents(20_000), "{row:?}");
    assert_eq!(row.pending_in_cession, cents(30_000), "{row:?}");
    assert_eq!(row.usable, cents(150_000), "{row:?}");
}

async fn f24_reserve_refuses_a_past_or_far_payment_date_with_its_own_code(t: TestApp) {
    let (holder, h, credit) = old_credit(&t).await;
    let (_, code) = rata_of(&credit, 2024);
    for day in [date(2024, 2, 29), date(2024, 4, 1)] {
        let e = reserve(&t, &h, &holder, day, &[f24_line(&code, 2024, 100)])
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), e.rule()),
            ("f24_payment_date", Some("F5")),
            "{day}"
        );
        assert!(e.to_string().contains("01/03/2024"), "{e}");
    }
    assert_eq!(usable(&t, &h, &holder, &code, 2024).await, 200_000);
}
