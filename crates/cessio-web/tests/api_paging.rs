//! F4 over the API a page at a time: the whole selection past R-300's 300 rows reached by
//! following the `Link` headers, in registration order; a cursor sent with other filters,
//! a damaged one and a limit out of range refused as problems.

#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

use cessio_app::OptionInput;
use cessio_core::catalogue::Origin;
use cessio_core::money::Cents;
use support::*;

/// Superbonus communications from the family to the bank: four rate each, pending.
async fn bank_receives(s: &Server, communications: usize) {
    let op = s.app.login("operatore", PASSWORD).await.unwrap();
    for i in 0..communications {
        s.app
            .communicate_option(
                &op,
                &format!("paging-{i}"),
                None,
                &OptionInput {
                    beneficiary_cf: FAMILY.into(),
                    type_key: "superbonus".into(),
                    expense_year: 2022,
                    origin: Origin::Sconto,
                    holder_cf: BANK.into(),
                    total: Cents::new(400_000),
                    communicated_on: Some(chrono::NaiveDate::from_ymd_opt(2023, 2, 1).unwrap()),
                    exception: None,
                },
            )
            .await
            .unwrap();
    }
}

/// The target of a `Link: <…>; rel="next"` header.
fn next_link(r: &Reply) -> Option<String> {
    let link = r.header("link")?;
    assert!(link.ends_with("; rel=\"next\""), "{link}");
    Some(link[1..link.find('>').unwrap()].to_string())
}

fn assert_problem(r: &Reply, code: &str) {
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["code"], code, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f4_pages_followed_by_link_reach_the_whole_selection_in_order() {
    let s = Server::start().await;
    bank_receives(&s, 5).await;
    let b = s.login("banca").await;
    let mut next = Some(format!(
        "/api/v1/parties/{BANK}/movements?type_key=superbonus&limit=6"
    ));
    let (mut ids, mut pages) = (Vec::new(), Vec::new());
    while let Some(path) = next {
        let r = s.call("GET", &path, Some(&b), None, None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let rows = r.json();
        let rows = rows.as_array().unwrap();
        pages.push(rows.len());
        ids.extend(rows.iter().map(|row| row["id"].as_i64().unwrap()));
        next = next_link(&r);
        if let Some(n) = &next {
            assert!(
                n.contains("type_key=superbonus") && n.contains("limit=6"),
                "{n}"
            );
        }
    }
    assert_eq!(pages, [6, 6, 6, 2]);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // Without a limit, a page holds what R-300 shows: all twenty, and no next page.
    let r = s
        .call(
            "GET",
            &format!("/api/v1/parties/{BANK}/movements?type_key=superbonus"),
            Some(&b),
            None,
            None,
        )
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 20);
    assert_eq!(r.header("link"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f4_a_cursor_with_other_filters_a_damaged_one_or_a_bad_limit_is_refused() {
    let s = Server::start().await;
    bank_receives(&s, 2).await;
    let b = s.login("banca").await;
    let base = format!("/api/v1/parties/{BANK}/movements");
    let first = s
        .call(
            "GET",
            &format!("{base}?type_key=superbonus&limit=3"),
            Some(&b),
            None,
            None,
        )
        .await;
    let next = next_link(&first).unwrap();
    let cursor = next.split("cursor=").nth(1).unwrap();
    for (query, code) in [
        (
            format!("type_key=superbonus&year=2024&limit=3&cursor={cursor}"),
            "cursor_filters_changed",
        ),
        (
            format!("type_key=superbonus&limit=3&cursor={}", &cursor[..4]),
            "cursor_invalid",
        ),
        ("type_key=superbonus&limit=0".into(), "invalid"),
        ("type_key=superbonus&limit=1001".into(), "invalid"),
        ("type_key=superbonus&limit=tanti".into(), "invalid_query"),
        ("type_key=superbonus&colore=blu".into(), "invalid_query"),
    ] {
        let r = s
            .call("GET", &format!("{base}?{query}"), Some(&b), None, None)
            .await;
        assert_problem(&r, code);
    }
}
