//! The credit-type catalogue (SPEC §8): which credit types exist, how many rate each has by
//! expense year, which codice tributo a holding carries by communication date, origin and
//! holder, how it may be ceded and used, and which rate the ten-instalment split accepts
//! (R-SPLIT-ELIGIBLE).
//!
//! The rows live in `catalogue/types.toml`, so that a new law adds rows, not code. This module
//! owns the file's format and refuses a file that is ambiguous: every lookup below must have
//! at most one answer, and a load error names the type and the row to fix.
//!
//! Architecture invariant: a `Catalogue` value has always passed validation; the only ways in
//! are [`Catalogue::from_toml_str`] and [`Catalogue::builtin`].

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::time::RefYear;

/// The catalogue shipped with Cessio, embedded at build time.
pub const BUILTIN_TOML: &str = include_str!("../../../catalogue/types.toml");

/// Most annual rate a type may have. Ten is the longest split in the law (ecobonus, recupero,
/// the F6 split); a larger count in the file is a typo, not a new law.
pub const MAX_RATE_COUNT: u32 = 10;

/// Largest allowed `first_rata_year_offset`: building credits start the year after the
/// expense, COVID credits in their own year; nothing in the law waits longer.
pub const MAX_FIRST_RATA_YEAR_OFFSET: u16 = 1;

/// Legal family of a credit type (SPEC §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Building bonus transferred through the option of art. 121 DL 34/2020.
    Art121,
    /// COVID credit ceded under art. 122 DL 34/2020.
    Art122,
    Other,
}

/// How the credit reached its first holder through the option communication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Cessione,
    Sconto,
}

impl Origin {
    pub const fn as_str(self) -> &'static str {
        match self {
            Origin::Cessione => "cessione",
            Origin::Sconto => "sconto",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Role of the holder of a holding; some credits change code when ceded (rent: 6920 → 6931).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderRole {
    Beneficiario,
    /// Cessionario, or fornitore who received the credit by sconto in fattura.
    Cessionario,
}

impl HolderRole {
    pub const fn as_str(self) -> &'static str {
        match self {
            HolderRole::Beneficiario => "beneficiario",
            HolderRole::Cessionario => "cessionario",
        }
    }
}

impl fmt::Display for HolderRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which cession rules apply (SPEC §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CessionRegime {
    /// R-CHAIN, R-BANK-CLIENT and R-PARTIAL.
    Art121,
    /// Partial cessions and further cessions allowed.
    Art122,
    /// Cedibile una sola volta (R-ONCE): the next holder may only use it in F24.
    Once,
    /// Historical ecobonus regime of art. 14 DL 63/2013 (seed S1, R-ECO-2018): cessions to
    /// suppliers and other private parties, with further cessions, never to banks or
    /// financial intermediaries, except by a beneficiary in the no-tax area.
    Eco2018,
}

/// When a rata may be used in F24 (SPEC F5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageWindow {
    /// 1 January–31 December of the rata's reference year (R-F24-WINDOW-121).
    RefYear,
    /// By 31 December of the year of the cession (R-F24-WINDOW-122).
    YearOfCession,
    /// From 1 January of the rata's reference year, with no end: an unused quota may be used
    /// in later years (seed S0 for credits outside art. 121/122, e.g. the art. 14 ecobonus).
    FromRefYear,
}

/// Number of annual rate for expenses of the years `from_expense_year..=to_expense_year`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RateCount {
    pub from_expense_year: u16,
    /// `None`: open-ended, until a new row closes it.
    pub to_expense_year: Option<u16>,
    pub count: u32,
}

impl RateCount {
    pub fn covers(&self, expense_year: u16) -> bool {
        expense_year >= self.from_expense_year
            && self.to_expense_year.is_none_or(|to| expense_year <= to)
    }

    fn overlaps(&self, other: &RateCount) -> bool {
        let ends_before = |a: &RateCount, b: &RateCount| {
            a.to_expense_year.is_some_and(|to| to < b.from_expense_year)
        };
        !ends_before(self, other) && !ends_before(other, self)
    }
}

/// One codice tributo row: the code a holding carries when its option communication was sent
/// within `from..=to`, for the given origin and holder (`None` = any).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CodeRow {
    pub from: NaiveDate,
    /// Inclusive; `None`: still in force.
    pub to: Option<NaiveDate>,
    pub origin: Option<Origin>,
    pub holder: Option<HolderRole>,
    pub code: String,
}

impl CodeRow {
    pub fn applies(&self, communicated_on: NaiveDate, origin: Origin, holder: HolderRole) -> bool {
        self.in_period(communicated_on)
            && self.origin.is_none_or(|o| o == origin)
            && self.holder.is_none_or(|h| h == holder)
    }

    fn in_period(&self, on: NaiveDate) -> bool {
        on >= self.from && self.to.is_none_or(|to| on <= to)
    }

    fn period_overlaps(&self, other: &CodeRow) -> bool {
        let ends_before = |a: &CodeRow, b: &CodeRow| a.to.is_some_and(|to| to < b.from);
        !ends_before(self, other) && !ends_before(other, self)
    }

    /// Whether some (date, origin, holder) would match both rows: then `code_for` would be
    /// ambiguous.
    fn conflicts_with(&self, other: &CodeRow) -> bool {
        self.period_overlaps(other)
            && both_match(self.origin, other.origin)
            && both_match(self.holder, other.holder)
    }
}

fn both_match<T: PartialEq>(a: Option<T>, b: Option<T>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// One R-SPLIT-ELIGIBLE row (SPEC F6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SplitEligibility {
    /// Last day (inclusive) on which the option communication may have been sent.
    pub communicated_until: NaiveDate,
    /// Codici tributo of the rate this row admits.
    pub codes: Vec<String>,
    /// First reference year of the rate this row admits.
    pub from_rata_year: RefYear,
}

/// A credit type, validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreditType {
    /// Stable snake_case identifier, stored with every credit.
    pub key: String,
    pub name: String,
    pub legal_basis: String,
    pub family: Family,
    pub cession_regime: CessionRegime,
    pub usage_window: UsageWindow,
    pub rate_counts: Vec<RateCount>,
    /// Year of the first rata = expense year + this offset.
    pub first_rata_year_offset: u16,
    pub codes: Vec<CodeRow>,
    /// Code of the ten split rate (F6); `Some` iff `split_eligibility` is not empty.
    pub split_code: Option<String>,
    pub split_eligibility: Vec<SplitEligibility>,
    pub source: String,
    pub note: Option<String>,
}

impl CreditType {
    /// Number of annual rate for expenses of `expense_year`, if the type covers that year.
    pub fn rate_count(&self, expense_year: u16) -> Option<u32> {
        self.rate_counts
            .iter()
            .find(|r| r.covers(expense_year))
            .map(|r| r.count)
    }

    /// Reference year of the first rata for expenses of `expense_year`; `None` on overflow.
    pub fn first_rata_year(&self, expense_year: u16) -> Option<RefYear> {
        expense_year
            .checked_add(self.first_rata_year_offset)
            .map(RefYear::new)
    }

    /// Codice tributo of a holding whose option communication was sent on `communicated_on`.
    /// Validation guarantees at most one row matches.
    pub fn code_for(
        &self,
        communicated_on: NaiveDate,
        origin: Origin,
        holder: HolderRole,
    ) -> Option<&str> {
        self.codes
            .iter()
            .find(|row| row.applies(communicated_on, origin, holder))
            .map(|row| row.code.as_str())
    }

    /// R-SPLIT-ELIGIBLE: whether a rata with codice tributo `code`, from an option
    /// communication sent on `communicated_on`, of reference year `rata_year`, may be split
    /// into ten rate.
    pub fn split_eligible(
        &self,
        code: &str,
        communicated_on: NaiveDate,
        rata_year: RefYear,
    ) -> bool {
        self.split_eligibility.iter().any(|row| {
            row.codes.iter().any(|c| c == code)
                && communicated_on <= row.communicated_until
                && rata_year >= row.from_rata_year
        })
    }

    /// Whether `code` is one of this type's codes, split code included.
    pub fn has_code(&self, code: &str) -> bool {
        self.codes.iter().any(|row| row.code == code) || self.split_code.as_deref() == Some(code)
    }
}

/// The validated set of credit types.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Catalogue {
    types: Vec<CreditType>,
}

impl Catalogue {
    /// Parses and validates a catalogue in the format of `catalogue/types.toml`.
    pub fn from_toml_str(text: &str) -> Result<Catalogue, CatalogueError> {
        let raw: RawCatalogue = toml::from_str(text).map_err(|e| parse_error(text, &e))?;
        let mut types = Vec::with_capacity(raw.types.len());
        for (index, raw_type) in raw.types.into_iter().enumerate() {
            types.push(validate_type(raw_type, index + 1)?);
        }
        check_duplicate_keys(&types)?;
        check_codes_across_types(&types)?;
        Ok(Catalogue { types })
    }

    /// The catalogue shipped with Cessio ([`BUILTIN_TOML`]). A test asserts that it loads, so
    /// an error here means the embedded file was edited without running the tests.
    pub fn builtin() -> Result<Catalogue, CatalogueError> {
        Catalogue::from_toml_str(BUILTIN_TOML)
    }

    pub fn types(&self) -> &[CreditType] {
        &self.types
    }

    pub fn get(&self, key: &str) -> Option<&CreditType> {
        self.types.iter().find(|t| t.key == key)
    }

    /// The type owning `code` (regular or split code). Validation makes the owner unique.
    pub fn by_code(&self, code: &str) -> Option<&CreditType> {
        self.types.iter().find(|t| t.has_code(code))
    }
}

// ---- errors ---------------------------------------------------------------------------------

/// Which part of a type a validation error is about. Row numbers are 1-based, as a person
/// counts the rows in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogueRow {
    /// The type's own fields (key, name, offset, ...).
    Type,
    Code(usize),
    RateCount(usize),
    SplitCode,
    SplitEligibility(usize),
}

impl fmt::Display for CatalogueRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogueRow::Type => f.write_str("dati del tipo"),
            CatalogueRow::Code(n) => write!(f, "riga codici {n}"),
            CatalogueRow::RateCount(n) => write!(f, "riga rate {n}"),
            CatalogueRow::SplitCode => f.write_str("codice ripartizione"),
            CatalogueRow::SplitEligibility(n) => write!(f, "riga ripartizione {n}"),
        }
    }
}

/// Why a catalogue file was refused. Messages are Italian and name the type and the row.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// TOML syntax, a missing or unknown field, an unknown enum value, a wrong type.
    #[error("catalogo: {}{message}", parse_location(.key.as_deref(), *.line))]
    Parse {
        /// Key of the `[[types]]` entry holding the error, when it could be found.
        key: Option<String>,
        /// 1-based line in the file.
        line: Option<usize>,
        message: String,
    },
    #[error("catalogo: tipo '{key}', tipo n. {index}: chiave già usata dal tipo n. {first}")]
    DuplicateType {
        key: String,
        index: usize,
        first: usize,
    },
    #[error("catalogo: tipo '{key}', {row}: il codice tributo {code} è già usato {used_by}")]
    DuplicateCode {
        key: String,
        row: CatalogueRow,
        code: String,
        used_by: String,
    },
    #[error("catalogo: tipo '{key}', {row}: il periodo si sovrappone alla riga {other} ({detail})")]
    OverlappingPeriod {
        key: String,
        row: CatalogueRow,
        /// 1-based row of the same section that overlaps.
        other: usize,
        detail: String,
    },
    #[error("catalogo: tipo '{key}', {row}: {reason}")]
    BadRow {
        key: String,
        row: CatalogueRow,
        reason: String,
    },
}

impl CatalogueError {
    /// Stable machine-readable code.
    pub const fn code(&self) -> &'static str {
        match self {
            CatalogueError::Parse { .. } => "catalogue_parse",
            CatalogueError::DuplicateType { .. } => "catalogue_duplicate_type",
            CatalogueError::DuplicateCode { .. } => "catalogue_duplicate_code",
            CatalogueError::OverlappingPeriod { .. } => "catalogue_overlapping_period",
            CatalogueError::BadRow { .. } => "catalogue_bad_row",
        }
    }
}

fn parse_location(key: Option<&str>, line: Option<usize>) -> String {
    match (key, line) {
        (Some(key), Some(line)) => format!("tipo '{key}' (riga {line} del file): "),
        (Some(key), None) => format!("tipo '{key}': "),
        (None, Some(line)) => format!("riga {line} del file: "),
        (None, None) => String::new(),
    }
}

/// Wraps a TOML/serde error with the file line and, when the file is well-formed enough to
/// find its `[[types]]` headers, the key of the type the error falls in: a person fixing the
/// file thinks in types, not byte offsets.
fn parse_error(text: &str, err: &toml::de::Error) -> CatalogueError {
    let start = err.span().map(|span| span.start);
    let line = start.map(|pos| line_of(text, pos));
    let key = start.and_then(|pos| type_key_at(text, pos));
    CatalogueError::Parse {
        key,
        line,
        message: err.message().trim().to_owned(),
    }
}

fn line_of(text: &str, pos: usize) -> usize {
    let end = pos.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Key of the last `[[types]]` entry starting at or before `pos`. Uses a lenient second
/// parse that ignores everything but the keys, so it works whenever only the content (not
/// the syntax) is wrong.
fn type_key_at(text: &str, pos: usize) -> Option<String> {
    #[derive(Deserialize)]
    struct Headers {
        #[serde(default)]
        types: Vec<toml::Spanned<KeyOnly>>,
    }
    #[derive(Deserialize)]
    struct KeyOnly {
        key: Option<toml::Value>,
    }
    let headers: Headers = toml::from_str(text).ok()?;
    let entry = headers
        .types
        .iter()
        .rev()
        .find(|entry| entry.span().start <= pos)?;
    entry
        .get_ref()
        .key
        .as_ref()
        .and_then(|k| k.as_str())
        .map(str::to_owned)
}

// ---- file model -----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    #[serde(default)]
    types: Vec<RawType>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawType {
    key: String,
    name: String,
    legal_basis: String,
    family: Family,
    cession_regime: CessionRegime,
    usage_window: UsageWindow,
    first_rata_year_offset: u16,
    rate_counts: Vec<RawRateCount>,
    codes: Vec<RawCodeRow>,
    split_code: Option<String>,
    #[serde(default)]
    split_eligibility: Vec<RawSplitEligibility>,
    source: String,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateCount {
    from_expense_year: u16,
    to_expense_year: Option<u16>,
    count: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCodeRow {
    from: toml::value::Datetime,
    to: Option<toml::value::Datetime>,
    origin: RawOrigin,
    holder: RawHolder,
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSplitEligibility {
    communicated_until: toml::value::Datetime,
    codes: Vec<String>,
    from_rata_year: u16,
}

/// Origin as written in the file, where `"any"` matches both.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawOrigin {
    Cessione,
    Sconto,
    Any,
}

impl RawOrigin {
    fn into_option(self) -> Option<Origin> {
        match self {
            RawOrigin::Cessione => Some(Origin::Cessione),
            RawOrigin::Sconto => Some(Origin::Sconto),
            RawOrigin::Any => None,
        }
    }
}

/// Holder role as written in the file, where `"any"` matches both.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawHolder {
    Beneficiario,
    Cessionario,
    Any,
}

impl RawHolder {
    fn into_option(self) -> Option<HolderRole> {
        match self {
            RawHolder::Beneficiario => Some(HolderRole::Beneficiario),
            RawHolder::Cessionario => Some(HolderRole::Cessionario),
            RawHolder::Any => None,
        }
    }
}

// ---- validation -----------------------------------------------------------------------------

fn validate_type(raw: RawType, index: usize) -> Result<CreditType, CatalogueError> {
    let key = if raw.key.is_empty() {
        format!("n. {index}")
    } else {
        raw.key.clone()
    };
    let bad = |row: CatalogueRow, reason: String| CatalogueError::BadRow {
        key: key.clone(),
        row,
        reason,
    };

    if !is_snake_case(&raw.key) {
        return Err(bad(
            CatalogueRow::Type,
            "la chiave deve essere snake_case (a-z, 0-9, _), iniziare con una lettera".to_owned(),
        ));
    }
    for (field, value) in [
        ("name", &raw.name),
        ("legal_basis", &raw.legal_basis),
        ("source", &raw.source),
    ] {
        if value.trim().is_empty() {
            return Err(bad(CatalogueRow::Type, format!("il campo {field} è vuoto")));
        }
    }
    if raw.first_rata_year_offset > MAX_FIRST_RATA_YEAR_OFFSET {
        return Err(bad(
            CatalogueRow::Type,
            format!(
                "first_rata_year_offset {} non ammesso (massimo {MAX_FIRST_RATA_YEAR_OFFSET})",
                raw.first_rata_year_offset
            ),
        ));
    }

    let rate_counts = validate_rate_counts(&key, raw.rate_counts)?;
    let codes = validate_codes(&key, raw.codes)?;

    let split_code = match raw.split_code {
        Some(code) => {
            if !is_code(&code) {
                return Err(bad(CatalogueRow::SplitCode, bad_code_reason(&code)));
            }
            if let Some(n) = codes.iter().position(|row| row.code == code) {
                return Err(CatalogueError::DuplicateCode {
                    key: key.clone(),
                    row: CatalogueRow::SplitCode,
                    code,
                    used_by: format!("dalla riga codici {} dello stesso tipo", n + 1),
                });
            }
            Some(code)
        }
        None => None,
    };
    match (&split_code, raw.split_eligibility.is_empty()) {
        (Some(_), true) => {
            return Err(bad(
                CatalogueRow::SplitCode,
                "split_code senza righe split_eligibility".to_owned(),
            ));
        }
        (None, false) => {
            return Err(bad(
                CatalogueRow::SplitEligibility(1),
                "righe split_eligibility senza split_code".to_owned(),
            ));
        }
        _ => {}
    }
    let split_eligibility = validate_split_eligibility(&key, raw.split_eligibility, &codes)?;

    Ok(CreditType {
        key: raw.key,
        name: raw.name,
        legal_basis: raw.legal_basis,
        family: raw.family,
        cession_regime: raw.cession_regime,
        usage_window: raw.usage_window,
        rate_counts,
        first_rata_year_offset: raw.first_rata_year_offset,
        codes,
        split_code,
        split_eligibility,
        source: raw.source,
        note: raw.note,
    })
}

fn validate_rate_counts(
    key: &str,
    raw: Vec<RawRateCount>,
) -> Result<Vec<RateCount>, CatalogueError> {
    let bad = |n: usize, reason: String| CatalogueError::BadRow {
        key: key.to_owned(),
        row: CatalogueRow::RateCount(n),
        reason,
    };
    if raw.is_empty() {
        return Err(CatalogueError::BadRow {
            key: key.to_owned(),
            row: CatalogueRow::Type,
            reason: "nessuna riga rate_counts".to_owned(),
        });
    }
    let mut rows: Vec<RateCount> = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let n = i + 1;
        if r.count == 0 || r.count > MAX_RATE_COUNT {
            return Err(bad(
                n,
                format!(
                    "numero di rate {} non ammesso (da 1 a {MAX_RATE_COUNT})",
                    r.count
                ),
            ));
        }
        if r.to_expense_year.is_some_and(|to| to < r.from_expense_year) {
            return Err(bad(
                n,
                "to_expense_year precede from_expense_year".to_owned(),
            ));
        }
        let row = RateCount {
            from_expense_year: r.from_expense_year,
            to_expense_year: r.to_expense_year,
            count: r.count,
        };
        if let Some(other) = rows.iter().position(|prev| prev.overlaps(&row)) {
            return Err(CatalogueError::OverlappingPeriod {
                key: key.to_owned(),
                row: CatalogueRow::RateCount(n),
                other: other + 1,
                detail: format!("anni di spesa dal {}", row.from_expense_year),
            });
        }
        rows.push(row);
    }
    Ok(rows)
}

fn validate_codes(key: &str, raw: Vec<RawCodeRow>) -> Result<Vec<CodeRow>, CatalogueError> {
    let bad = |n: usize, reason: String| CatalogueError::BadRow {
        key: key.to_owned(),
        row: CatalogueRow::Code(n),
        reason,
    };
    if raw.is_empty() {
        return Err(CatalogueError::BadRow {
            key: key.to_owned(),
            row: CatalogueRow::Type,
            reason: "nessuna riga codes".to_owned(),
        });
    }
    let mut rows: Vec<CodeRow> = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let n = i + 1;
        if !is_code(&r.code) {
            return Err(bad(n, bad_code_reason(&r.code)));
        }
        let from = toml_date(&r.from).map_err(|reason| bad(n, reason))?;
        let to =
            r.to.as_ref()
                .map(toml_date)
                .transpose()
                .map_err(|reason| bad(n, reason))?;
        if to.is_some_and(|to| to < from) {
            return Err(bad(n, "la data 'to' precede la data 'from'".to_owned()));
        }
        let row = CodeRow {
            from,
            to,
            origin: r.origin.into_option(),
            holder: r.holder.into_option(),
            code: r.code,
        };
        for (j, prev) in rows.iter().enumerate() {
            if prev.conflicts_with(&row) {
                return Err(CatalogueError::OverlappingPeriod {
                    key: key.to_owned(),
                    row: CatalogueRow::Code(n),
                    other: j + 1,
                    detail: format!(
                        "origine {}, titolare {}",
                        any_or(row.origin.map(Origin::as_str)),
                        any_or(row.holder.map(HolderRole::as_str))
                    ),
                });
            }
            // Rows that differ only by origin must not share a code: the origin is why the
            // codes were split (Ris. 12/E/2022), so a shared code hides a typo. Different
            // holder roles may share one, though `holder = "any"` says it better.
            let holders_disjoint = !both_match(prev.holder, row.holder);
            if prev.code == row.code && prev.period_overlaps(&row) && !holders_disjoint {
                return Err(CatalogueError::DuplicateCode {
                    key: key.to_owned(),
                    row: CatalogueRow::Code(n),
                    code: row.code,
                    used_by: format!("dalla riga codici {} con periodo sovrapposto", j + 1),
                });
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

fn validate_split_eligibility(
    key: &str,
    raw: Vec<RawSplitEligibility>,
    codes: &[CodeRow],
) -> Result<Vec<SplitEligibility>, CatalogueError> {
    let mut rows = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let bad = |reason: String| CatalogueError::BadRow {
            key: key.to_owned(),
            row: CatalogueRow::SplitEligibility(i + 1),
            reason,
        };
        if r.codes.is_empty() {
            return Err(bad("nessun codice".to_owned()));
        }
        if let Some(unknown) = r
            .codes
            .iter()
            .find(|c| !codes.iter().any(|row| &row.code == *c))
        {
            return Err(bad(format!(
                "il codice {unknown} non è tra i codici del tipo"
            )));
        }
        let communicated_until = toml_date(&r.communicated_until).map_err(bad)?;
        rows.push(SplitEligibility {
            communicated_until,
            codes: r.codes,
            from_rata_year: RefYear::new(r.from_rata_year),
        });
    }
    Ok(rows)
}

fn check_duplicate_keys(types: &[CreditType]) -> Result<(), CatalogueError> {
    for (i, t) in types.iter().enumerate() {
        if let Some(first) = types[..i].iter().position(|prev| prev.key == t.key) {
            return Err(CatalogueError::DuplicateType {
                key: t.key.clone(),
                index: i + 1,
                first: first + 1,
            });
        }
    }
    Ok(())
}

/// A code identifies its type on an F24 line (`Catalogue::by_code`), so it may belong to one
/// type only.
fn check_codes_across_types(types: &[CreditType]) -> Result<(), CatalogueError> {
    for (i, t) in types.iter().enumerate() {
        let rows = t
            .codes
            .iter()
            .enumerate()
            .map(|(n, row)| (CatalogueRow::Code(n + 1), row.code.as_str()))
            .chain(
                t.split_code
                    .as_deref()
                    .map(|c| (CatalogueRow::SplitCode, c)),
            );
        for (row, code) in rows {
            if let Some(owner) = types[..i].iter().find(|prev| prev.has_code(code)) {
                return Err(CatalogueError::DuplicateCode {
                    key: t.key.clone(),
                    row,
                    code: code.to_owned(),
                    used_by: format!("dal tipo '{}'", owner.key),
                });
            }
        }
    }
    Ok(())
}

/// A date of the catalogue's TOML files (this catalogue, the law's rules, the opt-stop
/// table): a day, with no time or offset, which would make "in force from" ambiguous.
pub(crate) fn toml_date(value: &toml::value::Datetime) -> Result<NaiveDate, String> {
    let invalid = || format!("data '{value}' non valida: attesa una data senza ora (AAAA-MM-GG)");
    match (value.date, value.time, value.offset) {
        (Some(d), None, None) => {
            NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
                .ok_or_else(invalid)
        }
        _ => Err(invalid()),
    }
}

fn any_or(value: Option<&'static str>) -> &'static str {
    value.unwrap_or("qualsiasi")
}

fn is_snake_case(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// F24 codici tributo are four characters, digits or capital letters.
fn is_code(code: &str) -> bool {
    code.len() == 4
        && code
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

fn bad_code_reason(code: &str) -> String {
    format!("codice tributo '{code}' non valido: attese 4 cifre o lettere maiuscole")
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    fn builtin() -> Catalogue {
        Catalogue::builtin().unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn ty<'a>(cat: &'a Catalogue, key: &str) -> &'a CreditType {
        cat.get(key).unwrap()
    }

    use HolderRole::{Beneficiario, Cessionario};
    use Origin::{Cessione, Sconto};

    /// A minimal valid type; tests append or replace fields to break it.
    fn one_type(key: &str, codes: &str, extra: &str) -> String {
        format!(
            r#"
[[types]]
key = "{key}"
name = "Prova"
legal_basis = "art. 1"
family = "art121"
cession_regime = "art121"
usage_window = "ref_year"
first_rata_year_offset = 1
rate_counts = [ {{ from_expense_year = 2020, count = 5 }} ]
codes = [
{codes}
]
source = "test"
{extra}
"#
        )
    }

    fn err(text: &str) -> CatalogueError {
        Catalogue::from_toml_str(text).unwrap_err()
    }

    #[test]
    fn builtin_catalogue_loads_the_twelve_types_of_spec_8_and_the_art14_ecobonus() {
        let cat = builtin();
        let keys: Vec<&str> = cat.types().iter().map(|t| t.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "superbonus",
                "ecobonus",
                "sismabonus",
                "colonnine",
                "bonus_facciate",
                "recupero_edilizio",
                "barriere_75",
                "canoni_locazione",
                "botteghe_negozi",
                "tax_credit_vacanze",
                "sanificazione",
                "adeguamento_ambienti",
                "ecobonus_art14",
            ]
        );
        assert!(cat.types().iter().all(|t| !t.source.is_empty()));
    }

    #[test]
    fn builtin_families_regimes_and_windows() {
        let cat = builtin();
        for t in cat.types() {
            match t.family {
                Family::Art121 => {
                    assert_eq!(t.cession_regime, CessionRegime::Art121, "{}", t.key);
                    assert_eq!(t.usage_window, UsageWindow::RefYear, "{}", t.key);
                    assert_eq!(t.first_rata_year_offset, 1, "{}", t.key);
                }
                Family::Art122 => {
                    assert_eq!(t.cession_regime, CessionRegime::Art122, "{}", t.key);
                    assert_eq!(t.usage_window, UsageWindow::YearOfCession, "{}", t.key);
                }
                Family::Other if t.key == "ecobonus_art14" => {
                    assert_eq!(t.cession_regime, CessionRegime::Eco2018);
                    assert_eq!(t.usage_window, UsageWindow::FromRefYear);
                }
                Family::Other => {
                    assert_eq!(t.cession_regime, CessionRegime::Art122, "{}", t.key);
                    assert_eq!(t.usage_window, UsageWindow::YearOfCession, "{}", t.key);
                }
            }
        }
        assert_eq!(ty(&cat, "canoni_locazione").first_rata_year_offset, 0);
        assert_eq!(ty(&cat, "tax_credit_vacanze").family, Family::Other);
    }

    #[test]
    fn code_for_superbonus_across_each_boundary_date() {
        let cat = builtin();
        let sb = ty(&cat, "superbonus");
        let table = [
            (date(2020, 10, 15), Cessione, "6921"),
            (date(2022, 2, 16), Cessione, "6921"),
            (date(2022, 2, 16), Sconto, "6921"),
            (date(2022, 2, 17), Cessione, "7701"),
            (date(2022, 2, 17), Sconto, "7711"),
            (date(2022, 10, 31), Cessione, "7701"),
            (date(2022, 10, 31), Sconto, "7711"),
            (date(2022, 11, 1), Cessione, "7708"),
            (date(2022, 11, 1), Sconto, "7718"),
            (date(2023, 3, 31), Cessione, "7708"),
            (date(2023, 3, 31), Sconto, "7718"),
            (date(2023, 4, 1), Cessione, "7709"),
            (date(2023, 4, 1), Sconto, "7719"),
            (date(2030, 1, 1), Sconto, "7719"),
        ];
        for (on, origin, code) in table {
            for holder in [Beneficiario, Cessionario] {
                assert_eq!(sb.code_for(on, origin, holder), Some(code), "{on} {origin}");
            }
        }
        assert_eq!(sb.code_for(date(2020, 10, 14), Cessione, Cessionario), None);
    }

    #[test]
    fn code_for_other_building_types_across_each_boundary_date() {
        let cat = builtin();
        let table = [
            ("ecobonus", date(2022, 2, 16), Sconto, Some("6922")),
            ("ecobonus", date(2022, 2, 17), Cessione, Some("7702")),
            ("ecobonus", date(2023, 4, 1), Sconto, Some("7712")),
            ("sismabonus", date(2022, 2, 16), Cessione, Some("6923")),
            ("sismabonus", date(2022, 2, 17), Sconto, Some("7713")),
            ("sismabonus", date(2023, 3, 31), Cessione, Some("7703")),
            ("sismabonus", date(2023, 4, 1), Cessione, Some("7738")),
            ("sismabonus", date(2023, 4, 1), Sconto, Some("7739")),
            ("colonnine", date(2022, 2, 17), Sconto, Some("7714")),
            ("bonus_facciate", date(2021, 6, 1), Cessione, Some("6925")),
            ("bonus_facciate", date(2022, 2, 17), Sconto, Some("7715")),
            (
                "recupero_edilizio",
                date(2022, 2, 17),
                Cessione,
                Some("7706"),
            ),
            ("barriere_75", date(2022, 2, 16), Cessione, None),
            ("barriere_75", date(2022, 2, 17), Cessione, Some("7707")),
            ("barriere_75", date(2023, 3, 31), Sconto, Some("7717")),
            ("barriere_75", date(2023, 4, 1), Cessione, Some("7710")),
            ("barriere_75", date(2023, 4, 1), Sconto, Some("7740")),
        ];
        for (key, on, origin, code) in table {
            assert_eq!(
                ty(&cat, key).code_for(on, origin, Cessionario),
                code,
                "{key} {on} {origin}"
            );
        }
    }

    #[test]
    fn code_for_covid_credits_depends_on_holder_where_the_law_says_so() {
        let cat = builtin();
        let on = date(2020, 9, 1);
        let table = [
            ("canoni_locazione", Beneficiario, "6920"),
            ("canoni_locazione", Cessionario, "6931"),
            ("botteghe_negozi", Beneficiario, "6914"),
            ("botteghe_negozi", Cessionario, "6930"),
            ("tax_credit_vacanze", Beneficiario, "6915"),
            ("tax_credit_vacanze", Cessionario, "6915"),
            ("sanificazione", Beneficiario, "6917"),
            ("sanificazione", Cessionario, "6917"),
            ("adeguamento_ambienti", Beneficiario, "6918"),
            ("adeguamento_ambienti", Cessionario, "6918"),
        ];
        for (key, holder, code) in table {
            for origin in [Cessione, Sconto] {
                assert_eq!(
                    ty(&cat, key).code_for(on, origin, holder),
                    Some(code),
                    "{key} {holder}"
                );
            }
        }
    }

    #[test]
    fn covid_credits_have_their_codes_and_the_art122_regime() {
        let cat = builtin();
        let table = [
            ("canoni_locazione", ["6920", "6931"].as_slice()),
            ("botteghe_negozi", ["6914", "6930"].as_slice()),
            ("tax_credit_vacanze", ["6915"].as_slice()),
            ("sanificazione", ["6917"].as_slice()),
            ("adeguamento_ambienti", ["6918"].as_slice()),
        ];
        for (key, codes) in table {
            let t = ty(&cat, key);
            for code in codes {
                assert_eq!(
                    cat.by_code(code).map(|t| t.key.as_str()),
                    Some(key),
                    "{code}"
                );
            }
            // Art. 122 regime: partial cessions (also of tracciabili) and further cessions.
            assert_eq!(t.cession_regime, CessionRegime::Art122, "{key}");
            assert!(
                crate::rules::partial_cession_allowed(true, t.cession_regime),
                "{key}"
            );
            assert_eq!(t.usage_window, UsageWindow::YearOfCession, "{key}");
            assert!(t.split_code.is_none(), "{key}");
        }
    }

    #[test]
    fn rate_count_superbonus_2021_is_5_and_2022_is_4() {
        let cat = builtin();
        let sb = ty(&cat, "superbonus");
        assert_eq!(sb.rate_count(2019), None);
        assert_eq!(sb.rate_count(2020), Some(5));
        assert_eq!(sb.rate_count(2021), Some(5));
        assert_eq!(sb.rate_count(2022), Some(4));
        assert_eq!(sb.rate_count(2023), Some(4));
    }

    #[test]
    fn rate_count_per_type_follows_research_2_3() {
        let cat = builtin();
        let table = [
            ("ecobonus", 2021, Some(10)),
            ("sismabonus", 2022, Some(5)),
            ("colonnine", 2021, Some(10)),
            ("colonnine", 2022, None),
            ("bonus_facciate", 2022, Some(10)),
            ("bonus_facciate", 2023, None),
            ("recupero_edilizio", 2021, Some(10)),
            ("barriere_75", 2021, None),
            ("barriere_75", 2022, Some(5)),
            ("barriere_75", 2025, Some(5)),
            ("canoni_locazione", 2021, Some(1)),
            ("botteghe_negozi", 2020, Some(1)),
            ("tax_credit_vacanze", 2020, Some(1)),
            ("sanificazione", 2020, Some(1)),
            ("adeguamento_ambienti", 2020, Some(1)),
        ];
        for (key, year, count) in table {
            assert_eq!(ty(&cat, key).rate_count(year), count, "{key} {year}");
        }
    }

    #[test]
    fn first_rata_year_is_the_year_after_the_expense_for_building_credits() {
        let cat = builtin();
        assert_eq!(
            ty(&cat, "superbonus").first_rata_year(2022),
            Some(RefYear::new(2023))
        );
        assert_eq!(
            ty(&cat, "canoni_locazione").first_rata_year(2020),
            Some(RefYear::new(2020))
        );
        assert_eq!(ty(&cat, "superbonus").first_rata_year(u16::MAX), None);
    }

    #[test]
    fn by_code_finds_the_owner_of_regular_and_split_codes() {
        let cat = builtin();
        let table = [
            ("6921", "superbonus"),
            ("7719", "superbonus"),
            ("7771", "superbonus"),
            ("7772", "sismabonus"),
            ("7773", "barriere_75"),
            ("7740", "barriere_75"),
            ("6931", "canoni_locazione"),
            ("6915", "tax_credit_vacanze"),
        ];
        for (code, key) in table {
            assert_eq!(
                cat.by_code(code).map(|t| t.key.as_str()),
                Some(key),
                "{code}"
            );
        }
        assert!(cat.by_code("9999").is_none());
        assert!(cat.get("nessuno").is_none());
    }

    #[test]
    fn f6_split_codes_are_7771_7772_7773() {
        let cat = builtin();
        let split: Vec<(&str, Option<&str>)> = cat
            .types()
            .iter()
            .filter(|t| t.split_code.is_some())
            .map(|t| (t.key.as_str(), t.split_code.as_deref()))
            .collect();
        assert_eq!(
            split,
            [
                ("superbonus", Some("7771")),
                ("sismabonus", Some("7772")),
                ("barriere_75", Some("7773")),
            ]
        );
    }

    #[test]
    fn r_split_eligible_superbonus_by_2022_10_31_from_2022_rata() {
        let cat = builtin();
        let sb = ty(&cat, "superbonus");
        for code in ["6921", "7701", "7711"] {
            assert!(
                sb.split_eligible(code, date(2022, 10, 31), RefYear::new(2022)),
                "{code}"
            );
            assert!(
                sb.split_eligible(code, date(2021, 3, 1), RefYear::new(2025)),
                "{code}"
            );
            assert!(
                !sb.split_eligible(code, date(2022, 10, 31), RefYear::new(2021)),
                "{code}"
            );
        }
    }

    #[test]
    fn r_split_eligible_superbonus_7708_7718_by_2023_03_31_from_2023_rata() {
        let cat = builtin();
        let sb = ty(&cat, "superbonus");
        for code in ["7708", "7718"] {
            assert!(
                sb.split_eligible(code, date(2023, 3, 31), RefYear::new(2023)),
                "{code}"
            );
            assert!(
                !sb.split_eligible(code, date(2022, 11, 1), RefYear::new(2022)),
                "{code}"
            );
            assert!(
                !sb.split_eligible(code, date(2023, 4, 1), RefYear::new(2024)),
                "{code}"
            );
        }
    }

    #[test]
    fn r_split_eligible_sismabonus_and_barriere_by_2023_03_31_from_2023_rata() {
        let cat = builtin();
        let table = [
            ("sismabonus", ["6923", "7703", "7713"].as_slice()),
            ("barriere_75", ["7707", "7717"].as_slice()),
        ];
        for (key, codes) in table {
            let t = ty(&cat, key);
            for code in codes {
                assert!(
                    t.split_eligible(code, date(2023, 3, 31), RefYear::new(2023)),
                    "{key} {code}"
                );
                assert!(
                    !t.split_eligible(code, date(2022, 6, 1), RefYear::new(2022)),
                    "{key} {code}"
                );
            }
        }
    }

    #[test]
    fn r_split_eligible_never_for_communications_from_2023_04_01() {
        let cat = builtin();
        let table = [
            ("superbonus", ["7709", "7719"]),
            ("sismabonus", ["7738", "7739"]),
            ("barriere_75", ["7710", "7740"]),
        ];
        for (key, codes) in table {
            for code in codes {
                assert!(
                    !ty(&cat, key).split_eligible(code, date(2023, 4, 1), RefYear::new(2024)),
                    "{key} {code}"
                );
            }
        }
        // A 7701 code with a later date cannot happen, but the date still decides.
        assert!(!ty(&cat, "superbonus").split_eligible(
            "7701",
            date(2022, 11, 1),
            RefYear::new(2023)
        ));
    }

    #[test]
    fn r_split_eligible_never_for_other_types() {
        let cat = builtin();
        for key in ["ecobonus", "bonus_facciate", "canoni_locazione"] {
            let t = ty(&cat, key);
            assert!(t.split_eligibility.is_empty(), "{key}");
            let code = t.codes[0].code.clone();
            assert!(
                !t.split_eligible(&code, date(2021, 1, 1), RefYear::new(2023)),
                "{key}"
            );
        }
    }

    #[test]
    fn minimal_catalogue_is_valid() {
        let text = one_type(
            "prova",
            r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "1234" },"#,
            "",
        );
        let cat = Catalogue::from_toml_str(&text).unwrap();
        assert_eq!(cat.types().len(), 1);
    }

    #[test]
    fn rejects_duplicate_type_key() {
        let row = r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "1234" },"#;
        let other = r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "5678" },"#;
        let text = one_type("prova", row, "") + &one_type("prova", other, "");
        let e = err(&text);
        assert_eq!(e.code(), "catalogue_duplicate_type");
        assert_eq!(
            e.to_string(),
            "catalogo: tipo 'prova', tipo n. 2: chiave già usata dal tipo n. 1"
        );
    }

    #[test]
    fn rejects_code_used_by_two_types() {
        let row = r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "1234" },"#;
        let text = one_type("primo", row, "") + &one_type("secondo", row, "");
        let e = err(&text);
        assert_eq!(e.code(), "catalogue_duplicate_code");
        assert_eq!(
            e.to_string(),
            "catalogo: tipo 'secondo', riga codici 1: il codice tributo 1234 è già usato dal tipo 'primo'"
        );
    }

    #[test]
    fn rejects_split_code_used_by_another_type() {
        let row = r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "1234" },"#;
        let split = "split_code = \"1234\"\n[[types.split_eligibility]]\ncommunicated_until = 2023-03-31\ncodes = [\"5678\"]\nfrom_rata_year = 2023\n";
        let row2 = r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "5678" },"#;
        let text = one_type("primo", row, "") + &one_type("secondo", row2, split);
        let e = err(&text);
        assert_eq!(e.code(), "catalogue_duplicate_code");
        assert!(
            e.to_string()
                .contains("tipo 'secondo', codice ripartizione"),
            "{e}"
        );
    }

    #[test]
    fn rejects_same_code_in_one_type_for_two_origins_in_overlapping_periods() {
        let rows = r#"
{ from = 2022-01-01, origin = "cessione", holder = "any", code = "1234" },
{ from = 2022-06-01, origin = "sconto", holder = "any", code = "1234" },"#;
        let e = err(&one_type("prova", rows, ""));
        assert_eq!(e.code(), "catalogue_duplicate_code");
        assert_eq!(
            e.to_string(),
            "catalogo: tipo 'prova', riga codici 2: il codice tributo 1234 è già usato dalla riga codici 1 con periodo sovrapposto"
        );
    }

    #[test]
    fn allows_same_code_in_one_type_for_disjoint_periods_or_holders() {
        let rows = r#"
{ from = 2022-01-01, to = 2022-12-31, origin = "any", holder = "any", code = "1234" },
{ from = 2023-01-01, to = 2023-12-31, origin = "any", holder = "any", code = "5678" },
{ from = 2024-01-01, origin = "any", holder = "beneficiario", code = "1234" },
{ from = 2024-01-01, origin = "any", holder = "cessionario", code = "1234" },"#;
        let cat = Catalogue::from_toml_str(&one_type("prova", rows, "")).unwrap();
        let t = ty(&cat, "prova");
        assert_eq!(
            t.code_for(date(2022, 5, 1), Cessione, Cessionario),
            Some("1234")
        );
        assert_eq!(
            t.code_for(date(2023, 5, 1), Cessione, Cessionario),
            Some("5678")
        );
        assert_eq!(
            t.code_for(date(2024, 5, 1), Sconto, Beneficiario),
            Some("1234")
        );
    }

    #[test]
    fn rejects_overlapping_period_for_same_origin() {
        let rows = r#"
{ from = 2022-01-01, to = 2022-12-31, origin = "cessione", holder = "any", code = "1234" },
{ from = 2022-01-01, origin = "sconto", holder = "any", code = "2345" },
{ from = 2022-12-31, origin = "cessione", holder = "any", code = "5678" },"#;
        let e = err(&one_type("superbonus", rows, ""));
        assert_eq!(e.code(), "catalogue_overlapping_period");
        assert_eq!(
            e.to_string(),
            "catalogo: tipo 'superbonus', riga codici 3: il periodo si sovrappone alla riga 1 (origine cessione, titolare qualsiasi)"
        );
    }

    #[test]
    fn rejects_overlapping_period_when_any_meets_a_specific_value() {
        let origin_any = r#"
{ from = 2022-01-01, origin = "any", holder = "any", code = "1234" },
{ from = 2023-01-01, origin = "sconto", holder = "any", code = "5678" },"#;
        let holder_any = r#"
{ from = 2022-01-01, origin = "any", holder = "cessionario", code = "1234" },
{ from = 2021-01-01, to = 2022-01-01, origin = "any", holder = "any", code = "5678" },"#;
        for rows in [origin_any, holder_any] {
            let e = err(&one_type("prova", rows, ""));
            assert_eq!(e.code(), "catalogue_overlapping_period", "{e}");
            assert!(e.to_string().contains("riga codici 2"), "{e}");
        }
    }

    #[test]
    fn allows_a_gap_between_periods() {
        let rows = r#"
{ from = 2021-01-01, to = 2021-06-30, origin = "any", holder = "any", code = "1234" },
{ from = 2022-01-01, origin = "any", holder = "any", code = "5678" },"#;
        let cat = Catalogue::from_toml_str(&one_type("prova", rows, "")).unwrap();
        assert_eq!(
            ty(&cat, "prova").code_for(date(2021, 9, 1), Cessione, Cessionario),
            None
        );
    }

    #[test]
    fn rejects_to_before_from() {
        let rows = r#"{ from = 2022-01-01, to = 2021-12-31, origin = "any", holder = "any", code = "1234" },"#;
        let e = err(&one_type("prova", rows, ""));
        assert_eq!(e.code(), "catalogue_bad_row");
        assert_eq!(
            e.to_string(),
            "catalogo: tipo 'prova', riga codici 1: la data 'to' precede la data 'from'"
        );
    }

    #[test]
    fn rejects_datetime_where_a_date_is_expected() {
        let rows =
            r#"{ from = 2022-01-01T10:00:00, origin = "any", holder = "any", code = "1234" },"#;
        let e = err(&one_type("prova", rows, ""));
        assert_eq!(e.code(), "catalogue_bad_row");
        assert!(e.to_string().contains("riga codici 1: data"), "{e}");
    }

    #[test]
    fn rejects_malformed_code() {
        let rows = r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "77O1x" },"#;
        let e = err(&one_type("prova", rows, ""));
        assert_eq!(e.code(), "catalogue_bad_row");
        assert!(
            e.to_string()
                .contains("riga codici 1: codice tributo '77O1x'"),
            "{e}"
        );
    }

    #[test]
    fn rejects_overlapping_rate_count_ranges() {
        let text = one_type(
            "prova",
            r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "1234" },"#,
            "",
        )
        .replace(
            "rate_counts = [ { from_expense_year = 2020, count = 5 } ]",
            "rate_counts = [ { from_expense_year = 2020, to_expense_year = 2021, count = 5 }, { from_expense_year = 2021, count = 4 } ]",
        );
        let e = err(&text);
        assert_eq!(e.code(), "catalogue_overlapping_period");
        assert_eq!(
            e.to_string(),
            "catalogo: tipo 'prova', riga rate 2: il periodo si sovrappone alla riga 1 (anni di spesa dal 2021)"
        );
    }

    #[test]
    fn rejects_rate_count_zero_or_above_ten() {
        for count in [0, 11] {
            let text = one_type(
                "prova",
                r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "1234" },"#,
                "",
            )
            .replace("count = 5", &format!("count = {count}"));
            let e = err(&text);
            assert_eq!(e.code(), "catalogue_bad_row");
            assert_eq!(
                e.to_string(),
                format!(
                    "catalogo: tipo 'prova', riga rate 1: numero di rate {count} non ammesso (da 1 a 10)"
                )
            );
        }
    }

    #[test]
    fn rejects_split_code_without_eligibility_rows() {
        let row = r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "1234" },"#;
        let e = err(&one_type("prova", row, "split_code = \"7771\""));
        assert_eq!(e.code(), "catalogue_bad_row");
        assert_eq!(
            e.to_string(),
            "catalogo: tipo 'prova', codice ripartizione: split_code senza righe split_eligibility"
        );
    }

    #[test]
    fn rejects_eligibility_rows_without_split_code() {
        let row = r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "1234" },"#;
        let extra = "[[types.split_eligibility]]\ncommunicated_until = 2023-03-31\ncodes = [\"1234\"]\nfrom_rata_year = 2023\n";
        let e = err(&one_type("prova", row, extra));
        assert_eq!(e.code(), "catalogue_bad_row");
        assert!(
            e.to_string().contains("tipo 'prova', riga ripartizione 1"),
            "{e}"
        );
    }

    #[test]
    fn rejects_eligibility_row_naming_a_foreign_code() {
        let row = r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "1234" },"#;
        let extra = "split_code = \"7771\"\n[[types.split_eligibility]]\ncommunicated_until = 2023-03-31\ncodes = [\"9999\"]\nfrom_rata_year = 2023\n";
        let e = err(&one_type("prova", row, extra));
        assert_eq!(
            e.to_string(),
            "catalogo: tipo 'prova', riga ripartizione 1: il codice 9999 non è tra i codici del tipo"
        );
    }

    #[test]
    fn rejects_unknown_enum_value_naming_the_type_and_line() {
        let row = r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "1234" },"#;
        let good = one_type("primo", row, "");
        let bad = one_type("secondo", &row.replace("1234", "5678"), "")
            .replace("family = \"art121\"", "family = \"art999\"");
        let text = good + &bad;
        let e = err(&text);
        assert_eq!(e.code(), "catalogue_parse");
        let line = text.lines().position(|l| l.contains("art999")).unwrap() + 1;
        match &e {
            CatalogueError::Parse { key, line: at, .. } => {
                assert_eq!(key.as_deref(), Some("secondo"));
                assert_eq!(*at, Some(line));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            e.to_string().starts_with(&format!(
                "catalogo: tipo 'secondo' (riga {line} del file): "
            )),
            "{e}"
        );
    }

    #[test]
    fn rejects_unknown_origin_in_a_code_row() {
        let row = r#"{ from = 2022-01-01, origin = "regalo", holder = "any", code = "1234" },"#;
        let e = err(&one_type("prova", row, ""));
        assert_eq!(e.code(), "catalogue_parse");
        assert!(
            e.to_string().starts_with("catalogo: tipo 'prova' (riga "),
            "{e}"
        );
    }

    #[test]
    fn rejects_unknown_field_naming_the_type() {
        let row = r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "1234" },"#;
        let e = err(&one_type("prova", row, "notes = \"refuso\""));
        assert_eq!(e.code(), "catalogue_parse");
        assert!(e.to_string().contains("tipo 'prova'"), "{e}");
        assert!(e.to_string().contains("notes"), "{e}");
    }

    #[test]
    fn rejects_syntax_error_naming_the_line() {
        let e = err("# commento\n[[types]]\nkey = \"prova\nname = \"x\"\n");
        assert_eq!(e.code(), "catalogue_parse");
        assert!(
            e.to_string().starts_with("catalogo: riga 3 del file: "),
            "{e}"
        );
    }

    #[test]
    fn supports_the_once_regime() {
        let row = r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "1234" },"#;
        let text = one_type("prova", row, "")
            .replace("cession_regime = \"art121\"", "cession_regime = \"once\"");
        let cat = Catalogue::from_toml_str(&text).unwrap();
        assert_eq!(ty(&cat, "prova").cession_regime, CessionRegime::Once);
    }

    #[test]
    fn rejects_key_that_is_not_snake_case() {
        let row = r#"{ from = 2022-01-01, origin = "any", holder = "any", code = "1234" },"#;
        let e = err(&one_type("Super-Bonus", row, ""));
        assert_eq!(e.code(), "catalogue_bad_row");
        assert!(
            e.to_string().contains("tipo 'Super-Bonus', dati del tipo"),
            "{e}"
        );
    }
}
