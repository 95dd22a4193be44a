//! F3 Accettazione: groups, R-ANSWER, R-WAIT5, R-1000.

#![expect(clippy::unwrap_used, reason = "tests")]

#[macro_use]
mod support;

use cessio_app::IncomingFilter;
use cessio_core::money::Cents;
use support::*;

backends!(
    r_answer_groups_by_type_year_and_cedente,
    r_answer_accepted_group_becomes_cedible,
    r_answer_refused_option_loses_effect,
    r_answer_refused_cession_returns_to_cedente,
    r_answer_twice_is_conflict,
    r_answer_concurrent_answers_exactly_one_wins,
    r_answer_accept_all_with_empty_filter,
    r_wait5_later_cession_not_answerable_before_five_working_days,
    r_wait5_answerable_on_the_fifth_working_day,
    r_wait5_skips_national_holidays,
    r_wait5_counts_from_the_rome_date,
    r_wait5_option_communication_answerable_at_once,
    r_wait5_non_tracciabile_cession_answerable_at_once,
    r_1000_more_than_a_thousand_pending_needs_filters,
    f3_bulk_answer_by_protocol_and_codice_univoco_row_by_row,
    f3_bulk_answer_retried_with_its_key_applies_nothing_twice,
);

async fn r_answer_groups_by_type_year_and_cedente(t: TestApp) {
    let (a, b, holder) = (t.company(1).await, t.company(2).await, t.company(3).await);
    let h = t.user_for(&holder, "fornitore").await;
    // A: two Superbonus (4 rate each) and one Ecobonus (10 rate); B: one Superbonus.
    t.communicate(&a, &holder, "superbonus", 100_003, tracciabile_day())
        .await;
    t.communicate(&a, &holder, "superbonus", 40_000, tracciabile_day())
        .await;
    t.communicate(&a, &holder, "ecobonus", 10_000, tracciabile_day())
        .await;
    t.communicate(&b, &holder, "superbonus", 4_000, tracciabile_day())
        .await;
    let groups = t.incoming(&h, &holder).await;
    assert_eq!(groups.len(), 4 + 10 + 4);
    let g = groups
        .iter()
        .find(|g| g.type_key == "superbonus" && g.year == 2023 && g.cedente.cf == a.cf.as_str())
        .unwrap();
    assert_eq!(g.operations, 2);
    assert_eq!(g.amount, cents(25_003 + 10_000));
    assert_eq!(g.answerable_from, None);
    let g = groups
        .iter()
        .find(|g| g.type_key == "superbonus" && g.year == 2023 && g.cedente.cf == b.cf.as_str())
        .unwrap();
    assert_eq!((g.operations, g.amount), (1, cents(1_000)));
    let eco: Vec<_> = groups.iter().filter(|g| g.type_key == "ecobonus").collect();
    assert_eq!(eco.len(), 10);
    assert!(
        eco.iter()
            .all(|g| g.operations == 1 && g.amount == cents(1_000))
    );
}

async fn r_answer_accepted_group_becomes_cedible(t: TestApp) {
    let (a, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    let credit = t
        .communicate(&a, &holder, "superbonus", 100_003, tracciabile_day())
        .await;
    let selection = IncomingFilter {
        type_key: Some("superbonus".into()),
        year: Some(2024),
        cedente_cf: Some(a.cf.as_str().into()),
    };
    let r = t.answer(&h, &holder, selection, true).await.unwrap();
    assert!(r.accepted && !r.replayed);
    assert_eq!((r.operations, r.amount), (1, cents(25_000)));
    let cedible = t.cedible(&h, &holder).await;
    assert_eq!(cedible.len(), 1);
    let row = &cedible[0];
    assert_eq!(row.rata, credit.rate[0].id);
    assert_eq!(row.max_cedibile, cents(25_000));
    assert!(row.tracciabile && !row.partial_allowed);
    assert_eq!(row.codice_univoco, credit.rate[0].codice_univoco);
    assert_eq!(row.protocol, credit.protocol);
    // The other years still wait for an answer.
    assert_eq!(t.incoming(&h, &holder).await.len(), 3);
}

async fn r_answer_refused_option_loses_effect(t: TestApp) {
    let (a, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    t.communicate(&a, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    let r = t.answer(&h, &holder, by_cedente(&a), false).await.unwrap();
    assert!(!r.accepted);
    assert_eq!((r.operations, r.amount), (4, cents(100_000)));
    assert!(t.incoming(&h, &holder).await.is_empty());
    assert!(t.cedible(&h, &holder).await.is_empty());
    let row = t.monitor(&holder, "superbonus", 2023).await;
    assert_eq!(row.received_refused, cents(25_000));
    assert_eq!(row.residual_cedible, Cents::ZERO);
    let ben = t.monitor(&a, "superbonus", 2023).await;
    assert_eq!(
        (ben.ceded_pending, ben.ceded_accepted),
        (Cents::ZERO, Cents::ZERO)
    );
}

async fn r_answer_refused_cession_returns_to_cedente(t: TestApp) {
    let (holder, c) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "cedente").await;
    let cu = t.user_for(&c, "cessionario").await;
    let credit = t
        .holding(&holder, &h, "superbonus", 100_000, tracciabile_day())
        .await;
    let rata = credit.rate[0].id;
    t.cede(&h, &holder, &[line(rata, &c, None)]).await.unwrap();
    assert_eq!(t.max_cedibile(&h, &holder, rata).await, Cents::ZERO);
    t.advance_days(10);
    t.answer(&cu, &c, by_cedente(&holder), false).await.unwrap();
    assert_eq!(t.max_cedibile(&h, &holder, rata).await, cents(25_000));
    assert!(t.cedible(&cu, &c).await.is_empty());
    let row = t.monitor(&c, "superbonus", 2024).await;
    assert_eq!(row.received_refused, cents(25_000));
}

async fn r_answer_twice_is_conflict(t: TestApp) {
    let (a, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    t.communicate(&a, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    t.answer(&h, &holder, by_year(2023), true).await.unwrap();
    for accept in [true, false] {
        let e = t.answer(&h, &holder, by_year(2023), accept).await;
        assert_eq!(code(e), "conflict");
    }
    assert_eq!(
        t.monitor(&holder, "superbonus", 2023)
            .await
            .received_accepted,
        cents(25_000)
    );
}

async fn r_answer_concurrent_answers_exactly_one_wins(t: TestApp) {
    let (a, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    t.communicate(&a, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    let (k1, k2, y) = (t.key(), t.key(), by_year(2023));
    let (yes, no) = tokio::join!(
        t.app.answer(&h, &k1, Some(PIN), holder.id, &y, true),
        t.app.answer(&h, &k2, Some(PIN), holder.id, &y, false),
    );
    let codes = [
        yes.as_ref().map_or_else(|e| e.code(), |_| "ok"),
        no.as_ref().map_or_else(|e| e.code(), |_| "ok"),
    ];
    assert!(
        codes == ["ok", "conflict"] || codes == ["conflict", "ok"],
        "{codes:?}"
    );
    let row = t.monitor(&holder, "superbonus", 2023).await;
    let answered = row.received_accepted.get() + row.received_refused.get();
    assert_eq!(answered, 25_000, "{row:?}");
}

async fn r_answer_accept_all_with_empty_filter(t: TestApp) {
    let (a, b, holder) = (t.company(1).await, t.company(2).await, t.company(3).await);
    let h = t.user_for(&holder, "fornitore").await;
    t.communicate(&a, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    t.communicate(&b, &holder, "ecobonus", 10_000, old_day())
        .await;
    let r = t
        .answer(&h, &holder, IncomingFilter::default(), true)
        .await
        .unwrap();
    assert_eq!((r.operations, r.amount), (14, cents(110_000)));
    assert!(t.incoming(&h, &holder).await.is_empty());
    // On 1 March 2024 the rate of 2022 and 2023 have expired (R-F24-WINDOW-121): 3
    // Superbonus and 8 Ecobonus rate are cedible.
    assert_eq!(t.cedible(&h, &holder).await.len(), 11);
}

/// A tracciabile Superbonus held by `holder` and ceded whole (rata 2024) to `c` now.
async fn later_cession(t: &TestApp) -> (support::Actors, i64) {
    let (holder, c) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "cedente").await;
    let cu = t.user_for(&c, "cessionario").await;
    let credit = t
        .holding(&holder, &h, "superbonus", 100_000, tracciabile_day())
        .await;
    let rata = credit.rate[0].id;
    let actors = support::Actors { holder, h, c, cu };
    (actors, rata)
}

async fn r_wait5_later_cession_not_answerable_before_five_working_days(t: TestApp) {
    let (x, rata) = later_cession(&t).await;
    // Friday 1 March 2024 → Mon 4, Tue 5, Wed 6, Thu 7, Fri 8.
    t.cede(&x.h, &x.holder, &[line(rata, &x.c, None)])
        .await
        .unwrap();
    let groups = t.incoming(&x.cu, &x.c).await;
    assert_eq!(groups[0].answerable_from, Some(date(2024, 3, 8)));
    for day in [1, 4, 7] {
        t.set_rome(2024, 3, day, 23, 59);
        let e = t
            .answer(&x.cu, &x.c, by_year(2024), true)
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.rule()), ("answer_too_early", Some("R-WAIT5")));
        assert!(e.to_string().contains("08/03/2024"), "{e}");
    }
    assert_eq!(t.incoming(&x.cu, &x.c).await.len(), 1);
}

async fn r_wait5_answerable_on_the_fifth_working_day(t: TestApp) {
    let (x, rata) = later_cession(&t).await;
    t.cede(&x.h, &x.holder, &[line(rata, &x.c, None)])
        .await
        .unwrap();
    t.set_rome(2024, 3, 8, 0, 0);
    assert_eq!(t.incoming(&x.cu, &x.c).await[0].answerable_from, None);
    t.answer(&x.cu, &x.c, by_year(2024), true).await.unwrap();
    assert_eq!(t.max_cedibile(&x.cu, &x.c, rata).await, cents(25_000));
}

async fn r_wait5_skips_national_holidays(t: TestApp) {
    let (x, rata) = later_cession(&t).await;
    // Thursday 28 March 2024 → Fri 29, (Easter Monday 1 April) Tue 2, Wed 3, Thu 4, Fri 5.
    t.set_rome(2024, 3, 28, 12, 0);
    t.cede(&x.h, &x.holder, &[line(rata, &x.c, None)])
        .await
        .unwrap();
    t.set_rome(2024, 4, 4, 18, 0);
    let e = t
        .answer(&x.cu, &x.c, by_year(2024), true)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("05/04/2024"), "{e}");
    t.set_rome(2024, 4, 5, 9, 0);
    t.answer(&x.cu, &x.c, by_year(2024), true).await.unwrap();
}

async fn r_wait5_counts_from_the_rome_date(t: TestApp) {
    let (x, rata) = later_cession(&t).await;
    // 00:30 on Monday 4 March in Rome is still Sunday in UTC: the Rome date counts.
    t.set_rome(2024, 3, 4, 0, 30);
    t.cede(&x.h, &x.holder, &[line(rata, &x.c, None)])
        .await
        .unwrap();
    assert_eq!(
        t.incoming(&x.cu, &x.c).await[0].answerable_from,
        Some(date(2024, 3, 11))
    );
}

async fn r_wait5_option_communication_answerable_at_once(t: TestApp) {
    let (a, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    t.communicate(&a, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    assert!(
        t.incoming(&h, &holder)
            .await
            .iter()
            .all(|g| g.answerable_from.is_none())
    );
    t.accept_all(&h, &holder).await;
}

async fn r_wait5_non_tracciabile_cession_answerable_at_once(t: TestApp) {
    let (holder, c) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "cedente").await;
    let cu = t.user_for(&c, "cessionario").await;
    let credit = t.holding(&holder, &h, "ecobonus", 10_000, old_day()).await;
    t.cede(&h, &holder, &[line(credit.rate[0].id, &c, None)])
        .await
        .unwrap();
    assert_eq!(t.incoming(&cu, &c).await[0].answerable_from, None);
    t.accept_all(&cu, &c).await;
    assert_eq!(
        t.max_cedibile(&cu, &c, credit.rate[0].id).await,
        cents(1_000)
    );
}

async fn r_1000_more_than_a_thousand_pending_needs_filters(t: TestApp) {
    let (a, b, holder) = (t.company(1).await, t.company(2).await, t.company(3).await);
    let h = t.user_for(&holder, "fornitore").await;
    // 100 Ecobonus communications of 10 rate each: exactly 1,000 pending operations.
    for i in 0..100 {
        let ben = if i < 51 { &a } else { &b };
        t.communicate(ben, &holder, "ecobonus", 1_000, old_day())
            .await;
    }
    assert_eq!(t.incoming(&h, &holder).await.len(), 20);
    t.communicate(&b, &holder, "ecobonus", 1_000, old_day())
        .await;
    let e = t
        .app
        .incoming(&h, holder.id, &IncomingFilter::default())
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.rule()), ("filters_required", Some("R-1000")));
    assert!(e.to_string().contains("(1010)"), "{e}");

    let by_a = t
        .app
        .incoming(&h, holder.id, &by_cedente(&a))
        .await
        .unwrap();
    assert_eq!(by_a.len(), 10);
    assert!(
        by_a.iter()
            .all(|g| g.operations == 51 && g.amount == cents(51 * 100))
    );
    let y2023 = t.app.incoming(&h, holder.id, &by_year(2023)).await.unwrap();
    assert_eq!(y2023.len(), 2);
    assert_eq!(y2023.iter().map(|g| g.operations).sum::<usize>(), 101);
    let eco = IncomingFilter {
        type_key: Some("ecobonus".into()),
        ..IncomingFilter::default()
    };
    assert_eq!(
        code(t.app.incoming(&h, holder.id, &eco).await),
        "filters_required"
    );
}

/// A cession the cessionario may not answer yet (R-WAIT5) next to two option
/// communications it may: by protocol, by a rata's codice univoco, unknown, repeated.
async fn f3_bulk_answer_by_protocol_and_codice_univoco_row_by_row(t: TestApp) {
    let (holder, c, ben) = (t.company(1).await, t.company(2).await, t.company(3).await);
    let h = t.user_for(&holder, "cedente").await;
    let cu = t.user_for(&c, "cessionario").await;
    let ceded = t
        .holding(&holder, &h, "superbonus", 100_000, tracciabile_day())
        .await;
    let first = t
        .communicate(&ben, &c, "superbonus", 100_000, tracciabile_day())
        .await;
    let second = t
        .communicate(&ben, &c, "superbonus", 40_000, tracciabile_day())
        .await;
    t.cede(&h, &holder, &[line(ceded.rate[0].id, &c, None)])
        .await
        .unwrap();
    let codes: Vec<String> = vec![
        first.protocol.to_lowercase(),
        second.rate[1].codice_univoco.clone(),
        "NON-ESISTE".into(),
        ceded.rate[0].codice_univoco.clone(),
        second.rate[1].codice_univoco.clone(),
    ];
    let r = t
        .app
        .answer_codes(&cu, &t.key(), Some(PIN), c.id, &codes, true)
        .await
        .unwrap();
    let outcome: Vec<(usize, Option<&str>)> = r
        .rows
        .iter()
        .map(|row| (row.operations, row.error.as_ref().map(|e| e.code.as_str())))
        .collect();
    assert_eq!(
        outcome,
        [
            (4, None),
            (1, None),
            (0, Some("not_awaiting")),
            (0, Some("answer_too_early")),
            (0, None),
        ],
        "{:?}",
        r.rows
    );
    assert_eq!(
        r.rows[3].error.as_ref().unwrap().rule.as_deref(),
        Some("R-WAIT5")
    );
    assert_eq!((r.operations, r.amount), (5, cents(100_000 + 10_000)));
    assert!(r.accepted && !r.replayed && r.operation_id.is_some());
    // What was answered is the holder's now; the cession and three rate of the second
    // communication still wait.
    let left: usize = t.incoming(&cu, &c).await.iter().map(|g| g.operations).sum();
    assert_eq!(left, 1 + 3);
    t.verify_clean().await;
}

async fn f3_bulk_answer_retried_with_its_key_applies_nothing_twice(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    let credit = t
        .communicate(&ben, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    let codes = vec![credit.protocol.clone()];
    let key = t.key();
    let first = t
        .app
        .answer_codes(&h, &key, Some(PIN), holder.id, &codes, false)
        .await
        .unwrap();
    assert_eq!(first.operations, 4);
    let again = t
        .app
        .answer_codes(&h, &key, Some(PIN), holder.id, &codes, false)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.operation_id, again.operations, again.amount),
        (first.operation_id, 4, first.amount)
    );
    // The same key with another list is another request: refused, not applied.
    let e = t
        .app
        .answer_codes(&h, &key, Some(PIN), holder.id, &codes, true)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "idempotency_mismatch");
    // Nothing is left to answer: a new key finds nothing awaiting.
    let none = t
        .app
        .answer_codes(&h, &t.key(), Some(PIN), holder.id, &codes, true)
        .await
        .unwrap();
    assert_eq!((none.operation_id, none.operations), (None, 0));
    assert_eq!(none.rows[0].error.as_ref().unwrap().code, "not_awaiting");
    t.verify_clean().await;
}
