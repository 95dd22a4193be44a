//! SPEC §6 R-RENT: the rent credit of art. 28 DL 34/2020 (seed S2, circ. 14/E/2020), month
//! by month. The law's figures (percentages, months, revenue limit, minimum drop) are a row
//! of `catalogue/rules.toml` ([`RentRule`]); this module only applies them.
//!
//! For each month of the law (March–May 2020; April–June for seasonal hotel and
//! agritourism activities):
//!
//! 1. revenue of 2019 at most €5 million, except hotels and agritourism (and non-commercial
//!    bodies for their institutional activity, which need neither check);
//! 2. the month's turnover at least 50% below the same month of 2019:
//!    `turnover_2020 × 100 ≤ turnover_2019 × (100 − 50)`; with no 2019 turnover for the month
//!    the drop cannot be measured and the month is refused (the exemption for activities
//!    started from 2019 is not modelled);
//! 3. credit = 60% of the month's rent (non-residential lease) or 30% (business lease),
//!    computed on 50% of the rent for premises used both professionally and privately.
//!
//! Amounts are integer cents; a credit with a fraction of a cent is rounded **down** to the
//! cent (the law's credit is never exceeded) and [`RentCredit::rounded_down`] says so, so
//! that no rounding is silent. The credit is usable after the rent is paid (cash principle):
//! `usable_from` is the payment day, or `None` while unpaid (ceding the credit to the
//! landlord counts as payment for the ceded part: see [`landlord_cession`]).

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::law::RentRule;
use crate::money::Cents;

/// The contract the rent is paid under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeaseKind {
    /// Lease, leasing or concession of non-residential property (60%).
    NonResidential,
    /// Business lease or complex-services contract including a non-residential property (30%).
    BusinessLease,
}

/// The tenant's activity, as the revenue limit and the months depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    Ordinary,
    /// ATECO section 55: no revenue limit.
    Hotel,
    /// No revenue limit.
    Agritourism,
    /// Non-commercial body using the premises only for its institutional activity: neither
    /// the revenue limit nor the drop applies.
    NonCommercialInstitutional,
}

/// The figures of one month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RentMonth {
    /// 1–12.
    pub month: u32,
    /// Rent of the month (canone).
    pub rent: Cents,
    /// Turnover of the same month of the previous year (2019).
    pub turnover_before: Cents,
    /// Turnover of the month (2020).
    pub turnover: Cents,
    /// Day the rent was paid, if it was.
    pub paid_on: Option<NaiveDate>,
}

/// The whole input of the calculator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RentInput {
    pub lease: LeaseKind,
    pub activity: Activity,
    /// Seasonal hotel or agritourism activity: April–June instead of March–May.
    pub seasonal: bool,
    /// Premises used both for a profession and privately (art. 54 TUIR).
    pub promiscuous: bool,
    /// Revenue of the previous tax year (2019).
    pub revenue_before: Cents,
    pub months: Vec<RentMonth>,
}

/// Why a month gives no credit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MonthRefusal {
    /// No figures were given for the month.
    NoRent,
    RevenueOverLimit {
        revenue: Cents,
        limit: Cents,
    },
    NoTurnoverBefore,
    InsufficientDrop {
        /// The drop in whole percent, rounded down (negative for a rise).
        drop_percent: i64,
        min_percent: u32,
    },
}

impl fmt::Display for MonthRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MonthRefusal::NoRent => f.write_str("canone non indicato"),
            MonthRefusal::RevenueOverLimit { revenue, limit } => write!(
                f,
                "ricavi dell'anno precedente {revenue} oltre il limite di {limit}"
            ),
            MonthRefusal::NoTurnoverBefore => f.write_str(
                "fatturato dello stesso mese dell'anno precedente pari a zero: calo non misurabile",
            ),
            MonthRefusal::InsufficientDrop {
                drop_percent,
                min_percent,
            } => write!(
                f,
                "calo del fatturato {drop_percent}% (minimo {min_percent}%)"
            ),
        }
    }
}

/// The outcome of one month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum MonthOutcome {
    Eligible {
        credit: Cents,
        /// Day from which it may be used (the rent's payment); `None` while unpaid.
        usable_from: Option<NaiveDate>,
    },
    NotEligible(MonthRefusal),
}

/// One row of the result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct MonthResult {
    pub month: u32,
    /// The figures given for the month, if any.
    pub input: Option<RentMonth>,
    pub outcome: MonthOutcome,
}

/// The calculator's result: one row per month of the law, and the total.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RentCredit {
    pub law_key: String,
    pub year: i32,
    pub months: Vec<MonthResult>,
    pub total: Cents,
    /// Some month's credit had a fraction of a cent, dropped.
    pub rounded_down: bool,
}

/// Why the input was refused as a whole (the person must correct it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RentError {
    #[error(
        "Il mese {} non rientra nel credito: mesi ammessi {} (R-RENT)",
        month_name(*month), months_list(allowed)
    )]
    MonthNotInLaw { month: u32, allowed: Vec<u32> },
    #[error("Il mese {} è indicato due volte (R-RENT)", month_name(*month))]
    DuplicateMonth { month: u32 },
    #[error("{field} di {} non valido ({amount}): indicare un importo non negativo (R-RENT)", month_name(*month))]
    Negative {
        field: &'static str,
        month: u32,
        amount: Cents,
    },
    #[error(
        "Ricavi dell'anno precedente non validi ({amount}): indicare un importo non negativo (R-RENT)"
    )]
    NegativeRevenue { amount: Cents },
    #[error(
        "I mesi da aprile a giugno valgono solo per le attività alberghiere o agrituristiche stagionali (R-RENT)"
    )]
    SeasonalNotHotel,
}

impl RentError {
    pub fn rule(&self) -> &'static str {
        "R-RENT"
    }
}

/// Italian name of a month (1–12).
pub fn month_name(month: u32) -> &'static str {
    const NAMES: [&str; 12] = [
        "gennaio",
        "febbraio",
        "marzo",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "agosto",
        "settembre",
        "ottobre",
        "novembre",
        "dicembre",
    ];
    month
        .checked_sub(1)
        .and_then(|i| NAMES.get(i as usize))
        .copied()
        .unwrap_or("?")
}

fn months_list(months: &[u32]) -> String {
    months
        .iter()
        .map(|m| month_name(*m))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The months the input is computed for.
pub fn months_for(input: &RentInput, rule: &RentRule) -> Vec<u32> {
    if input.seasonal {
        rule.seasonal_months.clone()
    } else {
        rule.months.clone()
    }
}

/// The percentage of the rent for this lease.
pub fn percent_for(lease: LeaseKind, rule: &RentRule) -> u32 {
    match lease {
        LeaseKind::NonResidential => rule.non_residential_percent,
        LeaseKind::BusinessLease => rule.business_lease_percent,
    }
}

/// `amount × a% × b%`, rounded down to the cent; `true` when a fraction was dropped.
fn percent_of(amount: Cents, a: u32, b: u32) -> (Cents, bool) {
    let num = i128::from(amount.get()) * i128::from(a) * i128::from(b);
    let credit = num / 10_000;
    let exact = num % 10_000 == 0;
    (
        Cents::new(i64::try_from(credit).unwrap_or(i64::MAX)),
        !exact,
    )
}

/// R-RENT: computes the credit month by month.
pub fn compute(input: &RentInput, rule: &RentRule) -> Result<RentCredit, RentError> {
    if input.seasonal && !matches!(input.activity, Activity::Hotel | Activity::Agritourism) {
        return Err(RentError::SeasonalNotHotel);
    }
    if input.revenue_before.is_negative() {
        return Err(RentError::NegativeRevenue {
            amount: input.revenue_before,
        });
    }
    let allowed = months_for(input, rule);
    for (i, m) in input.months.iter().enumerate() {
        if !allowed.contains(&m.month) {
            return Err(RentError::MonthNotInLaw {
                month: m.month,
                allowed: allowed.clone(),
            });
        }
        if input.months[..i].iter().any(|p| p.month == m.month) {
            return Err(RentError::DuplicateMonth { month: m.month });
        }
        for (field, amount) in [
            ("Canone", m.rent),
            ("Fatturato dell'anno precedente", m.turnover_before),
            ("Fatturato", m.turnover),
        ] {
            if amount.is_negative() {
                return Err(RentError::Negative {
                    field,
                    month: m.month,
                    amount,
                });
            }
        }
    }

    let checks = input.activity != Activity::NonCommercialInstitutional;
    let revenue_limited = input.activity == Activity::Ordinary;
    let percent = percent_for(input.lease, rule);
    let base_percent = if input.promiscuous {
        rule.promiscuous_base_percent
    } else {
        100
    };
    let mut rounded_down = false;
    let mut total = Cents::ZERO;
    let mut months = Vec::with_capacity(allowed.len());
    for month in allowed {
        let given = input.months.iter().find(|m| m.month == month).copied();
        let outcome = match given {
            None => MonthOutcome::NotEligible(MonthRefusal::NoRent),
            Some(_) if revenue_limited && input.revenue_before > rule.revenue_limit => {
                MonthOutcome::NotEligible(MonthRefusal::RevenueOverLimit {
                    revenue: input.revenue_before,
                    limit: rule.revenue_limit,
                })
            }
            Some(m) => match drop_refusal(&m, rule, checks) {
                Some(refusal) => MonthOutcome::NotEligible(refusal),
                None => {
                    let (credit, dropped) = percent_of(m.rent, percent, base_percent);
                    rounded_down |= dropped;
                    total = total.checked_add(credit).unwrap_or(Cents::MAX);
                    MonthOutcome::Eligible {
                        credit,
                        usable_from: m.paid_on,
                    }
                }
            },
        };
        months.push(MonthResult {
            month,
            input: given,
            outcome,
        });
    }
    Ok(RentCredit {
        law_key: rule.key.clone(),
        year: rule.year,
        months,
        total,
        rounded_down,
    })
}

fn drop_refusal(m: &RentMonth, rule: &RentRule, checks: bool) -> Option<MonthRefusal> {
    if !checks {
        return None;
    }
    if !m.turnover_before.is_positive() {
        return Some(MonthRefusal::NoTurnoverBefore);
    }
    let before = i128::from(m.turnover_before.get());
    let now = i128::from(m.turnover.get());
    if now * 100 <= before * i128::from(100 - rule.min_drop_percent) {
        return None;
    }
    let drop = (before - now) * 100 / before;
    Some(MonthRefusal::InsufficientDrop {
        drop_percent: i64::try_from(drop).unwrap_or(i64::MIN),
        min_percent: rule.min_drop_percent,
    })
}

/// A cession of the month's credit to the landlord (seed S2 §5.2): the rent counts as paid
/// for the ceded part, and the tenant pays the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LandlordCession {
    pub credit: Cents,
    pub tenant_pays: Cents,
}

/// R-RENT: credit and the difference the tenant still pays when the credit of a month's
/// `rent` is ceded to the landlord (40% of the rent at 60%, 70% at 30%).
pub fn landlord_cession(rent: Cents, lease: LeaseKind, rule: &RentRule) -> LandlordCession {
    let (credit, _) = percent_of(rent, percent_for(lease, rule), 100);
    LandlordCession {
        credit,
        tenant_pays: rent.checked_sub(credit).unwrap_or(Cents::ZERO),
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    //! One test per worked example of seed S2 (circ. 14/E/2020), named after R-RENT.

    use super::*;
    use crate::law::LawTable;

    fn rule() -> RentRule {
        LawTable::builtin()
            .unwrap()
            .rent("art28_2020")
            .unwrap()
            .clone()
    }

    fn eur(e: i64) -> Cents {
        Cents::new(e * 100)
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    /// A month with the rent paid in the month and turnover down 60%.
    fn month(month: u32, rent: i64) -> RentMonth {
        RentMonth {
            month,
            rent: eur(rent),
            turnover_before: eur(10_000),
            turnover: eur(4_000),
            paid_on: Some(d(2020, month, 5)),
        }
    }

    fn input(months: Vec<RentMonth>) -> RentInput {
        RentInput {
            lease: LeaseKind::NonResidential,
            activity: Activity::Ordinary,
            seasonal: false,
            promiscuous: false,
            revenue_before: eur(1_000_000),
            months,
        }
    }

    fn credits(result: &RentCredit) -> Vec<Option<Cents>> {
        result
            .months
            .iter()
            .map(|m| match m.outcome {
                MonthOutcome::Eligible { credit, .. } => Some(credit),
                MonthOutcome::NotEligible(_) => None,
            })
            .collect()
    }

    #[test]
    fn r_rent_60_percent_of_non_residential_rent_for_march_april_may() {
        let r = compute(
            &input(vec![month(3, 1_000), month(4, 1_000), month(5, 1_000)]),
            &rule(),
        )
        .unwrap();
        assert_eq!(
            r.months.iter().map(|m| m.month).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert_eq!(credits(&r), [Some(eur(600)); 3]);
        assert_eq!(r.total, eur(1_800));
        assert!(!r.rounded_down);
    }

    #[test]
    fn r_rent_30_percent_of_business_lease() {
        let i = RentInput {
            lease: LeaseKind::BusinessLease,
            ..input(vec![month(3, 1_000)])
        };
        let r = compute(&i, &rule()).unwrap();
        assert_eq!(credits(&r)[0], Some(eur(300)));
        assert_eq!(r.total, eur(300));
    }

    #[test]
    fn r_rent_revenue_above_5_million_denied_unless_hotel_or_agritourism() {
        let rule = rule();
        let at_limit = RentInput {
            revenue_before: eur(5_000_000),
            ..input(vec![month(3, 1_000)])
        };
        assert_eq!(compute(&at_limit, &rule).unwrap().total, eur(600));
        let over = RentInput {
            revenue_before: Cents::new(500_000_001),
            ..at_limit.clone()
        };
        let r = compute(&over, &rule).unwrap();
        assert_eq!(r.total, Cents::ZERO);
        assert_eq!(
            r.months[0].outcome,
            MonthOutcome::NotEligible(MonthRefusal::RevenueOverLimit {
                revenue: Cents::new(500_000_001),
                limit: eur(5_000_000)
            })
        );
        for activity in [Activity::Hotel, Activity::Agritourism] {
            let hotel = RentInput {
                activity,
                revenue_before: eur(8_000_000),
                ..over.clone()
            };
            assert_eq!(compute(&hotel, &rule).unwrap().total, eur(600));
        }
    }

    #[test]
    fn r_rent_drop_checked_month_by_month_credit_for_one_month_only() {
        // "può verificarsi il caso che spetti il credito d'imposta solo per uno dei mesi".
        let march = RentMonth {
            turnover: eur(6_000),
            ..month(3, 1_000)
        };
        let may = RentMonth {
            turnover: eur(12_000),
            ..month(5, 1_000)
        };
        let r = compute(&input(vec![march, month(4, 1_000), may]), &rule()).unwrap();
        assert_eq!(credits(&r), [None, Some(eur(600)), None]);
        assert_eq!(r.total, eur(600));
        assert_eq!(
            r.months[0].outcome,
            MonthOutcome::NotEligible(MonthRefusal::InsufficientDrop {
                drop_percent: 40,
                min_percent: 50
            })
        );
        assert_eq!(
            r.months[2].outcome.clone(),
            MonthOutcome::NotEligible(MonthRefusal::InsufficientDrop {
                drop_percent: -20,
                min_percent: 50
            })
        );
    }

    #[test]
    fn r_rent_drop_of_exactly_50_percent_is_enough() {
        let half = RentMonth {
            turnover_before: Cents::new(1_000_001),
            turnover: Cents::new(500_000),
            ..month(3, 1_000)
        };
        assert_eq!(
            credits(&compute(&input(vec![half]), &rule()).unwrap())[0],
            Some(eur(600))
        );
        let exactly = RentMonth {
            turnover: eur(5_000),
            ..month(3, 1_000)
        };
        assert!(credits(&compute(&input(vec![exactly]), &rule()).unwrap())[0].is_some());
        let short = RentMonth {
            turnover: Cents::new(500_001),
            ..month(3, 1_000)
        };
        assert!(credits(&compute(&input(vec![short]), &rule()).unwrap())[0].is_none());
    }

    #[test]
    fn r_rent_seasonal_hotel_april_may_june() {
        let rule = rule();
        let seasonal = RentInput {
            activity: Activity::Hotel,
            seasonal: true,
            ..input(vec![month(4, 2_000), month(5, 2_000), month(6, 2_000)])
        };
        let r = compute(&seasonal, &rule).unwrap();
        assert_eq!(
            r.months.iter().map(|m| m.month).collect::<Vec<_>>(),
            [4, 5, 6]
        );
        assert_eq!(r.total, eur(3_600));
        let march = RentInput {
            months: vec![month(3, 2_000)],
            ..seasonal.clone()
        };
        assert_eq!(
            compute(&march, &rule).unwrap_err(),
            RentError::MonthNotInLaw {
                month: 3,
                allowed: vec![4, 5, 6]
            }
        );
        let june_not_seasonal = input(vec![month(6, 2_000)]);
        assert!(
            compute(&june_not_seasonal, &rule)
                .unwrap_err()
                .to_string()
                .contains("giugno")
        );
        let not_hotel = RentInput {
            seasonal: true,
            ..input(vec![])
        };
        assert_eq!(
            compute(&not_hotel, &rule).unwrap_err(),
            RentError::SeasonalNotHotel
        );
    }

    #[test]
    fn r_rent_april_rent_paid_in_may_usable_after_payment() {
        // "il canone relativo al mese di aprile sia stato pagato a maggio: il credito risulta
        // fruibile successivamente al pagamento".
        let april = RentMonth {
            paid_on: Some(d(2020, 5, 12)),
            ..month(4, 1_000)
        };
        let unpaid = RentMonth {
            paid_on: None,
            ..month(5, 1_000)
        };
        let r = compute(&input(vec![april, unpaid]), &rule()).unwrap();
        assert_eq!(
            r.months[1].outcome,
            MonthOutcome::Eligible {
                credit: eur(600),
                usable_from: Some(d(2020, 5, 12))
            }
        );
        assert_eq!(
            r.months[2].outcome,
            MonthOutcome::Eligible {
                credit: eur(600),
                usable_from: None
            }
        );
        assert_eq!(
            r.months[0].outcome,
            MonthOutcome::NotEligible(MonthRefusal::NoRent)
        );
    }

    #[test]
    fn r_rent_ceded_to_landlord_tenant_pays_40_or_70_percent() {
        let rule = rule();
        assert_eq!(
            landlord_cession(eur(1_000), LeaseKind::NonResidential, &rule),
            LandlordCession {
                credit: eur(600),
                tenant_pays: eur(400)
            }
        );
        assert_eq!(
            landlord_cession(eur(1_000), LeaseKind::BusinessLease, &rule),
            LandlordCession {
                credit: eur(300),
                tenant_pays: eur(700)
            }
        );
    }

    #[test]
    fn r_rent_promiscuous_professional_premises_credit_on_half_the_rent() {
        let i = RentInput {
            promiscuous: true,
            ..input(vec![month(3, 1_000)])
        };
        assert_eq!(compute(&i, &rule()).unwrap().total, eur(300));
    }

    #[test]
    fn r_rent_non_commercial_body_institutional_activity_needs_no_checks() {
        let no_drop = RentMonth {
            turnover_before: Cents::ZERO,
            turnover: Cents::ZERO,
            ..month(3, 1_000)
        };
        let i = RentInput {
            activity: Activity::NonCommercialInstitutional,
            revenue_before: eur(9_000_000),
            ..input(vec![no_drop])
        };
        assert_eq!(compute(&i, &rule()).unwrap().total, eur(600));
    }

    #[test]
    fn r_rent_fraction_of_a_cent_rounded_down_and_reported() {
        let odd = RentMonth {
            rent: Cents::new(100_001),
            ..month(3, 0)
        };
        let r = compute(&input(vec![odd]), &rule()).unwrap();
        assert_eq!(r.total, Cents::new(60_000));
        assert!(r.rounded_down);
    }

    #[test]
    fn r_rent_no_2019_turnover_refused_and_bad_input_errors() {
        let rule = rule();
        let zero = RentMonth {
            turnover_before: Cents::ZERO,
            ..month(3, 1_000)
        };
        let r = compute(&input(vec![zero]), &rule).unwrap();
        assert_eq!(
            r.months[0].outcome,
            MonthOutcome::NotEligible(MonthRefusal::NoTurnoverBefore)
        );
        assert_eq!(
            compute(&input(vec![month(3, 1), month(3, 2)]), &rule).unwrap_err(),
            RentError::DuplicateMonth { month: 3 }
        );
        let negative = RentMonth {
            rent: Cents::new(-1),
            ..month(4, 0)
        };
        let e = compute(&input(vec![negative]), &rule).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Canone di aprile non valido (-0,01 €): indicare un importo non negativo (R-RENT)"
        );
    }
}
