//! Idempotency keys: a retry gets the first receipt and applies nothing; a key reused for
//! another request is refused; keys are scoped to the user.

#![expect(clippy::unwrap_used, reason = "tests")]

#[macro_use]
mod support;

use cessio_app::{CessionLine, IncomingFilter};
use support::*;

backends!(
    idempotency_cession_retry_replays_the_receipt,
    idempotency_retry_of_a_whole_tracciabile_rata_replays,
    idempotency_retry_of_a_prefilled_amount_replays,
    idempotency_retry_after_the_clock_moved_replays,
    idempotency_answer_retry_replays_the_receipt,
    idempotency_communication_retry_returns_the_same_credit,
    idempotency_same_key_other_cession_is_mismatch,
    idempotency_same_key_accept_then_refuse_is_mismatch,
    idempotency_key_of_a_cession_reused_for_an_answer_is_mismatch,
    idempotency_two_users_same_key_do_not_collide,
    idempotency_key_must_be_1_to_100_printable_characters,
);

async fn cede_key(
    t: &TestApp,
    x: &Actors,
    key: &str,
    lines: &[CessionLine],
) -> Result<cessio_app::CessionReceipt, cessio_app::AppError> {
    t.app
        .cede(&x.h, key, Some(PIN), x.holder.id, lines, true)
        .await
}

async fn idempotency_cession_retry_replays_the_receipt(t: TestApp) {
    let (x, rate) = t
        .holder_and_cessionario("titolare", "ecobonus", 10_000, old_day())
        .await;
    let lines = [line(rate[0], &x.c, Some(300))];
    let first = cede_key(&t, &x, "cessione-1", &lines).await.unwrap();
    let again = cede_key(&t, &x, "cessione-1", &lines).await.unwrap();
    assert!(!first.replayed && again.replayed);
    assert_eq!(
        (again.operation_id, &again.transfers, again.amount, again.at),
        (first.operation_id, &first.transfers, first.amount, first.at)
    );
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[0]).await, cents(700));
    assert_eq!(t.incoming(&x.cu, &x.c).await[0].operations, 1);
}

async fn idempotency_retry_of_a_whole_tracciabile_rata_replays(t: TestApp) {
    let (x, rate) = t
        .holder_and_cessionario("titolare", "superbonus", 100_000, tracciabile_day())
        .await;
    let lines = [line(rate[0], &x.c, None)];
    let first = cede_key(&t, &x, "intera", &lines).await.unwrap();
    // The rata is no longer cedible, yet the retry gets the first receipt.
    let again = cede_key(&t, &x, "intera", &lines).await.unwrap();
    assert_eq!(
        (again.operation_id, again.replayed),
        (first.operation_id, true)
    );
    assert_eq!(again.amount, cents(25_000));
}

async fn idempotency_retry_of_a_prefilled_amount_replays(t: TestApp) {
    let (x, rate) = t
        .holder_and_cessionario("titolare", "ecobonus", 10_000, old_day())
        .await;
    let lines = [line(rate[0], &x.c, None)];
    let first = cede_key(&t, &x, "prefilled", &lines).await.unwrap();
    let again = cede_key(&t, &x, "prefilled", &lines).await.unwrap();
    assert_eq!(
        (again.operation_id, again.replayed),
        (first.operation_id, true)
    );
    assert_eq!(t.incoming(&x.cu, &x.c).await[0].amount, cents(1_000));
}

async fn idempotency_retry_after_the_clock_moved_replays(t: TestApp) {
    let (x, rate) = t
        .holder_and_cessionario("titolare", "ecobonus", 10_000, old_day())
        .await;
    let lines = [line(rate[0], &x.c, Some(100))];
    let first = cede_key(&t, &x, "lento", &lines).await.unwrap();
    t.advance_days(3);
    let again = cede_key(&t, &x, "lento", &lines).await.unwrap();
    assert_eq!(
        (again.operation_id, again.at),
        (first.operation_id, first.at)
    );
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[0]).await, cents(900));
}

async fn idempotency_answer_retry_replays_the_receipt(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    t.communicate(&ben, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    let y2023 = by_year(2023);
    let answer = || {
        t.app
            .answer(&h, "risposta", Some(PIN), holder.id, &y2023, true)
    };
    let first = answer().await.unwrap();
    let again = answer().await.unwrap();
    assert!(!first.replayed && again.replayed);
    assert_eq!(
        (
            again.operation_id,
            again.accepted,
            again.operations,
            again.amount
        ),
        (first.operation_id, true, 1, cents(25_000))
    );
    assert_eq!(t.incoming(&h, &holder).await.len(), 3);
}

async fn idempotency_communication_retry_returns_the_same_credit(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let input = t.option(&ben, &holder, "superbonus", 100_000, tracciabile_day());
    let first = t
        .app
        .communicate_option(&t.op, "comunicazione", None, &input)
        .await
        .unwrap();
    let again = t
        .app
        .communicate_option(&t.op, "comunicazione", None, &input)
        .await
        .unwrap();
    assert_eq!(again, first);
    let h = t.user_for(&holder, "fornitore").await;
    assert!(
        t.incoming(&h, &holder)
            .await
            .iter()
            .all(|g| g.operations == 1)
    );
}

async fn idempotency_same_key_other_cession_is_mismatch(t: TestApp) {
    let (x, rate) = t
        .holder_and_cessionario("titolare", "ecobonus", 10_000, old_day())
        .await;
    cede_key(&t, &x, "k", &[line(rate[0], &x.c, Some(100))])
        .await
        .unwrap();
    let e = cede_key(&t, &x, "k", &[line(rate[0], &x.c, Some(200))]).await;
    assert_eq!(code(e), "idempotency_mismatch");
    let e = cede_key(&t, &x, "k", &[line(rate[1], &x.c, Some(100))]).await;
    assert_eq!(code(e), "idempotency_mismatch");
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[0]).await, cents(900));
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[1]).await, cents(1_000));
}

async fn idempotency_same_key_accept_then_refuse_is_mismatch(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    t.communicate(&ben, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    let y2023 = by_year(2023);
    let answer = |accept| t.app.answer(&h, "k", Some(PIN), holder.id, &y2023, accept);
    answer(true).await.unwrap();
    // Nothing is left to answer in 2023: the refusal must not pass for a replay.
    assert_eq!(code(answer(false).await), "idempotency_mismatch");
    // Another group under the same key is no replay either.
    let e = t
        .app
        .answer(&h, "k", Some(PIN), holder.id, &by_year(2024), true)
        .await;
    assert_eq!(code(e), "idempotency_mismatch");
    assert_eq!(t.incoming(&h, &holder).await.len(), 3);
}

async fn idempotency_key_of_a_cession_reused_for_an_answer_is_mismatch(t: TestApp) {
    let (x, rate) = t
        .holder_and_cessionario("titolare", "ecobonus", 10_000, old_day())
        .await;
    cede_key(&t, &x, "k", &[line(rate[0], &x.c, None)])
        .await
        .unwrap();
    let e = t
        .app
        .answer(
            &x.h,
            "k",
            Some(PIN),
            x.holder.id,
            &IncomingFilter::default(),
            true,
        )
        .await;
    assert_eq!(code(e), "idempotency_mismatch");
}

async fn idempotency_two_users_same_key_do_not_collide(t: TestApp) {
    let (x, rate) = t
        .holder_and_cessionario("titolare", "ecobonus", 10_000, old_day())
        .await;
    let other = t.company(3).await;
    let o = t.user_for(&other, "altro").await;
    let other_credit = t.holding(&other, &o, "ecobonus", 10_000, old_day()).await;
    let mine = cede_key(&t, &x, "stessa", &[line(rate[0], &x.c, None)])
        .await
        .unwrap();
    let theirs = t
        .app
        .cede(
            &o,
            "stessa",
            Some(PIN),
            other.id,
            &[line(other_credit.rate[0].id, &x.c, None)],
            true,
        )
        .await
        .unwrap();
    assert!(!theirs.replayed);
    assert_ne!(mine.operation_id, theirs.operation_id);
    let groups = t.incoming(&x.cu, &x.c).await;
    assert_eq!(groups.len(), 2, "{groups:?}");
}

async fn idempotency_key_must_be_1_to_100_printable_characters(t: TestApp) {
    let (x, rate) = t
        .holder_and_cessionario("titolare", "ecobonus", 10_000, old_day())
        .await;
    let lines = [line(rate[0], &x.c, None)];
    for key in [
        String::new(),
        "x".repeat(101),
        "con spazio".into(),
        "è".into(),
    ] {
        let e = cede_key(&t, &x, &key, &lines).await.unwrap_err();
        assert_eq!(e.code(), "invalid", "{key:?}: {e}");
    }
    cede_key(&t, &x, &"x".repeat(100), &lines).await.unwrap();
}
