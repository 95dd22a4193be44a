//! F8: option communications, one at a time or a bulk file, and their annulment (R-OPT-ANNUL).

use cessio_core::catalogue::{CessionRegime, HolderRole, Origin};
use cessio_core::ledger::TransferKind;
use cessio_core::money::Cents;
use cessio_core::opt_stop::DeclaredException;
use cessio_core::rata::{OptionCommunication, Protocol, derive_rate_for_holder};
use cessio_core::risk::HistoryStats;
use cessio_core::rules;
use cessio_core::time::to_rome;
use cessio_store::{Command, Credit, IdempotencyKey, NewCredit, NewRata, PartyEntry};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::acceptance::answer_receipt;
use super::check_may_acquire;
use crate::operator::SentHistories;
use crate::{AnswerReceipt, App, AppError, Principal, fingerprint};

/// F8 input: one option communication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionInput {
    pub beneficiary_cf: String,
    pub type_key: String,
    pub expense_year: u16,
    pub origin: Origin,
    /// The fornitore (sconto) or first cessionario (cessione), who answers it in F3.
    pub holder_cf: String,
    pub total: Cents,
    /// Defaults to today (Europe/Rome).
    #[serde(default)]
    pub communicated_on: Option<NaiveDate>,
    /// R-OPT-STOP: the exception of DL 11/2023 art. 2 the communication relies on, by code
    /// (`catalogue/opt_stop.toml`), with the facts it needs.
    #[serde(default)]
    pub exception: Option<DeclaredException>,
}

/// F8 done: the credit registered, and the operation that registered it (whose receipt
/// the beneficiary keeps).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Credit")]
pub struct Communicated {
    #[serde(flatten)]
    pub credit: Credit,
    /// The operation that registered it: its receipt is
    /// `GET /parties/{cf}/operations/{operation_id}/receipt.pdf`.
    pub operation_id: i64,
}

impl App {
    /// Registers an option communication (F8). The rate are derived by core; the fornitore
    /// or first cessionario then answers it in F3.
    pub async fn communicate_option(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        input: &OptionInput,
    ) -> Result<Credit, AppError> {
        Ok(self
            .communicate_option_declaring(p, key, pin, input, false)
            .await?
            .credit)
    }

    /// F8 with the beneficiary's declaration of being in the no-tax area (R-ECO-2018: only
    /// then may an art. 14 ecobonus go to a bank or financial intermediary).
    pub async fn communicate_option_declaring(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        input: &OptionInput,
        no_tax_area: bool,
    ) -> Result<Communicated, AppError> {
        let key = crate::scoped_key(p, key)?;
        let (receipt, _) = self
            .communicate(
                p,
                &key,
                Pin::Check(pin),
                input,
                no_tax_area,
                History::Kept(&mut SentHistories::default()),
                &PartyCache::default(),
            )
            .await?;
        self.communicated_by(&receipt).await
    }

    /// Registers one communication and returns its operation's receipt; the bool says
    /// whether it was already registered under this key (a retry).
    #[allow(clippy::too_many_arguments)]
    async fn communicate(
        &self,
        p: &Principal,
        key: &IdempotencyKey,
        pin: Pin<'_>,
        input: &OptionInput,
        no_tax_area: bool,
        mut history: History<'_>,
        parties: &PartyCache,
    ) -> Result<(cessio_store::Receipt, bool), AppError> {
        let fp = option_fingerprint(input, no_tax_area);
        if let Some(receipt) = self.replay_key(key, &fp).await? {
            return Ok((receipt, true));
        }
        let beneficiary = parties.party(self, &input.beneficiary_cf).await?;
        if !p.is_operator() {
            // An intermediary for the beneficiary, or the beneficiary itself.
            self.authorize_act(p, beneficiary.id).await?;
            if let Pin::Check(pin) = pin {
                self.check_pin(p, pin).await?;
            }
        }
        let holder = parties.party(self, &input.holder_cf).await?;
        if holder.id == beneficiary.id {
            return Err(AppError::invalid(
                "holder_cf",
                "il fornitore o cessionario deve essere diverso dal beneficiario",
            ));
        }
        check_may_acquire(&holder)?;
        let credit_type = self
            .catalogue
            .get(&input.type_key)
            .ok_or_else(|| AppError::invalid("type_key", "tipo di credito sconosciuto"))?;
        if credit_type.cession_regime == CessionRegime::Eco2018 {
            cessio_core::chain::check_eco2018_option(
                crate::chain::party_class(holder.kind),
                no_tax_area,
            )
            .map_err(crate::chain::chain_error)?;
        }
        let communicated_on = input.communicated_on.unwrap_or_else(|| self.today());
        // Users send communications today: only the operator loads past ones (bulk files of
        // communications already sent), or a backdated date would evade R-OPT-STOP and the
        // tracciabilità of 1 May 2022.
        if !p.is_operator() && communicated_on != self.today() {
            return Err(AppError::invalid(
                "communicated_on",
                "la data di comunicazione è la data di invio (oggi)",
            ));
        }
        if communicated_on > self.today() {
            return Err(AppError::invalid(
                "communicated_on",
                "la data di comunicazione non può essere futura",
            ));
        }
        self.opt_stop.check(
            &cessio_core::opt_stop::Communication {
                family: credit_type.family,
                type_key: &credit_type.key,
                type_name: &credit_type.name,
                expense_year: input.expense_year,
                communicated_on,
                by_operator: p.is_operator(),
            },
            input.exception.as_ref(),
        )?;
        let total = input.total.ensure_positive_amount()?;
        if let History::Kept(kept) = &mut history {
            kept.load(self, beneficiary.id).await?;
        }
        // The store assigns the real protocol; the derivation needs one only to shape codes.
        let placeholder = Protocol::new(to_rome(self.now()), 1)
            .map_err(|e| AppError::invalid("communicated_on", e.to_string()))?;
        let derived = derive_rate_for_holder(
            &self.catalogue,
            &OptionCommunication {
                type_key: input.type_key.clone(),
                expense_year: input.expense_year,
                origin: input.origin,
                total,
                communicated_on,
            },
            HolderRole::Cessionario,
            &placeholder,
            1,
        )
        .map_err(|e| AppError::invalid(e.code(), e.to_string()))?;
        let receipt = self
            .submit(self.operation_with_key(
                p,
                key.clone(),
                Some(beneficiary.id),
                Command::IssueCredit(NewCredit {
                    type_key: input.type_key.clone(),
                    beneficiary: beneficiary.id,
                    holder: holder.id,
                    origin: input.origin.into(),
                    expense_year: input.expense_year,
                    communicated_on,
                    tracciabile: derived.tracciabile,
                    rate: derived.rate.iter().map(NewRata::from).collect(),
                    awaiting_answer: true,
                    beneficiary_no_tax_area: no_tax_area,
                }),
                fp,
            )?)
            .await?;
        if !receipt.replayed
            && let Some(first) = receipt.transfers.first()
        {
            // F9 risk rules on every communication: the beneficiary is its cedente.
            let before = match &history {
                History::Kept(kept) => HistoryStats::of(kept.of(beneficiary.id)),
                History::Given(given) => *given,
            };
            let hits = self
                .risk_of(&beneficiary, &holder, total, None, before)
                .await?;
            if let History::Kept(kept) = &mut history {
                kept.record(beneficiary.id, derived.rate.iter().map(|r| r.amount));
            }
            self.record_risk(p, *first, beneficiary.id, holder.id, &hits)
                .await;
        }
        let replayed = receipt.replayed;
        Ok((receipt, replayed))
    }

    /// The credit an operation registered, and the operation.
    async fn communicated_by(
        &self,
        receipt: &cessio_store::Receipt,
    ) -> Result<Communicated, AppError> {
        Ok(Communicated {
            credit: self.credit_of(receipt).await?,
            operation_id: receipt.operation_id,
        })
    }

    async fn credit_of(&self, receipt: &cessio_store::Receipt) -> Result<Credit, AppError> {
        let id = receipt
            .credit
            .as_ref()
            .map(|c| c.id)
            .ok_or(AppError::NotFound { what: "Credito" })?;
        self.store
            .credit(id)
            .await?
            .ok_or(AppError::NotFound { what: "Credito" })
    }

    /// R-OPT-ANNUL: the sender annuls a communication not yet answered, until the 5th of
    /// the month after sending. The pending issuance is voided: nothing was ever available.
    pub async fn annul_option(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        credit_id: i64,
    ) -> Result<AnswerReceipt, AppError> {
        let fp = fingerprint("annul_option", None, &credit_id);
        if let Some(r) = self.replay(p, key, &fp).await? {
            return Ok(answer_receipt(&r, false));
        }
        let credit = self
            .store
            .credit(credit_id)
            .await?
            .ok_or(AppError::NotFound {
                what: "Comunicazione",
            })?;
        if !p.is_operator() {
            self.authorize_act(p, credit.beneficiary)
                .await
                .map_err(|_| AppError::NotFound {
                    what: "Comunicazione",
                })?;
            self.check_pin(p, pin).await?;
        }
        // The law counts from the sending: the communication date (for communications the
        // operator loads after the fact, their registration would give a later deadline).
        let deadline = rules::opt_annul_deadline(credit.communicated_on);
        if self.today() > deadline {
            return Err(AppError::r_opt_annul(deadline));
        }
        let entries = self.store.party_entries(credit.holder, None).await?;
        let issued: Vec<&PartyEntry> = entries
            .iter()
            .filter(|e| e.credit == credit_id && e.kind == TransferKind::Issue)
            .collect();
        if issued.iter().any(|e| e.answer.is_some()) {
            return Err(AppError::Conflict {
                reason: "la comunicazione è già stata accettata o rifiutata".into(),
            });
        }
        self.answer_entries(p, key, credit.beneficiary, &issued, false, fp)
            .await
    }
}

/// What ties a retried communication to the first: the input, and the no-tax-area
/// declaration when made (so that earlier fingerprints stay as they were).
fn option_fingerprint(input: &OptionInput, no_tax_area: bool) -> String {
    if no_tax_area {
        fingerprint("communicate_option", None, &(input, "no_tax_area"))
    } else {
        fingerprint("communicate_option", None, input)
    }
}

/// Whether a function still has to check the PIN, or its caller did once for many rows.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pin<'a> {
    Check(Option<&'a str>),
    Checked,
}

/// The outcome of one row of a bulk file of communications.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImportRow {
    pub line: usize,
    pub reference: Option<String>,
    /// The protocol of the registered communication, when the row was accepted.
    pub protocol: Option<String>,
    /// True when the row had been registered by an earlier import of the same file.
    pub already_registered: bool,
    pub code: Option<String>,
    pub message: Option<String>,
}

/// F8 bulk: what happened to each row, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImportReport {
    pub registered: usize,
    pub already_registered: usize,
    pub refused: usize,
    pub rows: Vec<ImportRow>,
}

impl ImportRow {
    /// Registered by this import, found registered before, or refused.
    pub fn outcome(&self) -> cessio_store::jobs::RowOutcome {
        use cessio_store::jobs::RowOutcome;
        match (&self.code, self.already_registered) {
            (Some(_), _) => RowOutcome::Refused,
            (None, true) => RowOutcome::Already,
            (None, false) => RowOutcome::Applied,
        }
    }
}

impl ImportReport {
    /// Adds a row and counts it.
    pub fn add(&mut self, row: ImportRow) {
        use cessio_store::jobs::RowOutcome;
        match row.outcome() {
            RowOutcome::Applied => self.registered += 1,
            RowOutcome::Already => self.already_registered += 1,
            RowOutcome::Refused => self.refused += 1,
        }
        self.rows.push(row);
    }
}

impl App {
    /// F8 bulk: registers every valid row of a CSV file of option communications, each on
    /// its own (a refused row leaves nothing behind), and reports every row. Each row's
    /// idempotency key is derived from the file's content and the line, so importing the
    /// same file again registers nothing twice. A file that cannot be read at all (not
    /// UTF-8, wrong columns, too large) is refused whole.
    pub async fn import_communications(
        &self,
        p: &Principal,
        pin: Option<&str>,
        file: &[u8],
        mut progress: impl FnMut(usize, usize),
    ) -> Result<ImportReport, AppError> {
        let parsed = cessio_core::csv::parse_option_csv(file, &self.catalogue)
            .map_err(|e| AppError::invalid(e.code(), e.to_string()))?;
        if !p.is_operator() {
            // One PIN for the whole file, checked once before anything is registered.
            self.check_pin(p, pin).await?;
        }
        let mut report = ImportReport::default();
        for refused in refused_rows(&parsed) {
            report.add(refused);
        }
        let total = parsed.rows.len();
        let mut histories = SentHistories::default();
        let parties = PartyCache::default();
        for (i, row) in parsed.rows.iter().enumerate() {
            let out = self
                .import_row(p, row, History::Kept(&mut histories), &parties)
                .await;
            report.add(out);
            progress(i + 1, total);
        }
        report.rows.sort_by_key(|r| r.line);
        Ok(report)
    }

    /// Registers one row of a bulk file, on the strength of the file's PIN checked by the
    /// caller, under a key its content names: a corrected file sent again, or the same rows
    /// sent by another operator or from the command line, find the communications already
    /// registered. Two identical rows without a reference are one communication.
    pub(crate) async fn import_row(
        &self,
        p: &Principal,
        row: &cessio_core::csv::OptionRow,
        history: History<'_>,
        parties: &PartyCache,
    ) -> ImportRow {
        let input = OptionInput {
            beneficiary_cf: row.beneficiary.as_str().to_string(),
            type_key: row.type_key.clone(),
            expense_year: row.expense_year,
            origin: row.origin,
            holder_cf: row.holder.as_str().to_string(),
            total: row.total,
            communicated_on: Some(row.communicated_on),
            exception: row.exception.clone(),
        };
        // The declaration joins the name only when made, so that files imported before the
        // column existed keep theirs.
        let row_digest = if row.no_tax_area {
            fingerprint("import-row", None, &(&input, &row.reference, "no_tax_area"))
        } else {
            fingerprint("import-row", None, &(&input, &row.reference))
        };
        let mut out = ImportRow {
            line: row.line,
            reference: row.reference.clone(),
            protocol: None,
            already_registered: false,
            code: None,
            message: None,
        };
        let outcome = match IdempotencyKey::parse(&format!("import:{}", &row_digest[..48])) {
            Ok(key) => {
                self.communicate(
                    p,
                    &key,
                    Pin::Checked,
                    &input,
                    row.no_tax_area,
                    history,
                    parties,
                )
                .await
            }
            Err(e) => Err(AppError::invalid("riferimento", e.to_string())),
        };
        // The receipt names the credit's protocol; only a receipt without it (none is
        // written so) needs the credit read back.
        let outcome = match outcome {
            Ok((receipt, replayed)) => match receipt.credit.as_ref() {
                Some(credit) => Ok((credit.protocol.clone(), replayed)),
                None => self
                    .credit_of(&receipt)
                    .await
                    .map(|c| (c.protocol, replayed)),
            },
            Err(e) => Err(e),
        };
        match outcome {
            Ok((protocol, replayed)) => {
                out.protocol = Some(protocol);
                out.already_registered = replayed;
            }
            Err(e) => {
                out.code = Some(e.code().to_string());
                out.message = Some(e.to_string());
            }
        }
        out
    }
}

/// The rows a file's reading refused, as import rows.
pub(crate) fn refused_rows(parsed: &cessio_core::csv::ImportReport) -> Vec<ImportRow> {
    parsed
        .errors
        .iter()
        .map(|e| ImportRow {
            line: e.line,
            reference: None,
            protocol: None,
            already_registered: false,
            code: Some(e.code.to_string()),
            message: Some(e.message.clone()),
        })
        .collect()
}

/// The parties a bulk file names, read once per part of it (a file names the same
/// beneficiaries and cessionari row after row). Only parties found are kept: an unknown
/// codice fiscale is asked again, and refused, on each row that names it.
#[derive(Debug, Default)]
pub(crate) struct PartyCache(
    std::sync::Mutex<std::collections::HashMap<String, cessio_store::Party>>,
);

impl PartyCache {
    pub(crate) async fn party(&self, app: &App, cf: &str) -> Result<cessio_store::Party, AppError> {
        if let Some(p) = self.0.lock().ok().and_then(|m| m.get(cf).cloned()) {
            return Ok(p);
        }
        let party = app.party_by_cf(cf).await?;
        if let Ok(mut m) = self.0.lock() {
            m.insert(cf.to_string(), party.clone());
        }
        Ok(party)
    }
}

/// The beneficiary's amounts F9's amount rule compares a communication with.
pub(crate) enum History<'a> {
    /// Read once per beneficiary and kept, each communication registered joining it: a
    /// single communication, or a file registered row after row.
    Kept(&'a mut SentHistories),
    /// Given by the caller: a bulk job gives each row the figures of the beneficiary's
    /// communications registered before the job and the file's rows before it, so that
    /// rows of one beneficiary need not wait for each other.
    Given(HistoryStats),
}

impl App {
    /// The rata amounts a row of a bulk file would register (none when it cannot be
    /// derived: the row is then refused when registered, and adds nothing to a history).
    pub(crate) fn import_row_amounts(&self, row: &cessio_core::csv::OptionRow) -> Vec<Cents> {
        let Ok(placeholder) = Protocol::new(to_rome(self.now()), 1) else {
            return Vec::new();
        };
        derive_rate_for_holder(
            &self.catalogue,
            &OptionCommunication {
                type_key: row.type_key.clone(),
                expense_year: row.expense_year,
                origin: row.origin,
                total: row.total,
                communicated_on: row.communicated_on,
            },
            HolderRole::Cessionario,
            &placeholder,
            1,
        )
        .map(|d| d.rate.iter().map(|r| r.amount).collect())
        .unwrap_or_default()
    }
}
