//! Model against app: random sequences of cessions, answers and days passing, applied both
//! to a small in-memory model of the rules and to the real app; after every step the
//! outcome (ok or which refusal) and every balance must agree.
//!
//! The model knows holdings per (party, rata): posted, pending out, pending in; and the
//! rules F2/F3 apply: R-PARTIAL, insufficient available (R-PENDING-OUT), R-PA, no cession
//! to oneself, the same rata twice in one cession, non-positive and too large amounts,
//! R-ANSWER (whole groups selected by type, year and cedente; nothing to answer is a
//! conflict) and R-WAIT5 with its own calendar of 2024.
//!
//!   cargo test -p cessio-app --test model                       # 32 cases x 30 steps
//!   CESSIO_MODEL_CASES=1000 CESSIO_MODEL_STEPS=60 cargo test --release -p cessio-app --test model
//!
//! With `CESSIO_TEST_DATABASE_URL` a few cases also run on PostgreSQL.
//! New operations (F24 use, splits) are one more [`Step`] variant, its rule in
//! [`Model::apply`] and its call in [`run_step`].

#![expect(clippy::unwrap_used, reason = "tests")]

#[macro_use]
#[expect(
    unused_macros,
    reason = "this file runs the backends itself, without backends!"
)]
mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;

use cessio_app::{CessionLine, IncomingFilter, OptionInput};
use cessio_core::ledger::RataId;
use cessio_core::money::Cents;
use cessio_store::{Party, PartyKind};
use cessio_test_support::env_or;
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use support::*;

/// Holders with a user: A (non-tracciabile Ecobonus), B (tracciabile Superbonus),
/// C (rent credit, art. 122: tracciabile but partial allowed).
const HOLDERS: usize = 3;
/// Index of the public administration among the cessionari.
const PA: usize = 3;
/// The rate still in their window on 1 March 2024: 8 Ecobonus (2024–2031) + 3 Superbonus
/// (2024–2026) + 1 rent rata.
const RATE: usize = 12;

#[derive(Clone, Copy, Debug)]
enum Amount {
    /// No amount: the maximum cedibile.
    Whole,
    /// A fraction (in per mille) of the maximum cedibile, at least one cent.
    Part(u16),
    /// The maximum plus this many cents (over the available).
    Over(i64),
    Exact(i64),
}

/// Which rata a cession line names: mostly one the cedente holds (so that cessions get
/// past the first check), sometimes any rata of the register.
#[derive(Clone, Copy, Debug)]
enum Pick {
    /// The n-th (modulo their number) rata the cedente has available.
    Held(usize),
    Any(usize),
}

#[derive(Clone, Debug)]
enum Step {
    Cede {
        from: usize,
        /// Offset from the cedente among A, B, C (0 is itself), or [`PA`].
        to: usize,
        lines: Vec<(Pick, Amount)>,
    },
    Answer {
        /// Mostly a party with something to answer (the n-th of them), else any holder.
        party: Pick,
        cedente: Option<usize>,
        /// Index into [`TYPES`].
        type_key: Option<usize>,
        year: Option<u16>,
        accept: bool,
    },
    /// The clock moves on (R-WAIT5).
    Advance { days: u8 },
}

const TYPES: [&str; 3] = ["ecobonus", "superbonus", "tax_credit_vacanze"];

fn amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        3 => Just(Amount::Whole),
        4 => (1u16..=1000).prop_map(Amount::Part),
        1 => (1i64..500).prop_map(Amount::Over),
        1 => prop_oneof![
            Just(0i64),
            Just(-1),
            Just(Cents::MAX_AMOUNT.get() + 1),
            1i64..30_000
        ]
        .prop_map(Amount::Exact),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (
            0..HOLDERS,
            // Mostly another holder; sometimes itself or the public administration.
            prop_oneof![8 => 1..HOLDERS, 1 => Just(0), 1 => Just(PA)],
            prop::collection::vec(
                (
                    prop_oneof![4 => (0..RATE).prop_map(Pick::Held), 1 => (0..RATE).prop_map(Pick::Any)],
                    amount()
                ),
                1..=2
            )
        )
            .prop_map(|(from, to, lines)| Step::Cede { from, to, lines }),
        4 => (
            prop_oneof![4 => (0..HOLDERS).prop_map(Pick::Held), 1 => (0..HOLDERS).prop_map(Pick::Any)],
            prop::option::weighted(0.25, 0..HOLDERS),
            prop::option::weighted(0.15, 0..TYPES.len()),
            prop::option::weighted(0.15, 2022u16..2027),
            any::<bool>()
        )
            .prop_map(|(party, cedente, type_key, year, accept)| Step::Answer {
                party,
                cedente,
                type_key,
                year,
                accept,
            }),
        1 => (1u8..=3).prop_map(|days| Step::Advance { days }),
    ]
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Holding {
    posted: i64,
    pending_out: i64,
    pending_in: i64,
}

impl Holding {
    fn available(&self) -> i64 {
        self.posted - self.pending_out
    }
}

#[derive(Clone, Debug)]
struct RataInfo {
    id: RataId,
    type_key: &'static str,
    year: u16,
    tracciabile: bool,
    partial_allowed: bool,
}

#[derive(Clone, Debug)]
struct PendingCession {
    rata: usize,
    from: usize,
    to: usize,
    amount: i64,
    registered_on: NaiveDate,
}

/// The model: what the rules say the register holds.
#[derive(Clone, Debug)]
struct Model {
    today: NaiveDate,
    rate: Vec<RataInfo>,
    holdings: BTreeMap<(usize, usize), Holding>,
    pending: Vec<PendingCession>,
    /// R-CHAIN: (holder, rata) received by a cession of an art. 121 credit: its next
    /// cession may go only to soggetti qualificati (every holder here is a company).
    received_by_cession: std::collections::BTreeSet<(usize, usize)>,
}

/// The model's own calendar of 2024 (SPEC R-WAIT5: weekends and national holidays).
fn working_day(d: NaiveDate) -> bool {
    const HOLIDAYS_2024: [(u32, u32); 11] = [
        (1, 1),
        (1, 6),
        (4, 1), // Lunedì dell'Angelo 2024
        (4, 25),
        (5, 1),
        (6, 2),
        (8, 15),
        (11, 1),
        (12, 8),
        (12, 25),
        (12, 26),
    ];
    assert_eq!(d.year(), 2024, "the model's calendar covers 2024");
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
        && !HOLIDAYS_2024.contains(&(d.month(), d.day()))
}

fn fifth_working_day_after(d: NaiveDate) -> NaiveDate {
    let mut day = d;
    let mut n = 0;
    while n < 5 {
        day += Duration::days(1);
        if working_day(day) {
            n += 1;
        }
    }
    day
}

/// How often each outcome occurred, printed at the end: a property that only ever saw
/// refusals would prove little.
static OUTCOMES: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// What the model expects of a step: applied, or refused with this code.
type Outcome = Result<(), &'static str>;

impl Model {
    fn holding(&mut self, party: usize, rata: usize) -> &mut Holding {
        self.holdings.entry((party, rata)).or_default()
    }

    fn available(&self, party: usize, rata: usize) -> i64 {
        self.holdings
            .get(&(party, rata))
            .map_or(0, Holding::available)
    }

    /// The rata index a pick names in the current state.
    fn resolve(&self, from: usize, pick: Pick) -> usize {
        match pick {
            Pick::Any(r) => r,
            Pick::Held(n) => {
                let held: Vec<usize> = (0..RATE).filter(|r| self.available(from, *r) > 0).collect();
                if held.is_empty() {
                    n
                } else {
                    held[n % held.len()]
                }
            }
        }
    }

    /// The cessionario a cession step names: an index among A, B, C, or [`PA`].
    fn to(from: usize, to: usize) -> usize {
        if to == PA { PA } else { (from + to) % HOLDERS }
    }

    /// The party an answer step names.
    fn answerer(&self, pick: Pick) -> usize {
        match pick {
            Pick::Any(p) => p,
            Pick::Held(n) => {
                let mut waiting: Vec<usize> = self.pending.iter().map(|p| p.to).collect();
                waiting.sort_unstable();
                waiting.dedup();
                if waiting.is_empty() {
                    n
                } else {
                    waiting[n % waiting.len()]
                }
            }
        }
    }

    fn cede(&mut self, from: usize, to: usize, lines: &[(Pick, Amount)]) -> Outcome {
        let to = Model::to(from, to);
        let lines: Vec<(usize, Amount)> = lines
            .iter()
            .map(|(p, a)| (self.resolve(from, *p), *a))
            .collect();
        let mut seen = Vec::new();
        let mut moves = Vec::new();
        for (rata, amount) in &lines {
            if seen.contains(rata) {
                return Err("invalid");
            }
            seen.push(*rata);
            let max = self.available(from, *rata);
            if max <= 0 {
                // Held but wholly pending out (R-PENDING-OUT), or not held at all.
                let pending_out = self
                    .holdings
                    .get(&(from, *rata))
                    .is_some_and(|h| h.pending_out > 0);
                return Err(if pending_out {
                    "r_pending_out"
                } else {
                    "invalid"
                });
            }
            if to == from {
                return Err("invalid");
            }
            if to == PA {
                return Err("r_pa");
            }
            if self.received_by_cession.contains(&(from, *rata)) {
                return Err("r_chain_not_qualified");
            }
            let requested = match amount_of(*amount, max) {
                None => max,
                Some(a) if a <= 0 => return Err("amount_not_positive"),
                Some(a) if a > Cents::MAX_AMOUNT.get() => return Err("amount_too_large"),
                Some(a) => a,
            };
            if !self.rate[*rata].partial_allowed && requested != max {
                return Err("r_partial");
            }
            if requested > max {
                return Err("insufficient_available");
            }
            moves.push((*rata, requested));
        }
        for (rata, amount) in moves {
            self.holding(from, rata).pending_out += amount;
            self.holding(to, rata).pending_in += amount;
            self.pending.push(PendingCession {
                rata,
                from,
                to,
                amount,
                registered_on: self.today,
            });
        }
        Ok(())
    }

    fn selected(
        &self,
        party: usize,
        cedente: Option<usize>,
        type_key: Option<usize>,
        year: Option<u16>,
    ) -> Vec<usize> {
        (0..self.pending.len())
            .filter(|i| {
                let p = &self.pending[*i];
                let r = &self.rate[p.rata];
                p.to == party
                    && cedente.is_none_or(|c| c == p.from)
                    && type_key.is_none_or(|t| TYPES[t] == r.type_key)
                    && year.is_none_or(|y| y == r.year)
            })
            .collect()
    }

    fn answer(
        &mut self,
        party: usize,
        cedente: Option<usize>,
        type_key: Option<usize>,
        year: Option<u16>,
        accept: bool,
    ) -> Outcome {
        let selected = self.selected(party, cedente, type_key, year);
        if selected.is_empty() {
            return Err("conflict");
        }
        let too_early = selected.iter().any(|i| {
            let p = &self.pending[*i];
            self.rate[p.rata].tracciabile && fifth_working_day_after(p.registered_on) > self.today
        });
        if too_early {
            return Err("answer_too_early");
        }
        for i in selected.iter().rev() {
            let p = self.pending.remove(*i);
            let from = self.holding(p.from, p.rata);
            from.pending_out -= p.amount;
            if accept {
                from.posted -= p.amount;
            }
            if accept && self.rate[p.rata].type_key != "tax_credit_vacanze" {
                self.received_by_cession.insert((p.to, p.rata));
            }
            let to = self.holding(p.to, p.rata);
            to.pending_in -= p.amount;
            if accept {
                to.posted += p.amount;
            }
        }
        Ok(())
    }

    fn apply(&mut self, step: &Step) -> Outcome {
        match step {
            Step::Cede { from, to, lines } => self.cede(*from, *to, lines),
            Step::Answer {
                party,
                cedente,
                type_key,
                year,
                accept,
            } => self.answer(self.answerer(*party), *cedente, *type_key, *year, *accept),
            Step::Advance { days } => {
                self.today += Duration::days(i64::from(*days));
                Ok(())
            }
        }
    }
}

fn amount_of(a: Amount, max: i64) -> Option<i64> {
    match a {
        Amount::Whole => None,
        Amount::Part(per_mille) => Some((max * i64::from(per_mille) / 1000).max(1)),
        Amount::Over(c) => Some(max + c),
        Amount::Exact(c) => Some(c),
    }
}

/// The app under test and the parties the model's indices name.
struct Subject {
    t: TestApp,
    holders: Vec<(Party, cessio_app::Principal)>,
    cessionari: Vec<Party>,
}

async fn setup(t: TestApp) -> (Subject, Model) {
    let mut holders = Vec::new();
    for n in 1..=HOLDERS {
        let party = t.company(u32::try_from(n).unwrap()).await;
        let user = format!("m{n}");
        let password = t.user_for(&party, &user).await;
        holders.push((party, password));
    }
    let pa = t.party(9, PartyKind::PublicAdministration).await;
    let mut rate = Vec::new();
    let eco = t
        .holding(&holders[0].0, &holders[0].1, "ecobonus", 10_000, old_day())
        .await;
    let sb = t
        .holding(
            &holders[1].0,
            &holders[1].1,
            "superbonus",
            100_000,
            tracciabile_day(),
        )
        .await;
    let landlord = t.company(8).await;
    let rent = t
        .try_communicate(&OptionInput {
            expense_year: 2020,
            ..t.option(
                &landlord,
                &holders[2].0,
                // Art. 122 regime still cedible in 2024 (rent credits only until 2021).
                "tax_credit_vacanze",
                50_000,
                date(2024, 3, 1),
            )
        })
        .await
        .unwrap();
    t.accept_all(&holders[2].1, &holders[2].0).await;
    let mut holdings = BTreeMap::new();
    for (owner, credit, type_key, partial) in [
        (0, &eco, TYPES[0], true),
        (1, &sb, TYPES[1], false),
        (2, &rent, TYPES[2], true),
    ] {
        for r in &credit.rate {
            holdings.insert(
                (owner, rate.len()),
                Holding {
                    posted: r.amount.get(),
                    ..Holding::default()
                },
            );
            rate.push(RataInfo {
                id: r.id,
                type_key,
                year: r.year.get(),
                tracciabile: credit.tracciabile,
                partial_allowed: partial,
            });
        }
    }
    assert_eq!(rate.len(), RATE);
    let mut strong = Vec::new();
    for (n, (party, _)) in holders.into_iter().enumerate() {
        strong.push((party, t.strong(&format!("m{}", n + 1)).await));
    }
    let mut cessionari: Vec<Party> = strong.iter().map(|(p, _)| p.clone()).collect();
    cessionari.push(pa);
    let model = Model {
        today: date(2024, 3, 1),
        rate,
        holdings,
        pending: Vec::new(),
        received_by_cession: std::collections::BTreeSet::new(),
    };
    (
        Subject {
            t,
            holders: strong,
            cessionari,
        },
        model,
    )
}

async fn run_step(s: &Subject, m: &Model, step: &Step) -> Result<(), String> {
    let t = &s.t;
    let result = match step {
        Step::Cede { from, to, lines } => {
            let (party, who) = &s.holders[*from];
            let lines: Vec<CessionLine> = lines
                .iter()
                .map(|(pick, a)| (m.resolve(*from, *pick), a))
                .map(|(rata, a)| CessionLine {
                    rata: m.rate[rata].id,
                    cessionario_cf: s.cessionari[Model::to(*from, *to)].cf.as_str().into(),
                    amount: amount_of(*a, m.available(*from, rata)).map(Cents::new),
                })
                .collect();
            t.app
                .cede(who, &t.key(), None, party.id, &lines, true)
                .await
                .map(|_| ())
        }
        Step::Answer {
            party,
            cedente,
            type_key,
            year,
            accept,
        } => {
            let (p, who) = &s.holders[m.answerer(*party)];
            let filter = IncomingFilter {
                type_key: type_key.map(|i| TYPES[i].to_string()),
                year: *year,
                cedente_cf: cedente.map(|c| s.cessionari[c].cf.as_str().to_string()),
            };
            t.app
                .answer(who, &t.key(), None, p.id, &filter, *accept)
                .await
                .map(|_| ())
        }
        Step::Advance { days } => {
            t.advance_days(i64::from(*days));
            Ok(())
        }
    };
    result.map_err(|e| e.code().to_string())
}

/// The app's balances, in the model's terms (all-zero holdings left out).
async fn observed(s: &Subject, m: &Model) -> BTreeMap<(usize, usize), Holding> {
    let index: BTreeMap<RataId, usize> =
        m.rate.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    let mut out = BTreeMap::new();
    for (n, (party, _)) in s.holders.iter().enumerate() {
        for h in s.t.app.store().holdings(party.id).await.unwrap() {
            // The expired rate are outside the model: no operation can move them.
            let Some(&i) = index.get(&h.rata) else {
                continue;
            };
            let b = h.balance;
            let v = Holding {
                posted: b.credits_posted.get() - b.debits_posted.get(),
                pending_out: b.debits_pending.get(),
                pending_in: b.credits_pending.get(),
            };
            if v != Holding::default() {
                out.insert((n, i), v);
            }
        }
    }
    out
}

fn expected(m: &Model) -> BTreeMap<(usize, usize), Holding> {
    m.holdings
        .iter()
        .filter(|(_, h)| **h != Holding::default())
        .map(|(k, v)| (*k, *v))
        .collect()
}

/// F2's list and F3's groups as the model derives them, against the app's.
async fn check_lists(s: &Subject, m: &Model) -> Result<(), String> {
    for (n, (party, who)) in s.holders.iter().enumerate() {
        let mut app: Vec<(RataId, i64, bool)> =
            s.t.app
                .cedible(who, party.id)
                .await
                .unwrap()
                .iter()
                .map(|h| (h.rata, h.max_cedibile.get(), h.partial_allowed))
                .collect();
        app.sort_unstable();
        let mut model: Vec<(RataId, i64, bool)> = (0..RATE)
            .filter(|r| m.available(n, *r) > 0)
            .map(|r| (m.rate[r].id, m.available(n, r), m.rate[r].partial_allowed))
            .collect();
        model.sort_unstable();
        if app != model {
            return Err(format!(
                "F2 list of holder {n}: app {app:?}, model {model:?}"
            ));
        }
        let app: BTreeMap<(String, u16, String), (usize, i64)> =
            s.t.app
                .incoming(who, party.id, &IncomingFilter::default())
                .await
                .unwrap()
                .into_iter()
                .map(|g| {
                    (
                        (g.type_key, g.year, g.cedente.cf),
                        (g.operations, g.amount.get()),
                    )
                })
                .collect();
        let mut model: BTreeMap<(String, u16, String), (usize, i64)> = BTreeMap::new();
        for p in m.pending.iter().filter(|p| p.to == n) {
            let r = &m.rate[p.rata];
            let g = model
                .entry((
                    r.type_key.to_string(),
                    r.year,
                    s.cessionari[p.from].cf.as_str().to_string(),
                ))
                .or_default();
            g.0 += 1;
            g.1 += p.amount;
        }
        if app != model {
            return Err(format!(
                "F3 groups of holder {n}: app {app:?}, model {model:?}"
            ));
        }
    }
    Ok(())
}

async fn run_case(t: TestApp, steps: Vec<Step>) -> Result<(), String> {
    let (s, mut m) = setup(t).await;
    for (i, step) in steps.iter().enumerate() {
        let got = run_step(&s, &m, step).await;
        let want = m.apply(step).map_err(str::to_string);
        let name = match step {
            Step::Cede { .. } => "cede",
            Step::Answer { .. } => "answer",
            Step::Advance { .. } => "advance",
        };
        *OUTCOMES
            .lock()
            .unwrap()
            .entry(format!(
                "{name}:{}",
                want.as_ref().map_or_else(|e| e.as_str(), |()| "ok")
            ))
            .or_default() += 1;
        if got != want {
            return Err(format!("step {i} {step:?}: app {got:?}, model {want:?}"));
        }
        let (app, model) = (observed(&s, &m).await, expected(&m));
        if app != model {
            return Err(format!(
                "after step {i} {step:?}: balances differ\n app   {app:?}\n model {model:?}"
            ));
        }
        check_lists(&s, &m)
            .await
            .map_err(|e| format!("after step {i} {step:?}: {e}"))?;
    }
    let report = s.t.app.store().verify().await.unwrap();
    if !report.ok() {
        return Err(format!("verify: {:?}", report.problems));
    }
    Ok(())
}

fn run_property(cases: u32, postgres: bool) {
    let steps: usize = env_or("CESSIO_MODEL_STEPS", 30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(step(), 1..=steps), |steps| {
        rt.block_on(async {
            let t = if postgres {
                TestApp::postgres().await.unwrap()
            } else {
                TestApp::sqlite().await
            };
            run_case(t, steps).await
        })
        .map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    println!(
        "model ({}): {cases} cases, outcomes {:?}",
        if postgres { "postgres" } else { "sqlite" },
        OUTCOMES.lock().unwrap()
    );
}

#[test]
fn model_and_app_agree_on_outcomes_and_balances_sqlite() {
    run_property(env_or("CESSIO_MODEL_CASES", 32), false);
}

#[test]
fn model_and_app_agree_on_outcomes_and_balances_postgres() {
    if cessio_test_support::postgres_url().is_some() {
        run_property(env_or("CESSIO_MODEL_CASES_POSTGRES", 4), true);
    }
}
