//! `cessio rent-credit`: the R-RENT calculator (art. 28 DL 34/2020) from flags. It parses the
//! input, calls `cessio_core::rent::compute` and prints a per-month table and the total. No
//! rules here: the figures of the law come from `catalogue/rules.toml`.
//!
//! Exit codes: 0 on success (also when no month qualifies: that is an answer), 2 on bad
//! input, with a message saying which flag to correct.

use anyhow::{Context, Result};
use cessio_core::law::LawTable;
use cessio_core::money::Cents;
use cessio_core::rent::{
    Activity, LeaseKind, MonthOutcome, RentCredit, RentInput, RentMonth, compute, month_name,
    percent_for,
};
use chrono::NaiveDate;

/// The rent-credit law this command computes (a row of `catalogue/rules.toml`).
const LAW_KEY: &str = "art28_2020";

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LeaseArg {
    /// Lease, leasing or concession of non-residential property (60%).
    NonResidential,
    /// Business lease including a non-residential property (30%).
    BusinessLease,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ActivityArg {
    Ordinary,
    /// Hotel (ATECO 55): no revenue limit.
    Hotel,
    /// Agritourism: no revenue limit.
    Agritourism,
    /// Non-commercial body, institutional activity only: no revenue or drop checks.
    NonCommercial,
}

/// Amounts accept the Italian (`1.234,56`) or the dot (`1234.56`) format.
#[derive(clap::Args, Debug)]
pub struct RentArgs {
    /// Kind of contract.
    #[arg(long, value_enum)]
    lease: LeaseArg,
    /// Kind of activity.
    #[arg(long, value_enum, default_value = "ordinary")]
    activity: ActivityArg,
    /// Seasonal hotel or agritourism activity: April, May, June instead of March, April, May.
    #[arg(long)]
    seasonal: bool,
    /// Premises used both professionally and privately: credit on 50% of the rent.
    #[arg(long)]
    promiscuous: bool,
    /// Revenue of 2019 (required for ordinary activities).
    #[arg(long = "revenue-2019")]
    revenue_2019: Option<String>,

    #[arg(long)]
    rent_march: Option<String>,
    #[arg(long = "turnover-2019-march")]
    turnover_2019_march: Option<String>,
    #[arg(long = "turnover-2020-march")]
    turnover_2020_march: Option<String>,
    /// Day the March rent was paid (YYYY-MM-DD).
    #[arg(long)]
    paid_march: Option<NaiveDate>,

    #[arg(long)]
    rent_april: Option<String>,
    #[arg(long = "turnover-2019-april")]
    turnover_2019_april: Option<String>,
    #[arg(long = "turnover-2020-april")]
    turnover_2020_april: Option<String>,
    #[arg(long)]
    paid_april: Option<NaiveDate>,

    #[arg(long)]
    rent_may: Option<String>,
    #[arg(long = "turnover-2019-may")]
    turnover_2019_may: Option<String>,
    #[arg(long = "turnover-2020-may")]
    turnover_2020_may: Option<String>,
    #[arg(long)]
    paid_may: Option<NaiveDate>,

    #[arg(long)]
    rent_june: Option<String>,
    #[arg(long = "turnover-2019-june")]
    turnover_2019_june: Option<String>,
    #[arg(long = "turnover-2020-june")]
    turnover_2020_june: Option<String>,
    #[arg(long)]
    paid_june: Option<NaiveDate>,
}

/// The flags of one month, by reference.
struct MonthFlags<'a> {
    month: u32,
    flag: &'static str,
    rent: &'a Option<String>,
    turnover_before: &'a Option<String>,
    turnover: &'a Option<String>,
    paid_on: Option<NaiveDate>,
}

impl RentArgs {
    fn months(&self) -> [MonthFlags<'_>; 4] {
        [
            MonthFlags {
                month: 3,
                flag: "march",
                rent: &self.rent_march,
                turnover_before: &self.turnover_2019_march,
                turnover: &self.turnover_2020_march,
                paid_on: self.paid_march,
            },
            MonthFlags {
                month: 4,
                flag: "april",
                rent: &self.rent_april,
                turnover_before: &self.turnover_2019_april,
                turnover: &self.turnover_2020_april,
                paid_on: self.paid_april,
            },
            MonthFlags {
                month: 5,
                flag: "may",
                rent: &self.rent_may,
                turnover_before: &self.turnover_2019_may,
                turnover: &self.turnover_2020_may,
                paid_on: self.paid_may,
            },
            MonthFlags {
                month: 6,
                flag: "june",
                rent: &self.rent_june,
                turnover_before: &self.turnover_2019_june,
                turnover: &self.turnover_2020_june,
                paid_on: self.paid_june,
            },
        ]
    }
}

/// Runs the command; exits with code 2 on bad input.
pub fn run(args: &RentArgs) -> Result<()> {
    let law = LawTable::builtin().context("loading catalogue/rules.toml")?;
    let rule = law
        .rent(LAW_KEY)
        .with_context(|| format!("rules.toml has no rent row '{LAW_KEY}'"))?;
    let input = match build_input(args) {
        Ok(input) => input,
        Err(message) => bad_input(&message),
    };
    let result = match compute(&input, rule) {
        Ok(result) => result,
        Err(e) => bad_input(&e.to_string()),
    };
    print!(
        "{}",
        render(&input, &result, &rule.name, percent_for(input.lease, rule))
    );
    Ok(())
}

fn bad_input(message: &str) -> ! {
    eprintln!("errore: {message}");
    std::process::exit(2);
}

fn amount(flag: &str, value: &str) -> Result<Cents, String> {
    let cents = Cents::parse_amount(value).map_err(|e| format!("--{flag}: {e}"))?;
    if cents.is_negative() {
        return Err(format!(
            "--{flag}: importo negativo ({cents}), indicare un importo non negativo"
        ));
    }
    Ok(cents)
}

fn build_input(args: &RentArgs) -> Result<RentInput, String> {
    let activity = match args.activity {
        ActivityArg::Ordinary => Activity::Ordinary,
        ActivityArg::Hotel => Activity::Hotel,
        ActivityArg::Agritourism => Activity::Agritourism,
        ActivityArg::NonCommercial => Activity::NonCommercialInstitutional,
    };
    let checks = activity != Activity::NonCommercialInstitutional;
    let revenue_before = match (&args.revenue_2019, activity) {
        (Some(v), _) => amount("revenue-2019", v)?,
        (None, Activity::Ordinary) => {
            return Err(
                "indicare i ricavi 2019 con --revenue-2019 (limite di 5 milioni di euro)".into(),
            );
        }
        (None, _) => Cents::ZERO,
    };
    let mut months = Vec::new();
    for m in args.months() {
        let Some(rent) = m.rent else {
            if m.turnover_before.is_some() || m.turnover.is_some() || m.paid_on.is_some() {
                return Err(format!(
                    "dati di {} senza canone: indicare anche --rent-{}",
                    month_name(m.month),
                    m.flag
                ));
            }
            continue;
        };
        let turnover = |flag: String, value: &Option<String>| match value {
            Some(v) => amount(&flag, v),
            None if !checks => Ok(Cents::ZERO),
            None => Err(format!(
                "indicare --{flag}: il calo del fatturato si verifica mese per mese"
            )),
        };
        months.push(RentMonth {
            month: m.month,
            rent: amount(&format!("rent-{}", m.flag), rent)?,
            turnover_before: turnover(format!("turnover-2019-{}", m.flag), m.turnover_before)?,
            turnover: turnover(format!("turnover-2020-{}", m.flag), m.turnover)?,
            paid_on: m.paid_on,
        });
    }
    if months.is_empty() {
        return Err(
            "indicare il canone di almeno un mese, ad esempio --rent-march 1.000,00".into(),
        );
    }
    Ok(RentInput {
        lease: match args.lease {
            LeaseArg::NonResidential => LeaseKind::NonResidential,
            LeaseArg::BusinessLease => LeaseKind::BusinessLease,
        },
        activity,
        seasonal: args.seasonal,
        promiscuous: args.promiscuous,
        revenue_before,
        months,
    })
}

fn render(input: &RentInput, result: &RentCredit, title: &str, percent: u32) -> String {
    use std::fmt::Write;
    let dash = || "-".to_string();
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    let lease = match input.lease {
        LeaseKind::NonResidential => "locazione di immobile non abitativo",
        LeaseKind::BusinessLease => "affitto d'azienda",
    };
    let base = if input.promiscuous {
        " (sul 50% del canone: uso promiscuo)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "Contratto: {lease}, credito {percent}% del canone{base}"
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<8} {:>16} {:>16} {:>16} {:>16}  Esito",
        "Mese",
        "Canone",
        format!("Fatturato {}", result.year - 1),
        format!("Fatturato {}", result.year),
        "Credito"
    );
    for row in &result.months {
        let (rent, before, now) = row.input.map_or_else(
            || (dash(), dash(), dash()),
            |m| {
                (
                    m.rent.to_string(),
                    m.turnover_before.to_string(),
                    m.turnover.to_string(),
                )
            },
        );
        let (credit, outcome) = match &row.outcome {
            MonthOutcome::Eligible {
                credit,
                usable_from: Some(day),
            } => (
                *credit,
                format!("spettante, utilizzabile dal {}", day.format("%d/%m/%Y")),
            ),
            MonthOutcome::Eligible {
                credit,
                usable_from: None,
            } => (
                *credit,
                "spettante, utilizzabile dopo il pagamento del canone (o con la cessione al locatore)"
                    .to_string(),
            ),
            MonthOutcome::NotEligible(reason) => (Cents::ZERO, format!("non spettante: {reason}")),
        };
        let _ = writeln!(
            out,
            "{:<8} {:>16} {:>16} {:>16} {:>16}  {outcome}",
            month_name(row.month),
            rent,
            before,
            now,
            credit.to_string()
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Totale credito: {}", result.total);
    if result.rounded_down {
        let _ = writeln!(
            out,
            "Nota: i crediti con frazioni di centesimo sono arrotondati per difetto al centesimo."
        );
    }
    out
}
