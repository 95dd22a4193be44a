//! The JSON API over real HTTP on an ephemeral port: problem+json errors, authentication,
//! idempotency, access control, bad input, the OpenAPI document and the CSV export.

#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

use serde_json::json;
use support::*;

fn assert_problem(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let j = r.json();
    assert_eq!(j["code"], code, "{j}");
    assert!(!j["detail"].as_str().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_openapi() {
    let s = Server::start().await;
    let r = s.call("GET", "/healthz", None, None, None).await;
    assert_eq!(r.status, 200);
    let r = s
        .call("GET", "/api/v1/openapi.json", None, None, None)
        .await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/parties/{cf}/cessions",
        "/parties/{cf}/incoming/answer",
        "/parties/{cf}/movements.csv",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} undocumented");
    }
    // Kept for CI, which validates it with an OpenAPI validator.
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/openapi.json");
    std::fs::write(out, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let r = s.call("GET", "/metrics", None, None, None).await;
    let text = String::from_utf8_lossy(&r.body).to_string();
    assert!(
        text.contains(
            "cessio_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("cessio_ledger_rows{table=\"transfers\"}"));
    assert_problem(
        &s.call("GET", "/nope", None, None, None).await,
        404,
        "not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_errors_do_not_reveal_users_and_are_rate_limited() {
    let s = Server::start().await;
    let wrong = |u: &str| json!({ "username": u, "password": "sbagliata-123" }).to_string();
    let a = s
        .call("POST", "/api/v1/session", None, None, Some(&wrong("banca")))
        .await;
    let b = s
        .call(
            "POST",
            "/api/v1/session",
            None,
            None,
            Some(&wrong("nessuno")),
        )
        .await;
    assert_problem(&a, 401, "login_failed");
    assert_problem(&b, 401, "login_failed");
    assert_eq!(a.json()["detail"], b.json()["detail"]);
    let mut last = 0;
    for _ in 0..12 {
        last = s
            .call("POST", "/api/v1/session", None, None, Some(&wrong("banca")))
            .await
            .status;
    }
    assert_eq!(last, 429);
    assert_problem(
        &s.call("GET", "/api/v1/me", None, None, None).await,
        401,
        "unauthenticated",
    );
    assert_problem(
        &s.get("/api/v1/me", "cessio_session=forged").await,
        401,
        "unauthenticated",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_problems_not_5xx() {
    let s = Server::start().await;
    let c = s.login("impresa").await;
    accept_communication(&s, &c).await;
    let path = format!("/api/v1/parties/{COMPANY}/cessions");
    let rata = s
        .get(&format!("/api/v1/parties/{COMPANY}/cedible"), &c)
        .await
        .json()[0]["rata"]
        .as_i64()
        .unwrap();
    for (body, status, code) in [
        ("{not json", 400, "invalid_json"),
        (
            r#"{"lines": [], "disclose_name": true, "extra": 1}"#,
            422,
            "invalid_json",
        ),
        (
            r#"{"lines": "x", "disclose_name": true}"#,
            422,
            "invalid_json",
        ),
        (
            r#"{"lines": [{"rata": 1, "cessionario_cf": "03189950961", "amount": -5}], "disclose_name": true, "pin": "135790"}"#,
            422,
            "amount_not_positive",
        ),
        (
            r#"{"lines": [{"rata": 1, "cessionario_cf": "03189950961", "amount": 1e30}], "disclose_name": true}"#,
            422,
            "invalid_json",
        ),
        (
            r#"{"lines": [{"rata": 1, "cessionario_cf": "031899509", "amount": 5}], "disclose_name": true, "pin": "135790"}"#,
            422,
            "cf_invalid",
        ),
        (
            r#"{"lines": [{"rata": 1, "cessionario_cf": "12345670017", "amount": 5}], "disclose_name": true, "pin": "135790"}"#,
            422,
            "cf_unknown",
        ),
    ] {
        let body = body.replace("\"rata\": 1,", &format!("\"rata\": {rata},"));
        let r = s
            .call("POST", &path, Some(&c), Some("k1"), Some(&body))
            .await;
        assert_problem(&r, status, code);
    }
    let huge = format!(
        r#"{{"lines": [], "disclose_name": true, "pad": "{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let r = s
        .call("POST", &path, Some(&c), Some("k2"), Some(&huge))
        .await;
    assert_problem(&r, 413, "body_too_large");
    let r = s
        .call(
            "POST",
            &path,
            Some(&c),
            None,
            Some(r#"{"lines": [], "disclose_name": true}"#),
        )
        .await;
    assert_problem(&r, 400, "idempotency_key_required");
    let r = s
        .get(&format!("/api/v1/parties/{COMPANY}/incoming?year=abc"), &c)
        .await;
    assert_problem(&r, 422, "invalid_query");
}

async fn accept_communication(s: &Server, cookie: &str) {
    let r = s
        .call(
            "POST",
            &format!("/api/v1/parties/{COMPANY}/incoming/answer"),
            Some(cookie),
            Some("accept-1"),
            Some(&json!({ "accept": true, "pin": PIN }).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cession_needs_pin_and_is_idempotent() {
    let s = Server::start().await;
    let c = s.login("impresa").await;
    accept_communication(&s, &c).await;
    let cedible = s
        .get(&format!("/api/v1/parties/{COMPANY}/cedible"), &c)
        .await
        .json();
    let rata = cedible[0]["rata"].as_i64().unwrap();
    let path = format!("/api/v1/parties/{COMPANY}/cessions");
    let body = |pin: Option<&str>| {
        json!({ "lines": [{ "rata": rata, "cessionario_cf": BANK }], "disclose_name": true, "pin": pin }).to_string()
    };
    // The consent to show the cedente's name is required, and has no default.
    let no_consent = json!({ "lines": [{ "rata": rata, "cessionario_cf": BANK }], "disclose_name": false, "pin": PIN });
    let r = s
        .call(
            "POST",
            &path,
            Some(&c),
            Some("c0"),
            Some(&no_consent.to_string()),
        )
        .await;
    assert_problem(&r, 422, "name_consent_required");
    assert_eq!(r.json()["rule"], "F2");
    let missing = json!({ "lines": [{ "rata": rata, "cessionario_cf": BANK }], "pin": PIN });
    assert_problem(
        &s.call(
            "POST",
            &path,
            Some(&c),
            Some("c0b"),
            Some(&missing.to_string()),
        )
        .await,
        422,
        "invalid_json",
    );
    assert_problem(
        &s.call("POST", &path, Some(&c), Some("c1"), Some(&body(None)))
            .await,
        403,
        "pin_required",
    );
    let wrong = s
        .call(
            "POST",
            &path,
            Some(&c),
            Some("c1"),
            Some(&body(Some("000000"))),
        )
        .await;
    assert_problem(&wrong, 403, "pin_wrong");
    let first = s
        .call("POST", &path, Some(&c), Some("c1"), Some(&body(Some(PIN))))
        .await;
    assert_eq!(
        first.status,
        201,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let again = s
        .call("POST", &path, Some(&c), Some("c1"), Some(&body(Some(PIN))))
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json()["operation_id"], first.json()["operation_id"]);
    assert_eq!(again.json()["replayed"], true);
    let other = json!({ "lines": [{ "rata": rata, "cessionario_cf": OTHER }], "disclose_name": true, "pin": PIN }).to_string();
    assert_problem(
        &s.call("POST", &path, Some(&c), Some("c1"), Some(&other))
            .await,
        422,
        "idempotency_mismatch",
    );
    // R-PENDING-OUT: the ceded rata is no longer cedible.
    let r = s
        .call("POST", &path, Some(&c), Some("c2"), Some(&other))
        .await;
    assert_problem(&r, 422, "r_pending_out");
    // The bank sees the cedente's name (authorised) in its acceptance list.
    let b = s.login("banca").await;
    let incoming = s
        .get(&format!("/api/v1/parties/{BANK}/incoming"), &b)
        .await
        .json();
    assert_eq!(incoming[0]["cedente"]["cf"], COMPANY);
    assert_eq!(incoming[0]["cedente"]["name"], "=HYPERLINK(\"http://x\")");
    assert!(
        incoming[0]["answerable_from"].is_string(),
        "R-WAIT5: {incoming}"
    );
    assert!(s.app.store().verify().await.unwrap().ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_matrix_and_no_probing() {
    let s = Server::start().await;
    let company = s.login("impresa").await;
    let other = s.login("altro").await;
    let studio = s.login("studio").await;
    let operator = s.login("operatore").await;
    let monitoring = |cf: &str| format!("/api/v1/parties/{cf}/monitoring");
    // Titolare, delegated intermediary and operator may look; another titolare may not.
    for (cookie, status) in [
        (&company, 200),
        (&studio, 200),
        (&operator, 200),
        (&other, 403),
    ] {
        let r = s.get(&monitoring(COMPANY), cookie).await;
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    }
    // An unregistered code answers like a forbidden one: nothing to learn by probing.
    let forbidden = s.get(&monitoring(COMPANY), &other).await;
    let unknown = s.get(&monitoring("12345670017"), &other).await;
    assert_problem(&unknown, 403, "forbidden");
    assert_eq!(forbidden.json()["detail"], unknown.json()["detail"]);
    // The operator looks but does not dispose of credits.
    let r = s
        .call(
            "POST",
            &format!("/api/v1/parties/{COMPANY}/incoming/answer"),
            Some(&operator),
            Some("op-1"),
            Some(&json!({ "accept": true }).to_string()),
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    // Operator-only functions are refused to others.
    let r = s
        .call(
            "POST",
            "/api/v1/users/banca/pin-unlock",
            Some(&company),
            None,
            None,
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    // After revocation the intermediary loses access at once.
    let r = s
        .call(
            "POST",
            "/api/v1/delegations/revoke",
            Some(&operator),
            None,
            Some(&json!({ "username": "studio", "party_cf": COMPANY }).to_string()),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = s.get(&monitoring(COMPANY), &studio).await;
    assert_problem(&r, 403, "forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_export_is_excel_ready_and_formula_safe() {
    let s = Server::start().await;
    let c = s.login("impresa").await;
    accept_communication(&s, &c).await;
    let cedible = s
        .get(&format!("/api/v1/parties/{COMPANY}/cedible"), &c)
        .await
        .json();
    let rata = cedible[0]["rata"].as_i64().unwrap();
    let body = json!({ "lines": [{ "rata": rata, "cessionario_cf": BANK }], "disclose_name": true, "pin": PIN }).to_string();
    let r = s
        .call(
            "POST",
            &format!("/api/v1/parties/{COMPANY}/cessions"),
            Some(&c),
            Some("x"),
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 201);
    let b = s.login("banca").await;
    let r = s
        .get(
            &format!("/api/v1/parties/{BANK}/movements.csv?year=2024"),
            &b,
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    // Sent as it is read (chunked), not built whole first.
    assert_eq!(r.header("content-length"), None);
    let text = String::from_utf8(r.body.clone()).unwrap();
    assert!(text.starts_with('\u{feff}'));
    let row = text.lines().nth(1).unwrap();
    assert!(
        row.contains(";00743110157;\"'=HYPERLINK(\"\"http://x\"\")\";"),
        "{row}"
    );
    assert!(row.contains(";10000,00;"), "{row}");
    // At least one filter besides tracciabilità (SPEC F4).
    let r = s
        .get(
            &format!("/api/v1/parties/{BANK}/movements?tracciabile=true"),
            &b,
        )
        .await;
    assert_problem(&r, 422, "filter_required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f8_bulk_import_reports_each_row_and_imports_nothing_twice() {
    let s = Server::start().await;
    let op = s.login("operatore").await;
    let csv = format!(
        "cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione;riferimento\r\n\
         {FAMILY};ecobonus;2021;sconto;{COMPANY};12.345,67;10/03/2022;A1\r\n\
         {FAMILY};ecobonus;2021;sconto;{COMPANY};-5;10/03/2022;A2\r\n\
         {FAMILY};bonus_facciate;2021;cessione;{BANK};1000,00;2022-03-11;A3\r\n"
    );
    let send = |body: String| {
        s.send(
            Request::post("/api/v1/communications/bulk")
                .header("Cookie", &op)
                .body("text/csv", body),
        )
    };
    let r = send(csv.clone()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let report = r.json();
    assert_eq!(
        (report["registered"].as_u64(), report["refused"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(report["rows"][1]["line"], 3);
    assert_eq!(report["rows"][1]["code"], "amount_not_positive");
    assert_eq!(report["rows"][0]["reference"], "A1");
    let again = send(csv.clone()).await.json();
    assert_eq!(again["registered"], 0);
    assert_eq!(again["already_registered"], 2);
    // The corrected file sent again registers only the corrected row.
    let corrected = csv.replace(";-5;", ";5,00;");
    let fixed = send(corrected).await.json();
    assert_eq!(
        (
            fixed["registered"].as_u64(),
            fixed["already_registered"].as_u64(),
            fixed["refused"].as_u64()
        ),
        (Some(1), Some(2), Some(0)),
        "{fixed}"
    );
    let bad = send("not;a;valid;header\r\n".into()).await;
    assert_problem(&bad, 422, "invalid");
}

/// Every party endpoint × every kind of caller (SPEC §2), with the expected status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_matrix_every_party_endpoint() {
    let s = Server::start().await;
    let titolare = s.login("impresa").await;
    let other = s.login("altro").await;
    let delegated = s.login("studio").await;
    let operator = s.login("operatore").await;
    // A second intermediary whose delegation is revoked before the checks.
    let op = s.app.login("operatore", PASSWORD).await.unwrap();
    company_intermediary(&s.app, "revocato", "Revocato").await;
    s.app
        .revoke_delegation(&op, "revocato", COMPANY)
        .await
        .unwrap();
    let revoked = s.login("revocato").await;
    let base = format!("/api/v1/parties/{COMPANY}");
    // Bodies that pass authorisation but change nothing: an empty cession (422) and an
    // answer to a year with nothing pending (409).
    let cession = json!({ "lines": [], "disclose_name": true, "pin": PIN }).to_string();
    let answer = json!({ "accept": true, "year": 1999, "pin": PIN }).to_string();
    let endpoints: [(&str, String, Option<&str>); 7] = [
        ("GET", format!("{base}/monitoring"), None),
        ("GET", format!("{base}/cedible"), None),
        ("GET", format!("{base}/incoming"), None),
        ("GET", format!("{base}/movements?year=2024"), None),
        ("GET", format!("{base}/movements.csv?year=2024"), None),
        ("POST", format!("{base}/cessions"), Some(cession.as_str())),
        (
            "POST",
            format!("{base}/incoming/answer"),
            Some(answer.as_str()),
        ),
    ];
    let callers: [(&str, Option<&str>, [u16; 7]); 6] = [
        ("anonymous", None, [401, 401, 401, 401, 401, 401, 401]),
        (
            "titolare",
            Some(&titolare),
            [200, 200, 200, 200, 200, 422, 409],
        ),
        (
            "delegated",
            Some(&delegated),
            [200, 200, 200, 200, 200, 422, 409],
        ),
        ("other titolare", Some(&other), [403; 7]),
        ("revoked delegation", Some(&revoked), [403; 7]),
        (
            "operator",
            Some(&operator),
            [200, 200, 200, 200, 200, 403, 403],
        ),
    ];
    for (who, cookie, expected) in callers {
        for ((method, path, body), want) in endpoints.iter().zip(expected) {
            let key = format!("m-{who}-{path}").replace(' ', "_");
            let r = s.call(method, path, cookie, Some(&key), *body).await;
            assert_eq!(
                r.status,
                want,
                "{who} {method} {path}: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
    }
}

/// SPEC §2: the PIN locks after five wrong attempts, also when they arrive all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pin_lock_holds_against_parallel_guesses() {
    let s = Server::start().await;
    let p = s.app.login("banca", PASSWORD).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (app, p) = (s.app.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            app.check_pin(&p, Some(&format!("{:06}", 100_000 + i)))
                .await
        }));
    }
    let mut wrong = 0;
    for t in tasks {
        match t.await.unwrap().unwrap_err().code() {
            "pin_wrong" => wrong += 1,
            "pin_locked" => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        wrong <= 4,
        "{wrong} guesses answered 'wrong' beyond the lock"
    );
    let e = s.app.check_pin(&p, Some(PIN)).await.unwrap_err();
    assert_eq!(e.code(), "pin_locked");
    assert_eq!(
        s.app
            .store()
            .user(p.user_id)
            .await
            .unwrap()
            .unwrap()
            .pin_failures,
        5
    );
}

/// Every documented operation is routed (no fallback 404), and the document matches the
/// reviewed snapshot: a change of the wire format is a reviewed diff. Set
/// `UPDATE_SNAPSHOTS=1` to rewrite the snapshot after an intended change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_routed_operations_and_matches_snapshot() {
    let s = Server::start().await;
    for op in cessio_web::openapi::OPERATIONS {
        let path = format!("/api/v1{}", op.path)
            .replace("{cf}", COMPANY)
            .replace("{id}", "1")
            .replace("{username}", "banca");
        let r = s
            .call(
                &op.method.to_uppercase(),
                &path,
                None,
                Some("k"),
                Some("{}"),
            )
            .await;
        let unrouted = r.status == 404 && r.json()["detail"] == "Risorsa inesistente";
        let wrong_method = r.status == 405;
        assert!(
            !unrouted && !wrong_method,
            "{} {path} is documented but not routed",
            op.method
        );
    }
    let doc = serde_json::to_string_pretty(&cessio_web::openapi::build()).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi.snapshot.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &doc).unwrap();
    }
    let snapshot = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        snapshot == doc,
        "the OpenAPI document changed: review it and run with UPDATE_SNAPSHOTS=1 to accept"
    );
}

/// Large amounts lose nothing on the way: €10^12 (10^14 cents, beyond what a 32-bit or a
/// float-with-cents representation keeps exact) through the JSON API, the rate split, F1
/// and the CSV export; one cent above the platform's maximum is refused with its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_amounts_keep_every_cent() {
    let s = Server::start().await;
    let op = s.login("operatore").await;
    let total: i64 = 100_000_000_000_003; // €1.000.000.000.000,03
    let body = json!({
        "beneficiary_cf": FAMILY, "type_key": "sismabonus", "expense_year": 2021,
        "origin": "sconto", "holder_cf": COMPANY, "total": total,
        "communicated_on": "2022-03-01", "pin": PIN
    })
    .to_string();
    let r = s
        .call(
            "POST",
            "/api/v1/communications",
            Some(&op),
            Some("big"),
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let credit = r.json();
    assert_conforms("Credit", &credit);
    let amounts: Vec<i64> = credit["rate"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts.iter().sum::<i64>(), total);
    assert_eq!(
        amounts[0], 20_000_000_000_003,
        "remainder cents on the first rata"
    );
    let c = s.login("impresa").await;
    let f1 = s
        .get(&format!("/api/v1/parties/{COMPANY}/monitoring"), &c)
        .await
        .json();
    let pending: i64 = f1
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type_key"] == "sismabonus")
        .map(|r| r["received_pending"].as_i64().unwrap())
        .sum();
    assert_eq!(pending, total);
    let csv = s
        .get(
            &format!("/api/v1/parties/{COMPANY}/movements.csv?type_key=sismabonus"),
            &c,
        )
        .await;
    let text = String::from_utf8_lossy(&csv.body);
    assert!(text.contains("200000000000,03"), "{text}");
    let over = json!({
        "beneficiary_cf": FAMILY, "type_key": "sismabonus", "expense_year": 2021,
        "origin": "sconto", "holder_cf": COMPANY, "total": 1_000_000_000_000_001_i64,
        "communicated_on": "2022-03-01", "pin": PIN
    })
    .to_string();
    let r = s
        .call(
            "POST",
            "/api/v1/communications",
            Some(&op),
            Some("over"),
            Some(&over),
        )
        .await;
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
}

/// R-RENT over HTTP: 60 % of the rent of each month whose turnover fell by half or more;
/// a month the law does not cover is refused with the rule; only signed-in users compute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_rent_calculator_over_http() {
    let s = Server::start().await;
    let c = s.login("impresa").await;
    let month = |m: u32, turnover: i64| json!({ "month": m, "rent": 100_000, "turnover_before": 1_000_000, "turnover": turnover, "paid_on": "2020-06-30" });
    let body = json!({
        "lease": "non_residential", "activity": "ordinary", "seasonal": false, "promiscuous": false,
        "revenue_before": 100_000_000,
        "months": [month(3, 400_000), month(4, 0), month(5, 600_000)]
    });
    let r = s
        .call(
            "POST",
            "/api/v1/rent-credit",
            Some(&c),
            None,
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    // March and April fell by 60 % and 100 %: 600,00 € each; May fell by 40 %: nothing.
    assert_eq!(j["total"], 120_000, "{j}");
    assert_conforms("RentCredit", &j);
    assert_conforms("Me", &s.get("/api/v1/me", &c).await.json());
    assert_eq!(j["months"][2]["outcome"]["outcome"], "not_eligible", "{j}");
    let mut july = body.clone();
    july["months"] = json!([month(7, 0)]);
    let r = s
        .call(
            "POST",
            "/api/v1/rent-credit",
            Some(&c),
            None,
            Some(&july.to_string()),
        )
        .await;
    assert_problem(&r, 422, "r_rent");
    assert_eq!(r.json()["rule"], "R-RENT");
    let r = s
        .call(
            "POST",
            "/api/v1/rent-credit",
            None,
            None,
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, 401);
}

/// The titolare's delegation endpoints: Idempotency-Key and PIN on mutations, a scope
/// consultazione lets the studio read but not cede (R-DELEGA-SCOPE), a past end date is
/// refused (R-DELEGA-END), the studio lists what it holds, and a revocation is immediate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_api_grant_list_revoke() {
    let s = Server::start().await;
    let family = s.login("famiglia").await;
    let studio = s.login("studio").await;
    let path = format!("/api/v1/parties/{FAMILY}/delegations");
    let grant = |pin: Option<&str>, until: &str| {
        let mut b = json!({ "username": "studio", "scope": "consultazione", "until": until });
        if let Some(p) = pin {
            b["pin"] = json!(p);
        }
        b.to_string()
    };
    let unkeyed = s
        .call(
            "POST",
            &path,
            Some(&family),
            None,
            Some(&grant(Some(PIN), "2024-12-31")),
        )
        .await;
    assert_eq!(unkeyed.status / 100, 4);
    assert_eq!(
        unkeyed.header("content-type"),
        Some("application/problem+json")
    );
    let r = s
        .call(
            "POST",
            &path,
            Some(&family),
            Some("d1"),
            Some(&grant(None, "2024-12-31")),
        )
        .await;
    assert_problem(&r, 403, "pin_required");
    let r = s
        .call(
            "POST",
            &path,
            Some(&family),
            Some("d2"),
            Some(&grant(Some(PIN), "2024-02-29")),
        )
        .await;
    assert_problem(&r, 422, "delegation_until_past");
    assert_eq!(r.json()["rule"], "R-DELEGA-END");
    let body = grant(Some(PIN), "2024-12-31");
    let r = s
        .call("POST", &path, Some(&family), Some("d3"), Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let first = r.json();
    assert_eq!(
        (&first["scope"], &first["until"], &first["replayed"]),
        (&json!("consultazione"), &json!("2024-12-31"), &json!(false))
    );
    let again = s
        .call("POST", &path, Some(&family), Some("d3"), Some(&body))
        .await
        .json();
    assert_eq!(again["replayed"], true);
    assert_eq!(again["operation_id"], first["operation_id"]);

    let held = s.get("/api/v1/me/delegations", &studio).await;
    assert_eq!(held.status, 200);
    let held = held.json();
    let of = |cf: &str| {
        held.as_array()
            .unwrap()
            .iter()
            .find(|h| h["party"]["cf"] == cf)
            .cloned()
            .unwrap()
    };
    assert_eq!(of(FAMILY)["scope"], "consultazione");
    assert_eq!(of(FAMILY)["until"], "2024-12-31");
    assert_eq!(of(COMPANY)["scope"], "disposizione");
    assert_eq!(of(COMPANY)["until"], serde_json::Value::Null);

    let monitoring = format!("/api/v1/parties/{FAMILY}/monitoring");
    assert_eq!(s.get(&monitoring, &studio).await.status, 200);
    let cession = json!({ "lines": [{ "rata": 1, "cessionario_cf": BANK }], "disclose_name": true, "pin": PIN });
    let r = s
        .call(
            "POST",
            &format!("/api/v1/parties/{FAMILY}/cessions"),
            Some(&studio),
            Some("c1"),
            Some(&cession.to_string()),
        )
        .await;
    assert_problem(&r, 403, "delegation_view_only");
    assert_eq!(r.json()["rule"], "R-DELEGA-SCOPE");
    // A delegate cannot pass the delegation on, nor read the titolare's list.
    let r = s
        .call("POST", &path, Some(&studio), Some("s1"), Some(&body))
        .await;
    assert_problem(&r, 403, "forbidden");
    assert_problem(&s.get(&path, &studio).await, 403, "forbidden");

    let listed = s.get(&path, &family).await;
    assert_eq!(listed.status, 200);
    let listed = listed.json();
    assert_eq!(listed[0]["state"], "active");
    assert_eq!(listed[0]["granted_by"], "famiglia");

    let revoke = format!("{path}/revoke");
    let r = s
        .call(
            "POST",
            &revoke,
            Some(&family),
            Some("r1"),
            Some(&json!({ "username": "studio", "pin": PIN }).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["scope"], serde_json::Value::Null);
    assert_problem(&s.get(&monitoring, &studio).await, 403, "forbidden");
    let listed = s.get(&path, &family).await.json();
    assert_eq!(listed[0]["state"], "revoked");
    assert_eq!(listed[0]["revoked_by"], "famiglia");
}

/// R-OPT-STOP over the API: `exception` is an object (code + typed facts); free text is a
/// malformed body, an unknown code or a late fact is a refusal naming the rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_opt_stop_api_takes_a_code_and_typed_facts() {
    let s = Server::start().await;
    let op = s.login("operatore").await;
    let body = |exception: serde_json::Value| {
        json!({
            "beneficiary_cf": FAMILY, "type_key": "superbonus", "expense_year": 2023,
            "origin": "sconto", "holder_cf": COMPANY, "total": 100_000, "exception": exception
        })
        .to_string()
    };
    let post = |key: &'static str, b: String| {
        let s = &s;
        let op = op.clone();
        async move {
            s.call(
                "POST",
                "/api/v1/communications",
                Some(&op),
                Some(key),
                Some(&b),
            )
            .await
        }
    };
    let r = post("e1", body(json!("CILAS presentata entro il 16/02/2023"))).await;
    assert_problem(&r, 422, "invalid");
    let r = post(
        "e2",
        body(json!({ "code": "SB_CILAS_NON_COND", "nota": "x" })),
    )
    .await;
    assert_problem(&r, 422, "invalid");
    let r = post("e3", body(json!({ "code": "NON_ESISTE" }))).await;
    assert_problem(&r, 422, "r_opt_stop_unknown");
    assert_eq!(r.json()["rule"], "R-OPT-STOP");
    let r = post(
        "e4",
        body(json!({ "code": "SB_CILAS_NON_COND", "cilas_filed_on": "2023-02-17" })),
    )
    .await;
    assert_problem(&r, 422, "r_opt_stop_fact_late");
    let r = post(
        "e5",
        body(json!({ "code": "SB_CILAS_NON_COND", "cilas_filed_on": "2023-02-16" })),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

/// The (method, path) pairs a router source file routes with `.route("path", get(..).post(..))`.
fn routes_in(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for piece in source.split(".route(").skip(1) {
        let Some(start) = piece.find('"') else {
            continue;
        };
        let Some(len) = piece[start + 1..].find('"') else {
            continue;
        };
        let path = &piece[start + 1..start + 1 + len];
        // The handlers: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let end = piece
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(piece.len(), |(i, _)| i);
        let handlers = &piece[start + 1 + len..end];
        for method in ["get", "post", "put", "delete", "patch"] {
            let routed = handlers.match_indices(&format!("{method}(")).any(|(i, _)| {
                i == 0 || !handlers[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if routed {
                out.push((method.to_string(), path.to_string()));
            }
        }
    }
    out
}

/// The other direction: every operation routed under `/api/v1` is documented, with its
/// method. The routes are read from the router's sources, where they are declared.
#[test]
fn every_routed_api_operation_is_documented() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let router = std::fs::read_to_string(src.join("router.rs")).unwrap();
    // The API's own router: from `let api` to where it is nested under /api/v1.
    let api_block = router
        .split("let api = Router::new()")
        .nth(1)
        .and_then(|rest| rest.split(".nest(").next())
        .unwrap();
    let mut routed = routes_in(api_block);
    for module in ["api/operator.rs", "api/credits.rs"] {
        routed.extend(routes_in(
            &std::fs::read_to_string(src.join(module)).unwrap(),
        ));
    }
    assert!(routed.len() > 40, "{routed:?}");
    let documented: Vec<(String, String)> = cessio_web::openapi::OPERATIONS
        .iter()
        .map(|o| (o.method.to_string(), o.path.to_string()))
        .collect();
    let missing: Vec<_> = routed.iter().filter(|r| !documented.contains(r)).collect();
    assert!(missing.is_empty(), "routed but not documented: {missing:?}");
}

/// Every object the document describes says what it holds: its properties, or what each
/// of its entries is. The document's own schema (`/openapi.json`) is the one exception:
/// it is described by the OpenAPI specification itself.
#[test]
fn no_schema_is_an_untyped_object() {
    fn walk(v: &serde_json::Value, at: &str, found: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                let is_object = match m.get("type") {
                    Some(serde_json::Value::String(t)) => t == "object",
                    Some(serde_json::Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                    _ => false,
                };
                let described = ["properties", "additionalProperties", "oneOf", "$ref"]
                    .iter()
                    .any(|k| m.contains_key(*k));
                if is_object && !described {
                    found.push(at.to_string());
                }
                for (k, child) in m {
                    walk(child, &format!("{at}/{k}"), found);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{at}/{i}"), found);
                }
            }
            _ => {}
        }
    }
    let mut doc = cessio_web::openapi::build();
    if let Some(paths) = doc["paths"].as_object_mut() {
        paths.remove("/openapi.json");
    }
    let mut found = Vec::new();
    walk(&doc, "", &mut found);
    assert!(found.is_empty(), "untyped objects: {found:#?}");
}

/// Every link of the document leads to a documented operation, names only parameters
/// that operation takes, and reads a field its source's response has.
#[test]
fn every_link_leads_to_an_operation_with_those_parameters() {
    let doc = cessio_web::openapi::build();
    let ops = cessio_web::openapi::OPERATIONS;
    for link in cessio_web::openapi::LINKS {
        let from = ops.iter().find(|o| o.id == link.from).unwrap();
        let to = ops
            .iter()
            .find(|o| o.id == link.to)
            .unwrap_or_else(|| panic!("{link:?}: no operation {}", link.to));
        let taken: Vec<String> = to
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .chain(
                cessio_web::openapi::query_parameters(to)
                    .into_iter()
                    .map(|(q, _, _)| q),
            )
            .collect();
        for (name, expr) in link.parameters {
            assert!(
                taken.iter().any(|t| t == name),
                "{link:?}: {} takes no {name}",
                link.to
            );
            if let Some(pointer) = expr.strip_prefix("$response.body#") {
                let schema = cessio_web::openapi::schema_name(from.response.unwrap()).unwrap();
                let schema = schema.as_str();
                let mut at = &doc["components"]["schemas"][schema];
                for part in pointer.trim_start_matches('/').split('/') {
                    at = &at["properties"][part];
                    if let Some(r) = at.get("$ref").and_then(|r| r.as_str()) {
                        at = &doc["components"]["schemas"]
                            [r.trim_start_matches("#/components/schemas/")];
                    }
                }
                assert!(!at.is_null(), "{link:?}: {schema} has no {pointer}");
            } else if let Some(field) = expr.strip_prefix("$request.body#/") {
                let request = cessio_web::openapi::schema_name(from.request.unwrap()).unwrap();
                let request = request.as_str();
                let at = &doc["components"]["schemas"][request]["properties"][field];
                assert!(!at.is_null(), "{link:?}: {request} has no {field}");
            } else {
                let name = expr.trim_start_matches("$request.path.");
                assert!(from.path.contains(&format!("{{{name}}}")), "{link:?}");
            }
        }
    }
}
