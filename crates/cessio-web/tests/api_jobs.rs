//! Bulk jobs over HTTP: a file of communications and a list of answers taken at once
//! (`202`, `Location`), followed to their end, their rows read page by page with `Link`,
//! every body as the OpenAPI document says; bad submissions refused before anything is
//! recorded, and a job shown only to its submitter.

#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

use serde_json::json;
use support::*;

/// Every row of a job, page by page, following `Link`.
async fn rows(s: &Server, id: i64, cookie: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut next = Some(format!("/api/v1/jobs/{id}/rows?limit=2"));
    while let Some(path) = next {
        let page = s.get(&path, cookie).await;
        assert_eq!(page.status, 200, "{}", page.text());
        assert_conforms("BulkJobRows", &page.json());
        out.extend(page.json().as_array().unwrap().iter().cloned());
        next = page.header("link").map(|l| {
            l.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_string()
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f8_import_job_is_taken_at_once_and_reports_every_row() {
    let s = Server::start().await;
    let op = s.login("operatore").await;
    let csv = format!(
        "cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione;riferimento\n\
         {FAMILY};ecobonus;2021;sconto;{COMPANY};100,00;10/03/2022;A\n\
         {FAMILY};ecobonus;2021;sconto;{COMPANY};-5,00;10/03/2022;B\n\
         {FAMILY};ecobonus;2021;sconto;{COMPANY};300,00;10/03/2022;C\n\
         {FAMILY};ecobonus;2021;sconto;NON-ESISTE;300,00;10/03/2022;D\n\
         {FAMILY};ecobonus;2021;sconto;{COMPANY};500,00;10/03/2022;E\n"
    );
    let submit = || {
        s.send(
            Request::post("/api/v1/jobs/import")
                .header("Cookie", &op)
                .body("text/csv", csv.clone()),
        )
    };
    let r = submit().await;
    assert_eq!(r.status, 202, "{}", r.text());
    let job = r.json();
    assert_conforms("BulkJob", &job);
    let id = job["id"].as_i64().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/jobs/{id}").as_str())
    );
    assert_eq!(
        (job["kind"].as_str(), job["total_rows"].as_i64()),
        (Some("import"), Some(5))
    );
    let done = s.job_done(id, &op).await;
    assert_conforms("BulkJob", &done);
    assert_eq!(
        (
            done["state"].as_str(),
            done["applied"].as_i64(),
            done["refused"].as_i64()
        ),
        (Some("done"), Some(3), Some(2))
    );
    let all = rows(&s, id, &op).await;
    let lines: Vec<i64> = all.iter().map(|r| r["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6]);
    assert!(all[1]["code"].is_string() && all[3]["code"].is_string());
    assert!(all[0]["protocol"].is_string());

    // The same file through the waiting endpoint: a new job, every row found registered.
    let r = s
        .send(
            Request::post("/api/v1/communications/bulk")
                .header("Cookie", &op)
                .body("text/csv", csv.clone()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_conforms("ImportReport", &r.json());
    assert_eq!(
        (
            r.json()["registered"].as_i64(),
            r.json()["already_registered"].as_i64()
        ),
        (Some(0), Some(3))
    );

    // A file that cannot be read, and an unknown or malformed job: problems.
    let bad = s
        .send(
            Request::post("/api/v1/jobs/import")
                .header("Cookie", &op)
                .body("text/csv", "a;b\n1;2\n"),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text());
    assert_eq!(s.get("/api/v1/jobs/999999", &op).await.status, 404);
    assert_eq!(s.get("/api/v1/jobs/x", &op).await.status, 422);
    assert_eq!(s.get("/api/v1/jobs/0/rows", &op).await.status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f3_answer_job_answers_a_list_and_is_shown_only_to_its_submitter() {
    let s = Server::start().await;
    let first = superbonus_to(&s.app, "a", BANK, 400_000).await.protocol;
    let second = superbonus_to(&s.app, "b", BANK, 100_000).await;
    let b = s.login("banca").await;
    let path = format!("/api/v1/parties/{BANK}/incoming/answer-jobs");
    // Refused before anything is recorded: a wrong PIN, an empty list, unknown fields.
    for (body, status, code) in [
        (
            json!({ "accept": true, "codes": [first], "pin": "000000" }),
            403,
            "pin_wrong",
        ),
        (
            json!({ "accept": true, "codes": [], "pin": PIN }),
            422,
            "invalid",
        ),
        (
            json!({ "accept": true, "codes": [first], "pin": PIN, "x": 1 }),
            422,
            "invalid_json",
        ),
    ] {
        let r = s
            .call("POST", &path, Some(&b), None, Some(&body.to_string()))
            .await;
        assert_eq!(
            (r.status, r.json()["code"].as_str()),
            (status, Some(code)),
            "{}",
            r.text()
        );
    }
    let body = json!({
        "accept": true,
        "codes": [first, "NON-ESISTE", second.rate[0].codice_univoco],
        "pin": PIN
    });
    let r = s
        .call("POST", &path, Some(&b), None, Some(&body.to_string()))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_conforms("BulkJob", &r.json());
    let id = r.json()["id"].as_i64().unwrap();
    let done = s.job_done(id, &b).await;
    assert_eq!(
        (done["applied"].as_i64(), done["refused"].as_i64()),
        (Some(2), Some(1))
    );
    let all = rows(&s, id, &b).await;
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["operations"], 4);
    assert_eq!(all[1]["error"]["code"], "not_awaiting");
    let operation = all[0]["operation_id"].as_i64().unwrap();
    assert_eq!(all[2]["operation_id"].as_i64(), Some(operation));
    let pdf = s
        .get(
            &format!("/api/v1/parties/{BANK}/operations/{operation}/receipt.pdf"),
            &b,
        )
        .await;
    assert_eq!(pdf.status, 200);
    assert!(pdf.body.starts_with(b"%PDF"));
    // Another user is told the job is not there.
    let family = s.login("famiglia").await;
    assert_eq!(
        s.get(&format!("/api/v1/jobs/{id}"), &family).await.status,
        404
    );
    assert_eq!(
        s.get(&format!("/api/v1/jobs/{id}/rows"), &family)
            .await
            .status,
        404
    );
}
