//! F3 by a list of protocols or codici univoci over HTTP: each row with its outcome, the
//! answerable rows in one operation, a retry with the same Idempotency-Key applying
//! nothing twice, and bad requests refused as problems before anything is answered.

#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

use serde_json::json;
use support::*;

/// A Superbonus communication from the family to the bank (four rate, pending); its
/// protocol.
async fn bank_receives(s: &Server, key: &str) -> String {
    superbonus_to(&s.app, key, BANK, 400_000).await.protocol
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f3_answer_codes_reports_each_row_and_applies_nothing_twice() {
    let s = Server::start().await;
    let (first, second) = (bank_receives(&s, "a").await, bank_receives(&s, "b").await);
    let b = s.login("banca").await;
    let path = format!("/api/v1/parties/{BANK}/incoming/answer-codes");
    let body = json!({ "accept": true, "codes": [first, "NON-ESISTE"], "pin": PIN }).to_string();
    let r = s
        .call("POST", &path, Some(&b), Some("bulk-1"), Some(&body))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(
        (j["operations"].as_i64(), j["amount"].as_i64()),
        (Some(4), Some(400_000))
    );
    assert_eq!(j["rows"][0]["operations"], 4);
    assert_eq!(j["rows"][0]["error"], serde_json::Value::Null);
    assert_eq!(j["rows"][1]["error"]["code"], "not_awaiting");
    // The same request again: the first answer's totals, nothing applied twice.
    let again = s
        .call("POST", &path, Some(&b), Some("bulk-1"), Some(&body))
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["replayed"], true);
    assert_eq!(again.json()["operation_id"], j["operation_id"]);
    // The second communication still waits, and bad requests leave it so.
    let refuse = json!({ "accept": false, "codes": [second], "pin": PIN }).to_string();
    for (key, body, status, code) in [
        (None, refuse.clone(), 400, "idempotency_key_required"),
        (
            Some("bulk-2"),
            json!({ "accept": false, "codes": [second], "pin": "000000" }).to_string(),
            403,
            "pin_wrong",
        ),
        (
            Some("bulk-3"),
            json!({ "accept": false, "codes": [], "pin": PIN }).to_string(),
            422,
            "invalid",
        ),
        (
            Some("bulk-4"),
            json!({ "accept": false, "protocolli": [second], "pin": PIN }).to_string(),
            422,
            "invalid_json",
        ),
    ] {
        let r = s.call("POST", &path, Some(&b), key, Some(&body)).await;
        assert_eq!(r.status, status, "{}", r.text());
        assert_eq!(r.json()["code"], code, "{}", r.text());
    }
    let r = s
        .call("POST", &path, Some(&b), Some("bulk-5"), Some(&refuse))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (
            r.json()["operations"].as_i64(),
            r.json()["accepted"].as_bool()
        ),
        (Some(4), Some(false))
    );
    // Another party's user may not answer for the bank.
    let other = s.login("altro").await;
    let r = s
        .call("POST", &path, Some(&other), Some("bulk-6"), Some(&refuse))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
}
