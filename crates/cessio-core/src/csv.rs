//! CSV in and out: the "Lista movimenti" export (SPEC F4) and the bulk option
//! communication import (SPEC F8).
//!
//! Written by hand because both directions are small and their rules are ours, not a
//! library's defaults: what counts as a formula, which separators we accept, which line a
//! mistake is reported on.
//!
//! # Export
//!
//! [`CsvWriter`] streams rows to any [`std::io::Write`]: `;` separator, UTF-8 with a BOM
//! (without it Excel reads the file as Windows-1252 and mangles `€` and accented names),
//! CRLF line ends (RFC 4180), amounts as `1234,56`, dates as `gg/mm/aaaa`. The writer
//! holds one row at a time, so an export of any length costs the memory of its longest
//! row. This module never opens a file or a socket: the caller chooses the sink, which
//! keeps `cessio-core` free of I/O.
//!
//! Text cells pass through [`escape_cell`], which makes sure no spreadsheet can read a
//! cell as a formula (CSV injection): user-supplied text such as a company name
//! `=HYPERLINK(...)` must reach the screen as text.
//!
//! # Import: the option communication file
//!
//! This is the format accepted by `cessio import` and by the upload page:
//!
//! - UTF-8, with or without BOM. A file with bytes that are not UTF-8, or with NUL bytes
//!   (the sign of a UTF-16 "Unicode text" export), is refused as a whole.
//! - A header row is required. Its column names may come in any order, in any case, with
//!   surrounding spaces:
//!
//!   | column               | content                                               |
//!   |----------------------|-------------------------------------------------------|
//!   | `cf_beneficiario`    | codice fiscale or partita IVA of the beneficiary      |
//!   | `tipo`               | catalogue key of the credit type, e.g. `superbonus`   |
//!   | `anno_spesa`         | expense year, 4 digits                                |
//!   | `origine`            | `cessione` or `sconto`                                |
//!   | `cf_cessionario`     | fornitore (sconto) or first cessionario (cessione)    |
//!   | `importo`            | total amount, e.g. `12.345,67` or `12345.67`          |
//!   | `data_comunicazione` | `gg/mm/aaaa` or `aaaa-mm-gg`                          |
//!   | `riferimento`        | optional: the sender's own reference, echoed back     |
//!   | `eccezione`          | optional: the code of the DL 11/2023 exception (R-OPT-STOP), e.g. `SB_CILAS_NON_COND` |
//!   | `no_tax_area`        | optional: `si` if the beneficiary declared it (R-ECO-2018) |
//!   | `data_cilas`, `data_delibera`, `data_titolo`, `data_inizio_lavori`, `data_accordo`, `data_preliminare`, `data_piano`, `data_domanda_contributo`, `data_fattura` | optional: the dates the exception needs (`gg/mm/aaaa`) |
//!   | `acconto_versato`, `dichiarazione_congiunta` | optional: `si` / `no` |
//!   | `requisito_barriere` | optional: `condominio` or `persona_fisica` (barriere 75%, expenses from 2024) |
//!
//!   The facts are those of `opt_stop::Fact` (the same names as the page's fields); a fact
//!   without a code in `eccezione` is refused, as free text in `eccezione` is: whether the
//!   code exists and its facts hold is decided with the communication (R-OPT-STOP).
//!
//! - Separator `;`; if the header line contains no `;` but does contain `,`, the whole file
//!   is read with `,` (what a spreadsheet in an English locale saves).
//! - Fields may be quoted per RFC 4180 (`"..."`, inner quotes doubled, line breaks
//!   allowed inside). Spaces around a field are ignored. Line ends may be LF, CRLF or CR.
//! - Blank lines, and lines made only of separators (what a spreadsheet writes for a
//!   formatted but empty row), are skipped. Trailing header columns with no name, and the
//!   matching empty fields, are tolerated for the same reason.
//! - At most [`MAX_IMPORT_ROWS`] data rows and [`MAX_IMPORT_BYTES`] bytes.
//!
//! Problems with the file itself are a [`FileError`] and nothing is imported. Problems
//! with a row are [`RowError`]s, each naming the physical line (the header is line 1), the
//! column and a stable code; a row with any error is left out and every other row is
//! returned, so the sender fixes the bad rows and resends only those.
//!
//! Business rules that need more than one row or the ledger (does the type cover that
//! expense year, is the communication date acceptable today, duplicates) are the caller's:
//! this module only turns text into typed values.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;

use chrono::{Datelike, NaiveDate};

use crate::catalogue::{Catalogue, Origin};
use crate::cf::CodiceFiscale;
use crate::money::Cents;
use crate::opt_stop::{BarriereSubject, DeclaredException, ExceptionCode, Fact};
use crate::time::RefYear;

/// Byte order mark written at the start of every export.
pub const UTF8_BOM: &str = "\u{feff}";

/// Most data rows an import file may carry; a larger file is refused, not truncated.
///
/// Why this value: it is well above the largest bulk submission an intermediary sends in
/// one go, and small enough that the report (one entry per row) stays a few megabytes.
pub const MAX_IMPORT_ROWS: usize = 100_000;

/// Largest import file, in bytes. 100,000 rows of about 120 bytes are 12 MB; the limit
/// leaves room for long references while bounding what one upload may make us read.
pub const MAX_IMPORT_BYTES: usize = 32 * 1024 * 1024;

/// Longest field, in characters, after trimming. Every real value is far shorter (a
/// codice fiscale is 16); anything longer is a misaligned or pasted-over cell.
pub const MAX_FIELD_CHARS: usize = 200;

/// What replaces a control character in an exported cell (see [`escape_cell`]).
const REPLACEMENT: char = '\u{fffd}';

// ---------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------

/// Streams a `;`-separated, BOM-prefixed, CRLF-terminated CSV to `W`.
///
/// Cells are appended with [`text`](CsvWriter::text), [`amount`](CsvWriter::amount) and
/// [`date`](CsvWriter::date) into a reused row buffer; [`end_row`](CsvWriter::end_row)
/// writes the row with one `write_all`. Wrap a file or socket in a
/// [`std::io::BufWriter`] so that rows are not one system call each.
#[derive(Debug)]
pub struct CsvWriter<W> {
    out: W,
    /// The row being built. Reused, so a long export allocates only for its longest row.
    row: String,
    cells: usize,
}

impl<W: io::Write> CsvWriter<W> {
    /// Writes the BOM, so that it is present exactly once, at the start.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(UTF8_BOM.as_bytes())?;
        Ok(CsvWriter {
            out,
            row: String::with_capacity(256),
            cells: 0,
        })
    }

    /// Continues a file whose start (the BOM, the header) another writer wrote: a file
    /// streamed in pieces writes each piece with a writer of its own.
    pub fn continuing(out: W) -> Self {
        CsvWriter {
            out,
            row: String::with_capacity(256),
            cells: 0,
        }
    }

    /// Writes a row of column names, escaped like any text cell.
    pub fn header(&mut self, names: &[&str]) -> io::Result<()> {
        for name in names {
            self.text(name);
        }
        self.end_row()
    }

    /// Appends a text cell, made formula-safe and quoted by the rule of [`escape_cell`].
    pub fn text(&mut self, value: &str) -> &mut Self {
        self.separate();
        push_escaped(&mut self.row, value);
        self
    }

    /// Appends an amount as `1234,56` (`-12,50` when negative): comma decimals, no
    /// thousands separator, so that an Italian spreadsheet reads a number.
    ///
    /// Exempt from the formula guard by construction: the cell is generated here from an
    /// integer, only digits, `,` and a leading `-`, and never carries user text. A `-`
    /// followed by digits is a negative number to a spreadsheet, not a formula.
    pub fn amount(&mut self, value: Cents) -> &mut Self {
        self.separate();
        let cents = value.get();
        let magnitude = cents.unsigned_abs();
        let sign = if cents < 0 { "-" } else { "" };
        // Writing to a String cannot fail.
        let _ = write!(self.row, "{sign}{},{:02}", magnitude / 100, magnitude % 100);
        self
    }

    /// Appends a date as `gg/mm/aaaa`, or an empty cell for `None`.
    pub fn date(&mut self, value: Option<NaiveDate>) -> &mut Self {
        let Some(date) = value else {
            return self.text("");
        };
        self.separate();
        // The cell starts with the day's digits, so no year (even chrono's negative
        // ones) can make it look like a formula.
        let _ = write!(
            self.row,
            "{:02}/{:02}/{:04}",
            date.day(),
            date.month(),
            date.year()
        );
        self
    }

    /// Ends the row with CRLF and writes it. A row with no cells is written as an empty
    /// line (one empty field).
    pub fn end_row(&mut self) -> io::Result<()> {
        self.row.push_str("\r\n");
        let written = self.out.write_all(self.row.as_bytes());
        self.row.clear();
        self.cells = 0;
        written
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer. A row not yet ended with [`end_row`](CsvWriter::end_row) is
    /// discarded: half a row is never written.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn separate(&mut self) {
        if self.cells > 0 {
            self.row.push(';');
        }
        self.cells += 1;
    }
}

/// Makes `value` safe as one cell of a `;`-separated file.
///
/// 1. **Formula guard** (OWASP, CSV injection). If the cell starts with `=`, `+`, `-`, `@`,
///    TAB, CR or LF, or their full-width forms `＝ ＋ － ＠`, a single quote `'` is put in
///    front: spreadsheets then show the text instead of evaluating it. Leading spaces and
///    invisible characters (zero-width spaces, BOM) are looked through, because some
///    importers trim them and would then see the formula.
/// 2. **Control characters.** NUL and the other C0/C1 control characters except TAB, CR
///    and LF become U+FFFD `�`. NUL truncates the cell in C-based readers and the others
///    are invisible; a visible mark shows that something was there without letting it
///    through. TAB, CR and LF are kept: they are ordinary in addresses and notes.
/// 3. **Quoting** (RFC 4180). A cell containing `;`, `"`, CR or LF is enclosed in double
///    quotes, with inner quotes doubled.
///
/// Returns the input unchanged (borrowed) when none of the rules applies.
pub fn escape_cell(value: &str) -> Cow<'_, str> {
    if starts_formula(value) || value.chars().any(|c| needs_quotes(c) || is_replaced(c)) {
        let mut out = String::with_capacity(value.len() + 3);
        push_escaped(&mut out, value);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(value)
    }
}

fn push_escaped(out: &mut String, value: &str) {
    let quoted = value.chars().any(needs_quotes);
    if quoted {
        out.push('"');
    }
    if starts_formula(value) {
        out.push('\'');
    }
    if value.chars().any(|c| c == '"' || is_replaced(c)) {
        for c in value.chars() {
            match c {
                '"' => out.push_str("\"\""),
                c if is_replaced(c) => out.push(REPLACEMENT),
                c => out.push(c),
            }
        }
    } else {
        out.push_str(value);
    }
    if quoted {
        out.push('"');
    }
}

fn needs_quotes(c: char) -> bool {
    matches!(c, ';' | '"' | '\r' | '\n')
}

fn is_replaced(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\r' | '\n')
}

/// Characters that make a spreadsheet start a formula (or, for TAB/CR/LF, that some
/// importers strip before deciding).
fn is_formula_trigger(c: char) -> bool {
    matches!(
        c,
        '=' | '+' | '-' | '@' | '\t' | '\r' | '\n' | '＝' | '＋' | '－' | '＠'
    )
}

/// Leading characters a reader may drop before looking at the first "real" one.
fn is_invisible_lead(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2060}' | '\u{feff}')
}

fn starts_formula(value: &str) -> bool {
    value
        .chars()
        .find(|&c| is_formula_trigger(c) || !is_invisible_lead(c))
        .is_some_and(is_formula_trigger)
}

// ---------------------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------------------

/// One valid row of an option communication file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionRow {
    /// Physical line where the row starts (the header is line 1).
    pub line: usize,
    /// The sender's own reference (`riferimento`), if given and not empty.
    pub reference: Option<String>,
    /// The DL 11/2023 exception the communication declares (`eccezione` and the fact
    /// columns, R-OPT-STOP).
    pub exception: Option<DeclaredException>,
    /// The beneficiary declared the no-tax area (`no_tax_area`, R-ECO-2018).
    pub no_tax_area: bool,
    pub beneficiary: CodiceFiscale,
    /// A key present in the catalogue the file was parsed with.
    pub type_key: String,
    pub expense_year: u16,
    pub origin: Origin,
    /// The fornitore (sconto) or the first cessionario (cessione).
    pub holder: CodiceFiscale,
    pub total: Cents,
    pub communicated_on: NaiveDate,
}

/// Why a row was left out. A row may have several, one per faulty column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// Physical line where the row starts (the header is line 1).
    pub line: usize,
    /// The column at fault, as named in [`COLUMNS`]; `None` when the row as a whole is
    /// malformed (wrong number of fields, unbalanced quotes).
    pub column: Option<String>,
    /// Stable machine code: a `CfError`/`MoneyError` code, or one of `field_empty`,
    /// `field_count`, `field_quote`, `field_too_long`, `type_unknown`, `origin_invalid`,
    /// `year_invalid`, `date_invalid`.
    pub code: &'static str,
    /// Italian, for the person fixing the file: names line, column and value.
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The outcome of a file that could be read: the good rows and the reasons for the others.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Valid rows, in file order.
    pub rows: Vec<OptionRow>,
    /// Errors in file order; a line appears here iff its row is not in `rows`.
    pub errors: Vec<RowError>,
}

/// Why a whole file was refused. `Display` is Italian; [`FileError::code`] is stable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error(
        "Il file non è un testo UTF-8 valido (problema alla riga {line}). Salvarlo dal foglio \
         di calcolo come «CSV UTF-8 (delimitato da separatore)» e riprovare."
    )]
    NotUtf8 { line: usize },

    #[error(
        "Il file è vuoto: deve contenere almeno la riga di intestazione con le colonne {}.",
        REQUIRED_HEADER
    )]
    Empty,

    #[error(
        "Nell'intestazione mancano le colonne: {}. L'intestazione deve contenere {}.",
        missing.join(", "),
        REQUIRED_HEADER
    )]
    MissingColumns { missing: Vec<String> },

    #[error("{}", unknown_column_message(name))]
    UnknownColumn { name: String },

    #[error(
        "La colonna «{name}» compare più volte nell'intestazione: ogni colonna deve comparire \
         una sola volta."
    )]
    DuplicateColumn { name: String },

    #[error(
        "Il file contiene più di {max} righe di dati: dividerlo in più file di al massimo \
         {max} righe ciascuno."
    )]
    TooManyRows { max: usize },

    #[error(
        "Il file supera la dimensione massima di {} MB: dividerlo in più file.",
        max_bytes / (1024 * 1024)
    )]
    TooLarge { max_bytes: usize },
}

impl FileError {
    /// A stable machine code: part of the public interface, never reworded.
    pub fn code(&self) -> &'static str {
        match self {
            FileError::NotUtf8 { .. } => "file_not_utf8",
            FileError::Empty => "file_empty",
            FileError::MissingColumns { .. } => "file_missing_columns",
            FileError::UnknownColumn { .. } => "file_unknown_column",
            FileError::DuplicateColumn { .. } => "file_duplicate_column",
            FileError::TooManyRows { .. } => "file_too_many_rows",
            FileError::TooLarge { .. } => "file_too_large",
        }
    }
}

/// How many columns the import format knows.
const COLUMN_COUNT: usize = 22;

/// The column names of the import format, in the recommended order. The fact columns
/// carry the names of [`Fact::column`] (a test keeps them equal).
pub const COLUMNS: [&str; COLUMN_COUNT] = [
    "cf_beneficiario",
    "tipo",
    "anno_spesa",
    "origine",
    "cf_cessionario",
    "importo",
    "data_comunicazione",
    "riferimento",
    "eccezione",
    "no_tax_area",
    "data_cilas",
    "data_delibera",
    "data_titolo",
    "data_inizio_lavori",
    "data_accordo",
    "acconto_versato",
    "dichiarazione_congiunta",
    "data_preliminare",
    "data_piano",
    "data_domanda_contributo",
    "data_fattura",
    "requisito_barriere",
];

const REQUIRED_HEADER: &str =
    "cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione";

fn unknown_column_message(name: &str) -> String {
    if name.contains('\t') {
        format!(
            "L'intestazione sembra separata da tabulazioni: il file deve usare il punto e \
             virgola «;» come separatore, ad esempio {REQUIRED_HEADER}."
        )
    } else if name.is_empty() {
        format!(
            "L'intestazione contiene una colonna senza nome: togliere la colonna vuota. \
             Colonne ammesse: {}.",
            COLUMNS.join(", ")
        )
    } else {
        format!(
            "Colonna «{}» non riconosciuta. Colonne ammesse: {} (da riferimento in poi sono \
             facoltative).",
            shown(name),
            COLUMNS.join(", ")
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Beneficiary,
    Type,
    ExpenseYear,
    Origin,
    Holder,
    Amount,
    Date,
    Reference,
    Exception,
    NoTaxArea,
    // The facts of the exception (R-OPT-STOP), in `Fact::ALL` order.
    CilasFiled,
    Resolution,
    PermitApplied,
    WorksStarted,
    Agreement,
    DepositPaid,
    JointDeclaration,
    ContractRegistered,
    PlanApproved,
    AidApplied,
    Invoice,
    BarriereSubject,
}

impl Column {
    const ALL: [Column; COLUMN_COUNT] = [
        Column::Beneficiary,
        Column::Type,
        Column::ExpenseYear,
        Column::Origin,
        Column::Holder,
        Column::Amount,
        Column::Date,
        Column::Reference,
        Column::Exception,
        Column::NoTaxArea,
        Column::CilasFiled,
        Column::Resolution,
        Column::PermitApplied,
        Column::WorksStarted,
        Column::Agreement,
        Column::DepositPaid,
        Column::JointDeclaration,
        Column::ContractRegistered,
        Column::PlanApproved,
        Column::AidApplied,
        Column::Invoice,
        Column::BarriereSubject,
    ];

    /// The exception's fact this column carries.
    fn fact(self) -> Option<Fact> {
        Fact::from_column(self.name())
    }

    fn name(self) -> &'static str {
        COLUMNS[self as usize]
    }

    fn from_header(name: &str) -> Option<Column> {
        let lower = name.to_lowercase();
        Column::ALL.into_iter().find(|c| c.name() == lower)
    }

    fn required(self) -> bool {
        (self as usize) < Column::Reference as usize
    }

    /// What to write, for the message on an empty required field.
    fn example(self) -> &'static str {
        match self {
            Column::Beneficiary | Column::Holder => {
                "il codice fiscale o la partita IVA, ad esempio RSSMRA45C12F205C"
            }
            Column::Type => "il tipo di credito, ad esempio superbonus",
            Column::ExpenseYear => "l'anno della spesa in 4 cifre, ad esempio 2023",
            Column::Origin => "cessione oppure sconto",
            Column::Amount => "l'importo totale, ad esempio 12.345,67",
            Column::Date => "la data di comunicazione, ad esempio 05/03/2024",
            Column::Reference => "un riferimento",
            Column::Exception => "il codice dell'eccezione, ad esempio SB_CILAS_NON_COND",
            Column::NoTaxArea | Column::DepositPaid | Column::JointDeclaration => "si oppure no",
            Column::BarriereSubject => "condominio oppure persona_fisica",
            _ => "la data, ad esempio 10/01/2023",
        }
    }
}

/// Limits, separate from the constants so that tests can exercise them on small inputs.
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_rows: usize,
    max_bytes: usize,
}

const LIMITS: Limits = Limits {
    max_rows: MAX_IMPORT_ROWS,
    max_bytes: MAX_IMPORT_BYTES,
};

/// Parses an option communication file in the format described in the module doc.
///
/// `Err` when the file as a whole cannot be used; otherwise the report of every row.
pub fn parse_option_csv(input: &[u8], catalogue: &Catalogue) -> Result<ImportReport, FileError> {
    parse_with_limits(input, catalogue, LIMITS)
}

fn parse_with_limits(
    input: &[u8],
    catalogue: &Catalogue,
    limits: Limits,
) -> Result<ImportReport, FileError> {
    if input.len() > limits.max_bytes {
        return Err(FileError::TooLarge {
            max_bytes: limits.max_bytes,
        });
    }
    let body = input.strip_prefix(UTF8_BOM.as_bytes()).unwrap_or(input);
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => {
            return Err(FileError::NotUtf8 {
                line: line_at(body, e.valid_up_to()),
            });
        }
    };
    if let Some(nul) = body.iter().position(|&b| b == 0) {
        return Err(FileError::NotUtf8 {
            line: line_at(body, nul),
        });
    }

    let mut records = Records::new(text, detect_separator(text));
    let header = loop {
        match records.next() {
            None => return Err(FileError::Empty),
            Some(record) if record.is_blank() => {}
            Some(record) => break record,
        }
    };
    let columns = read_header(&header)?;

    let mut report = ImportReport::default();
    let mut count = 0usize;
    for record in records {
        if record.is_blank() {
            continue;
        }
        count += 1;
        if count > limits.max_rows {
            return Err(FileError::TooManyRows {
                max: limits.max_rows,
            });
        }
        match parse_row(&record, &columns, catalogue) {
            Ok(row) => report.rows.push(row),
            Err(errors) => report.errors.extend(errors),
        }
    }
    Ok(report)
}

/// The file's line (1-based) containing byte `offset`, counting LF, CRLF and lone CR as
/// one line break each, as [`Records`] does.
fn line_at(bytes: &[u8], offset: usize) -> usize {
    let mut line = 1;
    for (i, &b) in bytes.iter().enumerate().take(offset) {
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            line += 1;
        }
    }
    line
}

/// `;` unless the first non-blank line has a `,` and no `;`.
fn detect_separator(text: &str) -> u8 {
    let first = text
        .split(['\n', '\r'])
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    if !first.contains(';') && first.contains(',') {
        b','
    } else {
        b';'
    }
}

/// Field `i` of a row holds `columns[i]`; fields past the end are tolerated padding.
struct HeaderMap {
    columns: Vec<Column>,
}

fn read_header(header: &Record<'_>) -> Result<HeaderMap, FileError> {
    let mut names: Vec<&str> = header.fields.iter().map(|f| f.trim()).collect();
    while names.last().is_some_and(|n| n.is_empty()) {
        names.pop();
    }
    let mut columns = Vec::with_capacity(names.len());
    for name in names {
        let column = Column::from_header(name).ok_or_else(|| FileError::UnknownColumn {
            name: name.to_owned(),
        })?;
        if columns.contains(&column) {
            return Err(FileError::DuplicateColumn {
                name: column.name().to_owned(),
            });
        }
        columns.push(column);
    }
    let missing: Vec<String> = Column::ALL
        .into_iter()
        .filter(|c| c.required() && !columns.contains(c))
        .map(|c| c.name().to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(FileError::MissingColumns { missing });
    }
    Ok(HeaderMap { columns })
}

fn parse_row(
    record: &Record<'_>,
    header: &HeaderMap,
    catalogue: &Catalogue,
) -> Result<OptionRow, Vec<RowError>> {
    let line = record.line;
    if let Some(problem) = record.quote_problem {
        return Err(vec![RowError {
            line,
            column: None,
            code: "field_quote",
            message: format!("riga {line}: {}", problem.message()),
        }]);
    }
    let expected = header.columns.len();
    let found = record.fields.len();
    let extra_filled = record
        .fields
        .iter()
        .skip(expected)
        .any(|f| !f.trim().is_empty());
    if found < expected || extra_filled {
        return Err(vec![RowError {
            line,
            column: None,
            code: "field_count",
            message: format!(
                "riga {line}: la riga ha {found} campi, l'intestazione ne ha {expected}. \
                 Controllare i separatori «;» e le virgolette."
            ),
        }]);
    }

    let mut errors = Vec::new();
    let mut values: [Option<&str>; COLUMN_COUNT] = [None; COLUMN_COUNT];
    for (&column, field) in header.columns.iter().zip(&record.fields) {
        let value = field.trim();
        let length = value.chars().count();
        if length > MAX_FIELD_CHARS {
            errors.push(RowError {
                line,
                column: Some(column.name().to_owned()),
                code: "field_too_long",
                message: format!(
                    "riga {line}, colonna {} («{}»): il valore è lungo {length} caratteri, \
                     il massimo è {MAX_FIELD_CHARS}.",
                    column.name(),
                    shown(value)
                ),
            });
        } else if value.is_empty() && column.required() {
            errors.push(RowError {
                line,
                column: Some(column.name().to_owned()),
                code: "field_empty",
                message: format!(
                    "riga {line}, colonna {}: valore mancante; indicare {}.",
                    column.name(),
                    column.example()
                ),
            });
        } else {
            values[column as usize] = Some(value);
        }
    }

    let mut cell = ColumnParser {
        line,
        errors: &mut errors,
    };
    let beneficiary = cell.parse(&values, Column::Beneficiary, |v| {
        CodiceFiscale::parse(v).map_err(|e| (e.code(), e.to_string()))
    });
    let type_key = cell.parse(&values, Column::Type, |v| {
        catalogue
            .get(&v.to_lowercase())
            .map(|t| t.key.clone())
            .ok_or_else(|| {
                let keys: Vec<&str> = catalogue.types().iter().map(|t| t.key.as_str()).collect();
                (
                    "type_unknown",
                    format!(
                        "tipo di credito sconosciuto. Tipi ammessi: {}.",
                        keys.join(", ")
                    ),
                )
            })
    });
    let expense_year = cell.parse(&values, Column::ExpenseYear, parse_year);
    let origin = cell.parse(&values, Column::Origin, |v| {
        match v.to_lowercase().as_str() {
            "cessione" => Ok(Origin::Cessione),
            "sconto" => Ok(Origin::Sconto),
            _ => Err((
                "origin_invalid",
                "origine non valida: scrivere cessione (cessione del credito) oppure sconto \
             (sconto in fattura)."
                    .to_owned(),
            )),
        }
    });
    let holder = cell.parse(&values, Column::Holder, |v| {
        CodiceFiscale::parse(v).map_err(|e| (e.code(), e.to_string()))
    });
    let total = cell.parse(&values, Column::Amount, |v| {
        Cents::parse_positive_amount(v).map_err(|e| (e.code(), e.to_string()))
    });
    let communicated_on = cell.parse(&values, Column::Date, parse_date);
    let reference = values[Column::Reference as usize]
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let exception = parse_exception(&mut cell, &values);
    let no_tax_area = cell
        .parse(&values, Column::NoTaxArea, |v| {
            yes_no(v).ok_or_else(|| {
                (
                    "no_tax_area_invalid",
                    "scrivere si se il beneficiario ha dichiarato la no tax area, altrimenti \
                     no o lasciare vuoto."
                        .to_owned(),
                )
            })
        })
        .unwrap_or(false);

    match (
        beneficiary,
        type_key,
        expense_year,
        origin,
        holder,
        total,
        communicated_on,
    ) {
        (
            Some(beneficiary),
            Some(type_key),
            Some(expense_year),
            Some(origin),
            Some(holder),
            Some(total),
            Some(communicated_on),
        ) if errors.is_empty() => Ok(OptionRow {
            line,
            reference,
            exception,
            no_tax_area,
            beneficiary,
            type_key,
            expense_year,
            origin,
            holder,
            total,
            communicated_on,
        }),
        _ => Err(errors),
    }
}

/// `si`/`sì` or `no` (or empty: no).
fn yes_no(value: &str) -> Option<bool> {
    match value.to_lowercase().as_str() {
        "" | "no" => Some(false),
        "si" | "sì" => Some(true),
        _ => None,
    }
}

/// The exception of a row: the code in `eccezione` and the facts in their columns. Only the
/// form is checked here (a code, dates, si/no); whether the code exists and its facts hold
/// is R-OPT-STOP's, decided with the communication. `None` when the row declares nothing.
fn parse_exception(
    cell: &mut ColumnParser<'_>,
    values: &[Option<&str>; COLUMN_COUNT],
) -> Option<DeclaredException> {
    // `Some(None)`: no code; `None`: a malformed code, already reported.
    let code = match values[Column::Exception as usize] {
        None | Some("") => Some(None),
        Some(_) => cell
            .parse(values, Column::Exception, |v| {
                ExceptionCode::parse(v).map_err(|reason| {
                    (
                        "exception_invalid",
                        format!(
                            "{reason}. Scrivere il codice di un'eccezione del DL 11/2023 art. 2, \
                             ad esempio SB_CILAS_NON_COND: una descrizione non è un'eccezione."
                        ),
                    )
                })
            })
            .map(Some),
    };
    // The facts are read whatever the code, so that every faulty cell is reported at once;
    // the code is put in when it is known.
    let mut declared = DeclaredException::new(ExceptionCode(String::new()));
    let mut any_fact: Option<Column> = None;
    for column in Column::ALL {
        let Some(fact) = column.fact() else { continue };
        let filled = values[column as usize].is_some_and(|v| !v.is_empty());
        if !filled {
            continue;
        }
        any_fact = any_fact.or(Some(column));
        match fact {
            Fact::DepositPaid | Fact::JointDeclaration => {
                let flag = cell.parse(values, column, |v| {
                    yes_no(v).ok_or_else(|| {
                        (
                            "fact_invalid",
                            "scrivere si oppure no, o lasciare vuoto.".to_owned(),
                        )
                    })
                });
                if fact == Fact::DepositPaid {
                    declared.deposit_paid = flag.unwrap_or(false);
                } else {
                    declared.joint_declaration = flag.unwrap_or(false);
                }
            }
            Fact::BarriereSubject => {
                declared.barriere_subject = cell.parse(values, column, |v| {
                    BarriereSubject::parse(v).ok_or_else(|| {
                        (
                            "fact_invalid",
                            "scrivere condominio oppure persona_fisica, o lasciare vuoto."
                                .to_owned(),
                        )
                    })
                });
            }
            date => {
                let on = cell.parse(values, column, parse_date);
                declared.set_date(date, on);
            }
        }
    }
    match code {
        Some(Some(code)) => {
            declared.code = code;
            Some(declared)
        }
        // A malformed code was reported by `cell`.
        None => None,
        Some(None) => {
            if let Some(column) = any_fact {
                cell.errors.push(RowError {
                    line: cell.line,
                    column: Some(Column::Exception.name().to_owned()),
                    code: "exception_missing",
                    message: format!(
                        "riga {}, colonna {}: la colonna {} indica un dato dell'eccezione, ma \
                         manca il codice dell'eccezione; indicare {}.",
                        cell.line,
                        Column::Exception.name(),
                        column.name(),
                        Column::Exception.example()
                    ),
                });
            }
            None
        }
    }
}

/// Collects the errors of one row while its columns are parsed.
struct ColumnParser<'a> {
    line: usize,
    errors: &'a mut Vec<RowError>,
}

impl ColumnParser<'_> {
    /// Parses the value of `column` if it got past the length and emptiness checks;
    /// `None` (with the error recorded) otherwise.
    fn parse<T>(
        &mut self,
        values: &[Option<&str>; COLUMN_COUNT],
        column: Column,
        parse: impl FnOnce(&str) -> Result<T, (&'static str, String)>,
    ) -> Option<T> {
        let value = values[column as usize]?;
        match parse(value) {
            Ok(parsed) => Some(parsed),
            Err((code, detail)) => {
                self.errors.push(RowError {
                    line: self.line,
                    column: Some(column.name().to_owned()),
                    code,
                    message: format!(
                        "riga {}, colonna {} («{}»): {detail}",
                        self.line,
                        column.name(),
                        shown(value)
                    ),
                });
                None
            }
        }
    }
}

fn parse_year(value: &str) -> Result<u16, (&'static str, String)> {
    let four_digits = value.len() == 4 && value.bytes().all(|b| b.is_ascii_digit());
    let year = if four_digits {
        RefYear::parse(value).ok()
    } else {
        None
    };
    year.map(RefYear::get).ok_or_else(|| {
        (
            "year_invalid",
            format!(
                "anno di spesa non valido: indicare l'anno in 4 cifre, tra {} e {}, ad \
                 esempio 2023.",
                RefYear::FIRST_ACCEPTED,
                RefYear::LAST_ACCEPTED
            ),
        )
    })
}

fn parse_date(value: &str) -> Result<NaiveDate, (&'static str, String)> {
    let format_error = || {
        (
            "date_invalid",
            "data non valida: scrivere la data come gg/mm/aaaa (ad esempio 05/03/2024) oppure \
             aaaa-mm-gg (2024-03-05)."
                .to_owned(),
        )
    };
    let number = |s: &str, min: usize, max: usize| -> Option<u32> {
        if (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let parts: Vec<&str> = if value.contains('/') {
        value.split('/').collect()
    } else {
        value.split('-').collect()
    };
    let [a, b, c] = parts[..] else {
        return Err(format_error());
    };
    let (day, month, year) = if value.contains('/') {
        (number(a, 1, 2), number(b, 1, 2), number(c, 4, 4))
    } else {
        (number(c, 2, 2), number(b, 2, 2), number(a, 4, 4))
    };
    let (Some(day), Some(month), Some(year)) = (day, month, year) else {
        return Err(format_error());
    };
    let first = u32::from(RefYear::FIRST_ACCEPTED.get());
    let last = u32::from(RefYear::LAST_ACCEPTED.get());
    if !(first..=last).contains(&year) {
        return Err((
            "date_invalid",
            format!(
                "anno {year} fuori intervallo: la data deve cadere tra il {first} e il {last}."
            ),
        ));
    }
    // `year` has four digits, so the conversion cannot fail.
    let date = i32::try_from(year)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, month, day));
    date.ok_or_else(|| {
        (
            "date_invalid",
            format!("la data {day:02}/{month:02}/{year} non esiste nel calendario."),
        )
    })
}

/// A value as quoted in a message: control characters made visible, long values cut, so
/// that a message stays one readable line whatever the file contained.
fn shown(value: &str) -> String {
    const MAX: usize = 60;
    let mut out: String = value
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { REPLACEMENT } else { c })
        .collect();
    if value.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

// ---------------------------------------------------------------------------------------
// RFC 4180 reader
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QuoteProblem {
    /// The closing quote never came: the field ran to the end of the file.
    Unterminated,
    /// Something other than a separator or a line end followed a closing quote.
    AfterClosing,
}

impl QuoteProblem {
    fn message(self) -> &'static str {
        match self {
            QuoteProblem::Unterminated => {
                "virgolette aperte e mai chiuse: il resto del file è stato letto come un unico \
                 campo. Chiudere le virgolette, o raddoppiarle (\"\") se fanno parte del testo."
            }
            QuoteProblem::AfterClosing => {
                "testo dopo le virgolette di chiusura di un campo. Racchiudere tutto il campo \
                 tra virgolette e raddoppiare quelle interne (\"\")."
            }
        }
    }
}

/// One logical record: the fields of a row, which may span several physical lines.
#[derive(Debug)]
struct Record<'a> {
    /// Physical line where the record starts.
    line: usize,
    fields: Vec<Cow<'a, str>>,
    quote_problem: Option<QuoteProblem>,
}

impl Record<'_> {
    fn is_blank(&self) -> bool {
        self.quote_problem.is_none() && self.fields.iter().all(|f| f.trim().is_empty())
    }
}

/// Splits text into records. Separators, quotes and line ends are ASCII, so byte offsets
/// found by scanning bytes are always char boundaries and slicing is safe.
#[derive(Debug)]
struct Records<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    separator: u8,
}

impl<'a> Records<'a> {
    fn new(text: &'a str, separator: u8) -> Self {
        Records {
            text,
            pos: 0,
            line: 1,
            separator,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// Consumes one line end at `pos` if there is one, counting it.
    fn line_end(&mut self) -> bool {
        match self.peek() {
            Some(b'\n') => self.pos += 1,
            Some(b'\r') => {
                self.pos += 1;
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
            }
            _ => return false,
        }
        self.line += 1;
        true
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn at_field_end(&self) -> bool {
        match self.peek() {
            None | Some(b'\n' | b'\r') => true,
            Some(b) => b == self.separator,
        }
    }

    /// Reads a quoted field; `pos` is just after the opening quote.
    fn quoted(&mut self) -> (Cow<'a, str>, Option<QuoteProblem>) {
        let bytes = self.text.as_bytes();
        let mut value = String::new();
        let mut segment = self.pos;
        loop {
            match bytes.get(self.pos) {
                None => {
                    value.push_str(&self.text[segment..]);
                    return (Cow::Owned(value), Some(QuoteProblem::Unterminated));
                }
                Some(b'"') if bytes.get(self.pos + 1) == Some(&b'"') => {
                    // Keep one of the two quotes.
                    value.push_str(&self.text[segment..=self.pos]);
                    self.pos += 2;
                    segment = self.pos;
                }
                Some(b'"') => {
                    value.push_str(&self.text[segment..self.pos]);
                    self.pos += 1;
                    break;
                }
                Some(b'\n') => {
                    self.line += 1;
                    self.pos += 1;
                }
                Some(b'\r') => {
                    if bytes.get(self.pos + 1) != Some(&b'\n') {
                        self.line += 1;
                    }
                    self.pos += 1;
                }
                Some(_) => self.pos += 1,
            }
        }
        self.skip_blanks();
        if self.at_field_end() {
            return (Cow::Owned(value), None);
        }
        // Skip the stray text so the next field starts at the right place.
        while !self.at_field_end() {
            self.pos += 1;
        }
        (Cow::Owned(value), Some(QuoteProblem::AfterClosing))
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.pos >= self.text.len() {
            return None;
        }
        let mut record = Record {
            line: self.line,
            fields: Vec::with_capacity(8),
            quote_problem: None,
        };
        loop {
            let start = self.pos;
            self.skip_blanks();
            let field = if self.peek() == Some(b'"') {
                self.pos += 1;
                let (value, problem) = self.quoted();
                record.quote_problem = record.quote_problem.or(problem);
                value
            } else {
                self.pos = start;
                while !self.at_field_end() {
                    self.pos += 1;
                }
                Cow::Borrowed(&self.text[start..self.pos])
            };
            record.fields.push(field);
            match self.peek() {
                Some(b) if b == self.separator => self.pos += 1,
                _ => {
                    self.line_end();
                    return Some(record);
                }
            }
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use proptest::prelude::*;

    use super::*;

    // ----- export -------------------------------------------------------------------

    /// A minimal RFC 4180 reader with `;`, independent of the import code, to check that
    /// what the writer produces reads back as intended.
    fn read_rfc4180(text: &str) -> Vec<Vec<String>> {
        let mut records = Vec::new();
        let mut record = Vec::new();
        let mut field = String::new();
        let mut chars = text.chars().peekable();
        let mut in_quotes = false;
        let mut field_started = false;
        while let Some(c) = chars.next() {
            if in_quotes {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        in_quotes = false;
                    }
                } else {
                    field.push(c);
                }
                continue;
            }
            match c {
                '"' if !field_started => {
                    in_quotes = true;
                    field_started = true;
                }
                ';' => {
                    record.push(std::mem::take(&mut field));
                    field_started = false;
                }
                '\r' => {
                    assert_eq!(chars.next(), Some('\n'), "bare CR outside quotes");
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                    field_started = false;
                }
                '\n' => panic!("bare LF outside quotes"),
                c => {
                    assert_ne!(c, '"', "quote inside an unquoted field");
                    field.push(c);
                    field_started = true;
                }
            }
        }
        assert!(!in_quotes, "unterminated quote");
        assert!(field.is_empty() && record.is_empty(), "last row not ended");
        records
    }

    proptest::proptest! {
        /// The csv crate, an independent reader, reads back every cell as written: quotes,
        /// separators and line breaks inside cells, and the BOM and CRLF of the file.
        #[test]
        fn f4_csv_writer_read_back_by_an_independent_reader(
            rows in proptest::collection::vec(
                proptest::collection::vec("[a-zà][a-zà ;\"\r\n,]{0,12}", 1..5),
                1..6,
            )
        ) {
            let width = rows.iter().map(Vec::len).max().unwrap_or(1);
            let rows: Vec<Vec<String>> = rows
                .into_iter()
                .map(|mut r| {
                    r.resize(width, "x".into());
                    r
                })
                .collect();
            let text = write_rows(|w| {
                for r in &rows {
                    for cell in r {
                        w.text(cell);
                    }
                    w.end_row().unwrap();
                }
            });
            let body = text.strip_prefix(UTF8_BOM).unwrap();
            let mut reader = ::csv::ReaderBuilder::new()
                .delimiter(b';')
                .has_headers(false)
                .from_reader(body.as_bytes());
            let read: Vec<Vec<String>> = reader
                .records()
                .map(|r| r.unwrap().iter().map(str::to_string).collect())
                .collect();
            proptest::prop_assert_eq!(read, rows);
        }
    }

    fn write_rows(build: impl FnOnce(&mut CsvWriter<Vec<u8>>)) -> String {
        let mut writer = CsvWriter::new(Vec::new()).unwrap();
        build(&mut writer);
        String::from_utf8(writer.into_inner()).unwrap()
    }

    fn starts_with_formula(cell: &str) -> bool {
        cell.chars()
            .find(|&c| !is_invisible_lead(c) || is_formula_trigger(c))
            .is_some_and(is_formula_trigger)
    }

    #[test]
    fn f4_csv_cells_never_start_a_formula() {
        let cases = [
            ("=1+1", "'=1+1"),
            ("+39 333", "'+39 333"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "\"'\rx\""),
            ("\nx", "\"'\nx\""),
            ("＝1", "'＝1"),
            ("＋1", "'＋1"),
            ("－1", "'－1"),
            ("＠x", "'＠x"),
            ("  =1+1", "'  =1+1"),
            ("\u{200b}=1", "'\u{200b}=1"),
            ("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""),
            ("=A1;B1", "\"'=A1;B1\""),
        ];
        for (input, expected) in cases {
            assert_eq!(escape_cell(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn f4_csv_harmless_cells_are_left_alone() {
        for input in [
            "",
            "Rossi Mario",
            "a=b",
            "1+1",
            "x-2",
            "mail@example.it",
            "'=1",
        ] {
            assert!(
                matches!(escape_cell(input), Cow::Borrowed(s) if s == input),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn f4_csv_quotes_separators_quotes_and_line_breaks() {
        assert_eq!(escape_cell("a;b"), "\"a;b\"");
        assert_eq!(escape_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(escape_cell("line1\nline2"), "\"line1\nline2\"");
        assert_eq!(escape_cell("line1\r\nline2"), "\"line1\r\nline2\"");
        // A comma is not our separator: no quoting needed.
        assert_eq!(escape_cell("Rossi, Mario"), "Rossi, Mario");
    }

    #[test]
    fn f4_csv_control_characters_become_replacement_marks() {
        assert_eq!(escape_cell("a\u{0}b"), "a\u{fffd}b");
        assert_eq!(escape_cell("\u{1b}[31m"), "\u{fffd}[31m");
        assert_eq!(escape_cell("x\u{7f}\u{85}"), "x\u{fffd}\u{fffd}");
        assert_eq!(escape_cell("a\tb"), "a\tb");
    }

    #[test]
    fn f4_csv_bom_once_at_start_and_crlf_line_ends() {
        let out = write_rows(|w| {
            w.header(&["Data", "Descrizione", "Importo"]).unwrap();
            w.date(NaiveDate::from_ymd_opt(2024, 3, 5))
                .text("Cessione a =Rossi")
                .amount(Cents::new(123_456));
            w.end_row().unwrap();
            w.date(None).text("=1+1").amount(Cents::new(-1_250));
            w.end_row().unwrap();
        });
        assert!(out.starts_with(UTF8_BOM));
        assert_eq!(out.matches(UTF8_BOM).count(), 1);
        let body = &out[UTF8_BOM.len()..];
        assert_eq!(
            body,
            "Data;Descrizione;Importo\r\n\
             05/03/2024;Cessione a =Rossi;1234,56\r\n\
             ;'=1+1;-12,50\r\n"
        );
        assert_eq!(body.matches('\n').count(), body.matches("\r\n").count());
    }

    #[test]
    fn f4_csv_amounts_have_two_comma_decimals_and_no_grouping() {
        let cases = [
            (0, "0,00"),
            (5, "0,05"),
            (123_456, "1234,56"),
            (-1_250, "-12,50"),
            (100_000_000_000, "1000000000,00"),
            (i64::MIN, "-92233720368547758,08"),
        ];
        for (cents, expected) in cases {
            let out = write_rows(|w| {
                w.amount(Cents::new(cents));
                w.end_row().unwrap();
            });
            assert_eq!(out, format!("{UTF8_BOM}{expected}\r\n"), "cents {cents}");
            let parsed = Cents::parse_amount(expected).unwrap();
            assert_eq!(parsed, Cents::new(cents));
        }
    }

    #[test]
    fn f4_csv_dates_are_italian() {
        let out = write_rows(|w| {
            w.date(NaiveDate::from_ymd_opt(2024, 3, 5))
                .date(NaiveDate::from_ymd_opt(2023, 12, 31))
                .date(None);
            w.end_row().unwrap();
        });
        assert_eq!(out, format!("{UTF8_BOM}05/03/2024;31/12/2023;\r\n"));
    }

    #[test]
    fn f4_csv_into_inner_drops_an_unfinished_row() {
        let mut writer = CsvWriter::new(Vec::new()).unwrap();
        writer.text("a");
        writer.end_row().unwrap();
        writer.text("half");
        let out = String::from_utf8(writer.into_inner()).unwrap();
        assert_eq!(out, format!("{UTF8_BOM}a\r\n"));
    }

    #[derive(Debug, Default)]
    struct Counting {
        bytes: usize,
        writes: usize,
    }

    impl io::Write for Counting {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.bytes += buf.len();
            self.writes += 1;
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn f4_csv_streams_fifty_thousand_rows_one_write_each() {
        const ROWS: usize = 50_000;
        let mut writer = CsvWriter::new(Counting::default()).unwrap();
        writer
            .header(&["Data", "Tipo", "Controparte", "Importo"])
            .unwrap();
        let date = NaiveDate::from_ymd_opt(2024, 3, 5);
        for i in 0..ROWS {
            writer
                .date(date)
                .text("cessione")
                .text("Rossi; Bianchi & C. \"srl\"")
                .amount(Cents::new(i as i64 * 101));
            writer.end_row().unwrap();
        }
        writer.flush().unwrap();
        let sink = writer.into_inner();
        // BOM + header + one write per row: nothing held back, nothing buffered whole.
        assert_eq!(sink.writes, ROWS + 2);
        assert!(sink.bytes > ROWS * 40);
    }

    fn check_round_trip(s: &str) {
        let out = write_rows(|w| {
            w.text(s).text("end");
            w.end_row().unwrap();
        });
        let body = out.strip_prefix(UTF8_BOM).unwrap();
        let records = read_rfc4180(body);
        assert_eq!(records.len(), 1, "{s:?} -> {body:?}");
        let sanitised: String = s
            .chars()
            .map(|c| if is_replaced(c) { REPLACEMENT } else { c })
            .collect();
        let expected = if starts_formula(s) {
            format!("'{sanitised}")
        } else {
            sanitised
        };
        assert_eq!(records[0], vec![expected.clone(), "end".to_owned()]);
        assert!(!starts_with_formula(&records[0][0]), "{expected:?}");
        let first = records[0][0].chars().next();
        let owasp = ['=', '+', '-', '@', '\t', '\r', '＝', '＋', '－', '＠'];
        assert!(!first.is_some_and(|c| owasp.contains(&c)), "{expected:?}");
        assert_eq!(
            escape_cell(s).into_owned(),
            body[..body.len() - 6].to_owned()
        );
    }

    proptest! {
        #[test]
        fn f4_csv_escaped_cells_read_back_and_never_start_a_formula(s in any::<String>()) {
            check_round_trip(&s);
        }

        #[test]
        fn f4_csv_escaped_tricky_cells_read_back(
            s in "[=+\\-@\t\r\n;\" ,'a1＝＋－＠\u{0}\u{200b}\u{feff}]{0,12}"
        ) {
            check_round_trip(&s);
        }
    }

    // ----- import -------------------------------------------------------------------

    const HEADER: &str =
        "cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione";
    const GOOD: &str = "RSSMRA45C12F205C;superbonus;2023;sconto;00743110157;12.345,67;05/03/2024";

    fn catalogue() -> Catalogue {
        Catalogue::builtin().unwrap()
    }

    fn parse(text: &str) -> Result<ImportReport, FileError> {
        parse_option_csv(text.as_bytes(), &catalogue())
    }

    fn one_error(text: &str) -> RowError {
        let report = parse(text).unwrap();
        assert!(report.rows.is_empty(), "{report:?}");
        assert_eq!(report.errors.len(), 1, "{report:?}");
        report.errors.into_iter().next().unwrap()
    }

    /// A file with the header and one row where `column` holds `value`.
    fn with_value(column: &str, value: &str) -> String {
        let index = COLUMNS.iter().position(|c| *c == column).unwrap();
        let mut fields: Vec<&str> = GOOD.split(';').collect();
        fields[index] = value;
        format!("{HEADER}\n{}\n", fields.join(";"))
    }

    #[test]
    fn f8_import_reads_a_valid_file_with_bom_crlf_and_quotes() {
        let text = format!(
            "{UTF8_BOM}riferimento;{HEADER}\r\n\
             PRAT-1;{GOOD}\r\n\
             \"PRAT-2; lotto \"\"B\"\"\";\"RSSMRA45C12F205C\";ecobonus;2022;cessione;\
             03189950961;\"1.000,00\";2024-01-31\r\n\
             ;00140869991;SUPERBONUS; 2021 ;Cessione;rssmra45c12f205c;12345.67;5/3/2024\r\n\
             \r\n\r\n"
        );
        let report = parse(&text).unwrap();
        assert_eq!(report.errors, vec![]);
        assert_eq!(report.rows.len(), 3);

        let first = &report.rows[0];
        assert_eq!(first.line, 2);
        assert_eq!(first.reference.as_deref(), Some("PRAT-1"));
        assert_eq!(first.beneficiary.as_str(), "RSSMRA45C12F205C");
        assert_eq!(first.type_key, "superbonus");
        assert_eq!(first.expense_year, 2023);
        assert_eq!(first.origin, Origin::Sconto);
        assert_eq!(first.holder.as_str(), "00743110157");
        assert_eq!(first.total, Cents::new(1_234_567));
        assert_eq!(
            first.communicated_on,
            NaiveDate::from_ymd_opt(2024, 3, 5).unwrap()
        );

        let second = &report.rows[1];
        assert_eq!(second.line, 3);
        assert_eq!(second.reference.as_deref(), Some("PRAT-2; lotto \"B\""));
        assert_eq!(second.type_key, "ecobonus");
        assert_eq!(second.origin, Origin::Cessione);
        assert_eq!(second.total, Cents::new(100_000));
        assert_eq!(
            second.communicated_on,
            NaiveDate::from_ymd_opt(2024, 1, 31).unwrap()
        );

        let third = &report.rows[2];
        assert_eq!(third.line, 4);
        assert_eq!(third.reference, None);
        assert_eq!(third.type_key, "superbonus");
        assert_eq!(third.expense_year, 2021);
        assert_eq!(third.holder.as_str(), "RSSMRA45C12F205C");
        assert_eq!(third.total, Cents::new(1_234_567));
    }

    #[test]
    fn f8_import_accepts_a_comma_separated_header() {
        let text = " CF_Beneficiario , Tipo,anno_spesa,origine,cf_cessionario,importo,data_comunicazione\n\
             RSSMRA45C12F205C,superbonus,2023,sconto,00743110157,\"12.345,67\",05/03/2024\n\
             RSSMRA45C12F205C,superbonus,2023,sconto,00743110157,12345.67,05/03/2024\n";
        let report = parse(text).unwrap();
        assert_eq!(report.errors, vec![]);
        assert_eq!(report.rows.len(), 2);
        assert!(report.rows.iter().all(|r| r.total == Cents::new(1_234_567)));
    }

    #[test]
    fn f8_import_tolerates_spreadsheet_padding() {
        let text = format!("{HEADER};;\n{GOOD};;\n;;;;;;;;\n{GOOD}\n");
        let report = parse(&text).unwrap();
        assert_eq!(report.errors, vec![]);
        assert_eq!(
            report.rows.iter().map(|r| r.line).collect::<Vec<_>>(),
            [2, 4]
        );
    }

    #[test]
    fn f8_import_row_errors_have_stable_codes() {
        let cases = [
            ("cf_beneficiario", "RSSMRA45C12F205X", "cf_check_character"),
            ("cf_cessionario", "123", "cf_length"),
            ("tipo", "bonus_mobili", "type_unknown"),
            ("anno_spesa", "23", "year_invalid"),
            ("anno_spesa", "1999", "year_invalid"),
            ("anno_spesa", "２０２３", "year_invalid"),
            ("origine", "regalo", "origin_invalid"),
            ("importo", "0", "amount_not_positive"),
            ("importo", "1.234", "amount_ambiguous"),
            ("importo", "12,345", "amount_too_many_decimals"),
            ("data_comunicazione", "5 marzo 2024", "date_invalid"),
            ("data_comunicazione", "31/02/2024", "date_invalid"),
            ("data_comunicazione", "05/03/0224", "date_invalid"),
            ("data_comunicazione", "2024-3-5", "date_invalid"),
            ("tipo", "", "field_empty"),
            ("importo", "  ", "field_empty"),
        ];
        for (column, value, code) in cases {
            let error = one_error(&with_value(column, value));
            assert_eq!(error.code, code, "{column} = {value:?}: {error:?}");
            assert_eq!(error.line, 2);
            assert_eq!(error.column.as_deref(), Some(column));
            assert!(
                error
                    .message
                    .starts_with(&format!("riga 2, colonna {column}")),
                "{}",
                error.message
            );
            if !value.trim().is_empty() {
                assert!(error.message.contains(value), "{}", error.message);
            }
        }
    }

    #[test]
    fn r_opt_stop_import_reads_the_exception_code_and_its_facts() {
        let text = format!(
            "{HEADER};eccezione;data_cilas;data_fattura;acconto_versato;requisito_barriere\n\
             {GOOD};sb_cilas_non_cond;10/01/2023;2024-03-29;si;condominio\n\
             {GOOD};;;;;\n"
        );
        let report = parse(&text).unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let declared = report.rows[0].exception.clone().unwrap();
        assert_eq!(declared.code.as_str(), "SB_CILAS_NON_COND");
        assert_eq!(
            declared.cilas_filed_on,
            NaiveDate::from_ymd_opt(2023, 1, 10)
        );
        assert_eq!(declared.invoice_on, NaiveDate::from_ymd_opt(2024, 3, 29));
        assert!(declared.deposit_paid);
        assert_eq!(declared.barriere_subject, Some(BarriereSubject::Condominio));
        assert_eq!(report.rows[1].exception, None);
    }

    #[test]
    fn r_opt_stop_import_refuses_free_text_and_facts_without_a_code() {
        let text = format!(
            "{HEADER};eccezione;data_cilas;acconto_versato\n\
             {GOOD};CILAS presentata entro il 16/02/2023;;\n\
             {GOOD};;10/01/2023;\n\
             {GOOD};SB_CILAS_NON_COND;16 febbraio;\n\
             {GOOD};ALTRI_EDIL_LIBERA_AVVIATI;;forse\n"
        );
        let report = parse(&text).unwrap();
        assert!(report.rows.is_empty(), "{:?}", report.rows);
        let found: Vec<(usize, Option<&str>, &str)> = report
            .errors
            .iter()
            .map(|e| (e.line, e.column.as_deref(), e.code))
            .collect();
        assert_eq!(
            found,
            [
                (2, Some("eccezione"), "exception_invalid"),
                (3, Some("eccezione"), "exception_missing"),
                (4, Some("data_cilas"), "date_invalid"),
                (5, Some("acconto_versato"), "fact_invalid"),
            ]
        );
        assert!(report.errors[0].message.contains("SB_CILAS_NON_COND"));
        assert!(report.errors[1].message.contains("data_cilas"));
    }

    #[test]
    fn r_opt_stop_import_fact_columns_are_the_facts_names() {
        for fact in Fact::ALL {
            let column = Column::ALL
                .into_iter()
                .find(|c| c.fact() == Some(fact))
                .unwrap();
            assert_eq!(column.name(), fact.column());
            assert!(!column.required());
        }
    }

    #[test]
    fn f8_import_unknown_type_lists_the_valid_keys() {
        let error = one_error(&with_value("tipo", "bonus_mobili"));
        for t in catalogue().types() {
            assert!(error.message.contains(&t.key), "{}", error.message);
        }
    }

    #[test]
    fn f8_import_field_count_and_quote_errors() {
        let short = one_error(&format!("{HEADER}\nRSSMRA45C12F205C;superbonus\n"));
        assert_eq!(
            (short.code, short.column, short.line),
            ("field_count", None, 2)
        );
        let long = one_error(&format!("{HEADER}\n{GOOD};extra\n"));
        assert_eq!(long.code, "field_count");
        assert!(long.message.contains("8 campi"), "{}", long.message);

        let after = one_error(&format!(
            "{HEADER}\n\"RSSMRA45C12F205C\"x;{}\n",
            &GOOD[17..]
        ));
        assert_eq!((after.code, after.line), ("field_quote", 2));
        let open = one_error(&format!(
            "{HEADER}\n\"RSSMRA45C12F205C;{}\n{GOOD}\n",
            &GOOD[17..]
        ));
        assert_eq!((open.code, open.line), ("field_quote", 2));
    }

    #[test]
    fn f8_import_field_too_long() {
        let long = "x".repeat(MAX_FIELD_CHARS + 1);
        let error = one_error(&format!("riferimento;{HEADER}\n{long};{GOOD}\n"));
        assert_eq!(error.code, "field_too_long");
        assert_eq!(error.column.as_deref(), Some("riferimento"));
        assert!(error.message.contains("201 caratteri"), "{}", error.message);
        let fits = "é".repeat(MAX_FIELD_CHARS);
        let report = parse(&format!("riferimento;{HEADER}\n{fits};{GOOD}\n")).unwrap();
        assert_eq!(report.rows.len(), 1);
    }

    #[test]
    fn f8_import_reports_each_bad_row_with_line_and_column() {
        let text = format!(
            "{HEADER}\r\n\
             {GOOD}\r\n\
             RSSMRA45C12F205C;superbonus;2023;sconto;00743110157;-5;05/03/2024\r\n\
             \r\n\
             \"RSSMRA45C12F205C\";\"super\nbonus\";2023;regalo;00743110157;1,00;05/03/2024\r\n\
             {GOOD}\r\n\
             RSSMRA45C12F205C;superbonus;2023;sconto;00743110157;1,00\r\n\
             {GOOD}\r\n"
        );
        let report = parse(&text).unwrap();
        assert_eq!(
            report.rows.iter().map(|r| r.line).collect::<Vec<_>>(),
            [2, 7, 9]
        );
        let found: Vec<(usize, Option<&str>, &str)> = report
            .errors
            .iter()
            .map(|e| (e.line, e.column.as_deref(), e.code))
            .collect();
        assert_eq!(
            found,
            [
                (3, Some("importo"), "amount_not_positive"),
                (5, Some("tipo"), "type_unknown"),
                (5, Some("origine"), "origin_invalid"),
                (8, None, "field_count"),
            ]
        );
        assert!(
            report.errors[0]
                .message
                .starts_with("riga 3, colonna importo («-5»): ")
        );
    }

    #[test]
    fn f8_import_file_errors() {
        let cat = catalogue();
        let mut not_utf8 = format!("{HEADER}\n{GOOD}\n").into_bytes();
        not_utf8.extend_from_slice(b"Rossi \xe0\n");
        let cases: [(Vec<u8>, FileError); 10] = [
            (b"".to_vec(), FileError::Empty),
            (b"\xef\xbb\xbf\r\n \r\n".to_vec(), FileError::Empty),
            (
                b"cf_beneficiario;tipo;anno_spesa;origine;importo;data_comunicazione\n".to_vec(),
                FileError::MissingColumns {
                    missing: vec!["cf_cessionario".to_owned()],
                },
            ),
            (
                format!("{HEADER};note\n").into_bytes(),
                FileError::UnknownColumn {
                    name: "note".to_owned(),
                },
            ),
            (
                format!("{HEADER};;riferimento\n").into_bytes(),
                FileError::UnknownColumn {
                    name: String::new(),
                },
            ),
            (
                HEADER.replace(';', "\t").into_bytes(),
                FileError::UnknownColumn {
                    name: HEADER.replace(';', "\t"),
                },
            ),
            (
                format!("{HEADER}; TIPO\n").into_bytes(),
                FileError::DuplicateColumn {
                    name: "tipo".to_owned(),
                },
            ),
            (not_utf8, FileError::NotUtf8 { line: 3 }),
            (
                b"\xff\xfec\x00f\x00".to_vec(),
                FileError::NotUtf8 { line: 1 },
            ),
            (
                format!("{HEADER}\r\r\nx\0y\n").into_bytes(),
                FileError::NotUtf8 { line: 3 },
            ),
        ];
        for (input, expected) in cases {
            let got = parse_option_csv(&input, &cat);
            assert_eq!(got, Err(expected), "{:?}", String::from_utf8_lossy(&input));
        }
        let codes: Vec<&str> = [
            FileError::NotUtf8 { line: 1 },
            FileError::Empty,
            FileError::MissingColumns { missing: vec![] },
            FileError::UnknownColumn { name: "x".into() },
            FileError::DuplicateColumn { name: "x".into() },
            FileError::TooManyRows { max: 1 },
            FileError::TooLarge { max_bytes: 1 },
        ]
        .iter()
        .map(FileError::code)
        .collect();
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
    }

    #[test]
    fn f8_import_file_error_messages_are_italian_and_actionable() {
        let missing = FileError::MissingColumns {
            missing: vec!["importo".into(), "tipo".into()],
        };
        assert_eq!(
            missing.to_string(),
            format!(
                "Nell'intestazione mancano le colonne: importo, tipo. L'intestazione deve \
                 contenere {HEADER}."
            )
        );
        let large = FileError::TooLarge {
            max_bytes: MAX_IMPORT_BYTES,
        };
        assert!(large.to_string().contains("32 MB"), "{large}");
        let unknown = FileError::UnknownColumn {
            name: "note".into(),
        };
        assert!(unknown.to_string().contains("«note»"), "{unknown}");
    }

    #[test]
    fn f8_import_size_and_row_limits() {
        let cat = catalogue();
        let too_large = vec![b'a'; MAX_IMPORT_BYTES + 1];
        assert_eq!(
            parse_option_csv(&too_large, &cat),
            Err(FileError::TooLarge {
                max_bytes: MAX_IMPORT_BYTES
            })
        );

        let mut text = format!("{HEADER}\n");
        for _ in 0..MAX_IMPORT_ROWS {
            text.push_str("x\n");
        }
        let at_limit = parse(&text).unwrap();
        assert_eq!(at_limit.errors.len(), MAX_IMPORT_ROWS);
        text.push_str("x\n");
        assert_eq!(
            parse(&text),
            Err(FileError::TooManyRows {
                max: MAX_IMPORT_ROWS
            })
        );

        let small = Limits {
            max_rows: 2,
            max_bytes: 1024,
        };
        let three = format!("{HEADER}\n{GOOD}\n\n{GOOD}\n{GOOD}\n");
        assert_eq!(
            parse_with_limits(three.as_bytes(), &cat, small),
            Err(FileError::TooManyRows { max: 2 })
        );
    }

    proptest! {
        #[test]
        fn f8_import_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let cat = catalogue();
            let _ = parse_option_csv(&bytes, &cat);
        }

        #[test]
        fn f8_import_random_bodies_report_sane_lines(
            body in "[;,\"\r\n a-z0-9./\\-é]{0,300}",
            with_bom in any::<bool>(),
        ) {
            let cat = catalogue();
            let text = format!("{}{HEADER}\n{body}", if with_bom { UTF8_BOM } else { "" });
            let report = parse_option_csv(text.as_bytes(), &cat).unwrap();
            let lines = 2 + body.matches('\n').count() + body.matches('\r').count();
            for line in report.errors.iter().map(|e| e.line).chain(report.rows.iter().map(|r| r.line)) {
                prop_assert!((2..=lines).contains(&line), "line {} of {}", line, lines);
            }
            let mut previous = 0;
            for error in &report.errors {
                prop_assert!(error.line >= previous);
                previous = error.line;
                let prefix = format!("riga {}", error.line);
                prop_assert!(error.message.starts_with(&prefix), "{}", error.message);
            }
        }
    }
}
