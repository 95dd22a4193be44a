//! The harness of the app-layer tests: a [`TestApp`] on SQLite or PostgreSQL with a fixed
//! clock and a bootstrapped operator, and builders for parties, users and credits, so that
//! each test reads as its scenario.
//!
//! Every scenario is an `async fn(TestApp)`; [`backends!`] instantiates it once per backend.

#![allow(dead_code, reason = "each test binary uses a part of the harness")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};
use cessio_app::{
    App, AppError, CedibleHolding, CessionLine, CessionReceipt, F24DebitInput, F24Form,
    F24LineInput, F24Reservation, IncomingFilter, IncomingGroup, MonitorRow, MovementFilter,
    MovementRow, OptionInput, Principal,
};
use cessio_core::catalogue::{Catalogue, Origin, UsageWindow};
use cessio_core::cf::CodiceFiscale;
use cessio_core::money::Cents;
use cessio_core::time::{FixedClock, rome_date, rome_local_to_utc};
use cessio_store::{Credit, NewUser, Party, PartyKind, Role, Store, WriteConfig};
use cessio_store_postgres::PgStore;
use cessio_store_sqlite::SqliteStore;
use chrono::{Datelike, NaiveDate};

pub const PASSWORD: &str = "password-lunga-1";
pub const PIN: &str = "123456";
pub const OPERATOR: &str = "operatore";

/// Instantiates each scenario `async fn name(t: TestApp)` as `sqlite::name` and
/// `postgres::name` (the latter skipped without `CESSIO_TEST_DATABASE_URL`). Attributes
/// such as `#[ignore = "BUG: ..."]` go before the name and apply to both.
macro_rules! backends {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                $(#[$attr])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::TestApp::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                $(#[$attr])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(t) = $crate::support::TestApp::postgres().await {
                        super::$name(t).await;
                    }
                }
            )*
        }
    };
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}_{n}_{nanos}", std::process::id())
}

pub use cessio_test_support::entity_cf;

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A communication date that makes a tracciabile credit (on or after 2022-05-01) before
/// R-OPT-STOP (2023-02-17): no exception needed.
pub fn tracciabile_day() -> NaiveDate {
    date(2023, 1, 10)
}

/// R-OPT-STOP: a Superbonus exception that holds for communications up to 29/03/2024 (a
/// CILAS filed before the stop; from 30/03/2024 DL 39/2024 also wants an invoice).
pub fn cilas_exception() -> cessio_core::opt_stop::DeclaredException {
    let mut e = exception("SB_CILAS_NON_COND");
    e.cilas_filed_on = Some(date(2023, 1, 10));
    e
}

/// An exception by code, with no facts declared.
pub fn exception(code: &str) -> cessio_core::opt_stop::DeclaredException {
    cessio_core::opt_stop::DeclaredException::new(
        cessio_core::opt_stop::ExceptionCode::parse(code).unwrap(),
    )
}

/// A communication date that makes a non-tracciabile credit (before 2022-05-01).
pub fn old_day() -> NaiveDate {
    date(2022, 3, 1)
}

/// The id of the credit's rata of `year`.
pub fn rata_of(credit: &Credit, year: u16) -> i64 {
    credit
        .rate
        .iter()
        .find(|r| r.year.get() == year)
        .unwrap_or_else(|| panic!("no rata of {year} in credit {}", credit.id))
        .id
}

pub fn cents(c: i64) -> Cents {
    Cents::new(c)
}

fn phc(secret: &str) -> String {
    let salt = SaltString::generate(&mut rand_core::OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// The app under test, its clock and a signed-in operator.
#[derive(Debug)]
pub struct TestApp {
    pub app: App,
    pub clock: FixedClock,
    pub op: Principal,
    keys: AtomicU32,
    /// The SQLite file, removed when the test ends.
    pub sqlite_path: Option<std::path::PathBuf>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(path) = &self.sqlite_path {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

impl TestApp {
    pub async fn sqlite() -> TestApp {
        let path = std::env::temp_dir().join(format!("cessio-app-test-{}.db", unique()));
        let store = SqliteStore::open(&path, WriteConfig::default()).unwrap();
        let mut t = TestApp::with_store(Arc::new(store)).await;
        t.sqlite_path = Some(path);
        t
    }

    /// None without `CESSIO_TEST_DATABASE_URL` (panics under CI, where it must run). Each
    /// app works in a schema of its own.
    pub async fn postgres() -> Option<TestApp> {
        let url = cessio_test_support::postgres_url()?;
        let schema = format!("app_{}", unique());
        let store = PgStore::connect(&url, Some(&schema), WriteConfig::default())
            .await
            .unwrap();
        Some(TestApp::with_store(Arc::new(store)).await)
    }

    pub async fn with_store(store: Arc<dyn Store>) -> TestApp {
        // Friday 1 March 2024, 10:00 in Rome.
        let clock = FixedClock::at_rome(2024, 3, 1, 10, 0);
        let app = App::new(
            store.clone(),
            Arc::new(clock.clone()),
            Arc::new(Catalogue::builtin().unwrap()),
        );
        store
            .create_user(
                NewUser {
                    username: OPERATOR.into(),
                    display_name: "Operatore di test".into(),
                    password_hash: phc(PASSWORD),
                    pin_hash: phc(PIN),
                    party: None,
                    role: Role::Operator,
                },
                "bootstrap",
                app.now(),
            )
            .await
            .unwrap();
        let op = app.login(OPERATOR, PASSWORD).await.unwrap();
        TestApp {
            app,
            clock,
            op,
            keys: AtomicU32::new(0),
            sqlite_path: None,
        }
    }

    /// A fresh idempotency key.
    pub fn key(&self) -> String {
        format!("k{}", self.keys.fetch_add(1, Ordering::Relaxed))
    }

    // ----- time -----

    /// Moves the clock to a Rome wall-clock time.
    pub fn set_rome(&self, y: i32, m: u32, d: u32, hour: u32, minute: u32) {
        let local = date(y, m, d).and_hms_opt(hour, minute, 0).unwrap();
        self.clock.set(rome_local_to_utc(local).unwrap());
    }

    pub fn advance_days(&self, days: i64) {
        self.clock.advance(chrono::Duration::days(days));
    }

    // ----- registry and users -----

    /// Registers test party `n` (CF [`entity_cf`]) as the operator.
    pub async fn party(&self, n: u32, kind: PartyKind) -> Party {
        self.app
            .register_party(
                &self.op,
                &self.key(),
                entity_cf(n).as_str(),
                &format!("Soggetto {n}"),
                kind,
            )
            .await
            .unwrap()
    }

    pub async fn company(&self, n: u32) -> Party {
        self.party(n, PartyKind::Company).await
    }

    /// Creates a user for the party (password [`PASSWORD`], PIN [`PIN`]) and signs it in
    /// with the password.
    pub async fn user_for(&self, party: &Party, username: &str) -> Principal {
        self.app
            .create_user(
                &self.op,
                username,
                &format!("Utente {username}"),
                PASSWORD,
                PIN,
                Some(party.cf.as_str()),
                Role::User,
            )
            .await
            .unwrap();
        self.app.login(username, PASSWORD).await.unwrap()
    }

    /// The same user, signed in with SPID/CIE.
    pub async fn strong(&self, username: &str) -> Principal {
        self.app.login_strong(username).await.unwrap()
    }

    /// An intermediary: a user of its own party `n`, delegated by `client`.
    pub async fn intermediary(&self, n: u32, username: &str, client: &Party) -> Principal {
        let own = self.company(n).await;
        let p = self.user_for(&own, username).await;
        self.app
            .delegate(&self.op, username, client.cf.as_str())
            .await
            .unwrap();
        p
    }

    // ----- F8 -----

    /// An option communication (cessione) with expense year = year before `on`.
    pub fn option(
        &self,
        beneficiary: &Party,
        holder: &Party,
        type_key: &str,
        total_cents: i64,
        on: NaiveDate,
    ) -> OptionInput {
        OptionInput {
            beneficiary_cf: beneficiary.cf.as_str().into(),
            type_key: type_key.into(),
            expense_year: u16::try_from(on.year() - 1).unwrap(),
            origin: Origin::Cessione,
            holder_cf: holder.cf.as_str().into(),
            total: Cents::new(total_cents),
            communicated_on: Some(on),
            exception: None,
        }
    }

    pub async fn try_communicate(&self, input: &OptionInput) -> Result<Credit, AppError> {
        self.app
            .communicate_option(&self.op, &self.key(), None, input)
            .await
    }

    /// Loads an option communication as the operator. The credit comes back with the rate
    /// still in their window of use today: the tests run on 1 March 2024, when the rate of
    /// earlier years have expired (R-F24-WINDOW-121) and can be neither used nor ceded, so
    /// `rate[0]` is the first rata a scenario can work with. Tests of the earlier rate
    /// read the whole credit from `try_communicate`.
    pub async fn communicate(
        &self,
        beneficiary: &Party,
        holder: &Party,
        type_key: &str,
        total_cents: i64,
        on: NaiveDate,
    ) -> Credit {
        let mut credit = self
            .try_communicate(&self.option(beneficiary, holder, type_key, total_cents, on))
            .await
            .unwrap();
        if self.app.usage_window(type_key) == Some(UsageWindow::RefYear) {
            let this_year = rome_date(self.app.now()).year();
            credit.rate.retain(|r| i32::from(r.year.get()) >= this_year);
        }
        credit
    }

    /// A credit already accepted by its holder: communicated and answered.
    pub async fn holding(
        &self,
        holder: &Party,
        who: &Principal,
        type_key: &str,
        total_cents: i64,
        on: NaiveDate,
    ) -> Credit {
        let n = 9_000 + self.keys.fetch_add(1, Ordering::Relaxed);
        let beneficiary = self.company(n).await;
        let credit = self
            .communicate(&beneficiary, holder, type_key, total_cents, on)
            .await;
        self.answer(
            who,
            holder,
            IncomingFilter {
                cedente_cf: Some(beneficiary.cf.as_str().into()),
                ..IncomingFilter::default()
            },
            true,
        )
        .await
        .unwrap();
        credit
    }

    // ----- F5 -----

    /// Reserves an F24 paid on `on` under `key`, with the PIN.
    pub async fn reserve_f24(
        &self,
        who: &Principal,
        party: &Party,
        key: &str,
        on: NaiveDate,
        lines: &[F24LineInput],
        debits: &[F24DebitInput],
    ) -> Result<F24Reservation, AppError> {
        let form = F24Form {
            payment_date: on,
            lines,
            debits,
        };
        self.app
            .reserve_f24(who, key, Some(PIN), party.id, form)
            .await
    }

    // ----- F2 / F3 -----

    pub async fn cedible(&self, who: &Principal, party: &Party) -> Vec<CedibleHolding> {
        self.app.cedible(who, party.id).await.unwrap()
    }

    /// The maximum cedibile of a rata for the party, zero when not cedible.
    pub async fn max_cedibile(&self, who: &Principal, party: &Party, rata: i64) -> Cents {
        self.cedible(who, party)
            .await
            .iter()
            .find(|h| h.rata == rata)
            .map_or(Cents::ZERO, |h| h.max_cedibile)
    }

    /// F2 with the cedente's consent to show its name (required to proceed).
    pub async fn cede(
        &self,
        who: &Principal,
        from: &Party,
        lines: &[CessionLine],
    ) -> Result<CessionReceipt, AppError> {
        self.app
            .cede(who, &self.key(), Some(PIN), from.id, lines, true)
            .await
    }

    pub async fn answer(
        &self,
        who: &Principal,
        party: &Party,
        filter: IncomingFilter,
        accept: bool,
    ) -> Result<cessio_app::AnswerReceipt, AppError> {
        self.app
            .answer(who, &self.key(), Some(PIN), party.id, &filter, accept)
            .await
    }

    /// "Accetta tutti".
    pub async fn accept_all(&self, who: &Principal, party: &Party) {
        self.answer(who, party, IncomingFilter::default(), true)
            .await
            .unwrap();
    }

    pub async fn incoming(&self, who: &Principal, party: &Party) -> Vec<IncomingGroup> {
        self.app
            .incoming(who, party.id, &IncomingFilter::default())
            .await
            .unwrap()
    }

    // ----- F1 / F4 -----

    pub async fn monitor(&self, party: &Party, type_key: &str, year: u16) -> MonitorRow {
        self.app
            .monitoring(&self.op, party.id, None)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.type_key == type_key && r.year == year)
            .unwrap_or_default()
    }

    pub async fn movements(&self, who: &Principal, party: &Party) -> Vec<MovementRow> {
        self.app
            .movements(
                who,
                party.id,
                &MovementFilter {
                    registered_from: Some(date(2000, 1, 1)),
                    ..MovementFilter::default()
                },
            )
            .await
            .unwrap()
    }
}

/// One cession line.
/// F4's export of a selection, read to its end.
pub async fn exported(
    app: &cessio_app::App,
    who: &Principal,
    party: &Party,
    filter: &MovementFilter,
) -> Result<Vec<MovementRow>, AppError> {
    let mut export = app.movements_export(who, party.id, filter).await?;
    let mut rows = Vec::new();
    while let Some(batch) = export.next_rows().await {
        rows.extend(batch?);
    }
    Ok(rows)
}

pub fn line(rata: i64, to: &Party, amount: Option<i64>) -> CessionLine {
    CessionLine {
        rata,
        cessionario_cf: to.cf.as_str().into(),
        amount: amount.map(Cents::new),
    }
}

pub fn by_cedente(cedente: &Party) -> IncomingFilter {
    IncomingFilter {
        cedente_cf: Some(cedente.cf.as_str().into()),
        ..IncomingFilter::default()
    }
}

pub fn by_year(year: u16) -> IncomingFilter {
    IncomingFilter {
        year: Some(year),
        ..IncomingFilter::default()
    }
}

/// The code of a refusal, for `assert_eq!`.
pub fn code<T: std::fmt::Debug>(r: Result<T, AppError>) -> &'static str {
    r.unwrap_err().code()
}

pub fn parse_cf(s: &str) -> CodiceFiscale {
    CodiceFiscale::parse(s).unwrap()
}

/// A cedente party with its user and a cessionario party with its user.
#[derive(Debug)]
pub struct Actors {
    pub holder: Party,
    pub h: Principal,
    pub c: Party,
    pub cu: Principal,
}

/// A party with its own user, named `u{n}`.
pub struct Holder {
    pub party: Party,
    pub user: Principal,
}

impl TestApp {
    pub async fn holder(&self, n: u32, kind: PartyKind) -> Holder {
        let party = self.party(n, kind).await;
        let user = self.user_for(&party, &format!("u{n}")).await;
        Holder { party, user }
    }

    /// A holder (its user named `holder_user`) owning one accepted credit, and a
    /// registered cessionario with its user: the actors and the credit's rate.
    pub async fn holder_and_cessionario(
        &self,
        holder_user: &str,
        type_key: &str,
        total: i64,
        on: NaiveDate,
    ) -> (Actors, Vec<i64>) {
        let (holder, c) = (self.company(1).await, self.company(2).await);
        let h = self.user_for(&holder, holder_user).await;
        let cu = self.user_for(&c, "cessionario").await;
        let credit = self.holding(&holder, &h, type_key, total, on).await;
        let rate = credit.rate.iter().map(|r| r.id).collect();
        (Actors { holder, h, c, cu }, rate)
    }

    /// What `party` may still use or cede of `rata` (zero without a holding).
    pub async fn available(&self, party: &Party, rata: i64) -> Cents {
        self.app
            .store()
            .account(rata, cessio_store::AccountRef::Holder(party.id))
            .await
            .unwrap()
            .and_then(|a| a.balance.available())
            .unwrap_or(Cents::ZERO)
    }

    /// `verify` finds nothing wrong with the register, and every party's holdings have
    /// the §5 state their kept paths give that the replay of their histories gives.
    pub async fn verify_clean(&self) {
        let report = self.app.store().verify().await.unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let parties = self.app.store().head_counts().await.unwrap().parties;
        for party in 1..=i64::try_from(parties).unwrap() {
            let (kept, replayed) = self
                .app
                .holding_states_kept_and_replayed(party)
                .await
                .unwrap();
            assert_eq!(
                kept, replayed,
                "party {party}: kept paths against the replay"
            );
        }
    }
}

/// The rule and code of a refusal.
pub fn rule_of(e: &AppError) -> (&'static str, &'static str) {
    (e.rule().unwrap_or(""), e.code())
}
