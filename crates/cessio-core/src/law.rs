//! The law as data: every rule of SPEC F5–F9, §5 and §6 whose content depends on when a law
//! took effect, with the period in which each version is in force.
//!
//! The rows live in `catalogue/rules.toml` (next to the credit-type catalogue), so that a new
//! law is a new row, not an `if` on a date. This module owns the file's format and refuses a
//! file that is ambiguous: two rows of one section in force on the same day, a period that
//! ends before it starts, a percentage above 100. A load error names the section and the row.
//!
//! Architecture invariant: a [`LawTable`] has always passed validation; the only ways in are
//! [`LawTable::from_toml_str`] and [`LawTable::builtin`]. The rule modules (`f24`, `chain`,
//! `split`, `suspension`, `rent`...) take the rows they need as arguments and never read dates
//! from anywhere else.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::catalogue::toml_date;
use crate::money::Cents;

/// The rules table shipped with Cessio, embedded at build time.
pub const BUILTIN_TOML: &str = include_str!("../../../catalogue/rules.toml");

/// A validity period, both ends inclusive; `to == None` while still in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: NaiveDate,
    pub to: Option<NaiveDate>,
}

impl Period {
    pub fn contains(&self, on: NaiveDate) -> bool {
        on >= self.from && self.to.is_none_or(|to| on <= to)
    }

    fn overlaps(&self, other: &Period) -> bool {
        let ends_before = |a: &Period, b: &Period| a.to.is_some_and(|to| to < b.from);
        !ends_before(self, other) && !ends_before(other, self)
    }
}

/// R-CHAIN: how many further cessions of an art. 121 credit the law allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainRule {
    pub period: Period,
    /// Cessions to anyone after the option communication; `None`: no limit at all.
    pub free_cessions: Option<u32>,
    /// Further cessions allowed after the free ones, each only to soggetti qualificati.
    pub qualified_cessions: u32,
    /// Only cessions communicated on or after this day count; `None`: all count.
    pub count_cessions_from: Option<NaiveDate>,
    /// R-ONCE: the credits are *cedibili una sola volta* (DL 4/2022 art. 28): the one
    /// cession allowed is refused afterwards under R-ONCE, and an option communicated as a
    /// cessione on or after `count_cessions_from` was itself that one cession.
    pub once: bool,
    pub source: String,
}

impl ChainRule {
    /// Total counted cessions allowed (`None`: unlimited).
    pub fn max_cessions(&self) -> Option<u32> {
        self.free_cessions
            .map(|free| free.saturating_add(self.qualified_cessions))
    }
}

/// Which clients of a bank R-BANK-CLIENT admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BankClientScope {
    /// Clienti professionali privati (DL 50/2022).
    Professional,
    /// Every current-account holder who is not a consumer (L. 91/2022).
    NonConsumer,
}

/// R-BANK-CLIENT in force in a period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BankClientRule {
    pub period: Period,
    pub clients: BankClientScope,
    pub source: String,
}

/// A rule that is simply in force or not (R-PA, R-SPLIT-ANNUL).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InForce {
    pub period: Period,
    pub source: String,
}

/// F6: a rata of a past year whose unused residual may still be split, in `period` (the
/// 2022 Superbonus rata, splittable in 2023 though it could no longer be used or ceded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExpiredRataSplit {
    pub rata_year: u16,
    pub period: Period,
    pub source: String,
}

/// R-BAN-100K / R-BAN-1500: a threshold on overdue debts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OffsetBanRule {
    pub period: Period,
    /// The ban applies when the counted debt is strictly above this amount.
    pub threshold: Cents,
    pub source: String,
}

/// R-F24-CHOICE: whether a declared choice may be revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct F24ChoiceRule {
    pub period: Period,
    pub revocable: bool,
    pub source: String,
}

/// R-SUSP: art. 122-bis suspension limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SuspensionRule {
    pub period: Period,
    pub within_working_days: u32,
    pub max_days: u32,
    pub source: String,
}

/// F7: riduzione del credito.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReductionRule {
    pub period: Period,
    pub max_days_since_knowledge: u32,
    pub source: String,
}

/// Last day on which credits of a type may be ceded at all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CessionDeadline {
    pub type_key: String,
    pub last_day: NaiveDate,
    pub source: String,
}

/// R-RENT: the parameters of one rent-credit law.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RentRule {
    pub key: String,
    pub name: String,
    pub year: i32,
    /// Months (1–12) of `year` the credit is computed for.
    pub months: Vec<u32>,
    /// The months for seasonal hotel and agritourism activities.
    pub seasonal_months: Vec<u32>,
    pub non_residential_percent: u32,
    pub business_lease_percent: u32,
    /// Revenue of the previous tax year above which the credit is denied (hotels and
    /// agritourism excepted).
    pub revenue_limit: Cents,
    /// A month qualifies when its turnover fell by at least this share of the same month
    /// of the previous year.
    pub min_drop_percent: u32,
    /// Share of the rent that counts for premises used both professionally and privately.
    pub promiscuous_base_percent: u32,
    pub source: String,
}

/// The validated rules table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LawTable {
    chain: Vec<ChainRule>,
    bank_client: Vec<BankClientRule>,
    pa_ban: Vec<InForce>,
    bank_inps_ban: Vec<InForce>,
    offset_ban: Vec<OffsetBanRule>,
    offset_ban_erariali: Vec<OffsetBanRule>,
    f24_choice: Vec<F24ChoiceRule>,
    suspension: Vec<SuspensionRule>,
    reduction: Vec<ReductionRule>,
    split_annulment: Vec<InForce>,
    split: Vec<InForce>,
    split_expired_rata: Vec<ExpiredRataSplit>,
    cession_deadlines: Vec<CessionDeadline>,
    use_deadlines: Vec<CessionDeadline>,
    rent: Vec<RentRule>,
}

fn in_force<T>(rows: &[T], period: impl Fn(&T) -> &Period, on: NaiveDate) -> Option<&T> {
    rows.iter().find(|row| period(row).contains(on))
}

impl LawTable {
    /// Parses and validates a table in the format of `catalogue/rules.toml`.
    pub fn from_toml_str(text: &str) -> Result<LawTable, LawError> {
        let raw: RawLaw = toml::from_str(text).map_err(|e| LawError::Parse {
            message: e.message().trim().to_owned(),
        })?;
        raw.validate()
    }

    /// The table shipped with Cessio ([`BUILTIN_TOML`]). A test asserts that it loads.
    pub fn builtin() -> Result<LawTable, LawError> {
        LawTable::from_toml_str(BUILTIN_TOML)
    }

    /// [`LawTable::builtin`], parsed once: the app and the store's writer decide on the
    /// same table.
    pub fn builtin_shared() -> Result<&'static LawTable, &'static LawError> {
        static BUILTIN: std::sync::LazyLock<Result<LawTable, LawError>> =
            std::sync::LazyLock::new(LawTable::builtin);
        BUILTIN.as_ref()
    }

    /// R-CHAIN version for a cession communicated on `on`.
    pub fn chain_on(&self, on: NaiveDate) -> Option<&ChainRule> {
        in_force(&self.chain, |r| &r.period, on)
    }

    /// R-BANK-CLIENT version for a cession on `on`; `None`: the exception did not exist.
    pub fn bank_client_on(&self, on: NaiveDate) -> Option<&BankClientRule> {
        in_force(&self.bank_client, |r| &r.period, on)
    }

    /// Whether R-PA forbids public administrations to acquire credits on `on`.
    pub fn pa_ban_on(&self, on: NaiveDate) -> Option<&InForce> {
        in_force(&self.pa_ban, |r| &r.period, on)
    }

    /// Whether R-BAN-BANK-INPS forbids banks, financial intermediaries and insurers to
    /// offset building credits against INPS and INAIL debits in an F24 paid on `on`.
    pub fn bank_inps_ban_on(&self, on: NaiveDate) -> Option<&InForce> {
        in_force(&self.bank_inps_ban, |r| &r.period, on)
    }

    /// R-BAN-100K for an F24 sent on `on`.
    pub fn offset_ban_on(&self, on: NaiveDate) -> Option<&OffsetBanRule> {
        in_force(&self.offset_ban, |r| &r.period, on)
    }

    /// R-BAN-1500 for an F24 sent on `on`.
    pub fn offset_ban_erariali_on(&self, on: NaiveDate) -> Option<&OffsetBanRule> {
        in_force(&self.offset_ban_erariali, |r| &r.period, on)
    }

    /// R-F24-CHOICE for a declaration or revocation on `on`.
    pub fn f24_choice_on(&self, on: NaiveDate) -> Option<&F24ChoiceRule> {
        in_force(&self.f24_choice, |r| &r.period, on)
    }

    /// R-SUSP for a communication registered on `on`.
    pub fn suspension_on(&self, on: NaiveDate) -> Option<&SuspensionRule> {
        in_force(&self.suspension, |r| &r.period, on)
    }

    /// F7 for a declaration made on `on`.
    pub fn reduction_on(&self, on: NaiveDate) -> Option<&ReductionRule> {
        in_force(&self.reduction, |r| &r.period, on)
    }

    /// F6: the platform accepts split communications on `on` (R-SPLIT-ELIGIBLE).
    pub fn split_on(&self, on: NaiveDate) -> Option<&InForce> {
        in_force(&self.split, |r| &r.period, on)
    }

    /// F6: the first day split communications were accepted at all.
    pub fn split_available_from(&self) -> Option<NaiveDate> {
        self.split.iter().map(|r| r.period.from).min()
    }

    /// F6: the row that lets the residual of an expired rata of `rata_year` be split on `on`.
    pub fn split_of_expired_rata(
        &self,
        rata_year: u16,
        on: NaiveDate,
    ) -> Option<&ExpiredRataSplit> {
        self.split_expired_rata
            .iter()
            .find(|r| r.rata_year == rata_year && r.period.contains(on))
    }

    /// F6: whether the residual of an expired rata of `rata_year` may still be split on
    /// `on` or later (the year-end close must then leave it in the holding).
    pub fn expired_rata_still_splittable(&self, rata_year: u16, on: NaiveDate) -> bool {
        self.split_expired_rata
            .iter()
            .any(|r| r.rata_year == rata_year && r.period.to.is_none_or(|to| on <= to))
    }

    /// R-SPLIT-ANNUL for a request on `on`.
    pub fn split_annulment_on(&self, on: NaiveDate) -> Option<&InForce> {
        in_force(&self.split_annulment, |r| &r.period, on)
    }

    /// Last day on which credits of `type_key` may be ceded, if the law sets one.
    pub fn cession_deadline(&self, type_key: &str) -> Option<&CessionDeadline> {
        self.cession_deadlines
            .iter()
            .find(|d| d.type_key == type_key)
    }

    pub fn cession_deadlines(&self) -> &[CessionDeadline] {
        &self.cession_deadlines
    }

    /// Last day on which credits of `type_key` may be used at all (in F24), if the law
    /// sets one beside the usage window (`[[use_deadline]]`).
    pub fn use_deadline(&self, type_key: &str) -> Option<&CessionDeadline> {
        self.use_deadlines.iter().find(|d| d.type_key == type_key)
    }

    /// The rent-credit law with this key.
    pub fn rent(&self, key: &str) -> Option<&RentRule> {
        self.rent.iter().find(|r| r.key == key)
    }

    pub fn rent_rules(&self) -> &[RentRule] {
        &self.rent
    }
}

/// A date as Italians write it in messages: `31/12/2024`.
pub fn it_date(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

// ---- errors ---------------------------------------------------------------------------------

/// Why a rules file was refused. Messages are Italian and name the section and the row.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LawError {
    #[error("regole: {message}")]
    Parse { message: String },
    #[error("regole: sezione '{section}', riga {row}: {reason}")]
    BadRow {
        section: &'static str,
        /// 1-based, as a person counts the rows of the section.
        row: usize,
        reason: String,
    },
}

impl LawError {
    pub const fn code(&self) -> &'static str {
        match self {
            LawError::Parse { .. } => "rules_parse",
            LawError::BadRow { .. } => "rules_bad_row",
        }
    }
}

impl fmt::Display for BankClientScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BankClientScope::Professional => "clienti professionali privati",
            BankClientScope::NonConsumer => "correntisti diversi dai consumatori",
        })
    }
}

// ---- file model -----------------------------------------------------------------------------

type TomlDate = toml::value::Datetime;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLaw {
    #[serde(default)]
    chain: Vec<RawChain>,
    #[serde(default)]
    bank_client: Vec<RawBankClient>,
    #[serde(default)]
    pa_ban: Vec<RawInForce>,
    #[serde(default)]
    bank_inps_ban: Vec<RawInForce>,
    #[serde(default)]
    offset_ban: Vec<RawThreshold>,
    #[serde(default)]
    offset_ban_erariali: Vec<RawThreshold>,
    #[serde(default)]
    f24_choice: Vec<RawF24Choice>,
    #[serde(default)]
    suspension: Vec<RawSuspension>,
    #[serde(default)]
    reduction: Vec<RawReduction>,
    #[serde(default)]
    split_annulment: Vec<RawInForce>,
    #[serde(default)]
    split: Vec<RawInForce>,
    #[serde(default)]
    split_expired_rata: Vec<RawExpiredRataSplit>,
    #[serde(default)]
    cession_deadline: Vec<RawCessionDeadline>,
    #[serde(default)]
    use_deadline: Vec<RawCessionDeadline>,
    #[serde(default)]
    rent: Vec<RawRent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    from: TomlDate,
    to: Option<TomlDate>,
    free_cessions: Option<u32>,
    #[serde(default)]
    qualified_cessions: u32,
    count_cessions_from: Option<TomlDate>,
    #[serde(default)]
    once: bool,
    source: String,
    #[expect(dead_code, reason = "documentation for people reading the file")]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBankClient {
    from: TomlDate,
    to: Option<TomlDate>,
    clients: BankClientScope,
    source: String,
    #[expect(dead_code, reason = "documentation for people reading the file")]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInForce {
    from: TomlDate,
    to: Option<TomlDate>,
    source: String,
    #[expect(dead_code, reason = "documentation for people reading the file")]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpiredRataSplit {
    rata_year: u16,
    from: TomlDate,
    to: Option<TomlDate>,
    source: String,
    #[expect(dead_code, reason = "documentation for people reading the file")]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThreshold {
    from: TomlDate,
    to: Option<TomlDate>,
    threshold_cents: i64,
    source: String,
    #[expect(dead_code, reason = "documentation for people reading the file")]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawF24Choice {
    from: TomlDate,
    to: Option<TomlDate>,
    revocable: bool,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuspension {
    from: TomlDate,
    to: Option<TomlDate>,
    within_working_days: u32,
    max_days: u32,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReduction {
    from: TomlDate,
    to: Option<TomlDate>,
    max_days_since_knowledge: u32,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCessionDeadline {
    #[serde(rename = "type")]
    type_key: String,
    last_day: TomlDate,
    source: String,
    #[expect(dead_code, reason = "documentation for people reading the file")]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRent {
    key: String,
    name: String,
    year: i32,
    months: Vec<u32>,
    seasonal_months: Vec<u32>,
    non_residential_percent: u32,
    business_lease_percent: u32,
    revenue_limit_cents: i64,
    min_drop_percent: u32,
    promiscuous_base_percent: u32,
    source: String,
    #[expect(dead_code, reason = "documentation for people reading the file")]
    note: Option<String>,
}

// ---- validation -----------------------------------------------------------------------------

/// Most working days / calendar days a rule may name: larger values are typos.
const MAX_DAYS: u32 = 366;

struct Section {
    name: &'static str,
}

impl Section {
    fn bad(&self, row: usize, reason: impl Into<String>) -> LawError {
        LawError::BadRow {
            section: self.name,
            row,
            reason: reason.into(),
        }
    }

    fn date(&self, row: usize, value: &TomlDate) -> Result<NaiveDate, LawError> {
        toml_date(value).map_err(|reason| self.bad(row, reason))
    }

    fn period(
        &self,
        row: usize,
        from: &TomlDate,
        to: Option<&TomlDate>,
    ) -> Result<Period, LawError> {
        let from = self.date(row, from)?;
        let to = to.map(|t| self.date(row, t)).transpose()?;
        if to.is_some_and(|to| to < from) {
            return Err(self.bad(row, "la data 'to' precede la data 'from'"));
        }
        Ok(Period { from, to })
    }

    fn source(&self, row: usize, source: &str) -> Result<String, LawError> {
        if source.trim().is_empty() {
            return Err(self.bad(row, "il campo source è vuoto"));
        }
        Ok(source.to_owned())
    }

    /// Refuses the section when two of its rows are in force on the same day.
    fn no_overlap<T>(&self, rows: &[T], period: impl Fn(&T) -> &Period) -> Result<(), LawError> {
        for (i, row) in rows.iter().enumerate() {
            if let Some(j) = rows[..i]
                .iter()
                .position(|prev| period(prev).overlaps(period(row)))
            {
                return Err(self.bad(
                    i + 1,
                    format!("il periodo si sovrappone alla riga {}", j + 1),
                ));
            }
        }
        Ok(())
    }

    fn days(&self, row: usize, field: &str, value: u32) -> Result<u32, LawError> {
        if value == 0 || value > MAX_DAYS {
            return Err(self.bad(
                row,
                format!("{field} = {value} non ammesso (da 1 a {MAX_DAYS})"),
            ));
        }
        Ok(value)
    }

    fn cents(&self, row: usize, field: &str, value: i64) -> Result<Cents, LawError> {
        let amount = Cents::new(value);
        if !amount.is_positive() || amount > Cents::MAX_AMOUNT {
            return Err(self.bad(row, format!("{field} = {value} non ammesso")));
        }
        Ok(amount)
    }

    fn percent(&self, row: usize, field: &str, value: u32) -> Result<u32, LawError> {
        if value == 0 || value > 100 {
            return Err(self.bad(row, format!("{field} = {value} non ammesso (da 1 a 100)")));
        }
        Ok(value)
    }

    fn months(&self, row: usize, field: &str, value: Vec<u32>) -> Result<Vec<u32>, LawError> {
        if value.is_empty() {
            return Err(self.bad(row, format!("{field} è vuoto")));
        }
        for (i, m) in value.iter().enumerate() {
            if !(1..=12).contains(m) {
                return Err(self.bad(row, format!("{field}: mese {m} non valido")));
            }
            if value[..i].contains(m) {
                return Err(self.bad(row, format!("{field}: mese {m} ripetuto")));
            }
        }
        Ok(value)
    }
}

impl RawLaw {
    fn validate(self) -> Result<LawTable, LawError> {
        let s = Section { name: "chain" };
        let mut chain = Vec::new();
        for (i, r) in self.chain.into_iter().enumerate() {
            let n = i + 1;
            if r.free_cessions.is_none() && r.qualified_cessions > 0 {
                return Err(s.bad(
                    n,
                    "qualified_cessions senza free_cessions: indicare anche free_cessions",
                ));
            }
            if r.once && (r.free_cessions != Some(1) || r.qualified_cessions != 0) {
                return Err(s.bad(
                    n,
                    "once = true vuol dire una sola cessione: free_cessions = 1 e \
                     qualified_cessions = 0",
                ));
            }
            chain.push(ChainRule {
                period: s.period(n, &r.from, r.to.as_ref())?,
                free_cessions: r.free_cessions,
                qualified_cessions: r.qualified_cessions,
                count_cessions_from: r
                    .count_cessions_from
                    .as_ref()
                    .map(|d| s.date(n, d))
                    .transpose()?,
                once: r.once,
                source: s.source(n, &r.source)?,
            });
        }
        s.no_overlap(&chain, |r| &r.period)?;

        let s = Section {
            name: "bank_client",
        };
        let mut bank_client = Vec::new();
        for (i, r) in self.bank_client.into_iter().enumerate() {
            let n = i + 1;
            bank_client.push(BankClientRule {
                period: s.period(n, &r.from, r.to.as_ref())?,
                clients: r.clients,
                source: s.source(n, &r.source)?,
            });
        }
        s.no_overlap(&bank_client, |r| &r.period)?;

        let pa_ban = in_force_rows("pa_ban", self.pa_ban)?;
        let bank_inps_ban = in_force_rows("bank_inps_ban", self.bank_inps_ban)?;
        let split_annulment = in_force_rows("split_annulment", self.split_annulment)?;
        let split = in_force_rows("split", self.split)?;
        let s = Section {
            name: "split_expired_rata",
        };
        let mut split_expired_rata: Vec<ExpiredRataSplit> = Vec::new();
        for (i, r) in self.split_expired_rata.into_iter().enumerate() {
            let n = i + 1;
            split_expired_rata.push(ExpiredRataSplit {
                rata_year: r.rata_year,
                period: s.period(n, &r.from, r.to.as_ref())?,
                source: s.source(n, &r.source)?,
            });
        }
        let offset_ban = threshold_rows("offset_ban", self.offset_ban)?;
        let offset_ban_erariali = threshold_rows("offset_ban_erariali", self.offset_ban_erariali)?;

        let s = Section { name: "f24_choice" };
        let mut f24_choice = Vec::new();
        for (i, r) in self.f24_choice.into_iter().enumerate() {
            let n = i + 1;
            f24_choice.push(F24ChoiceRule {
                period: s.period(n, &r.from, r.to.as_ref())?,
                revocable: r.revocable,
                source: s.source(n, &r.source)?,
            });
        }
        s.no_overlap(&f24_choice, |r| &r.period)?;

        let s = Section { name: "suspension" };
        let mut suspension = Vec::new();
        for (i, r) in self.suspension.into_iter().enumerate() {
            let n = i + 1;
            suspension.push(SuspensionRule {
                period: s.period(n, &r.from, r.to.as_ref())?,
                within_working_days: s.days(n, "within_working_days", r.within_working_days)?,
                max_days: s.days(n, "max_days", r.max_days)?,
                source: s.source(n, &r.source)?,
            });
        }
        s.no_overlap(&suspension, |r| &r.period)?;

        let s = Section { name: "reduction" };
        let mut reduction = Vec::new();
        for (i, r) in self.reduction.into_iter().enumerate() {
            let n = i + 1;
            reduction.push(ReductionRule {
                period: s.period(n, &r.from, r.to.as_ref())?,
                max_days_since_knowledge: s.days(
                    n,
                    "max_days_since_knowledge",
                    r.max_days_since_knowledge,
                )?,
                source: s.source(n, &r.source)?,
            });
        }
        s.no_overlap(&reduction, |r| &r.period)?;

        let cession_deadlines = type_deadlines("cession_deadline", self.cession_deadline)?;
        let use_deadlines = type_deadlines("use_deadline", self.use_deadline)?;

        let s = Section { name: "rent" };
        let mut rent: Vec<RentRule> = Vec::new();
        for (i, r) in self.rent.into_iter().enumerate() {
            let n = i + 1;
            if r.key.trim().is_empty() || rent.iter().any(|x| x.key == r.key) {
                return Err(s.bad(n, format!("chiave '{}' vuota o ripetuta", r.key)));
            }
            rent.push(RentRule {
                name: r.name,
                year: r.year,
                months: s.months(n, "months", r.months)?,
                seasonal_months: s.months(n, "seasonal_months", r.seasonal_months)?,
                non_residential_percent: s.percent(
                    n,
                    "non_residential_percent",
                    r.non_residential_percent,
                )?,
                business_lease_percent: s.percent(
                    n,
                    "business_lease_percent",
                    r.business_lease_percent,
                )?,
                revenue_limit: s.cents(n, "revenue_limit_cents", r.revenue_limit_cents)?,
                min_drop_percent: s.percent(n, "min_drop_percent", r.min_drop_percent)?,
                promiscuous_base_percent: s.percent(
                    n,
                    "promiscuous_base_percent",
                    r.promiscuous_base_percent,
                )?,
                source: s.source(n, &r.source)?,
                key: r.key,
            });
        }

        Ok(LawTable {
            chain,
            bank_client,
            pa_ban,
            bank_inps_ban,
            offset_ban,
            offset_ban_erariali,
            f24_choice,
            suspension,
            reduction,
            split_annulment,
            split,
            split_expired_rata,
            cession_deadlines,
            use_deadlines,
            rent,
        })
    }
}

/// One last day per credit type (a type named twice is refused).
fn type_deadlines(
    name: &'static str,
    raw: Vec<RawCessionDeadline>,
) -> Result<Vec<CessionDeadline>, LawError> {
    let s = Section { name };
    let mut out: Vec<CessionDeadline> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let n = i + 1;
        if out.iter().any(|d| d.type_key == r.type_key) {
            return Err(s.bad(n, format!("tipo '{}' ripetuto", r.type_key)));
        }
        out.push(CessionDeadline {
            last_day: s.date(n, &r.last_day)?,
            source: s.source(n, &r.source)?,
            type_key: r.type_key,
        });
    }
    Ok(out)
}

fn in_force_rows(name: &'static str, raw: Vec<RawInForce>) -> Result<Vec<InForce>, LawError> {
    let s = Section { name };
    let mut rows = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let n = i + 1;
        rows.push(InForce {
            period: s.period(n, &r.from, r.to.as_ref())?,
            source: s.source(n, &r.source)?,
        });
    }
    s.no_overlap(&rows, |r| &r.period)?;
    Ok(rows)
}

fn threshold_rows(
    name: &'static str,
    raw: Vec<RawThreshold>,
) -> Result<Vec<OffsetBanRule>, LawError> {
    let s = Section { name };
    let mut rows = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let n = i + 1;
        rows.push(OffsetBanRule {
            period: s.period(n, &r.from, r.to.as_ref())?,
            threshold: s.cents(n, "threshold_cents", r.threshold_cents)?,
            source: s.source(n, &r.source)?,
        });
    }
    s.no_overlap(&rows, |r| &r.period)?;
    Ok(rows)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;
    use crate::test_support::{d, law};

    #[test]
    fn builtin_rules_load() {
        let law = law();
        assert!(law.rent("art28_2020").is_some());
        assert_eq!(law.cession_deadlines().len(), 4);
        assert_eq!(
            law.use_deadline("adeguamento_ambienti").map(|d| d.last_day),
            Some(d(2021, 6, 30))
        );
    }

    #[test]
    fn r_chain_row_changes_on_2022_02_17() {
        let law = law();
        let before = law.chain_on(d(2022, 2, 16)).unwrap();
        assert_eq!(before.max_cessions(), None);
        let after = law.chain_on(d(2022, 2, 26)).unwrap();
        assert_eq!(after.free_cessions, Some(1));
        assert_eq!(after.qualified_cessions, 2);
        assert_eq!(after.max_cessions(), Some(3));
        assert_eq!(after.count_cessions_from, Some(d(2022, 2, 17)));
        assert!(!after.once);
    }

    /// DL 4/2022 art. 28 on the platform from 17/02/2022 until DL 13/2022 took effect:
    /// one cession only, counted from the same day as the rule that followed.
    #[test]
    fn r_once_dl_4_2022_from_2022_02_17_to_2022_02_25() {
        let law = law();
        for day in [d(2022, 2, 17), d(2022, 2, 25)] {
            let once = law.chain_on(day).unwrap();
            assert!(once.once, "{day}");
            assert_eq!(once.max_cessions(), Some(1));
            assert_eq!(once.count_cessions_from, Some(d(2022, 2, 17)));
        }
        assert!(!law.chain_on(d(2022, 2, 16)).unwrap().once);
        assert!(!law.chain_on(d(2022, 2, 26)).unwrap().once);
    }

    #[test]
    fn r_once_row_must_allow_exactly_one_cession() {
        let e = err(
            "[[chain]]\nfrom = 2022-01-01\nfree_cessions = 1\nqualified_cessions = 2\nonce = true\nsource = \"a\"\n",
        );
        assert!(e.to_string().contains("una sola cessione"), "{e}");
    }

    #[test]
    fn r_bank_client_scope_widens_with_l_91_2022() {
        let law = law();
        assert!(law.bank_client_on(d(2022, 5, 17)).is_none());
        assert_eq!(
            law.bank_client_on(d(2022, 5, 18)).unwrap().clients,
            BankClientScope::Professional
        );
        assert_eq!(
            law.bank_client_on(d(2022, 7, 16)).unwrap().clients,
            BankClientScope::NonConsumer
        );
    }

    #[test]
    fn r_pa_in_force_from_2023_02_17() {
        let law = law();
        assert!(law.pa_ban_on(d(2023, 2, 16)).is_none());
        assert!(law.pa_ban_on(d(2023, 2, 17)).is_some());
        assert!(law.bank_inps_ban_on(d(2024, 12, 31)).is_none());
        assert!(law.bank_inps_ban_on(d(2025, 1, 1)).is_some());
    }

    #[test]
    fn r_ban_100k_in_force_from_2024_07_01() {
        let law = law();
        assert!(law.offset_ban_on(d(2024, 6, 30)).is_none());
        assert_eq!(
            law.offset_ban_on(d(2024, 7, 1)).unwrap().threshold,
            Cents::new(10_000_000)
        );
        assert_eq!(
            law.offset_ban_erariali_on(d(2024, 7, 1)).unwrap().threshold,
            Cents::new(150_000)
        );
    }

    #[test]
    fn r_f24_choice_revocable_from_2023_10_05() {
        let law = law();
        assert!(law.f24_choice_on(d(2022, 6, 9)).is_none());
        assert!(!law.f24_choice_on(d(2023, 10, 4)).unwrap().revocable);
        assert!(law.f24_choice_on(d(2023, 10, 5)).unwrap().revocable);
    }

    fn err(text: &str) -> LawError {
        LawTable::from_toml_str(text).unwrap_err()
    }

    #[test]
    fn rejects_overlapping_rows_naming_section_and_row() {
        let e = err(
            "[[pa_ban]]\nfrom = 2023-01-01\nsource = \"a\"\n[[pa_ban]]\nfrom = 2023-06-01\nsource = \"b\"\n",
        );
        assert_eq!(e.code(), "rules_bad_row");
        assert_eq!(
            e.to_string(),
            "regole: sezione 'pa_ban', riga 2: il periodo si sovrappone alla riga 1"
        );
    }

    #[test]
    fn accepts_a_new_law_as_a_new_row() {
        let text = "[[offset_ban]]\nfrom = 2024-07-01\nto = 2030-12-31\nthreshold_cents = 10000000\nsource = \"a\"\n\
                    [[offset_ban]]\nfrom = 2031-01-01\nthreshold_cents = 5000000\nsource = \"b\"\n";
        let law = LawTable::from_toml_str(text).unwrap();
        assert_eq!(
            law.offset_ban_on(d(2030, 12, 31)).unwrap().threshold,
            Cents::new(10_000_000)
        );
        assert_eq!(
            law.offset_ban_on(d(2031, 1, 1)).unwrap().threshold,
            Cents::new(5_000_000)
        );
    }

    #[test]
    fn rejects_to_before_from_and_bad_values() {
        let e = err("[[pa_ban]]\nfrom = 2023-01-01\nto = 2022-01-01\nsource = \"a\"\n");
        assert!(e.to_string().contains("'to' precede"), "{e}");
        let e = err(
            "[[suspension]]\nfrom = 2021-11-12\nwithin_working_days = 0\nmax_days = 30\nsource = \"a\"\n",
        );
        assert!(e.to_string().contains("within_working_days = 0"), "{e}");
        let e = err("[[offset_ban]]\nfrom = 2024-07-01\nthreshold_cents = -1\nsource = \"a\"\n");
        assert!(e.to_string().contains("threshold_cents = -1"), "{e}");
        let e = err("[[chain]]\nfrom = 2022-01-01\nqualified_cessions = 2\nsource = \"a\"\n");
        assert!(e.to_string().contains("free_cessions"), "{e}");
    }

    #[test]
    fn rejects_unknown_fields() {
        let e = err("[[pa_ban]]\nfrom = 2023-01-01\nsource = \"a\"\nwhen = 1\n");
        assert_eq!(e.code(), "rules_parse");
        assert!(e.to_string().contains("when"), "{e}");
    }

    #[test]
    fn rejects_bad_rent_months_and_percent() {
        let row = |months: &str, pct: u32| {
            format!(
                "[[rent]]\nkey = \"k\"\nname = \"n\"\nyear = 2020\nmonths = {months}\nseasonal_months = [4]\n\
                 non_residential_percent = {pct}\nbusiness_lease_percent = 30\nrevenue_limit_cents = 1\n\
                 min_drop_percent = 50\npromiscuous_base_percent = 50\nsource = \"s\"\n"
            )
        };
        assert!(LawTable::from_toml_str(&row("[3, 4]", 60)).is_ok());
        assert!(err(&row("[3, 3]", 60)).to_string().contains("ripetuto"));
        assert!(err(&row("[13]", 60)).to_string().contains("mese 13"));
        assert!(err(&row("[3]", 101)).to_string().contains("da 1 a 100"));
    }
}
