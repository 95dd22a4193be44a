//! `examples/integrator.py`, an integrator's day on the API, run as an integrator would
//! against a demo register: it pages through what awaits the bank (following `Link`),
//! answers it in one request, reads the answer's events from the feed, saves the answer's
//! PDF receipt, and a second run finds nothing left and applies nothing.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::process::Command;

use cessio_test_support::http::Request;

mod common;

const BANCA: &str = "03189950961";
const PASSWORD: &str = "cessio-demo-2024";
const PIN: &str = "246810";

fn run_example(url: &str, receipts: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/integrator.py");
    let out = Command::new("python3")
        .arg(script)
        .arg("--receipt-dir")
        .arg(receipts)
        .args(["--base", url, "--username", "banca", "--password", PASSWORD])
        .args([
            "--pin", PIN, "--party", BANCA, "--type", "ecobonus", "--limit", "2",
        ])
        .arg("--accept")
        .output()
        .expect("python3 runs the example");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_client_pages_answers_by_list_and_applies_nothing_twice() {
    let db = std::env::temp_dir().join(format!("cessio-example-{}.db", std::process::id()));
    let server = common::DemoServer::start(&db);
    let url = server.url.clone();
    let addr = url.trim_start_matches("http://").parse().unwrap();

    // Five Ecobonus communications (ten rate each) for the bank, loaded by the operator.
    let login = Request::post("/api/v1/session")
        .json(&format!(
            r#"{{"username":"operatore","password":"{PASSWORD}"}}"#
        ))
        .send(addr)
        .await
        .unwrap();
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let mut csv = String::from(
        "cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione;riferimento\r\n",
    );
    for i in 0..5 {
        csv.push_str(&format!(
            "RSSMRA45C12F205C;ecobonus;2021;sconto;{BANCA};1.000,00;10/03/2022;ESEMPIO{i}\r\n"
        ));
    }
    let import = Request::post("/api/v1/communications/bulk")
        .header("Cookie", &cookie)
        .body("text/csv", csv)
        .send(addr)
        .await
        .unwrap();
    assert_eq!(import.status, 200, "{}", import.text());
    assert_eq!(import.json()["registered"], 5, "{}", import.text());

    let receipts =
        std::env::temp_dir().join(format!("cessio-example-receipts-{}", std::process::id()));
    std::fs::create_dir_all(&receipts).unwrap();
    let first = run_example(&url, &receipts);
    assert!(
        first.contains("in attesa di risposta: 50 operazioni in 25 pagine"),
        "{first}"
    );
    assert!(
        first.contains("accettate: 50 operazioni, 5000.00 euro"),
        "{first}"
    );
    assert!(
        first.contains("eventi: 50 risposte registrate (accepted)"),
        "{first}"
    );
    // The answer's receipt, saved where the bank asked: a PDF naming the operation.
    let saved: Vec<_> = std::fs::read_dir(&receipts).unwrap().flatten().collect();
    assert_eq!(saved.len(), 1, "{first}");
    let pdf = std::fs::read(saved[0].path()).unwrap();
    assert!(pdf.starts_with(b"%PDF-"), "{first}");
    assert!(first.contains("application/pdf"), "{first}");
    let _ = std::fs::remove_dir_all(&receipts);
    let second = run_example(&url, &receipts);
    assert!(
        second.contains("in attesa di risposta: 0 operazioni"),
        "{second}"
    );
    let _ = std::fs::remove_file(&db);
}
