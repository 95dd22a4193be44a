//! The platform's functions: F8 option communications, F1 Monitoraggio, F2 Cessione,
//! F3 Accettazione, F4 Lista movimenti. Each public function is one user action.

use std::collections::{BTreeMap, HashMap, HashSet};

use cessio_core::catalogue::{CessionRegime, HolderRole, Origin, UsageWindow};
use cessio_core::ledger::{PartyId, RataId, TransferId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::opt_stop::DeclaredException;
use cessio_core::rata::{OptionCommunication, Protocol, derive_rate_for_holder};
use cessio_core::rules;
use cessio_core::split::is_split_code;
use cessio_core::time::{rome_date, rome_start_of_day, to_rome};
use cessio_store::{
    AccountRef, Command, Credit, CreditOrigin, EntryQuery, EntryRole, EntryState, IdempotencyKey,
    NewCredit, NewRata, Party, PartyEntry, PartyKind, StoreError, TransferRequest,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{App, AppError, Principal, fingerprint};

/// A party's holdings by rata, with their §5 history (F2's working set).
type CedibleMap = HashMap<RataId, (CedibleHolding, cessio_core::chain::RataHistory)>;

/// F8 input: one option communication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// A party as another party may see it: the CF always, the name only when allowed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyRef {
    pub cf: String,
    pub name: Option<String>,
}

/// F1: one row per credit type and reference year.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorRow {
    pub type_key: String,
    pub type_name: String,
    pub year: u16,
    pub received_pending: Cents,
    pub received_accepted: Cents,
    pub received_refused: Cents,
    pub ceded_accepted: Cents,
    pub ceded_pending: Cents,
    pub used_done: Cents,
    pub used_reserved: Cents,
    /// Moved to expired by the year-end close (R-F24-WINDOW-121/122): with it, received −
    /// ceded − used − expired reconciles to the residual.
    #[serde(default)]
    pub expired: Cents,
    /// Residual the holder may cede (to anyone, as far as the rules of this release go).
    pub residual_cedible: Cents,
    /// Residual usable only in F24 (split rate: R-SPLIT-NOCEDE; §5: R-CHAIN exhausted,
    /// R-ONCE, R-BANK-CLIENT; seized: R-SEIZE).
    pub residual_not_cedible: Cents,
    /// Of `residual_cedible`, what may go only to soggetti qualificati or to the holding
    /// bank's own clients (R-CHAIN, R-BANK-CLIENT), not to banks (R-ECO-2018), or only
    /// once (R-ONCE).
    #[serde(default)]
    pub residual_restricted: Cents,
}

/// F2: a holding the party may cede, with the maximum cedibile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CedibleHolding {
    pub rata: RataId,
    pub credit: i64,
    pub type_key: String,
    pub type_name: String,
    pub year: u16,
    pub codice_tributo: String,
    pub codice_univoco: String,
    pub protocol: String,
    pub tracciabile: bool,
    pub max_cedibile: Cents,
    /// R-PARTIAL: whether a lower amount than the maximum may be ceded.
    pub partial_allowed: bool,
    /// §5: to whom it may be ceded (R-CHAIN, R-BANK-CLIENT, R-ONCE, R-ECO-2018).
    pub cedibilita: crate::CedibilitaView,
}

/// F2 input: one row of a (bulk) cession.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CessionLine {
    pub rata: RataId,
    pub cessionario_cf: String,
    /// Defaults to the maximum cedibile.
    #[serde(default)]
    pub amount: Option<Cents>,
}

/// What F2's CF check shows next to a row (R-CF, R-CF-EXISTS), without revealing whose it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CfCheck {
    pub cf: String,
    pub valid: bool,
    pub registered: bool,
    pub message: Option<String>,
}

/// F3 filters (R-1000).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingFilter {
    #[serde(default)]
    pub type_key: Option<String>,
    #[serde(default)]
    pub year: Option<u16>,
    #[serde(default)]
    pub cedente_cf: Option<String>,
}

/// F3: a group of received operations, answered whole (R-ANSWER).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingGroup {
    pub type_key: String,
    pub type_name: String,
    pub year: u16,
    pub cedente: PartyRef,
    pub operations: usize,
    pub amount: Cents,
    /// R-WAIT5: the first day the whole group may be answered, when that is in the future.
    pub answerable_from: Option<NaiveDate>,
    /// R-SUSP: operations of the group suspended today, and the last day of the latest
    /// suspension; the group cannot be answered while any is suspended.
    #[serde(default)]
    pub suspended: usize,
    #[serde(default)]
    pub suspended_until: Option<NaiveDate>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerReceipt {
    pub operation_id: i64,
    pub accepted: bool,
    pub operations: usize,
    pub amount: Cents,
    pub replayed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CessionReceipt {
    pub operation_id: i64,
    pub at: DateTime<Utc>,
    pub transfers: Vec<TransferId>,
    pub amount: Cents,
    pub replayed: bool,
}

/// F4 states, as the platform names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementState {
    InAttesa,
    /// Awaiting an answer, but suspended by the Agency (R-SUSP, art. 122-bis DL 34/2020):
    /// nobody may answer it until its last day (`MovementRow::suspended_until`).
    Sospesa,
    Accettato,
    Rifiutato,
    /// A communication annulled by its sender (R-OPT-ANNUL): never answered by the holder.
    Annullato,
    /// Suspended and then voided by the operator (R-SUSP): as if it had never been sent.
    NonEffettuata,
    /// Accepted, then annulled by the operator on the parties' request (F9): the amount
    /// went back to the cedente.
    AccettazioneAnnullata,
}

impl MovementState {
    pub const fn label(self) -> &'static str {
        match self {
            MovementState::InAttesa => "In attesa di risposta cessionario",
            MovementState::Sospesa => "Sospesa dall'Agenzia",
            MovementState::Accettato => "Accettato",
            MovementState::Rifiutato => "Rifiutato",
            MovementState::Annullato => "Annullato dal mittente",
            MovementState::NonEffettuata => "Non effettuata (sospesa e annullata dall'Agenzia)",
            MovementState::AccettazioneAnnullata => {
                "Accettazione annullata su richiesta delle parti"
            }
        }
    }
}

impl MovementRow {
    /// The state as a person reads it, with a suspension's last day.
    pub fn state_text(&self) -> String {
        match self.suspended_until {
            Some(until) => format!(
                "{} fino al {}",
                self.state.label(),
                cessio_core::law::it_date(until)
            ),
            None => self.state.label().to_string(),
        }
    }
}

/// F4 filters. At least one besides `tracciabile` is required.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovementFilter {
    #[serde(default)]
    pub registered_from: Option<NaiveDate>,
    #[serde(default)]
    pub registered_to: Option<NaiveDate>,
    #[serde(default)]
    pub answered_from: Option<NaiveDate>,
    #[serde(default)]
    pub answered_to: Option<NaiveDate>,
    #[serde(default)]
    pub cedente_cf: Option<String>,
    #[serde(default)]
    pub cessionario_cf: Option<String>,
    #[serde(default)]
    pub state: Option<MovementState>,
    #[serde(default)]
    pub type_key: Option<String>,
    #[serde(default)]
    pub codice_tributo: Option<String>,
    #[serde(default)]
    pub year: Option<u16>,
    /// Protocol of the communication or codice identificativo univoco of the rata.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub tracciabile: Option<bool>,
    /// "Data di cessione": the option communication's day for a communication, the day
    /// the cession was registered for a cession (`MovementRow::ceded_on`).
    #[serde(default)]
    pub ceded_from: Option<NaiveDate>,
    #[serde(default)]
    pub ceded_to: Option<NaiveDate>,
    /// "Tipologia per cedibilità": the party's holding of the rata as F1/F2 classify it
    /// today (`MovementRow::cedibilita_class`).
    #[serde(default)]
    pub cedibilita: Option<crate::CedibilitaClass>,
}

impl MovementFilter {
    pub(crate) fn has_filter_besides_tracciabile(&self) -> bool {
        self.registered_from.is_some()
            || self.registered_to.is_some()
            || self.answered_from.is_some()
            || self.answered_to.is_some()
            || self
                .cedente_cf
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty())
            || self
                .cessionario_cf
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty())
            || self.state.is_some()
            || self.type_key.is_some()
            || self.codice_tributo.is_some()
            || self.year.is_some()
            || self.code.as_deref().is_some_and(|s| !s.trim().is_empty())
            || self.ceded_from.is_some()
            || self.ceded_to.is_some()
            || self.cedibilita.is_some()
    }
}

/// F4: one movement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovementRow {
    pub id: TransferId,
    /// The credit (option communication) the movement belongs to: what annulling refers to.
    pub credit: i64,
    pub rata: RataId,
    pub registered_at: DateTime<Utc>,
    pub kind: TransferKind,
    pub cedente: PartyRef,
    pub cessionario: PartyRef,
    pub type_key: String,
    /// The type's Italian name, as people read it (the catalogue's).
    #[serde(default)]
    pub type_name: String,
    pub codice_tributo: String,
    pub year: u16,
    pub amount: Cents,
    pub state: MovementState,
    /// The last day of the suspension of a movement in state `sospesa` (R-SUSP).
    #[serde(default)]
    pub suspended_until: Option<NaiveDate>,
    pub answered_at: Option<DateTime<Utc>>,
    pub protocol: String,
    pub codice_univoco: String,
    pub tracciabile: bool,
    /// The party's holding of the rata today, as F1/F2 classify it (§5, R-F24-WINDOW-121, R-SPLIT-NOCEDE...);
    /// "non detenuta" when the party holds none of it.
    pub cedibilita: String,
    /// The class behind `cedibilita`; `None` when the party holds none of the rata.
    #[serde(default)]
    pub cedibilita_class: Option<crate::CedibilitaClass>,
    /// "Data cessione": the option communication's day for a communication, the day the
    /// cession was registered (Rome) for a cession.
    pub ceded_on: NaiveDate,
}

fn is_awaiting_answer(e: &PartyEntry) -> bool {
    e.pending && e.answer.is_none()
}

/// The state of a cession or communication, as F4 shows it. `annulled`: the acceptances
/// the operator annulled on request.
pub(crate) fn state_of(
    e: &PartyEntry,
    annulled: &HashSet<TransferId>,
    suspended: &HashMap<TransferId, NaiveDate>,
) -> MovementState {
    match (e.pending, e.answer) {
        (false, _) => MovementState::Accettato,
        (true, None) if suspended.contains_key(&e.transfer) => MovementState::Sospesa,
        (true, None) => MovementState::InAttesa,
        (true, Some(a)) if a.accepted && annulled.contains(&e.transfer) => {
            MovementState::AccettazioneAnnullata
        }
        (true, Some(a)) if a.accepted => MovementState::Accettato,
        (true, Some(a)) if a.by.is_some() && a.by == e.party => MovementState::Annullato,
        (true, Some(a)) if a.by.is_some() => MovementState::Rifiutato,
        // Only the operator's void of a suspended cession answers for no party (R-SUSP).
        (true, Some(_)) => MovementState::NonEffettuata,
    }
}

impl App {
    fn type_name(&self, key: &str) -> String {
        self.catalogue
            .get(key)
            .map_or_else(|| key.to_string(), |t| t.name.clone())
    }

    fn regime(&self, key: &str) -> CessionRegime {
        self.catalogue
            .get(key)
            .map_or(CessionRegime::Art121, |t| t.cession_regime)
    }

    pub(crate) fn today(&self) -> NaiveDate {
        rome_date(self.now())
    }

    async fn party_map(&self, entries: &[PartyEntry]) -> Result<HashMap<PartyId, Party>, AppError> {
        parties_of(&*self.store, entries).await
    }

    // ----- F8 -----

    /// Registers an option communication (F8). The rate are derived by core; the fornitore
    /// or first cessionario then answers it in F3.
    pub async fn communicate_option(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        input: &OptionInput,
    ) -> Result<Credit, AppError> {
        self.communicate_option_declaring(p, key, pin, input, false)
            .await
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
    ) -> Result<Credit, AppError> {
        let key = crate::scoped_key(p, key)?;
        Ok(self
            .communicate(p, &key, Pin::Check(pin), input, no_tax_area)
            .await?
            .0)
    }

    /// The credit registered under `key` by an earlier identical request, if any.
    async fn communicated(
        &self,
        key: &IdempotencyKey,
        input: &OptionInput,
        no_tax_area: bool,
    ) -> Result<Option<Credit>, AppError> {
        let fp = option_fingerprint(input, no_tax_area);
        match self.replay_key(key, &fp).await? {
            Some(r) => Ok(Some(self.credit_of(&r).await?)),
            None => Ok(None),
        }
    }

    /// Registers one communication; the bool says whether it was already registered under
    /// this key (a retry).
    async fn communicate(
        &self,
        p: &Principal,
        key: &IdempotencyKey,
        pin: Pin<'_>,
        input: &OptionInput,
        no_tax_area: bool,
    ) -> Result<(Credit, bool), AppError> {
        if let Some(credit) = self.communicated(key, input, no_tax_area).await? {
            return Ok((credit, true));
        }
        let fp = option_fingerprint(input, no_tax_area);
        let beneficiary = self.party_by_cf(&input.beneficiary_cf).await?;
        if !p.is_operator() {
            // An intermediary for the beneficiary, or the beneficiary itself.
            self.authorize_act(p, beneficiary.id).await?;
            if let Pin::Check(pin) = pin {
                self.check_pin(p, pin).await?;
            }
        }
        let holder = self.party_by_cf(&input.holder_cf).await?;
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
        let sent = self.sent_amounts(beneficiary.id).await?;
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
            .submit(
                self.operation_with_key(
                    p,
                    key.clone(),
                    Some(beneficiary.id),
                    Command::IssueCredit(NewCredit {
                        type_key: input.type_key.clone(),
                        beneficiary: beneficiary.id,
                        holder: holder.id,
                        origin: match input.origin {
                            Origin::Cessione => CreditOrigin::Cessione,
                            Origin::Sconto => CreditOrigin::Sconto,
                        },
                        expense_year: input.expense_year,
                        communicated_on,
                        tracciabile: derived.tracciabile,
                        rate: derived
                            .rate
                            .iter()
                            .map(|r| NewRata {
                                year: r.year,
                                amount: r.amount,
                                codice_tributo: r.codice_tributo.clone(),
                            })
                            .collect(),
                        awaiting_answer: true,
                        beneficiary_no_tax_area: no_tax_area,
                    }),
                    fp,
                )?,
            )
            .await?;
        if !receipt.replayed
            && let Some(first) = receipt.transfers.first()
        {
            // F9 risk rules on every communication: the beneficiary is its cedente.
            let hits = self
                .risk_of(&beneficiary, &holder, total, None, &sent)
                .await?;
            self.record_risk(p, *first, beneficiary.id, holder.id, &hits)
                .await;
        }
        Ok((self.credit_of(&receipt).await?, receipt.replayed))
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
enum Pin<'a> {
    Check(Option<&'a str>),
    Checked,
}

/// The outcome of one row of a bulk file of communications.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub registered: usize,
    pub already_registered: usize,
    pub refused: usize,
    pub rows: Vec<ImportRow>,
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
        let mut rows: Vec<ImportRow> = parsed
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
            .collect();
        report.refused = rows.len();
        let total = parsed.rows.len();
        for (i, row) in parsed.rows.iter().enumerate() {
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
            // The row's own content (and the sender's reference) names it: a corrected file
            // sent again, or the same rows sent by another operator or from the command
            // line, find the communications already registered. Two identical rows without a
            // reference are one communication.
            // The declaration joins the name only when made, so that files imported before
            // the column existed keep theirs.
            let row_digest = if row.no_tax_area {
                fingerprint("import-row", None, &(&input, &row.reference, "no_tax_area"))
            } else {
                fingerprint("import-row", None, &(&input, &row.reference))
            };
            let key = IdempotencyKey::parse(&format!("import:{}", &row_digest[..48]))
                .map_err(|e| AppError::invalid("riferimento", e.to_string()))?;
            // The file's PIN was checked above; rows are registered on its strength.
            let outcome = self
                .communicate(p, &key, Pin::Checked, &input, row.no_tax_area)
                .await;
            let mut out = ImportRow {
                line: row.line,
                reference: row.reference.clone(),
                protocol: None,
                already_registered: false,
                code: None,
                message: None,
            };
            match outcome {
                Ok((credit, replayed)) => {
                    out.protocol = Some(credit.protocol);
                    out.already_registered = replayed;
                    if replayed {
                        report.already_registered += 1;
                    } else {
                        report.registered += 1;
                    }
                }
                Err(e) => {
                    report.refused += 1;
                    out.code = Some(e.code().to_string());
                    out.message = Some(e.to_string());
                }
            }
            rows.push(out);
            progress(i + 1, total);
        }
        rows.sort_by_key(|r| r.line);
        report.rows = rows;
        Ok(report)
    }
}

/// What a list of holdings' §5 states reads once per request: the registry of the parties
/// along the paths, and the party's F24 choices.
#[derive(Debug, Default)]
pub(crate) struct StatesContext {
    registry: crate::chain::Registry,
    choices: Option<HashMap<RataId, cessio_core::f24::F24Choice>>,
}

impl App {
    // ----- F1 -----

    /// F1 Monitoraggio: per type and reference year, as of now or the end of a past day.
    pub async fn monitoring(
        &self,
        p: &Principal,
        party: PartyId,
        as_of: Option<NaiveDate>,
    ) -> Result<Vec<MonitorRow>, AppError> {
        self.authorize_view(p, party).await?;
        let until = match as_of {
            Some(d) => Some(end_of_day(check_date("as_of", d)?)),
            None => None,
        };
        let totals = self.reads.monitor_totals(party, until).await?;
        let mut rows: BTreeMap<(String, u16), MonitorRow> = BTreeMap::new();
        let add = |c: &mut Cents, v: Cents| *c = c.checked_add(v).unwrap_or(Cents::MAX);
        for t in &totals {
            let row = rows
                .entry((t.type_key.clone(), t.year.get()))
                .or_insert_with(|| MonitorRow {
                    type_key: t.type_key.clone(),
                    type_name: self.type_name(&t.type_key),
                    year: t.year.get(),
                    ..MonitorRow::default()
                });
            let split = is_split_code(&self.catalogue, &t.codice_tributo);
            match (t.kind, t.state, t.received) {
                // R-SEIZE: a seized amount stays the holder's residual, not cedible; its
                // release makes it cedible again.
                (TransferKind::Seize, EntryState::Accepted, received) => {
                    let sub = |c: &mut Cents| *c = c.checked_sub(t.amount).unwrap_or(Cents::ZERO);
                    if split {
                        // Split rate are not cedible, seized or not.
                    } else if received {
                        sub(&mut row.residual_not_cedible);
                        add(&mut row.residual_cedible, t.amount);
                    } else {
                        sub(&mut row.residual_cedible);
                        add(&mut row.residual_not_cedible, t.amount);
                    }
                    continue;
                }
                // Annulment on request: the accepted cession is undone, as after a refusal.
                (TransferKind::Correction, EntryState::Accepted, received) => {
                    let residual = if split {
                        &mut row.residual_not_cedible
                    } else {
                        &mut row.residual_cedible
                    };
                    if received {
                        add(residual, t.amount);
                        row.ceded_accepted = row
                            .ceded_accepted
                            .checked_sub(t.amount)
                            .unwrap_or(Cents::ZERO);
                    } else {
                        *residual = residual.checked_sub(t.amount).unwrap_or(Cents::ZERO);
                        row.received_accepted = row
                            .received_accepted
                            .checked_sub(t.amount)
                            .unwrap_or(Cents::ZERO);
                    }
                    continue;
                }
                _ => {}
            }
            let residual = if split {
                &mut row.residual_not_cedible
            } else {
                &mut row.residual_cedible
            };
            if matches!(
                t.kind,
                TransferKind::Split | TransferKind::Reduce | TransferKind::Expire
            ) {
                // Not a cession: split rate (or an annulled split's amount) coming in, or
                // an amount leaving the holding for good (split, reduced, expired).
                if t.received {
                    add(residual, t.amount);
                } else {
                    *residual = residual.checked_sub(t.amount).unwrap_or(Cents::ZERO);
                    if t.kind == TransferKind::Expire {
                        add(&mut row.expired, t.amount);
                    }
                }
                continue;
            }
            if t.received {
                match t.state {
                    EntryState::Pending => add(&mut row.received_pending, t.amount),
                    EntryState::Accepted => {
                        add(&mut row.received_accepted, t.amount);
                        add(residual, t.amount);
                    }
                    EntryState::Refused => add(&mut row.received_refused, t.amount),
                    EntryState::Annulled => {}
                }
            } else if matches!(t.state, EntryState::Pending | EntryState::Accepted) {
                // A refused cession and an annulled communication moved nothing for good.
                let (pending, done) = match t.kind {
                    TransferKind::Use => (&mut row.used_reserved, &mut row.used_done),
                    _ => (&mut row.ceded_pending, &mut row.ceded_accepted),
                };
                add(
                    if t.state == EntryState::Pending {
                        pending
                    } else {
                        done
                    },
                    t.amount,
                );
                // The beneficiary's communication moves no holding of its own.
                if t.kind != TransferKind::Issue {
                    *residual = residual.checked_sub(t.amount).unwrap_or(Cents::ZERO);
                }
            }
        }
        if as_of.is_none() {
            // §5 today: what the rules leave not cedible, or cedible only to some.
            let catalogue = &self.catalogue;
            rows = self
                .with_holding_classes(p, party, move |view| {
                    let sums: Vec<_> = view.sums().collect();
                    // What is not cedible leaves the cedible residual first; what is cedible
                    // only to some is at most what remains of it.
                    for (type_key, year, codice_tributo, sum) in &sums {
                        let Some(row) = rows.get_mut(&(type_key.to_string(), *year)) else {
                            continue;
                        };
                        // Split rate are counted not cedible by their code already.
                        if !is_split_code(catalogue, codice_tributo) {
                            let moved = sum.not_cedible.min(row.residual_cedible);
                            row.residual_cedible = row
                                .residual_cedible
                                .checked_sub(moved)
                                .unwrap_or(Cents::ZERO);
                            add(&mut row.residual_not_cedible, moved);
                        }
                    }
                    for (type_key, year, _, sum) in &sums {
                        if let Some(row) = rows.get_mut(&(type_key.to_string(), *year)) {
                            let room = row
                                .residual_cedible
                                .checked_sub(row.residual_restricted)
                                .unwrap_or(Cents::ZERO);
                            add(&mut row.residual_restricted, sum.restricted.min(room));
                        }
                    }
                    rows
                })
                .await?;
        }
        Ok(rows.into_values().collect())
    }

    // ----- F2 -----

    /// F2: the holdings the party may cede, each with its maximum cedibile and its
    /// cedibilità (§5); holdings the rules leave not cedible are not listed.
    pub async fn cedible(
        &self,
        p: &Principal,
        party: PartyId,
    ) -> Result<Vec<CedibleHolding>, AppError> {
        let states = self.holding_states(p, party).await?;
        // R-F24-CHOICE: a tracciabile rata chosen for use in F24 is not cedible.
        let chosen = self.f24_chosen(party).await?;
        Ok(states
            .into_iter()
            .filter(|(h, _)| h.cedibilita.is_cedible())
            .filter(|(h, _)| !(h.tracciabile && chosen.contains(&h.rata)))
            .map(|(h, _)| h)
            .collect())
    }

    /// Every holding of the party with an available amount, with its §5 history and
    /// cedibilità today (also the not cedible ones, with the reason).
    pub(crate) async fn holding_states(
        &self,
        p: &Principal,
        party: PartyId,
    ) -> Result<Vec<(CedibleHolding, cessio_core::chain::RataHistory)>, AppError> {
        self.holding_states_of(p, party, None).await
    }

    /// [`Self::holding_states`] for the rate in `only` (all when `None`). A cession needs
    /// the §5 history of its own lines only, and replaying every holding of a bank with
    /// thousands of them would make each cession cost as much as its whole F2 list.
    pub(crate) async fn holding_states_of(
        &self,
        p: &Principal,
        party: PartyId,
        only: Option<&HashSet<RataId>>,
    ) -> Result<Vec<(CedibleHolding, cessio_core::chain::RataHistory)>, AppError> {
        self.authorize_view(p, party).await?;
        // A cession's lines are read by rata rather than as part of everything the party
        // holds.
        let only_rate: Vec<RataId> = only.map_or_else(Vec::new, |o| {
            let mut v: Vec<RataId> = o.iter().copied().collect();
            v.sort_unstable();
            v
        });
        if only.is_some() && only_rate.is_empty() {
            return Ok(Vec::new());
        }
        let holdings = match only {
            Some(_) => self.store.holdings_in(party, &only_rate).await?,
            None => self.store.holdings(party).await?,
        };
        self.states_of_holdings(party, &holdings, only_rate, &mut StatesContext::default())
            .await
    }

    /// The §5 states of `holdings`, the party's accounts of the rate in `rate` (all of its
    /// holdings when `rate` is empty). The caller has authorised the view. `ctx` carries
    /// what is read once per request (the registry of the parties in the paths, the party's
    /// F24 choices) across calls: F1 goes through a bank's holdings in chunks, so that memory
    /// holds one chunk, not all of them.
    pub(crate) async fn states_of_holdings(
        &self,
        party: PartyId,
        holdings: &[cessio_core::ledger::Account],
        rate: Vec<RataId>,
        ctx: &mut StatesContext,
    ) -> Result<Vec<(CedibleHolding, cessio_core::chain::RataHistory)>, AppError> {
        let entries = self
            .store
            .find_entries(&EntryQuery {
                role: EntryRole::Received,
                cessions_only: true,
                rate,
                ..EntryQuery::of(party)
            })
            .await?;
        let info: HashMap<RataId, &PartyEntry> = entries
            .iter()
            .filter(|e| e.counterparty == Some(party))
            .map(|e| (e.rata, e))
            .collect();
        let today = self.today();
        let once_in_force = self.law.chain_on(today).is_some_and(|r| r.once);
        // Each holding's F24 choice (R-F24-CHOICE) feeds its cedibilità.
        if ctx.choices.is_none() {
            ctx.choices = Some(
                self.store
                    .f24_choices(party)
                    .await?
                    .into_iter()
                    .map(|c| (c.rata, c.choice))
                    .collect(),
            );
        }
        let choices = ctx.choices.take().unwrap_or_default();
        let candidates: Vec<(RataId, Cents, &PartyEntry)> = holdings
            .iter()
            .filter_map(|h| {
                let available = h.balance.available().unwrap_or(Cents::ZERO);
                let e = info.get(&h.rata)?;
                available.is_positive().then_some((h.rata, available, *e))
            })
            .collect();
        let mut out = Vec::with_capacity(candidates.len());
        let registry = &mut ctx.registry;
        // Histories come in batches: a round trip per batch rather than per holding, and
        // memory bounded by a batch.
        for batch in candidates.chunks(1_000) {
            let rate: Vec<RataId> = batch.iter().map(|(rata, ..)| *rata).collect();
            let mut histories: HashMap<RataId, Vec<cessio_store::engine::TransferRow>> =
                HashMap::new();
            for row in self.store.histories(&rate).await? {
                histories.entry(row.rata).or_default().push(row);
            }
            for &(rata, available, e) in batch {
                // Only the 2018 ecobonus regime asks what the beneficiary declared, only
                // art. 122 credits when the option was communicated, and art. 121 credits
                // how it was made only while DL 4/2022's one cession is in force (R-ONCE).
                let regime = self.regime(&e.type_key);
                let eco2018 = regime == CessionRegime::Eco2018;
                let art122 = self.usage_window(&e.type_key) == Some(UsageWindow::YearOfCession);
                let once = regime == CessionRegime::Art121 && once_in_force;
                let credit = if eco2018 || art122 || once {
                    self.store.credit(e.credit).await?
                } else {
                    None
                };
                let facts = crate::chain::RataFacts {
                    type_key: e.type_key.clone(),
                    year: e.year,
                    beneficiary_no_tax_area: eco2018
                        && credit.as_ref().is_some_and(|c| c.beneficiary_no_tax_area),
                    tracciabile: e.tracciabile,
                    split_rata: is_split_code(&self.catalogue, &e.codice_tributo),
                    communicated_on: credit.as_ref().map(|c| c.communicated_on),
                    option_cessione_on: credit
                        .as_ref()
                        .filter(|c| once && c.origin == cessio_store::CreditOrigin::Cessione)
                        .map(|c| c.communicated_on),
                };
                let ledger = crate::chain::RataLedger::from_history(
                    histories.get(&rata).map_or(&[][..], Vec::as_slice),
                );
                let mut ids = ledger.parties();
                ids.push(party);
                self.extend_registry(registry, ids).await?;
                let mut history = self.holding_history(&ledger, &facts, registry, party, today);
                if let Some(choice) = choices.get(&rata) {
                    history.f24_choice = *choice;
                }
                let cedibilita = cessio_core::chain::cedibilita(&history, today, &self.law);
                out.push((
                    CedibleHolding {
                        rata,
                        credit: e.credit,
                        type_key: e.type_key.clone(),
                        type_name: self.type_name(&e.type_key),
                        year: e.year.get(),
                        codice_tributo: e.codice_tributo.clone(),
                        codice_univoco: e.codice_univoco.clone(),
                        protocol: e.protocol.clone(),
                        tracciabile: e.tracciabile,
                        max_cedibile: available,
                        partial_allowed: rules::partial_cession_allowed(
                            e.tracciabile,
                            self.regime(&e.type_key),
                        ),
                        cedibilita: crate::CedibilitaView::of(&cedibilita),
                    },
                    history,
                ));
            }
        }
        ctx.choices = Some(choices);
        Ok(out)
    }

    /// R-CF and R-CF-EXISTS for a form row. Says whether the code is valid and registered;
    /// never whose it is.
    pub async fn check_cf(&self, cf: &str) -> Result<CfCheck, AppError> {
        match self.party_by_cf(cf).await {
            Ok(party) => Ok(CfCheck {
                cf: party.cf.as_str().to_string(),
                valid: true,
                registered: true,
                message: None,
            }),
            Err(e @ AppError::Cf(_)) => Ok(CfCheck {
                cf: cf.to_string(),
                valid: false,
                registered: false,
                message: Some(e.to_string()),
            }),
            Err(e @ AppError::CfUnknown { .. }) => Ok(CfCheck {
                cf: cf.to_string(),
                valid: true,
                registered: false,
                message: Some(e.to_string()),
            }),
            Err(e) => Err(e),
        }
    }

    /// F2: cede one or more holdings, all or none. Needs the PIN unless signed in with SPID,
    /// and the cedente's consent to show its name to the cessionario (`disclose_name`),
    /// without which the cession cannot proceed.
    pub async fn cede(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        lines: &[CessionLine],
        disclose_name: bool,
    ) -> Result<CessionReceipt, AppError> {
        self.authorize_act(p, party).await?;
        let fp = fingerprint("cede", Some(party), &(lines, disclose_name));
        if let Some(r) = self.replay(p, key, &fp).await? {
            return Ok(cession_receipt(r));
        }
        if lines.is_empty() || lines.len() > 1_000 {
            return Err(AppError::invalid("lines", "da 1 a 1.000 righe"));
        }
        if !disclose_name {
            return Err(AppError::name_consent_required());
        }
        self.check_pin(p, pin).await?;
        let cedible = self.cedible_map(p, party, lines).await?;
        let mut seen = std::collections::HashSet::new();
        let mut moves = Vec::with_capacity(lines.len());
        let mut total = Cents::ZERO;
        let cedente = self
            .store
            .party(party)
            .await?
            .ok_or(AppError::NotFound { what: "Soggetto" })?;
        let sent = self.sent_amounts(party).await?;
        let mut risks = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let (to, amount) = self
                .check_cession_line(party, &cedible, &mut seen, line)
                .await
                .map_err(|e| match e {
                    AppError::Invalid { field, reason } => AppError::Invalid {
                        field: format!("lines[{i}].{field}"),
                        reason,
                    },
                    other => other,
                })?;
            total = total.checked_add(amount).unwrap_or(Cents::MAX);
            if let Some(cessionario) = self.store.party(to).await? {
                let hits = self
                    .risk_of(&cedente, &cessionario, amount, Some(line.rata), &sent)
                    .await?;
                risks.push((i, to, hits));
            }
            moves.push(TransferRequest::Move {
                rata: line.rata,
                from: AccountRef::Holder(party),
                to: AccountRef::Holder(to),
                amount,
                kind: TransferKind::Cession,
                pending: true,
                disclose: disclose_name,
            });
        }
        let receipt = self
            .submit(self.operation(p, key, Some(party), Command::Transfer(moves), fp)?)
            .await?;
        // A retry racing its first request can reach the store second and get the first
        // request's receipt back (replayed), computed from what was cedible then.
        debug_assert!(receipt.replayed || receipt.amount == total);
        if !receipt.replayed {
            // F9 risk rules on every communication: hits recorded, suspension if configured.
            for (i, to, hits) in &risks {
                if let Some(t) = receipt.transfers.get(*i) {
                    self.record_risk(p, *t, party, *to, hits).await;
                }
            }
        }
        Ok(cession_receipt(receipt))
    }

    /// The party's holdings of the lines' rate with an available amount, by rata, with
    /// their §5 history.
    async fn cedible_map(
        &self,
        p: &Principal,
        party: PartyId,
        lines: &[CessionLine],
    ) -> Result<CedibleMap, AppError> {
        let rate: HashSet<RataId> = lines.iter().map(|l| l.rata).collect();
        Ok(self
            .holding_states_of(p, party, Some(&rate))
            .await?
            .into_iter()
            .map(|(h, history)| (h.rata, (h, history)))
            .collect())
    }

    /// Why a rata is not among the party's cedible holdings: a rata of a ten-instalment
    /// split is named by its rule (R-SPLIT-NOCEDE); anything else is simply not held.
    async fn why_not_held(&self, party: PartyId, rata: RataId) -> AppError {
        let infos = match self
            .store
            .holding_infos(&cessio_store::HoldingQuery::of_rata(party, rata))
            .await
        {
            Ok(infos) => infos,
            Err(e) => return e.into(),
        };
        let held = infos.iter().find(|i| i.rata.id == rata);
        if held.is_some_and(|i| {
            i.account.balance.debits_pending.is_positive()
                && !i
                    .account
                    .balance
                    .available()
                    .unwrap_or(Cents::ZERO)
                    .is_positive()
        }) {
            return AppError::Rule {
                rule: "R-PENDING-OUT",
                code: "r_pending_out",
                detail: "La rata è già impegnata in una cessione in attesa di risposta o in un F24 prenotato: si potrà cedere di nuovo solo se la cessione sarà rifiutata o l'F24 scartato (R-PENDING-OUT)".into(),
            };
        }
        let split = held.is_some_and(|i| is_split_code(&self.catalogue, &i.rata.codice_tributo));
        if split {
            return AppError::Rule {
                rule: "R-SPLIT-NOCEDE",
                code: "r_split_nocede",
                detail: "Le rate dell'ulteriore rateazione (codici 7771, 7772, 7773) non si possono cedere: si usano solo in F24 (R-SPLIT-NOCEDE)".into(),
            };
        }
        AppError::invalid(
            "rata",
            "rata non detenuta o non disponibile per questo soggetto",
        )
    }

    /// The rules one line of a cession must pass (R-CF-EXISTS, R-PA, §5: R-CHAIN,
    /// R-BANK-CLIENT, R-ONCE, R-ECO-2018; R-PARTIAL, the amount available), shared by
    /// `cede` and its preview. Returns the cessionario and the amount.
    async fn check_cession_line(
        &self,
        party: PartyId,
        cedible: &CedibleMap,
        seen: &mut std::collections::HashSet<RataId>,
        line: &CessionLine,
    ) -> Result<(PartyId, Cents), AppError> {
        if !seen.insert(line.rata) {
            return Err(AppError::invalid(
                "rata",
                "la stessa rata compare due volte",
            ));
        }
        let Some((holding, history)) = cedible.get(&line.rata) else {
            return Err(self.why_not_held(party, line.rata).await);
        };
        let to = self.party_by_cf(&line.cessionario_cf).await?;
        if to.id == party {
            return Err(AppError::invalid(
                "cessionario_cf",
                "il cessionario deve essere diverso dal cedente",
            ));
        }
        check_may_acquire(&to)?;
        self.check_chain(party, history, &to).await?;
        let amount = match line.amount {
            Some(a) => a.ensure_positive_amount()?,
            None => holding.max_cedibile,
        };
        if !holding.partial_allowed && amount != holding.max_cedibile {
            return Err(AppError::r_partial(amount, holding.max_cedibile));
        }
        if amount > holding.max_cedibile {
            return Err(AppError::Store(StoreError::Ledger(
                cessio_core::ledger::LedgerError::InsufficientAvailable {
                    account: 0,
                    requested: amount,
                    available: holding.max_cedibile,
                },
            )));
        }
        Ok((to.id, amount))
    }

    /// F2's summary before confirming: each line checked as `cede` would check it now,
    /// without the PIN and without changing anything. `None` for a line that passes.
    pub async fn preview_cession(
        &self,
        p: &Principal,
        party: PartyId,
        lines: &[CessionLine],
    ) -> Result<Vec<Option<AppError>>, AppError> {
        self.authorize_act(p, party).await?;
        if lines.is_empty() || lines.len() > 1_000 {
            return Err(AppError::invalid("lines", "da 1 a 1.000 righe"));
        }
        let cedible = self.cedible_map(p, party, lines).await?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(lines.len());
        for line in lines {
            out.push(
                self.check_cession_line(party, &cedible, &mut seen, line)
                    .await
                    .err(),
            );
        }
        Ok(out)
    }

    // ----- F3 -----

    /// What the party must still answer, selected in the store by type, year and cedente.
    async fn awaiting(
        &self,
        party: PartyId,
        filter: &IncomingFilter,
    ) -> Result<Vec<PartyEntry>, AppError> {
        Ok(match self.awaiting_query(party, filter).await? {
            Some(query) => self.store.find_entries(&query).await?,
            None => Vec::new(),
        })
    }

    /// What F3 selects in the store; `None` when the filter names a cedente no party is.
    async fn awaiting_query(
        &self,
        party: PartyId,
        filter: &IncomingFilter,
    ) -> Result<Option<EntryQuery>, AppError> {
        let cedente = match filter.cedente_cf.as_deref().map(str::trim) {
            Some(cf) if !cf.is_empty() => match self.party_by_cf(cf).await {
                Ok(p) => Some(p.id),
                Err(AppError::CfUnknown { .. }) => return Ok(None),
                Err(e) => return Err(e),
            },
            _ => None,
        };
        Ok(Some(EntryQuery {
            role: EntryRole::Received,
            awaiting_answer: true,
            cessions_only: true,
            counterparty: cedente,
            type_key: filter.type_key.clone(),
            year: filter.year,
            ..EntryQuery::of(party)
        }))
    }

    /// The entries that `awaiting` selected, checked once more in memory: the store's
    /// selection is an optimisation, this is the rule.
    fn incoming_entries<'e>(
        &self,
        entries: &'e [PartyEntry],
        party: PartyId,
        filter: &IncomingFilter,
    ) -> Vec<&'e PartyEntry> {
        entries
            .iter()
            .filter(|e| {
                e.counterparty == Some(party)
                    && is_awaiting_answer(e)
                    && matches!(e.kind, TransferKind::Issue | TransferKind::Cession)
                    && filter.type_key.as_ref().is_none_or(|t| *t == e.type_key)
                    && filter.year.is_none_or(|y| y == e.year.get())
            })
            .collect()
    }

    fn earliest_answer(&self, e: &PartyEntry) -> Option<NaiveDate> {
        rules::wait5_applies(e.kind == TransferKind::Issue, e.tracciabile)
            .then(|| rules::wait5_earliest_answer(rome_date(e.at)))
    }

    /// F3: what the party received and must answer, grouped by type, year and cedente.
    pub async fn incoming(
        &self,
        p: &Principal,
        party: PartyId,
        filter: &IncomingFilter,
    ) -> Result<Vec<IncomingGroup>, AppError> {
        self.authorize_view(p, party).await?;
        let Some(query) = self.awaiting_query(party, filter).await? else {
            return Ok(Vec::new());
        };
        // R-1000 from the database's count: a bank with 100,000 pending is told how many
        // without all of them being read first. The store applies F3's whole filter, so
        // the count is the list's.
        let found = self.store.count_entries(&query, usize::MAX).await?;
        if found > rules::ACCEPTANCE_LIST_LIMIT {
            return Err(AppError::FiltersRequired {
                limit: rules::ACCEPTANCE_LIST_LIMIT,
                found,
            });
        }
        let entries = self.store.find_entries(&query).await?;
        let matching = self.incoming_entries(&entries, party, filter);
        // More may have arrived between the count and the read.
        if matching.len() > rules::ACCEPTANCE_LIST_LIMIT {
            return Err(AppError::FiltersRequired {
                limit: rules::ACCEPTANCE_LIST_LIMIT,
                found: matching.len(),
            });
        }
        let parties = self.party_map(&entries).await?;
        let today = self.today();
        let transfers: Vec<TransferId> = matching.iter().map(|e| e.transfer).collect();
        let suspended = self.suspended_until(&transfers).await?;
        let mut groups: BTreeMap<(String, u16, String), IncomingGroup> = BTreeMap::new();
        for e in matching {
            let cedente = party_ref(&parties, e.party, e.disclose);
            let g = groups
                .entry((e.type_key.clone(), e.year.get(), cedente.cf.clone()))
                .or_insert_with(|| IncomingGroup {
                    type_key: e.type_key.clone(),
                    type_name: self.type_name(&e.type_key),
                    year: e.year.get(),
                    cedente: cedente.clone(),
                    operations: 0,
                    amount: Cents::ZERO,
                    answerable_from: None,
                    suspended: 0,
                    suspended_until: None,
                });
            if let Some(until) = suspended.get(&e.transfer) {
                g.suspended += 1;
                g.suspended_until = Some(g.suspended_until.map_or(*until, |x| x.max(*until)));
            }
            g.operations += 1;
            g.amount = g.amount.checked_add(e.amount).unwrap_or(Cents::MAX);
            if let Some(d) = self.earliest_answer(e).filter(|d| *d > today) {
                g.answerable_from = Some(g.answerable_from.map_or(d, |x| x.max(d)));
            }
        }
        Ok(groups.into_values().collect())
    }

    /// F3: accept or refuse a whole group, or everything the filter selects ("Accetta
    /// tutti" with no filter). Irreversible and whole (R-ANSWER).
    pub async fn answer(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        selection: &IncomingFilter,
        accept: bool,
    ) -> Result<AnswerReceipt, AppError> {
        self.authorize_act(p, party).await?;
        let fp = fingerprint("answer", Some(party), &(selection, accept));
        if let Some(r) = self.replay(p, key, &fp).await? {
            return Ok(answer_receipt(&r, accept));
        }
        self.check_pin(p, pin).await?;
        let entries = self.awaiting(party, selection).await?;
        let matching = self.incoming_entries(&entries, party, selection);
        if matching.is_empty() {
            return Err(AppError::Conflict {
                reason: "non ci sono operazioni in attesa di risposta con questi criteri".into(),
            });
        }
        if matching.len() > cessio_store::Operation::MAX_MOVEMENTS {
            return Err(AppError::invalid(
                "filtri",
                format!(
                    "una risposta comprende al massimo {} operazioni ({} selezionate): rispondere per tipo, anno o cedente",
                    cessio_store::Operation::MAX_MOVEMENTS,
                    matching.len()
                ),
            ));
        }
        let today = self.today();
        let transfers: Vec<TransferId> = matching.iter().map(|e| e.transfer).collect();
        if let Some(until) = self.suspended_until(&transfers).await?.into_values().max() {
            return Err(App::r_susp_answer(until));
        }
        if let Some(latest) = matching
            .iter()
            .filter_map(|e| self.earliest_answer(e))
            .filter(|d| *d > today)
            .max()
        {
            return Err(AppError::r_wait5(latest));
        }
        self.answer_entries(p, key, party, &matching, accept, fp)
            .await
    }

    async fn answer_entries(
        &self,
        p: &Principal,
        key: &str,
        party: PartyId,
        entries: &[&PartyEntry],
        accept: bool,
        fp: String,
    ) -> Result<AnswerReceipt, AppError> {
        let moves: Vec<TransferRequest> = entries
            .iter()
            .map(|e| {
                if accept {
                    TransferRequest::Post {
                        pending: e.transfer,
                    }
                } else {
                    TransferRequest::Void {
                        pending: e.transfer,
                    }
                }
            })
            .collect();
        let amount = entries.iter().fold(Cents::ZERO, |a, e| {
            a.checked_add(e.amount).unwrap_or(Cents::MAX)
        });
        let receipt = self
            .submit(self.operation(p, key, Some(party), Command::Transfer(moves), fp)?)
            .await
            .map_err(|e| match e {
                AppError::Store(StoreError::Ledger(
                    cessio_core::ledger::LedgerError::PendingAlreadyResolved { .. },
                )) => AppError::Conflict {
                    reason: "una delle operazioni è stata nel frattempo accettata o rifiutata: ricaricare l'elenco".into(),
                },
                other => other,
            })?;
        // A retry racing its first request gets the first request's receipt from the
        // store (replayed): its amount is of the operations selected then.
        debug_assert!(receipt.replayed || receipt.amount == amount);
        Ok(answer_receipt(&receipt, accept))
    }
}

fn answer_receipt(r: &cessio_store::Receipt, accepted: bool) -> AnswerReceipt {
    AnswerReceipt {
        operation_id: r.operation_id,
        accepted,
        operations: r.transfers.len(),
        amount: r.amount,
        replayed: r.replayed,
    }
}

fn cession_receipt(r: cessio_store::Receipt) -> CessionReceipt {
    CessionReceipt {
        operation_id: r.operation_id,
        at: r.at,
        transfers: r.transfers,
        amount: r.amount,
        replayed: r.replayed,
    }
}

/// Dates a person may ask about: the register's years, so that date arithmetic cannot
/// overflow on a typo like year 262142.
pub(crate) fn check_date(field: &str, d: NaiveDate) -> Result<NaiveDate, AppError> {
    use chrono::Datelike;
    if (2000..=2100).contains(&d.year()) {
        Ok(d)
    } else {
        Err(AppError::invalid(
            field,
            "la data deve essere tra il 2000 e il 2100",
        ))
    }
}

/// The last instant of a Rome day.
pub(crate) fn end_of_day(d: NaiveDate) -> DateTime<Utc> {
    let next = d.succ_opt().unwrap_or(d);
    rome_start_of_day(next) - chrono::Duration::microseconds(1)
}

/// R-PA: public administrations may not acquire credits (DL 11/2023 art. 1).
fn check_may_acquire(party: &Party) -> Result<(), AppError> {
    if party.kind == PartyKind::PublicAdministration {
        return Err(AppError::Rule {
            rule: "R-PA",
            code: "r_pa",
            detail: format!(
                "{} è una pubblica amministrazione e non può acquisire crediti (DL 11/2023 art. 1) (R-PA)",
                party.cf
            ),
        });
    }
    Ok(())
}

/// The parties a list of movements names, by id: one read for the whole list.
pub(crate) async fn parties_of(
    store: &dyn cessio_store::Store,
    entries: &[PartyEntry],
) -> Result<HashMap<PartyId, Party>, AppError> {
    let mut ids: Vec<PartyId> = entries
        .iter()
        .flat_map(|e| [e.party, e.counterparty])
        .flatten()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(store
        .parties(&ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect())
}

/// A party as a list shows it; the name only where it may be shown.
pub(crate) fn party_ref(
    parties: &HashMap<PartyId, Party>,
    id: Option<PartyId>,
    show_name: bool,
) -> PartyRef {
    match id.and_then(|i| parties.get(&i)) {
        Some(p) => PartyRef {
            cf: p.cf.as_str().to_string(),
            name: show_name.then(|| p.name.clone()),
        },
        None => PartyRef {
            cf: String::new(),
            name: None,
        },
    }
}
