//! F1 Monitoraggio and F4 Lista movimenti: figures, as-of dates, filters, R-300, R-50000;
//! every list of the API a page at a time (F1, F2, F3, F5, delegations, F9's lists).

#![expect(clippy::unwrap_used, reason = "tests")]

#[macro_use]
mod support;

use std::future::Future;

use cessio_app::{
    AppError, IncomingFilter, MovementFilter, MovementState, Page, PageRequest, RiskHitFilter,
};
use cessio_core::chain::BankClient;
use cessio_core::money::Cents;
use cessio_core::risk::RiskConfig;
use cessio_store::PartyKind;
use support::*;

backends!(
    f1_monitoring_figures_per_type_and_year,
    f1_monitoring_of_the_beneficiary_shows_the_communication_as_ceded,
    f1_monitoring_as_of_a_past_date_shows_the_earlier_state,
    f4_movements_need_a_filter_besides_tracciabile,
    f4_movements_filters_select_rows,
    f4_list_and_csv_name_credit_types_in_italian,
    f4_cedibilita_and_data_cessione_as_f1_sees_them,
    r_300_exactly_300_rows_are_shown,
    r_300_more_rows_are_refused_but_exported,
    f4_pages_reach_every_row_past_r_300_in_registration_order,
    f4_a_page_reads_on_past_the_rows_the_filters_kept_in_memory_drop,
    f4_a_cursor_is_refused_with_other_filters_or_damaged,
    list_pages_of_f1_f2_f3_f5_are_the_whole_lists_in_key_order,
    list_pages_of_delegations_and_f9_are_the_whole_lists_in_key_order,
    r_50000_export_above_the_limit_is_refused_never_truncated,
    f1_kept_cedibilita_equals_a_fresh_replay_after_every_kind_of_change,
    f1_prepared_at_start_for_the_parties_with_most_holdings,
);

async fn f1_monitoring_figures_per_type_and_year(t: TestApp) {
    let (holder, c) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "titolare").await;
    let cu = t.user_for(&c, "cessionario").await;
    let ben = t.company(3).await;
    // Superbonus 4 × 250,00 €: only 2024 accepted (2023 has expired on 1 March 2024); Ecobonus (not tracciabile) 10 × 10,00 €.
    let sb = t
        .communicate(&ben, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    t.answer(&h, &holder, by_year(2024), true).await.unwrap();
    let eco = t.holding(&holder, &h, "ecobonus", 10_000, old_day()).await;
    // Cede Superbonus 2024 whole (pending), Ecobonus 2024 in part (refused) and 2025 (accepted).
    t.cede(&h, &holder, &[line(sb.rate[0].id, &c, None)])
        .await
        .unwrap();
    let eco_lines = [
        line(eco.rate[0].id, &c, Some(300)),
        line(eco.rate[1].id, &c, Some(200)),
    ];
    t.cede(&h, &holder, &eco_lines).await.unwrap();
    let eco_2024 = cessio_app::IncomingFilter {
        type_key: Some("ecobonus".into()),
        year: Some(2024),
        cedente_cf: None,
    };
    t.answer(&cu, &c, eco_2024, false).await.unwrap();
    let eco_2025 = cessio_app::IncomingFilter {
        type_key: Some("ecobonus".into()),
        year: Some(2025),
        cedente_cf: None,
    };
    t.answer(&cu, &c, eco_2025, true).await.unwrap();

    let rows = t.app.monitoring(&h, holder.id, None).await.unwrap();
    assert_eq!(rows.len(), 4 + 10);
    let m = t.monitor(&holder, "superbonus", 2024).await;
    assert_eq!(
        (m.received_accepted, m.ceded_pending, m.residual_cedible),
        (cents(25_000), cents(25_000), Cents::ZERO)
    );
    let m = t.monitor(&holder, "superbonus", 2025).await;
    assert_eq!(
        (m.received_pending, m.received_accepted),
        (cents(25_000), Cents::ZERO)
    );
    let m = t.monitor(&holder, "ecobonus", 2024).await;
    assert_eq!(
        (
            m.received_accepted,
            m.ceded_pending,
            m.ceded_accepted,
            m.residual_cedible
        ),
        (cents(1_000), Cents::ZERO, Cents::ZERO, cents(1_000))
    );
    let m = t.monitor(&holder, "ecobonus", 2025).await;
    assert_eq!(
        (m.ceded_accepted, m.residual_cedible),
        (cents(200), cents(800))
    );
    assert_eq!(
        m.type_name,
        "Ecobonus (riqualificazione energetica) e fotovoltaico"
    );
    // The cessionario's side.
    let m = t.monitor(&c, "superbonus", 2024).await;
    assert_eq!(m.received_pending, cents(25_000));
    let m = t.monitor(&c, "ecobonus", 2024).await;
    assert_eq!(
        (m.received_refused, m.residual_cedible),
        (cents(300), Cents::ZERO)
    );
    let m = t.monitor(&c, "ecobonus", 2025).await;
    assert_eq!(
        (m.received_accepted, m.residual_cedible),
        (cents(200), cents(200))
    );
    // Nobody uses F24 in this release of the scenario.
    assert!(
        rows.iter()
            .all(|r| r.used_done == Cents::ZERO && r.used_reserved == Cents::ZERO)
    );
}

async fn f1_monitoring_of_the_beneficiary_shows_the_communication_as_ceded(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    t.communicate(&ben, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    t.answer(&h, &holder, by_year(2023), true).await.unwrap();
    let m = t.monitor(&ben, "superbonus", 2023).await;
    assert_eq!(
        (m.ceded_accepted, m.ceded_pending, m.residual_cedible),
        (cents(25_000), Cents::ZERO, Cents::ZERO)
    );
    let m = t.monitor(&ben, "superbonus", 2024).await;
    assert_eq!(m.ceded_pending, cents(25_000));
}

async fn f1_monitoring_as_of_a_past_date_shows_the_earlier_state(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    t.communicate(&ben, &holder, "superbonus", 100_000, tracciabile_day())
        .await; // Friday 1 March 2024
    t.set_rome(2024, 3, 4, 9, 0);
    t.accept_all(&h, &holder).await;
    let at = |d| {
        let t = &t;
        let h = &h;
        let holder = &holder;
        async move {
            t.app
                .monitoring(h, holder.id, Some(d))
                .await
                .unwrap()
                .into_iter()
                .find(|r| r.type_key == "superbonus" && r.year == 2023)
        }
    };
    assert_eq!(at(date(2024, 2, 29)).await, None);
    let friday = at(date(2024, 3, 1)).await.unwrap();
    assert_eq!(
        (
            friday.received_pending,
            friday.received_accepted,
            friday.residual_cedible
        ),
        (cents(25_000), Cents::ZERO, Cents::ZERO)
    );
    let monday = at(date(2024, 3, 4)).await.unwrap();
    assert_eq!(
        (
            monday.received_pending,
            monday.received_accepted,
            monday.residual_cedible
        ),
        (Cents::ZERO, cents(25_000), cents(25_000))
    );
    assert_eq!(
        t.app.monitoring(&h, holder.id, None).await.unwrap().len(),
        4
    );
}

async fn f4_movements_need_a_filter_besides_tracciabile(t: TestApp) {
    let holder = t.company(1).await;
    let h = t.user_for(&holder, "titolare").await;
    for filter in [
        MovementFilter::default(),
        MovementFilter {
            tracciabile: Some(true),
            ..MovementFilter::default()
        },
        MovementFilter {
            cedente_cf: Some("   ".into()),
            code: Some(String::new()),
            tracciabile: Some(false),
            ..MovementFilter::default()
        },
    ] {
        let e = t.app.movements(&h, holder.id, &filter).await.unwrap_err();
        // Its own code, not the one for malformed input.
        assert_eq!(
            (e.code(), e.rule()),
            ("filter_required", Some("F4")),
            "{filter:?}"
        );
    }
}

async fn f4_list_and_csv_name_credit_types_in_italian(t: TestApp) {
    let holder = t.company(1).await;
    let h = t.user_for(&holder, "titolare").await;
    t.holding(&holder, &h, "bonus_facciate", 10_000, old_day())
        .await;
    let name = t.app.catalogue.get("bonus_facciate").unwrap().name.clone();
    let rows = t.movements(&h, &holder).await;
    assert!(rows.iter().all(|r| r.type_name == name), "{rows:?}");
    let filter = MovementFilter {
        registered_from: Some(date(2000, 1, 1)),
        ..MovementFilter::default()
    };
    let mut export = t
        .app
        .movements_export(&h, holder.id, &filter)
        .await
        .unwrap();
    let mut csv = Vec::new();
    while let Some(piece) = export.next_csv().await {
        csv.extend(piece.unwrap());
    }
    let csv = String::from_utf8_lossy(&csv);
    assert!(csv.contains(&name), "{csv}");
    assert!(!csv.contains(";bonus_facciate;"), "{csv}");
}

async fn f4_cedibilita_and_data_cessione_as_f1_sees_them(t: TestApp) {
    // Ecobonus communicated on 01/03/2022, 10 rate from 2022; today is 01/03/2024.
    let (holder, c) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "titolare").await;
    let eco = t.holding(&holder, &h, "ecobonus", 10_000, old_day()).await;
    let of_year = |y: u16| eco.rate.iter().find(|r| r.year.get() == y).unwrap().id;
    t.cede(&h, &holder, &[line(of_year(2025), &c, None)])
        .await
        .unwrap();
    let rows = t.movements(&h, &holder).await;
    let row = |rata, kind| {
        rows.iter()
            .find(|r| r.rata == rata && r.kind == kind)
            .unwrap_or_else(|| panic!("no row for {rata}"))
    };
    use cessio_core::ledger::TransferKind::{Cession, Issue};
    // The communication's row is dated by the communication, the cession's by its day.
    assert_eq!(row(of_year(2024), Issue).ceded_on, old_day());
    assert_eq!(row(of_year(2025), Cession).ceded_on, date(2024, 3, 1));
    // Cedibilità as F1 classifies the holding today.
    assert_eq!(row(of_year(2024), Issue).cedibilita, "cedibile a chiunque");
    assert_eq!(
        row(of_year(2025), Issue).cedibilita,
        "nessun residuo disponibile"
    );
    assert_eq!(row(of_year(2025), Issue).cedibilita_class, None);
    // The two filters of the guide.
    let only = |f: MovementFilter| {
        let (t, h, party) = (&t, &h, holder.id);
        async move { t.app.movements(h, party, &f).await.unwrap() }
    };
    let ceded = only(MovementFilter {
        ceded_from: Some(date(2024, 1, 1)),
        ..MovementFilter::default()
    })
    .await;
    assert_eq!(
        ceded.iter().map(|r| r.kind).collect::<Vec<_>>(),
        vec![Cession]
    );
    let anyone = only(MovementFilter {
        cedibilita: Some(cessio_app::CedibilitaClass::Anyone),
        ..MovementFilter::default()
    })
    .await;
    assert_eq!(anyone.len(), 7, "2024 and 2026–2031");
    assert!(anyone.iter().all(|r| r.year != 2025));
    let none = only(MovementFilter {
        cedibilita: Some(cessio_app::CedibilitaClass::NotCedible),
        ..MovementFilter::default()
    })
    .await;
    // The rate of 2022 and 2023 expired with their years (R-F24-WINDOW-121).
    let mut years: Vec<u16> = none.iter().map(|r| r.year).collect();
    years.sort_unstable();
    assert_eq!(years, vec![2022, 2023], "{none:?}");
    // The CSV has the column.
    let mut export = t
        .app
        .movements_export(
            &h,
            holder.id,
            &MovementFilter {
                ceded_from: Some(date(2024, 1, 1)),
                ..MovementFilter::default()
            },
        )
        .await
        .unwrap();
    let mut csv = Vec::new();
    while let Some(piece) = export.next_csv().await {
        csv.extend(piece.unwrap());
    }
    let csv = String::from_utf8_lossy(&csv);
    assert!(
        csv.contains("Data cessione") && csv.contains("01/03/2024"),
        "{csv}"
    );
}

async fn f4_movements_filters_select_rows(t: TestApp) {
    let (holder, c) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "titolare").await;
    let cu = t.user_for(&c, "cessionario").await;
    let sb = t
        .holding(&holder, &h, "superbonus", 100_000, tracciabile_day())
        .await;
    let eco = t.holding(&holder, &h, "ecobonus", 10_000, old_day()).await;
    t.set_rome(2024, 3, 5, 9, 0);
    t.cede(&h, &holder, &[line(sb.rate[0].id, &c, None)])
        .await
        .unwrap();
    t.cede(&h, &holder, &[line(eco.rate[0].id, &c, None)])
        .await
        .unwrap();
    let eco_2024 = cessio_app::IncomingFilter {
        type_key: Some("ecobonus".into()),
        year: Some(2024),
        cedente_cf: None,
    };
    t.answer(&cu, &c, eco_2024, true).await.unwrap();
    let rows = |f: MovementFilter| {
        let (t, h, holder) = (&t, &h, &holder);
        async move { t.app.movements(h, holder.id, &f).await.unwrap() }
    };
    let all = rows(MovementFilter {
        registered_from: Some(date(2024, 1, 1)),
        ..MovementFilter::default()
    })
    .await;
    assert_eq!(
        all.len(),
        4 + 10 + 2,
        "two communications received, two cessions"
    );
    let ceded = rows(MovementFilter {
        registered_from: Some(date(2024, 3, 5)),
        ..MovementFilter::default()
    })
    .await;
    assert_eq!(ceded.len(), 2);
    assert!(ceded.iter().all(|r| r.cessionario.cf == c.cf.as_str()));
    let by_cessionario = rows(MovementFilter {
        cessionario_cf: Some(c.cf.as_str()[..7].to_lowercase()),
        ..MovementFilter::default()
    })
    .await;
    assert_eq!(by_cessionario.len(), 2);
    let accepted = rows(MovementFilter {
        registered_from: Some(date(2024, 3, 5)),
        state: Some(MovementState::Accettato),
        ..MovementFilter::default()
    })
    .await;
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].type_key, "ecobonus");
    assert!(accepted[0].answered_at.is_some());
    let waiting = rows(MovementFilter {
        state: Some(MovementState::InAttesa),
        ..MovementFilter::default()
    })
    .await;
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].codice_univoco, sb.rate[0].codice_univoco);
    let tracc = rows(MovementFilter {
        registered_from: Some(date(2024, 1, 1)),
        tracciabile: Some(true),
        ..MovementFilter::default()
    })
    .await;
    assert_eq!(tracc.len(), 4 + 1);
    let by_code = rows(MovementFilter {
        code: Some(sb.rate[0].codice_univoco.clone()),
        ..MovementFilter::default()
    })
    .await;
    assert_eq!(by_code.len(), 2, "its issuance and its cession");
    let by_protocol = rows(MovementFilter {
        code: Some(eco.protocol.clone()),
        ..MovementFilter::default()
    })
    .await;
    assert_eq!(by_protocol.len(), 10 + 1);
    let by_tributo = rows(MovementFilter {
        codice_tributo: Some("7708".into()),
        year: Some(2024),
        ..MovementFilter::default()
    })
    .await;
    assert_eq!(by_tributo.len(), 2);
    let answered = rows(MovementFilter {
        answered_from: Some(date(2024, 3, 5)),
        answered_to: Some(date(2024, 3, 5)),
        ..MovementFilter::default()
    })
    .await;
    assert_eq!(answered.len(), 1);
}

/// `n` Ecobonus communications (10 rate each) received by a fresh holder.
async fn received_rows(
    t: &TestApp,
    communications: usize,
) -> (cessio_store::Party, cessio_app::Principal) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "titolare").await;
    for _ in 0..communications {
        t.communicate(&ben, &holder, "ecobonus", 1_000, old_day())
            .await;
    }
    (holder, h)
}

fn ecobonus() -> MovementFilter {
    MovementFilter {
        type_key: Some("ecobonus".into()),
        ..MovementFilter::default()
    }
}

async fn r_300_exactly_300_rows_are_shown(t: TestApp) {
    let (holder, h) = received_rows(&t, 30).await;
    let shown = t.app.movements(&h, holder.id, &ecobonus()).await.unwrap();
    assert_eq!(shown.len(), 300);
}

async fn r_300_more_rows_are_refused_but_exported(t: TestApp) {
    let (holder, h) = received_rows(&t, 31).await;
    let e = t
        .app
        .movements(&h, holder.id, &ecobonus())
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.rule()), ("too_many_rows", Some("R-300")));
    assert!(e.to_string().contains("300"), "{e}");
    let rows = exported(&t.app, &h, &holder, &ecobonus()).await.unwrap();
    assert_eq!(rows.len(), 310);
}

/// Every page of `filter`, `limit` rows at a time, following the cursors to the end.
async fn all_pages(
    t: &TestApp,
    h: &cessio_app::Principal,
    holder: &cessio_store::Party,
    filter: &MovementFilter,
    limit: usize,
) -> Vec<Vec<cessio_app::MovementRow>> {
    let mut pages = Vec::new();
    let mut page = PageRequest {
        limit: Some(limit),
        cursor: None,
    };
    loop {
        let got = t
            .app
            .movements_page(h, holder.id, filter, &page)
            .await
            .unwrap();
        pages.push(got.rows);
        match got.next {
            Some(next) => page.cursor = Some(next),
            None => return pages,
        }
    }
}

async fn f4_pages_reach_every_row_past_r_300_in_registration_order(t: TestApp) {
    let (holder, h) = received_rows(&t, 31).await;
    let pages = all_pages(&t, &h, &holder, &ecobonus(), 100).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [100, 100, 100, 10]);
    let paged: Vec<i64> = pages.iter().flatten().map(|r| r.id).collect();
    let exported: Vec<i64> = exported(&t.app, &h, &holder, &ecobonus())
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(paged, exported, "the pages are the export, in its order");
    // A selection that fills its last page exactly ends there, with no empty page after.
    let sizes: Vec<usize> = all_pages(&t, &h, &holder, &ecobonus(), 155)
        .await
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(sizes, [155, 155]);
}

async fn f4_a_page_reads_on_past_the_rows_the_filters_kept_in_memory_drop(t: TestApp) {
    let (holder, h) = received_rows(&t, 31).await;
    // A communication's protocol is matched in memory: ten rows of the 310 the store reads.
    let rows = exported(&t.app, &h, &holder, &ecobonus()).await.unwrap();
    let one = MovementFilter {
        code: Some(rows[150].protocol.clone()),
        ..ecobonus()
    };
    let pages = all_pages(&t, &h, &holder, &one, 3).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 3, 1]);
    assert!(
        pages
            .iter()
            .flatten()
            .all(|r| r.protocol == rows[150].protocol)
    );
}

async fn f4_a_cursor_is_refused_with_other_filters_or_damaged(t: TestApp) {
    let (holder, h) = received_rows(&t, 2).await;
    let first = t
        .app
        .movements_page(
            &h,
            holder.id,
            &ecobonus(),
            &PageRequest {
                limit: Some(5),
                cursor: None,
            },
        )
        .await
        .unwrap();
    let next = first.next.expect("20 rows in pages of 5");
    let other = MovementFilter {
        year: Some(2022),
        ..ecobonus()
    };
    for (filter, cursor, code) in [
        (&other, next.clone(), "cursor_filters_changed"),
        (
            &ecobonus(),
            next[..next.len() / 2].to_string(),
            "cursor_invalid",
        ),
        (&ecobonus(), "not-a-cursor".to_string(), "cursor_invalid"),
    ] {
        let page = PageRequest {
            limit: Some(5),
            cursor: Some(cursor),
        };
        let e = t
            .app
            .movements_page(&h, holder.id, filter, &page)
            .await
            .unwrap_err();
        assert_eq!(e.code(), code);
    }
}

/// Cessions of one cent written through the store in operations of up to 10,000
/// movements (the store's bound), so that the test stays quick.
async fn cede_cents(
    t: &TestApp,
    rata: i64,
    from: &cessio_store::Party,
    to: &cessio_store::Party,
    count: usize,
    tag: &str,
) {
    use cessio_core::ledger::TransferKind;
    use cessio_store::{AccountRef, Command, IdempotencyKey, Operation, TransferRequest};
    let mut left = count;
    let mut batch = 0;
    while left > 0 {
        let n = left.min(10_000);
        left -= n;
        batch += 1;
        let moves = (0..n)
            .map(|_| TransferRequest::Move {
                rata,
                from: AccountRef::Holder(from.id),
                to: AccountRef::Holder(to.id),
                amount: Cents::new(1),
                kind: TransferKind::Cession,
                pending: true,
                disclose: false,
                path: None,
            })
            .collect();
        t.app
            .store()
            .submit(Operation {
                idempotency_key: IdempotencyKey::parse(&format!("{tag}-{batch}")).unwrap(),
                acting_user: "test".into(),
                on_behalf_of: Some(from.id),
                at: t.app.now(),
                command: Command::Transfer(moves),
                request_hash: None,
                delegate: None,
                checks: Vec::new(),
            })
            .await
            .unwrap();
    }
}

async fn r_50000_export_above_the_limit_is_refused_never_truncated(t: TestApp) {
    let (holder, other) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "titolare").await;
    let eco = t
        .holding(&holder, &h, "ecobonus", 10_000_000, old_day())
        .await;
    let bonus = t
        .holding(&holder, &h, "bonus_facciate", 10_000_000, old_day())
        .await;
    let to_other = MovementFilter {
        cessionario_cf: Some(other.cf.as_str().into()),
        ..MovementFilter::default()
    };
    // The codice tributo is a filter the store does not apply: with the one movement of
    // another code below, the store selects one row more than the export keeps.
    let eco_to_other = MovementFilter {
        codice_tributo: Some(eco.rate[0].codice_tributo.clone()),
        ..to_other.clone()
    };
    // Exactly 50,000 rows: exported whole, in registration order.
    cede_cents(&t, eco.rate[0].id, &holder, &other, 50_000, "bulk").await;
    let rows = exported(&t.app, &h, &holder, &to_other).await.unwrap();
    assert_eq!(rows.len(), 50_000);
    assert!(rows.windows(2).all(|w| w[0].id < w[1].id));
    // 50,001 selected by the store, 50,000 kept by the filters: exported whole.
    cede_cents(&t, bonus.rate[0].id, &holder, &other, 1, "other-code").await;
    let rows = exported(&t.app, &h, &holder, &eco_to_other).await.unwrap();
    assert_eq!(rows.len(), 50_000);
    // Refused with the rule, never cut to 50,000: by the store's count, and by the
    // count through the filters once an ecobonus cession more is kept.
    for filter in [&to_other, &eco_to_other] {
        if filter == &eco_to_other {
            cede_cents(&t, eco.rate[0].id, &holder, &other, 1, "one-more").await;
        }
        let e = t
            .app
            .movements_export(&h, holder.id, filter)
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.rule()), ("too_many_rows", Some("R-50000")));
        assert!(e.to_string().contains("50000"), "{e}");
        // Over the API the first page is refused as the export is, not served in part.
        let e = t
            .app
            .movements_page(&h, holder.id, filter, &PageRequest::default())
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.rule()), ("too_many_rows", Some("R-50000")));
    }
}

/// F1 today keeps each party's cedibilità between requests and recomputes only the holdings
/// that moved; after every kind of change it must say what an app keeping nothing says.
/// `cessio serve` prepares F1 of the parties with the most holdings at start, as many as
/// the kept views' bound holds.
async fn f1_prepared_at_start_for_the_parties_with_most_holdings(t: TestApp) {
    let (a, b) = (t.company(1).await, t.company(2).await);
    let (au, bu) = (t.user_for(&a, "a").await, t.user_for(&b, "b").await);
    t.holding(&a, &au, "ecobonus", 10_000, old_day()).await;
    t.holding(&b, &bu, "ecobonus", 10_000, old_day()).await;
    t.holding(&b, &bu, "superbonus", 400_000, tracciabile_day())
        .await;
    let held = |p: &cessio_store::Party| {
        let (t, id) = (&t, p.id);
        async move {
            let all = t.app.store().holdings(id).await.unwrap();
            let positive = all
                .iter()
                .filter(|h| h.balance.available().is_some_and(|v| v.is_positive()))
                .count();
            (all.len(), positive)
        }
    };
    let ((a_all, _), (b_all, b_positive)) = (held(&a).await, held(&b).await);
    assert!(b_all > a_all);
    let prepared = t.app.keep_largest_monitoring(2).await.unwrap();
    let order: Vec<_> = prepared.iter().map(|(p, _, _)| *p).collect();
    assert_eq!(order, [b.id, a.id], "most holdings first");
    assert_eq!(prepared[0].1, b_positive, "the holdings F1 keeps");
    // With room for fewer holdings than the largest has, only the largest is prepared.
    let mut small = cessio_app::App::new(
        t.app.store().clone(),
        std::sync::Arc::new(t.clock.clone()),
        t.app.catalogue.clone(),
    );
    small.settings.monitor_cache_holdings = 1;
    let prepared = small.keep_largest_monitoring(2).await.unwrap();
    assert_eq!(prepared.len(), 1);
    assert_eq!(prepared[0].0, b.id);
    small.settings.monitor_cache_holdings = 0;
    assert!(small.keep_largest_monitoring(2).await.unwrap().is_empty());
}

async fn f1_kept_cedibilita_equals_a_fresh_replay_after_every_kind_of_change(t: TestApp) {
    let mut settings = t.app.settings.clone();
    settings.monitor_cache_holdings = 0;
    let mut fresh = cessio_app::App::new(
        t.app.store().clone(),
        std::sync::Arc::new(t.clock.clone()),
        t.app.catalogue.clone(),
    );
    fresh.settings = settings;
    let (a, bank, insurer) = (
        t.company(1).await,
        t.party(2, cessio_store::PartyKind::Bank).await,
        t.party(3, cessio_store::PartyKind::Insurer).await,
    );
    let (au, bu, iu) = (
        t.user_for(&a, "a").await,
        t.user_for(&bank, "banca").await,
        t.user_for(&insurer, "assicurazione").await,
    );
    let same = |step: &'static str| {
        let (t, fresh, parties) = (&t, &fresh, [&a, &bank, &insurer]);
        async move {
            for p in parties {
                let kept = t.app.monitoring(&t.op, p.id, None).await.unwrap();
                let replayed = fresh.monitoring(&t.op, p.id, None).await.unwrap();
                assert_eq!(kept, replayed, "{step}: party {}", p.cf.as_str());
            }
        }
    };
    let sb = t
        .holding(&a, &au, "superbonus", 400_000, tracciabile_day())
        .await;
    let eco = t.holding(&a, &au, "ecobonus", 10_000, old_day()).await;
    let (rata, other) = (sb.rate[0].id, sb.rate[1].id);
    same("holdings accepted").await;
    t.cede(&au, &a, &[line(rata, &bank, None)]).await.unwrap();
    t.cede(&au, &a, &[line(eco.rate[0].id, &bank, Some(300))])
        .await
        .unwrap();
    same("cessions pending").await;
    t.advance_days(8);
    t.accept_all(&bu, &bank).await;
    same("accepted, a later day").await;
    same("nothing moved").await;
    t.cede(&bu, &bank, &[line(rata, &insurer, None)])
        .await
        .unwrap();
    same("the bank cedes").await;
    t.advance_days(8);
    same("a later day").await;
    t.answer(&iu, &insurer, by_cedente(&bank), false)
        .await
        .unwrap();
    same("the insurer refuses").await;
    t.app
        .declare_f24_choice(&bu, &t.key(), Some(PIN), bank.id, rata)
        .await
        .unwrap();
    same("F24 choice declared").await;
    assert_eq!(
        t.monitor(&bank, "superbonus", 2024)
            .await
            .residual_not_cedible,
        Cents::new(100_000),
        "a rata chosen for F24 is not cedible"
    );
    t.app
        .revoke_f24_choice(&bu, &t.key(), Some(PIN), bank.id, rata)
        .await
        .unwrap();
    same("F24 choice revoked").await;
    t.app
        .seize(&t.op, &t.key(), bank.cf.as_str(), rata, "Decreto 1/2024")
        .await
        .unwrap();
    same("seized").await;
    t.app
        .release_seizure(&t.op, &t.key(), bank.cf.as_str(), rata)
        .await
        .unwrap();
    same("released").await;
    t.cede(&au, &a, &[line(other, &bank, None)]).await.unwrap();
    t.advance_days(8);
    t.accept_all(&bu, &bank).await;
    same("a second rata").await;
    // Nothing moves, the year ends: the rate of 2024 are no longer cedible (R-F24-WINDOW-121).
    t.set_rome(2025, 1, 2, 10, 0);
    same("a new year").await;
    assert_eq!(
        t.monitor(&bank, "superbonus", 2024)
            .await
            .residual_restricted,
        Cents::ZERO,
        "expired: no longer cedible, even to some"
    );
}

/// Every page of a list, `limit` rows at a time, through its page function `page`,
/// following the cursors to the end: more than one page, full but the last.
async fn every_page<T, Fut>(limit: usize, page: impl Fn(PageRequest) -> Fut) -> Vec<T>
where
    Fut: Future<Output = Result<Page<T>, AppError>>,
{
    let mut request = PageRequest {
        limit: Some(limit),
        cursor: None,
    };
    let mut sizes = Vec::new();
    let mut rows = Vec::new();
    loop {
        let got = page(request.clone()).await.unwrap();
        sizes.push(got.rows.len());
        rows.extend(got.rows);
        match got.next {
            Some(next) => request.cursor = Some(next),
            None => break,
        }
    }
    assert!(sizes.len() > 1, "{sizes:?}");
    let (last, full) = sizes.split_last().unwrap();
    assert!(
        full.iter().all(|s| *s == limit) && (1..=limit).contains(last),
        "{sizes:?}"
    );
    rows
}

async fn list_pages_of_f1_f2_f3_f5_are_the_whole_lists_in_key_order(t: TestApp) {
    let holder = t.company(1).await;
    let h = t.user_for(&holder, "titolare").await;
    let ben = t.company(3).await;
    // Superbonus awaiting the answer (F3: a group a year), Ecobonus accepted (ten rate).
    t.communicate(&ben, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    t.holding(&holder, &h, "ecobonus", 10_000, old_day()).await;
    let (app, h, id) = (&t.app, &h, holder.id);

    let whole = app.monitoring(h, id, None).await.unwrap();
    let paged = every_page(3, |page| async move {
        app.monitoring_page(h, id, None, &page).await
    })
    .await;
    assert_eq!(paged, whole);

    let all = &IncomingFilter::default();
    let whole = app.incoming(h, id, all).await.unwrap();
    let paged = every_page(1, |page| async move {
        app.incoming_page(h, id, all, &page).await
    })
    .await;
    assert_eq!(paged, whole);

    let mut whole = app.cedible(h, id).await.unwrap();
    whole.sort_by_key(|c| c.rata);
    let paged = every_page(
        4,
        |page| async move { app.cedible_page(h, id, &page).await },
    )
    .await;
    assert_eq!(paged, whole);

    let whole = app.f24_availability(h, id).await.unwrap();
    let paged = every_page(1, |page| async move {
        app.f24_availability_page(h, id, &page).await
    })
    .await;
    assert_eq!(paged, whole);

    let mut whole = app.f24_choices(h, id).await.unwrap();
    whole.sort_by_key(|c| c.rata);
    let paged = every_page(
        4,
        |page| async move { app.f24_choices_page(h, id, &page).await },
    )
    .await;
    assert_eq!(paged, whole);

    // F3's cursor with another year: refused, naming F3.
    let first = app
        .incoming_page(
            h,
            id,
            all,
            &PageRequest {
                limit: Some(1),
                cursor: None,
            },
        )
        .await
        .unwrap();
    let page = PageRequest {
        limit: Some(1),
        cursor: first.next,
    };
    let e = app
        .incoming_page(h, id, &by_year(2025), &page)
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.rule()), ("cursor_filters_changed", None));
}

async fn list_pages_of_delegations_and_f9_are_the_whole_lists_in_key_order(mut t: TestApp) {
    t.app.settings.risk_auto_suspend_days = Some(30);
    t.app.settings.risk = RiskConfig::default();
    // Delegations: three intermediaries of one client, one intermediary of three clients.
    let clients = [t.company(1).await, t.company(2).await, t.company(3).await];
    for i in 0..3 {
        t.intermediary(10 + i, &format!("intermediario{i}"), &clients[0])
            .await;
    }
    let studio = t.intermediary(20, "studio", &clients[0]).await;
    for c in &clients[1..] {
        t.app
            .delegate(&t.op, "studio", c.cf.as_str())
            .await
            .unwrap();
    }
    // F9: a bank's three clients; three cessions to a party recorded as deceased, each a
    // risk hit and a suspension.
    let bank = t.party(40, PartyKind::Bank).await;
    for c in &clients {
        t.app
            .set_bank_client(&t.op, bank.cf.as_str(), c.cf.as_str(), BankClient::Consumer)
            .await
            .unwrap();
    }
    let holder = t.company(30).await;
    let h = t.user_for(&holder, "cedente").await;
    let heir = t.company(31).await;
    t.app
        .set_deceased(&t.op, heir.cf.as_str(), true)
        .await
        .unwrap();
    let credit = t
        .holding(&holder, &h, "superbonus", 400_000, tracciabile_day())
        .await;
    for rata in &credit.rate[..3] {
        t.cede(&h, &holder, &[line(rata.id, &heir, None)])
            .await
            .unwrap();
    }
    let (app, op, studio) = (&t.app, &t.op, &studio);

    let client = clients[0].id;
    let whole = app.delegations_granted(op, client).await.unwrap();
    let paged = every_page(2, |page| async move {
        app.delegations_granted_page(op, client, &page).await
    })
    .await;
    assert_eq!(paged.len(), 4);
    assert_eq!(paged, whole, "newest first, as the list");

    let whole = app.delegations_held(studio).await.unwrap();
    let paged = every_page(2, |page| async move {
        app.delegations_held_page(studio, &page).await
    })
    .await;
    assert_eq!(paged.len(), 3);
    assert_eq!(paged, whole, "by name, as the list");

    let bank_cf = bank.cf.as_str();
    let whole = app.bank_clients(op, bank_cf).await.unwrap();
    let paged = every_page(2, |page| async move {
        app.bank_clients_page(op, bank_cf, &page).await
    })
    .await;
    assert_eq!(paged.len(), 3);
    assert_eq!(paged, whole);

    let whole = app.suspensions(op, true).await.unwrap();
    let paged = every_page(2, |page| async move {
        app.suspensions_page(op, true, &page).await
    })
    .await;
    assert_eq!(paged.len(), 3);
    assert_eq!(paged, whole);

    let deceased = &RiskHitFilter {
        rule: Some("risk_party_deceased".into()),
        ..RiskHitFilter::default()
    };
    let whole = app.risk_hits(op, deceased).await.unwrap();
    let paged = every_page(2, |page| async move {
        app.risk_hits_page(op, deceased, &page).await
    })
    .await;
    assert_eq!(paged.len(), 3);
    assert_eq!(paged, whole);

    // A damaged cursor of a list that belongs to no function names no rule.
    let page = PageRequest {
        limit: Some(1),
        cursor: Some("Yz".into()),
    };
    let e = app.delegations_held_page(studio, &page).await.unwrap_err();
    assert_eq!((e.code(), e.rule()), ("cursor_invalid", None));
    t.verify_clean().await;
}
