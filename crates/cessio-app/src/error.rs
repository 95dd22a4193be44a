//! Every refusal of the app layer: a stable code, the rule that refused (when one did) and
//! an Italian message that tells the person what to do. The web layer maps codes to HTTP
//! statuses and never invents messages of its own.

use cessio_core::cf::CfError;
use cessio_core::ledger::LedgerError;
use cessio_core::money::{Cents, MoneyError};
use cessio_core::opt_stop::OptStopError;
use cessio_store::StoreError;
use chrono::NaiveDate;

fn it_date(d: &NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    #[error("Accesso non autorizzato: effettuare l'accesso")]
    Unauthenticated,
    #[error("Nome utente o password errati")]
    LoginFailed,
    #[error("Operazione non consentita: {reason}")]
    Forbidden { reason: String },
    #[error("{what} non trovato")]
    NotFound { what: &'static str },
    #[error("Per confermare l'operazione inserire il PIN")]
    PinRequired,
    #[error("PIN errato: restano {remaining} tentativi prima del blocco")]
    PinWrong { remaining: u32 },
    #[error(
        "PIN bloccato dopo {failures} tentativi errati: chiedere lo sblocco all'Agenzia (operatore)"
    )]
    PinLocked { failures: u32 },
    #[error("{0}")]
    Cf(#[from] CfError),
    #[error("Il codice fiscale {cf} non appartiene a un soggetto registrato (R-CF-EXISTS)")]
    CfUnknown { cf: String },
    #[error("{0}")]
    Amount(#[from] MoneyError),
    /// R-OPT-STOP, with the fact at fault so that a page can show it next to its field.
    #[error("{0}")]
    OptStop(#[from] OptStopError),
    #[error("{detail}")]
    Rule {
        rule: &'static str,
        code: &'static str,
        detail: String,
    },
    #[error(
        "Più di {limit} operazioni corrispondono alla ricerca ({found}): restringere con i filtri tipo, anno o cedente (R-1000)"
    )]
    FiltersRequired { limit: usize, found: usize },
    #[error(
        "La ricerca restituisce più di {limit} righe: restringere i filtri (per esempio il periodo) e ripetere ({rule})"
    )]
    TooManyRows { limit: usize, rule: &'static str },
    /// A list's cursor that is damaged or was made for other filters (`crate::paging`).
    #[error("{detail}")]
    Cursor { code: &'static str, detail: String },
    #[error("Dati non validi: {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("La richiesta non è più attuale: {reason}")]
    Conflict { reason: String },
    #[error(
        "Il registro è momentaneamente occupato: riprovare tra qualche secondo (nessuna operazione è stata eseguita)"
    )]
    Busy,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AppError {
    /// A rule the writer decided is a rule's refusal like any other.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rule { rule, code, detail } => AppError::Rule { rule, code, detail },
            e => AppError::Store(e),
        }
    }
}

impl AppError {
    /// The stable machine-readable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated => "unauthenticated",
            AppError::LoginFailed => "login_failed",
            AppError::Forbidden { .. } => "forbidden",
            AppError::NotFound { .. } => "not_found",
            AppError::PinRequired => "pin_required",
            AppError::PinWrong { .. } => "pin_wrong",
            AppError::PinLocked { .. } => "pin_locked",
            AppError::Cf(_) => "cf_invalid",
            AppError::CfUnknown { .. } => "cf_unknown",
            AppError::Amount(e) => e.code(),
            AppError::OptStop(e) => e.code(),
            AppError::Rule { code, .. } => code,
            AppError::FiltersRequired { .. } => "filters_required",
            AppError::TooManyRows { .. } => "too_many_rows",
            AppError::Cursor { code, .. } => code,
            AppError::Invalid { .. } => "invalid",
            AppError::Conflict { .. } => "conflict",
            AppError::Busy => "busy",
            AppError::Store(e) => match e {
                StoreError::IdempotencyConflict { .. } => "idempotency_mismatch",
                StoreError::Ledger(l) => l.code(),
                other => other.code(),
            },
        }
    }

    /// The SPEC rule id that refused, when a rule did.
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            AppError::Rule { rule, .. } => Some(rule),
            AppError::OptStop(_) => Some("R-OPT-STOP"),
            AppError::Cf(_) => Some("R-CF"),
            AppError::CfUnknown { .. } => Some("R-CF-EXISTS"),
            AppError::FiltersRequired { .. } => Some("R-1000"),
            AppError::TooManyRows { rule, .. } => Some(rule),
            AppError::Store(StoreError::Ledger(_)) => Some("R-CONSERVE"),
            _ => None,
        }
    }

    pub fn forbidden(reason: impl Into<String>) -> Self {
        AppError::Forbidden {
            reason: reason.into(),
        }
    }

    /// The one refusal for a party the user may not see, whether or not it exists, so
    /// that the register cannot be probed.
    pub fn not_your_party() -> Self {
        AppError::forbidden("non si è titolari né delegati per questo soggetto")
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        AppError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn r_partial(requested: Cents, whole: Cents) -> Self {
        AppError::Rule {
            rule: "R-PARTIAL",
            code: "r_partial",
            detail: format!(
                "Questa rata è tracciabile e si cede solo per intero: importo {whole}, richiesti {requested} (R-PARTIAL)"
            ),
        }
    }

    /// F2: the cedente authorises the cessionario to see its name before the cession can
    /// proceed, as on the Agency's platform (catalogue/rules.toml, `[name_consent]`).
    pub fn name_consent_required() -> Self {
        AppError::Rule {
            rule: "F2",
            code: "name_consent_required",
            detail: "Per proseguire con la cessione occorre autorizzare il cessionario a visualizzare il nome o la denominazione del cedente (casella obbligatoria)".into(),
        }
    }

    pub fn r_wait5(earliest: NaiveDate) -> Self {
        AppError::Rule {
            rule: "R-WAIT5",
            code: "answer_too_early",
            detail: format!(
                "La cessione potrà essere accettata o rifiutata dal {} (5 giorni lavorativi dalla registrazione) (R-WAIT5)",
                it_date(&earliest)
            ),
        }
    }

    /// A write whose amounts were checked against the holdings, then found short by the
    /// ledger because a concurrent use, cession or reservation took part of them in between:
    /// `refusal` turns the figures (requested, available) into the rule's own refusal.
    pub(crate) fn when_taken_meanwhile(self, refusal: impl FnOnce(Cents, Cents) -> Self) -> Self {
        match self {
            AppError::Store(StoreError::Ledger(LedgerError::InsufficientAvailable {
                requested,
                available,
                ..
            })) => refusal(requested, available),
            other => other,
        }
    }

    pub fn r_opt_annul(deadline: NaiveDate) -> Self {
        AppError::Rule {
            rule: "R-OPT-ANNUL",
            code: "r_opt_annul",
            detail: format!(
                "La comunicazione poteva essere annullata fino al {}: ora può solo essere rifiutata dal fornitore o cessionario (R-OPT-ANNUL)",
                it_date(&deadline)
            ),
        }
    }
}
