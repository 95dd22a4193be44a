//! Reads of F1 Monitoraggio and F4 Lista movimenti go to the read replica when one is
//! configured (`cessio serve --read-database-url`); everything that guards a write (F2's
//! cedible list, F3's selection) keeps reading the primary. A "replica" holding a register
//! the primary does not have shows which store each function read.

#![expect(clippy::unwrap_used, reason = "tests")]

// Two stores per test here, so not the one-store `backends!` macro.
#[allow(unused_macros)]
mod support;

use cessio_app::{IncomingFilter, MovementFilter, ReplicaPolicy};
use std::sync::Arc;

use support::*;

async fn reads_follow_the_store_they_are_meant_for(primary: TestApp, replica: TestApp) {
    // The same parties, registered in the same order, have the same ids in both.
    let (ben, holder) = (primary.company(1).await, primary.company(2).await);
    let (rben, rholder) = (replica.company(1).await, replica.company(2).await);
    assert_eq!((ben.id, holder.id), (rben.id, rholder.id));
    replica
        .communicate(&rben, &rholder, "superbonus", 100_003, tracciabile_day())
        .await;

    let app = primary
        .app
        .clone()
        .with_read_replica(replica.app.store().clone(), ReplicaPolicy::default())
        .await;
    let op = &primary.op;
    let f1 = app.monitoring(op, holder.id, None).await.unwrap();
    assert_eq!(f1.len(), 4, "F1 reads the replica: {f1:?}");
    let superbonus = MovementFilter {
        type_key: Some("superbonus".into()),
        ..MovementFilter::default()
    };
    let f4 = app.movements(op, holder.id, &superbonus).await.unwrap();
    assert_eq!(f4.len(), 4, "F4 reads the replica");
    let f4 = exported(&app, op, &holder, &superbonus).await.unwrap();
    assert_eq!(f4.len(), 4, "F4's export reads the replica");
    // F3 selects what an answer will change: the primary, which has nothing pending.
    let f3 = app
        .incoming(op, holder.id, &IncomingFilter::default())
        .await
        .unwrap();
    assert!(f3.is_empty(), "F3 must read the primary: {f3:?}");
    // Without a replica, the same app reads the primary for everything.
    assert!(
        primary
            .app
            .monitoring(op, holder.id, None)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_replica_serves_f1_and_f4_sqlite() {
    reads_follow_the_store_they_are_meant_for(TestApp::sqlite().await, TestApp::sqlite().await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_replica_serves_f1_and_f4_postgres() {
    let Some(primary) = TestApp::postgres().await else {
        return;
    };
    let replica = TestApp::postgres().await.unwrap();
    reads_follow_the_store_they_are_meant_for(primary, replica).await;
}

/// A replica that does not answer when the app starts does not stop it: F1 reads the
/// primary, `/readyz` reports the replica down, and a later sample that reaches it puts F1
/// on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_replica_down_at_start_is_reached_later() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (primary, replica) = (TestApp::sqlite().await, TestApp::sqlite().await);
    // The same parties, registered in the same order, have the same ids in both.
    let (_, holder) = (primary.company(1).await, primary.company(2).await);
    let (rben, rholder) = (replica.company(1).await, replica.company(2).await);
    replica
        .communicate(&rben, &rholder, "superbonus", 100_003, tracciabile_day())
        .await;
    let store = replica.app.store().clone();
    let attempts = Arc::new(AtomicUsize::new(0));
    let tried = attempts.clone();
    let connect: cessio_app::ConnectReplica = Arc::new(move || {
        let store = store.clone();
        let attempt = tried.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            // Down for the start and the first sample.
            if attempt < 2 {
                Err(cessio_store::StoreError::Unavailable {
                    reason: "connection refused".into(),
                })
            } else {
                Ok(store)
            }
        })
    });
    let policy = ReplicaPolicy::with_max_lag(std::time::Duration::from_millis(200));
    let app = primary
        .app
        .clone()
        .with_read_replica_connecting(connect, policy)
        .await;
    let status = app.read_replica_status().unwrap();
    assert!(!status.serving && !status.reachable, "{status:?}");
    let op = &primary.op;
    assert!(
        app.monitoring(op, holder.id, None)
            .await
            .unwrap()
            .is_empty()
    );
    let ready = app.readiness(std::time::Duration::from_millis(500)).await;
    assert!(
        ready.replica.as_ref().is_some_and(|c| !c.is_ok()),
        "{ready:?}"
    );
    // Sampled every 50 ms: reached on the next attempt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !app.read_replica_status().unwrap().serving {
        assert!(std::time::Instant::now() < deadline, "never reached");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(attempts.load(Ordering::SeqCst) >= 3);
    let f1 = app.monitoring(op, holder.id, None).await.unwrap();
    assert_eq!(f1.len(), 4, "F1 reads the replica once reached: {f1:?}");
}

/// A read the replica fails for a reason other than being unreachable (a standby cancels a
/// query that conflicts with the recovery it replays) is answered by the primary; the
/// replica stays in service for the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_replica_failing_a_read_leaves_it_to_the_primary() {
    let (primary, replica) = (TestApp::sqlite().await, TestApp::sqlite().await);
    let (ben, holder) = (primary.company(1).await, primary.company(2).await);
    primary
        .communicate(&ben, &holder, "superbonus", 100_003, tracciabile_day())
        .await;
    // The replica's F4 query fails: its movements' table is gone.
    let path = replica.sqlite_path.clone().unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA foreign_keys = OFF; DROP TABLE transfers;")
        .unwrap();
    let app = primary
        .app
        .clone()
        .with_read_replica(replica.app.store().clone(), ReplicaPolicy::default())
        .await;
    let superbonus = MovementFilter {
        type_key: Some("superbonus".into()),
        ..MovementFilter::default()
    };
    let f4 = app
        .movements(&primary.op, holder.id, &superbonus)
        .await
        .unwrap();
    assert_eq!(f4.len(), 4, "the primary answered");
    assert!(app.read_replica_status().unwrap().serving);
}
