//! The read replica (`cessio serve --read-database-url`): which reads it takes, how far
//! behind its primary it is, and when F1 and F4 read the primary instead.
//!
//! Only F1 Monitoraggio and F4 Lista movimenti (and its export) read the replica: they
//! show the register and guard nothing. Every read that a write rests on stays on the
//! primary (F2's cedible list and preview, F3's selection, F5's availability, F6 and F7,
//! the PIN, users, tokens, delegations, idempotency records, the operator's lists).
//!
//! A background task compares the replica's replayed write-ahead log position with the
//! primary's every [`ReplicaPolicy::sample_every`]. The lag is measured in time as "the
//! replica does not yet show what the primary had written this long ago": each sample
//! remembers when the primary was first seen at a position, and the lag is the age of the
//! oldest remembered position the replica has not replayed (zero once it has replayed
//! them all), within one sampling period. PostgreSQL's own `now() -
//! pg_last_xact_replay_timestamp()` is not used: it grows while the primary is idle, so an
//! idle register would look ever further behind and its reads would leave a replica that
//! is in fact up to date. The bytes not replayed are reported beside it.
//!
//! F1 and F4 read the primary while the replica is behind by more than
//! [`ReplicaPolicy::max_lag`], while it does not answer, and for a party whose own last
//! write it may not show yet (read-your-writes within this process: a write is marked when
//! the store acknowledges it, and the party's lists read the replica again once a sample
//! taken after that shows the replica caught up with it). A read the replica fails as
//! unreachable is answered by the primary at once, and so is a read it fails otherwise (a
//! standby cancels queries that conflict with the recovery it replays). Each change of
//! source is logged once.
//!
//! A replica that cannot be reached when the app starts does not stop it
//! (`App::with_read_replica_connecting`): F1 and F4 read the primary, and each sample tries
//! to connect again until the replica answers.
//! Durations here are the machine's elapsed time, not the register's clock.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use cessio_core::ledger::PartyId;
use cessio_store::{Store, StoreError};

use crate::App;

/// When F1 and F4 read the replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaPolicy {
    /// Behind the primary by more than this, the replica is left for the primary.
    pub max_lag: Duration,
    /// How often the replica's position is compared with the primary's.
    pub sample_every: Duration,
}

impl ReplicaPolicy {
    /// A list that shows a cession a few seconds late is still a true list; past that a
    /// user who just answered in F3 would look for it in F4 and not find it.
    pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(5);

    /// Sampled four times within the bound (between 50 ms and 1 s apart): a replica
    /// falling behind is noticed well before it is past the bound by a whole period.
    pub fn with_max_lag(max_lag: Duration) -> Self {
        ReplicaPolicy {
            max_lag,
            sample_every: (max_lag / 4).clamp(Duration::from_millis(50), Duration::from_secs(1)),
        }
    }
}

impl Default for ReplicaPolicy {
    fn default() -> Self {
        ReplicaPolicy::with_max_lag(Self::DEFAULT_MAX_LAG)
    }
}

/// What the last comparison found, as `/metrics` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// F1 and F4 read the replica (not the primary) now.
    pub serving: bool,
    /// The replica answered the last comparison.
    pub reachable: bool,
    /// How long ago the primary had written what the replica has not replayed yet; `None`
    /// when not known (unreachable, or a backend without a write-ahead log position).
    pub lag: Option<Duration>,
    /// Bytes of the primary's write-ahead log the replica has not replayed; `None` as above.
    pub lag_bytes: Option<u64>,
}

/// How long a sample waits for each database's position: a replica that accepts a
/// connection and then says nothing is as good as gone.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// Primary positions remembered while the replica has not replayed them: one per sample
/// at most, so a day at one per second; past it the oldest are forgotten and the lag
/// reported stops growing.
const MAX_REMEMBERED: usize = 86_400;

/// How a replica is reached: called at start and, while it is not connected, at each
/// sample.
pub type ConnectReplica = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Arc<dyn Store>, StoreError>> + Send>>
        + Send
        + Sync,
>;

pub(crate) struct ReadReplica {
    /// `None` until the replica has been reached.
    store: RwLock<Option<Arc<dyn Store>>>,
    connect: Option<ConnectReplica>,
    policy: ReplicaPolicy,
    state: Mutex<State>,
}

impl std::fmt::Debug for ReadReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadReplica")
            .field("connected", &self.store().is_some())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct State {
    status: ReplicaStatus,
    /// Primary positions the replica has not replayed, oldest first, each with when the
    /// primary was first seen there: every write acknowledged before that instant is at or
    /// before that position.
    unreplayed: VecDeque<(Instant, u64)>,
    /// Every write acknowledged before this instant is on the replica.
    replayed_through: Option<Instant>,
    /// Parties whose own write the replica may not show yet: when it was acknowledged.
    recent_writes: HashMap<PartyId, Instant>,
}

/// Why F1 and F4 left the replica.
enum Leaving<'a> {
    Behind(Duration),
    Unreachable(&'a str),
}

impl ReadReplica {
    fn new(
        store: Option<Arc<dyn Store>>,
        connect: Option<ConnectReplica>,
        policy: ReplicaPolicy,
    ) -> Self {
        let connected = store.is_some();
        ReadReplica {
            store: RwLock::new(store),
            connect,
            policy,
            state: Mutex::new(State {
                // Until the first sample says otherwise, a connected replica has no lag to
                // leave for; one not reached yet serves nothing.
                status: ReplicaStatus {
                    serving: connected,
                    ..ReplicaStatus::default()
                },
                ..State::default()
            }),
        }
    }

    /// The replica's store, once reached.
    pub(crate) fn store(&self) -> Option<Arc<dyn Store>> {
        self.store.read().ok().and_then(|s| s.clone())
    }

    /// The store, connecting first when it has not been reached yet.
    async fn reach(&self) -> Result<Arc<dyn Store>, StoreError> {
        if let Some(store) = self.store() {
            return Ok(store);
        }
        let Some(connect) = &self.connect else {
            return Err(StoreError::Unavailable {
                reason: "replica non configurata".into(),
            });
        };
        let store = match tokio::time::timeout(ANSWER_WITHIN, connect()).await {
            Ok(connected) => connected?,
            Err(_) => {
                return Err(StoreError::Unavailable {
                    reason: format!("nessuna risposta entro {} ms", ANSWER_WITHIN.as_millis()),
                });
            }
        };
        if let Ok(mut slot) = self.store.write() {
            *slot = Some(store.clone());
        }
        tracing::info!("read replica reached");
        Ok(store)
    }

    pub(crate) fn status(&self) -> ReplicaStatus {
        self.state.lock().map(|s| s.status).unwrap_or_default()
    }

    /// Whether `party`'s F1 and F4 read the replica now.
    pub(crate) fn serves(&self, party: PartyId) -> bool {
        let Ok(s) = self.state.lock() else {
            return false;
        };
        s.status.serving
            && s.recent_writes
                .get(&party)
                .is_none_or(|wrote| s.replayed_through.is_some_and(|t| *wrote < t))
    }

    /// A write of `party`'s has just been acknowledged (or failed in a way that may have
    /// committed): its lists read the primary until the replica shows it.
    pub(crate) fn wrote(&self, party: PartyId) {
        if let Ok(mut s) = self.state.lock() {
            s.recent_writes.insert(party, Instant::now());
        }
    }

    /// A read found the replica unreachable: the primary answers until a sample finds it
    /// back.
    pub(crate) fn lost(&self, error: &StoreError) {
        if let Ok(mut s) = self.state.lock() {
            s.status.reachable = false;
            s.status.lag = None;
            s.status.lag_bytes = None;
            self.set_serving(&mut s, Err(Leaving::Unreachable(&error.to_string())));
        }
    }

    fn set_serving(&self, s: &mut State, outcome: Result<(), Leaving<'_>>) {
        let serving = outcome.is_ok();
        if serving == s.status.serving {
            return;
        }
        s.status.serving = serving;
        match outcome {
            Ok(()) => tracing::info!("read replica back: F1 and F4 read it again"),
            Err(Leaving::Behind(lag)) => tracing::warn!(
                lag_ms = lag.as_millis(),
                max_lag_ms = self.policy.max_lag.as_millis(),
                "read replica behind its primary: F1 and F4 read the primary"
            ),
            Err(Leaving::Unreachable(error)) => tracing::warn!(
                error,
                "read replica unreachable: F1 and F4 read the primary"
            ),
        }
    }

    /// One comparison of the replica's position with the primary's.
    async fn sample(&self, primary: &dyn Store) {
        let started = Instant::now();
        let primary_at = match tokio::time::timeout(ANSWER_WITHIN, primary.wal_position()).await {
            Ok(Ok(p)) => p,
            // Nothing to compare with: the primary's own failures are readiness's to report.
            Ok(Err(_)) | Err(_) => return,
        };
        let store = match self.reach().await {
            Ok(store) => store,
            Err(e) => return self.lost(&e),
        };
        let replica_at = tokio::time::timeout(ANSWER_WITHIN, store.wal_position()).await;
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        if let Some(p) = primary_at
            && s.unreplayed.back().is_none_or(|&(_, last)| last < p)
        {
            s.unreplayed.push_back((started, p));
            if s.unreplayed.len() > MAX_REMEMBERED {
                s.unreplayed.pop_front();
            }
        }
        let replica_at = match replica_at {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                drop(s);
                return self.lost(&e);
            }
            Err(_) => {
                drop(s);
                return self.lost(&StoreError::Unavailable {
                    reason: format!("nessuna risposta entro {} ms", ANSWER_WITHIN.as_millis()),
                });
            }
        };
        s.status.reachable = true;
        let (Some(p), Some(r)) = (primary_at, replica_at) else {
            // No positions to compare (SQLite): the replica is judged by answering alone.
            s.status.lag = None;
            s.status.lag_bytes = None;
            s.replayed_through = Some(started);
            s.recent_writes.retain(|_, wrote| *wrote >= started);
            return self.set_serving(&mut s, Ok(()));
        };
        while let Some(&(seen, at)) = s.unreplayed.front() {
            if at > r {
                break;
            }
            s.unreplayed.pop_front();
            s.replayed_through = s.replayed_through.max(Some(seen));
        }
        if p <= r {
            s.replayed_through = Some(started);
        }
        let lag = s
            .unreplayed
            .front()
            .map_or(Duration::ZERO, |&(seen, _)| seen.elapsed());
        s.status.lag = Some(lag);
        s.status.lag_bytes = Some(p.saturating_sub(r));
        if let Some(through) = s.replayed_through {
            s.recent_writes.retain(|_, wrote| *wrote >= through);
        }
        let outcome = if lag > self.policy.max_lag {
            Err(Leaving::Behind(lag))
        } else {
            Ok(())
        };
        self.set_serving(&mut s, outcome);
    }

    /// Samples every `sample_every` for as long as the app holding the replica lives.
    fn keep_sampling(replica: &Arc<ReadReplica>, primary: &Arc<dyn Store>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (replica, primary): (Weak<ReadReplica>, Weak<dyn Store>) =
            (Arc::downgrade(replica), Arc::downgrade(primary));
        let every = replica
            .upgrade()
            .map_or(Duration::from_secs(1), |r| r.policy.sample_every);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let (Some(replica), Some(primary)) = (replica.upgrade(), primary.upgrade()) else {
                    break;
                };
                replica.sample(&*primary).await;
            }
        });
    }
}

impl App {
    /// Reads F1 and F4 from a replica of the store (a PostgreSQL streaming standby, opened
    /// with `PgStore::connect_read_only`), while it is within `policy`'s lag bound and
    /// answers; the primary otherwise (see this module). Compares the two positions once
    /// before returning, then in the background on the current runtime.
    pub async fn with_read_replica(self, replica: Arc<dyn Store>, policy: ReplicaPolicy) -> Self {
        self.attach_replica(ReadReplica::new(Some(replica), None, policy))
            .await
    }

    /// As [`App::with_read_replica`], for a replica reached by `connect`: one that does not
    /// answer now is tried again at each sample, and until then F1 and F4 read the primary.
    pub async fn with_read_replica_connecting(
        self,
        connect: ConnectReplica,
        policy: ReplicaPolicy,
    ) -> Self {
        let replica = ReadReplica::new(None, Some(connect), policy);
        if let Err(e) = replica.reach().await {
            tracing::warn!(
                error = %e,
                "read replica unreachable at start: F1 and F4 read the primary until it answers"
            );
            replica.lost(&e);
        }
        self.attach_replica(replica).await
    }

    async fn attach_replica(mut self, replica: ReadReplica) -> Self {
        let replica = Arc::new(replica);
        replica.sample(&*self.store).await;
        ReadReplica::keep_sampling(&replica, &self.store);
        self.replica = Some(replica);
        self
    }

    /// The read replica's state, `None` without one.
    pub fn read_replica_status(&self) -> Option<ReplicaStatus> {
        self.replica.as_ref().map(|r| r.status())
    }

    /// One of `party`'s F1 or F4 reads: on the replica when it serves the party (see this
    /// module), otherwise on the primary; a replica that turns out unreachable is left for
    /// the primary at once.
    pub(crate) async fn listing_read<T, F, Fut>(
        &self,
        party: PartyId,
        read: F,
    ) -> Result<T, StoreError>
    where
        F: Fn(Arc<dyn Store>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        if let Some((replica, store)) = self
            .replica
            .as_ref()
            .filter(|r| r.serves(party))
            .and_then(|r| Some((r, r.store()?)))
        {
            match read(store).await {
                Ok(done) => return Ok(done),
                Err(e @ StoreError::Unavailable { .. }) => replica.lost(&e),
                // Any other failure of a read the primary can answer (a standby cancels a
                // query that conflicts with the recovery it replays) is the primary's to
                // answer; the replica keeps serving the next read.
                Err(e) => {
                    tracing::warn!(error = %e, "read replica failed a read: the primary answers it")
                }
            }
        }
        read(self.store.clone()).await
    }

    /// Marks a write acknowledged (or possibly committed) for `party`, so its own lists
    /// do not read a replica that does not show it yet.
    pub(crate) fn mark_write(&self, party: Option<PartyId>) {
        if let (Some(replica), Some(party)) = (&self.replica, party) {
            replica.wrote(party);
        }
    }
}
