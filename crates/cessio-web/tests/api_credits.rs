//! F5, F6 and F7 over HTTP: refusals as problem+json naming their rule (R-F24-OVER,
//! R-SPLIT-*, F7), idempotent retries, and the operator-only endpoints (debt position,
//! year-end close) refused to users.

#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

use serde_json::{Value, json};
use support::*;

fn body(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}

fn assert_rule(r: &Reply, status: u16, code: &str, rule: &str) {
    assert_eq!(r.status, status, "{}", body(r));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let j = r.json();
    assert_eq!(j["code"], code, "{j}");
    assert_eq!(j["rule"], rule, "{j}");
    assert!(!j["detail"].as_str().unwrap().is_empty());
}

async fn post(s: &Server, cookie: &str, path: &str, key: Option<&str>, b: Value) -> Reply {
    s.call(
        "POST",
        &format!("/api/v1{path}"),
        Some(cookie),
        key,
        Some(&b.to_string()),
    )
    .await
}

/// The company accepts the fixture's Superbonus (7718, 2023–2026, 10,000.00 each) and
/// returns its session and the 2024 rata.
async fn company_with_rata(s: &Server) -> (String, i64) {
    let c = s.login("impresa").await;
    let r = post(
        s,
        &c,
        &format!("/parties/{COMPANY}/incoming/answer"),
        Some("accept"),
        json!({ "accept": true, "pin": PIN }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", body(&r));
    let r = s
        .get(&format!("/api/v1/parties/{COMPANY}/f24-choices"), &c)
        .await;
    assert_eq!(r.status, 200, "{}", body(&r));
    let rows = r.json();
    assert_conforms("ChoiceRows", &rows);
    let rata = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["year"] == 2024)
        .unwrap()["rata"]
        .as_i64()
        .unwrap();
    (c, rata)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_f24_over_is_a_problem_naming_the_rule_and_reserve_retries_once() {
    let s = Server::start().await;
    let (c, rata) = company_with_rata(&s).await;
    let choice = |key: &'static str| {
        let (s, c) = (&s, &c);
        async move {
            post(
                s,
                c,
                &format!("/parties/{COMPANY}/f24-choices/{rata}"),
                Some(key),
                json!({ "declare": true, "pin": PIN }),
            )
            .await
        }
    };
    let r = choice("choice").await;
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_conforms("ChoiceReceipt", &r.json());
    assert!(choice("choice").await.json()["replayed"].as_bool().unwrap());
    let f24 = |key: &'static str, amount: i64| {
        let (s, c) = (&s, &c);
        async move {
            post(
                s,
                c,
                &format!("/parties/{COMPANY}/f24"),
                Some(key),
                json!({ "payment_date": "2024-03-01", "pin": PIN,
                    "lines": [{ "codice_tributo": "7718", "year": 2024, "amount": amount }] }),
            )
            .await
        }
    };
    assert_rule(&f24("over", 1_000_001).await, 422, "f24_over", "R-F24-OVER");
    // The debit side: credits above what the form pays (R-F24-BALANCE); a malformed line.
    let with_debits = |key: &'static str, debits: serde_json::Value| {
        let (s, c) = (&s, &c);
        async move {
            post(
                s,
                c,
                &format!("/parties/{COMPANY}/f24"),
                Some(key),
                json!({ "payment_date": "2024-03-01", "pin": PIN,
                    "lines": [{ "codice_tributo": "7718", "year": 2024, "amount": 100 }],
                    "debits": debits }),
            )
            .await
        }
    };
    let r = with_debits(
        "short",
        json!([{ "section": "erario", "code": "1001", "amount": 99 }]),
    )
    .await;
    assert_rule(&r, 422, "f24_negative_balance", "R-F24-BALANCE");
    let r = with_debits(
        "bad",
        json!([{ "section": "inps", "code": "D", "amount": 100 }]),
    )
    .await;
    assert_eq!(r.status, 422, "{}", body(&r));
    assert!(body(&r).contains("debits[0].code"), "{}", body(&r));
    let first = f24("ok", 100).await;
    assert_eq!(first.status, 201, "{}", body(&first));
    assert_conforms("F24Reservation", &first.json());
    let again = f24("ok", 100).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json()["replayed"], true);
    assert_eq!(again.json()["reservation"], first.json()["reservation"]);
    let id = first.json()["reservation"].as_i64().unwrap();
    let r = s
        .get(&format!("/api/v1/parties/{COMPANY}/f24-availability"), &c)
        .await;
    let row = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["codice_tributo"] == "7718" && x["year"] == 2024)
        .cloned()
        .unwrap();
    assert_eq!(row["reserved"], 100);
    assert_eq!(row["usable"], 999_900);
    let r = post(
        &s,
        &c,
        &format!("/parties/{COMPANY}/f24/{id}/confirm"),
        Some("confirm"),
        json!({ "pin": PIN }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_eq!(r.json()["confirmed"], true);
    let r = post(
        &s,
        &c,
        &format!("/parties/{COMPANY}/f24/{id}/discard"),
        Some("discard"),
        json!({ "pin": PIN }),
    )
    .await;
    assert_eq!(r.status, 409, "{}", body(&r));
    // No Idempotency-Key on a mutating call: refused.
    let r = post(
        &s,
        &c,
        &format!("/parties/{COMPANY}/f24"),
        None,
        json!({ "payment_date": "2024-03-01", "pin": PIN, "lines": [] }),
    )
    .await;
    assert!(r.status >= 400 && r.status < 500, "{}", body(&r));
    assert!(s.app.store().verify().await.unwrap().ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_split_refusals_name_their_rule_split_retries_once_and_annuls() {
    let s = Server::start().await;
    let (c, rata) = company_with_rata(&s).await;
    let path = format!("/parties/{COMPANY}/split");
    let r = post(
        &s,
        &c,
        &format!("{path}/preview"),
        None,
        json!({ "rata": rata, "amount": 100_003 }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", body(&r));
    let rows = r.json()["rate"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0]["amount"], 10_003);
    assert_eq!(rows[0]["codice_tributo"], "7771");
    assert_eq!(rows[0]["year"], 2025);
    assert_eq!(rows[0]["last_day_of_use"], "2025-12-31");
    let r = post(
        &s,
        &c,
        &format!("{path}/preview"),
        None,
        json!({ "rata": rata, "amount": 1_000_001 }),
    )
    .await;
    assert_rule(&r, 422, "r_split_over_residual", "R-SPLIT-ELIGIBLE");
    let split = || {
        post(
            &s,
            &c,
            &path,
            Some("split"),
            json!({ "rata": rata, "amount": 100_003, "pin": PIN }),
        )
    };
    let first = split().await;
    assert_eq!(first.status, 201, "{}", body(&first));
    assert_conforms("SplitReceipt", &first.json());
    let again = split().await;
    assert_eq!(again.json()["replayed"], true);
    assert_eq!(again.json()["split_credit"], first.json()["split_credit"]);
    let split_credit = first.json()["split_credit"].as_i64().unwrap();
    let split_rata = first.json()["rate"][0]["rata"].as_i64().unwrap();
    // R-SPLIT-NOCEDE: a split rata is not offered for cession, and a cession is refused.
    let r = s
        .get(&format!("/api/v1/parties/{COMPANY}/cedible"), &c)
        .await;
    assert!(
        !r.json()
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["rata"] == split_rata)
    );
    let r = post(
        &s,
        &c,
        &format!("/parties/{COMPANY}/cessions"),
        Some("cede-split"),
        json!({ "lines": [{ "rata": split_rata, "cessionario_cf": OTHER }], "disclose_name": true, "pin": PIN }),
    )
    .await;
    assert!(r.status >= 400 && r.status < 500, "{}", body(&r));
    // R-SPLIT-ANNUL: annulled once; a second annulment is a conflict.
    let annul = |key: &'static str| {
        let (s, c) = (&s, &c);
        async move {
            post(
                s,
                c,
                &format!("/parties/{COMPANY}/split/{split_credit}/annul"),
                Some(key),
                json!({ "pin": PIN }),
            )
            .await
        }
    };
    let r = annul("annul").await;
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_eq!(r.json()["restored"]["codice_tributo"], "7718");
    assert_eq!(r.json()["restored"]["amount"], 100_003);
    assert_eq!(annul("annul").await.json()["replayed"], true);
    assert_eq!(annul("annul-again").await.status, 409);
    // R-SPLIT-ELIGIBLE: the 2023 rata has expired, when it is still listed.
    let r = s
        .get(&format!("/api/v1/parties/{COMPANY}/f24-choices"), &c)
        .await;
    let rata_2023 = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["year"] == 2023)
        .map(|x| x["rata"].as_i64().unwrap());
    if let Some(old) = rata_2023 {
        let r = post(
            &s,
            &c,
            &format!("{path}/preview"),
            None,
            json!({ "rata": old, "amount": 100 }),
        )
        .await;
        assert_rule(&r, 422, "r_split_expired", "R-SPLIT-ELIGIBLE");
    }
    assert!(s.app.store().verify().await.unwrap().ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f7_reduction_over_http_names_its_rule() {
    let s = Server::start().await;
    let (c, rata) = company_with_rata(&s).await;
    let path = format!("/parties/{COMPANY}/reductions");
    let r = post(
        &s,
        &c,
        &path,
        Some("late"),
        json!({ "rata": rata, "amount": 100, "known_on": "2024-01-30", "pin": PIN }),
    )
    .await;
    assert_rule(&r, 422, "f7_too_late", "F7");
    let ok = json!({ "rata": rata, "amount": 100, "known_on": "2024-01-31", "pin": PIN });
    let r = post(&s, &c, &path, Some("ok"), ok.clone()).await;
    assert_eq!(r.status, 201, "{}", body(&r));
    let r = post(&s, &c, &path, Some("ok"), ok).await;
    assert_eq!(r.json()["replayed"], true);
    assert!(s.app.store().verify().await.unwrap().ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_only_endpoints_refused_to_users() {
    let s = Server::start().await;
    let user = s.login("impresa").await;
    let op = s.login("operatore").await;
    let debt = json!({ "loads": [] });
    let put = |cookie: &str, key: &'static str| {
        let cookie = cookie.to_string();
        let s = &s;
        let debt = debt.to_string();
        async move {
            s.call(
                "PUT",
                &format!("/api/v1/parties/{COMPANY}/debt-position"),
                Some(&cookie),
                Some(key),
                Some(&debt),
            )
            .await
        }
    };
    let r = put(&user, "debt").await;
    assert_eq!(r.status, 403, "{}", body(&r));
    let r = put(&op, "debt").await;
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_eq!(r.json()["counted_for_ban_100k"], 0);
    let r = post(&s, &user, "/close-year/2023", Some("close"), json!(null)).await;
    assert_eq!(r.status, 403, "{}", body(&r));
    let r = s
        .call(
            "POST",
            "/api/v1/close-year/2023",
            Some(&op),
            Some("close"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_eq!(r.json()["year"], 2023);
    let r = s
        .call(
            "POST",
            "/api/v1/close-year/2024",
            Some(&op),
            Some("close-2024"),
            None,
        )
        .await;
    assert_rule(&r, 422, "year_not_closed", "R-F24-WINDOW-121");
}
