//! F7 Riduzione del credito through the app, on both backends: the 30 days from knowledge,
//! no future date, whole within the residual, and the amount gone for good.

#![expect(clippy::unwrap_used, reason = "tests")]

#[macro_use]
mod support;

use cessio_app::{AppError, Principal, ReductionReceipt};
use cessio_store::{Credit, Party};
use chrono::NaiveDate;
use support::*;

backends!(
    f7_reduction_day_30_ok,
    f7_reduction_day_31_refused,
    f7_reduction_future_refused,
    f7_reduction_above_residual_refused_with_nothing_written,
    f7_reduction_monitoring_shows_it_gone,
    f7_reduction_retry_with_same_key_reduces_once,
);

/// A holder of a Superbonus credit (five rate 2022–2026 of 2,000.00) and its 2024 rata.
async fn holding(t: &TestApp) -> (Party, Principal, Credit, i64) {
    let holder = t.company(1).await;
    let h = t.user_for(&holder, "titolare").await;
    let credit = t
        .holding(&holder, &h, "superbonus", 1_000_000, old_day())
        .await;
    let rata = rata_of(&credit, 2024);
    (holder, h, credit, rata)
}

async fn reduce(
    t: &TestApp,
    h: &Principal,
    holder: &Party,
    rata: i64,
    amount: i64,
    known_on: NaiveDate,
) -> Result<ReductionReceipt, AppError> {
    t.app
        .reduce(
            h,
            &t.key(),
            Some(PIN),
            holder.id,
            rata,
            cents(amount),
            known_on,
        )
        .await
}

fn rule_of<T: std::fmt::Debug>(r: Result<T, AppError>) -> (&'static str, &'static str) {
    match r.unwrap_err() {
        AppError::Rule { rule, code, .. } => (rule, code),
        other => panic!("not a rule refusal: {other:?}"),
    }
}

async fn f7_reduction_day_30_ok(t: TestApp) {
    let (holder, h, _, rata) = holding(&t).await;
    // Today is 1 March 2024: 31 January is 30 days ago.
    let r = reduce(&t, &h, &holder, rata, 50_000, date(2024, 1, 31))
        .await
        .unwrap();
    assert_eq!(r.amount, cents(50_000));
    assert!(!r.replayed);
    assert_eq!(t.available(&holder, rata).await, cents(150_000));
    // Knowledge today is fine too.
    reduce(&t, &h, &holder, rata, 1, date(2024, 3, 1))
        .await
        .unwrap();
    assert!(t.app.store().verify().await.unwrap().ok());
}

async fn f7_reduction_day_31_refused(t: TestApp) {
    let (holder, h, _, rata) = holding(&t).await;
    let e = reduce(&t, &h, &holder, rata, 50_000, date(2024, 1, 30)).await;
    assert_eq!(rule_of(e), ("F7", "f7_too_late"));
    assert_eq!(t.available(&holder, rata).await, cents(200_000));
}

async fn f7_reduction_future_refused(t: TestApp) {
    let (holder, h, _, rata) = holding(&t).await;
    let e = reduce(&t, &h, &holder, rata, 50_000, date(2024, 3, 2)).await;
    assert_eq!(rule_of(e), ("F7", "f7_knowledge_in_future"));
    assert_eq!(t.available(&holder, rata).await, cents(200_000));
}

async fn f7_reduction_above_residual_refused_with_nothing_written(t: TestApp) {
    let (holder, h, _, rata) = holding(&t).await;
    let before = t.app.store().counts().await.unwrap();
    let e = reduce(&t, &h, &holder, rata, 200_001, date(2024, 2, 20)).await;
    assert_eq!(rule_of(e), ("F7", "f7_over_residual"));
    assert_eq!(t.app.store().counts().await.unwrap(), before);
    assert_eq!(t.available(&holder, rata).await, cents(200_000));
    // The whole residual may go.
    reduce(&t, &h, &holder, rata, 200_000, date(2024, 2, 20))
        .await
        .unwrap();
    assert_eq!(t.available(&holder, rata).await, cents(0));
    let e = reduce(&t, &h, &holder, rata, 1, date(2024, 2, 20)).await;
    assert_eq!(rule_of(e), ("F7", "f7_over_residual"));
    assert!(t.app.store().verify().await.unwrap().ok());
}

async fn f7_reduction_monitoring_shows_it_gone(t: TestApp) {
    let (holder, h, _, rata) = holding(&t).await;
    let before = t.monitor(&holder, "superbonus", 2024).await;
    assert_eq!(before.residual_cedible, cents(200_000));
    reduce(&t, &h, &holder, rata, 50_000, date(2024, 2, 20))
        .await
        .unwrap();
    let after = t.monitor(&holder, "superbonus", 2024).await;
    assert_eq!(after.residual_cedible, cents(150_000));
    assert_eq!(after.residual_not_cedible, before.residual_not_cedible);
    assert_eq!(t.max_cedibile(&h, &holder, rata).await, cents(150_000));
    assert!(t.app.store().verify().await.unwrap().ok());
}

async fn f7_reduction_retry_with_same_key_reduces_once(t: TestApp) {
    let (holder, h, _, rata) = holding(&t).await;
    let key = t.key();
    let go = || {
        t.app.reduce(
            &h,
            &key,
            Some(PIN),
            holder.id,
            rata,
            cents(10_000),
            date(2024, 2, 20),
        )
    };
    let a = go().await.unwrap();
    let b = go().await.unwrap();
    assert!(b.replayed);
    assert_eq!(a.operation_id, b.operation_id);
    assert_eq!(t.available(&holder, rata).await, cents(190_000));
}
