//! R-OPT-STOP: from 17/02/2023 no new option (sconto in fattura or cessione, art. 121 DL
//! 34/2020) may be communicated, except in the cases DL 11/2023 art. 2 lists. Each case is an
//! exception with a code, the credit types it covers and the facts the communication must
//! declare, with the dates those facts must precede; later laws (DL 212/2023, DL 39/2024)
//! changed the cases, so each exception has dated versions.
//!
//! The cases live in `catalogue/opt_stop.toml` and are decided here from values alone: the
//! communication (type, expense year, date, who registers it) and the exception it names
//! ([`DeclaredException`]: a code from the table plus typed facts). Free text is never an
//! exception: a code the table does not know is refused, and every fact is a date, a flag or
//! an enumerated value.
//!
//! Architecture invariant: an [`OptStopTable`] has always passed validation; the only ways in
//! are [`OptStopTable::from_toml_str`] and [`OptStopTable::builtin`]. This module does no I/O.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize};

use crate::catalogue::{Catalogue, Family, toml_date};
use crate::law::{Period, it_date};

/// The exceptions shipped with Cessio, embedded at build time.
pub const BUILTIN_TOML: &str = include_str!("../../../catalogue/opt_stop.toml");

/// Longest exception code accepted anywhere (API, CSV, form): codes are short identifiers,
/// and anything longer is refused before it is looked up, stored or echoed.
pub const MAX_CODE_CHARS: usize = 40;

/// Longest label in the table: it is one option of a select on a phone's screen.
const MAX_LABEL_CHARS: usize = 200;

// ---- what a communication declares -------------------------------------------------------

/// The code of an exception: 1 to [`MAX_CODE_CHARS`] characters among `A–Z`, `0–9` and `_`.
/// Whether the table knows it is decided by [`OptStopTable::check`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ExceptionCode(pub(crate) String);

impl ExceptionCode {
    /// Trims and upper-cases (a spreadsheet's `sb_cilas_non_cond` is the same code), then
    /// checks the length and the characters.
    pub fn parse(value: &str) -> Result<ExceptionCode, String> {
        let value = value.trim();
        let length = value.chars().count();
        if length == 0 {
            return Err("il codice dell'eccezione è vuoto".into());
        }
        if length > MAX_CODE_CHARS {
            return Err(format!(
                "il codice dell'eccezione è lungo {length} caratteri, il massimo è {MAX_CODE_CHARS}"
            ));
        }
        let upper = value.to_ascii_uppercase();
        if !upper
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(
                "il codice dell'eccezione contiene caratteri non ammessi (solo lettere, cifre e _)"
                    .into(),
            );
        }
        Ok(ExceptionCode(upper))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExceptionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ExceptionCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Bounded before it is kept: a 300 KB "code" fails here, not in a lookup.
        let raw = String::deserialize(d)?;
        ExceptionCode::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Who the beneficiary of a barriere 75% expense from 2024 is (DL 212/2023 art. 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BarriereSubject {
    /// A condominium, for the common parts of a mainly residential building.
    Condominio,
    /// A natural person owning the unit (or with a real right on it), main residence,
    /// reference income up to €15,000 or a disabled household member.
    PersonaFisica,
}

impl BarriereSubject {
    pub const ALL: [BarriereSubject; 2] =
        [BarriereSubject::Condominio, BarriereSubject::PersonaFisica];

    /// The value in the API, the CSV column and the form.
    pub fn key(self) -> &'static str {
        match self {
            BarriereSubject::Condominio => "condominio",
            BarriereSubject::PersonaFisica => "persona_fisica",
        }
    }

    pub fn parse(value: &str) -> Option<BarriereSubject> {
        let value = value.trim().to_lowercase();
        BarriereSubject::ALL.into_iter().find(|s| s.key() == value)
    }

    pub fn label(self) -> &'static str {
        match self {
            BarriereSubject::Condominio => {
                "condominio, per le parti comuni di un edificio residenziale"
            }
            BarriereSubject::PersonaFisica => {
                "persona fisica titolare, abitazione principale, reddito di riferimento fino a 15.000 euro o familiare disabile"
            }
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The exception as the API takes it: a code of the embedded table and the typed facts it
/// needs. The codes and their labels are read from the table, so the document cannot list
/// a code the service would refuse, nor miss one it accepts.
impl schemars::JsonSchema for DeclaredException {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OptStopException".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        use serde_json::json;
        let table = OptStopTable::builtin().ok();
        let exceptions = table.as_ref().map(|t| t.exceptions()).unwrap_or_default();
        let codes: Vec<&str> = exceptions.iter().map(|e| e.code.as_str()).collect();
        let listed: Vec<String> = exceptions
            .iter()
            .map(|e| {
                let facts: Vec<&str> = e.facts().iter().map(|f| f.api_name()).collect();
                if facts.is_empty() {
                    format!("{}: {} (nessun dato)", e.code, e.label)
                } else {
                    format!("{}: {} (dati: {})", e.code, e.label, facts.join(", "))
                }
            })
            .collect();
        let mut props = serde_json::Map::new();
        props.insert(
            "code".into(),
            json!({
                "type": "string", "maxLength": MAX_CODE_CHARS, "enum": codes,
                "description": format!("Codice dell'eccezione del DL 11/2023 art. 2 (R-OPT-STOP); il testo libero non è un'eccezione. {}", listed.join("; "))
            }),
        );
        for fact in Fact::ALL {
            let schema = match fact {
                Fact::DepositPaid | Fact::JointDeclaration => {
                    json!({ "type": "boolean", "default": false, "description": fact.label() })
                }
                Fact::BarriereSubject => json!({
                    "type": ["string", "null"],
                    "enum": BarriereSubject::ALL.iter().map(|s| Some(s.key())).chain([None]).collect::<Vec<_>>(),
                    "description": fact.label()
                }),
                _ => {
                    json!({ "type": ["string", "null"], "format": "date", "description": fact.label() })
                }
            };
            props.insert(fact.api_name().into(), schema);
        }
        let schema = json!({
            "type": "object", "properties": props, "required": ["code"], "additionalProperties": false,
            "description": "Eccezione al blocco delle opzioni (R-OPT-STOP): il codice e i dati che richiede, confrontati con le date dell'eccezione e con la data della comunicazione. I dati che l'eccezione non richiede sono ignorati; nessuna data può essere successiva alla comunicazione."
        });
        schemars::Schema::try_from(schema).unwrap_or_default()
    }
}

/// The exception a communication names: its code and the facts it declares. Facts the
/// exception does not need are ignored, so a form may send every field it has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredException {
    pub code: ExceptionCode,
    /// CILA or CILAS (art. 119 c.13-ter) filed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cilas_filed_on: Option<NaiveDate>,
    /// Condominium resolution approving the works, adopted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_on: Option<NaiveDate>,
    /// Application for the building title (permesso di costruire, SCIA...) filed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit_applied_on: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub works_started_on: Option<NaiveDate>,
    /// Binding supply agreement signed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement_on: Option<NaiveDate>,
    /// A deposit on the agreement's price was paid.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deposit_paid: bool,
    /// Cedente and cessionario declared the date together (dichiarazione sostitutiva).
    #[serde(default, skip_serializing_if = "is_false")]
    pub joint_declaration: bool,
    /// Preliminary contract registered, or final deed signed, on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_registered_on: Option<NaiveDate>,
    /// Urban recovery or regeneration plan approved on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_approved_on: Option<NaiveDate>,
    /// Application for reconstruction aid filed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aid_applied_on: Option<NaiveDate>,
    /// Date of an invoice for works already done (DL 39/2024 art. 1 c.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_on: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barriere_subject: Option<BarriereSubject>,
}

impl DeclaredException {
    /// An exception with its code and no facts yet.
    pub fn new(code: ExceptionCode) -> DeclaredException {
        DeclaredException {
            code,
            cilas_filed_on: None,
            resolution_on: None,
            permit_applied_on: None,
            works_started_on: None,
            agreement_on: None,
            deposit_paid: false,
            joint_declaration: false,
            contract_registered_on: None,
            plan_approved_on: None,
            aid_applied_on: None,
            invoice_on: None,
            barriere_subject: None,
        }
    }

    /// The declared date of a date fact (`None` for flags and the subject).
    pub fn date(&self, fact: Fact) -> Option<NaiveDate> {
        match fact {
            Fact::CilasFiled => self.cilas_filed_on,
            Fact::Resolution => self.resolution_on,
            Fact::PermitApplied => self.permit_applied_on,
            Fact::WorksStarted => self.works_started_on,
            Fact::Agreement => self.agreement_on,
            Fact::ContractRegistered => self.contract_registered_on,
            Fact::PlanApproved => self.plan_approved_on,
            Fact::AidApplied => self.aid_applied_on,
            Fact::Invoice => self.invoice_on,
            Fact::DepositPaid | Fact::JointDeclaration | Fact::BarriereSubject => None,
        }
    }

    /// Sets a date fact; flags and the subject have their own fields.
    pub fn set_date(&mut self, fact: Fact, on: Option<NaiveDate>) {
        let slot = match fact {
            Fact::CilasFiled => &mut self.cilas_filed_on,
            Fact::Resolution => &mut self.resolution_on,
            Fact::PermitApplied => &mut self.permit_applied_on,
            Fact::WorksStarted => &mut self.works_started_on,
            Fact::Agreement => &mut self.agreement_on,
            Fact::ContractRegistered => &mut self.contract_registered_on,
            Fact::PlanApproved => &mut self.plan_approved_on,
            Fact::AidApplied => &mut self.aid_applied_on,
            Fact::Invoice => &mut self.invoice_on,
            Fact::DepositPaid | Fact::JointDeclaration | Fact::BarriereSubject => return,
        };
        *slot = on;
    }
}

/// One fact an exception may need. The same names are used by the API (`api_name`), and by
/// the CSV columns and the page's fields (`column`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact {
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

impl Fact {
    /// In the order the page and the CSV documentation list them.
    pub const ALL: [Fact; 12] = [
        Fact::CilasFiled,
        Fact::Resolution,
        Fact::PermitApplied,
        Fact::WorksStarted,
        Fact::Agreement,
        Fact::DepositPaid,
        Fact::JointDeclaration,
        Fact::ContractRegistered,
        Fact::PlanApproved,
        Fact::AidApplied,
        Fact::Invoice,
        Fact::BarriereSubject,
    ];

    /// The dates among the facts, in the same order.
    pub fn is_date(self) -> bool {
        !matches!(
            self,
            Fact::DepositPaid | Fact::JointDeclaration | Fact::BarriereSubject
        )
    }

    /// The field of [`DeclaredException`] in the API.
    pub fn api_name(self) -> &'static str {
        match self {
            Fact::CilasFiled => "cilas_filed_on",
            Fact::Resolution => "resolution_on",
            Fact::PermitApplied => "permit_applied_on",
            Fact::WorksStarted => "works_started_on",
            Fact::Agreement => "agreement_on",
            Fact::DepositPaid => "deposit_paid",
            Fact::JointDeclaration => "joint_declaration",
            Fact::ContractRegistered => "contract_registered_on",
            Fact::PlanApproved => "plan_approved_on",
            Fact::AidApplied => "aid_applied_on",
            Fact::Invoice => "invoice_on",
            Fact::BarriereSubject => "barriere_subject",
        }
    }

    /// The CSV column and the page's field, Italian like the other columns.
    pub fn column(self) -> &'static str {
        match self {
            Fact::CilasFiled => "data_cilas",
            Fact::Resolution => "data_delibera",
            Fact::PermitApplied => "data_titolo",
            Fact::WorksStarted => "data_inizio_lavori",
            Fact::Agreement => "data_accordo",
            Fact::DepositPaid => "acconto_versato",
            Fact::JointDeclaration => "dichiarazione_congiunta",
            Fact::ContractRegistered => "data_preliminare",
            Fact::PlanApproved => "data_piano",
            Fact::AidApplied => "data_domanda_contributo",
            Fact::Invoice => "data_fattura",
            Fact::BarriereSubject => "requisito_barriere",
        }
    }

    /// Italian label of the page's field.
    pub fn label(self) -> &'static str {
        match self {
            Fact::CilasFiled => "Data di presentazione della CILA o CILAS",
            Fact::Resolution => "Data della delibera assembleare che approva i lavori",
            Fact::PermitApplied => "Data della richiesta del titolo abilitativo",
            Fact::WorksStarted => "Data di inizio dei lavori",
            Fact::Agreement => "Data dell'accordo vincolante per la fornitura",
            Fact::DepositPaid => "Acconto versato sull'accordo",
            Fact::JointDeclaration => {
                "Dichiarazione sostitutiva congiunta di committente e fornitore sulla data"
            }
            Fact::ContractRegistered => "Data di registrazione del preliminare o del rogito",
            Fact::PlanApproved => "Data di approvazione del piano di recupero",
            Fact::AidApplied => "Data della domanda di contributo per la ricostruzione",
            Fact::Invoice => "Data della fattura per lavori già effettuati",
            Fact::BarriereSubject => "Requisito del beneficiario (barriere, spese dal 2024)",
        }
    }

    /// What is missing, for a message: "manca {missing}".
    fn missing(self) -> &'static str {
        match self {
            Fact::CilasFiled => "la data di presentazione della CILA o CILAS",
            Fact::Resolution => "la data della delibera assembleare",
            Fact::PermitApplied => "la data della richiesta del titolo abilitativo",
            Fact::WorksStarted => "la data di inizio dei lavori",
            Fact::Agreement => "la data dell'accordo vincolante",
            Fact::DepositPaid => "l'indicazione dell'acconto versato",
            Fact::JointDeclaration => "la dichiarazione sostitutiva congiunta",
            Fact::ContractRegistered => "la data di registrazione del preliminare o del rogito",
            Fact::PlanApproved => "la data di approvazione del piano di recupero",
            Fact::AidApplied => "la data della domanda di contributo per la ricostruzione",
            Fact::Invoice => "la data della fattura per lavori già effettuati",
            Fact::BarriereSubject => "il requisito del beneficiario (condominio o persona fisica)",
        }
    }

    /// The requirement in a sentence: "{phrase} entro il 16/02/2023".
    fn phrase(self) -> &'static str {
        match self {
            Fact::CilasFiled => "CILA o CILAS presentata",
            Fact::Resolution => "delibera assembleare adottata",
            Fact::PermitApplied => "titolo abilitativo richiesto",
            Fact::WorksStarted => "lavori iniziati",
            Fact::Agreement => "accordo vincolante stipulato",
            Fact::DepositPaid => "acconto versato",
            Fact::JointDeclaration => "dichiarazione sostitutiva congiunta",
            Fact::ContractRegistered => "preliminare registrato o rogito stipulato",
            Fact::PlanApproved => "piano di recupero approvato",
            Fact::AidApplied => "domanda di contributo presentata",
            Fact::Invoice => "spesa fatturata per lavori effettuati",
            Fact::BarriereSubject => "requisito del beneficiario",
        }
    }

    /// The fact whose CSV column or form field is `column`.
    pub fn from_column(column: &str) -> Option<Fact> {
        Fact::ALL.into_iter().find(|f| f.column() == column)
    }
}

// ---- the table ----------------------------------------------------------------------------

/// One alternative of an exception version: every requirement must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// Date facts and the last day each may fall on.
    pub dates: Vec<(Fact, NaiveDate)>,
    pub deposit_paid: bool,
    pub joint_declaration: bool,
    pub barriere_subject: Option<BarriereSubject>,
    /// The alternative applies only to communications of these expense years.
    pub from_expense_year: Option<u16>,
    pub to_expense_year: Option<u16>,
}

impl Condition {
    fn covers_year(&self, year: u16) -> bool {
        self.from_expense_year.is_none_or(|y| year >= y)
            && self.to_expense_year.is_none_or(|y| year <= y)
    }

    /// What this alternative's declared facts lack, in the order of the facts.
    fn unmet(&self, declared: &DeclaredException) -> Vec<Unmet> {
        let mut out = Vec::new();
        for &(fact, by) in &self.dates {
            match declared.date(fact) {
                None => out.push(Unmet::Missing(fact)),
                Some(on) if on > by => out.push(Unmet::Late(fact, on, by)),
                Some(_) => {}
            }
        }
        if self.deposit_paid && !declared.deposit_paid {
            out.push(Unmet::Missing(Fact::DepositPaid));
        }
        if self.joint_declaration && !declared.joint_declaration {
            out.push(Unmet::Missing(Fact::JointDeclaration));
        }
        if let Some(subject) = self.barriere_subject
            && declared.barriere_subject != Some(subject)
        {
            out.push(Unmet::Missing(Fact::BarriereSubject));
        }
        out
    }

    /// Whether the sender declared any of this alternative's facts.
    fn engaged(&self, declared: &DeclaredException) -> bool {
        self.facts().any(|fact| match fact {
            Fact::DepositPaid => declared.deposit_paid,
            Fact::JointDeclaration => declared.joint_declaration,
            Fact::BarriereSubject => declared.barriere_subject.is_some(),
            date => declared.date(date).is_some(),
        })
    }

    /// The alternative in Italian: "CILA o CILAS presentata entro il 16/02/2023".
    fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        match (self.from_expense_year, self.to_expense_year) {
            (Some(from), None) => parts.push(format!("spese dal {from}")),
            (None, Some(to)) => parts.push(format!("spese fino al {to}")),
            (Some(from), Some(to)) => parts.push(format!("spese dal {from} al {to}")),
            (None, None) => {}
        }
        if let Some(subject) = self.barriere_subject {
            parts.push(subject.label().to_owned());
        }
        for &(fact, by) in &self.dates {
            parts.push(format!("{} entro il {}", fact.phrase(), it_date(by)));
        }
        if self.deposit_paid {
            parts.push(Fact::DepositPaid.phrase().to_owned());
        }
        if self.joint_declaration {
            parts.push(Fact::JointDeclaration.phrase().to_owned());
        }
        parts.join(" e ")
    }

    fn facts(&self) -> impl Iterator<Item = Fact> + '_ {
        self.dates
            .iter()
            .map(|(f, _)| *f)
            .chain(self.deposit_paid.then_some(Fact::DepositPaid))
            .chain(self.joint_declaration.then_some(Fact::JointDeclaration))
            .chain(self.barriere_subject.map(|_| Fact::BarriereSubject))
    }
}

/// What one requirement of an alternative lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unmet {
    Missing(Fact),
    Late(Fact, NaiveDate, NaiveDate),
}

/// An exception as in force for communications sent in `period`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Version {
    pub period: Period,
    /// Empty: the code alone suffices.
    pub any_of: Vec<Condition>,
    /// DL 39/2024 art. 1 c.5: an invoice for works already done, on or before this day.
    pub invoice_by: Option<NaiveDate>,
    /// Only the Agency's operator may register it.
    pub operator_only: bool,
    pub source: String,
}

impl Version {
    /// Every alternative in Italian, joined by "oppure", with the invoice if needed.
    fn describe(&self, expense_year: u16) -> String {
        let alternatives: Vec<String> = self
            .any_of
            .iter()
            .filter(|c| c.covers_year(expense_year))
            .map(Condition::describe)
            .collect();
        let mut text = alternatives.join("; oppure ");
        if let Some(by) = self.invoice_by {
            if !text.is_empty() {
                text.push_str("; in ogni caso ");
            }
            text.push_str(&format!(
                "{} entro il {}",
                Fact::Invoice.phrase(),
                it_date(by)
            ));
        }
        text
    }
}

/// One exception of DL 11/2023 art. 2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExceptionRule {
    pub code: ExceptionCode,
    pub label: String,
    /// Catalogue keys of the credit types it covers.
    pub types: Vec<String>,
    pub versions: Vec<Version>,
    pub source: String,
    pub note: Option<String>,
}

impl ExceptionRule {
    pub fn version_on(&self, on: NaiveDate) -> Option<&Version> {
        self.versions.iter().find(|v| v.period.contains(on))
    }

    /// Every fact some version of this exception may ask for, in [`Fact::ALL`] order: what
    /// the page's hints say this exception needs.
    pub fn facts(&self) -> Vec<Fact> {
        Fact::ALL
            .into_iter()
            .filter(|fact| {
                self.versions.iter().any(|v| {
                    (*fact == Fact::Invoice && v.invoice_by.is_some())
                        || v.any_of.iter().any(|c| c.facts().any(|f| f == *fact))
                })
            })
            .collect()
    }
}

/// The communication R-OPT-STOP decides on.
#[derive(Clone, Copy, Debug)]
pub struct Communication<'a> {
    pub family: Family,
    pub type_key: &'a str,
    /// The type's Italian name, for messages.
    pub type_name: &'a str,
    pub expense_year: u16,
    pub communicated_on: NaiveDate,
    /// Registered by the Agency's operator.
    pub by_operator: bool,
}

/// The validated table of `catalogue/opt_stop.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OptStopTable {
    /// First communication date the block applies to.
    pub from: NaiveDate,
    pub source: String,
    exceptions: Vec<ExceptionRule>,
}

impl OptStopTable {
    /// Parses and validates a table in the format of `catalogue/opt_stop.toml`.
    pub fn from_toml_str(text: &str) -> Result<OptStopTable, OptStopTableError> {
        let raw: RawTable = toml::from_str(text).map_err(|e| OptStopTableError::Parse {
            message: e.message().trim().to_owned(),
        })?;
        raw.validate()
    }

    /// The table shipped with Cessio ([`BUILTIN_TOML`]). A test asserts that it loads and
    /// that its types are in the builtin catalogue.
    pub fn builtin() -> Result<OptStopTable, OptStopTableError> {
        OptStopTable::from_toml_str(BUILTIN_TOML)
    }

    /// Refuses a table naming a credit type the catalogue lacks, or one that is not a
    /// building bonus (the block concerns only art. 121 options).
    pub fn check_catalogue(&self, catalogue: &Catalogue) -> Result<(), OptStopTableError> {
        for e in &self.exceptions {
            for key in &e.types {
                match catalogue.get(key) {
                    Some(t) if t.family == Family::Art121 => {}
                    Some(_) => {
                        return Err(OptStopTableError::bad(
                            &e.code,
                            format!("il tipo '{key}' non è un bonus edilizio (art. 121)"),
                        ));
                    }
                    None => {
                        return Err(OptStopTableError::bad(
                            &e.code,
                            format!("il tipo '{key}' non è nel catalogo"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn exceptions(&self) -> &[ExceptionRule] {
        &self.exceptions
    }

    pub fn get(&self, code: &str) -> Option<&ExceptionRule> {
        self.exceptions.iter().find(|e| e.code.as_str() == code)
    }

    /// R-OPT-STOP: does a communication of this family on this date need an exception?
    pub fn applies(&self, family: Family, communicated_on: NaiveDate) -> bool {
        family == Family::Art121 && communicated_on >= self.from
    }

    /// R-OPT-STOP: may this communication be registered with the exception it declares?
    /// A communication the block does not reach passes whatever it declares; one it reaches
    /// needs a known code, covering its type, in force on its date, whose facts hold.
    pub fn check(
        &self,
        c: &Communication<'_>,
        declared: Option<&DeclaredException>,
    ) -> Result<(), OptStopError> {
        if !self.applies(c.family, c.communicated_on) {
            return Ok(());
        }
        let Some(declared) = declared else {
            return Err(OptStopError::Missing { from: self.from });
        };
        let code = declared.code.clone();
        let rule = self
            .get(code.as_str())
            .ok_or_else(|| OptStopError::UnknownCode { code: code.clone() })?;
        if !rule.types.iter().any(|t| t == c.type_key) {
            return Err(OptStopError::WrongType {
                code,
                type_name: c.type_name.to_owned(),
            });
        }
        let version =
            rule.version_on(c.communicated_on)
                .ok_or_else(|| OptStopError::NotInForce {
                    code: code.clone(),
                    on: c.communicated_on,
                })?;
        if version.operator_only && !c.by_operator {
            return Err(OptStopError::OperatorOnly { code });
        }
        // A fact declared as happening after the communication that declares it is a
        // mistake whatever the exception, needed or not.
        if let Some((fact, on)) = Fact::ALL.into_iter().find_map(|f| {
            declared
                .date(f)
                .filter(|on| *on > c.communicated_on)
                .map(|on| (f, on))
        }) {
            return Err(OptStopError::FactAfterCommunication {
                code,
                fact,
                on,
                communicated_on: c.communicated_on,
            });
        }
        let mut invoice = Vec::new();
        if let Some(by) = version.invoice_by {
            match declared.invoice_on {
                None => invoice.push(Unmet::Missing(Fact::Invoice)),
                Some(on) if on > by => invoice.push(Unmet::Late(Fact::Invoice, on, by)),
                Some(_) => {}
            }
        }
        let unmet = if version.any_of.is_empty() {
            invoice
        } else {
            // The alternative the sender began to declare, and among those the closest to
            // holding, names what to fix; ties go to the first, the order of the law.
            let best = version
                .any_of
                .iter()
                .filter(|alt| alt.covers_year(c.expense_year))
                .map(|alt| {
                    let mut unmet = alt.unmet(declared);
                    unmet.extend(invoice.iter().copied());
                    (!alt.engaged(declared), unmet)
                })
                .min_by_key(|(untouched, unmet)| (*untouched, unmet.len()))
                .map(|(_, unmet)| unmet);
            match best {
                Some(unmet) => unmet,
                // No alternative covers the expense year: the exception does not apply to it.
                None => {
                    return Err(OptStopError::NotInForce {
                        code,
                        on: c.communicated_on,
                    });
                }
            }
        };
        let needs = version.describe(c.expense_year);
        match unmet.first() {
            None => Ok(()),
            Some(Unmet::Missing(fact)) => Err(OptStopError::FactMissing {
                code,
                fact: *fact,
                needs,
            }),
            Some(Unmet::Late(fact, on, by)) => Err(OptStopError::FactTooLate {
                code,
                fact: *fact,
                on: *on,
                by: *by,
                needs,
            }),
        }
    }
}

// ---- refusals -----------------------------------------------------------------------------

/// Why R-OPT-STOP refused a communication. `Display` is Italian and ends with the rule id;
/// [`OptStopError::code`] is stable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptStopError {
    #[error(
        "Dal {} le opzioni per i bonus edilizi (art. 121) sono ammesse solo indicando una delle eccezioni di legge (DL 11/2023 art. 2), scelta dall'elenco con i dati che richiede (R-OPT-STOP)",
        it_date(*from)
    )]
    Missing { from: NaiveDate },
    #[error(
        "L'eccezione «{code}» non esiste: scegliere un codice dall'elenco delle eccezioni del DL 11/2023 art. 2 (R-OPT-STOP)"
    )]
    UnknownCode { code: ExceptionCode },
    #[error("L'eccezione {code} non riguarda il tipo di credito {type_name} (R-OPT-STOP)")]
    WrongType {
        code: ExceptionCode,
        type_name: String,
    },
    #[error(
        "L'eccezione {code} non è prevista per le comunicazioni del {} o per l'anno di spesa indicato (R-OPT-STOP)",
        it_date(*on)
    )]
    NotInForce { code: ExceptionCode, on: NaiveDate },
    #[error(
        "L'eccezione {code} richiede la verifica della disponibilità dei fondi: la comunicazione è registrata dall'Agenzia (R-OPT-STOP)"
    )]
    OperatorOnly { code: ExceptionCode },
    #[error("Eccezione {code}: manca {}. Servono: {needs} (R-OPT-STOP)", fact.missing())]
    FactMissing {
        code: ExceptionCode,
        fact: Fact,
        /// Every alternative of the exception in force, in Italian.
        needs: String,
    },
    #[error(
        "Eccezione {code}: {} il {} è successiva alla comunicazione del {}: indicare la data vera (R-OPT-STOP)",
        fact.missing(),
        it_date(*on),
        it_date(*communicated_on)
    )]
    FactAfterCommunication {
        code: ExceptionCode,
        fact: Fact,
        on: NaiveDate,
        communicated_on: NaiveDate,
    },
    #[error(
        "Eccezione {code}: {} il {}, oltre il termine del {}. Servono: {needs} (R-OPT-STOP)",
        fact.phrase(),
        it_date(*on),
        it_date(*by)
    )]
    FactTooLate {
        code: ExceptionCode,
        fact: Fact,
        on: NaiveDate,
        by: NaiveDate,
        needs: String,
    },
}

impl OptStopError {
    /// A stable machine code: part of the public interface, never reworded.
    pub fn code(&self) -> &'static str {
        match self {
            OptStopError::Missing { .. } => "r_opt_stop",
            OptStopError::UnknownCode { .. } => "r_opt_stop_unknown",
            OptStopError::WrongType { .. } => "r_opt_stop_type",
            OptStopError::NotInForce { .. } => "r_opt_stop_not_in_force",
            OptStopError::OperatorOnly { .. } => "r_opt_stop_operator",
            OptStopError::FactMissing { .. } => "r_opt_stop_fact_missing",
            OptStopError::FactTooLate { .. } => "r_opt_stop_fact_late",
            OptStopError::FactAfterCommunication { .. } => "r_opt_stop_fact_future",
        }
    }

    /// The fact at fault, so that a page shows the message next to its field.
    pub fn fact(&self) -> Option<Fact> {
        match self {
            OptStopError::FactMissing { fact, .. }
            | OptStopError::FactTooLate { fact, .. }
            | OptStopError::FactAfterCommunication { fact, .. } => Some(*fact),
            _ => None,
        }
    }
}

/// Why `catalogue/opt_stop.toml` was refused. Messages are Italian and name the exception.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptStopTableError {
    #[error("eccezioni R-OPT-STOP: {message}")]
    Parse { message: String },
    #[error("eccezioni R-OPT-STOP: {exception}: {reason}")]
    BadRow { exception: String, reason: String },
}

impl OptStopTableError {
    fn bad(exception: impl fmt::Display, reason: impl Into<String>) -> Self {
        OptStopTableError::BadRow {
            exception: exception.to_string(),
            reason: reason.into(),
        }
    }

    pub const fn code(&self) -> &'static str {
        match self {
            OptStopTableError::Parse { .. } => "opt_stop_parse",
            OptStopTableError::BadRow { .. } => "opt_stop_bad_row",
        }
    }
}

// ---- file model ---------------------------------------------------------------------------

type TomlDate = toml::value::Datetime;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    stop: RawStop,
    #[serde(default)]
    exception: Vec<RawException>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStop {
    from: TomlDate,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawException {
    code: String,
    label: String,
    types: Vec<String>,
    source: String,
    note: Option<String>,
    #[serde(default)]
    version: Vec<RawVersion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVersion {
    from: TomlDate,
    to: Option<TomlDate>,
    any_of: Option<Vec<RawCondition>>,
    invoice_by: Option<TomlDate>,
    #[serde(default)]
    operator_only: bool,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    cilas_filed_by: Option<TomlDate>,
    resolution_by: Option<TomlDate>,
    permit_applied_by: Option<TomlDate>,
    works_started_by: Option<TomlDate>,
    agreement_by: Option<TomlDate>,
    contract_registered_by: Option<TomlDate>,
    plan_approved_by: Option<TomlDate>,
    aid_applied_by: Option<TomlDate>,
    deposit_paid: Option<bool>,
    joint_declaration: Option<bool>,
    barriere_subject: Option<BarriereSubject>,
    from_expense_year: Option<u16>,
    to_expense_year: Option<u16>,
}

/// Expense years outside this range are typos.
const YEARS: std::ops::RangeInclusive<u16> = 2000..=2100;

impl RawTable {
    fn validate(self) -> Result<OptStopTable, OptStopTableError> {
        let from = toml_date(&self.stop.from).map_err(|r| OptStopTableError::bad("[stop]", r))?;
        if self.stop.source.trim().is_empty() {
            return Err(OptStopTableError::bad("[stop]", "il campo source è vuoto"));
        }
        let mut exceptions: Vec<ExceptionRule> = Vec::new();
        for (i, raw) in self.exception.into_iter().enumerate() {
            let name = format!("eccezione {} ({})", i + 1, raw.code);
            let rule = raw.validate(&name, from)?;
            if exceptions.iter().any(|e| e.code == rule.code) {
                return Err(OptStopTableError::bad(name, "codice ripetuto"));
            }
            exceptions.push(rule);
        }
        if exceptions.is_empty() {
            return Err(OptStopTableError::bad("[[exception]]", "nessuna eccezione"));
        }
        Ok(OptStopTable {
            from,
            source: self.stop.source,
            exceptions,
        })
    }
}

impl RawException {
    fn validate(
        self,
        name: &str,
        stop_from: NaiveDate,
    ) -> Result<ExceptionRule, OptStopTableError> {
        let bad = |reason: String| OptStopTableError::bad(name, reason);
        let code = ExceptionCode::parse(&self.code).map_err(&bad)?;
        if code.as_str() != self.code {
            return Err(bad("il codice va scritto in maiuscolo".into()));
        }
        let label_chars = self.label.trim().chars().count();
        if label_chars == 0 || label_chars > MAX_LABEL_CHARS {
            return Err(bad(format!(
                "l'etichetta deve avere da 1 a {MAX_LABEL_CHARS} caratteri"
            )));
        }
        if self.source.trim().is_empty() {
            return Err(bad("il campo source è vuoto".into()));
        }
        if self.types.is_empty() {
            return Err(bad("types è vuoto".into()));
        }
        for (i, t) in self.types.iter().enumerate() {
            if self.types[..i].contains(t) {
                return Err(bad(format!("tipo '{t}' ripetuto")));
            }
        }
        if self.version.is_empty() {
            return Err(bad("nessuna versione".into()));
        }
        let mut versions: Vec<Version> = Vec::new();
        for (i, v) in self.version.into_iter().enumerate() {
            let row = i + 1;
            let bad =
                |reason: String| OptStopTableError::bad(name, format!("versione {row}: {reason}"));
            let vfrom = toml_date(&v.from).map_err(&bad)?;
            let vto = v.to.as_ref().map(toml_date).transpose().map_err(&bad)?;
            if vto.is_some_and(|to| to < vfrom) {
                return Err(bad("la data 'to' precede la data 'from'".into()));
            }
            if vfrom < stop_from {
                return Err(bad(format!(
                    "inizia prima del blocco ({})",
                    it_date(stop_from)
                )));
            }
            if v.source.trim().is_empty() {
                return Err(bad("il campo source è vuoto".into()));
            }
            let period = Period {
                from: vfrom,
                to: vto,
            };
            if let Some(j) = versions.iter().position(|p| overlaps(&p.period, &period)) {
                return Err(bad(format!(
                    "il periodo si sovrappone alla versione {}",
                    j + 1
                )));
            }
            let any_of = match v.any_of {
                None => Vec::new(),
                Some(list) if list.is_empty() => {
                    return Err(bad(
                        "any_of è vuoto: toglierlo se il codice basta da solo".into()
                    ));
                }
                Some(list) => list
                    .into_iter()
                    .enumerate()
                    .map(|(k, c)| {
                        c.validate()
                            .map_err(|reason| bad(format!("alternativa {}: {reason}", k + 1)))
                    })
                    .collect::<Result<_, _>>()?,
            };
            versions.push(Version {
                period,
                any_of,
                invoice_by: v
                    .invoice_by
                    .as_ref()
                    .map(toml_date)
                    .transpose()
                    .map_err(&bad)?,
                operator_only: v.operator_only,
                source: v.source,
            });
        }
        Ok(ExceptionRule {
            code,
            label: self.label,
            types: self.types,
            versions,
            source: self.source,
            note: self.note,
        })
    }
}

fn overlaps(a: &Period, b: &Period) -> bool {
    let ends_before = |x: &Period, y: &Period| x.to.is_some_and(|to| to < y.from);
    !ends_before(a, b) && !ends_before(b, a)
}

impl RawCondition {
    fn validate(self) -> Result<Condition, String> {
        let mut dates = Vec::new();
        for (fact, value) in [
            (Fact::CilasFiled, &self.cilas_filed_by),
            (Fact::Resolution, &self.resolution_by),
            (Fact::PermitApplied, &self.permit_applied_by),
            (Fact::WorksStarted, &self.works_started_by),
            (Fact::Agreement, &self.agreement_by),
            (Fact::ContractRegistered, &self.contract_registered_by),
            (Fact::PlanApproved, &self.plan_approved_by),
            (Fact::AidApplied, &self.aid_applied_by),
        ] {
            if let Some(value) = value {
                dates.push((fact, toml_date(value)?));
            }
        }
        if self.deposit_paid == Some(false) || self.joint_declaration == Some(false) {
            return Err("deposit_paid e joint_declaration si scrivono solo = true".into());
        }
        for year in [self.from_expense_year, self.to_expense_year]
            .into_iter()
            .flatten()
        {
            if !YEARS.contains(&year) {
                return Err(format!("anno di spesa {year} fuori intervallo"));
            }
        }
        if let (Some(from), Some(to)) = (self.from_expense_year, self.to_expense_year)
            && to < from
        {
            return Err("to_expense_year precede from_expense_year".into());
        }
        let condition = Condition {
            dates,
            deposit_paid: self.deposit_paid == Some(true),
            joint_declaration: self.joint_declaration == Some(true),
            barriere_subject: self.barriere_subject,
            from_expense_year: self.from_expense_year,
            to_expense_year: self.to_expense_year,
        };
        let asks_nothing = condition.facts().next().is_none()
            && condition.from_expense_year.is_none()
            && condition.to_expense_year.is_none();
        if asks_nothing {
            return Err("alternativa vuota".into());
        }
        Ok(condition)
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;
    use crate::test_support::d;

    fn table() -> OptStopTable {
        OptStopTable::builtin().unwrap()
    }

    fn comm(type_key: &'static str, expense_year: u16, on: NaiveDate) -> Communication<'static> {
        Communication {
            family: Family::Art121,
            type_key,
            type_name: type_key,
            expense_year,
            communicated_on: on,
            by_operator: false,
        }
    }

    fn exc(code: &str) -> DeclaredException {
        DeclaredException::new(ExceptionCode::parse(code).unwrap())
    }

    fn check(c: &Communication<'_>, e: &DeclaredException) -> Result<(), &'static str> {
        table().check(c, Some(e)).map_err(|e| e.code())
    }

    #[test]
    fn builtin_exceptions_load_and_match_the_catalogue() {
        let t = table();
        assert_eq!(t.from, d(2023, 2, 17));
        assert_eq!(t.exceptions().len(), 12);
        t.check_catalogue(&Catalogue::builtin().unwrap()).unwrap();
    }

    #[test]
    fn r_opt_stop_from_2023_02_17_for_art121_only() {
        let t = table();
        assert!(!t.applies(Family::Art121, d(2023, 2, 16)));
        assert!(t.applies(Family::Art121, d(2023, 2, 17)));
        assert!(!t.applies(Family::Art122, d(2023, 6, 1)));
        // Before the stop nothing is needed; from it, nothing is refused.
        assert!(
            t.check(&comm("superbonus", 2022, d(2023, 2, 16)), None)
                .is_ok()
        );
        let e = t
            .check(&comm("superbonus", 2022, d(2023, 2, 17)), None)
            .unwrap_err();
        assert_eq!(e.code(), "r_opt_stop");
        assert!(e.to_string().contains("17/02/2023"), "{e}");
    }

    #[test]
    fn r_opt_stop_code_is_bounded_and_never_free_text() {
        assert!(ExceptionCode::parse("CILAS presentata entro il 16/02/2023").is_err());
        assert!(ExceptionCode::parse("   ").is_err());
        assert!(ExceptionCode::parse(&"A".repeat(300 * 1024)).is_err());
        assert_eq!(
            ExceptionCode::parse(" sb_cilas_non_cond ")
                .unwrap()
                .as_str(),
            "SB_CILAS_NON_COND"
        );
        let too_long: Result<DeclaredException, _> =
            serde_json::from_value(serde_json::json!({ "code": "X".repeat(41) }));
        assert!(too_long.is_err());
        let unknown_fact: Result<DeclaredException, _> = serde_json::from_value(
            serde_json::json!({ "code": "BARRIERE_75", "note": "lavori urgenti" }),
        );
        assert!(
            unknown_fact.is_err(),
            "a free-text field must not be accepted"
        );
        let c = comm("superbonus", 2022, d(2023, 6, 1));
        assert_eq!(check(&c, &exc("ALTRO")), Err("r_opt_stop_unknown"));
    }

    #[test]
    fn r_opt_stop_sb_cilas_by_2023_02_16() {
        let c = comm("superbonus", 2023, d(2023, 6, 1));
        let mut e = exc("SB_CILAS_NON_COND");
        assert_eq!(check(&c, &e), Err("r_opt_stop_fact_missing"));
        e.cilas_filed_on = Some(d(2023, 2, 16));
        assert_eq!(check(&c, &e), Ok(()));
        e.cilas_filed_on = Some(d(2023, 2, 17));
        let err = table().check(&c, Some(&e)).unwrap_err();
        assert_eq!(err.code(), "r_opt_stop_fact_late");
        assert_eq!(err.fact(), Some(Fact::CilasFiled));
        let text = err.to_string();
        assert!(
            text.contains("17/02/2023") && text.contains("16/02/2023"),
            "{text}"
        );
    }

    #[test]
    fn r_opt_stop_sb_cilas_needs_an_invoice_by_2024_03_29_from_2024_03_30() {
        let mut e = exc("SB_CILAS_NON_COND");
        e.cilas_filed_on = Some(d(2023, 1, 10));
        // Sent on 29/03/2024: the DL 39/2024 condition is not yet in force.
        assert_eq!(check(&comm("superbonus", 2023, d(2024, 3, 29)), &e), Ok(()));
        let from = comm("superbonus", 2024, d(2024, 3, 30));
        let err = table().check(&from, Some(&e)).unwrap_err();
        assert_eq!(
            (err.code(), err.fact()),
            ("r_opt_stop_fact_missing", Some(Fact::Invoice))
        );
        e.invoice_on = Some(d(2024, 3, 30));
        assert_eq!(check(&from, &e), Err("r_opt_stop_fact_late"));
        e.invoice_on = Some(d(2024, 3, 29));
        assert_eq!(check(&from, &e), Ok(()));
    }

    #[test]
    fn r_opt_stop_fact_cannot_follow_the_communication() {
        let c = comm("superbonus", 2023, d(2023, 6, 1));
        let mut e = exc("SB_CILAS_NON_COND");
        e.cilas_filed_on = Some(d(2023, 1, 10));
        // Even a fact the exception does not need.
        e.invoice_on = Some(d(2023, 6, 2));
        let err = table().check(&c, Some(&e)).unwrap_err();
        assert_eq!(
            (err.code(), err.fact()),
            ("r_opt_stop_fact_future", Some(Fact::Invoice))
        );
        e.invoice_on = Some(d(2023, 6, 1));
        assert_eq!(check(&c, &e), Ok(()));
    }

    #[test]
    fn r_opt_stop_sb_cond_needs_resolution_and_cilas() {
        let c = comm("superbonus", 2023, d(2023, 9, 1));
        let mut e = exc("SB_COND_DELIBERA_CILAS");
        e.cilas_filed_on = Some(d(2023, 2, 10));
        let err = table().check(&c, Some(&e)).unwrap_err();
        assert_eq!(err.fact(), Some(Fact::Resolution));
        e.resolution_on = Some(d(2023, 2, 17));
        assert_eq!(check(&c, &e), Err("r_opt_stop_fact_late"));
        e.resolution_on = Some(d(2023, 2, 16));
        assert_eq!(check(&c, &e), Ok(()));
    }

    #[test]
    fn r_opt_stop_sb_demolition_needs_the_title_application() {
        let c = comm("superbonus", 2023, d(2023, 9, 1));
        let mut e = exc("SB_DEMO_RICOSTR");
        assert_eq!(check(&c, &e), Err("r_opt_stop_fact_missing"));
        e.permit_applied_on = Some(d(2023, 2, 16));
        assert_eq!(check(&c, &e), Ok(()));
    }

    #[test]
    fn r_opt_stop_recovery_plans_need_no_invoice_after_dl_39_2024() {
        let mut e = exc("SB_PIANI_RECUPERO_ZS123");
        e.plan_approved_on = Some(d(2022, 12, 1));
        assert_eq!(check(&comm("superbonus", 2024, d(2024, 6, 1)), &e), Ok(()));
        e.plan_approved_on = Some(d(2023, 2, 17));
        assert_eq!(
            check(&comm("superbonus", 2024, d(2024, 6, 1)), &e),
            Err("r_opt_stop_fact_late")
        );
    }

    #[test]
    fn r_opt_stop_other_bonuses_title_requested_not_for_superbonus() {
        let mut e = exc("ALTRI_TITOLO_RICHIESTO");
        e.permit_applied_on = Some(d(2023, 2, 16));
        assert_eq!(check(&comm("ecobonus", 2023, d(2023, 6, 1)), &e), Ok(()));
        assert_eq!(
            check(&comm("superbonus", 2023, d(2023, 6, 1)), &e),
            Err("r_opt_stop_type")
        );
    }

    #[test]
    fn r_opt_stop_free_building_works_started_or_agreement_with_deposit() {
        let c = comm("ecobonus", 2023, d(2023, 6, 1));
        let mut e = exc("ALTRI_EDIL_LIBERA_AVVIATI");
        let err = table().check(&c, Some(&e)).unwrap_err();
        // Every alternative is named, so the sender can choose the one that is true.
        assert!(err.to_string().contains("oppure"), "{err}");
        e.agreement_on = Some(d(2023, 2, 1));
        let err = table().check(&c, Some(&e)).unwrap_err();
        assert_eq!(err.fact(), Some(Fact::DepositPaid));
        e.deposit_paid = true;
        assert_eq!(check(&c, &e), Ok(()));
        let mut declared = exc("ALTRI_EDIL_LIBERA_AVVIATI");
        declared.agreement_on = Some(d(2023, 2, 1));
        declared.joint_declaration = true;
        assert_eq!(check(&c, &declared), Ok(()));
        let mut started = exc("ALTRI_EDIL_LIBERA_AVVIATI");
        started.works_started_on = Some(d(2023, 2, 17));
        assert_eq!(check(&c, &started), Err("r_opt_stop_fact_late"));
        started.works_started_on = Some(d(2023, 2, 16));
        assert_eq!(check(&c, &started), Ok(()));
    }

    #[test]
    fn r_opt_stop_free_building_needs_an_invoice_from_2024_03_30() {
        let mut e = exc("ALTRI_EDIL_LIBERA_AVVIATI");
        e.works_started_on = Some(d(2023, 1, 9));
        assert_eq!(check(&comm("ecobonus", 2024, d(2024, 3, 29)), &e), Ok(()));
        let late = comm("ecobonus", 2024, d(2024, 3, 30));
        assert_eq!(check(&late, &e), Err("r_opt_stop_fact_missing"));
        e.invoice_on = Some(d(2024, 3, 29));
        assert_eq!(check(&late, &e), Ok(()));
    }

    #[test]
    fn r_opt_stop_purchases_by_contract_or_title() {
        let c = comm("sismabonus", 2023, d(2023, 6, 1));
        let mut e = exc("ACQUISTI_TITOLO_IMPRESA");
        assert_eq!(check(&c, &e), Err("r_opt_stop_fact_missing"));
        e.contract_registered_on = Some(d(2023, 2, 16));
        assert_eq!(check(&c, &e), Ok(()));
        let mut t = exc("ACQUISTI_TITOLO_IMPRESA");
        t.permit_applied_on = Some(d(2022, 5, 1));
        // Not touched by DL 39/2024: no invoice needed after 30/03/2024.
        assert_eq!(
            check(&comm("recupero_edilizio", 2024, d(2024, 6, 1)), &t),
            Ok(())
        );
    }

    #[test]
    fn r_opt_stop_barriere_by_expense_year() {
        let e = exc("BARRIERE_75");
        // Expenses of 2023: the code suffices, before and after DL 212/2023.
        assert_eq!(
            check(&comm("barriere_75", 2023, d(2023, 12, 29)), &e),
            Ok(())
        );
        assert_eq!(check(&comm("barriere_75", 2023, d(2024, 2, 1)), &e), Ok(()));
        // Expenses of 2024: a subject or a transitional fact by 29/12/2023.
        let c = comm("barriere_75", 2024, d(2024, 2, 1));
        let err = table().check(&c, Some(&e)).unwrap_err();
        assert_eq!(err.fact(), Some(Fact::BarriereSubject));
        let mut condo = exc("BARRIERE_75");
        condo.barriere_subject = Some(BarriereSubject::Condominio);
        assert_eq!(check(&c, &condo), Ok(()));
        let mut person = exc("BARRIERE_75");
        person.barriere_subject = Some(BarriereSubject::PersonaFisica);
        assert_eq!(check(&c, &person), Ok(()));
        let mut started = exc("BARRIERE_75");
        started.works_started_on = Some(d(2023, 12, 30));
        assert_eq!(check(&c, &started), Err("r_opt_stop_fact_late"));
        started.works_started_on = Some(d(2023, 12, 29));
        assert_eq!(check(&c, &started), Ok(()));
        // Only for barriere credits.
        assert_eq!(
            check(&comm("ecobonus", 2023, d(2023, 6, 1)), &e),
            Err("r_opt_stop_type")
        );
    }

    #[test]
    fn r_opt_stop_iacp_free_until_2024_03_29_then_needs_a_filing() {
        let e = exc("IACP_COOP_ETS");
        assert_eq!(check(&comm("superbonus", 2024, d(2024, 3, 29)), &e), Ok(()));
        let c = comm("superbonus", 2024, d(2024, 3, 30));
        assert_eq!(check(&c, &e), Err("r_opt_stop_fact_missing"));
        let mut filed = exc("IACP_COOP_ETS");
        filed.cilas_filed_on = Some(d(2024, 3, 29));
        assert_eq!(check(&c, &filed), Ok(()));
        filed.cilas_filed_on = Some(d(2024, 3, 30));
        assert_eq!(check(&c, &filed), Err("r_opt_stop_fact_late"));
    }

    #[test]
    fn r_opt_stop_earthquake_2009_narrowed_by_dl_39_2024() {
        let e = exc("SISMA_EMERGENZA_2009");
        assert_eq!(check(&comm("sismabonus", 2023, d(2023, 6, 1)), &e), Ok(()));
        let c = comm("sismabonus", 2024, d(2024, 5, 1));
        assert_eq!(check(&c, &e), Err("r_opt_stop_fact_missing"));
        let mut aid = exc("SISMA_EMERGENZA_2009");
        aid.aid_applied_on = Some(d(2024, 3, 29));
        assert_eq!(check(&c, &aid), Ok(()));
    }

    #[test]
    fn r_opt_stop_earthquake_cap_from_2024_03_30_by_the_operator_only() {
        let e = exc("SISMA_2009_2016_CAP");
        assert_eq!(
            check(&comm("superbonus", 2024, d(2024, 3, 29)), &e),
            Err("r_opt_stop_not_in_force")
        );
        let c = comm("superbonus", 2024, d(2024, 4, 2));
        assert_eq!(check(&c, &e), Err("r_opt_stop_operator"));
        let by_operator = Communication {
            by_operator: true,
            ..c
        };
        assert_eq!(check(&by_operator, &e), Ok(()));
    }

    #[test]
    fn r_opt_stop_marche_weather_needs_the_code_only() {
        let e = exc("METEO_MARCHE_2022");
        assert_eq!(
            check(&comm("recupero_edilizio", 2023, d(2023, 2, 17)), &e),
            Ok(())
        );
        assert_eq!(check(&comm("superbonus", 2024, d(2024, 6, 1)), &e), Ok(()));
    }

    #[test]
    fn r_opt_stop_facts_listed_per_exception() {
        let t = table();
        let facts = |code: &str| t.get(code).unwrap().facts();
        assert_eq!(
            facts("SB_CILAS_NON_COND"),
            [Fact::CilasFiled, Fact::Invoice]
        );
        assert_eq!(facts("METEO_MARCHE_2022"), []);
        assert!(facts("BARRIERE_75").contains(&Fact::BarriereSubject));
        for f in Fact::ALL {
            assert_eq!(Fact::from_column(f.column()), Some(f));
        }
    }

    fn table_err(text: &str) -> OptStopTableError {
        OptStopTable::from_toml_str(text).unwrap_err()
    }

    const HEAD: &str = "[stop]\nfrom = 2023-02-17\nsource = \"s\"\n";

    #[test]
    fn rejects_overlapping_versions_and_empty_alternatives() {
        let e = table_err(&format!(
            "{HEAD}[[exception]]\ncode = \"A\"\nlabel = \"a\"\ntypes = [\"superbonus\"]\nsource = \"s\"\n\
             [[exception.version]]\nfrom = 2023-02-17\nsource = \"s\"\n\
             [[exception.version]]\nfrom = 2024-01-01\nsource = \"s\"\n"
        ));
        assert!(e.to_string().contains("si sovrappone"), "{e}");
        let e = table_err(&format!(
            "{HEAD}[[exception]]\ncode = \"A\"\nlabel = \"a\"\ntypes = [\"superbonus\"]\nsource = \"s\"\n\
             [[exception.version]]\nfrom = 2023-02-17\nany_of = [{{}}]\nsource = \"s\"\n"
        ));
        assert!(e.to_string().contains("alternativa 1"), "{e}");
        let e = table_err(&format!(
            "{HEAD}[[exception]]\ncode = \"a\"\nlabel = \"a\"\ntypes = [\"superbonus\"]\nsource = \"s\"\n\
             [[exception.version]]\nfrom = 2023-02-17\nsource = \"s\"\n"
        ));
        assert!(e.to_string().contains("maiuscolo"), "{e}");
    }

    #[test]
    fn rejects_types_outside_the_catalogue_or_not_building_bonuses() {
        let text = |ty: &str| {
            format!(
                "{HEAD}[[exception]]\ncode = \"A\"\nlabel = \"a\"\ntypes = [\"{ty}\"]\nsource = \"s\"\n\
                 [[exception.version]]\nfrom = 2023-02-17\nsource = \"s\"\n"
            )
        };
        let cat = Catalogue::builtin().unwrap();
        let t = OptStopTable::from_toml_str(&text("nessuno")).unwrap();
        assert!(t.check_catalogue(&cat).is_err());
        let t = OptStopTable::from_toml_str(&text("canoni_locazione")).unwrap();
        assert!(
            t.check_catalogue(&cat)
                .unwrap_err()
                .to_string()
                .contains("art. 121")
        );
    }
}
