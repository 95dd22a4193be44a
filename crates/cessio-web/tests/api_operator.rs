//! F9 and §5 over HTTP: the operator's endpoints under `/api/v1/operator` (R-SUSP, risk
//! hits, R-SEIZE, annulment on request, registry), the cedibilità in F2's list and the §5
//! refusals as problems naming their rule. Never a 5xx; `verify` passes at the end.

#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

use serde_json::{Value, json};
use support::*;

fn body(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}

/// Company accepts the Superbonus of the fixture; returns the first rata.
async fn accepted(s: &Server, company: &str) -> i64 {
    let r = s
        .call(
            "POST",
            &format!("/api/v1/parties/{COMPANY}/incoming/answer"),
            Some(company),
            Some("accept-option"),
            Some(&json!({ "accept": true, "pin": PIN }).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", body(&r));
    let r = s
        .get(&format!("/api/v1/parties/{COMPANY}/cedible"), company)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[0]["cedibilita"]["class"], "anyone");
    r.json()[0]["rata"].as_i64().unwrap()
}

async fn cede(s: &Server, cookie: &str, from: &str, to: &str, rata: i64, key: &str) -> Reply {
    s.call(
        "POST",
        &format!("/api/v1/parties/{from}/cessions"),
        Some(cookie),
        Some(key),
        Some(
            &json!({ "lines": [{ "rata": rata, "cessionario_cf": to }], "disclose_name": true, "pin": PIN })
                .to_string(),
        ),
    )
    .await
}

async fn answer(s: &Server, cookie: &str, party: &str, key: &str) -> Reply {
    s.call(
        "POST",
        &format!("/api/v1/parties/{party}/incoming/answer"),
        Some(cookie),
        Some(key),
        Some(&json!({ "accept": true, "pin": PIN }).to_string()),
    )
    .await
}

async fn op_call(
    s: &Server,
    op: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    b: Value,
) -> Reply {
    let r = s
        .call(
            method,
            &format!("/api/v1/operator{path}"),
            Some(op),
            key,
            (method == "POST").then(|| b.to_string()).as_deref(),
        )
        .await;
    assert!(r.status < 500, "{method} {path}: {}", body(&r));
    r
}

async fn verify(s: &Server) {
    let report = s.app.store().verify().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[tokio::test]
async fn r_susp_suspend_refuse_answer_void_over_http() {
    let s = Server::start().await;
    let op = s.login("operatore").await;
    let company = s.login("impresa").await;
    let other = s.login("altro").await;
    let rata = accepted(&s, &company).await;
    let r = cede(&s, &company, COMPANY, OTHER, rata, "c-1").await;
    assert_eq!(r.status, 201, "{}", body(&r));
    let transfer = r.json()["transfers"][0].as_i64().unwrap();

    let r = op_call(
        &s,
        &op,
        "POST",
        "/suspensions",
        None,
        json!({ "transfer": transfer, "days": 31, "reason": "x" }),
    )
    .await;
    assert_eq!((r.status, r.json()["rule"].clone()), (422, json!("R-SUSP")));
    let r = op_call(
        &s,
        &op,
        "POST",
        "/suspensions",
        None,
        json!({ "transfer": transfer, "days": 30, "reason": "verifica" }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", body(&r));
    assert_eq!(r.json()["state"], "suspended");
    assert_eq!(r.json()["until"], "2024-03-30");

    s.clock.advance(chrono::Duration::days(8));
    let r = s
        .get(&format!("/api/v1/parties/{OTHER}/incoming"), &other)
        .await;
    assert_eq!(r.json()[0]["suspended"], 1);
    let r = answer(&s, &other, OTHER, "a-1").await;
    assert_eq!(r.status, 422);
    assert_eq!(
        (r.json()["rule"].clone(), r.json()["code"].clone()),
        (json!("R-SUSP"), json!("r_susp_suspended"))
    );

    let r = op_call(
        &s,
        &op,
        "GET",
        "/suspensions?open_only=true",
        None,
        json!(null),
    )
    .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    let r = op_call(
        &s,
        &op,
        "POST",
        &format!("/suspensions/{transfer}/end"),
        Some("end-1"),
        json!({ "outcome": "voided" }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_eq!(r.json()["state"], "voided");
    // The amount is the company's again, cedible to anyone.
    let r = s
        .get(&format!("/api/v1/parties/{COMPANY}/cedible"), &company)
        .await;
    assert_eq!(r.json()[0]["rata"], rata);
    assert_eq!(r.json()[0]["max_cedibile"], 1_000_000);
    verify(&s).await;
}

#[tokio::test]
async fn r_chain_refusal_names_the_rule_and_f2_shows_cedibilita() {
    let s = Server::start().await;
    let company = s.login("impresa").await;
    let other = s.login("altro").await;
    let rata = accepted(&s, &company).await;
    assert_eq!(
        cede(&s, &company, COMPANY, OTHER, rata, "c-1").await.status,
        201
    );
    s.clock.advance(chrono::Duration::days(8));
    assert_eq!(answer(&s, &other, OTHER, "a-1").await.status, 200);
    let r = s
        .get(&format!("/api/v1/parties/{OTHER}/cedible"), &other)
        .await;
    let row = &r.json()[0];
    assert_eq!(row["cedibilita"]["class"], "qualified_only");
    assert_eq!(
        row["cedibilita"]["label"],
        "cedibile solo a soggetti qualificati"
    );
    let r = cede(&s, &other, OTHER, FAMILY, rata, "c-2").await;
    assert_eq!(r.status, 422, "{}", body(&r));
    assert_eq!(r.json()["rule"], "R-CHAIN");
    assert_eq!(r.json()["code"], "r_chain_not_qualified");
    let r = cede(&s, &other, OTHER, BANK, rata, "c-3").await;
    assert_eq!(r.status, 201, "{}", body(&r));
    let r = s
        .get(&format!("/api/v1/parties/{OTHER}/monitoring"), &other)
        .await;
    assert_eq!(r.status, 200);
    verify(&s).await;
}

#[tokio::test]
async fn r_seize_annulment_registry_and_risk_hits_over_http() {
    let s = Server::start().await;
    let op = s.login("operatore").await;
    let company = s.login("impresa").await;
    let other = s.login("altro").await;
    let rata = accepted(&s, &company).await;

    // R-SEIZE.
    let seize = json!({ "holder_cf": COMPANY, "rata": rata, "reference": "Decreto 1/2024" });
    let r = op_call(&s, &op, "POST", "/seizures", Some("s-1"), seize.clone()).await;
    assert_eq!(r.status, 201, "{}", body(&r));
    assert_eq!(r.json()["seized"], 1_000_000);
    let r = s
        .get(&format!("/api/v1/parties/{COMPANY}/cedible"), &company)
        .await;
    assert!(
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["rata"] != rata)
    );
    s.clock.advance(chrono::Duration::days(3));
    let r = op_call(
        &s,
        &op,
        "POST",
        "/seizures/release",
        Some("s-2"),
        json!({ "holder_cf": COMPANY, "rata": rata }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_eq!(r.json()["extension_days"], 3);

    // Annulment on request.
    let r = cede(&s, &company, COMPANY, OTHER, rata, "c-1").await;
    let transfer = r.json()["transfers"][0].as_i64().unwrap();
    s.clock.advance(chrono::Duration::days(8));
    assert_eq!(answer(&s, &other, OTHER, "a-1").await.status, 200);
    let r = op_call(
        &s,
        &op,
        "POST",
        "/annulments",
        Some("n-1"),
        json!({ "transfer": transfer, "reference": "PEC 123" }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", body(&r));
    assert_eq!(r.json()["amount"], 1_000_000);
    let r = op_call(
        &s,
        &op,
        "POST",
        "/annulments",
        Some("n-2"),
        json!({ "transfer": transfer, "reference": "PEC 124" }),
    )
    .await;
    assert_eq!(r.json()["code"], "annulment_not_allowed");

    // Registry: deceased, bank clients; risk hits listed.
    let r = op_call(
        &s,
        &op,
        "POST",
        &format!("/parties/{OTHER}/deceased"),
        None,
        json!({ "deceased": true }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_eq!(
        cede(&s, &company, COMPANY, OTHER, rata, "c-2").await.status,
        201
    );
    let r = op_call(
        &s,
        &op,
        "GET",
        &format!("/risk-hits?rule=risk_party_deceased&party_cf={OTHER}"),
        None,
        json!(null),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    let r = op_call(
        &s,
        &op,
        "POST",
        "/bank-clients",
        None,
        json!({ "bank_cf": BANK, "client_cf": COMPANY, "relation": "non_consumer" }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", body(&r));
    let r = op_call(
        &s,
        &op,
        "GET",
        &format!("/banks/{BANK}/clients"),
        None,
        json!(null),
    )
    .await;
    assert_eq!(r.json()[0]["client_cf"], COMPANY);
    let r = op_call(
        &s,
        &op,
        "POST",
        "/bank-clients",
        None,
        json!({ "bank_cf": COMPANY, "client_cf": OTHER, "relation": "non_consumer" }),
    )
    .await;
    assert_eq!(r.status, 422);
    verify(&s).await;
}

#[tokio::test]
async fn operator_endpoints_refuse_users_and_bad_input_without_5xx() {
    let s = Server::start().await;
    let op = s.login("operatore").await;
    let company = s.login("impresa").await;
    for (method, path, key, b) in [
        (
            "POST",
            "/suspensions",
            None,
            json!({ "transfer": 1, "days": 5, "reason": "x" }),
        ),
        ("GET", "/suspensions", None, json!(null)),
        ("GET", "/risk-hits", None, json!(null)),
        (
            "POST",
            "/seizures",
            Some("k1"),
            json!({ "holder_cf": COMPANY, "rata": 1, "reference": "x" }),
        ),
        (
            "POST",
            "/annulments",
            Some("k2"),
            json!({ "transfer": 1, "reference": "x" }),
        ),
        (
            "POST",
            &format!("/parties/{COMPANY}/deceased"),
            None,
            json!({ "deceased": true }),
        ),
        ("GET", &format!("/banks/{BANK}/clients"), None, json!(null)),
    ] {
        let r = op_call(&s, &company, method, path, key, b).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", body(&r));
    }
    // Unknown movement, unknown fields, missing key: problems, never a server error.
    let r = op_call(
        &s,
        &op,
        "POST",
        "/suspensions",
        None,
        json!({ "transfer": 999, "days": 5, "reason": "x" }),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = op_call(
        &s,
        &op,
        "POST",
        "/suspensions",
        None,
        json!({ "transfer": 1, "days": 5, "reason": "x", "extra": 1 }),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = op_call(
        &s,
        &op,
        "POST",
        "/seizures",
        None,
        json!({ "holder_cf": COMPANY, "rata": 1, "reference": "x" }),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = op_call(
        &s,
        &op,
        "POST",
        "/suspensions/abc/end",
        Some("k3"),
        json!({ "outcome": "voided" }),
    )
    .await;
    assert!(r.status >= 400 && r.status < 500);
    let r = op_call(&s, &op, "GET", "/risk-hits?since=ieri", None, json!(null)).await;
    assert_eq!(r.status, 422);
    verify(&s).await;
}
