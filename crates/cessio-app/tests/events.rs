//! A party's events on both backends: each side told of a communication, a cession and
//! their answers, suspensions told once, a reader that keeps its place, a read that waits
//! for the first event, and bad reads refused.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

#[macro_use]
mod support;

use std::time::Duration;

use cessio_app::{Event, EventKind, EventPage, EventsFrom, Principal};
use cessio_core::suspension::SuspensionEnd;
use cessio_store::{Party, PartyKind};
use support::*;

backends!(
    events_tell_each_side_of_a_communication_a_cession_and_their_answers,
    events_tell_a_suspension_its_release_and_a_void_once,
    events_read_after_a_cursor_or_from_the_end_keep_their_place,
    events_wait_for_the_first_event_when_asked,
    events_bad_reads_are_refused_and_other_parties_are_not_shown,
);

async fn read(t: &TestApp, who: &Principal, party: &Party, from: &EventsFrom) -> EventPage {
    t.app
        .events(who, party.id, from, None, Duration::ZERO)
        .await
        .unwrap()
}

fn kinds(events: &[Event]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

/// A and B, A holding a tracciabile superbonus (rate of 1.000,00 €); its rate in their
/// window.
async fn holders(t: &TestApp) -> (Holder, Holder, Vec<i64>) {
    let a = t.holder(1, PartyKind::Company).await;
    let b = t.holder(2, PartyKind::Company).await;
    let credit = t
        .holding(&a.party, &a.user, "superbonus", 400_000, tracciabile_day())
        .await;
    (a, b, credit.rate.iter().map(|r| r.id).collect())
}

async fn two(t: &TestApp) -> (Holder, Holder, i64) {
    let (a, b, rate) = holders(t).await;
    (a, b, rate[0])
}

async fn events_tell_each_side_of_a_communication_a_cession_and_their_answers(t: TestApp) {
    let (a, b, rata) = two(&t).await;
    let first = read(&t, &a.user, &a.party, &EventsFrom::Start).await;
    // The communication's rate, received and then accepted.
    let k = kinds(&first.events);
    let n = k.len() / 2;
    assert!(n >= 1 && k.len() == 2 * n, "{k:?}");
    assert!(
        k[..n]
            .iter()
            .all(|k| *k == EventKind::CommunicationReceived)
    );
    assert!(
        k[n..]
            .iter()
            .all(|k| *k == EventKind::CommunicationAccepted)
    );
    let received = &first.events[0];
    assert_eq!(received.cessionario.as_deref(), Some(a.party.cf.as_str()));
    assert!(received.cedente.is_some());
    assert_eq!(received.id, format!("t{}", received.transfer));
    // An acceptance refers to the movement it answers, with its amount.
    let accepted = &first.events[n];
    assert_eq!(accepted.transfer, received.transfer);
    assert_eq!(accepted.amount, received.amount);
    assert_eq!(accepted.protocol, received.protocol);
    assert_ne!(accepted.id, received.id);

    let transfer = t
        .cede(&a.user, &a.party, &[line(rata, &b.party, None)])
        .await
        .unwrap()
        .transfers[0];
    t.set_rome(2024, 3, 15, 10, 0);
    t.answer(&b.user, &b.party, by_cedente(&a.party), false)
        .await
        .unwrap();
    let of_a = read(
        &t,
        &a.user,
        &a.party,
        &EventsFrom::Cursor(first.after.clone()),
    )
    .await;
    assert_eq!(
        kinds(&of_a.events),
        vec![EventKind::CessionSent, EventKind::CessionRefused]
    );
    let of_b = read(&t, &b.user, &b.party, &EventsFrom::Start).await;
    assert_eq!(
        kinds(&of_b.events),
        vec![EventKind::CessionReceived, EventKind::CessionRefused]
    );
    for e in of_a.events.iter().chain(&of_b.events) {
        assert_eq!(e.transfer, transfer, "{e:?}");
        assert_eq!(e.cedente.as_deref(), Some(a.party.cf.as_str()));
        assert_eq!(e.cessionario.as_deref(), Some(b.party.cf.as_str()));
        assert_eq!(e.amount, cents(100_000));
    }
    // Both sides name the refusal with the same id.
    assert_eq!(of_a.events[1].id, of_b.events[1].id);
    assert_eq!(of_a.events[1].at, t.app.now());
    t.verify_clean().await;
}

async fn events_tell_a_suspension_its_release_and_a_void_once(t: TestApp) {
    let (a, b, rate) = holders(&t).await;
    let start = read(&t, &a.user, &a.party, &EventsFrom::End).await;
    let released = t
        .cede(&a.user, &a.party, &[line(rate[0], &b.party, None)])
        .await
        .unwrap()
        .transfers[0];
    let voided = t
        .cede(&a.user, &a.party, &[line(rate[1], &b.party, None)])
        .await
        .unwrap()
        .transfers[0];
    // Events from the ledger and from the operator's register are merged by the time
    // they were registered: each step a minute after the one before.
    let minute = || t.clock.advance(chrono::Duration::minutes(1));
    minute();
    let s = t
        .app
        .suspend(&t.op, released, 30, "verifica")
        .await
        .unwrap();
    minute();
    t.app.suspend(&t.op, voided, 30, "verifica").await.unwrap();
    minute();
    t.app
        .end_suspension(&t.op, &t.key(), released, SuspensionEnd::Released)
        .await
        .unwrap();
    minute();
    t.app
        .end_suspension(&t.op, &t.key(), voided, SuspensionEnd::Voided)
        .await
        .unwrap();
    for (who, party) in [(&a.user, &a.party), (&b.user, &b.party)] {
        let page = read(&t, who, party, &EventsFrom::Cursor(start.after.clone())).await;
        let seen: Vec<(EventKind, i64)> = page
            .events
            .iter()
            .filter(|e| e.kind != EventKind::CessionReceived)
            .map(|e| (e.kind, e.transfer))
            .collect();
        let sent = if party.id == a.party.id {
            vec![
                (EventKind::CessionSent, released),
                (EventKind::CessionSent, voided),
            ]
        } else {
            Vec::new()
        };
        let mut expected = sent;
        expected.extend([
            (EventKind::CessionSuspended, released),
            (EventKind::CessionSuspended, voided),
            (EventKind::CessionReleased, released),
            (EventKind::CessionVoided, voided),
        ]);
        assert_eq!(seen, expected, "{:?}", page.events);
        let suspension = page
            .events
            .iter()
            .find(|e| e.kind == EventKind::CessionSuspended)
            .unwrap();
        assert_eq!(suspension.suspended_until, Some(s.until));
        assert!(suspension.id.starts_with('s'), "{suspension:?}");
    }
    t.verify_clean().await;
}

async fn events_read_after_a_cursor_or_from_the_end_keep_their_place(t: TestApp) {
    let (a, b, rata) = two(&t).await;
    let all = read(&t, &a.user, &a.party, &EventsFrom::Start).await;
    // One at a time: the same events, in the same order.
    let mut one_by_one = Vec::new();
    let mut from = EventsFrom::Start;
    loop {
        let page = t
            .app
            .events(&a.user, a.party.id, &from, Some(1), Duration::ZERO)
            .await
            .unwrap();
        if page.events.is_empty() {
            // A read that found nothing keeps the reader's place.
            assert_eq!(EventsFrom::Cursor(page.after.clone()), from);
            break;
        }
        one_by_one.extend(page.events);
        from = EventsFrom::Cursor(page.after);
    }
    assert_eq!(one_by_one, all.events);
    let end = read(&t, &a.user, &a.party, &EventsFrom::End).await;
    assert!(end.events.is_empty());
    assert_eq!(end.after, all.after);
    t.cede(&a.user, &a.party, &[line(rata, &b.party, None)])
        .await
        .unwrap();
    let next = read(&t, &a.user, &a.party, &EventsFrom::Cursor(end.after)).await;
    assert_eq!(kinds(&next.events), vec![EventKind::CessionSent]);
}

async fn events_wait_for_the_first_event_when_asked(t: TestApp) {
    let (a, b, rata) = two(&t).await;
    let end = read(&t, &b.user, &b.party, &EventsFrom::End).await;
    // Nothing comes: the read returns empty after its wait, with the same cursor.
    let started = std::time::Instant::now();
    let empty = t
        .app
        .events(
            &b.user,
            b.party.id,
            &EventsFrom::Cursor(end.after.clone()),
            None,
            Duration::from_millis(600),
        )
        .await
        .unwrap();
    assert!(empty.events.is_empty());
    assert_eq!(empty.after, end.after);
    assert!(started.elapsed() >= Duration::from_millis(600));
    // A cession arrives while the read waits: it returns it, long before its wait ends.
    let waiting = {
        let app = t.app.clone();
        let (user, party) = (b.user.clone(), b.party.id);
        let from = EventsFrom::Cursor(end.after.clone());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let page = app
                .events(&user, party, &from, None, Duration::from_secs(20))
                .await
                .unwrap();
            (page, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.cede(&a.user, &a.party, &[line(rata, &b.party, None)])
        .await
        .unwrap();
    let (page, waited) = waiting.await.unwrap();
    assert_eq!(kinds(&page.events), vec![EventKind::CessionReceived]);
    assert!(waited < Duration::from_secs(10), "{waited:?}");
}

async fn events_bad_reads_are_refused_and_other_parties_are_not_shown(t: TestApp) {
    let (a, b, _) = two(&t).await;
    let read_with = |from: EventsFrom, limit: Option<usize>, wait: Duration| {
        let (app, user, party) = (t.app.clone(), a.user.clone(), a.party.id);
        async move { app.events(&user, party, &from, limit, wait).await }
    };
    // Not base64; another version; a negative position; a part missing.
    for bad in ["abc!", "ZTIuMS4y", "ZTEuLTEuMA", "ZTEuMQ"] {
        let e = read_with(EventsFrom::Cursor(bad.into()), None, Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "cursor_invalid", "{bad}: {e}");
    }
    for limit in [0, 1_001] {
        let e = read_with(EventsFrom::Start, Some(limit), Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid", "{e}");
    }
    let e = read_with(EventsFrom::Start, None, Duration::from_secs(31))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid", "{e}");
    // B's user may not read A's events, whatever A received.
    let e = t
        .app
        .events(
            &b.user,
            a.party.id,
            &EventsFrom::Start,
            None,
            Duration::ZERO,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "forbidden", "{e}");
}
