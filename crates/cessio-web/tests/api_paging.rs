//! Every JSON list of the API a page at a time. F4: the whole selection past R-300's 300
//! rows reached by following the `Link` headers, in registration order; a cursor sent with
//! other filters, a damaged one and a limit out of range refused as problems. The other
//! lists: followed page by page, they are the whole list in its order, every row once; a
//! damaged cursor, and on the lists with filters a cursor sent with other filters, refused
//! naming the list's rule (or none).

#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

use cessio_app::OptionInput;
use cessio_core::catalogue::Origin;
use cessio_core::chain::BankClient;
use cessio_core::money::Cents;
use serde_json::{Value, json};
use support::*;

/// Superbonus communications from the family to the bank: four rate each, pending.
async fn bank_receives(s: &Server, communications: usize) {
    for i in 0..communications {
        superbonus_to(&s.app, &format!("paging-{i}"), BANK, 400_000).await;
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
        let r = s.get(&path, &b).await;
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
        .get(
            &format!("/api/v1/parties/{BANK}/movements?type_key=superbonus"),
            &b,
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
        .get(&format!("{base}?type_key=superbonus&limit=3"), &b)
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
        let r = s.get(&format!("{base}?{query}"), &b).await;
        assert_problem(&r, code);
    }
}

/// The rows of every page from `first`, following the `Link` headers to the end.
async fn pages(s: &Server, cookie: &str, first: &str) -> Vec<Vec<Value>> {
    let mut next = Some(first.to_string());
    let mut pages = Vec::new();
    while let Some(path) = next {
        let r = s.get(&path, cookie).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        pages.push(r.json().as_array().unwrap().clone());
        next = next_link(&r);
        assert!(pages.len() <= 100, "{path}: pages without end");
    }
    pages
}

/// `path` (with its filters, if any) read `limit` rows a page: more than one page, full
/// but the last, that together are the whole list in its order. Returns the list.
async fn assert_paged(s: &Server, cookie: &str, path: &str, limit: usize) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let whole = pages(s, cookie, &format!("{path}{sep}limit=1000")).await;
    assert_eq!(whole.len(), 1, "{path}: one page of up to 1,000 rows");
    let whole = whole.into_iter().next().unwrap();
    let paged = pages(s, cookie, &format!("{path}{sep}limit={limit}")).await;
    assert!(paged.len() > 1, "{path}: {} rows in one page", whole.len());
    let (last, full) = paged.split_last().unwrap();
    assert!(full.iter().all(|p| p.len() == limit), "{path}");
    assert!((1..=limit).contains(&last.len()), "{path}");
    assert_eq!(paged.concat(), whole, "{path}: the pages are the list");
    whole
}

/// The cursor of `path`'s first page of one row.
async fn first_cursor(s: &Server, cookie: &str, path: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    let r = s.get(&format!("{path}{sep}limit=1"), cookie).await;
    let next = next_link(&r).unwrap();
    next.split("cursor=").nth(1).unwrap().to_string()
}

/// A damaged cursor on `path` refused, naming `rule`, and (for a list with filters) the
/// cursor of `path` sent with `other` filters instead.
async fn assert_cursor_refusals(s: &Server, cookie: &str, path: &str, other: Option<&str>) {
    let cursor = first_cursor(s, cookie, path).await;
    let sep = if path.contains('?') { '&' } else { '?' };
    let damaged = format!("{path}{sep}limit=1&cursor={}", &cursor[..cursor.len() / 2]);
    let mut refused = vec![(damaged, "cursor_invalid")];
    if let Some(other) = other {
        let base = path.split('?').next().unwrap();
        refused.push((
            format!("{base}?{other}&limit=1&cursor={cursor}"),
            "cursor_filters_changed",
        ));
    }
    for (query, code) in refused {
        let r = s.get(&query, cookie).await;
        assert_problem(&r, code);
        // Paging is the API's, not a rule of the platform: no rule is named.
        assert_eq!(r.json().get("rule"), None, "{query}");
    }
}

/// The company accepts the fixture's Superbonus (four rate) and one more of its own year.
async fn company_holds(s: &Server) -> String {
    let op = s.app.login("operatore", PASSWORD).await.unwrap();
    s.app
        .communicate_option(
            &op,
            "paging-ecobonus",
            None,
            &OptionInput {
                beneficiary_cf: FAMILY.into(),
                type_key: "superbonus".into(),
                expense_year: 2023,
                origin: Origin::Sconto,
                holder_cf: COMPANY.into(),
                total: Cents::new(400_000),
                communicated_on: Some(chrono::NaiveDate::from_ymd_opt(2023, 2, 1).unwrap()),
                exception: None,
            },
        )
        .await
        .unwrap();
    let company = s.login("impresa").await;
    let r = s
        .call(
            "POST",
            &format!("/api/v1/parties/{COMPANY}/incoming/answer"),
            Some(&company),
            Some("accept-all"),
            Some(&json!({ "accept": true, "pin": PIN }).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    company
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1_f2_f5_pages_are_the_whole_lists_in_order() {
    let s = Server::start().await;
    let company = company_holds(&s).await;
    let party = format!("/api/v1/parties/{COMPANY}");
    let monitoring = format!("{party}/monitoring?as_of=2024-03-01");
    let rows = assert_paged(&s, &company, &monitoring, 1).await;
    let keys: Vec<(String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["type_key"].as_str().unwrap().into(),
                r["year"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    assert_cursor_refusals(&s, &company, &monitoring, Some("as_of=2024-02-01")).await;
    let rows = assert_paged(&s, &company, &format!("{party}/cedible"), 3).await;
    let rate: Vec<i64> = rows.iter().map(|r| r["rata"].as_i64().unwrap()).collect();
    assert!(rate.windows(2).all(|w| w[0] < w[1]), "{rate:?}");
    assert_cursor_refusals(&s, &company, &format!("{party}/cedible"), None).await;
    let rows = assert_paged(&s, &company, &format!("{party}/f24-availability"), 1).await;
    let keys: Vec<(String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["codice_tributo"].as_str().unwrap().into(),
                r["year"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    let rows = assert_paged(&s, &company, &format!("{party}/f24-choices"), 3).await;
    let rate: Vec<i64> = rows.iter().map(|r| r["rata"].as_i64().unwrap()).collect();
    assert!(rate.windows(2).all(|w| w[0] < w[1]), "{rate:?}");
    assert_cursor_refusals(&s, &company, &format!("{party}/f24-choices"), None).await;
    // A list without filters takes none: another parameter is refused, not carried along.
    let r = s
        .get(&format!("{party}/cedible?colore=blu"), &company)
        .await;
    assert_problem(&r, "invalid_query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f3_groups_pages_follow_their_filters_and_r_1000_stays() {
    let s = Server::start().await;
    bank_receives(&s, 2).await;
    let b = s.login("banca").await;
    let incoming = format!("/api/v1/parties/{BANK}/incoming?type_key=superbonus");
    let rows = assert_paged(&s, &b, &incoming, 1).await;
    let keys: Vec<(i64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["year"].as_i64().unwrap(),
                r["cedente"]["cf"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    assert_eq!(
        rows.iter()
            .map(|r| r["operations"].as_i64().unwrap())
            .sum::<i64>(),
        8
    );
    // The Link repeats the filters.
    let r = s.get(&format!("{incoming}&limit=1"), &b).await;
    assert!(next_link(&r).unwrap().contains("type_key=superbonus"));
    assert_cursor_refusals(&s, &b, &incoming, Some("type_key=superbonus&year=2024")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_lists_pages_are_the_whole_lists_in_order() {
    let s = Server::start().await;
    let op = s.app.login("operatore", PASSWORD).await.unwrap();
    for cf in [FAMILY, BANK] {
        s.app.delegate(&op, "studio", cf).await.unwrap();
    }
    for i in 0..4 {
        let user = format!("intermediario{i}");
        company_intermediary(&s.app, &user, &user).await;
    }
    let studio = s.login("studio").await;
    let held = assert_paged(&s, &studio, "/api/v1/me/delegations", 2).await;
    let names: Vec<&str> = held
        .iter()
        .map(|h| h["party"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "{names:?}");
    assert_cursor_refusals(&s, &studio, "/api/v1/me/delegations", None).await;
    let company = s.login("impresa").await;
    let granted = format!("/api/v1/parties/{COMPANY}/delegations");
    let rows = assert_paged(&s, &company, &granted, 2).await;
    let ids: Vec<i64> = rows.iter().map(|d| d["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_cursor_refusals(&s, &company, &granted, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f9_lists_pages_are_the_whole_lists_in_order() {
    let s = Server::start().await;
    let company = company_holds(&s).await;
    let op = s.app.login("operatore", PASSWORD).await.unwrap();
    for cf in [FAMILY, COMPANY, OTHER] {
        s.app
            .set_bank_client(&op, BANK, cf, BankClient::Consumer)
            .await
            .unwrap();
    }
    // Cessions to a party recorded as deceased: a risk hit each, then suspended.
    s.app.set_deceased(&op, OTHER, true).await.unwrap();
    let cedible = s
        .get(&format!("/api/v1/parties/{COMPANY}/cedible"), &company)
        .await
        .json();
    let rate: Vec<i64> = cedible
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|h| h["rata"].as_i64().unwrap())
        .collect();
    assert_eq!(rate.len(), 3);
    for (i, rata) in rate.iter().enumerate() {
        let r = s
            .call(
                "POST",
                &format!("/api/v1/parties/{COMPANY}/cessions"),
                Some(&company),
                Some(&format!("cede-{i}")),
                Some(
                    &json!({ "lines": [{ "rata": rata, "cessionario_cf": OTHER }], "disclose_name": true, "pin": PIN })
                        .to_string(),
                ),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let transfer = r.json()["transfers"][0].as_i64().unwrap();
        s.app.suspend(&op, transfer, 10, "verifica").await.unwrap();
    }
    let operator = s.login("operatore").await;
    let clients = format!("/api/v1/operator/banks/{BANK}/clients");
    let rows = assert_paged(&s, &operator, &clients, 2).await;
    let cfs: Vec<&str> = rows
        .iter()
        .map(|c| c["client_cf"].as_str().unwrap())
        .collect();
    assert_eq!(cfs.len(), 3);
    assert!(cfs.windows(2).all(|w| w[0] < w[1]), "{cfs:?}");
    assert_cursor_refusals(&s, &operator, &clients, None).await;
    let suspensions = "/api/v1/operator/suspensions?open_only=true";
    let rows = assert_paged(&s, &operator, suspensions, 2).await;
    let ids: Vec<i64> = rows
        .iter()
        .map(|r| r["transfer"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_cursor_refusals(&s, &operator, suspensions, Some("open_only=false")).await;
    let hits = "/api/v1/operator/risk-hits?rule=risk_party_deceased";
    let rows = assert_paged(&s, &operator, hits, 2).await;
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    assert_cursor_refusals(
        &s,
        &operator,
        hits,
        Some(&format!("rule=risk_party_deceased&party_cf={OTHER}")),
    )
    .await;
}

/// Every GET of the document that answers a JSON array pages: `limit`, `cursor` and the
/// `Link` header, so that no list stops short without a way on.
#[test]
fn every_documented_json_list_is_paged() {
    let doc = cessio_web::openapi::build();
    let schemas = &doc["components"]["schemas"];
    let mut lists = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(get) = item.get("get") else { continue };
        let schema = &get["responses"]["200"]["content"]["application/json"]["schema"];
        let schema = match schema["$ref"].as_str() {
            Some(r) => &schemas[r.trim_start_matches("#/components/schemas/")],
            None => schema,
        };
        if schema["type"] != "array" {
            continue;
        }
        lists += 1;
        let names: Vec<&str> = get["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(
            names.contains(&"limit") && names.contains(&"cursor"),
            "{path}: {names:?}"
        );
        assert!(
            get["responses"]["200"]["headers"]["Link"].is_object(),
            "{path}"
        );
    }
    assert!(lists >= 11, "{lists} lists found");
}
