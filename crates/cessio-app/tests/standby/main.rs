//! F1 Monitoraggio and F4 Lista movimenti served from a real PostgreSQL streaming standby
//! (`cessio serve --read-database-url`), and everything that guards a write served by the
//! primary; a standby that falls behind its bound (its replay paused) or goes away (stopped)
//! leaves F1 and F4 to the primary instead of failing them, and they return to it when it
//! catches up. Runs with the PostgreSQL half (`CESSIO_TEST_DATABASE_URL` set), on two
//! clusters of its own (see `cluster.rs`); skips, saying why, where the machine cannot
//! start them. It restarts no shared server, so it runs beside the other tests.

#![expect(clippy::unwrap_used, reason = "tests")]

#[allow(unused_macros)]
#[path = "../support/mod.rs"]
mod support;

mod cluster;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cessio_app::{
    App, IncomingFilter, MovementFilter, MovementState, Principal, ReplicaPolicy, ReplicaStatus,
};
use cessio_core::money::Cents;
use cessio_store::{Party, Store, WriteConfig};
use cessio_store_postgres::PgStore;
use cluster::Clusters;
use support::*;

/// Said on stderr itself, which the harness does not capture: a skip is never silent.
fn skipped(reason: &str) {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "skipped: the streaming standby test ({reason})"
    );
}

/// Waits up to 30 s for `done`, polling; panics naming `what` past that.
async fn until<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the standby has replayed everything the primary has written so far.
async fn replayed(primary: &Arc<dyn Store>, standby: &Arc<dyn Store>) -> bool {
    let p = primary.wal_position().await.unwrap().unwrap();
    standby.wal_position().await.is_ok_and(|r| r.unwrap() >= p)
}

fn status(app: &App) -> ReplicaStatus {
    app.read_replica_status().unwrap()
}

/// The pending cessions F4 shows `party` (every movement since 2000).
async fn f4_pending(app: &App, who: &Principal, party: &Party) -> usize {
    let filter = MovementFilter {
        registered_from: Some(date(2000, 1, 1)),
        ..MovementFilter::default()
    };
    app.movements(who, party.id, &filter)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.state == MovementState::InAttesa)
        .count()
}

/// What F1 shows `party` received and awaiting an answer, in all.
async fn f1_received_pending(app: &App, who: &Principal, party: &Party) -> Cents {
    app.monitoring(who, party.id, None)
        .await
        .unwrap()
        .iter()
        .map(|r| r.received_pending)
        .fold(Cents::ZERO, |a, b| a.checked_add(b).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1_and_f4_read_a_streaming_standby_and_degrade_to_the_primary() {
    if std::env::var("CESSIO_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        // The PostgreSQL half is on.
    } else {
        return skipped("CESSIO_TEST_DATABASE_URL is not set");
    }
    let mut clusters = match Clusters::start() {
        Ok(c) => c,
        Err(reason) => return skipped(&reason),
    };
    let schema = Some("standby_register");
    let primary: Arc<dyn Store> = Arc::new(
        PgStore::connect(&clusters.primary_url(), schema, WriteConfig::default())
            .await
            .unwrap(),
    );
    let t = TestApp::with_store(primary.clone()).await;
    let (holder, c) = (t.company(1).await, t.company(2).await);
    let (h, cu) = (
        t.user_for(&holder, "cedente").await,
        t.user_for(&c, "cessionario").await,
    );
    let credit = t.holding(&holder, &h, "ecobonus", 10_000, old_day()).await;
    let rata = credit.rate[0].id;

    let standby_url = clusters.standby_url();
    until("the standby has the register", || async {
        PgStore::connect_read_only(&standby_url, schema)
            .await
            .is_ok()
    })
    .await;
    // The full open migrates and starts a writer: a hot standby refuses it.
    assert!(
        PgStore::connect(&standby_url, schema, WriteConfig::default())
            .await
            .is_err(),
        "a standby must be opened read-only"
    );
    let standby: Arc<dyn Store> = Arc::new(
        PgStore::connect_read_only(&standby_url, schema)
            .await
            .unwrap(),
    );
    let refused = standby.ping_writer().await.unwrap_err();
    assert_eq!(refused.code(), "invalid_operation", "{refused}");
    until("the standby has replayed the setup", || {
        replayed(&primary, &standby)
    })
    .await;

    // Two apps on the same primary and standby: one lenient (a minute of lag allowed), one
    // strict (a quarter of a second), so that each side of the bound is shown for sure.
    let lenient = t
        .app
        .clone()
        .with_read_replica(
            standby.clone(),
            ReplicaPolicy::with_max_lag(Duration::from_secs(60)),
        )
        .await;
    let strict = t
        .app
        .clone()
        .with_read_replica(
            standby.clone(),
            ReplicaPolicy::with_max_lag(Duration::from_millis(250)),
        )
        .await;
    assert!(status(&lenient).serving && status(&strict).serving);
    assert_eq!(status(&strict).lag_bytes, Some(0), "{:?}", status(&strict));
    let before = t.max_cedibile(&h, &holder, rata).await;
    assert!(before > Cents::ZERO);

    // The standby falls behind, deterministically: its replay is paused.
    clusters
        .standby_sql("SELECT pg_wal_replay_pause()")
        .unwrap();
    until("the standby's replay is paused", || async {
        clusters
            .standby_sql("SELECT pg_get_wal_replay_pause_state()")
            .is_ok_and(|s| s.trim() == "paused")
    })
    .await;
    lenient
        .cede(
            &h,
            "cessione-1",
            Some(PIN),
            holder.id,
            &[line(rata, &c, Some(1_00))],
            true,
        )
        .await
        .unwrap();

    // What guards a write reads the primary at once: F2's cedible list has the ceded
    // amount reserved (R-PENDING-OUT), F3 selects the new cession for its answer.
    for app in [&lenient, &strict] {
        let max = app
            .cedible(&h, holder.id)
            .await
            .unwrap()
            .into_iter()
            .find(|x| x.rata == rata)
            .map_or(Cents::ZERO, |x| x.max_cedibile);
        assert_eq!(
            max,
            before.checked_sub(Cents::new(1_00)).unwrap(),
            "F2 reads the primary"
        );
        let f3 = app
            .incoming(&cu, c.id, &IncomingFilter::default())
            .await
            .unwrap();
        assert_eq!(f3.len(), 1, "F3 reads the primary");
    }
    // The cedente's own lists, right after its own write, read the primary too.
    assert_eq!(f4_pending(&lenient, &h, &holder).await, 1, "own write, F4");
    // The cessionario's F1 and F4, within the lenient bound, read the standby, which
    // does not show the cession yet: a moment late, never wrong.
    assert_eq!(
        f4_pending(&lenient, &cu, &c).await,
        0,
        "F4 reads the standby"
    );
    assert_eq!(
        f1_received_pending(&lenient, &cu, &c).await,
        Cents::ZERO,
        "F1 reads the standby"
    );

    // Past the strict bound, the strict app's F1 and F4 leave the standby for the primary.
    until("the strict app leaves the standby", || async {
        !status(&strict).serving
    })
    .await;
    let behind = status(&strict);
    assert!(behind.reachable, "{behind:?}");
    assert!(
        behind.lag.unwrap() > Duration::from_millis(250),
        "{behind:?}"
    );
    assert!(behind.lag_bytes.unwrap() > 0, "{behind:?}");
    assert_eq!(f4_pending(&strict, &cu, &c).await, 1, "F4 from the primary");
    assert_eq!(
        f1_received_pending(&strict, &cu, &c).await,
        Cents::new(1_00),
        "F1 from the primary"
    );
    // The lenient app (sampling once a second) finds the standby behind too, and stays.
    until("the lenient app finds the standby behind", || async {
        status(&lenient).lag_bytes.is_some_and(|b| b > 0)
    })
    .await;
    assert!(status(&lenient).serving, "{:?}", status(&lenient));

    // Replay resumes: the standby catches up, the strict app returns to it, and F1 and F4
    // read from the standby show the cession.
    clusters
        .standby_sql("SELECT pg_wal_replay_resume()")
        .unwrap();
    until("the standby has replayed the cession", || {
        replayed(&primary, &standby)
    })
    .await;
    until("the strict app reads the standby again", || async {
        status(&strict).serving
    })
    .await;
    assert!(status(&strict).lag.unwrap() <= Duration::from_millis(250));
    for app in [&lenient, &strict] {
        assert_eq!(f4_pending(app, &cu, &c).await, 1, "F4 from the standby");
        assert_eq!(
            f1_received_pending(app, &cu, &c).await,
            Cents::new(1_00),
            "F1 from the standby"
        );
    }
    // Read on the standby itself: what F1 and F4 just read was there.
    let on_standby = standby.monitor_totals(c.id, None).await.unwrap();
    assert!(!on_standby.is_empty(), "the standby holds the cession");

    // The standby goes away: F1 and F4 still answer, from the primary, at once (the
    // lenient app learns it from the failed read, before any sample).
    clusters.stop_standby();
    assert_eq!(
        f4_pending(&lenient, &cu, &c).await,
        1,
        "F4 without the standby"
    );
    assert_eq!(
        f1_received_pending(&lenient, &cu, &c).await,
        Cents::new(1_00),
        "F1 without the standby"
    );
    let gone = status(&lenient);
    assert!(!gone.serving && !gone.reachable, "{gone:?}");
    assert_eq!((gone.lag, gone.lag_bytes), (None, None), "{gone:?}");
    until(
        "the strict app's sampler finds the standby gone",
        || async { !status(&strict).reachable },
    )
    .await;
    assert_eq!(f4_pending(&strict, &cu, &c).await, 1);
    // Readiness reports the replica but stays ready: the primary takes its reads.
    let readiness = strict.readiness(Duration::from_millis(800)).await;
    assert!(readiness.ready(), "{readiness:?}");
    assert!(readiness.replica.is_some_and(|r| !r.is_ok()));
}
