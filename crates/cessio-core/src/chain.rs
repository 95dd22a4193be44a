//! SPEC §5, who may receive what: a holding's **cedibilità** and the check of one cession.
//!
//! - **R-CHAIN**: after the option communication, `free_cessions` cessions to anyone, then
//!   `qualified_cessions` more, each to soggetti qualificati only; at the last allowed
//!   cession the rata is non cedibile. The numbers and the day from which cessions count are
//!   rows of `catalogue/rules.toml` ([`crate::law::ChainRule`]).
//! - **R-BANK-CLIENT**: a bank may always cede, outside the count, to a current-account client
//!   of its own that is not a consumer (a professional client before L. 91/2022); that client
//!   may not cede further. A bank's cession to its client is an ordinary, counted cession
//!   when the count allows it to that client anyway, and a bank-client cession otherwise.
//! - **R-ONCE**: a "cedibile una sola volta" credit allows one cession in all: a type whose
//!   regime says so, or any art. 121 credit while a chain row marked `once` is in force
//!   (DL 4/2022 art. 28, 17–25/02/2022), where an option communicated as a cessione in that
//!   period was itself the one cession.
//! - **R-PA**: public administrations may not acquire credits.
//! - **R-ECO-2018**: the art. 14 ecobonus is never ceded to banks or financial intermediaries,
//!   except by a beneficiary in the no-tax area (in the option communication).
//! - Art. 122 credits: partial and repeated cessions to anyone, but a cessionario may cede
//!   further only within the year of the cession through which it received them
//!   (R-F24-WINDOW-122), and no type may be ceded after its cession deadline.
//!
//! # The history the app provides
//!
//! [`RataHistory`] is designed to be cheap to build from the ledger: the app keeps, on each
//! holding, the [`CessionCounts`] of the path that brought the rata to its holder and whether
//! it arrived as a bank-client cession. When a cession is accepted, the new holding gets
//! [`next_counts`] of the old one and the [`CessionEffect`] [`check_cession`] returned. The
//! other fields (F24 choice, split code, suspension, seizure, last day of use) are states the
//! app already reads for F1/F2.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::catalogue::CessionRegime;
use crate::f24::F24Choice;
use crate::law::{BankClientScope, LawTable, it_date};

/// Kind of a party in the registry (SPEC F9), as the cession rules see it. The strings are
/// those of the store's party kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartyClass {
    Person,
    Company,
    /// Bank or banking-group company (art. 64 TUB).
    Bank,
    /// Financial intermediary on the art. 106 TUB register.
    FinancialIntermediary,
    /// Insurer authorised in Italy.
    Insurer,
    PublicAdministration,
}

impl PartyClass {
    pub const fn as_str(self) -> &'static str {
        match self {
            PartyClass::Person => "person",
            PartyClass::Company => "company",
            PartyClass::Bank => "bank",
            PartyClass::FinancialIntermediary => "financial_intermediary",
            PartyClass::Insurer => "insurer",
            PartyClass::PublicAdministration => "public_administration",
        }
    }

    pub fn parse(s: &str) -> Option<PartyClass> {
        [
            PartyClass::Person,
            PartyClass::Company,
            PartyClass::Bank,
            PartyClass::FinancialIntermediary,
            PartyClass::Insurer,
            PartyClass::PublicAdministration,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Soggetti qualificati (vigilati) of R-CHAIN: banks, financial intermediaries, insurers.
    pub const fn is_qualified(self) -> bool {
        matches!(
            self,
            PartyClass::Bank | PartyClass::FinancialIntermediary | PartyClass::Insurer
        )
    }

    fn as_it(self) -> &'static str {
        match self {
            PartyClass::Person => "persona fisica",
            PartyClass::Company => "società o ente",
            PartyClass::Bank => "banca",
            PartyClass::FinancialIntermediary => "intermediario finanziario",
            PartyClass::Insurer => "impresa di assicurazione",
            PartyClass::PublicAdministration => "pubblica amministrazione",
        }
    }
}

/// Cessions in the path that brought a rata to its holder, after the option communication.
/// Bank-client cessions are not counted.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct CessionCounts {
    /// Communicated before the chain rule's `count_cessions_from` (not counted by R-CHAIN
    /// today, counted by R-ONCE).
    pub before_cutoff: u32,
    /// Communicated on or after it.
    pub from_cutoff: u32,
}

impl CessionCounts {
    pub fn total(&self) -> u32 {
        self.before_cutoff.saturating_add(self.from_cutoff)
    }
}

/// What the rules need to know about one holding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RataHistory {
    /// Catalogue key of the credit type (for the cession deadline).
    pub type_key: String,
    pub regime: CessionRegime,
    pub holder: PartyClass,
    pub counts: CessionCounts,
    /// The holder received it by an R-BANK-CLIENT cession: it may not cede further.
    pub received_as_bank_client: bool,
    pub tracciabile: bool,
    pub f24_choice: F24Choice,
    /// The holding is one of the ten rate of a split (R-SPLIT-NOCEDE).
    pub split_rata: bool,
    /// Day of the cession through which the holder received it; `None` for the first holder.
    pub received_by_cession_on: Option<NaiveDate>,
    /// Last day of use (see `f24::usage_dates`); after it the holding has expired.
    pub last_day_of_use: Option<NaiveDate>,
    /// The beneficiary declared the no-tax area in the option communication: under
    /// R-ECO-2018 the credit may then reach banks and financial intermediaries too.
    pub beneficiary_no_tax_area: bool,
    /// The day of the option communication when it was a cessione (not a sconto in
    /// fattura): under R-ONCE such an option was the one cession. `None` for a sconto, or
    /// when no `once` rule is in force and the app did not look.
    pub option_cessione_on: Option<NaiveDate>,
    pub suspended: bool,
    pub seized: bool,
}

/// What the holder may still do with the holding (SPEC §1 cedibilità, F1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "class", content = "reason", rename_all = "snake_case")]
#[schemars(rename = "CedibilitaRule")]
pub enum Cedibilita {
    /// To anyone.
    Anyone,
    /// To anyone, once: the next holder may only use it in F24 (R-ONCE).
    Once,
    /// To anyone but banks and financial intermediaries (R-ECO-2018).
    AnyoneExceptBanks,
    /// Only to soggetti qualificati (R-CHAIN), or a bank's own clients when the holder is a
    /// bank (R-BANK-CLIENT).
    QualifiedOnly,
    /// Only to the holding bank's own non-consumer clients (R-BANK-CLIENT).
    OwnBankClientsOnly,
    NotCedible(NotCedibleReason),
}

impl Cedibilita {
    /// The F1/F4 label.
    pub fn label(&self) -> &'static str {
        match self {
            Cedibilita::Anyone => "cedibile a chiunque",
            Cedibilita::Once => "cedibile una sola volta",
            Cedibilita::AnyoneExceptBanks => {
                "cedibile a soggetti diversi da banche e intermediari finanziari"
            }
            Cedibilita::QualifiedOnly => "cedibile solo a soggetti qualificati",
            Cedibilita::OwnBankClientsOnly => "cedibile solo a correntisti della banca",
            Cedibilita::NotCedible(_) => NOT_CEDIBLE_LABEL,
        }
    }
}

/// The F1/F4 label of any holding that is not cedible, whatever the reason.
pub const NOT_CEDIBLE_LABEL: &str = "non cedibile";

/// Why a holding is not cedible; each names its rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NotCedibleReason {
    Suspended,
    Seized,
    Expired { last_day: NaiveDate },
    SplitRata,
    F24ChoiceDeclared,
    CessionPeriodOver { last_day: NaiveDate },
    Art122YearClosed { year: i32 },
    Once,
    BankClient,
    ChainExhausted { counted: u32, max: u32 },
}

impl NotCedibleReason {
    pub fn rule(&self) -> &'static str {
        match self {
            NotCedibleReason::Suspended => "R-SUSP",
            NotCedibleReason::Seized => "R-SEIZE",
            NotCedibleReason::Expired { .. } => "R-F24-WINDOW-121",
            NotCedibleReason::SplitRata => "R-SPLIT-NOCEDE",
            NotCedibleReason::F24ChoiceDeclared => "R-F24-CHOICE",
            NotCedibleReason::CessionPeriodOver { .. }
            | NotCedibleReason::Art122YearClosed { .. } => "R-F24-WINDOW-122",
            NotCedibleReason::Once => "R-ONCE",
            NotCedibleReason::BankClient => "R-BANK-CLIENT",
            NotCedibleReason::ChainExhausted { .. } => "R-CHAIN",
        }
    }
}

impl fmt::Display for NotCedibleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotCedibleReason::Suspended => {
                f.write_str("la comunicazione è sospesa per controlli (art. 122-bis): attendere l'esito")
            }
            NotCedibleReason::Seized => f.write_str("il credito è sotto sequestro"),
            NotCedibleReason::Expired { last_day } => write!(
                f,
                "il credito era utilizzabile fino al {} ed è scaduto",
                it_date(*last_day)
            ),
            NotCedibleReason::SplitRata => f.write_str(
                "la rata deriva dalla ripartizione in dieci rate e si utilizza solo in F24",
            ),
            NotCedibleReason::F24ChoiceDeclared => f.write_str(
                "è stata comunicata la scelta di utilizzo in F24: revocarla per poter cedere",
            ),
            NotCedibleReason::CessionPeriodOver { last_day } => write!(
                f,
                "questo credito poteva essere ceduto fino al {}",
                it_date(*last_day)
            ),
            NotCedibleReason::Art122YearClosed { year } => write!(
                f,
                "il credito ricevuto nel {year} poteva essere ceduto di nuovo solo entro il 31/12/{year}"
            ),
            NotCedibleReason::Once => f.write_str(
                "il credito è cedibile una sola volta ed è già stato ceduto: si utilizza solo in F24",
            ),
            NotCedibleReason::BankClient => f.write_str(
                "il credito è stato ricevuto come correntista della banca cedente e non può essere ceduto di nuovo",
            ),
            NotCedibleReason::ChainExhausted { counted, max } => write!(
                f,
                "il credito ha già avuto {counted} cessioni successive alla prima comunicazione, il massimo consentito è {max}"
            ),
        }
    }
}

/// The cedibilità of a holding on `today`.
pub fn cedibilita(history: &RataHistory, today: NaiveDate, law: &LawTable) -> Cedibilita {
    use NotCedibleReason as R;
    let not = Cedibilita::NotCedible;
    if history.suspended {
        return not(R::Suspended);
    }
    if history.seized {
        return not(R::Seized);
    }
    if let Some(last_day) = history.last_day_of_use.filter(|last| today > *last) {
        return not(R::Expired { last_day });
    }
    if history.split_rata {
        return not(R::SplitRata);
    }
    if !crate::f24::choice_allows_cession(history.tracciabile, history.f24_choice) {
        return not(R::F24ChoiceDeclared);
    }
    if let Some(deadline) = law
        .cession_deadline(&history.type_key)
        .filter(|d| today > d.last_day)
    {
        return not(R::CessionPeriodOver {
            last_day: deadline.last_day,
        });
    }
    match history.regime {
        CessionRegime::Art122 => match history.received_by_cession_on {
            Some(received) if today.year() > received.year() => not(R::Art122YearClosed {
                year: received.year(),
            }),
            _ => Cedibilita::Anyone,
        },
        CessionRegime::Once => once(history.counts.total()),
        CessionRegime::Eco2018 if history.beneficiary_no_tax_area => Cedibilita::Anyone,
        CessionRegime::Eco2018 => Cedibilita::AnyoneExceptBanks,
        CessionRegime::Art121 => art121(history, today, law),
    }
}

fn art121(history: &RataHistory, today: NaiveDate, law: &LawTable) -> Cedibilita {
    if history.received_as_bank_client {
        return Cedibilita::NotCedible(NotCedibleReason::BankClient);
    }
    let Some(rule) = law.chain_on(today) else {
        return Cedibilita::Anyone;
    };
    let (Some(free), Some(max)) = (rule.free_cessions, rule.max_cessions()) else {
        return Cedibilita::Anyone;
    };
    let counted = match rule.count_cessions_from {
        Some(_) => history.counts.from_cutoff,
        None => history.counts.total(),
    };
    if rule.once {
        let option_was_the_cession = history
            .option_cessione_on
            .zip(rule.count_cessions_from)
            .is_some_and(|(option, from)| option >= from);
        return once(counted.saturating_add(u32::from(option_was_the_cession)));
    }
    if counted < free {
        Cedibilita::Anyone
    } else if counted < max {
        Cedibilita::QualifiedOnly
    } else if history.holder == PartyClass::Bank && law.bank_client_on(today).is_some() {
        Cedibilita::OwnBankClientsOnly
    } else {
        Cedibilita::NotCedible(NotCedibleReason::ChainExhausted { counted, max })
    }
}

/// R-ONCE: one cession in all, then F24 only.
fn once(ceded: u32) -> Cedibilita {
    if ceded >= 1 {
        Cedibilita::NotCedible(NotCedibleReason::Once)
    } else {
        Cedibilita::Once
    }
}

/// The cessionario's relationship with a cedente bank, for R-BANK-CLIENT.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "BankClientRelation")]
pub enum BankClient {
    /// Not a current-account client of the cedente (or the cedente is not a bank).
    #[default]
    No,
    /// Current-account client who is a consumer: never eligible.
    Consumer,
    /// Current-account client who is not a consumer.
    NonConsumer,
    /// Current-account client who is a cliente professionale privato (also not a consumer).
    Professional,
}

impl BankClient {
    /// Every relation the operator can record.
    pub const ALL: [BankClient; 4] = [
        BankClient::No,
        BankClient::Consumer,
        BankClient::NonConsumer,
        BankClient::Professional,
    ];

    fn admitted_by(self, scope: BankClientScope) -> bool {
        match scope {
            BankClientScope::Professional => self == BankClient::Professional,
            BankClientScope::NonConsumer => {
                matches!(self, BankClient::NonConsumer | BankClient::Professional)
            }
        }
    }
}

/// The receiving party of a cession.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cessionario {
    pub class: PartyClass,
    pub client_of_cedente: BankClient,
}

/// What an allowed cession means for the chain: the app records it with the new holding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CessionEffect {
    /// The cession counts against R-CHAIN / R-ONCE.
    pub counted: bool,
    /// An R-BANK-CLIENT cession: the cessionario may not cede further.
    pub to_bank_client: bool,
}

/// The counts of the new holding after a cession communicated on `on` with `effect`.
pub fn next_counts(
    counts: CessionCounts,
    effect: CessionEffect,
    on: NaiveDate,
    law: &LawTable,
) -> CessionCounts {
    if !effect.counted {
        return counts;
    }
    let from_cutoff = law
        .chain_on(on)
        .and_then(|r| r.count_cessions_from)
        .is_some_and(|cutoff| on >= cutoff);
    if from_cutoff {
        CessionCounts {
            from_cutoff: counts.from_cutoff.saturating_add(1),
            ..counts
        }
    } else {
        CessionCounts {
            before_cutoff: counts.before_cutoff.saturating_add(1),
            ..counts
        }
    }
}

/// R-PA: may a party of this class acquire credits on `on`?
pub fn check_may_acquire(
    class: PartyClass,
    on: NaiveDate,
    law: &LawTable,
) -> Result<(), ChainError> {
    if class == PartyClass::PublicAdministration && law.pa_ban_on(on).is_some() {
        return Err(ChainError::Pa);
    }
    Ok(())
}

/// R-ECO-2018 for the option communication of an art. 14 ecobonus: banks and financial
/// intermediaries only for a beneficiary in the no-tax area.
pub fn check_eco2018_option(
    cessionario: PartyClass,
    beneficiary_no_tax_area: bool,
) -> Result<(), ChainError> {
    if excluded_by_eco2018(cessionario) && !beneficiary_no_tax_area {
        return Err(ChainError::Eco2018 { class: cessionario });
    }
    Ok(())
}

fn excluded_by_eco2018(class: PartyClass) -> bool {
    matches!(class, PartyClass::Bank | PartyClass::FinancialIntermediary)
}

/// §5 as a whole: may the holder of `history` cede to `to` on `on`? On success, how the
/// cession counts.
pub fn check_cession(
    history: &RataHistory,
    to: Cessionario,
    on: NaiveDate,
    law: &LawTable,
) -> Result<CessionEffect, ChainError> {
    check_may_acquire(to.class, on, law)?;
    let ordinary = Ok(CessionEffect {
        counted: true,
        to_bank_client: false,
    });
    let bank_client = history.regime == CessionRegime::Art121
        && history.holder == PartyClass::Bank
        && law
            .bank_client_on(on)
            .is_some_and(|rule| to.client_of_cedente.admitted_by(rule.clients));
    let as_bank_client = Ok(CessionEffect {
        counted: false,
        to_bank_client: true,
    });
    match cedibilita(history, on, law) {
        Cedibilita::NotCedible(reason) => Err(ChainError::NotCedible(reason)),
        Cedibilita::Anyone | Cedibilita::Once => ordinary,
        Cedibilita::AnyoneExceptBanks => {
            if excluded_by_eco2018(to.class) {
                Err(ChainError::Eco2018 { class: to.class })
            } else {
                ordinary
            }
        }
        Cedibilita::QualifiedOnly => {
            if to.class.is_qualified() {
                ordinary
            } else if bank_client {
                as_bank_client
            } else {
                Err(ChainError::NotQualified {
                    class: to.class,
                    counted: history.counts.from_cutoff,
                })
            }
        }
        Cedibilita::OwnBankClientsOnly => {
            if bank_client {
                as_bank_client
            } else {
                Err(ChainError::OnlyOwnClients)
            }
        }
    }
}

/// Why a cession was refused under §5.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error(
        "Il cessionario è una pubblica amministrazione e non può acquisire crediti (DL 11/2023 art. 1) (R-PA)"
    )]
    Pa,
    #[error("Credito non cedibile: {0} ({rule})", rule = .0.rule())]
    NotCedible(NotCedibleReason),
    #[error(
        "Dopo {counted} cessioni successive alla prima comunicazione questo credito può essere ceduto solo a banche, intermediari finanziari (art. 106 TUB), società del gruppo bancario o assicurazioni; il cessionario indicato è una {}: indicare un soggetto qualificato (R-CHAIN)",
        class.as_it()
    )]
    NotQualified { class: PartyClass, counted: u32 },
    /// The chain is exhausted (R-CHAIN): what refuses is the limit, though a bank may
    /// still cede to its own clients outside it (R-BANK-CLIENT).
    #[error(
        "Il credito ha esaurito le cessioni consentite: la banca può cederlo ancora solo a propri correntisti diversi dai consumatori, che non potranno cederlo di nuovo; il cessionario indicato non lo è (R-CHAIN)"
    )]
    OnlyOwnClients,
    #[error(
        "Il credito ecobonus ceduto ai sensi dell'art. 14 DL 63/2013 non può essere ceduto a una {} (solo i beneficiari nella no tax area possono cedere a banche e intermediari finanziari) (R-ECO-2018)",
        class.as_it()
    )]
    Eco2018 { class: PartyClass },
}

impl ChainError {
    pub fn rule(&self) -> &'static str {
        match self {
            ChainError::Pa => "R-PA",
            ChainError::NotCedible(reason) => reason.rule(),
            ChainError::NotQualified { .. } => "R-CHAIN",
            ChainError::OnlyOwnClients => "R-CHAIN",
            ChainError::Eco2018 { .. } => "R-ECO-2018",
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ChainError::Pa => "r_pa",
            ChainError::NotCedible(_) => "not_cedible",
            ChainError::NotQualified { .. } => "r_chain_not_qualified",
            ChainError::OnlyOwnClients => "r_chain_exhausted",
            ChainError::Eco2018 { .. } => "r_eco_2018",
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;
    use crate::test_support::{d, law};

    const TODAY: NaiveDate = match NaiveDate::from_ymd_opt(2024, 6, 3) {
        Some(d) => d,
        None => panic!("valid date"),
    };

    /// A tracciabile superbonus rata held by a company, no cessions yet.
    fn rata() -> RataHistory {
        RataHistory {
            type_key: "superbonus".into(),
            regime: CessionRegime::Art121,
            holder: PartyClass::Company,
            counts: CessionCounts::default(),
            received_as_bank_client: false,
            tracciabile: true,
            f24_choice: F24Choice::NotDeclared,
            split_rata: false,
            received_by_cession_on: None,
            last_day_of_use: Some(d(2024, 12, 31)),
            beneficiary_no_tax_area: false,
            option_cessione_on: None,
            suspended: false,
            seized: false,
        }
    }

    fn with_counts(from_cutoff: u32, holder: PartyClass) -> RataHistory {
        RataHistory {
            counts: CessionCounts {
                before_cutoff: 0,
                from_cutoff,
            },
            holder,
            ..rata()
        }
    }

    fn to(class: PartyClass) -> Cessionario {
        Cessionario {
            class,
            client_of_cedente: BankClient::No,
        }
    }

    fn client(kind: BankClient) -> Cessionario {
        Cessionario {
            class: PartyClass::Company,
            client_of_cedente: kind,
        }
    }

    const COUNTED: CessionEffect = CessionEffect {
        counted: true,
        to_bank_client: false,
    };

    #[test]
    fn r_chain_first_cession_after_the_option_to_anyone() {
        let law = law();
        assert_eq!(cedibilita(&rata(), TODAY, &law), Cedibilita::Anyone);
        assert_eq!(
            check_cession(&rata(), to(PartyClass::Person), TODAY, &law).unwrap(),
            COUNTED
        );
    }

    #[test]
    fn r_chain_second_and_third_cessions_only_to_soggetti_qualificati() {
        let law = law();
        for counted in [1, 2] {
            let h = with_counts(counted, PartyClass::Bank);
            assert_eq!(cedibilita(&h, TODAY, &law), Cedibilita::QualifiedOnly);
            for class in [
                PartyClass::Bank,
                PartyClass::FinancialIntermediary,
                PartyClass::Insurer,
            ] {
                assert_eq!(check_cession(&h, to(class), TODAY, &law).unwrap(), COUNTED);
            }
            let e = check_cession(
                &with_counts(counted, PartyClass::Company),
                to(PartyClass::Company),
                TODAY,
                &law,
            )
            .unwrap_err();
            assert_eq!((e.rule(), e.code()), ("R-CHAIN", "r_chain_not_qualified"));
            assert!(e.to_string().contains("società o ente"), "{e}");
        }
    }

    #[test]
    fn r_chain_rata_at_its_last_allowed_cession_is_non_cedibile() {
        let law = law();
        let h = with_counts(3, PartyClass::Insurer);
        let expected = NotCedibleReason::ChainExhausted { counted: 3, max: 3 };
        assert_eq!(
            cedibilita(&h, TODAY, &law),
            Cedibilita::NotCedible(expected.clone())
        );
        let e = check_cession(&h, to(PartyClass::Bank), TODAY, &law).unwrap_err();
        assert_eq!(e, ChainError::NotCedible(expected));
        assert_eq!(e.rule(), "R-CHAIN");
        assert!(e.to_string().contains("3 cessioni"), "{e}");
    }

    #[test]
    fn r_chain_no_limit_for_cessions_before_2022_02_17() {
        let law = law();
        let h = with_counts(7, PartyClass::Person);
        assert_eq!(cedibilita(&h, d(2022, 2, 16), &law), Cedibilita::Anyone);
    }

    #[test]
    fn r_chain_cessions_before_the_cutoff_do_not_count() {
        let law = law();
        let h = RataHistory {
            counts: CessionCounts {
                before_cutoff: 4,
                from_cutoff: 0,
            },
            ..rata()
        };
        assert_eq!(cedibilita(&h, TODAY, &law), Cedibilita::Anyone);
    }

    #[test]
    fn r_chain_next_counts_by_date_of_cession() {
        let law = law();
        let c = CessionCounts::default();
        let after = next_counts(c, COUNTED, d(2022, 2, 17), &law);
        assert_eq!(
            after,
            CessionCounts {
                before_cutoff: 0,
                from_cutoff: 1
            }
        );
        let before = next_counts(c, COUNTED, d(2022, 2, 16), &law);
        assert_eq!(
            before,
            CessionCounts {
                before_cutoff: 1,
                from_cutoff: 0
            }
        );
        let bank = CessionEffect {
            counted: false,
            to_bank_client: true,
        };
        assert_eq!(next_counts(after, bank, TODAY, &law), after);
    }

    #[test]
    fn r_bank_client_bank_at_the_limit_cedes_only_to_own_non_consumer_clients() {
        let law = law();
        let h = with_counts(3, PartyClass::Bank);
        assert_eq!(cedibilita(&h, TODAY, &law), Cedibilita::OwnBankClientsOnly);
        let effect = check_cession(&h, client(BankClient::NonConsumer), TODAY, &law).unwrap();
        assert_eq!(
            effect,
            CessionEffect {
                counted: false,
                to_bank_client: true
            }
        );
        for refused in [
            client(BankClient::Consumer),
            client(BankClient::No),
            to(PartyClass::Bank),
        ] {
            // The limit refuses: R-CHAIN, not the bank-client exception that remains.
            let e = check_cession(&h, refused, TODAY, &law).unwrap_err();
            assert_eq!((e.rule(), e.code()), ("R-CHAIN", "r_chain_exhausted"));
        }
    }

    #[test]
    fn r_bank_client_outside_the_count_when_only_qualified_remain() {
        let law = law();
        let h = with_counts(1, PartyClass::Bank);
        let effect = check_cession(&h, client(BankClient::Professional), TODAY, &law).unwrap();
        assert!(effect.to_bank_client && !effect.counted);
        // A client the count allows anyway is an ordinary cession.
        assert_eq!(
            check_cession(
                &rata_held_by_bank(),
                client(BankClient::NonConsumer),
                TODAY,
                &law
            )
            .unwrap(),
            COUNTED
        );
    }

    fn rata_held_by_bank() -> RataHistory {
        RataHistory {
            holder: PartyClass::Bank,
            ..rata()
        }
    }

    #[test]
    fn r_bank_client_the_client_may_not_cede_further() {
        let h = RataHistory {
            received_as_bank_client: true,
            ..rata()
        };
        let reason = NotCedibleReason::BankClient;
        assert_eq!(
            cedibilita(&h, TODAY, &law()),
            Cedibilita::NotCedible(reason.clone())
        );
        assert_eq!(reason.rule(), "R-BANK-CLIENT");
    }

    #[test]
    fn r_bank_client_only_professional_clients_before_l_91_2022() {
        let law = law();
        let h = with_counts(3, PartyClass::Bank);
        let june = d(2022, 6, 15);
        assert!(check_cession(&h, client(BankClient::Professional), june, &law).is_ok());
        assert!(check_cession(&h, client(BankClient::NonConsumer), june, &law).is_err());
        assert!(check_cession(&h, client(BankClient::NonConsumer), d(2022, 7, 16), &law).is_ok());
        // Before DL 50/2022 the exception did not exist.
        let e =
            check_cession(&h, client(BankClient::Professional), d(2022, 5, 17), &law).unwrap_err();
        assert_eq!(e.rule(), "R-CHAIN");
    }

    #[test]
    fn r_once_one_cession_then_f24_only() {
        let law = law();
        let once = RataHistory {
            regime: CessionRegime::Once,
            ..rata()
        };
        assert_eq!(cedibilita(&once, TODAY, &law), Cedibilita::Once);
        assert_eq!(Cedibilita::Once.label(), "cedibile una sola volta");
        let ceded = RataHistory {
            counts: CessionCounts {
                before_cutoff: 1,
                from_cutoff: 0,
            },
            ..once
        };
        let e = check_cession(&ceded, to(PartyClass::Bank), TODAY, &law).unwrap_err();
        assert_eq!(e, ChainError::NotCedible(NotCedibleReason::Once));
        assert_eq!(e.rule(), "R-ONCE");
    }

    #[test]
    fn r_pa_may_not_acquire_from_2023_02_17() {
        let law = law();
        let e = check_cession(
            &rata(),
            to(PartyClass::PublicAdministration),
            d(2023, 2, 17),
            &law,
        )
        .unwrap_err();
        assert_eq!((e.rule(), e.code()), ("R-PA", "r_pa"));
        assert!(check_may_acquire(PartyClass::PublicAdministration, d(2023, 2, 16), &law).is_ok());
        assert!(check_may_acquire(PartyClass::Company, d(2024, 1, 1), &law).is_ok());
    }

    /// DL 4/2022 art. 28 as the platform applied it from 17/02/2022 to 25/02/2022: any art.
    /// 121 credit is cedibile una sola volta; then DL 13/2022's 1 + 2 counts that cession.
    #[test]
    fn r_once_dl_4_2022_window_one_further_cession_then_f24_only() {
        let law = law();
        let window = d(2022, 2, 18);
        // Ceded any number of times before the cut-off: one more cession, to anyone.
        let old = RataHistory {
            counts: CessionCounts {
                before_cutoff: 3,
                from_cutoff: 0,
            },
            last_day_of_use: None,
            ..rata()
        };
        assert_eq!(cedibilita(&old, d(2022, 2, 16), &law), Cedibilita::Anyone);
        assert_eq!(cedibilita(&old, window, &law), Cedibilita::Once);
        let effect = check_cession(&old, to(PartyClass::Person), window, &law).unwrap();
        assert!(effect.counted);
        // The cessionario of that cession may only use it in F24 while the window lasts...
        let next = RataHistory {
            counts: next_counts(old.counts, effect, window, &law),
            ..old.clone()
        };
        let e = check_cession(&next, to(PartyClass::Bank), d(2022, 2, 25), &law).unwrap_err();
        assert_eq!(e, ChainError::NotCedible(NotCedibleReason::Once));
        assert_eq!(e.rule(), "R-ONCE");
        // ...and under DL 13/2022 that cession was its free one: soggetti qualificati only.
        assert_eq!(
            cedibilita(&next, d(2022, 2, 26), &law),
            Cedibilita::QualifiedOnly
        );
    }

    /// In the window, a sconto leaves the supplier its one cession; a cessione was the one
    /// cession, so the first cessionario may not cede (DL 4/2022 art. 28 c.1).
    #[test]
    fn r_once_dl_4_2022_window_a_cessione_option_was_the_one_cession() {
        let law = law();
        let window = d(2022, 2, 21);
        let sconto = RataHistory {
            last_day_of_use: None,
            ..rata()
        };
        assert_eq!(cedibilita(&sconto, window, &law), Cedibilita::Once);
        let cessione = RataHistory {
            option_cessione_on: Some(d(2022, 2, 18)),
            ..sconto.clone()
        };
        let e = check_cession(&cessione, to(PartyClass::Company), window, &law).unwrap_err();
        assert_eq!(e.rule(), "R-ONCE");
        // A cessione communicated before the cut-off is not counted: one further cession.
        let earlier = RataHistory {
            option_cessione_on: Some(d(2022, 2, 16)),
            ..sconto
        };
        assert_eq!(cedibilita(&earlier, window, &law), Cedibilita::Once);
        // DL 13/2022 does not count the option (SPEC §5; see rules.toml for the conflict).
        assert_eq!(
            cedibilita(&cessione, d(2022, 2, 26), &law),
            Cedibilita::Anyone
        );
    }

    fn eco() -> RataHistory {
        RataHistory {
            type_key: "ecobonus_art14".into(),
            regime: CessionRegime::Eco2018,
            tracciabile: false,
            last_day_of_use: None,
            beneficiary_no_tax_area: false,
            ..rata()
        }
    }

    #[test]
    fn r_eco_2018_never_to_banks_or_financial_intermediaries() {
        let law = law();
        assert_eq!(
            cedibilita(&eco(), TODAY, &law),
            Cedibilita::AnyoneExceptBanks
        );
        for class in [PartyClass::Bank, PartyClass::FinancialIntermediary] {
            let e = check_cession(&eco(), to(class), TODAY, &law).unwrap_err();
            assert_eq!((e.rule(), e.code()), ("R-ECO-2018", "r_eco_2018"));
        }
        for class in [PartyClass::Person, PartyClass::Company, PartyClass::Insurer] {
            assert!(check_cession(&eco(), to(class), TODAY, &law).is_ok());
        }
    }

    #[test]
    fn r_eco_2018_no_tax_area_beneficiary_may_cede_to_banks() {
        assert!(check_eco2018_option(PartyClass::Bank, true).is_ok());
        assert!(check_eco2018_option(PartyClass::FinancialIntermediary, true).is_ok());
        let e = check_eco2018_option(PartyClass::Bank, false).unwrap_err();
        assert!(e.to_string().contains("no tax area"), "{e}");
        assert!(check_eco2018_option(PartyClass::Company, false).is_ok());
    }

    #[test]
    fn r_eco_2018_no_tax_area_credit_reaches_banks_later_in_the_chain() {
        let law = law();
        let declared = RataHistory {
            beneficiary_no_tax_area: true,
            ..eco()
        };
        assert_eq!(cedibilita(&declared, TODAY, &law), Cedibilita::Anyone);
        for class in [PartyClass::Bank, PartyClass::FinancialIntermediary] {
            assert!(check_cession(&declared, to(class), TODAY, &law).is_ok());
        }
    }

    #[test]
    fn r_eco_2018_catalogue_type_uses_the_regime() {
        let cat = Catalogue::builtin().unwrap();
        let t = cat.get("ecobonus_art14").unwrap();
        assert_eq!(t.cession_regime, CessionRegime::Eco2018);
        assert_eq!(
            cat.by_code("6890").map(|t| t.key.as_str()),
            Some("ecobonus_art14")
        );
    }

    fn rent(received: Option<NaiveDate>) -> RataHistory {
        RataHistory {
            type_key: "canoni_locazione".into(),
            regime: CessionRegime::Art122,
            tracciabile: false,
            received_by_cession_on: received,
            last_day_of_use: None,
            beneficiary_no_tax_area: false,
            ..rata()
        }
    }

    #[test]
    fn r_f24_window_122_further_cession_only_within_the_year_of_cession() {
        let law = law();
        let h = rent(Some(d(2020, 9, 1)));
        assert_eq!(cedibilita(&h, d(2020, 12, 31), &law), Cedibilita::Anyone);
        assert_eq!(
            cedibilita(&h, d(2021, 1, 1), &law),
            Cedibilita::NotCedible(NotCedibleReason::Art122YearClosed { year: 2020 })
        );
        // The beneficiary may cede (also partially, see rules::partial_cession_allowed).
        assert_eq!(
            cedibilita(&rent(None), d(2021, 6, 1), &law),
            Cedibilita::Anyone
        );
    }

    #[test]
    fn art122_repeated_cessions_have_no_count_limit() {
        let h = RataHistory {
            counts: CessionCounts {
                before_cutoff: 0,
                from_cutoff: 9,
            },
            ..rent(Some(d(2021, 3, 1)))
        };
        assert_eq!(cedibilita(&h, d(2021, 6, 1), &law()), Cedibilita::Anyone);
        assert!(check_cession(&h, to(PartyClass::Person), d(2021, 6, 1), &law()).is_ok());
    }

    #[test]
    fn art122_cession_deadline_is_data() {
        let law = law();
        assert_eq!(
            cedibilita(&rent(None), d(2022, 1, 1), &law),
            Cedibilita::NotCedible(NotCedibleReason::CessionPeriodOver {
                last_day: d(2021, 12, 31)
            })
        );
        let cat = Catalogue::builtin().unwrap();
        for deadline in law.cession_deadlines() {
            assert!(
                cat.get(&deadline.type_key).is_some(),
                "{}",
                deadline.type_key
            );
        }
    }

    #[test]
    fn cedibilita_blocked_states_name_their_rule() {
        let law = law();
        let cases = [
            (
                RataHistory {
                    suspended: true,
                    ..rata()
                },
                "R-SUSP",
            ),
            (
                RataHistory {
                    seized: true,
                    ..rata()
                },
                "R-SEIZE",
            ),
            (
                RataHistory {
                    split_rata: true,
                    ..rata()
                },
                "R-SPLIT-NOCEDE",
            ),
            (
                RataHistory {
                    f24_choice: F24Choice::Declared { on: d(2024, 1, 2) },
                    ..rata()
                },
                "R-F24-CHOICE",
            ),
            (
                RataHistory {
                    last_day_of_use: Some(d(2023, 12, 31)),
                    beneficiary_no_tax_area: false,
                    ..rata()
                },
                "R-F24-WINDOW-121",
            ),
        ];
        for (h, rule) in cases {
            match cedibilita(&h, TODAY, &law) {
                Cedibilita::NotCedible(reason) => assert_eq!(reason.rule(), rule),
                other => panic!("{rule}: {other:?}"),
            }
        }
        // A revoked choice is cedible again.
        let revoked = RataHistory {
            f24_choice: F24Choice::Revoked { on: d(2024, 2, 1) },
            ..rata()
        };
        assert_eq!(cedibilita(&revoked, TODAY, &law), Cedibilita::Anyone);
    }

    #[test]
    fn party_class_strings_match_the_store() {
        for s in [
            "person",
            "company",
            "bank",
            "financial_intermediary",
            "insurer",
            "public_administration",
        ] {
            assert_eq!(PartyClass::parse(s).map(PartyClass::as_str), Some(s));
        }
        assert_eq!(PartyClass::parse("bank_group"), None);
    }
}
