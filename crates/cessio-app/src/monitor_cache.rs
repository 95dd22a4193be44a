//! F1 for today needs every holding's cedibilità (§5), computed from each holding's kept
//! path and its rata's facts (`functions::states`): for a bank with hundreds of thousands
//! of holdings that is still a read of every holding, while between two looks at its
//! Monitoraggio only the holdings that moved have changed. So the
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
//!
//! The marks are the ledger head's last transfer and the last F24 choice; each account
//! records the id of the last transfer that moved it (indexed by party, checked by
//! `verify`). Changed holdings are read by rata (`Store::holdings_in`); a new day
//! reclassifies the kept histories in memory. One refresh per party runs at a time, as a
//! task of its own, so a request that gives up does not cancel a long first look. A first
//! look reads every holding, in chunks (`FRESH_CHUNK`, `FRESH_LANES` at once), a second
//! or more for a large bank: `cessio serve --keep-monitoring` takes it at start, in the background,
//! for the parties with the most holdings (`App::keep_largest_monitoring`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cessio_core::chain::{CessionCounts, RataHistory, cedibilita};
use cessio_core::f24::F24Choice;
use cessio_core::law::LawTable;
use cessio_core::ledger::{PartyId, RataId};
use cessio_core::money::Cents;
use cessio_store::ChangeMarks;
use chrono::{Datelike, NaiveDate};

use crate::functions::{CedibleHolding, StatesContext};
use crate::{App, AppError, CedibilitaClass, Principal};

/// Past this many changed holdings a refresh reads the whole party again: one pass over all its
/// holdings costs less than many small lookups.
const FULL_REFRESH_SHARE: usize = 4;
/// Changed holdings are recomputed in chunks (bounded parameter lists).
const CHUNK: usize = 500;
/// A first look goes through the party's holdings in chunks of this many.
const FRESH_CHUNK: usize = 4_000;
/// Chunks of a first look in progress at once: while one computes its states the other's
/// are read, and SQLite reads each on a connection (and a core) of its own.
const FRESH_LANES: usize = 2;

/// What a holding's §5 history has of its own, packed (a bank keeps hundreds of thousands):
/// the rest is its template's. Dates are days from the common era, 0 for none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OwnHistory {
    before_cutoff: u8,
    from_cutoff: u8,
    /// Bit 0 received as bank client, 1 seized, 2 suspended; bits 3-4 the F24 choice
    /// (0 not declared, 1 declared, 2 revoked).
    flags: u8,
    received_on: i32,
    last_day_of_use: i32,
    choice_on: i32,
}

fn day_number(d: Option<NaiveDate>) -> i32 {
    d.map_or(0, |d| d.num_days_from_ce())
}

fn day_of(n: i32) -> Option<NaiveDate> {
    (n != 0)
        .then(|| NaiveDate::from_num_days_from_ce_opt(n))
        .flatten()
}

impl OwnHistory {
    const BLANK: OwnHistory = OwnHistory {
        before_cutoff: 0,
        from_cutoff: 0,
        flags: 0,
        received_on: 0,
        last_day_of_use: 0,
        choice_on: 0,
    };

    fn of(h: &RataHistory) -> Self {
        let (choice, on) = match h.f24_choice {
            F24Choice::NotDeclared => (0, None),
            F24Choice::Declared { on } => (1, Some(on)),
            F24Choice::Revoked { on } => (2, Some(on)),
        };
        OwnHistory {
            before_cutoff: u8::try_from(h.counts.before_cutoff).unwrap_or(u8::MAX),
            from_cutoff: u8::try_from(h.counts.from_cutoff).unwrap_or(u8::MAX),
            flags: u8::from(h.received_as_bank_client)
                | u8::from(h.seized) << 1
                | u8::from(h.suspended) << 2
                | choice << 3,
            received_on: day_number(h.received_by_cession_on),
            last_day_of_use: day_number(h.last_day_of_use),
            choice_on: day_number(on),
        }
    }

    /// Puts this holding's own facts into `h`, a copy of its template.
    fn apply(&self, h: &mut RataHistory) {
        h.counts = CessionCounts {
            before_cutoff: u32::from(self.before_cutoff),
            from_cutoff: u32::from(self.from_cutoff),
        };
        h.received_as_bank_client = self.flags & 1 != 0;
        h.seized = self.flags & 2 != 0;
        h.suspended = self.flags & 4 != 0;
        let on = day_of(self.choice_on).unwrap_or_default();
        h.f24_choice = match (self.flags >> 3) & 3 {
            1 => F24Choice::Declared { on },
            2 => F24Choice::Revoked { on },
            _ => F24Choice::NotDeclared,
        };
        h.received_by_cession_on = day_of(self.received_on);
        h.last_day_of_use = day_of(self.last_day_of_use);
    }
}

/// The cedibilità of one holding, as F1 sums it, with what it was decided from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HoldingClass {
    /// Index into the view's (type, year, codice tributo) keys.
    key: u32,
    /// Index into the view's history templates.
    template: u32,
    own: OwnHistory,
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
    /// The parts of a §5 history that holdings of one type share (type, regime, holder,
    /// tracciabile, split rata, the beneficiary's no-tax area).
    templates: Vec<RataHistory>,
    holdings: BTreeMap<RataId, HoldingClass>,
    /// Per key, the amounts of its holdings by cedibilità (indexed by [`class_index`]), kept
    /// with every change so that F1 reads a handful of sums rather than every holding.
    sums: Vec<[Cents; CLASSES]>,
}

const CLASSES: usize = 6;

fn class_index(c: CedibilitaClass) -> usize {
    match c {
        CedibilitaClass::Anyone => 0,
        CedibilitaClass::Once => 1,
        CedibilitaClass::AnyoneExceptBanks => 2,
        CedibilitaClass::QualifiedOnly => 3,
        CedibilitaClass::OwnBankClientsOnly => 4,
        CedibilitaClass::NotCedible => 5,
    }
}

/// Adds (`sign` 1) or takes away (-1) a holding's amount in its key's sums.
fn add_to_sums(sums: &mut Vec<[Cents; CLASSES]>, h: HoldingClass, sign: i64) {
    let key = h.key as usize;
    if sums.len() <= key {
        sums.resize(key + 1, [Cents::ZERO; CLASSES]);
    }
    if let Some(sum) = sums.get_mut(key).map(|s| &mut s[class_index(h.class)]) {
        let delta = Cents::new(h.amount.get().saturating_mul(sign));
        *sum = sum.checked_add(delta).unwrap_or(Cents::MAX);
    }
}

/// The sums of one (type, year, codice tributo) of a party's holdings by cedibilità.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeySums {
    /// Once only, to anyone but banks, to soggetti qualificati only, to the bank's own
    /// clients only.
    pub restricted: Cents,
    pub not_cedible: Cents,
}

impl PartyView {
    fn new(day: NaiveDate, marks: ChangeMarks) -> Self {
        PartyView {
            day,
            marks,
            keys: Vec::new(),
            key_ids: HashMap::new(),
            templates: Vec::new(),
            holdings: BTreeMap::new(),
            sums: Vec::new(),
        }
    }

    fn remove(&mut self, rata: RataId) {
        if let Some(old) = self.holdings.remove(&rata) {
            add_to_sums(&mut self.sums, old, -1);
        }
    }

    fn insert(&mut self, h: &CedibleHolding, history: &RataHistory) {
        let k = (h.type_key.clone(), h.year, h.codice_tributo.clone());
        let next = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
        let key = *self.key_ids.entry(k.clone()).or_insert_with(|| {
            self.keys.push(k);
            next
        });
        let own = OwnHistory::of(history);
        let mut template = history.clone();
        OwnHistory::BLANK.apply(&mut template);
        let template = match self.templates.iter().position(|t| *t == template) {
            Some(i) => i,
            None => {
                self.templates.push(template);
                self.templates.len() - 1
            }
        };
        let kept = HoldingClass {
            key,
            template: u32::try_from(template).unwrap_or(u32::MAX),
            own,
            class: h.cedibilita.class,
            amount: h.max_cedibile,
        };
        self.remove(h.rata);
        add_to_sums(&mut self.sums, kept, 1);
        self.holdings.insert(h.rata, kept);
    }

    /// The cedibilità of every holding on a new day, from what was kept: nothing but the
    /// date has changed for the holdings that did not move (those that did are then
    /// recomputed from the store).
    fn reclassify(&mut self, today: NaiveDate, law: &LawTable) {
        let mut scratch: Vec<RataHistory> = self.templates.clone();
        let mut sums = Vec::with_capacity(self.sums.len());
        for h in self.holdings.values_mut() {
            if let Some(history) = scratch.get_mut(h.template as usize) {
                h.own.apply(history);
                h.class = CedibilitaClass::of(&cedibilita(history, today, law));
            }
            add_to_sums(&mut sums, *h, 1);
        }
        self.sums = sums;
        self.day = today;
    }

    /// The cedibilità class of the party's holding of `rata`, if it holds an available
    /// amount of it.
    pub(crate) fn class_of(&self, rata: RataId) -> Option<CedibilitaClass> {
        self.holdings.get(&rata).map(|h| h.class)
    }

    /// Each (type, year, codice tributo) with the sums of its holdings by cedibilità.
    pub(crate) fn sums(&self) -> impl Iterator<Item = (&str, u16, &str, KeySums)> + '_ {
        self.keys.iter().zip(&self.sums).map(|((t, y, c), sum)| {
            let restricted = sum[1..5]
                .iter()
                .try_fold(Cents::ZERO, |acc, v| acc.checked_add(*v))
                .unwrap_or(Cents::MAX);
            (
                t.as_str(),
                *y,
                c.as_str(),
                KeySums {
                    restricted,
                    not_cedible: sum[5],
                },
            )
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
    /// Prepares F1 for the parties with the most holdings, up to `parties` of them and as
    /// many as the kept views' bound holds: a first look (seconds for a bank of hundreds of
    /// thousands of holdings) is then paid once when a server starts, not by the first
    /// request. Each party prepared, with its holdings and the time it took.
    pub async fn keep_largest_monitoring(
        &self,
        parties: usize,
    ) -> Result<Vec<(PartyId, usize, std::time::Duration)>, AppError> {
        let capacity = self.settings.monitor_cache_holdings;
        let mut kept = Vec::new();
        if capacity == 0 || parties == 0 {
            return Ok(kept);
        }
        let mut total = 0;
        for party in self.store.largest_holders(parties).await? {
            let started = std::time::Instant::now();
            let holdings = self
                .with_holding_classes(&App::console(), party, |v| v.holdings.len())
                .await?;
            kept.push((party, holdings, started.elapsed()));
            total += holdings;
            // One more would evict the first ones.
            if total >= capacity {
                break;
            }
        }
        Ok(kept)
    }

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
        // The refresh runs as a task of its own: a request that gives up (its client gone,
        // the server's time bound) leaves it to finish, so a first look longer than that
        // bound is still made once and kept, not started over by every request.
        let (app, who, kept) = (self.clone(), p.clone(), slot.clone());
        tokio::spawn(async move { app.refresh_slot(&who, party, &kept).await })
            .await
            .map_err(|e| AppError::Store(cessio_store::StoreError::backend(e)))??;
        let guard = slot.view.lock().await;
        let out = match guard.as_ref() {
            Some(view) => f(view),
            // Another request's refresh failed in between and dropped the view.
            None => {
                drop(guard);
                let view = self.fresh_view(p, party).await?;
                return Ok(f(&view));
            }
        };
        drop(guard);
        self.monitor_cache.evict(capacity, party);
        Ok(out)
    }

    /// Brings `slot`'s view of `party` up to date, computing it if there is none.
    async fn refresh_slot(
        &self,
        p: &Principal,
        party: PartyId,
        slot: &Slot,
    ) -> Result<(), AppError> {
        // One refresh per party at a time: a second request waits and finds it done.
        let mut guard = slot.view.lock().await;
        let today = self.today();
        // A view kept from before a `once` chain rule took effect lacks how each option
        // was made (read only under that rule, R-ONCE): it is looked at afresh.
        let once = |day| self.law.chain_on(day).is_some_and(|r| r.once);
        let refreshed = match guard.take().filter(|view| once(view.day) == once(today)) {
            Some(mut view) => {
                if view.day != today {
                    view.reclassify(today, &self.law);
                }
                self.refresh_view(p, party, view).await
            }
            None => self.fresh_view(p, party).await,
        };
        // Nothing is kept from a failed refresh: the next request starts afresh.
        let view = refreshed?;
        slot.holdings.store(view.holdings.len(), Ordering::Relaxed);
        *guard = Some(view);
        Ok(())
    }

    async fn fresh_view(&self, p: &Principal, party: PartyId) -> Result<PartyView, AppError> {
        self.authorize_view(p, party).await?;
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
        let view = Mutex::new(PartyView::new(self.today(), marks));
        // In chunks: memory holds the chunks' histories and holdings, not a bank's all.
        let mut accounts = self.store.holdings(party).await?;
        accounts.retain(|a| a.balance.available().is_some_and(|v| v.is_positive()));
        let chunks: Vec<_> = accounts.chunks(FRESH_CHUNK).collect();
        let lanes = (0..FRESH_LANES).map(|lane| {
            let (chunks, view) = (&chunks, &view);
            async move {
                let mut ctx = StatesContext::default();
                for chunk in chunks.iter().skip(lane).step_by(FRESH_LANES) {
                    let states = self.states_of_holdings(party, chunk, &mut ctx).await?;
                    let mut view = view.lock().unwrap_or_else(|e| e.into_inner());
                    for (h, history) in states {
                        view.insert(&h, &history);
                    }
                }
                Ok::<(), AppError>(())
            }
        });
        futures_util::future::try_join_all(lanes).await?;
        Ok(view.into_inner().unwrap_or_else(|e| e.into_inner()))
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
        let mut ctx = StatesContext::default();
        let mut changed = changes.rate;
        changed.sort_unstable();
        for chunk in changed.chunks(CHUNK) {
            for r in chunk {
                view.remove(*r);
            }
            let holdings = self.store.holdings_in(party, chunk).await?;
            for (h, history) in self.states_of_holdings(party, &holdings, &mut ctx).await? {
                view.insert(&h, &history);
            }
        }
        view.marks = changes.marks;
        Ok(view)
    }
}
