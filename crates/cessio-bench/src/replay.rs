//! `cessio-bench replay`: the national simulation sent through the app layer as its users would
//! send it: studios communicate options for the families and condominiums that delegated
//! them, builders and banks answer their F3 groups, cede and use F24, each signed in (SPID
//! by default, password and PIN with `--pin`), with the platform's clock walking through
//! the simulated days. Every operation is durable before the next day starts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use cessio_app::{
    App, AppError, CessionLine, F24DebitInput, F24Form, F24LineInput, IncomingFilter, OptionInput,
    Principal,
};
use cessio_core::catalogue::Catalogue;
use cessio_core::ledger::{PartyId, RataId};
use cessio_core::money::Cents;
use cessio_core::time::{FixedClock, rome_start_of_day};
use cessio_store::{NewUser, Role as UserRole, Store};
use chrono::NaiveDate;

use crate::generate::{Outcome, drive, register_parties};
use crate::national::{Params, PartySpec, Simulation, Step, opt_stop_exception};

const PASSWORD: &str = "replay-password-2026";
const PIN: &str = "13572468";

#[derive(Debug)]
struct Replay {
    app: App,
    store: Arc<dyn Store>,
    specs: Vec<PartySpec>,
    parties: Vec<PartyId>,
    /// Signed-in users by party index (its own user, or its studio's).
    principals: HashMap<u32, Principal>,
    users: HashMap<u32, i64>,
    delegated: Mutex<HashSet<u32>>,
    rate: Mutex<HashMap<u32, Vec<RataId>>>,
    pin: bool,
    clock: FixedClock,
}

/// A refusal by a rule is part of the workload; anything else stops the replay.
fn refusal(e: AppError) -> Result<Result<(), String>> {
    match e {
        AppError::Store(s) if matches!(s.code(), "database_unavailable" | "database_error") => {
            Err(anyhow::anyhow!(s))
        }
        other => Ok(Err(other.code().to_string())),
    }
}

impl Replay {
    fn principal(&self, party: u32) -> Result<&Principal> {
        let acting = self.specs[party as usize].studio.unwrap_or(party);
        self.principals
            .get(&acting)
            .with_context(|| format!("no user acts for party {party}"))
    }

    /// The rata ids of whole-rata lines; rate of a refused communication are left out.
    fn cession_lines(&self, to: u32, lines: &[crate::national::Line]) -> Result<Vec<CessionLine>> {
        let cf = self.specs[to as usize].cf.as_str().to_string();
        let rate = self.rate.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        Ok(lines
            .iter()
            .filter_map(|l| rate.get(&l.credit).and_then(|r| r.get(l.rata as usize)))
            .map(|id| CessionLine {
                rata: *id,
                cessionario_cf: cf.clone(),
                amount: None,
            })
            .collect())
    }

    fn rata_ids(&self, lines: &[crate::national::Line]) -> Result<Vec<RataId>> {
        let rate = self.rate.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        Ok(lines
            .iter()
            .filter_map(|l| {
                rate.get(&l.credit)
                    .and_then(|r| r.get(l.rata as usize))
                    .copied()
            })
            .collect())
    }

    fn pin(&self) -> Option<&str> {
        self.pin.then_some(PIN)
    }

    async fn step(&self, day: NaiveDate, i: usize, step: Step) -> Result<Result<(), String>> {
        let key = format!("replay-{day}-{i}");
        let p = self.principal(step.actor())?;
        let outcome = match step {
            Step::Communicate(c) => {
                // The family delegated its studio the first time it needed it.
                let studio = self.specs[c.beneficiary as usize].studio;
                if let Some(studio) = studio {
                    let first = self
                        .delegated
                        .lock()
                        .map_err(|_| anyhow::anyhow!("poisoned"))?
                        .insert(c.beneficiary);
                    if first {
                        let user = *self.users.get(&studio).context("studio user")?;
                        let party = self.parties[c.beneficiary as usize];
                        let grant = cessio_store::Command::Delegation(
                            cessio_store::DelegationChange::Grant {
                                user,
                                party,
                                scope: cessio_store::DelegationScope::Disposizione,
                                until: None,
                            },
                        );
                        self.store
                            .submit(cessio_store::Operation {
                                idempotency_key: cessio_store::IdempotencyKey::parse(&format!(
                                    "replay-delegate-{user}-{party}"
                                ))?,
                                acting_user: "replay".into(),
                                on_behalf_of: Some(party),
                                at: cessio_core::time::Clock::now(&self.clock),
                                command: grant,
                                request_hash: None,
                                delegate: None,
                                checks: Vec::new(),
                            })
                            .await?;
                    }
                }
                let input = OptionInput {
                    beneficiary_cf: self.specs[c.beneficiary as usize].cf.as_str().into(),
                    type_key: c.type_key.into(),
                    expense_year: c.expense_year,
                    origin: c.origin,
                    holder_cf: self.specs[c.holder as usize].cf.as_str().into(),
                    total: c.total,
                    communicated_on: Some(day),
                    exception: c.exception.then(|| opt_stop_exception(c.type_key, day)),
                };
                match self
                    .app
                    .communicate_option(p, &key, self.pin(), &input)
                    .await
                {
                    Ok(issued) => {
                        self.rate
                            .lock()
                            .map_err(|_| anyhow::anyhow!("poisoned"))?
                            .insert(c.credit, issued.rate.iter().map(|r| r.id).collect());
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Step::Answer {
                party,
                cedente,
                type_key,
                accept,
                ..
            } => {
                let filter = IncomingFilter {
                    type_key: Some(type_key.into()),
                    year: None,
                    cedente_cf: Some(self.specs[cedente as usize].cf.as_str().into()),
                };
                self.app
                    .answer(
                        p,
                        &key,
                        self.pin(),
                        self.parties[party as usize],
                        &filter,
                        accept,
                    )
                    .await
                    .map(|_| ())
            }
            Step::Cede {
                from,
                to,
                lines,
                disclose,
            } => {
                let cession = self.cession_lines(to, &lines)?;
                if cession.is_empty() {
                    return Ok(Err("nothing_to_cede".into()));
                }
                self.app
                    .cede(
                        p,
                        &key,
                        self.pin(),
                        self.parties[from as usize],
                        &cession,
                        disclose,
                    )
                    .await
                    .map(|_| ())
            }
            Step::F24 { party, lines } => {
                let mut by_code: BTreeMap<(&str, u16), Cents> = BTreeMap::new();
                for l in &lines {
                    let e = by_code
                        .entry((l.codice_tributo, l.year))
                        .or_insert(Cents::ZERO);
                    *e = e.checked_add(l.amount).context("F24 total overflows")?;
                }
                let input: Vec<F24LineInput> = by_code
                    .into_iter()
                    .map(|((code, year), amount)| F24LineInput {
                        codice_tributo: code.into(),
                        year,
                        amount,
                    })
                    .collect();
                // The F24 pays withholding taxes of as much as it offsets: a balance of zero
                // (R-F24-BALANCE), with nothing to INPS or INAIL (R-BAN-BANK-INPS).
                let total = input
                    .iter()
                    .try_fold(Cents::ZERO, |sum, l| sum.checked_add(l.amount))
                    .context("F24 total overflows")?;
                let debits = [F24DebitInput {
                    section: "erario".into(),
                    code: "1040".into(),
                    amount: total,
                }];
                let party = self.parties[party as usize];
                let form = || F24Form {
                    payment_date: day,
                    lines: &input,
                    debits: &debits,
                };
                let mut reserved = self
                    .app
                    .reserve_f24(p, &key, self.pin(), party, form())
                    .await;
                if matches!(&reserved, Err(e) if e.code() == "f24_choice_required") {
                    // R-F24-CHOICE: a tracciabile rata is used only after the holder chose
                    // F24 for it, as the bank's back office does before paying.
                    let rate = self.rata_ids(&lines)?;
                    for (n, rata) in rate.into_iter().enumerate() {
                        // Non-tracciabile rate need no choice: that refusal is expected.
                        let _ = self
                            .app
                            .declare_f24_choice(p, &format!("{key}-c{n}"), self.pin(), party, rata)
                            .await;
                    }
                    reserved = self
                        .app
                        .reserve_f24(p, &format!("{key}-r"), self.pin(), party, form())
                        .await;
                }
                match reserved {
                    Ok(r) => self
                        .app
                        .confirm_f24(p, &format!("{key}-ok"), self.pin(), party, r.reservation)
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e),
                }
            }
            Step::Split { party, line, split } => {
                // A rata whose communication or earlier split was refused was never
                // registered: the split has nothing to divide, as a cession has nothing
                // to cede (the day's steps run concurrently, so which one it is varies).
                let Some(&rata) = self.rata_ids(std::slice::from_ref(&line))?.first() else {
                    return Ok(Err("nothing_to_split".into()));
                };
                let party = self.parties[party as usize];
                match self
                    .app
                    .split_rata(p, &key, self.pin(), party, rata, line.amount)
                    .await
                {
                    Ok(r) => {
                        self.rate
                            .lock()
                            .map_err(|_| anyhow::anyhow!("poisoned"))?
                            .insert(split, r.rate.iter().map(|x| x.rata).collect());
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match outcome {
            Ok(()) => Ok(Ok(())),
            Err(e) => refusal(e),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    db: crate::db::DbArgs,
    #[arg(long, default_value_t = 0.01)]
    scale: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Users sign in with password and confirm every operation with their PIN
    /// (Argon2 per operation) instead of SPID/CIE.
    #[arg(long)]
    pin: bool,
}

/// The command: the replay on the register, with its figures and the register's size.
pub async fn command(args: ReplayArgs) -> Result<()> {
    let store = args.db.open().await?;
    let params = Params {
        seed: args.seed,
        scale: args.scale,
    };
    let outcome = run(store.clone(), params, args.clients.max(1), args.pin).await?;
    outcome.print("replay");
    let counts = store.counts().await?;
    println!(
        "register: {} operations, {} transfers",
        counts.operations, counts.transfers
    );
    Ok(())
}

/// Builds the register's parties and users, then replays the simulation with `clients`
/// concurrent clients. Returns the replay's own figures (setup excluded).
pub async fn run(
    store: Arc<dyn Store>,
    params: Params,
    clients: usize,
    pin: bool,
) -> Result<Outcome> {
    let catalogue = Arc::new(Catalogue::builtin()?);
    let mut sim = Simulation::new(params, catalogue.clone())?;
    let clock = FixedClock::at_rome(2020, 10, 1, 9, 0);
    let app = App::new(store.clone(), Arc::new(clock.clone()), catalogue);
    let setup = Instant::now();
    app.bootstrap_operator("operatore", "Operatore Agenzia", PASSWORD, PIN)
        .await?;
    let operator = app.login_strong("operatore").await?;
    let specs = sim.parties().to_vec();
    let parties = {
        let (app, operator) = (app.clone(), operator.clone());
        register_parties(&specs, clients, move |i, p| {
            let (app, operator) = (app.clone(), operator.clone());
            async move {
                Ok(app
                    .register_party(
                        &operator,
                        &format!("party-{i}"),
                        p.cf.as_str(),
                        &p.name,
                        p.role.kind(),
                    )
                    .await?
                    .id)
            }
        })
        .await?
    };
    // One user per party that acts on its own; password and PIN are hashed once (Argon2
    // is deliberately slow) and the hashes shared, which changes nothing for sign-in.
    let first = app
        .create_user(
            &operator,
            "replay-template",
            "Modello",
            PASSWORD,
            PIN,
            None,
            UserRole::Operator,
        )
        .await?;
    let template = store.user(first).await?.context("template user")?;
    let mut users = HashMap::new();
    let mut principals = HashMap::new();
    for (i, spec) in specs.iter().enumerate() {
        if !spec.role.has_user() {
            continue;
        }
        let username = format!("u{}", spec.cf.as_str().to_lowercase());
        let id = store
            .create_user(
                NewUser {
                    username: username.clone(),
                    display_name: spec.name.clone(),
                    password_hash: template.password_hash.clone(),
                    pin_hash: template.pin_hash.clone(),
                    party: Some(parties[i]),
                    role: UserRole::User,
                },
                "replay",
                cessio_core::time::Clock::now(&clock),
            )
            .await?;
        let principal = if pin {
            app.login(&username, PASSWORD).await?
        } else {
            app.login_strong(&username).await?
        };
        users.insert(i as u32, id);
        principals.insert(i as u32, principal);
    }
    eprintln!(
        "setup: {} parties, {} users in {:.1} s",
        parties.len(),
        users.len(),
        setup.elapsed().as_secs_f64()
    );
    let replay = Arc::new(Replay {
        app,
        store,
        specs,
        parties,
        principals,
        users,
        delegated: Mutex::new(HashSet::new()),
        rate: Mutex::new(HashMap::new()),
        pin,
        clock: clock.clone(),
    });
    drive(
        &mut sim,
        clients,
        move |day| clock.set(rome_start_of_day(day) + chrono::Duration::hours(10)),
        move |day, i, step| {
            let replay = replay.clone();
            async move { replay.step(day, i, step).await }
        },
    )
    .await
}
