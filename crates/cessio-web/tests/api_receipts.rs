//! The PDF receipt of an operation over the API and from the pages: what it shows (protocol,
//! codice univoco, amounts, the log's position and hash), who may have it, and what a
//! malformed or unknown id gets.

#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

use serde_json::{Value, json};
use support::*;

fn assert_problem(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["code"], code, "{}", r.json());
}

fn has(body: &[u8], s: &str) -> bool {
    body.windows(s.len()).any(|w| w == s.as_bytes())
}

/// The company accepts its communication and cedes its first cedible rata to the bank:
/// the cession's receipt and the rata ceded.
async fn cession(s: &Server, c: &str) -> (Value, Value) {
    let r = s
        .call(
            "POST",
            &format!("/api/v1/parties/{COMPANY}/incoming/answer"),
            Some(c),
            Some("accept-1"),
            Some(&json!({ "accept": true, "pin": PIN }).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let holding = s
        .get(&format!("/api/v1/parties/{COMPANY}/cedible"), c)
        .await
        .json()[0]
        .clone();
    let body = json!({
        "lines": [{ "rata": holding["rata"], "cessionario_cf": BANK }],
        "disclose_name": true, "pin": PIN
    });
    let r = s
        .call(
            "POST",
            &format!("/api/v1/parties/{COMPANY}/cessions"),
            Some(c),
            Some("cede-1"),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    (r.json(), holding)
}

fn receipt_path(cf: &str, id: &str) -> String {
    format!("/api/v1/parties/{cf}/operations/{id}/receipt.pdf")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_pdf_shows_protocol_codice_univoco_amounts_and_log_entry() {
    let s = Server::start().await;
    let c = s.login("impresa").await;
    let (receipt, holding) = cession(&s, &c).await;
    let id = receipt["operation_id"].as_i64().unwrap();
    let r = s.get(&receipt_path(COMPANY, &id.to_string()), &c).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/pdf"));
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains(&format!("ricevuta-operazione-{id}.pdf"))
    );
    assert!(r.body.starts_with(b"%PDF-"));
    let entry = s.app.store().operation_entry(id).await.unwrap().unwrap();
    let amount = format!(
        "{}",
        cessio_core::money::Cents::new(holding["max_cedibile"].as_i64().unwrap())
    )
    .replace('€', "");
    for text in [
        "Protocollo dell'operazione:".to_string(),
        id.to_string(),
        holding["codice_univoco"].as_str().unwrap().to_string(),
        holding["protocol"].as_str().unwrap().to_string(),
        amount.trim_end().to_string(),
        "Cessione del credito".into(),
        COMPANY.into(),
        BANK.into(),
        "01/03/2024 alle 10:00:00".into(),
        entry.log_seq.to_string(),
        entry.log_hash.clone(),
    ] {
        assert!(has(&r.body, &text), "{text} missing from the PDF");
    }
    // The same operation, the same bytes: nothing in it depends on when it is printed.
    s.clock.advance(chrono::Duration::days(3));
    let again = s.get(&receipt_path(COMPANY, &id.to_string()), &c).await;
    assert_eq!(again.body, r.body);

    // The cessionario has it too, and so does the operator; the bank's answer has its own.
    let bank = s.login("banca").await;
    let r = s.get(&receipt_path(BANK, &id.to_string()), &bank).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let operator = s.login("operatore").await;
    let r = s
        .get(&receipt_path(COMPANY, &id.to_string()), &operator)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_of_another_partys_operation_is_not_found_and_bad_ids_are_problems() {
    let s = Server::start().await;
    let c = s.login("impresa").await;
    let (receipt, _) = cession(&s, &c).await;
    let id = receipt["operation_id"].as_i64().unwrap().to_string();
    // Another party's user, through its own party: the same 404 as an unknown operation.
    let other = s.login("altro").await;
    let foreign = s.get(&receipt_path(OTHER, &id), &other).await;
    assert_problem(&foreign, 404, "not_found");
    let unknown = s.get(&receipt_path(OTHER, "999999"), &other).await;
    assert_problem(&unknown, 404, "not_found");
    assert_eq!(foreign.json()["detail"], unknown.json()["detail"]);
    // Through the company it may not see: refused as any party it may not see.
    assert_problem(
        &s.get(&receipt_path(COMPANY, &id), &other).await,
        403,
        "forbidden",
    );
    // Malformed ids: a clear problem, naming the field.
    for bad in ["abc", "0", "-3", "1.5", "99999999999999999999999"] {
        let r = s.get(&receipt_path(COMPANY, bad), &c).await;
        assert_problem(&r, 422, "invalid");
        assert!(r.json()["detail"].as_str().unwrap().contains("id"));
    }
    // Not signed in.
    assert_problem(
        &s.call("GET", &receipt_path(COMPANY, &id), None, None, None)
            .await,
        401,
        "unauthenticated",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_by_list_has_a_receipt_for_both_parties() {
    let s = Server::start().await;
    let c = s.login("impresa").await;
    let (cession, holding) = cession(&s, &c).await;
    let bank = s.login("banca").await;
    let code = holding["codice_univoco"].as_str().unwrap();
    s.clock.advance(chrono::Duration::days(10));
    let r = s
        .call(
            "POST",
            &format!("/api/v1/parties/{BANK}/incoming/answer-codes"),
            Some(&bank),
            Some("list-1"),
            Some(&json!({ "accept": true, "codes": [code], "pin": PIN }).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json()["operation_id"].as_i64().unwrap();
    assert_ne!(answer, cession["operation_id"].as_i64().unwrap());
    let pdf = s.get(&receipt_path(BANK, &answer.to_string()), &bank).await;
    assert_eq!(pdf.status, 200, "{}", pdf.text());
    for text in ["Accettazione", code, COMPANY, BANK] {
        assert!(has(&pdf.body, text), "{text} missing");
    }
    // The cedente has the answer's receipt too: the answer names it.
    let r = s.get(&receipt_path(COMPANY, &answer.to_string()), &c).await;
    assert_eq!(r.status, 200, "{}", r.text());
}
