//! The bank workload (after Jepsen's bank test): a few hot parties trade credits through
//! concurrent clients (option communications, whole and partial cessions, accepts,
//! refusals, annulments, F24 reservations that are then confirmed or discarded, ten-instalment
//! splits and their annulments, retries of the same idempotency key), while a reader checks at
//! every observed instant that no holding is negative and that each rata's total is
//! unchanged (R-CONSERVE). At the end `verify` passes, every stored balance equals the one
//! recomputed from the history, and each acknowledged operation is there exactly once.
//!
//! Quick (CI, both backends):
//!   CESSIO_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p cessio-app --test bank
//! Long (prints progress every minute and ops/s at the end):
//!   CESSIO_BANK_OPS=1000000 CESSIO_BANK_EPOCH_OPS=2000 CESSIO_BANK_VERIFY_SECS=300 \
//!     CESSIO_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo test --release -p cessio-app --test bank -- --nocapture
//! Other knobs: CESSIO_BANK_CLIENTS (default 8), CESSIO_BANK_SEED (default 20240301),
//! CESSIO_BANK_EPOCH_OPS (default 0: the same hot parties throughout) and
//! CESSIO_BANK_VERIFY_SECS (default 0: the reader runs `verify` every 25 rounds).
//!
//! A long run keeps its hot set small: with CESSIO_BANK_EPOCH_OPS=N the clients move to a
//! fresh set of hot parties every N operations (an epoch), so each operation costs what it
//! costs on a register of that size while the register itself grows to the whole run; the
//! reader watches the current epoch's parties, samples every rata of the run, and verifies
//! the whole register at most every CESSIO_BANK_VERIFY_SECS seconds. The final checks cover
//! every epoch.
//!
//! The clock stands on 2 March 2022: every credit is non-tracciabile (communicated before
//! 1 May 2022), so partial cessions are allowed (R-PARTIAL), no answer has to wait five
//! working days (R-WAIT5), and the communications of the workload may still be annulled
//! (R-OPT-ANNUL). Half-way the clock moves to 2 October 2023, when a split may be annulled
//! (R-SPLIT-ANNUL, from 22 September 2023), and the workload goes on without the two kinds
//! the law no longer allows then (option communications, R-OPT-STOP, and their annulment).
//! In each phase the rata of the current year is usable in an F24 paid today
//! (R-F24-WINDOW-121; non-tracciabili need no F24 choice). In the second phase only, once
//! the platform accepts splits (from 2 May 2023), the Superbonus credits (codes 7701/7711,
//! communicated before 2022-10-31) may be split from that rata (R-SPLIT-ELIGIBLE). Split rate
//! (7771) are never cedible; those of 2023 are usable in F24 in the same phase, so an
//! annulment may also find its split used or reserved. New kinds of operation are one
//! more [`OpKind`] variant, one more arm in [`choose`] and in [`send`].

#![expect(clippy::unwrap_used, reason = "tests")]

#[macro_use]
mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cessio_app::{
    App, AppError, CessionLine, F24Form, F24LineInput, IncomingFilter, OptionInput, Principal,
    SplitTarget,
};
use cessio_core::catalogue::Origin;
use cessio_core::ledger::{
    AccountId, AccountKind, Balance, RataId, TransferId, TransferKind, replay_entry,
};
use cessio_core::money::Cents;
use cessio_store::engine::TransferRow;
use cessio_store::{AccountRef, HoldingQuery, IdempotencyKey, NewUser, Party, Role};
use cessio_test_support::{SplitMix64, env_or};
use chrono::NaiveDate;
use support::*;

backends!(bank_workload_conserves_credit_and_applies_each_acknowledged_operation_once);

/// Hot parties: few, so that clients collide on the same holdings.
const PARTIES: u32 = 4;
/// Credits each party holds at the start (ten rate each).
const CREDITS_EACH: usize = 3;
/// Each starting credit: 1.000,00 €, ten rate of 100,00 €.
const CREDIT_CENTS: i64 = 100_000;
/// Each party also starts with one Superbonus credit (five rate), the one F6 may split.
const SUPERBONUS_CENTS: i64 = 500_000;
/// The reader checks F1 of the hot parties once in this many rounds.
const F1_EVERY_ROUNDS: u64 = 10;
/// How often a long run prints how far it got.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// The workload's two days (see the module's doc).
const PHASES: [(i32, u32, u32); 2] = [(2022, 3, 2), (2023, 10, 2)];
/// The codes of the split-eligible Superbonus rate of the workload (R-SPLIT-ELIGIBLE).
const SPLITTABLE_CODES: &[&str] = &["7701", "7711"];

/// The kinds of operation the clients perform, with their weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum OpKind {
    Communicate,
    CedeWhole,
    CedePartial,
    Accept,
    Refuse,
    Annul,
    /// F5: an F24 reserves credits (prenotato)...
    ReserveF24,
    /// ...then it is processed (the amounts are used for good)...
    ConfirmF24,
    /// ...or discarded (they return to the holder).
    DiscardF24,
    /// F6: part of a rata becomes ten annual rate.
    Split,
    /// R-SPLIT-ANNUL: the split rate go and the original rata comes back.
    AnnulSplit,
}

const MIX: &[(OpKind, usize)] = &[
    (OpKind::Communicate, 6),
    (OpKind::CedeWhole, 17),
    (OpKind::CedePartial, 22),
    (OpKind::Accept, 21),
    (OpKind::Refuse, 10),
    (OpKind::Annul, 5),
    (OpKind::ReserveF24, 8),
    (OpKind::ConfirmF24, 4),
    (OpKind::DiscardF24, 3),
    (OpKind::Split, 3),
    (OpKind::AnnulSplit, 2),
];

impl OpKind {
    /// Whether the law allows the kind at all in a phase: from 2023-02-17 no option may be
    /// communicated (R-OPT-STOP), hence none annulled; a split may be made only from
    /// 2023-05-02 and annulled only from 2023-09-22 (R-SPLIT-ELIGIBLE, R-SPLIT-ANNUL).
    fn in_phase(self, phase: usize) -> bool {
        match self {
            OpKind::Communicate | OpKind::Annul => phase == 0,
            OpKind::Split | OpKind::AnnulSplit => phase == 1,
            _ => true,
        }
    }

    fn random(rng: &mut SplitMix64, phase: usize) -> OpKind {
        let mix = MIX.iter().filter(|(k, _)| k.in_phase(phase));
        let total: usize = mix.clone().map(|(_, w)| w).sum();
        let mut x = rng.below_usize(total);
        for (kind, w) in mix {
            if x < *w {
                return *kind;
            }
            x -= w;
        }
        unreachable!()
    }

    /// The refusals a concurrent world may legitimately produce: another client got there
    /// first. Anything else is a defect.
    fn expected_refusals(self) -> &'static [&'static str] {
        match self {
            OpKind::Communicate => &[],
            // The rata left the cedible list (its whole amount now pending out: R-PENDING-OUT),
            // or less of it is available than was read, or §5 allows the next cession of
            // that rata only to soggetti qualificati (R-CHAIN), or the cedente's holding
            // received another part of the rata between the app's read and the write, so
            // the writer asks for §5 to be checked again (R-CHAIN, decided in the writer).
            OpKind::CedeWhole | OpKind::CedePartial => &[
                "invalid",
                "r_pending_out",
                "insufficient_available",
                "r_chain_not_qualified",
                "r_chain_holding_changed",
                "not_cedible",
            ],
            // Someone answered or annulled the same operations first.
            OpKind::Accept | OpKind::Refuse | OpKind::Annul => &["conflict"],
            // Less is available than was read: a cession, another F24 or a split took it.
            OpKind::ReserveF24 => &["f24_over"],
            // Another client confirmed or discarded the same reservation first.
            OpKind::ConfirmF24 | OpKind::DiscardF24 => &["conflict"],
            // Less of the rata is left than was read.
            OpKind::Split => &["r_split_over_residual"],
            // Another client annulled the same split first, or an F24 used or reserved one
            // of its rate (refused whole).
            OpKind::AnnulSplit => &["conflict", "r_split_annul_rata_touched"],
        }
    }
}

#[derive(Debug)]
struct Actor {
    party: Party,
    who: Principal,
}

/// One request as a client sends it: enough to send it again under the same key.
#[derive(Clone, Debug)]
enum Request {
    Communicate {
        actor: usize,
        input: OptionInput,
    },
    Cede {
        actor: usize,
        lines: Vec<CessionLine>,
    },
    Answer {
        actor: usize,
        filter: IncomingFilter,
        accept: bool,
    },
    Annul {
        actor: usize,
        credit: i64,
    },
    ReserveF24 {
        actor: usize,
        lines: Vec<F24LineInput>,
    },
    EndF24 {
        actor: usize,
        reservation: i64,
        confirm: bool,
    },
    Split {
        actor: usize,
        rata: RataId,
        amount: Cents,
    },
    AnnulSplit {
        actor: usize,
        credit: i64,
    },
}

impl Request {
    fn actor(&self) -> usize {
        match self {
            Request::Communicate { actor, .. }
            | Request::Cede { actor, .. }
            | Request::Answer { actor, .. }
            | Request::Annul { actor, .. }
            | Request::ReserveF24 { actor, .. }
            | Request::EndF24 { actor, .. }
            | Request::Split { actor, .. }
            | Request::AnnulSplit { actor, .. } => *actor,
        }
    }
}

/// What an acknowledged request returned.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Done {
    operation_id: i64,
    transfers: Vec<TransferId>,
    amount: Cents,
    replayed: bool,
    /// For a communication or a split: the credit created and its rate.
    credit: Option<(i64, Vec<(RataId, Cents)>)>,
}

#[derive(Clone, Debug)]
struct Ack {
    kind: OpKind,
    user_id: i64,
    key: String,
    done: Done,
}

impl World {
    fn today(&self) -> NaiveDate {
        let (y, m, d) = PHASES[self.phase.load(Ordering::Acquire)];
        date(y, m, d)
    }

    /// The year whose rate an F24 paid today may use, and the one a split takes from.
    fn year(&self) -> u16 {
        u16::try_from(PHASES[self.phase.load(Ordering::Acquire)].0).unwrap()
    }

    /// The actors of the current epoch (the hot parties).
    fn hot(&self) -> std::ops::Range<usize> {
        let start = self.epoch.load(Ordering::Acquire) * PARTIES as usize;
        start..start + PARTIES as usize
    }
}

/// What the clients and the reader share.
#[derive(Debug)]
struct World {
    app: App,
    /// The hot parties of every epoch, [`PARTIES`] per epoch.
    actors: Vec<Actor>,
    /// Which epoch's parties the clients work on.
    epoch: AtomicUsize,
    /// Every rata of the register: (id, amount, accepted when the workload began).
    rate: Mutex<Vec<(RataId, Cents, bool)>>,
    /// Communications of the workload that may still be annulled: (credit, beneficiary).
    annullable: Mutex<Vec<(i64, usize)>>,
    /// F24 reservations not yet confirmed or discarded: (reservation, party's actor).
    reservations: Mutex<Vec<(i64, usize)>>,
    /// Splits not yet annulled: (split credit, holder's actor).
    splits: Mutex<Vec<(i64, usize)>>,
    /// Which of [`PHASES`] the clock stands on.
    phase: AtomicUsize,
    acks: Mutex<Vec<Ack>>,
    refused: Mutex<BTreeMap<(OpKind, &'static str), u64>>,
    done: AtomicBool,
    /// Steps taken by all clients, for the progress lines of long runs.
    steps: AtomicU64,
    retries: AtomicU64,
    /// Attempts that found nothing to do of their kind.
    skipped: Mutex<BTreeMap<OpKind, u64>>,
}

async fn send(w: &World, key: &str, req: &Request) -> Result<Done, AppError> {
    let app = &w.app;
    let a = &w.actors[req.actor()];
    match req {
        Request::Communicate { input, .. } => {
            let credit = app.communicate_option(&a.who, key, None, input).await?;
            let receipt = app
                .store()
                .receipt(&scoped(&a.who, key))
                .await
                .unwrap()
                .unwrap();
            Ok(Done {
                operation_id: receipt.operation_id,
                transfers: receipt.transfers,
                amount: receipt.amount,
                replayed: false,
                credit: Some((
                    credit.id,
                    credit.rate.iter().map(|r| (r.id, r.amount)).collect(),
                )),
            })
        }
        Request::Cede { lines, .. } => {
            let r = app.cede(&a.who, key, None, a.party.id, lines, true).await?;
            Ok(Done {
                operation_id: r.operation_id,
                transfers: r.transfers,
                amount: r.amount,
                replayed: r.replayed,
                credit: None,
            })
        }
        Request::Answer { filter, accept, .. } => {
            let r = app
                .answer(&a.who, key, None, a.party.id, filter, *accept)
                .await?;
            transfers_of(w, a, key, r.operation_id, r.amount, r.replayed).await
        }
        Request::Annul { credit, .. } => {
            let r = app.annul_option(&a.who, key, None, *credit).await?;
            transfers_of(w, a, key, r.operation_id, r.amount, r.replayed).await
        }
        Request::ReserveF24 { lines, .. } => {
            let r = app
                .reserve_f24(
                    &a.who,
                    key,
                    None,
                    a.party.id,
                    F24Form {
                        payment_date: w.today(),
                        lines,
                        debits: &[],
                    },
                )
                .await?;
            Ok(Done {
                operation_id: r.reservation,
                transfers: r.takes.iter().map(|t| t.transfer).collect(),
                amount: r.amount,
                replayed: r.replayed,
                credit: None,
            })
        }
        Request::EndF24 {
            reservation,
            confirm,
            ..
        } => {
            let r = if *confirm {
                app.confirm_f24(&a.who, key, None, a.party.id, *reservation)
                    .await?
            } else {
                app.discard_f24(&a.who, key, None, a.party.id, *reservation)
                    .await?
            };
            transfers_of(w, a, key, r.operation_id, r.amount, r.replayed).await
        }
        Request::Split { rata, amount, .. } => {
            let r = app
                .split_rata(&a.who, key, None, a.party.id, *rata, *amount)
                .await?;
            let mut done = transfers_of(w, a, key, r.operation_id, r.amount, r.replayed).await?;
            done.credit = Some((
                r.split_credit,
                r.rate.iter().map(|x| (x.rata, x.amount)).collect(),
            ));
            Ok(done)
        }
        Request::AnnulSplit { credit, .. } => {
            let r = app
                .annul_split(&a.who, key, None, a.party.id, SplitTarget::Credit(*credit))
                .await?;
            transfers_of(w, a, key, r.operation_id, Cents::ZERO, r.replayed).await
        }
    }
}

/// An answer's receipt carries counts, not transfer ids: the stored receipt has them.
async fn transfers_of(
    w: &World,
    a: &Actor,
    key: &str,
    operation_id: i64,
    amount: Cents,
    replayed: bool,
) -> Result<Done, AppError> {
    let stored = w
        .app
        .store()
        .receipt(&scoped(&a.who, key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.operation_id, operation_id);
    Ok(Done {
        operation_id,
        transfers: stored.transfers,
        amount,
        replayed,
        credit: None,
    })
}

fn scoped(who: &Principal, key: &str) -> IdempotencyKey {
    IdempotencyKey::parse(&format!("u{}:{key}", who.user_id)).unwrap()
}

/// Reads what the actor could do and builds a request of the kind, or None when there is
/// nothing to do of that kind right now.
async fn choose(w: &World, rng: &mut SplitMix64, kind: OpKind) -> Option<Request> {
    let hot = w.hot();
    // Another hot party than `actor`.
    let other = |rng: &mut SplitMix64, actor: usize| {
        hot.start + (actor - hot.start + 1 + rng.below_usize(hot.len() - 1)) % hot.len()
    };
    let actor = hot.start + rng.below_usize(hot.len());
    let me = &w.actors[actor];
    let app = &w.app;
    match kind {
        OpKind::Communicate => {
            let holder = other(rng, actor);
            Some(Request::Communicate {
                actor,
                input: OptionInput {
                    beneficiary_cf: me.party.cf.as_str().into(),
                    // Some Superbonus, so that splits keep finding rate to split.
                    type_key: if rng.chance(4) {
                        "superbonus"
                    } else {
                        "ecobonus"
                    }
                    .into(),
                    expense_year: 2021,
                    origin: if rng.chance(2) {
                        Origin::Cessione
                    } else {
                        Origin::Sconto
                    },
                    holder_cf: w.actors[holder].party.cf.as_str().into(),
                    total: Cents::new(1_000 + i64::try_from(rng.below(500_000)).unwrap()),
                    communicated_on: None,
                    exception: None,
                },
            })
        }
        OpKind::CedeWhole | OpKind::CedePartial => {
            let cedible = app.cedible(&me.who, me.party.id).await.unwrap();
            if cedible.is_empty() {
                return None;
            }
            let to = other(rng, actor);
            let mut rows: Vec<_> = cedible.iter().collect();
            let n = 1 + rng.below_usize(3.min(rows.len()));
            let mut lines = Vec::with_capacity(n);
            for _ in 0..n {
                let h = rows.swap_remove(rng.below_usize(rows.len()));
                assert!(h.partial_allowed, "non-tracciabile: {h:?}");
                let amount = (kind == OpKind::CedePartial).then(|| {
                    let max = u64::try_from(h.max_cedibile.get()).unwrap();
                    Cents::new(i64::try_from(1 + rng.next_u64() % max).unwrap())
                });
                lines.push(CessionLine {
                    rata: h.rata,
                    cessionario_cf: w.actors[to].party.cf.as_str().into(),
                    amount,
                });
            }
            Some(Request::Cede { actor, lines })
        }
        OpKind::Accept | OpKind::Refuse => {
            let groups = app
                .incoming(&me.who, me.party.id, &IncomingFilter::default())
                .await
                .unwrap();
            // Mostly one group; sometimes everything ("Accetta tutti").
            let filter = if rng.chance(8) {
                IncomingFilter::default()
            } else {
                let g = rng.pick(&groups)?;
                IncomingFilter {
                    type_key: Some(g.type_key.clone()),
                    year: Some(g.year),
                    cedente_cf: Some(g.cedente.cf.clone()),
                }
            };
            Some(Request::Answer {
                actor,
                filter,
                accept: kind == OpKind::Accept,
            })
        }
        OpKind::Annul => {
            let (credit, beneficiary) = {
                let list = w.annullable.lock().unwrap();
                *rng.pick(&list)?
            };
            Some(Request::Annul {
                actor: beneficiary,
                credit,
            })
        }
        OpKind::ReserveF24 => {
            let usable: Vec<_> = app
                .f24_availability(&me.who, me.party.id)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.usable.is_positive())
                .collect();
            let mut rows: Vec<_> = usable.iter().collect();
            if rows.is_empty() {
                return None;
            }
            let n = 1 + rng.below_usize(2.min(rows.len()));
            let mut lines = Vec::with_capacity(n);
            for _ in 0..n {
                let r = rows.swap_remove(rng.below_usize(rows.len()));
                assert_eq!(r.year, w.year(), "usable today: {r:?}");
                // Mostly a small part of what is usable, so that F24s do not drain the
                // register; now and then all of it, to race cessions for the last cent.
                let max = u64::try_from(r.usable.get()).unwrap();
                let amount = if rng.chance(10) {
                    max
                } else {
                    1 + rng.next_u64() % max.min(20_000)
                };
                lines.push(F24LineInput {
                    codice_tributo: r.codice_tributo.clone(),
                    year: r.year,
                    amount: Cents::new(i64::try_from(amount).unwrap()),
                });
            }
            Some(Request::ReserveF24 { actor, lines })
        }
        OpKind::ConfirmF24 | OpKind::DiscardF24 => {
            let (reservation, owner) = {
                let list = w.reservations.lock().unwrap();
                *rng.pick(&list)?
            };
            Some(Request::EndF24 {
                actor: owner,
                reservation,
                confirm: kind == OpKind::ConfirmF24,
            })
        }
        OpKind::Split => {
            let held = app
                .store()
                .holding_infos(&HoldingQuery {
                    max_year: Some(w.year()),
                    only_available: true,
                    ..HoldingQuery::of(me.party.id)
                })
                .await
                .unwrap();
            let splittable: Vec<_> = held
                .iter()
                .filter(|h| {
                    h.type_key == "superbonus"
                        && SPLITTABLE_CODES.contains(&h.rata.codice_tributo.as_str())
                        && h.rata.year.get() == w.year()
                })
                .collect();
            let h = rng.pick(&splittable)?;
            let available = h.account.balance.available().unwrap();
            let max = u64::try_from(available.get()).unwrap();
            // Mostly a part, sometimes the whole residual (R-SPLIT-CENTS covers the cents).
            let amount = if rng.chance(6) {
                max
            } else {
                1 + rng.next_u64() % max
            };
            Some(Request::Split {
                actor,
                rata: h.rata.id,
                amount: Cents::new(i64::try_from(amount).unwrap()),
            })
        }
        OpKind::AnnulSplit => {
            let (credit, holder) = {
                let list = w.splits.lock().unwrap();
                *rng.pick(&list)?
            };
            Some(Request::AnnulSplit {
                actor: holder,
                credit,
            })
        }
    }
}

/// One client: `ops` steps of a phase with its own seeded generator.
async fn client(w: Arc<World>, id: usize, seed: u64, ops: u64) {
    let phase = w.phase.load(Ordering::Acquire);
    let epoch = w.epoch.load(Ordering::Acquire);
    let mut rng = SplitMix64::new(
        seed ^ (id as u64).wrapping_mul(0x0123_4567_89AB_CDEF)
            ^ (phase as u64).wrapping_mul(31)
            ^ (epoch as u64).wrapping_mul(0x9E37_79B9),
    );
    for step in 0..ops {
        w.steps.fetch_add(1, Ordering::Relaxed);
        let kind = OpKind::random(&mut rng, phase);
        let Some(req) = choose(&w, &mut rng, kind).await else {
            *w.skipped.lock().unwrap().entry(kind).or_default() += 1;
            continue;
        };
        let key = format!("bank-{phase}-{epoch}-{id}-{step}-{:x}", rng.next_u64());
        let who = &w.actors[req.actor()].who;
        // Now and then the same request twice at once under one key: one application.
        let concurrent = rng.chance(40);
        let result = if concurrent {
            let (a, b) = tokio::join!(send(&w, &key, &req), send(&w, &key, &req));
            w.retries.fetch_add(1, Ordering::Relaxed);
            match (a, b) {
                (Ok(x), Ok(y)) => {
                    assert_eq!(
                        x.operation_id, y.operation_id,
                        "one key applied twice: {req:?}"
                    );
                    Ok(if x.replayed { y } else { x })
                }
                (Ok(x), Err(e)) | (Err(e), Ok(x)) => {
                    // The loser read the state the winner changed; it applied nothing.
                    expect_refusal(&w, kind, &e, &req);
                    Ok(x)
                }
                (Err(e), Err(_)) => Err(e),
            }
        } else {
            send(&w, &key, &req).await
        };
        match result {
            Ok(done) => {
                match (&req, &done.credit) {
                    (Request::Communicate { .. }, Some((credit, rate))) => {
                        w.rate
                            .lock()
                            .unwrap()
                            .extend(rate.iter().map(|(r, a)| (*r, *a, false)));
                        w.annullable.lock().unwrap().push((*credit, req.actor()));
                    }
                    // Split rate are issued to the holder, accepted from the start.
                    (Request::Split { .. }, Some((credit, rate))) if !done.replayed => {
                        w.rate
                            .lock()
                            .unwrap()
                            .extend(rate.iter().map(|(r, a)| (*r, *a, true)));
                        w.splits.lock().unwrap().push((*credit, req.actor()));
                    }
                    (Request::ReserveF24 { .. }, _) if !done.replayed => {
                        w.reservations
                            .lock()
                            .unwrap()
                            .push((done.operation_id, req.actor()));
                    }
                    _ => {}
                }
                forget_ended(&w, &req);
                // A deliberate retry of an acknowledged request: the first receipt again.
                if rng.chance(8) {
                    w.retries.fetch_add(1, Ordering::Relaxed);
                    let again = send(&w, &key, &req)
                        .await
                        .unwrap_or_else(|e| panic!("retry of {req:?} refused: {e} ({e:?})"));
                    if !matches!(req, Request::Communicate { .. }) {
                        assert!(again.replayed, "retry not replayed: {req:?}");
                    }
                    assert_eq!(
                        (again.operation_id, &again.transfers, again.amount),
                        (done.operation_id, &done.transfers, done.amount),
                        "a retry got another receipt: {req:?}"
                    );
                }
                w.acks.lock().unwrap().push(Ack {
                    kind,
                    user_id: who.user_id,
                    key,
                    done,
                });
            }
            Err(e) => {
                expect_refusal(&w, kind, &e, &req);
                forget_ended(&w, &req);
            }
        }
    }
}

/// Whatever a request ended, acknowledged or refused, is no longer offered to the clients.
fn forget_ended(w: &World, req: &Request) {
    match req {
        Request::Annul { credit, .. } => {
            w.annullable.lock().unwrap().retain(|(c, _)| c != credit);
        }
        Request::EndF24 { reservation, .. } => {
            w.reservations
                .lock()
                .unwrap()
                .retain(|(r, _)| r != reservation);
        }
        Request::AnnulSplit { credit, .. } => {
            w.splits.lock().unwrap().retain(|(c, _)| c != credit);
        }
        _ => {}
    }
}

fn expect_refusal(w: &World, kind: OpKind, e: &AppError, req: &Request) {
    let code = e.code();
    assert!(
        kind.expected_refusals().contains(&code),
        "{kind:?} refused with {code}: {e} ({req:?})"
    );
    *w.refused.lock().unwrap().entry((kind, code)).or_default() += 1;
}

/// A rata's accounts recomputed from one read of its history (one consistent snapshot):
/// the balances and the issuance account (the debit of the first transfer).
fn replay(rows: &[TransferRow]) -> (HashMap<AccountId, Balance>, Option<AccountId>) {
    let mut balances = HashMap::new();
    let mut pending = HashMap::new();
    let mut resolved = std::collections::HashSet::new();
    for row in rows {
        replay_entry(&mut balances, &mut pending, &mut resolved, &row.fields())
            .unwrap_or_else(|e| panic!("transfer {}: {e}", row.id));
    }
    // A split rata is issued by its split, recorded as such.
    let issuance = rows
        .first()
        .filter(|r| matches!(r.kind, TransferKind::Issue | TransferKind::Split))
        .map(|r| r.debit);
    (balances, issuance)
}

fn wide(c: Cents) -> i128 {
    i128::from(c.get())
}

/// R-CONSERVE on one snapshot of a rata: no holder negative, the accounts sum to zero, and
/// a rata accepted before the workload is still wholly held by holders (pending or not).
fn check_rata(rata: RataId, amount: Cents, accepted: bool, rows: &[TransferRow]) {
    let (balances, issuance) = replay(rows);
    let issuance = issuance.unwrap_or_else(|| panic!("rata {rata}: no issuance"));
    let mut sum = 0i128;
    let mut held_posted = 0i128;
    let (mut pending_out, mut pending_in) = (0i128, 0i128);
    for (account, b) in &balances {
        sum += wide(b.credits_posted) - wide(b.debits_posted) + wide(b.credits_pending)
            - wide(b.debits_pending);
        if *account == issuance {
            continue;
        }
        let available = b.available().unwrap();
        assert!(
            !available.is_negative() && !b.credits_pending.is_negative(),
            "rata {rata}: account {account} negative: {b:?}"
        );
        held_posted += wide(b.credits_posted) - wide(b.debits_posted);
        pending_out += wide(b.debits_pending);
        pending_in += wide(b.credits_pending);
    }
    assert_eq!(sum, 0, "rata {rata}: accounts do not sum to zero");
    if accepted {
        assert_eq!(
            (held_posted, pending_out),
            (wide(amount), pending_in),
            "rata {rata}: the holders' total changed (R-CONSERVE)"
        );
    }
}

/// The concurrent reader: balances never negative, totals never changed, at every instant
/// it observes. Returns how many snapshots it checked.
async fn reader(w: Arc<World>, op: Principal, verify_every: std::time::Duration) -> u64 {
    let mut observed = 0u64;
    let mut last_verify = Instant::now();
    let mut next_rata = 0usize;
    let mut round = 0u64;
    // A long run says how far it got, so that one stopped early still has figures.
    let started = Instant::now();
    let mut next_progress = PROGRESS_EVERY;
    loop {
        if started.elapsed() >= next_progress {
            next_progress += PROGRESS_EVERY;
            let steps = w.steps.load(Ordering::Relaxed);
            println!(
                "bank [{}] progress: {:.0} s, {steps} ops = {:.0} ops/s, {} acknowledged, phase {}, epoch {}, {} snapshots",
                w.app.store().backend(),
                started.elapsed().as_secs_f64(),
                steps as f64 / started.elapsed().as_secs_f64(),
                w.acks.lock().unwrap().len(),
                w.phase.load(Ordering::Relaxed),
                w.epoch.load(Ordering::Relaxed),
                observed,
            );
        }
        let last = w.done.load(Ordering::Acquire);
        for a in &w.actors[w.hot()] {
            for h in w.app.store().holdings(a.party.id).await.unwrap() {
                let b = h.balance;
                assert!(
                    b.available().is_some_and(|v| !v.is_negative())
                        && !b.credits_pending.is_negative()
                        && !b.debits_pending.is_negative(),
                    "negative holding {h:?}"
                );
                observed += 1;
            }
            // F1 replays the §5 history of every holding: every few rounds, so that the
            // reader does not take a core from the clients.
            if !round.is_multiple_of(F1_EVERY_ROUNDS) {
                continue;
            }
            for row in w.app.monitoring(&op, a.party.id, None).await.unwrap() {
                for v in [
                    row.received_pending,
                    row.received_accepted,
                    row.ceded_pending,
                    row.ceded_accepted,
                    row.residual_cedible,
                ] {
                    assert!(!v.is_negative(), "F1 negative: {row:?}");
                }
            }
        }
        let sample: Vec<_> = {
            let rate = w.rate.lock().unwrap();
            (0..8.min(rate.len()))
                .map(|i| rate[(next_rata + i) % rate.len()])
                .collect()
        };
        next_rata += sample.len();
        for (rata, amount, accepted) in sample {
            check_rata(
                rata,
                amount,
                accepted,
                &w.app.store().history(rata).await.unwrap(),
            );
            observed += 1;
        }
        round += 1;
        if round.is_multiple_of(25) && last_verify.elapsed() >= verify_every {
            last_verify = Instant::now();
            let report = w.app.store().verify().await.unwrap();
            assert!(report.ok(), "verify while writing: {:?}", report.problems);
            observed += 1;
        }
        if last {
            return observed;
        }
        // A short pause between rounds: still hundreds of observed instants a second.
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

async fn bank_workload_conserves_credit_and_applies_each_acknowledged_operation_once(t: TestApp) {
    let ops: u64 = env_or("CESSIO_BANK_OPS", 2_000);
    let clients: usize = env_or("CESSIO_BANK_CLIENTS", 8);
    let seed: u64 = env_or("CESSIO_BANK_SEED", 20_240_301);
    let epoch_ops: u64 = env_or("CESSIO_BANK_EPOCH_OPS", 0);
    let verify_every = std::time::Duration::from_secs(env_or("CESSIO_BANK_VERIFY_SECS", 0));
    let (y, m, d) = PHASES[0];
    t.set_rome(y, m, d, 10, 0);

    // The run's stages: (phase, steps per client, epoch). Without epochs one set of hot
    // parties goes through both phases; with them each stage has its own.
    let per_client = ops.div_ceil(clients as u64);
    let mut stages = Vec::new();
    for phase in 0..PHASES.len() {
        let mut steps = if phase == 0 {
            per_client.div_ceil(2)
        } else {
            per_client / 2
        };
        let chunk = match epoch_ops.div_ceil(clients as u64) {
            0 => steps.max(1),
            n => n,
        };
        while steps > 0 {
            let epoch = if epoch_ops == 0 { 0 } else { stages.len() };
            stages.push((phase, chunk.min(steps), epoch));
            steps -= chunk.min(steps);
        }
    }
    let epochs = stages.iter().map(|(_, _, e)| e + 1).max().unwrap_or(1);

    let mut actors = Vec::new();
    let mut rate = Vec::new();
    // Password and PIN are hashed once (Argon2 is deliberately slow) and the hashes shared
    // by every hot party's user, which changes nothing for SPID sign-in: a run of many
    // epochs would otherwise spend minutes hashing.
    let mut template: Option<cessio_store::User> = None;
    for n in 1..=PARTIES * u32::try_from(epochs).unwrap() {
        let party = t.company(n).await;
        let user = format!("hot{n}");
        match &template {
            None => {
                let first = t.user_for(&party, &user).await;
                template = t.app.store().user(first.user_id).await.unwrap();
            }
            Some(u) => {
                t.app
                    .store()
                    .create_user(
                        NewUser {
                            username: user.clone(),
                            display_name: format!("Utente {user}"),
                            password_hash: u.password_hash.clone(),
                            pin_hash: u.pin_hash.clone(),
                            party: Some(party.id),
                            role: Role::User,
                        },
                        "bank",
                        t.app.now(),
                    )
                    .await
                    .unwrap();
            }
        }
        // SPID: no PIN (and no Argon2) on every operation.
        let who = t.strong(&user).await;
        for _ in 0..CREDITS_EACH {
            let c = t
                .holding(&party, &who, "ecobonus", CREDIT_CENTS, old_day())
                .await;
            assert!(!c.tracciabile);
            rate.extend(c.rate.iter().map(|r| (r.id, r.amount, true)));
        }
        let sb = t
            .holding(&party, &who, "superbonus", SUPERBONUS_CENTS, old_day())
            .await;
        assert_eq!(sb.rate[0].codice_tributo, "7701");
        rate.extend(sb.rate.iter().map(|r| (r.id, r.amount, true)));
        actors.push(Actor { party, who });
    }
    let setup_ops = operations(&t, &rate).await;
    let w = Arc::new(World {
        app: t.app.clone(),
        actors,
        epoch: AtomicUsize::new(0),
        rate: Mutex::new(rate),
        annullable: Mutex::new(Vec::new()),
        reservations: Mutex::new(Vec::new()),
        splits: Mutex::new(Vec::new()),
        phase: AtomicUsize::new(0),
        acks: Mutex::new(Vec::new()),
        refused: Mutex::new(BTreeMap::new()),
        done: AtomicBool::new(false),
        steps: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        skipped: Mutex::new(BTreeMap::new()),
    });

    let started = Instant::now();
    let observer = tokio::spawn(reader(w.clone(), t.op.clone(), verify_every));
    for (phase, steps, epoch) in stages {
        // Time moves only between phases, and the hot set between epochs, with no request
        // in flight.
        let (y, m, d) = PHASES[phase];
        t.set_rome(y, m, d, 10, 0);
        w.phase.store(phase, Ordering::Release);
        w.epoch.store(epoch, Ordering::Release);
        let tasks: Vec<_> = (0..clients)
            .map(|id| tokio::spawn(client(w.clone(), id, seed, steps)))
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }
    let elapsed = started.elapsed();
    w.done.store(true, Ordering::Release);
    let observed = observer.await.unwrap();

    // 1. The verifier: chain, balances vs history, R-CONSERVE.
    let report = t.app.store().verify().await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);

    // 2. Every stored balance equals the one recomputed from its rata's history.
    let rate = w.rate.lock().unwrap().clone();
    let mut stored: HashMap<AccountId, Balance> = HashMap::new();
    for a in &w.actors {
        for h in t.app.store().holdings(a.party.id).await.unwrap() {
            stored.insert(h.id, h.balance);
        }
    }
    let mut history_ops: BTreeMap<i64, Vec<TransferId>> = BTreeMap::new();
    let mut holder_accounts = 0usize;
    for (rata, amount, accepted) in &rate {
        let rows = t.app.store().history(*rata).await.unwrap();
        check_rata(*rata, *amount, *accepted, &rows);
        for r in &rows {
            history_ops.entry(r.operation).or_default().push(r.id);
        }
        let (balances, issuance) = replay(&rows);
        let issuance = issuance.unwrap();
        let stored_issuance = t
            .app
            .store()
            .account(*rata, AccountRef::System(AccountKind::Issuance))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored_issuance.id, issuance);
        assert_eq!(stored_issuance.balance, balances[&issuance], "rata {rata}");
        // F24 use and splits move credit to the rata's system accounts, not held by anyone.
        let mut system = BTreeSet::from([issuance]);
        for kind in [AccountKind::Used, AccountKind::Split, AccountKind::Expired] {
            if let Some(a) = t
                .app
                .store()
                .account(*rata, AccountRef::System(kind))
                .await
                .unwrap()
            {
                let replayed = balances.get(&a.id).copied().unwrap_or_default();
                assert_eq!(a.balance, replayed, "rata {rata}: {kind:?} account");
                system.insert(a.id);
            }
        }
        for (account, b) in &balances {
            if system.contains(account) {
                continue;
            }
            holder_accounts += 1;
            let s = stored
                .get(account)
                .unwrap_or_else(|| panic!("account {account} of rata {rata} not held"));
            assert_eq!(
                s, b,
                "account {account}: stored balance differs from history"
            );
        }
    }
    assert_eq!(
        holder_accounts,
        stored.len(),
        "holdings outside the history"
    );

    // 3. Each acknowledged operation exactly once: its key names it, its transfers are in
    // the history under it, and no operation is in the history that nobody acknowledged.
    let acks = w.acks.lock().unwrap().clone();
    let mut acked = BTreeSet::new();
    let by_user: HashMap<i64, &Principal> =
        w.actors.iter().map(|a| (a.who.user_id, &a.who)).collect();
    for ack in &acks {
        assert!(
            acked.insert(ack.done.operation_id),
            "operation {} acknowledged under two keys",
            ack.done.operation_id
        );
        let receipt = t
            .app
            .store()
            .receipt(&scoped(by_user[&ack.user_id], &ack.key))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged {} lost", ack.key));
        assert_eq!(receipt.operation_id, ack.done.operation_id);
        let mut expected = ack.done.transfers.clone();
        expected.sort_unstable();
        let mut found = history_ops
            .get(&ack.done.operation_id)
            .cloned()
            .unwrap_or_default();
        found.sort_unstable();
        assert_eq!(found, expected, "{:?} {}: transfers", ack.kind, ack.key);
    }
    let in_history: BTreeSet<i64> = history_ops.keys().copied().collect();
    let unacknowledged: Vec<_> = in_history
        .difference(&setup_ops)
        .filter(|op| !acked.contains(op))
        .collect();
    assert!(
        unacknowledged.is_empty(),
        "applied but never acknowledged: {unacknowledged:?}"
    );

    let secs = elapsed.as_secs_f64();
    let mut by_kind: BTreeMap<OpKind, u64> = BTreeMap::new();
    for a in &acks {
        *by_kind.entry(a.kind).or_default() += 1;
    }
    let refused = w.refused.lock().unwrap().clone();
    let skipped = w.skipped.lock().unwrap().clone();
    println!(
        "bank [{}]: {ops} ops by {clients} clients ({epochs} epochs of {PARTIES} hot parties) in {secs:.1} s = {:.0} ops/s; acknowledged {}; retries {}; reader checked {observed} snapshots; {} rate, {} transfers",
        t.app.store().backend(),
        ops as f64 / secs,
        acks.len(),
        w.retries.load(Ordering::Relaxed),
        rate.len(),
        report.transfers,
    );
    // One line per kind: what was attempted and how each attempt ended.
    for (kind, _) in MIX {
        let mine: Vec<_> = refused.iter().filter(|((k, _), _)| k == kind).collect();
        let refusals: Vec<String> = mine
            .iter()
            .map(|((_, code), n)| format!("{code} {n}"))
            .collect();
        println!(
            "  {kind:?}: acknowledged {}, refused {} [{}], nothing to do {}",
            by_kind.get(kind).copied().unwrap_or(0),
            mine.iter().map(|(_, n)| **n).sum::<u64>(),
            refusals.join(", "),
            skipped.get(kind).copied().unwrap_or(0),
        );
    }
    assert!(
        by_kind.len() == MIX.len(),
        "every kind of operation was acknowledged at least once: {by_kind:?}"
    );
}

/// The operations in the history of these rate.
async fn operations(t: &TestApp, rate: &[(RataId, Cents, bool)]) -> BTreeSet<i64> {
    let mut ops = BTreeSet::new();
    for (rata, _, _) in rate {
        for r in t.app.store().history(*rata).await.unwrap() {
            ops.insert(r.operation);
        }
    }
    ops
}
