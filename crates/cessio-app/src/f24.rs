//! F5 Gestione F24: the F24 choice of tracciabili rate (R-F24-CHOICE), what a party may use
//! today, the two-phase F24 (reserve, then confirm or discard), the operator's record of
//! overdue debts (R-BAN-100K/1500) and the year-end close (R-F24-WINDOW-121/122).
//!
//! The rules are core's (`cessio_core::f24`); this module gathers the holdings they look
//! at, turns a checked F24 into ledger movements (holder → used, pending until the F24's
//! outcome) and maps core's refusals to [`AppError::Rule`]. The ledger refuses any
//! movement beyond what is available, so two F24 racing for the same amount cannot both
//! reserve it.

use std::collections::{BTreeMap, HashMap, HashSet};

use cessio_core::catalogue::{CessionRegime, UsageWindow};
use cessio_core::debt::DebtPosition;
use cessio_core::f24::{
    self, CreditNature, F24Availability, F24Choice, F24Error, F24Line, F24Rejected, HoldingUse,
    LineOutcome, UsageDates,
};
use cessio_core::f24_debits::{
    CreditsOffset, DebitLine, DebitLineError, F24Section, MAX_DEBIT_LINES, check_debits,
    parse_debit,
};
use cessio_core::law::LawTable;
use cessio_core::ledger::{
    AccountKind, LedgerError, PartyId, Phase, RataId, TransferId, TransferKind,
};
use cessio_core::money::Cents;
use cessio_core::time::{RefYear, rome_date, rome_start_of_day};
use cessio_store::{
    AccountRef, Command, HoldingInfo, HoldingQuery, IdempotencyKey, Operation, Receipt, StoreError,
    TransferRequest, WriterCheck,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{App, AppError, Principal, fingerprint};

/// The law's dated rules (`catalogue/rules.toml`), loaded once: they are data compiled
/// into the binary, like the builtin catalogue.
pub(crate) fn law() -> Result<&'static LawTable, AppError> {
    LawTable::builtin_shared().map_err(|e| AppError::Conflict {
        reason: format!("tabella delle regole di legge non valida: {e}"),
    })
}

/// The debit lines as the core reads them; a malformed one is refused naming its place.
fn parse_debits(debits: &[F24DebitInput]) -> Result<Vec<DebitLine>, AppError> {
    if debits.len() > MAX_DEBIT_LINES {
        return Err(AppError::invalid(
            "debits",
            DebitLineError::TooMany.to_string(),
        ));
    }
    debits
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let section = F24Section::parse(&d.section).ok_or_else(|| {
                AppError::invalid(
                    format!("debits[{i}].section"),
                    "sezione non valida: erario, inps, regioni, imu_locali oppure inail",
                )
            })?;
            parse_debit(section, &d.code, d.amount).map_err(|e| {
                let field = match e {
                    DebitLineError::NotPositive(_) => "amount",
                    _ => "code",
                };
                AppError::invalid(format!("debits[{i}].{field}"), e.to_string())
            })
        })
        .collect()
}

/// A refusal of core's F5 rules, naming the rule and its figures.
pub(crate) fn f24_error(e: &F24Error) -> AppError {
    AppError::Rule {
        rule: e.rule(),
        code: e.code(),
        detail: e.to_string(),
    }
}

/// A whole F24 refused: the first reason as the code, every refused line in the detail.
fn f24_rejected(r: &F24Rejected) -> AppError {
    let Some(first) = r.first_error() else {
        return AppError::Conflict {
            reason: r.to_string(),
        };
    };
    let mut detail = String::from("Modello F24 scartato per intero, nulla è stato prenotato");
    if let Some(ban) = &r.ban {
        detail.push_str(&format!(": {ban}"));
    }
    for (i, line) in r.lines.iter().enumerate() {
        if let LineOutcome::Refused(e) = line {
            detail.push_str(&format!("; riga {}: {e}", i + 1));
        }
    }
    AppError::Rule {
        rule: first.rule(),
        code: first.code(),
        detail,
    }
}

/// One line of an F24, as the user gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct F24LineInput {
    pub codice_tributo: String,
    pub year: u16,
    pub amount: Cents,
}

/// An F24 to reserve: the payment date, the credits it offsets and the debits it pays.
#[derive(Clone, Copy, Debug)]
pub struct F24Form<'a> {
    pub payment_date: NaiveDate,
    pub lines: &'a [F24LineInput],
    /// May be empty, except where R-BAN-BANK-INPS needs them.
    pub debits: &'a [F24DebitInput],
}

/// One debit line of an F24 (what it pays), as the user gives it: `section` is one of
/// `erario`, `inps`, `regioni`, `imu_locali`, `inail`; `code` the codice tributo or causale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct F24DebitInput {
    pub section: String,
    pub code: String,
    pub amount: Cents,
}

/// F5: what the party holds for one (codice tributo, anno), and how much of it is usable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct F24AvailabilityRow {
    pub codice_tributo: String,
    pub year: u16,
    pub type_key: String,
    pub type_name: String,
    /// Usable in an F24 paid today.
    pub usable: Cents,
    /// Reserved by F24 forms being processed.
    pub reserved: Cents,
    /// Ceded and awaiting the cessionario's answer (R-PENDING-OUT): neither usable nor
    /// reserved by an F24, back in `usable` if refused.
    #[serde(default)]
    pub pending_in_cession: Cents,
    /// Tracciabili amounts that need the F24 choice before use (R-F24-CHOICE).
    pub awaiting_choice: Cents,
    /// Amounts of a future year (R-F24-FUTURE), usable from `usable_from`.
    pub not_yet_usable: Cents,
    pub usable_from: Option<NaiveDate>,
    /// The last day of use of the usable amount, when it has one.
    pub last_day: Option<NaiveDate>,
    /// Amounts whose window has ended and that the year-end close will move to expired.
    pub expired: Cents,
}

/// The F24 choice of one holding, as F5 lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChoiceRow {
    pub rata: RataId,
    pub codice_tributo: String,
    pub year: u16,
    pub type_key: String,
    pub codice_univoco: String,
    pub tracciabile: bool,
    pub available: Cents,
    pub choice: F24Choice,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChoiceReceipt {
    pub operation_id: i64,
    pub rata: RataId,
    pub choice: F24Choice,
    pub replayed: bool,
}

/// How much of one F24 line was taken from one holding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct F24Take {
    pub rata: RataId,
    pub amount: Cents,
    pub transfer: TransferId,
}

/// The outcome of one accepted F24 line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct F24LineOutcome {
    pub codice_tributo: String,
    pub year: u16,
    pub amount: Cents,
}

/// A reserved F24 (prenotato). `reservation` is what confirm and discard name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct F24Reservation {
    pub reservation: i64,
    pub at: DateTime<Utc>,
    pub payment_date: NaiveDate,
    pub amount: Cents,
    pub lines: Vec<F24LineOutcome>,
    /// The debits the F24 pays, as declared (R-F24-BALANCE, R-BAN-BANK-INPS); empty when
    /// none were named.
    #[serde(default)]
    pub debits: Vec<DebitLine>,
    /// How much is taken from each rata, with the movement that reserves it.
    pub takes: Vec<F24Take>,
    pub replayed: bool,
}

/// The end of a reservation: used (confirmed) or released (discarded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct F24Outcome {
    pub reservation: i64,
    pub operation_id: i64,
    pub confirmed: bool,
    pub amount: Cents,
    pub replayed: bool,
}

/// The operator's receipt for a recorded debt position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DebtPositionReceipt {
    pub operation_id: i64,
    pub counted_for_ban_100k: Cents,
    pub counted_erariali: Cents,
    pub replayed: bool,
}

/// What the year-end close did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CloseYearReport {
    pub year: u16,
    /// Holdings whose unused amount expired in this run.
    pub holdings: usize,
    pub amount: Cents,
    pub operations: Vec<i64>,
}

/// The holdings each (codice tributo, anno) of an F24 draws from, with what is free.
type Sources = BTreeMap<(String, RefYear), Vec<(RataId, Cents)>>;

/// Rows per page of the year-end scan, and movements per operation (the store's bound).
const CLOSE_PAGE: usize = 5_000;

/// A holding as F5 looks at it.
struct Held {
    info: HoldingInfo,
    available: Cents,
    reserved: Cents,
    dates: UsageDates,
    choice: F24Choice,
    needs_choice: bool,
}

/// The cession whose year bounds the use of an art. 122 credit (R-F24-WINDOW-122): the
/// beneficiary's, made by the option communication, for every holder. The first
/// cessionario (the landlord named by the tenant) is bound like any later one, and a later
/// cession does not move the date (seed S0: «entro il 31 dicembre dell'anno in cui è
/// avvenuta la cessione, anche in caso di successiva cessione»; art. 122 c.3 DL 34/2020).
/// Other windows keep the day the holding was received.
pub(crate) fn first_cession_day(
    window: UsageWindow,
    communicated_on: NaiveDate,
    received_on: Option<NaiveDate>,
) -> Option<NaiveDate> {
    match window {
        UsageWindow::YearOfCession => Some(communicated_on),
        _ => received_on,
    }
}

impl App {
    /// F6: whether the residual of an expired holding may still be split (the 2022
    /// Superbonus rata in 2023, `[[split_expired_rata]]`): the year-end close leaves it
    /// in the holding, neither usable nor cedible, until its window has ended.
    fn still_splittable(&self, h: &HoldingInfo, now: DateTime<Utc>) -> bool {
        let Some(ty) = self.catalogue.get(&h.type_key) else {
            return false;
        };
        ty.split_eligible(&h.rata.codice_tributo, h.communicated_on, h.rata.year)
            && self
                .law
                .expired_rata_still_splittable(h.rata.year.get(), rome_date(now))
    }

    /// The usage window of a holding (R-F24-WINDOW-121/122, R-F24-FUTURE).
    pub(crate) fn usage_dates_of(&self, h: &HoldingInfo) -> UsageDates {
        let window = self
            .catalogue
            .get(&h.type_key)
            .map_or(UsageWindow::RefYear, |t| t.usage_window);
        f24::usage_dates(&HoldingUse {
            window,
            ref_year: h.rata.year,
            received_by_cession_on: first_cession_day(
                window,
                h.communicated_on,
                h.received_by_cession_at.map(rome_date),
            ),
            seized_days: 0,
            use_until: self.law.use_deadline(&h.type_key).map(|d| d.last_day),
        })
    }

    /// Whether a holding needs the F24 choice before use: tracciabili rate, except the rate
    /// of a ten-instalment split, which can only be used (R-SPLIT-NOCEDE).
    fn needs_choice(&self, h: &HoldingInfo) -> bool {
        h.tracciabile && !cessio_core::split::is_split_code(&self.catalogue, &h.rata.codice_tributo)
    }

    /// The party's holdings that `narrow` selects from all of them (every page read), with
    /// what F5 needs.
    async fn held(
        &self,
        party: PartyId,
        narrow: impl FnOnce(HoldingQuery) -> HoldingQuery,
    ) -> Result<Vec<Held>, AppError> {
        let infos =
            cessio_store::all_holding_infos(&*self.store, narrow(HoldingQuery::of(party))).await?;
        let choices: HashMap<RataId, F24Choice> = self
            .store
            .f24_choices(party)
            .await?
            .into_iter()
            .map(|c| (c.rata, c.choice))
            .collect();
        Ok(infos
            .into_iter()
            .map(|info| Held {
                available: info.account.balance.available().unwrap_or(Cents::ZERO),
                reserved: info.account.balance.debits_pending,
                dates: self.usage_dates_of(&info),
                choice: choices.get(&info.rata.id).copied().unwrap_or_default(),
                needs_choice: self.needs_choice(&info),
                info,
            })
            .collect())
    }

    /// Of each holding's pending debits, what cessions awaiting an answer hold (the rest is
    /// reserved by F24 forms). Reads the history of the holdings with something pending
    /// only.
    async fn pending_out_by_kind(
        &self,
        party: PartyId,
        held: &[Held],
    ) -> Result<HashMap<RataId, Cents>, AppError> {
        let rate: Vec<RataId> = held
            .iter()
            .filter(|h| h.reserved.is_positive())
            .map(|h| h.info.rata.id)
            .collect();
        let mut out: HashMap<RataId, Cents> = HashMap::new();
        for chunk in rate.chunks(1_000) {
            let rows = self.store.histories(chunk).await?;
            let answered: std::collections::HashSet<_> =
                rows.iter().filter_map(|r| r.pending_id).collect();
            for r in &rows {
                if r.phase == Phase::Pending
                    && r.kind == TransferKind::Cession
                    && r.party == Some(party)
                    && !answered.contains(&r.id)
                {
                    let sum = out.entry(r.rata).or_insert(Cents::ZERO);
                    *sum = sum.checked_add(r.amount).unwrap_or(Cents::MAX);
                }
            }
        }
        Ok(out)
    }

    /// The F24 choice of each holding the party has (R-F24-CHOICE).
    pub async fn f24_choices(
        &self,
        p: &Principal,
        party: PartyId,
    ) -> Result<Vec<ChoiceRow>, AppError> {
        self.authorize_view(p, party).await?;
        Ok(self
            .held(party, |all| all)
            .await?
            .into_iter()
            .filter(|h| h.available.is_positive() || h.reserved.is_positive())
            .map(|h| ChoiceRow {
                rata: h.info.rata.id,
                codice_tributo: h.info.rata.codice_tributo.clone(),
                year: h.info.rata.year.get(),
                type_key: h.info.type_key.clone(),
                codice_univoco: h.info.rata.codice_univoco.clone(),
                tracciabile: h.needs_choice,
                available: h.available,
                choice: h.choice,
            })
            .collect())
    }

    /// R-F24-CHOICE: declare the choice to use a tracciabile rata in F24; it is then no
    /// longer cedible.
    pub async fn declare_f24_choice(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        rata: RataId,
    ) -> Result<ChoiceReceipt, AppError> {
        self.f24_choice(p, key, pin, party, rata, true).await
    }

    /// R-F24-CHOICE: revoke the choice, which makes the rata cedible again. Refused while an
    /// F24 reservation holds part of it.
    pub async fn revoke_f24_choice(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        rata: RataId,
    ) -> Result<ChoiceReceipt, AppError> {
        self.f24_choice(p, key, pin, party, rata, false).await
    }

    async fn f24_choice(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        rata: RataId,
        declare: bool,
    ) -> Result<ChoiceReceipt, AppError> {
        self.authorize_act(p, party).await?;
        let action = if declare {
            "declare_f24_choice"
        } else {
            "revoke_f24_choice"
        };
        let fp = fingerprint(action, Some(party), &rata);
        if let Some(r) = self.replay(p, key, &fp).await? {
            let choice = self.current_choice(party, rata).await?;
            return Ok(ChoiceReceipt {
                operation_id: r.operation_id,
                rata,
                choice,
                replayed: true,
            });
        }
        self.check_pin(p, pin).await?;
        let held = self
            .held(party, |all| HoldingQuery {
                rata: Some(rata),
                ..all
            })
            .await?;
        let h = held
            .iter()
            .find(|h| h.info.rata.id == rata)
            .ok_or(AppError::NotFound { what: "Rata" })?;
        let today = self.today();
        let law = law()?;
        let choice = if declare {
            f24::declare_choice(h.needs_choice, h.choice, today, law)
        } else {
            f24::revoke_choice(h.choice, h.reserved, today, law)
        }
        .map_err(|e| f24_error(&e))?;
        let receipt = self
            .submit(self.operation(
                p,
                key,
                Some(party),
                Command::F24Choice {
                    rata,
                    party,
                    declared: declare,
                    on: today,
                },
                fp,
            )?)
            .await?;
        Ok(ChoiceReceipt {
            operation_id: receipt.operation_id,
            rata,
            choice,
            replayed: receipt.replayed,
        })
    }

    /// The rate of the party whose F24 choice is declared (R-F24-CHOICE).
    pub(crate) async fn f24_chosen(
        &self,
        party: PartyId,
    ) -> Result<std::collections::HashSet<RataId>, AppError> {
        Ok(self
            .store
            .f24_choices(party)
            .await?
            .into_iter()
            .filter(|c| matches!(c.choice, F24Choice::Declared { .. }))
            .map(|c| c.rata)
            .collect())
    }

    async fn current_choice(&self, party: PartyId, rata: RataId) -> Result<F24Choice, AppError> {
        Ok(self
            .store
            .f24_choices(party)
            .await?
            .into_iter()
            .find(|c| c.rata == rata)
            .map(|c| c.choice)
            .unwrap_or_default())
    }

    /// The core availability of the party's holdings on `on`, and the holdings each
    /// (codice tributo, anno) draws from, oldest rata first.
    fn availability(held: &[Held], on: NaiveDate) -> (F24Availability, Sources) {
        let mut availability = F24Availability::new();
        let mut sources = Sources::new();
        for h in held {
            if !h.available.is_positive() || !f24::choice_allows_use(h.needs_choice, h.choice) {
                continue;
            }
            let code = &h.info.rata.codice_tributo;
            let year = h.info.rata.year;
            availability.add_holding(code, year, h.available, &h.dates, on);
            if f24::check_usable(code, year, &h.dates, on).is_ok() {
                sources
                    .entry((code.clone(), year))
                    .or_default()
                    .push((h.info.rata.id, h.available));
            }
        }
        (availability, sources)
    }

    /// F5: per codice tributo and year, what the party may use in an F24 paid today.
    pub async fn f24_availability(
        &self,
        p: &Principal,
        party: PartyId,
    ) -> Result<Vec<F24AvailabilityRow>, AppError> {
        self.authorize_view(p, party).await?;
        let today = self.today();
        let mut rows: BTreeMap<(String, u16), F24AvailabilityRow> = BTreeMap::new();
        let add = |c: &mut Cents, v: Cents| *c = c.checked_add(v).unwrap_or(Cents::MAX);
        let held = self.held(party, |all| all).await?;
        let pending = self.pending_out_by_kind(party, &held).await?;
        for h in held {
            if !h.available.is_positive() && !h.reserved.is_positive() {
                continue;
            }
            let code = h.info.rata.codice_tributo.clone();
            let year = h.info.rata.year;
            let row =
                rows.entry((code.clone(), year.get()))
                    .or_insert_with(|| F24AvailabilityRow {
                        codice_tributo: code.clone(),
                        year: year.get(),
                        type_key: h.info.type_key.clone(),
                        type_name: self
                            .catalogue
                            .get(&h.info.type_key)
                            .map_or_else(|| h.info.type_key.clone(), |t| t.name.clone()),
                        ..F24AvailabilityRow::default()
                    });
            // What is pending out is an F24 reservation or a cession awaiting its answer.
            let in_cession = pending.get(&h.info.rata.id).copied().unwrap_or(Cents::ZERO);
            add(&mut row.pending_in_cession, in_cession);
            add(
                &mut row.reserved,
                h.reserved.checked_sub(in_cession).unwrap_or(Cents::ZERO),
            );
            if !h.available.is_positive() {
                continue;
            }
            match f24::check_usable(&code, year, &h.dates, today) {
                Err(F24Error::Future { usable_from, .. }) => {
                    add(&mut row.not_yet_usable, h.available);
                    row.usable_from =
                        Some(row.usable_from.map_or(usable_from, |d| d.min(usable_from)));
                }
                Err(_) => add(&mut row.expired, h.available),
                Ok(()) if !f24::choice_allows_use(h.needs_choice, h.choice) => {
                    add(&mut row.awaiting_choice, h.available);
                }
                Ok(()) => {
                    add(&mut row.usable, h.available);
                    if let Some(last) = h.dates.last_day {
                        row.last_day = Some(row.last_day.map_or(last, |d| d.min(last)));
                    }
                }
            }
        }
        Ok(rows.into_values().collect())
    }

    /// F5: reserves the credits an F24 uses (prenotato). The whole F24 is checked first
    /// (R-F24-OVER, R-F24-WINDOW-121/122, R-F24-FUTURE, R-F24-CHOICE, R-BAN-100K/1500) and
    /// refused whole; nothing is reserved unless every line is.
    pub async fn reserve_f24(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        form: F24Form<'_>,
    ) -> Result<F24Reservation, AppError> {
        let F24Form {
            payment_date,
            lines,
            debits,
        } = form;
        self.authorize_act(p, party).await?;
        // Named debits join the fingerprint; none keeps the fingerprint of an F24 that
        // named only its credits.
        let fp = if debits.is_empty() {
            fingerprint("reserve_f24", Some(party), &(payment_date, lines))
        } else {
            fingerprint("reserve_f24", Some(party), &(payment_date, lines, debits))
        };
        let debits = parse_debits(debits)?;
        if let Some(r) = self.replay(p, key, &fp).await? {
            return self.reservation_of(&r, payment_date, lines, debits).await;
        }
        if lines.is_empty() || lines.len() > 100 {
            return Err(AppError::invalid("lines", "da 1 a 100 righe"));
        }
        let today = self.today();
        if payment_date < today || payment_date > today + chrono::Duration::days(30) {
            return Err(AppError::Rule {
                rule: "F5",
                code: "f24_payment_date",
                detail: format!(
                    "La data di versamento dell'F24 va da oggi ({}) a 30 giorni da oggi: un F24 non si prenota per una data passata (F5)",
                    cessio_core::law::it_date(today)
                ),
            });
        }
        self.check_pin(p, pin).await?;
        let mut core_lines = Vec::with_capacity(lines.len());
        for (i, l) in lines.iter().enumerate() {
            let year = RefYear::parse(l.year)
                .map_err(|e| AppError::invalid(format!("lines[{i}].year"), e.to_string()))?;
            core_lines.push(F24Line {
                code: l.codice_tributo.trim().to_string(),
                year,
                amount: l.amount,
            });
        }
        // Only the lines' codici tributo and years: a bank holds hundreds of thousands of
        // rate, each code over many years, and a line draws on its own code and year alone
        // (what is read is their product, a superset of the lines' pairs).
        let mut codes: Vec<String> = core_lines.iter().map(|l| l.code.clone()).collect();
        codes.sort_unstable();
        codes.dedup();
        let mut years: Vec<u16> = core_lines.iter().map(|l| l.year.get()).collect();
        years.sort_unstable();
        years.dedup();
        let held = self
            .held(party, |all| HoldingQuery {
                codes,
                years,
                // Only what is left to use: an exhausted holding neither covers a line
                // nor waits for a choice.
                only_available: true,
                ..all
            })
            .await?;
        let (availability, mut sources) = Self::availability(&held, payment_date);
        let debts = self.store.debt_position(party).await?.unwrap_or_default();
        let amounts = f24::evaluate_f24(
            &core_lines,
            &availability,
            &debts,
            payment_date,
            law()?,
            &self.catalogue,
        )
        .map_err(|r| {
            // A line refused only because its tracciabili rate lack the F24 choice says so:
            // when declaring the choice would cover it. A line over even with the choice
            // is over (R-F24-OVER), or the user would declare a choice that does not help.
            let awaiting = r.lines.iter().zip(&core_lines).any(|(o, l)| {
                let LineOutcome::Refused(F24Error::Over {
                    requested,
                    available,
                    ..
                }) = o
                else {
                    return false;
                };
                let awaiting_choice = held
                    .iter()
                    .filter(|h| {
                        h.available.is_positive()
                            && !f24::choice_allows_use(h.needs_choice, h.choice)
                            && h.info.rata.codice_tributo == l.code
                            && h.info.rata.year == l.year
                            && f24::check_usable(&l.code, l.year, &h.dates, payment_date).is_ok()
                    })
                    .fold(Cents::ZERO, |sum, h| {
                        sum.checked_add(h.available).unwrap_or(Cents::MAX)
                    });
                awaiting_choice.is_positive()
                    && available
                        .checked_add(awaiting_choice)
                        .is_none_or(|with_choice| with_choice >= *requested)
            });
            if r.ban.is_none() && awaiting {
                f24_error(&F24Error::ChoiceRequired)
            } else {
                f24_rejected(&r)
            }
        })?;
        self.check_debit_side(party, &core_lines, &debits, payment_date)
            .await?;
        let mut moves = Vec::new();
        for (line, amount) in core_lines.iter().zip(amounts) {
            let mut left = amount;
            for (rata, free) in sources
                .get_mut(&(line.code.clone(), line.year))
                .into_iter()
                .flatten()
            {
                if !left.is_positive() {
                    break;
                }
                let take = left.min(*free);
                if !take.is_positive() {
                    continue;
                }
                *free = free.checked_sub(take).unwrap_or(Cents::ZERO);
                left = left.checked_sub(take).unwrap_or(Cents::ZERO);
                moves.push(TransferRequest::Move {
                    rata: *rata,
                    from: AccountRef::Holder(party),
                    to: AccountRef::System(AccountKind::Used),
                    amount: take,
                    kind: TransferKind::Use,
                    pending: true,
                    disclose: false,
                    path: None,
                });
            }
            debug_assert!(
                !left.is_positive(),
                "core accepted more than the holdings give"
            );
        }
        // The writer decides the choice and the bans again on the state it writes on: a
        // choice revoked, or a debt position recorded, after the reads above refuses the F24.
        let need_choice: HashSet<RataId> = held
            .iter()
            .filter(|h| h.needs_choice)
            .map(|h| h.info.rata.id)
            .collect();
        let mut checks: Vec<WriterCheck> = moves
            .iter()
            .filter_map(|m| match m {
                TransferRequest::Move { rata, .. } if need_choice.contains(rata) => {
                    Some(WriterCheck::ChoiceDeclared { rata: *rata, party })
                }
                _ => None,
            })
            .collect();
        let mut natures: Vec<CreditNature> = Vec::new();
        for l in &core_lines {
            if let Some(n) = CreditNature::of_register_code(&self.catalogue, &l.code)
                && !natures.contains(&n)
            {
                natures.push(n);
            }
        }
        checks.push(WriterCheck::OffsetAllowed {
            party,
            on: payment_date,
            natures,
        });
        let mut op = self.operation(p, key, Some(party), Command::Transfer(moves), fp)?;
        op.checks = checks;
        let receipt = self
            .submit(op)
            .await
            .map_err(|e| {
                e.when_taken_meanwhile(|requested, available| AppError::Rule {
                    rule: "R-F24-OVER",
                    code: "f24_over",
                    detail: format!(
                        "Modello F24 scartato per intero: nel frattempo parte del credito è stata utilizzata o ceduta (richiesti {requested}, disponibili {available}); ricaricare la disponibilità (R-F24-OVER)"
                    ),
                })
            })?;
        self.reservation_of(&receipt, payment_date, lines, debits)
            .await
    }

    /// R-F24-BALANCE and R-BAN-BANK-INPS: the credits against the debits the F24 pays.
    async fn check_debit_side(
        &self,
        party: PartyId,
        lines: &[F24Line],
        debits: &[DebitLine],
        payment_date: NaiveDate,
    ) -> Result<(), AppError> {
        let mut credits = CreditsOffset::default();
        for l in lines {
            let building = self
                .catalogue
                .by_code(&l.code)
                .is_some_and(|t| t.cession_regime == CessionRegime::Art121);
            credits.total = credits.total.checked_add(l.amount).unwrap_or(Cents::MAX);
            if building {
                credits.building = credits.building.checked_add(l.amount).unwrap_or(Cents::MAX);
            }
        }
        // Only R-BAN-BANK-INPS asks who pays, and only for building credits on a day it
        // is in force: every other F24 is spared the party's read.
        let law = law()?;
        let asks_who =
            credits.building.is_positive() && law.bank_inps_ban_on(payment_date).is_some();
        let kind = match asks_who {
            true => self.store.party(party).await?.map(|p| p.kind),
            false => None,
        };
        let class = crate::chain::party_class(kind.unwrap_or(cessio_store::PartyKind::Company));
        check_debits(credits, debits, class, payment_date, law).map_err(|e| AppError::Rule {
            rule: e.rule(),
            code: e.code(),
            detail: e.to_string(),
        })
    }

    async fn reservation_of(
        &self,
        r: &Receipt,
        payment_date: NaiveDate,
        lines: &[F24LineInput],
        debits: Vec<DebitLine>,
    ) -> Result<F24Reservation, AppError> {
        let rows = self.store.operation_transfers(r.operation_id).await?;
        Ok(F24Reservation {
            reservation: r.operation_id,
            at: r.at,
            payment_date,
            amount: r.amount,
            lines: lines
                .iter()
                .map(|l| F24LineOutcome {
                    codice_tributo: l.codice_tributo.trim().to_string(),
                    year: l.year,
                    amount: l.amount,
                })
                .collect(),
            debits,
            takes: rows
                .iter()
                .map(|t| F24Take {
                    rata: t.rata,
                    amount: t.amount,
                    transfer: t.id,
                })
                .collect(),
            replayed: r.replayed,
        })
    }

    /// F5: the F24 was processed: the reserved amounts are used for good.
    pub async fn confirm_f24(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        reservation: i64,
    ) -> Result<F24Outcome, AppError> {
        self.end_reservation(p, key, pin, party, reservation, true)
            .await
    }

    /// F5: the F24 was discarded: the reserved amounts return to the holdings.
    pub async fn discard_f24(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        reservation: i64,
    ) -> Result<F24Outcome, AppError> {
        self.end_reservation(p, key, pin, party, reservation, false)
            .await
    }

    async fn end_reservation(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        reservation: i64,
        confirm: bool,
    ) -> Result<F24Outcome, AppError> {
        self.authorize_act(p, party).await?;
        let action = if confirm {
            "confirm_f24"
        } else {
            "discard_f24"
        };
        let fp = fingerprint(action, Some(party), &reservation);
        let outcome = |r: Receipt| F24Outcome {
            reservation,
            operation_id: r.operation_id,
            confirmed: confirm,
            amount: r.amount,
            replayed: r.replayed,
        };
        if let Some(r) = self.replay(p, key, &fp).await? {
            return Ok(outcome(r));
        }
        self.check_pin(p, pin).await?;
        let rows = self.store.operation_transfers(reservation).await?;
        let own = !rows.is_empty()
            && rows.iter().all(|t| {
                t.kind == TransferKind::Use && t.phase == Phase::Pending && t.party == Some(party)
            });
        if !own {
            return Err(AppError::NotFound {
                what: "Prenotazione F24",
            });
        }
        let moves = rows
            .iter()
            .map(|t| {
                if confirm {
                    TransferRequest::Post { pending: t.id }
                } else {
                    TransferRequest::Void { pending: t.id }
                }
            })
            .collect();
        let receipt = self
            .submit(self.operation(p, key, Some(party), Command::Transfer(moves), fp)?)
            .await
            .map_err(|e| match e {
                AppError::Store(StoreError::Ledger(LedgerError::PendingAlreadyResolved {
                    ..
                })) => AppError::Conflict {
                    reason: "la prenotazione F24 è già stata confermata o scartata".into(),
                },
                other => other,
            })?;
        Ok(outcome(receipt))
    }

    /// Operator: records a party's overdue-debt position, the input of R-BAN-100K and
    /// R-BAN-1500. The last record is the one in force.
    pub async fn set_debt_position(
        &self,
        p: &Principal,
        key: &str,
        party: PartyId,
        position: &DebtPosition,
    ) -> Result<DebtPositionReceipt, AppError> {
        if !p.is_operator() {
            return Err(AppError::forbidden("funzione riservata all'operatore"));
        }
        for (i, l) in position.loads.iter().enumerate() {
            if l.amount.is_negative() || l.suspended.is_negative() {
                return Err(AppError::invalid(
                    format!("loads[{i}]"),
                    "gli importi non possono essere negativi",
                ));
            }
        }
        let fp = fingerprint("set_debt_position", Some(party), position);
        let receipt = match self.replay(p, key, &fp).await? {
            Some(r) => r,
            None => {
                self.submit(self.operation(
                    p,
                    key,
                    Some(party),
                    Command::DebtPosition {
                        party,
                        position: position.clone(),
                    },
                    fp,
                )?)
                .await?
            }
        };
        Ok(DebtPositionReceipt {
            operation_id: receipt.operation_id,
            counted_for_ban_100k: position.counted_for_ban_100k(),
            counted_erariali: position.counted_erariali(),
            replayed: receipt.replayed,
        })
    }

    /// The party's debt position as recorded (operator, or the party itself).
    pub async fn debt_position(
        &self,
        p: &Principal,
        party: PartyId,
    ) -> Result<DebtPosition, AppError> {
        self.authorize_view(p, party).await?;
        Ok(self.store.debt_position(party).await?.unwrap_or_default())
    }

    /// Operator job: after 31 December of `year` (Europe/Rome), moves to expired every
    /// available amount whose last day of use was in `year` or before
    /// (R-F24-WINDOW-121/122). Idempotent: a second run finds nothing left to expire, and a
    /// retried chunk is recognised by its content. Amounts still reserved by an F24 stay
    /// reserved; if the F24 is discarded they return and the next run expires them.
    pub async fn close_year(&self, p: &Principal, year: u16) -> Result<CloseYearReport, AppError> {
        if !p.is_operator() {
            return Err(AppError::forbidden("funzione riservata all'operatore"));
        }
        let ref_year =
            RefYear::parse(year).map_err(|e| AppError::invalid("year", e.to_string()))?;
        let now = self.now();
        let closes_at = ref_year
            .last_day()
            .succ_opt()
            .map(rome_start_of_day)
            .ok_or_else(|| AppError::invalid("year", "anno fuori intervallo"))?;
        if now < closes_at {
            return Err(AppError::Rule {
                rule: "R-F24-WINDOW-121",
                code: "year_not_closed",
                detail: format!(
                    "L'anno {year} si chiude il {} alle 00:00 (ora di Roma): fino ad allora i crediti dell'anno sono ancora utilizzabili (R-F24-WINDOW-121)",
                    rome_date(closes_at).format("%d/%m/%Y")
                ),
            });
        }
        let mut report = CloseYearReport {
            year,
            ..CloseYearReport::default()
        };
        // A reservation or cession between the scan and the write makes a chunk fail; the
        // scan is then repeated, a bounded number of times.
        for _attempt in 0..5 {
            match self.close_year_pass(p, ref_year, now, &mut report).await {
                Ok(()) => return Ok(report),
                Err(AppError::Store(StoreError::Ledger(LedgerError::InsufficientAvailable {
                    ..
                }))) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(AppError::Conflict {
            reason: "la chiusura dell'anno non è riuscita per operazioni concorrenti: ripetere"
                .into(),
        })
    }

    async fn close_year_pass(
        &self,
        p: &Principal,
        year: RefYear,
        now: DateTime<Utc>,
        report: &mut CloseYearReport,
    ) -> Result<(), AppError> {
        let mut after = 0;
        loop {
            let page = self
                .store
                .holding_infos(&HoldingQuery {
                    party: None,
                    max_year: Some(year.get()),
                    only_available: true,
                    after,
                    limit: CLOSE_PAGE,
                    rata: None,
                    codes: Vec::new(),
                    years: Vec::new(),
                })
                .await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.account.id;
            let full = page.len() == CLOSE_PAGE;
            let mut moves = Vec::new();
            for h in &page {
                let dates = self.usage_dates_of(h);
                let ends_in_year = dates.last_day.is_some_and(|d| d <= year.last_day());
                let available = h.account.balance.available().unwrap_or(Cents::ZERO);
                if ends_in_year
                    && f24::is_expired(&dates, now)
                    && available.is_positive()
                    && !self.still_splittable(h, now)
                {
                    let Some(party) = h.account.party else {
                        continue;
                    };
                    moves.push(TransferRequest::Move {
                        rata: h.rata.id,
                        from: AccountRef::Holder(party),
                        to: AccountRef::System(AccountKind::Expired),
                        amount: available,
                        kind: TransferKind::Expire,
                        pending: false,
                        disclose: false,
                        path: None,
                    });
                }
            }
            if !moves.is_empty() {
                let fp = fingerprint("close_year", None, &(year, &moves));
                let key =
                    IdempotencyKey::parse(&format!("close-year:{}:{}", year.get(), &fp[..40]))
                        .map_err(|e| AppError::invalid("year", e.to_string()))?;
                let count = moves.len();
                let receipt = self
                    .submit(Operation {
                        idempotency_key: key,
                        acting_user: p.actor(),
                        on_behalf_of: None,
                        at: now,
                        command: Command::Transfer(moves),
                        request_hash: Some(fp),
                        delegate: None,
                        checks: Vec::new(),
                    })
                    .await?;
                if !receipt.replayed {
                    report.holdings += count;
                    report.amount = report
                        .amount
                        .checked_add(receipt.amount)
                        .unwrap_or(Cents::MAX);
                }
                report.operations.push(receipt.operation_id);
            }
            if !full {
                return Ok(());
            }
        }
    }
}
