//! F1 for today needs every holding's cedibilità (§5), which is replayed from each holding's
//! history: for a bank with hundreds of thousands of holdings that is seconds of work, while
//! between two looks at its Monitoraggio only the holdings that moved have changed. So the
//! cedibilità of a party's holdings is kept here, for one day (the rules read the date), with
//! the marks of the register when it was read; the next request asks the store which of the
//! party's holdings moved, or had their F24 choice recorded, since those marks
//! (`Store::holding_changes`) and recomputes only those.
//!
//! Why that is enough: a holding's cedibilità depends on its own amounts, on its seizures
//! and F24 choice, on the date, and on the path that brought the rata to it; a cession
//! carries its cedente's path as registered (`chain::replay_chain`), so a path changes only
//! when a movement reaches the holding itself, which marks its account. The test
//! `f1_kept_cedibilita_equals_a_fresh_replay_after_every_kind_of_change` holds it to that.
//!
//! Memory is bounded: past `Settings::monitor_cache_holdings` holdings in all, the parties
//! looked at least recently are dropped (and computed afresh when asked again).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cessio_core::ledger::{PartyId, RataId};
use cessio_core::money::Cents;
use cessio_store::ChangeMarks;
use chrono::NaiveDate;

use crate::functions::CedibleHolding;
use crate::{App, AppError, CedibilitaClass, Principal};

/// Past this many changed holdings a refresh replays the whole party: one pass over all its
/// holdings costs less than many small lookups.
const FULL_REFRESH_SHARE: usize = 4;
/// Changed holdings are recomputed in chunks (bounded parameter lists).
const CHUNK: usize = 500;

/// The cedibilità of one holding, as F1 sums it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HoldingClass {
    /// Index into the view's (type, year, codice tributo) keys.
    key: u32,
    pub class: CedibilitaClass,
    pub amount: Cents,
}

/// One party's holdings with their cedibilità on `day`, as of `marks`.
#[derive(Debug)]
pub(crate) struct PartyView {
    day: NaiveDate,
    marks: ChangeMarks,
    keys: Vec<(String, u16, String)>,
    key_ids: HashMap<(String, u16, String), u32>,
    holdings: BTreeMap<RataId, HoldingClass>,
}

impl PartyView {
    fn new(day: NaiveDate, marks: ChangeMarks) -> Self {
        PartyView {
            day,
            marks,
            keys: Vec::new(),
            key_ids: HashMap::new(),
            holdings: BTreeMap::new(),
        }
    }

    fn insert(&mut self, h: &CedibleHolding) {
        let k = (h.type_key.clone(), h.year, h.codice_tributo.clone());
        let next = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
        let key = *self.key_ids.entry(k.clone()).or_insert_with(|| {
            self.keys.push(k);
            next
        });
        self.holdings.insert(
            h.rata,
            HoldingClass {
                key,
                class: h.cedibilita.class,
                amount: h.max_cedibile,
            },
        );
    }

    /// Each holding in rata order: (type, year, codice tributo), cedibilità, amount.
    pub(crate) fn each(&self) -> impl Iterator<Item = (&str, u16, &str, HoldingClass)> + '_ {
        self.holdings.values().filter_map(|h| {
            let (t, y, c) = self.keys.get(h.key as usize)?;
            Some((t.as_str(), *y, c.as_str(), *h))
        })
    }
}

#[derive(Debug, Default)]
struct Slot {
    view: tokio::sync::Mutex<Option<PartyView>>,
    holdings: AtomicUsize,
    used: AtomicU64,
}

/// The kept views, one per party looked at.
#[derive(Debug, Default)]
pub(crate) struct MonitorCache {
    slots: Mutex<HashMap<PartyId, Arc<Slot>>>,
    tick: AtomicU64,
}

impl MonitorCache {
    fn slot(&self, party: PartyId) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = slots.entry(party).or_default().clone();
        slot.used
            .store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        slot
    }

    /// Drops the least recently used views until at most `capacity` holdings are kept,
    /// never `keep`'s (the one just computed).
    fn evict(&self, capacity: usize, keep: PartyId) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut total: usize = slots
            .values()
            .map(|s| s.holdings.load(Ordering::Relaxed))
            .sum();
        while total > capacity {
            let Some((&victim, slot)) = slots
                .iter()
                .filter(|(p, _)| **p != keep)
                .min_by_key(|(_, s)| s.used.load(Ordering::Relaxed))
            else {
                break;
            };
            total = total.saturating_sub(slot.holdings.load(Ordering::Relaxed));
            slots.remove(&victim);
        }
    }
}

impl App {
    /// The cedibilità of each of `party`'s holdings today, kept between requests and brought
    /// up to date with what moved since (see the module's comment). Calls `f` on the view.
    pub(crate) async fn with_holding_classes<T>(
        &self,
        p: &Principal,
        party: PartyId,
        f: impl FnOnce(&PartyView) -> T,
    ) -> Result<T, AppError> {
        let capacity = self.settings.monitor_cache_holdings;
        if capacity == 0 {
            let view = self.fresh_view(p, party).await?;
            return Ok(f(&view));
        }
        let slot = self.monitor_cache.slot(party);
        // One refresh per party at a time: a second request waits and finds it done.
        let mut guard = slot.view.lock().await;
        let today = self.today();
        let refreshed = match guard.take() {
            Some(view) if view.day == today => self.refresh_view(p, party, view).await,
            _ => self.fresh_view(p, party).await,
        };
        // Nothing is kept from a failed refresh: the next request starts afresh.
        let view = refreshed?;
        slot.holdings.store(view.holdings.len(), Ordering::Relaxed);
        let out = f(&view);
        *guard = Some(view);
        drop(guard);
        self.monitor_cache.evict(capacity, party);
        Ok(out)
    }

    async fn fresh_view(&self, p: &Principal, party: PartyId) -> Result<PartyView, AppError> {
        // The marks before the holdings: whatever moves in between is found next time.
        let marks = self
            .store
            .holding_changes(
                party,
                ChangeMarks {
                    transfer: i64::MAX,
                    choice: i64::MAX,
                },
            )
            .await?
            .marks;
        let mut view = PartyView::new(self.today(), marks);
        for (h, _) in self.holding_states(p, party).await? {
            view.insert(&h);
        }
        Ok(view)
    }

    async fn refresh_view(
        &self,
        p: &Principal,
        party: PartyId,
        mut view: PartyView,
    ) -> Result<PartyView, AppError> {
        self.authorize_view(p, party).await?;
        let changes = self.store.holding_changes(party, view.marks).await?;
        if changes.rate.len() > view.holdings.len() / FULL_REFRESH_SHARE + CHUNK {
            return self.fresh_view(p, party).await;
        }
        for chunk in changes.rate.chunks(CHUNK) {
            let only: HashSet<RataId> = chunk.iter().copied().collect();
            for r in chunk {
                view.holdings.remove(r);
            }
            for (h, _) in self.holding_states_of(p, party, Some(&only)).await? {
                view.insert(&h);
            }
        }
        view.marks = changes.marks;
        Ok(view)
    }
}
