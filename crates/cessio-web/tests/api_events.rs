//! A party's events over HTTP: what a bank is told of a communication it received and of
//! its own answer, a cursor that keeps its place, a read that waits, and bad reads refused
//! as problems.

#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tell_the_bank_what_it_received_and_how_it_answered() {
    let s = Server::start().await;
    let b = s.login("banca").await;
    let path = format!("/api/v1/parties/{BANK}/events");
    let end = s.get(&format!("{path}?after=end"), &b).await;
    assert_eq!(end.status, 200, "{}", end.text());
    assert_eq!(end.json()["events"], json!([]));
    let cursor = end.json()["after"].as_str().unwrap().to_string();

    // A communication arrives while the bank waits for it.
    let waiting = {
        let (addr, b, cursor, path) = (s.addr, b.clone(), cursor.clone(), path.clone());
        tokio::spawn(async move {
            cessio_test_support::http::Request::new(
                "GET",
                &format!("{path}?after={cursor}&wait=20"),
            )
            .header_if("Cookie", Some(&b))
            .send(addr)
            .await
            .unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let credit = superbonus_to(&s.app, "ev", BANK, 400_000).await;
    let r = waiting.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_conforms("EventPage", &r.json());
    let events = r.json()["events"].as_array().unwrap().clone();
    assert!(!events.is_empty());
    for e in &events {
        assert_eq!(e["type"], "communication_received", "{e}");
        assert_eq!(e["protocol"], credit.protocol.as_str());
        assert_eq!(e["cedente"], FAMILY);
        assert_eq!(e["cessionario"], BANK);
    }
    // The bank accepts by list; its feed tells it, after the cursor it holds.
    let held = r.json()["after"].as_str().unwrap().to_string();
    let body = json!({ "accept": true, "codes": [credit.protocol], "pin": PIN }).to_string();
    let answered = s
        .call(
            "POST",
            &format!("/api/v1/parties/{BANK}/incoming/answer-codes"),
            Some(&b),
            Some("ev-answer"),
            Some(&body),
        )
        .await;
    assert_eq!(answered.status, 200, "{}", answered.text());
    let r = s.get(&format!("{path}?after={held}&limit=1"), &b).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let page = r.json();
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["type"], "communication_accepted");
    assert_eq!(page["events"][0]["transfer"], events[0]["transfer"]);

    // The family (the beneficiary) reads its side; another party may not read the bank's.
    let f = s.login("famiglia").await;
    let r = s.get(&format!("/api/v1/parties/{FAMILY}/events"), &f).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let types: Vec<String> = r.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert!(
        types.contains(&"communication_sent".to_string()),
        "{types:?}"
    );
    assert!(
        types.contains(&"communication_accepted".to_string()),
        "{types:?}"
    );
    let r = s.get(&path, &f).await;
    assert_eq!(r.status, 403, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_bad_reads_are_problems() {
    let s = Server::start().await;
    let b = s.login("banca").await;
    let path = format!("/api/v1/parties/{BANK}/events");
    for (query, code) in [
        ("after=non-un-cursore!", "cursor_invalid"),
        ("limit=0", "invalid"),
        ("limit=1001", "invalid"),
        ("wait=31", "invalid"),
        ("wait=-1", "invalid_query"),
        ("cursor=abc", "invalid_query"),
    ] {
        let r = s.get(&format!("{path}?{query}"), &b).await;
        assert_eq!(r.status, 422, "{query}: {}", r.text());
        assert_eq!(r.json()["code"], code, "{query}: {}", r.text());
    }
    let r = s.call("GET", &path, None, None, None).await;
    assert_eq!(r.status, 401, "{}", r.text());
}
