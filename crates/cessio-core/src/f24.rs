//! F5 Gestione F24: when a holding may be used, the F24 choice of tracciabili rate, the check
//! of a whole F24 against what the party holds, and the offset bans for overdue debts.
//!
//! - **R-F24-CHOICE**: [`declare_choice`], [`revoke_choice`], [`choice_allows_cession`],
//!   [`choice_allows_use`].
//! - **R-F24-WINDOW-121 / R-F24-WINDOW-122 / R-F24-FUTURE**: [`usage_dates`] gives the first and
//!   last day of use of a holding; [`check_usable`] refuses a use outside them;
//!   [`expires_at`] / [`is_expired`] are what the year-end close job asks, in Europe/Rome time.
//! - **R-F24-OVER**: [`check_f24`] checks every line of an F24 against the availability per
//!   (codice tributo, anno) and rejects the whole F24 if any line fails.
//! - **R-BAN-100K / R-BAN-1500**: [`check_offset_ban`], over a [`DebtPosition`].
//!
//! # R-BAN-100K and the INPS/INAIL exception
//!
//! The exception is a property of the **credit being offset**, not of the debt being paid:
//! the law (art. 37 c.49-quinquies DL 223/2006) excepts "i crediti indicati alle lettere e),
//! f) e g) del comma 2 dell'art. 17 D.Lgs. 241/1997", and seed S3 explains them as credits
//! "maturati nei confronti di INPS e INAIL", adding that an F24 under the ban may not show
//! both INPS/INAIL credits and banned credits. So each F24 line has a [`CreditNature`]; every
//! credit in this register is of agevolativa nature ([`CreditNature::of_register_code`]), so
//! under the ban every F24 of this register is refused. [`CreditNature::InpsInail`] exists so
//! that the rule is stated whole and tested, not because the register holds such credits.
//! (The later rule of L. 67/2024 that bars banks from offsetting building credits against
//! INPS/INAIL *contributions* is about the debt side and is not modelled here.)

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::catalogue::{Catalogue, UsageWindow};
use crate::debt::DebtPosition;
use crate::law::{LawTable, it_date};
use crate::money::Cents;
use crate::time::{RefYear, rome_start_of_day};

// ---- R-F24-CHOICE ---------------------------------------------------------------------------

/// State of the F24 choice of a tracciabile rata (R-F24-CHOICE).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum F24Choice {
    #[default]
    NotDeclared,
    Declared {
        /// The day of the choice (R-F24-CHOICE).
        on: NaiveDate,
    },
    Revoked {
        /// The day of the revocation (R-F24-CHOICE).
        on: NaiveDate,
    },
}

/// R-F24-CHOICE: declare the choice to use a tracciabile rata in F24 on `on`. After it the
/// rata is no longer cedible.
pub fn declare_choice(
    tracciabile: bool,
    current: F24Choice,
    on: NaiveDate,
    law: &LawTable,
) -> Result<F24Choice, F24Error> {
    if !tracciabile {
        return Err(F24Error::ChoiceNotTracciabile);
    }
    if law.f24_choice_on(on).is_none() {
        return Err(F24Error::ChoiceNotAvailable { on });
    }
    match current {
        F24Choice::Declared { on: declared } => Err(F24Error::ChoiceAlreadyDeclared { declared }),
        F24Choice::NotDeclared | F24Choice::Revoked { .. } => Ok(F24Choice::Declared { on }),
    }
}

/// R-F24-CHOICE: revoke a declared choice on `on`, which makes the rata cedible again. Refused
/// when the law in force then makes the choice irrevocable, and while an F24 holds part of the
/// rata reserved (the rata must be whole again before it can be ceded).
pub fn revoke_choice(
    current: F24Choice,
    reserved: Cents,
    on: NaiveDate,
    law: &LawTable,
) -> Result<F24Choice, F24Error> {
    let F24Choice::Declared { .. } = current else {
        return Err(F24Error::ChoiceNotDeclared);
    };
    match law.f24_choice_on(on) {
        Some(rule) if rule.revocable => {}
        _ => return Err(F24Error::ChoiceIrrevocable { on }),
    }
    if reserved.is_positive() {
        return Err(F24Error::ChoiceReserved { reserved });
    }
    Ok(F24Choice::Revoked { on })
}

/// R-F24-CHOICE: a tracciabile rata whose choice is declared is not cedible.
pub fn choice_allows_cession(tracciabile: bool, choice: F24Choice) -> bool {
    !(tracciabile && matches!(choice, F24Choice::Declared { .. }))
}

/// R-F24-CHOICE: a tracciabile rata may be used in F24 only after the choice.
pub fn choice_allows_use(tracciabile: bool, choice: F24Choice) -> bool {
    !tracciabile || matches!(choice, F24Choice::Declared { .. })
}

// ---- usage window ---------------------------------------------------------------------------

/// What decides when a holding may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldingUse {
    pub window: UsageWindow,
    pub ref_year: RefYear,
    /// Day of the cession that bounds the holding's use: under `YearOfCession` (art. 122)
    /// the beneficiary's cession, i.e. the option communication, for every cessionario, the
    /// first included; otherwise the cession through which the holder received it. `None`
    /// for a holding no cession brought.
    pub received_by_cession_on: Option<NaiveDate>,
    /// Total length in days of the seizures that ended on this holding (R-SEIZE: each
    /// extends the deadline by its length; see `suspension::seizure_days`).
    pub seized_days: u32,
    /// A day after which the law allows no use of the type at all, whatever the window
    /// (`[[use_deadline]]` of catalogue/rules.toml: art. 120 credits end on 30/06/2021).
    pub use_until: Option<NaiveDate>,
}

/// First and last day (inclusive, Europe/Rome dates) on which a holding may be used in F24.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageDates {
    pub first_day: NaiveDate,
    /// `None`: no deadline (unused quotas carry forward).
    pub last_day: Option<NaiveDate>,
    pub window: UsageWindow,
}

/// R-F24-WINDOW-121, R-F24-WINDOW-122, R-F24-FUTURE and R-SEIZE's extension, as dates:
///
/// - `RefYear` (art. 121): 1 January–31 December of the reference year, whoever holds it.
/// - `YearOfCession` (art. 122): a cessionario uses it by 31 December of the year of the
///   beneficiary's cession (never before 1 January of the reference year), the first
///   cessionario included and a later cession not moving it (seed S0: «anche in caso di
///   successiva cessione»); only a holding no cession brought has no deadline (seed S2
///   §5.1: the beneficiary's own residual carries forward).
/// - `FromRefYear`: from 1 January of the reference year, no deadline.
///
/// The last day moves later by `seized_days`.
pub fn usage_dates(holding: &HoldingUse) -> UsageDates {
    let first_day = holding.ref_year.first_day();
    let last_day = match holding.window {
        UsageWindow::RefYear => Some(holding.ref_year.last_day()),
        UsageWindow::YearOfCession => holding
            .received_by_cession_on
            .and_then(|ceded| NaiveDate::from_ymd_opt(ceded.year(), 12, 31)),
        UsageWindow::FromRefYear => None,
    };
    let last_day = match (last_day, holding.use_until) {
        (Some(window), Some(law)) => Some(window.min(law)),
        (window, law) => window.or(law),
    };
    let extension = Duration::days(i64::from(holding.seized_days));
    UsageDates {
        first_day,
        last_day: last_day.map(|d| d.checked_add_signed(extension).unwrap_or(NaiveDate::MAX)),
        window: holding.window,
    }
}

impl UsageDates {
    pub fn contains(&self, on: NaiveDate) -> bool {
        on >= self.first_day && self.last_day.is_none_or(|last| on <= last)
    }

    /// The rule that makes the holding expire.
    pub fn window_rule(&self) -> &'static str {
        match self.window {
            UsageWindow::RefYear | UsageWindow::FromRefYear => "R-F24-WINDOW-121",
            UsageWindow::YearOfCession => "R-F24-WINDOW-122",
        }
    }
}

/// The last day of use of a holding, if it has one.
pub fn last_day_of_use(holding: &HoldingUse) -> Option<NaiveDate> {
    usage_dates(holding).last_day
}

/// The instant at which what is unused expires: 00:00 Europe/Rome of the day after the last
/// day of use (so 31/12 23:59 is still in time, 01/01 00:00 is not).
pub fn expires_at(dates: &UsageDates) -> Option<DateTime<Utc>> {
    dates
        .last_day
        .and_then(|last| last.succ_opt())
        .map(rome_start_of_day)
}

/// Whether a holding has expired at `now`: what the year-end close job asks before moving
/// unused amounts to the `expired` account.
pub fn is_expired(dates: &UsageDates, now: DateTime<Utc>) -> bool {
    expires_at(dates).is_some_and(|at| now >= at)
}

/// R-F24-FUTURE / R-F24-WINDOW-121 / R-F24-WINDOW-122: may the holding be used on `on`?
pub fn check_usable(
    code: &str,
    year: RefYear,
    dates: &UsageDates,
    on: NaiveDate,
) -> Result<(), F24Error> {
    if on < dates.first_day {
        return Err(F24Error::Future {
            code: code.to_owned(),
            year,
            usable_from: dates.first_day,
        });
    }
    match dates.last_day {
        Some(last) if on > last => Err(F24Error::Expired {
            code: code.to_owned(),
            year,
            last_day: last,
            rule: dates.window_rule(),
        }),
        _ => Ok(()),
    }
}

// ---- R-F24-OVER -----------------------------------------------------------------------------

/// One line of an F24: the credit used by (codice tributo, anno di riferimento).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct F24Line {
    pub code: String,
    pub year: RefYear,
    pub amount: Cents,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Slot {
    usable: Cents,
    /// Earliest first day among holdings not yet usable.
    usable_from: Option<NaiveDate>,
    /// Latest last day among expired holdings, with the rule that expired them.
    expired: Option<(NaiveDate, &'static str)>,
}

/// What a party may use on one day, per (codice tributo, anno). Built by the app from the
/// party's holdings (available = not reserved, pending, suspended or seized).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct F24Availability {
    on: Option<NaiveDate>,
    slots: BTreeMap<(String, RefYear), Slot>,
}

impl F24Availability {
    pub fn new() -> F24Availability {
        F24Availability::default()
    }

    /// Adds an amount already known to be usable.
    pub fn add_usable(&mut self, code: &str, year: RefYear, amount: Cents) -> &mut Self {
        let slot = self.slots.entry((code.to_owned(), year)).or_default();
        slot.usable = slot.usable.checked_add(amount).unwrap_or(Cents::MAX);
        self
    }

    /// Adds a holding's available amount, usable or not on `on` according to its dates, so
    /// that a refusal can say *why* nothing is usable (future year, expired).
    pub fn add_holding(
        &mut self,
        code: &str,
        year: RefYear,
        amount: Cents,
        dates: &UsageDates,
        on: NaiveDate,
    ) -> &mut Self {
        self.on = Some(on);
        match check_usable(code, year, dates, on) {
            Ok(()) => {
                self.add_usable(code, year, amount);
            }
            Err(F24Error::Future { usable_from, .. }) => {
                let slot = self.slots.entry((code.to_owned(), year)).or_default();
                slot.usable_from =
                    Some(slot.usable_from.map_or(usable_from, |d| d.min(usable_from)));
            }
            Err(F24Error::Expired { last_day, rule, .. }) => {
                let slot = self.slots.entry((code.to_owned(), year)).or_default();
                if slot.expired.is_none_or(|(d, _)| d < last_day) {
                    slot.expired = Some((last_day, rule));
                }
            }
            Err(_) => {}
        }
        self
    }

    /// The usable amount for (code, year).
    pub fn usable(&self, code: &str, year: RefYear) -> Cents {
        self.slots
            .get(&(code.to_owned(), year))
            .map_or(Cents::ZERO, |s| s.usable)
    }
}

/// The outcome of one F24 line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineOutcome {
    /// The line would be reserved for this amount.
    Accepted {
        amount: Cents,
    },
    Refused(F24Error),
}

/// An F24 rejected whole: the ban that stopped it, if any, and each line's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct F24Rejected {
    pub ban: Option<F24Error>,
    pub lines: Vec<LineOutcome>,
}

impl F24Rejected {
    /// The first refusal, for a one-line message.
    pub fn first_error(&self) -> Option<&F24Error> {
        self.ban.as_ref().or_else(|| {
            self.lines.iter().find_map(|l| match l {
                LineOutcome::Refused(e) => Some(e),
                LineOutcome::Accepted { .. } => None,
            })
        })
    }
}

impl fmt::Display for F24Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Modello F24 scartato per intero")?;
        if let Some(e) = self.first_error() {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

/// R-F24-OVER: checks each line against the availability of its (code, year); lines of the
/// same (code, year) draw on it in order. If any line fails the whole F24 is rejected, with
/// every line's outcome; otherwise the amounts to reserve, line by line.
///
/// A line whose (code, year) has nothing usable is refused with the reason recorded by
/// [`F24Availability::add_holding`]: R-F24-FUTURE or the expired window, else R-F24-OVER.
pub fn check_f24(
    lines: &[F24Line],
    availability: &F24Availability,
) -> Result<Vec<Cents>, F24Rejected> {
    let mut drawn: BTreeMap<(String, RefYear), Cents> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(lines.len());
    for line in lines {
        outcomes.push(line_outcome(line, availability, &mut drawn));
    }
    if outcomes
        .iter()
        .all(|o| matches!(o, LineOutcome::Accepted { .. }))
    {
        Ok(outcomes
            .into_iter()
            .map(|o| match o {
                LineOutcome::Accepted { amount } => amount,
                LineOutcome::Refused(_) => Cents::ZERO,
            })
            .collect())
    } else {
        Err(F24Rejected {
            ban: None,
            lines: outcomes,
        })
    }
}

fn line_outcome(
    line: &F24Line,
    availability: &F24Availability,
    drawn: &mut BTreeMap<(String, RefYear), Cents>,
) -> LineOutcome {
    if !line.amount.is_positive() {
        return LineOutcome::Refused(F24Error::NotPositive {
            code: line.code.clone(),
            year: line.year,
            amount: line.amount,
        });
    }
    let key = (line.code.clone(), line.year);
    let slot = availability.slots.get(&key).cloned().unwrap_or_default();
    let already = drawn.get(&key).copied().unwrap_or(Cents::ZERO);
    let remaining = slot.usable.checked_sub(already).unwrap_or(Cents::ZERO);
    if line.amount <= remaining {
        let total = already.checked_add(line.amount).unwrap_or(Cents::MAX);
        drawn.insert(key, total);
        return LineOutcome::Accepted {
            amount: line.amount,
        };
    }
    let refusal = match (slot.usable.is_positive(), slot.usable_from, slot.expired) {
        (false, Some(usable_from), _) => F24Error::Future {
            code: line.code.clone(),
            year: line.year,
            usable_from,
        },
        (false, None, Some((last_day, rule))) => F24Error::Expired {
            code: line.code.clone(),
            year: line.year,
            last_day,
            rule,
        },
        _ => F24Error::Over {
            code: line.code.clone(),
            year: line.year,
            requested: line.amount,
            available: remaining,
        },
    };
    LineOutcome::Refused(refusal)
}

/// Everything F5 checks before reserving an F24 sent on `on`: the offset bans first (they
/// reject the F24 whatever its lines), then every line's code (must be a code of the
/// register) and R-F24-OVER.
pub fn evaluate_f24(
    lines: &[F24Line],
    availability: &F24Availability,
    debts: &DebtPosition,
    on: NaiveDate,
    law: &LawTable,
    catalogue: &Catalogue,
) -> Result<Vec<Cents>, F24Rejected> {
    let mut natures = Vec::with_capacity(lines.len());
    let mut unknown = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match CreditNature::of_register_code(catalogue, &line.code) {
            Some(n) => natures.push(n),
            None => unknown.push(i),
        }
    }
    if let Err(ban) = check_offset_ban(debts, &natures, on, law) {
        return Err(F24Rejected {
            ban: Some(ban),
            lines: Vec::new(),
        });
    }
    match check_f24(lines, availability) {
        Ok(amounts) if unknown.is_empty() => Ok(amounts),
        result => {
            let mut outcomes = match result {
                Ok(amounts) => amounts
                    .into_iter()
                    .map(|amount| LineOutcome::Accepted { amount })
                    .collect(),
                Err(rejected) => rejected.lines,
            };
            for i in unknown {
                outcomes[i] = LineOutcome::Refused(F24Error::UnknownCode {
                    code: lines[i].code.clone(),
                });
            }
            Err(F24Rejected {
                ban: None,
                lines: outcomes,
            })
        }
    }
}

// ---- R-BAN-100K / R-BAN-1500 ----------------------------------------------------------------

/// Nature of a credit offset in F24, as the offset bans see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CreditNature {
    /// Credits of agevolativa nature: every credit of this register (building bonuses,
    /// COVID credits). Banned by R-BAN-100K, untouched by R-BAN-1500.
    Agevolativa,
    /// Credits for erariali taxes (IRPEF, IVA...). Banned by both.
    Erariale,
    /// Credits towards INPS or INAIL (art. 17 c.2 lett. e, f, g D.Lgs. 241/1997): the
    /// exception of R-BAN-100K.
    InpsInail,
}

impl CreditNature {
    /// The nature of a code of this register: agevolativa for every code of the catalogue
    /// (split codes included); `None` for a code the register does not know.
    pub fn of_register_code(catalogue: &Catalogue, code: &str) -> Option<CreditNature> {
        catalogue.by_code(code).map(|_| CreditNature::Agevolativa)
    }
}

/// R-BAN-100K, then R-BAN-1500 where the first does not apply, for an F24 sent on `on`
/// offsetting credits of the given natures.
///
/// - R-BAN-100K: counted overdue debts strictly above the threshold (€100,000.00 is
///   allowed, €100,000.01 is not) refuse the whole F24 unless every credit in it is an
///   INPS/INAIL credit.
/// - R-BAN-1500: counted erariali debts strictly above €1,500 refuse an F24 offsetting
///   erariali credits. The law blocks them up to the debt amount; this register holds no
///   erariali credits, so the refusal is whole and the partial case is not modelled.
pub fn check_offset_ban(
    debts: &DebtPosition,
    natures: &[CreditNature],
    on: NaiveDate,
    law: &LawTable,
) -> Result<(), F24Error> {
    if let Some(rule) = law.offset_ban_on(on) {
        let debt = debts.counted_for_ban_100k();
        if debt > rule.threshold {
            if natures.iter().all(|n| *n == CreditNature::InpsInail) {
                return Ok(());
            }
            return Err(F24Error::Ban100k {
                debt,
                threshold: rule.threshold,
            });
        }
    }
    if let Some(rule) = law.offset_ban_erariali_on(on) {
        let debt = debts.counted_erariali();
        if debt > rule.threshold && natures.contains(&CreditNature::Erariale) {
            return Err(F24Error::Ban1500 {
                debt,
                threshold: rule.threshold,
            });
        }
    }
    Ok(())
}

// ---- errors ---------------------------------------------------------------------------------

/// Why F5 refused something. Each variant names its rule ([`F24Error::rule`]) and carries the
/// figures; the message says what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum F24Error {
    #[error(
        "La scelta di utilizzo in F24 riguarda solo le rate tracciabili: questa rata si utilizza in compensazione senza scelta (R-F24-CHOICE)"
    )]
    ChoiceNotTracciabile,
    #[error(
        "La scelta di utilizzo in F24 non era prevista il {} (R-F24-CHOICE)", it_date(*on)
    )]
    ChoiceNotAvailable { on: NaiveDate },
    #[error(
        "La scelta di utilizzo in F24 è già stata comunicata il {}: la rata non è cedibile finché la scelta non è revocata (R-F24-CHOICE)",
        it_date(*declared)
    )]
    ChoiceAlreadyDeclared { declared: NaiveDate },
    #[error("Per questa rata non risulta una scelta di utilizzo in F24 da revocare (R-F24-CHOICE)")]
    ChoiceNotDeclared,
    #[error(
        "Il {} la scelta di utilizzo in F24 non è revocabile (revoca possibile dal 05/10/2023, Provv. 332687/2023) (R-F24-CHOICE)",
        it_date(*on)
    )]
    ChoiceIrrevocable { on: NaiveDate },
    #[error(
        "La scelta non può essere revocata: {reserved} sono prenotati da un modello F24 in lavorazione; attendere l'esito del modello (R-F24-CHOICE)"
    )]
    ChoiceReserved { reserved: Cents },
    #[error(
        "Rata tracciabile senza scelta di utilizzo in F24: comunicare prima la scelta nella funzione Gestione F24 (R-F24-CHOICE)"
    )]
    ChoiceRequired,
    #[error(
        "Codice tributo {code}, anno {year}: utilizzabile in compensazione dal {} (R-F24-FUTURE)",
        it_date(*usable_from)
    )]
    Future {
        code: String,
        year: RefYear,
        usable_from: NaiveDate,
    },
    #[error(
        "Codice tributo {code}, anno {year}: il credito poteva essere utilizzato fino al {}; la quota non utilizzata è scaduta e non può essere usata, ceduta o rimborsata ({rule})",
        it_date(*last_day)
    )]
    Expired {
        code: String,
        year: RefYear,
        last_day: NaiveDate,
        rule: &'static str,
    },
    #[error(
        "Codice tributo {code}, anno {year}: richiesti {requested}, disponibili {available}; ridurre l'importo della riga (R-F24-OVER)"
    )]
    Over {
        code: String,
        year: RefYear,
        requested: Cents,
        available: Cents,
    },
    #[error(
        "Codice tributo {code}, anno {year}: importo {amount} non valido, indicare un importo maggiore di zero"
    )]
    NotPositive {
        code: String,
        year: RefYear,
        amount: Cents,
    },
    #[error(
        "Il codice tributo {code} non corrisponde a un credito di questa piattaforma: verificare il codice"
    )]
    UnknownCode { code: String },
    #[error(
        "Compensazione non consentita: risultano carichi affidati all'agente della riscossione scaduti e non sospesi né rateizzati per {debt}, oltre il limite di {threshold}. Pagare, rateizzare o ottenere la sospensione fino a riportarli entro {threshold}, poi ripresentare il modello (R-BAN-100K)"
    )]
    Ban100k { debt: Cents, threshold: Cents },
    #[error(
        "Compensazione di crediti erariali non consentita fino a concorrenza dei debiti erariali iscritti a ruolo e scaduti ({debt}, oltre {threshold}) (R-BAN-1500)"
    )]
    Ban1500 { debt: Cents, threshold: Cents },
}

impl F24Error {
    /// The SPEC rule id.
    pub fn rule(&self) -> &'static str {
        match self {
            F24Error::ChoiceNotTracciabile
            | F24Error::ChoiceNotAvailable { .. }
            | F24Error::ChoiceAlreadyDeclared { .. }
            | F24Error::ChoiceNotDeclared
            | F24Error::ChoiceIrrevocable { .. }
            | F24Error::ChoiceReserved { .. }
            | F24Error::ChoiceRequired => "R-F24-CHOICE",
            F24Error::Future { .. } => "R-F24-FUTURE",
            F24Error::Expired { rule, .. } => rule,
            F24Error::Over { .. } | F24Error::NotPositive { .. } | F24Error::UnknownCode { .. } => {
                "R-F24-OVER"
            }
            F24Error::Ban100k { .. } => "R-BAN-100K",
            F24Error::Ban1500 { .. } => "R-BAN-1500",
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            F24Error::ChoiceNotTracciabile => "f24_choice_not_tracciabile",
            F24Error::ChoiceNotAvailable { .. } => "f24_choice_not_available",
            F24Error::ChoiceAlreadyDeclared { .. } => "f24_choice_already_declared",
            F24Error::ChoiceNotDeclared => "f24_choice_not_declared",
            F24Error::ChoiceIrrevocable { .. } => "f24_choice_irrevocable",
            F24Error::ChoiceReserved { .. } => "f24_choice_reserved",
            F24Error::ChoiceRequired => "f24_choice_required",
            F24Error::Future { .. } => "f24_future_year",
            F24Error::Expired { .. } => "f24_expired",
            F24Error::Over { .. } => "f24_over",
            F24Error::NotPositive { .. } => "f24_amount_not_positive",
            F24Error::UnknownCode { .. } => "f24_unknown_code",
            F24Error::Ban100k { .. } => "r_ban_100k",
            F24Error::Ban1500 { .. } => "r_ban_1500",
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;
    use crate::debt::{DebtKind, DebtLoad, InstalmentPlan};
    use crate::test_support::{d, law};
    use crate::time::rome_local_to_utc;

    fn y(year: u16) -> RefYear {
        RefYear::new(year)
    }

    fn eur(euros: i64) -> Cents {
        Cents::new(euros * 100)
    }

    fn rome(y: i32, m: u32, day: u32, h: u32, min: u32) -> DateTime<Utc> {
        rome_local_to_utc(d(y, m, day).and_hms_opt(h, min, 0).unwrap()).unwrap()
    }

    fn line(code: &str, year: u16, cents: i64) -> F24Line {
        F24Line {
            code: code.to_owned(),
            year: y(year),
            amount: Cents::new(cents),
        }
    }

    fn building(ref_year: u16) -> HoldingUse {
        HoldingUse {
            window: UsageWindow::RefYear,
            ref_year: y(ref_year),
            received_by_cession_on: None,
            seized_days: 0,
            use_until: None,
        }
    }

    // R-F24-CHOICE

    #[test]
    fn r_f24_choice_declared_makes_the_rata_not_cedible_revoked_cedible_again() {
        let law = law();
        let declared = declare_choice(true, F24Choice::NotDeclared, d(2024, 2, 1), &law).unwrap();
        assert_eq!(declared, F24Choice::Declared { on: d(2024, 2, 1) });
        assert!(!choice_allows_cession(true, declared));
        assert!(choice_allows_use(true, declared));
        let revoked = revoke_choice(declared, Cents::ZERO, d(2024, 3, 1), &law).unwrap();
        assert!(choice_allows_cession(true, revoked));
        assert!(!choice_allows_use(true, revoked));
        // Declaring again after a revocation is allowed.
        assert!(declare_choice(true, revoked, d(2024, 4, 1), &law).is_ok());
    }

    #[test]
    fn r_f24_choice_only_for_tracciabili() {
        let e = declare_choice(false, F24Choice::NotDeclared, d(2024, 2, 1), &law()).unwrap_err();
        assert_eq!(
            (e.rule(), e.code()),
            ("R-F24-CHOICE", "f24_choice_not_tracciabile")
        );
        assert!(choice_allows_use(false, F24Choice::NotDeclared));
        assert!(choice_allows_cession(false, F24Choice::NotDeclared));
    }

    #[test]
    fn r_f24_choice_not_declared_twice_nor_revoked_when_absent() {
        let law = law();
        let declared = F24Choice::Declared { on: d(2024, 1, 2) };
        let e = declare_choice(true, declared, d(2024, 2, 1), &law).unwrap_err();
        assert_eq!(
            e,
            F24Error::ChoiceAlreadyDeclared {
                declared: d(2024, 1, 2)
            }
        );
        assert!(e.to_string().contains("02/01/2024"), "{e}");
        let e =
            revoke_choice(F24Choice::NotDeclared, Cents::ZERO, d(2024, 2, 1), &law).unwrap_err();
        assert_eq!(e, F24Error::ChoiceNotDeclared);
    }

    #[test]
    fn r_f24_choice_irrevocable_before_2023_10_05() {
        let law = law();
        let declared = F24Choice::Declared { on: d(2022, 7, 1) };
        let e = revoke_choice(declared, Cents::ZERO, d(2023, 10, 4), &law).unwrap_err();
        assert_eq!(e, F24Error::ChoiceIrrevocable { on: d(2023, 10, 4) });
        assert!(revoke_choice(declared, Cents::ZERO, d(2023, 10, 5), &law).is_ok());
        let e = declare_choice(true, F24Choice::NotDeclared, d(2022, 6, 9), &law).unwrap_err();
        assert_eq!(e.code(), "f24_choice_not_available");
    }

    #[test]
    fn r_f24_choice_revocation_refused_while_reserved() {
        let declared = F24Choice::Declared { on: d(2024, 1, 2) };
        let e = revoke_choice(declared, Cents::new(1), d(2024, 2, 1), &law()).unwrap_err();
        assert_eq!(
            e,
            F24Error::ChoiceReserved {
                reserved: Cents::new(1)
            }
        );
        assert!(e.to_string().contains("0,01 €"), "{e}");
    }

    // R-F24-WINDOW-121, R-F24-FUTURE

    #[test]
    fn r_f24_window_121_usable_1_jan_to_31_dec_of_the_rata_year() {
        let dates = usage_dates(&building(2024));
        assert_eq!(dates.first_day, d(2024, 1, 1));
        assert_eq!(dates.last_day, Some(d(2024, 12, 31)));
        assert!(check_usable("7701", y(2024), &dates, d(2024, 1, 1)).is_ok());
        assert!(check_usable("7701", y(2024), &dates, d(2024, 12, 31)).is_ok());
        let e = check_usable("7701", y(2024), &dates, d(2025, 1, 1)).unwrap_err();
        assert_eq!(e.rule(), "R-F24-WINDOW-121");
        assert!(e.to_string().contains("fino al 31/12/2024"), "{e}");
    }

    #[test]
    fn r_f24_window_121_same_window_after_a_cession() {
        let ceded = HoldingUse {
            received_by_cession_on: Some(d(2023, 6, 1)),
            ..building(2025)
        };
        assert_eq!(usage_dates(&ceded), usage_dates(&building(2025)));
    }

    #[test]
    fn r_f24_future_rata_usable_from_1_january_of_its_year() {
        let dates = usage_dates(&building(2026));
        let e = check_usable("7701", y(2026), &dates, d(2025, 12, 31)).unwrap_err();
        assert_eq!(
            e,
            F24Error::Future {
                code: "7701".into(),
                year: y(2026),
                usable_from: d(2026, 1, 1)
            }
        );
        assert_eq!(e.rule(), "R-F24-FUTURE");
        assert!(e.to_string().contains("dal 01/01/2026"), "{e}");
        assert!(check_usable("7701", y(2026), &dates, d(2026, 1, 1)).is_ok());
    }

    #[test]
    fn r_f24_window_121_expires_at_midnight_rome_of_1_january() {
        let dates = usage_dates(&building(2024));
        let at = expires_at(&dates).unwrap();
        assert_eq!(at, rome(2025, 1, 1, 0, 0));
        assert_eq!(at.to_rfc3339(), "2024-12-31T23:00:00+00:00");
        assert!(!is_expired(&dates, rome(2024, 12, 31, 23, 59)));
        assert!(is_expired(&dates, rome(2025, 1, 1, 0, 0)));
    }

    // R-F24-WINDOW-122

    #[test]
    fn r_f24_window_122_cessionario_uses_by_31_december_of_the_year_of_cession() {
        let holding = HoldingUse {
            window: UsageWindow::YearOfCession,
            ref_year: y(2020),
            received_by_cession_on: Some(d(2021, 3, 10)),
            seized_days: 0,
            use_until: None,
        };
        let dates = usage_dates(&holding);
        assert_eq!(dates.last_day, Some(d(2021, 12, 31)));
        assert_eq!(last_day_of_use(&holding), Some(d(2021, 12, 31)));
        assert!(check_usable("6931", y(2020), &dates, d(2021, 12, 31)).is_ok());
        let e = check_usable("6931", y(2020), &dates, d(2022, 1, 1)).unwrap_err();
        assert_eq!(e.rule(), "R-F24-WINDOW-122");
        assert!(!is_expired(&dates, rome(2021, 12, 31, 23, 59)));
        assert!(is_expired(&dates, rome(2022, 1, 1, 0, 0)));
    }

    #[test]
    fn r_f24_window_122_a_holding_without_a_cession_day_has_no_deadline() {
        // Only a holding no cession brought (the beneficiary's own use of an art. 122
        // credit, which carries forward: seed S2 §5.1) has no deadline; every cessionario,
        // the first included, is given the day of the beneficiary's cession.
        let holding = HoldingUse {
            window: UsageWindow::YearOfCession,
            ref_year: y(2020),
            received_by_cession_on: None,
            seized_days: 0,
            use_until: None,
        };
        let dates = usage_dates(&holding);
        assert_eq!(dates.last_day, None);
        assert_eq!(expires_at(&dates), None);
        assert!(!is_expired(&dates, rome(2030, 1, 1, 0, 0)));
    }

    #[test]
    fn r_f24_window_122_a_use_deadline_of_the_law_ends_every_window() {
        // Art. 120 credits: usable only until 30/06/2021 (L. 178/2020 c.1098), by the
        // beneficiary's cessionario as by anyone, whatever the art. 122 window would allow.
        let holding = HoldingUse {
            window: UsageWindow::YearOfCession,
            ref_year: y(2021),
            received_by_cession_on: Some(d(2021, 3, 1)),
            seized_days: 0,
            use_until: Some(d(2021, 6, 30)),
        };
        let dates = usage_dates(&holding);
        assert_eq!(dates.last_day, Some(d(2021, 6, 30)));
        assert!(check_usable("6918", y(2021), &dates, d(2021, 6, 30)).is_ok());
        let e = check_usable("6918", y(2021), &dates, d(2021, 7, 1)).unwrap_err();
        assert_eq!(e.rule(), "R-F24-WINDOW-122");
        assert!(is_expired(&dates, rome(2021, 7, 1, 0, 0)));
        // A window with no end of its own ends there too.
        let open = HoldingUse {
            received_by_cession_on: None,
            ..holding
        };
        assert_eq!(usage_dates(&open).last_day, Some(d(2021, 6, 30)));
    }

    #[test]
    fn from_ref_year_window_carries_forward() {
        let holding = HoldingUse {
            window: UsageWindow::FromRefYear,
            ..building(2019)
        };
        let dates = usage_dates(&holding);
        assert!(check_usable("6890", y(2019), &dates, d(2024, 5, 1)).is_ok());
        assert!(check_usable("6890", y(2019), &dates, d(2018, 12, 31)).is_err());
    }

    #[test]
    fn r_seize_extends_the_last_day_of_use() {
        let holding = HoldingUse {
            seized_days: 45,
            ..building(2024)
        };
        assert_eq!(last_day_of_use(&holding), Some(d(2025, 2, 14)));
    }

    // R-F24-OVER

    fn availability() -> F24Availability {
        let mut a = F24Availability::new();
        a.add_usable("7701", y(2024), Cents::new(100_000))
            .add_usable("7702", y(2024), Cents::new(50_000));
        a
    }

    #[test]
    fn r_f24_over_accepts_lines_within_availability() {
        let lines = [line("7701", 2024, 100_000), line("7702", 2024, 1)];
        assert_eq!(
            check_f24(&lines, &availability()).unwrap(),
            vec![Cents::new(100_000), Cents::new(1)]
        );
    }

    #[test]
    fn r_f24_over_rejects_the_whole_f24_when_one_line_exceeds_by_one_cent() {
        let lines = [line("7702", 2024, 10), line("7701", 2024, 100_001)];
        let rejected = check_f24(&lines, &availability()).unwrap_err();
        assert_eq!(
            rejected.lines[0],
            LineOutcome::Accepted {
                amount: Cents::new(10)
            }
        );
        let LineOutcome::Refused(e) = &rejected.lines[1] else {
            panic!("second line should be refused");
        };
        assert_eq!(
            *e,
            F24Error::Over {
                code: "7701".into(),
                year: y(2024),
                requested: Cents::new(100_001),
                available: Cents::new(100_000)
            }
        );
        assert_eq!(e.rule(), "R-F24-OVER");
        assert!(
            rejected
                .to_string()
                .starts_with("Modello F24 scartato per intero: Codice tributo 7701")
        );
    }

    #[test]
    fn r_f24_over_lines_of_the_same_code_and_year_add_up() {
        let lines = [line("7701", 2024, 60_000), line("7701", 2024, 40_001)];
        let rejected = check_f24(&lines, &availability()).unwrap_err();
        assert!(matches!(rejected.lines[0], LineOutcome::Accepted { .. }));
        assert!(matches!(
            &rejected.lines[1],
            LineOutcome::Refused(F24Error::Over { available, .. }) if *available == Cents::new(40_000)
        ));
    }

    #[test]
    fn r_f24_over_unknown_pair_zero_and_negative_amounts_are_refused() {
        let lines = [line("7701", 2023, 1), line("7701", 2024, 0)];
        let rejected = check_f24(&lines, &availability()).unwrap_err();
        assert!(
            matches!(&rejected.lines[0], LineOutcome::Refused(F24Error::Over { available, .. }) if *available == Cents::ZERO)
        );
        assert!(matches!(
            &rejected.lines[1],
            LineOutcome::Refused(F24Error::NotPositive { .. })
        ));
    }

    #[test]
    fn r_f24_over_says_future_or_expired_when_nothing_is_usable() {
        let on = d(2025, 3, 1);
        let mut a = F24Availability::new();
        a.add_holding("7701", y(2026), eur(10), &usage_dates(&building(2026)), on)
            .add_holding("7701", y(2024), eur(10), &usage_dates(&building(2024)), on)
            .add_holding("7701", y(2025), eur(10), &usage_dates(&building(2025)), on);
        assert_eq!(a.usable("7701", y(2025)), eur(10));
        assert_eq!(a.usable("7701", y(2024)), Cents::ZERO);
        let lines = [
            line("7701", 2026, 100),
            line("7701", 2024, 100),
            line("7701", 2025, 100),
        ];
        let rejected = check_f24(&lines, &a).unwrap_err();
        let rules: Vec<&str> = rejected
            .lines
            .iter()
            .map(|l| match l {
                LineOutcome::Refused(e) => e.rule(),
                LineOutcome::Accepted { .. } => "ok",
            })
            .collect();
        assert_eq!(rules, ["R-F24-FUTURE", "R-F24-WINDOW-121", "ok"]);
    }

    #[test]
    fn r_f24_over_evaluate_refuses_codes_outside_the_register() {
        let cat = Catalogue::builtin().unwrap();
        let lines = [line("1001", 2024, 100), line("7701", 2024, 100)];
        let rejected = evaluate_f24(
            &lines,
            &availability(),
            &DebtPosition::default(),
            d(2024, 9, 1),
            &law(),
            &cat,
        )
        .unwrap_err();
        assert_eq!(
            rejected.lines[0],
            LineOutcome::Refused(F24Error::UnknownCode {
                code: "1001".into()
            })
        );
        assert_eq!(
            rejected.lines[1],
            LineOutcome::Accepted {
                amount: Cents::new(100)
            }
        );
    }

    // R-BAN-100K, R-BAN-1500

    fn debts(cents: i64) -> DebtPosition {
        DebtPosition::new(vec![DebtLoad::overdue(
            DebtKind::Erariale,
            Cents::new(cents),
        )])
    }

    const AGEVOLATIVA: &[CreditNature] = &[CreditNature::Agevolativa];

    #[test]
    fn r_ban_100k_allows_exactly_100000_00_euro() {
        assert!(check_offset_ban(&debts(10_000_000), AGEVOLATIVA, d(2024, 7, 1), &law()).is_ok());
    }

    #[test]
    fn r_ban_100k_refuses_100000_01_euro() {
        let e =
            check_offset_ban(&debts(10_000_001), AGEVOLATIVA, d(2024, 7, 1), &law()).unwrap_err();
        assert_eq!(
            e,
            F24Error::Ban100k {
                debt: Cents::new(10_000_001),
                threshold: Cents::new(10_000_000)
            }
        );
        assert_eq!((e.rule(), e.code()), ("R-BAN-100K", "r_ban_100k"));
        assert!(e.to_string().contains("100.000,01 €"), "{e}");
        assert!(e.to_string().contains("100.000,00 €"), "{e}");
    }

    #[test]
    fn r_ban_100k_not_in_force_before_2024_07_01() {
        assert!(check_offset_ban(&debts(50_000_000), AGEVOLATIVA, d(2024, 6, 30), &law()).is_ok());
    }

    #[test]
    fn r_ban_100k_ends_when_debt_is_suspended_or_in_a_live_plan() {
        let mut position = debts(20_000_000);
        position.loads[0].suspended = Cents::new(10_000_000);
        assert!(check_offset_ban(&position, AGEVOLATIVA, d(2024, 9, 1), &law()).is_ok());
        let mut planned = debts(20_000_000);
        planned.loads[0].plan = InstalmentPlan::InForce;
        assert!(check_offset_ban(&planned, AGEVOLATIVA, d(2024, 9, 1), &law()).is_ok());
        planned.loads[0].plan = InstalmentPlan::Lapsed;
        assert!(check_offset_ban(&planned, AGEVOLATIVA, d(2024, 9, 1), &law()).is_err());
    }

    #[test]
    fn r_ban_100k_inps_inail_credits_excepted_but_not_mixed_with_others() {
        let law = law();
        let on = d(2024, 9, 1);
        let position = debts(50_000_000);
        assert!(check_offset_ban(&position, &[CreditNature::InpsInail], on, &law).is_ok());
        assert!(
            check_offset_ban(
                &position,
                &[CreditNature::InpsInail, CreditNature::Agevolativa],
                on,
                &law
            )
            .is_err()
        );
    }

    #[test]
    fn r_ban_100k_every_register_code_is_agevolativa() {
        let cat = Catalogue::builtin().unwrap();
        for t in cat.types() {
            for row in &t.codes {
                assert_eq!(
                    CreditNature::of_register_code(&cat, &row.code),
                    Some(CreditNature::Agevolativa)
                );
            }
        }
        let rejected = evaluate_f24(
            &[line("7701", 2024, 100)],
            &availability(),
            &debts(10_000_001),
            d(2024, 9, 1),
            &law(),
            &cat,
        )
        .unwrap_err();
        assert_eq!(
            rejected.ban.as_ref().map(F24Error::rule),
            Some("R-BAN-100K")
        );
    }

    #[test]
    fn r_ban_1500_blocks_erariali_credits_only() {
        let law = law();
        let on = d(2024, 9, 1);
        let position = debts(150_001);
        assert!(check_offset_ban(&position, AGEVOLATIVA, on, &law).is_ok());
        let e = check_offset_ban(&position, &[CreditNature::Erariale], on, &law).unwrap_err();
        assert_eq!(e.rule(), "R-BAN-1500");
        assert!(check_offset_ban(&debts(150_000), &[CreditNature::Erariale], on, &law).is_ok());
    }

    #[test]
    fn r_ban_1500_does_not_apply_where_r_ban_100k_does() {
        let e = check_offset_ban(
            &debts(20_000_000),
            &[CreditNature::Erariale],
            d(2024, 9, 1),
            &law(),
        )
        .unwrap_err();
        assert_eq!(e.rule(), "R-BAN-100K");
    }
}
