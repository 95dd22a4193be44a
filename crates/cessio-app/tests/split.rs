//! F6 Ulteriore rateazione through the app, on both backends: eligibility, the ten rate and
//! their cents, the split rate that can only be used, the annulment and idempotent retries.

#![expect(clippy::unwrap_used, reason = "tests")]

#[macro_use]
mod support;

use cessio_app::{F24Form, F24LineInput, OptionInput, Principal, SplitReceipt, SplitTarget};
use cessio_store::{Credit, Party};
use support::*;

backends!(
    r_split_eligible_by_code,
    r_split_eligible_by_communication_date_not_from_2023_04_01_codes,
    r_split_eligible_by_rata_year,
    r_split_eligible_2022_residual_survives_the_close_and_splits_in_2023_only,
    r_split_cents_one_cent_creates_only_the_first_rata,
    r_split_cents_odd_cents_remainder_on_the_first,
    r_split_nocede_split_rata_not_cedible_and_cede_refuses,
    r_split_annul_ok_when_untouched,
    r_split_annul_refused_whole_when_a_split_rata_is_reserved_or_used,
    r_split_seed_004_superbonus_split_code_is_7771_not_7711,
    split_retry_with_same_key_splits_once,
);

/// A holder with its user and an accepted credit of `type_key` communicated on `on`.
async fn holder_with(
    t: &TestApp,
    type_key: &str,
    total: i64,
    on: chrono::NaiveDate,
) -> (Party, Principal, Credit) {
    let holder = t.company(1).await;
    let h = t.user_for(&holder, "titolare").await;
    let credit = t.holding(&holder, &h, type_key, total, on).await;
    (holder, h, credit)
}

fn rata_of(credit: &Credit, year: u16) -> i64 {
    credit
        .rate
        .iter()
        .find(|r| r.year.get() == year)
        .unwrap()
        .id
}

async fn split(
    t: &TestApp,
    h: &Principal,
    holder: &Party,
    rata: i64,
    amount: i64,
) -> Result<SplitReceipt, cessio_app::AppError> {
    t.app
        .split_rata(h, &t.key(), Some(PIN), holder.id, rata, cents(amount))
        .await
}

async fn verified(t: &TestApp) {
    assert!(t.app.store().verify().await.unwrap().ok());
}

async fn r_split_eligible_by_code(t: TestApp) {
    // Superbonus 7701 communicated 2022-03-01: eligible from the 2022 rata.
    let (holder, h, sb) = holder_with(&t, "superbonus", 1_000_000, old_day()).await;
    let rata = rata_of(&sb, 2024);
    assert_eq!(sb.rate[0].codice_tributo, "7701");
    let p = t
        .app
        .split_preview(&h, holder.id, rata, cents(200_000))
        .await
        .unwrap();
    assert_eq!(p.rate.len(), 10);
    assert_eq!(p.residual, cents(200_000));
    let years: Vec<u16> = p.rate.iter().map(|r| r.year).collect();
    assert_eq!(years, (2025..=2034).collect::<Vec<u16>>());
    assert_eq!(p.rate[9].last_day_of_use, date(2034, 12, 31));
    // Ecobonus has no split at all.
    let eco = t
        .holding(&holder, &h, "ecobonus", 1_000_000, old_day())
        .await;
    let e = t
        .app
        .split_preview(&h, holder.id, rata_of(&eco, 2024), cents(100))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "r_split_not_eligible");
    assert!(matches!(
        e,
        cessio_app::AppError::Rule {
            rule: "R-SPLIT-ELIGIBLE",
            ..
        }
    ));
    // Above the residual: refused, nothing written.
    let over = split(&t, &h, &holder, rata, 200_001).await;
    assert_eq!(code(over), "r_split_over_residual");
    assert_eq!(t.available(&holder, rata).await, cents(200_000));
    verified(&t).await;
}

async fn r_split_eligible_by_communication_date_not_from_2023_04_01_codes(t: TestApp) {
    let holder = t.company(1).await;
    let h = t.user_for(&holder, "titolare").await;
    let ben = t.company(2).await;
    // Superbonus communicated 2023-06-01 (7709, with an R-OPT-STOP exception): not eligible.
    let input = OptionInput {
        exception: Some(cilas_exception()),
        ..t.option(&ben, &holder, "superbonus", 400_000, date(2023, 6, 1))
    };
    let late = t.try_communicate(&input).await.unwrap();
    t.answer(&h, &holder, by_cedente(&ben), true).await.unwrap();
    assert_eq!(late.rate[0].codice_tributo, "7709");
    let e = split(&t, &h, &holder, rata_of(&late, 2024), 100).await;
    assert_eq!(code(e), "r_split_not_eligible");
    // Sismabonus communicated 2022-03-01 (7703, by 2023-03-31): eligible from the 2023 rata.
    let sisma = t
        .holding(&holder, &h, "sismabonus", 500_000, old_day())
        .await;
    let r = split(&t, &h, &holder, rata_of(&sisma, 2024), 100_000)
        .await
        .unwrap();
    assert!(r.rate.iter().all(|x| x.codice_tributo == "7772"));
    verified(&t).await;
}

async fn r_split_eligible_by_rata_year(t: TestApp) {
    // A Superbonus 7708 credit communicated on 15 November 2022: its rate are eligible from
    // 2023, not the 2022 one; and nothing could be split before the function opened on
    // 2 May 2023.
    t.set_rome(2022, 12, 1, 10, 0);
    let (holder, h, credit) = holder_with(&t, "superbonus", 1_000_000, date(2022, 11, 15)).await;
    assert_eq!(credit.rate[0].codice_tributo, "7708");
    let e = split(&t, &h, &holder, rata_of(&credit, 2023), 100)
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.rule()),
        ("r_split_not_available", Some("R-SPLIT-ELIGIBLE"))
    );
    assert!(e.to_string().contains("02/05/2023"), "{e}");
    t.set_rome(2023, 5, 2, 10, 0);
    let e = split(&t, &h, &holder, rata_of(&credit, 2022), 100).await;
    assert_eq!(code(e), "r_split_not_eligible");
    split(&t, &h, &holder, rata_of(&credit, 2023), 100)
        .await
        .unwrap();
    // A rata whose year has passed has expired.
    t.set_rome(2024, 3, 1, 10, 0);
    let e = split(&t, &h, &holder, rata_of(&credit, 2023), 100).await;
    assert_eq!(code(e), "r_split_expired");
    verified(&t).await;
}

async fn r_split_eligible_2022_residual_survives_the_close_and_splits_in_2023_only(t: TestApp) {
    // Superbonus communicated by 31/10/2022 (7701): the unused part of the 2022 rata can
    // be neither used nor ceded after 31/12/2022, but its residual may be split in 2023
    // (art. 9 c.4 DL 176/2022, seed S4), so the 2022 close must leave it in the holding.
    t.set_rome(2022, 6, 1, 10, 0);
    let (holder, h, credit) = holder_with(&t, "superbonus", 1_000_000, old_day()).await;
    let other = t.company(2).await;
    let (kept, lost) = (rata_of(&credit, 2022), t.company(3).await);
    let lu = t.user_for(&lost, "perde").await;
    let second = t
        .holding(&lost, &lu, "superbonus", 500_000, old_day())
        .await;
    t.set_rome(2023, 1, 1, 0, 0);
    let report = t.app.close_year(&t.op, 2022).await.unwrap();
    assert_eq!(
        (report.holdings, report.amount),
        (0, cents(0)),
        "{report:?}"
    );
    // Neither usable nor cedible meanwhile.
    let e = t
        .cede(&h, &holder, &[line(kept, &other, None)])
        .await
        .unwrap_err();
    assert_eq!(e.rule(), Some("R-F24-WINDOW-121"), "{e}");
    assert!(t.cedible(&h, &holder).await.iter().all(|c| c.rata != kept));
    let codice_tributo = credit.rate[0].codice_tributo.clone();
    let e = t
        .app
        .reserve_f24(
            &h,
            &t.key(),
            Some(PIN),
            holder.id,
            F24Form {
                payment_date: date(2023, 1, 16),
                lines: &[F24LineInput {
                    codice_tributo,
                    year: 2022,
                    amount: cents(100),
                }],
                debits: &[],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.rule(), Some("R-F24-WINDOW-121"), "{e}");
    // Not before the function opened; then the whole residual, into 2023–2032.
    t.set_rome(2023, 5, 1, 10, 0);
    assert_eq!(
        code(split(&t, &h, &holder, kept, 200_000).await),
        "r_split_not_available"
    );
    t.set_rome(2023, 5, 2, 10, 0);
    let r = split(&t, &h, &holder, kept, 200_000).await.unwrap();
    assert_eq!(r.rate.first().map(|x| x.year), Some(2023));
    assert_eq!(r.rate.last().map(|x| x.year), Some(2032));
    // What nobody split is expired by the 2023 close, once the window has ended.
    t.set_rome(2024, 1, 1, 0, 0);
    let e = split(&t, &lu, &lost, rata_of(&second, 2022), 100).await;
    assert_eq!(code(e), "r_split_expired");
    let report = t.app.close_year(&t.op, 2023).await.unwrap();
    assert!(report.amount >= cents(100_000), "{report:?}");
    assert_eq!(
        t.monitor(&lost, "superbonus", 2022).await.residual_cedible,
        cents(0)
    );
    assert_eq!(
        t.monitor(&lost, "superbonus", 2022).await.expired,
        cents(100_000)
    );
    verified(&t).await;
}

async fn r_split_cents_one_cent_creates_only_the_first_rata(t: TestApp) {
    let (holder, h, credit) = holder_with(&t, "superbonus", 1_000_000, old_day()).await;
    let rata = rata_of(&credit, 2024);
    let p = t
        .app
        .split_preview(&h, holder.id, rata, cents(1))
        .await
        .unwrap();
    let amounts: Vec<i64> = p.rate.iter().map(|r| r.amount.get()).collect();
    assert_eq!(amounts, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // The store refuses rate of zero: only the 1-cent rata is created.
    let r = split(&t, &h, &holder, rata, 1).await.unwrap();
    assert_eq!(r.rate.len(), 1);
    assert_eq!((r.rate[0].year, r.rate[0].amount), (2025, cents(1)));
    assert_eq!(t.available(&holder, rata).await, cents(199_999));
    assert_eq!(t.available(&holder, r.rate[0].rata).await, cents(1));
    verified(&t).await;
}

async fn r_split_cents_odd_cents_remainder_on_the_first(t: TestApp) {
    let (holder, h, credit) = holder_with(&t, "superbonus", 1_000_000, old_day()).await;
    let rata = rata_of(&credit, 2024);
    let r = split(&t, &h, &holder, rata, 100_003).await.unwrap();
    assert_eq!(r.rate.len(), 10);
    assert_eq!(r.rate[0].amount, cents(10_003));
    assert!(r.rate[1..].iter().all(|x| x.amount == cents(10_000)));
    assert_eq!(r.amount, cents(100_003));
    // 7 cents: all on the first rata (the remainder), the nine rate of zero not created.
    let r = split(&t, &h, &holder, rata, 7).await.unwrap();
    assert_eq!(r.rate.len(), 1);
    assert_eq!((r.rate[0].year, r.rate[0].amount), (2025, cents(7)));
    // 19 cents: 10 on the first, 1 on each of the others.
    let r = split(&t, &h, &holder, rata, 19).await.unwrap();
    let amounts: Vec<i64> = r.rate.iter().map(|x| x.amount.get()).collect();
    assert_eq!(amounts, [10, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    assert_eq!(
        t.available(&holder, rata).await,
        cents(200_000 - 100_003 - 7 - 19)
    );
    verified(&t).await;
}

async fn r_split_nocede_split_rata_not_cedible_and_cede_refuses(t: TestApp) {
    let (holder, h, credit) = holder_with(&t, "superbonus", 1_000_000, old_day()).await;
    let other = t.company(2).await;
    let rata = rata_of(&credit, 2024);
    let r = split(&t, &h, &holder, rata, 50_000).await.unwrap();
    let split_rata = r.rate[0].rata;
    // The original keeps its cedible residual; the split rata is not listed.
    assert_eq!(t.max_cedibile(&h, &holder, rata).await, cents(150_000));
    assert_eq!(t.max_cedibile(&h, &holder, split_rata).await, cents(0));
    let e = t
        .cede(&h, &holder, &[line(split_rata, &other, Some(100))])
        .await;
    // Refused as a rata the holder may not cede (not named R-SPLIT-NOCEDE by `cede` yet).
    assert_eq!(code(e), "r_split_nocede");
    assert_eq!(t.available(&holder, split_rata).await, cents(5_000));
    // Monitoring shows the split rate as residual not cedible.
    let m = t.monitor(&holder, "superbonus", 2025).await;
    assert_eq!(m.residual_not_cedible, cents(5_000));
    assert_eq!(m.residual_cedible, cents(200_000));
    verified(&t).await;
}

async fn r_split_annul_ok_when_untouched(t: TestApp) {
    let (holder, h, credit) = holder_with(&t, "superbonus", 1_000_000, old_day()).await;
    let rata = rata_of(&credit, 2024);
    let r = split(&t, &h, &holder, rata, 100_003).await.unwrap();
    let a = t
        .app
        .annul_split(
            &h,
            &t.key(),
            Some(PIN),
            holder.id,
            SplitTarget::Credit(r.split_credit),
        )
        .await
        .unwrap();
    assert_eq!(a.rata, rata);
    assert_eq!(a.restored.codice_tributo, "7701");
    assert_eq!(a.restored.year, 2024);
    assert_eq!(a.restored.last_day_of_use, date(2024, 12, 31));
    assert_eq!(a.restored.amount, cents(100_003));
    assert_eq!(t.available(&holder, rata).await, cents(200_000));
    for x in &r.rate {
        assert_eq!(t.available(&holder, x.rata).await, cents(0));
    }
    assert_eq!(t.max_cedibile(&h, &holder, rata).await, cents(200_000));
    // Annulled once: a second annulment of the same split is refused.
    let again = t
        .app
        .annul_split(
            &h,
            &t.key(),
            Some(PIN),
            holder.id,
            SplitTarget::Credit(r.split_credit),
        )
        .await;
    assert_eq!(code(again), "conflict");
    // By the original rata: its latest split not yet annulled.
    let r2 = split(&t, &h, &holder, rata, 10_000).await.unwrap();
    let key = t.key();
    let by_rata = || {
        t.app.annul_split(
            &h,
            &key,
            Some(PIN),
            holder.id,
            SplitTarget::OriginalRata(rata),
        )
    };
    let a2 = by_rata().await.unwrap();
    assert_eq!(a2.split_credit, r2.split_credit);
    // Retried: the same annulment, replayed.
    let retry = by_rata().await.unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.split_credit, r2.split_credit);
    assert_eq!(retry.operation_id, a2.operation_id);
    assert_eq!(t.available(&holder, rata).await, cents(200_000));
    verified(&t).await;
}

async fn r_split_annul_refused_whole_when_a_split_rata_is_reserved_or_used(t: TestApp) {
    let (holder, h, credit) = holder_with(&t, "superbonus", 1_000_000, old_day()).await;
    let rata = rata_of(&credit, 2024);
    let r = split(&t, &h, &holder, rata, 100_000).await.unwrap();
    // In 2025 the first split rata is usable: an F24 reserves part of it.
    t.set_rome(2025, 1, 10, 10, 0);
    let lines = [F24LineInput {
        codice_tributo: "7771".into(),
        year: 2025,
        amount: cents(100),
    }];
    let reservation = t
        .app
        .reserve_f24(
            &h,
            &t.key(),
            Some(PIN),
            holder.id,
            F24Form {
                payment_date: date(2025, 1, 10),
                lines: &lines,
                debits: &[],
            },
        )
        .await
        .unwrap();
    let annul = |key: String| {
        let (t, h, holder) = (&t, &h, &holder);
        async move {
            t.app
                .annul_split(
                    h,
                    &key,
                    Some(PIN),
                    holder.id,
                    SplitTarget::Credit(r.split_credit),
                )
                .await
        }
    };
    let e = annul(t.key()).await.unwrap_err();
    assert_eq!(e.code(), "r_split_annul_rata_touched");
    assert!(e.to_string().contains("prenotati"), "{e}");
    // Refused whole: nothing moved.
    assert_eq!(t.available(&holder, rata).await, cents(100_000));
    assert_eq!(t.available(&holder, r.rate[1].rata).await, cents(10_000));
    // Used: still refused.
    t.app
        .confirm_f24(&h, &t.key(), Some(PIN), holder.id, reservation.reservation)
        .await
        .unwrap();
    let e = annul(t.key()).await.unwrap_err();
    assert_eq!(e.code(), "r_split_annul_rata_touched");
    assert!(e.to_string().contains("utilizzati"), "{e}");
    assert_eq!(t.available(&holder, r.rate[0].rata).await, cents(9_900));
    verified(&t).await;
}

async fn r_split_seed_004_superbonus_split_code_is_7771_not_7711(t: TestApp) {
    let (holder, h, credit) = holder_with(&t, "superbonus", 1_000_000, old_day()).await;
    let rata = rata_of(&credit, 2025);
    let p = t
        .app
        .split_preview(&h, holder.id, rata, cents(200_000))
        .await
        .unwrap();
    assert!(p.rate.iter().all(|r| r.codice_tributo == "7771"));
    let r = split(&t, &h, &holder, rata, 200_000).await.unwrap();
    assert!(r.rate.iter().all(|r| r.codice_tributo == "7771"));
    assert!(!r.rate.iter().any(|r| r.codice_tributo == "7711"));
    assert_eq!(r.rate[0].year, 2026);
    verified(&t).await;
}

async fn split_retry_with_same_key_splits_once(t: TestApp) {
    let (holder, h, credit) = holder_with(&t, "superbonus", 1_000_000, old_day()).await;
    let rata = rata_of(&credit, 2024);
    let key = t.key();
    let first = t
        .app
        .split_rata(&h, &key, Some(PIN), holder.id, rata, cents(50_000))
        .await
        .unwrap();
    let retry = t
        .app
        .split_rata(&h, &key, Some(PIN), holder.id, rata, cents(50_000))
        .await
        .unwrap();
    assert!(!first.replayed);
    assert!(retry.replayed);
    assert_eq!(retry.split_credit, first.split_credit);
    assert_eq!(retry.rate, first.rate);
    assert_eq!(t.available(&holder, rata).await, cents(150_000));
    assert_eq!(t.app.store().splits_of(rata).await.unwrap().len(), 1);
    // The same key for another amount is a different request.
    let other = t
        .app
        .split_rata(&h, &key, Some(PIN), holder.id, rata, cents(1_000))
        .await;
    assert_eq!(code(other), "idempotency_mismatch");
    // The annulment retried is annulled once.
    let akey = t.key();
    let target = SplitTarget::Credit(first.split_credit);
    let a = t
        .app
        .annul_split(&h, &akey, Some(PIN), holder.id, target)
        .await
        .unwrap();
    let b = t
        .app
        .annul_split(&h, &akey, Some(PIN), holder.id, target)
        .await
        .unwrap();
    assert!(b.replayed);
    assert_eq!(a.operation_id, b.operation_id);
    assert_eq!(t.available(&holder, rata).await, cents(200_000));
    verified(&t).await;
}
