//! `cessio rent-credit` (R-RENT) run as a user runs it: the built binary, flags in, a table
//! and the total out; exit code 2 and a clear message on bad input.

use std::process::{Command, Output};

fn rent_credit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cessio"))
        .arg("rent-credit")
        .args(args)
        .output()
        .expect("running the cessio binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const MARCH_TO_MAY: &[&str] = &[
    "--lease",
    "non-residential",
    "--revenue-2019",
    "1.250.000,00",
    "--rent-march",
    "1.000,00",
    "--turnover-2019-march",
    "10.000,00",
    "--turnover-2020-march",
    "4.000,00",
    "--paid-march",
    "2020-03-05",
    "--rent-april",
    "1000.00",
    "--turnover-2019-april",
    "10000",
    "--turnover-2020-april",
    "6000",
    "--rent-may",
    "1.000,00",
    "--turnover-2019-may",
    "10.000,00",
    "--turnover-2020-may",
    "0",
];

#[test]
fn r_rent_cli_prints_a_table_per_month_and_the_total() {
    let out = rent_credit(MARCH_TO_MAY);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("art. 28 DL 34/2020"), "{text}");
    assert!(text.contains("credito 60% del canone"), "{text}");
    let march = text
        .lines()
        .find(|l| l.starts_with("marzo"))
        .unwrap_or_default();
    assert!(march.contains("600,00 €"), "{march}");
    assert!(march.contains("utilizzabile dal 05/03/2020"), "{march}");
    let april = text
        .lines()
        .find(|l| l.starts_with("aprile"))
        .unwrap_or_default();
    assert!(
        april.contains("non spettante: calo del fatturato 40% (minimo 50%)"),
        "{april}"
    );
    let may = text
        .lines()
        .find(|l| l.starts_with("maggio"))
        .unwrap_or_default();
    assert!(may.contains("dopo il pagamento del canone"), "{may}");
    assert!(text.contains("Totale credito: 1.200,00 €"), "{text}");
}

#[test]
fn r_rent_cli_business_lease_seasonal_hotel() {
    let out = rent_credit(&[
        "--lease",
        "business-lease",
        "--activity",
        "hotel",
        "--seasonal",
        "--rent-june",
        "2.000,00",
        "--turnover-2019-june",
        "50.000,00",
        "--turnover-2020-june",
        "5.000,00",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("giugno"), "{text}");
    assert!(text.contains("Totale credito: 600,00 €"), "{text}");
}

#[test]
fn r_rent_cli_bad_amount_exits_2_with_the_flag_and_the_reason() {
    let mut args = MARCH_TO_MAY.to_vec();
    args[5] = "1.00O,00";
    let out = rent_credit(&args);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.starts_with("errore: --rent-march: "), "{err}");
}

#[test]
fn r_rent_cli_ambiguous_and_negative_amounts_exit_2() {
    let mut args = MARCH_TO_MAY.to_vec();
    args[3] = "1.250";
    let out = rent_credit(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--revenue-2019"), "{}", stderr(&out));

    // A negative value is written with `=`, or clap reads it as a flag (also exit 2).
    let mut args = MARCH_TO_MAY.to_vec();
    args[8] = "--turnover-2020-march=-4.000,00";
    args.remove(9);
    let out = rent_credit(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("importo negativo"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn r_rent_cli_month_outside_the_law_and_missing_data_exit_2() {
    let out = rent_credit(&[
        "--lease",
        "non-residential",
        "--revenue-2019",
        "100000",
        "--rent-june",
        "1000",
        "--turnover-2019-june",
        "10",
        "--turnover-2020-june",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("giugno non rientra"),
        "{}",
        stderr(&out)
    );

    let out = rent_credit(&["--lease", "non-residential", "--rent-march", "1000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--revenue-2019"), "{}", stderr(&out));

    let out = rent_credit(&[
        "--lease",
        "non-residential",
        "--revenue-2019",
        "100000",
        "--rent-march",
        "1000",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--turnover-2019-march"),
        "{}",
        stderr(&out)
    );

    let out = rent_credit(&["--lease", "sideways"]);
    assert_eq!(out.status.code(), Some(2));
}
