//! Webhooks end to end: a bank subscribes an address, a communication arrives, the
//! receiver fails once and sees the failure counted, then takes the same events signed
//! with the subscription's secret; nothing is sent when there is nothing new; a revoked
//! address gets nothing; bad requests are problems.

#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use cessio_core::time::{Clock, FixedClock};
use cessio_web::webhooks::{Deliverer, signature};
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the receiver was sent: its headers (lower-case names) and body.
type Received = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

/// A receiver on 127.0.0.1 answering every POST with the status `answer` holds.
async fn receiver() -> (String, Received, Arc<AtomicU16>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cessio", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let answer = Arc::new(AtomicU16::new(200));
    let (got, status) = (received.clone(), answer.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, length) = loop {
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the request ended early");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    break (end + 4, length);
                }
            };
            while buf.len() < head_end + length {
                let n = stream.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                .collect();
            got.lock()
                .unwrap()
                .push((headers, buf[head_end..head_end + length].to_vec()));
            let code = status.load(Ordering::SeqCst);
            let reply =
                format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    (url, received, answer)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_is_retried_then_delivered_signed_and_revoked() {
    let s = Server::start().await;
    let b = s.login("banca").await;
    let path = format!("/api/v1/parties/{BANK}/webhooks");
    let (url, received, answer) = receiver().await;
    let r = s
        .call(
            "POST",
            &path,
            Some(&b),
            None,
            Some(&json!({ "url": url }).to_string()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_conforms("WebhookCreated", &r.json());
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    let id = r.json()["webhook"]["id"].as_i64().unwrap();

    // The deliverer's own clock: retries are timing, moved by hand here.
    let clock = FixedClock::at_rome(2024, 3, 1, 12, 0);
    let deliverer = Deliverer::new(s.app.clone(), Arc::new(clock.clone())).unwrap();
    // Subscribed from now on: the communication of the seed is not delivered.
    assert_eq!(deliverer.deliver_due().await.unwrap(), 1);
    assert!(received.lock().unwrap().is_empty());

    let credit = superbonus_to(&s.app, "wh", BANK, 400_000).await;
    clock.advance(chrono::Duration::seconds(2));
    answer.store(500, Ordering::SeqCst);
    assert_eq!(deliverer.deliver_due().await.unwrap(), 1);
    let r = s.get(&path, &b).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_conforms("WebhookList", &r.json());
    let hook = &r.json()["webhooks"][0];
    assert_eq!(
        (hook["failures"].as_i64(), hook["last_status"].as_i64()),
        (Some(1), Some(500))
    );
    assert_eq!(hook["delivered"], 0);
    // Not due again before its wait.
    assert_eq!(deliverer.deliver_due().await.unwrap(), 0);

    clock.advance(chrono::Duration::seconds(2));
    answer.store(204, Ordering::SeqCst);
    assert_eq!(deliverer.deliver_due().await.unwrap(), 1);
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    // The same events both times, as the same delivery, signed with the secret.
    assert_eq!(got[0].1, got[1].1);
    assert_eq!(
        header(&got[0].0, "cessio-delivery"),
        header(&got[1].0, "cessio-delivery")
    );
    let (headers, body) = &got[1];
    let sent = header(headers, "cessio-signature");
    let t: i64 = sent
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(t, clock.now().timestamp());
    assert_eq!(sent, signature(&secret, t, body));
    assert_ne!(sent, signature("whsec_altro", t, body));
    assert_eq!(header(headers, "cessio-webhook"), id.to_string());
    let delivery: serde_json::Value = serde_json::from_slice(body).unwrap();
    let events = delivery["events"].as_array().unwrap();
    assert!(!events.is_empty());
    for e in events {
        assert_eq!(e["type"], "communication_received", "{e}");
        assert_eq!(e["protocol"], credit.protocol.as_str());
    }
    let r = s.get(&path, &b).await;
    let hook = &r.json()["webhooks"][0];
    assert_eq!(hook["failures"], 0);
    assert_eq!(hook["last_status"], 204);
    assert_eq!(hook["delivered"].as_u64(), Some(events.len() as u64));
    assert_eq!(hook["after"], delivery["after"]);

    // Nothing new: due, but nothing is posted.
    assert_eq!(deliverer.deliver_due().await.unwrap(), 1);
    assert_eq!(received.lock().unwrap().len(), 2);

    // Revoked: never due again, whatever happens to the bank.
    let r = s
        .call("DELETE", &format!("{path}/{id}"), Some(&b), None, None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = s
        .call("DELETE", &format!("{path}/{id}"), Some(&b), None, None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    superbonus_to(&s.app, "wh2", BANK, 400_000).await;
    clock.advance(chrono::Duration::seconds(10));
    assert_eq!(deliverer.deliver_due().await.unwrap(), 0);
    assert_eq!(received.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_requests_are_checked() {
    let s = Server::start().await;
    let b = s.login("banca").await;
    let path = format!("/api/v1/parties/{BANK}/webhooks");
    for body in [
        json!({ "url": "http://banca.example/hook" }),
        json!({ "url": "https://user:pw@banca.example/" }),
        json!({ "url": "non un indirizzo" }),
    ] {
        let r = s
            .call("POST", &path, Some(&b), None, Some(&body.to_string()))
            .await;
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        assert_eq!(r.json()["code"], "invalid", "{}", r.text());
    }
    let r = s
        .call(
            "POST",
            &path,
            Some(&b),
            None,
            Some(r#"{"indirizzo":"https://x.example"}"#),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    for n in 0..10 {
        let body = json!({ "url": format!("https://banca.example/hook/{n}") }).to_string();
        let r = s.call("POST", &path, Some(&b), None, Some(&body)).await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let body = json!({ "url": "https://banca.example/hook/11" }).to_string();
    let r = s.call("POST", &path, Some(&b), None, Some(&body)).await;
    assert_eq!(r.status, 409, "{}", r.text());
    // Another party's user may neither see nor end the bank's subscriptions.
    let f = s.login("famiglia").await;
    assert_eq!(s.get(&path, &f).await.status, 403);
    let r = s
        .call("DELETE", &format!("{path}/1"), Some(&f), None, None)
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = s
        .call("DELETE", &format!("{path}/abc"), Some(&b), None, None)
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    // The secret is never listed.
    let listed = s.get(&path, &b).await.text();
    assert!(!listed.contains("whsec_"), "{listed}");
}
