//! F5, the debit side of an F24 through the app, on both backends: what the form pays
//! (R-F24-BALANCE) and, from 1/1/2025, banks' building credits kept away from INPS
//! contributions and INAIL premiums (R-BAN-BANK-INPS). Every refusal reserves nothing.

#![expect(clippy::unwrap_used, reason = "tests")]

#[macro_use]
mod support;

use cessio_app::{AppError, F24DebitInput, F24LineInput, F24Reservation, Principal};
use cessio_core::f24_debits::F24Section;
use cessio_core::time::rome_date;
use cessio_store::{Party, PartyKind};
use support::*;

backends!(
    f5_malformed_debit_lines_are_refused_naming_the_field,
    r_f24_balance_credits_may_not_exceed_the_debits,
    r_ban_bank_inps_from_2025_bank_credits_pay_only_other_debits,
);

fn debit(section: &str, code: &str, amount: i64) -> F24DebitInput {
    F24DebitInput {
        section: section.into(),
        code: code.into(),
        amount: cents(amount),
    }
}

/// A holder of `kind` with a non-tracciabile Superbonus (five rate 2022–2026 of 2,000.00):
/// the code and year of the rata usable today.
async fn holder(t: &TestApp, kind: PartyKind) -> (Party, Principal, F24LineInput) {
    let party = t.party(1, kind).await;
    let who = t.user_for(&party, "titolare").await;
    let credit = t
        .holding(&party, &who, "superbonus", 1_000_000, old_day())
        .await;
    let year = u16::try_from(chrono::Datelike::year(&rome_date(t.app.now()))).unwrap();
    let rata = credit.rate.iter().find(|r| r.year.get() == year).unwrap();
    let line = F24LineInput {
        codice_tributo: rata.codice_tributo.clone(),
        year,
        amount: cents(0),
    };
    (party, who, line)
}

fn using(line: &F24LineInput, amount: i64) -> Vec<F24LineInput> {
    vec![F24LineInput {
        amount: cents(amount),
        ..line.clone()
    }]
}

async fn reserve(
    t: &TestApp,
    who: &Principal,
    party: &Party,
    lines: &[F24LineInput],
    debits: &[F24DebitInput],
) -> Result<F24Reservation, AppError> {
    let today = rome_date(t.app.now());
    t.reserve_f24(who, party, &t.key(), today, lines, debits)
        .await
}

async fn reserved(t: &TestApp, who: &Principal, party: &Party) -> i64 {
    t.app
        .f24_availability(who, party.id)
        .await
        .unwrap()
        .iter()
        .map(|r| r.reserved.get())
        .sum()
}

fn field(e: &AppError) -> &str {
    match e {
        AppError::Invalid { field, .. } => field,
        other => panic!("not invalid: {other:?}"),
    }
}

async fn f5_malformed_debit_lines_are_refused_naming_the_field(t: TestApp) {
    let (party, who, line) = holder(&t, PartyKind::Company).await;
    let lines = using(&line, 10_000);
    for (bad, want) in [
        (debit("tasse", "1001", 10_000), "debits[1].section"),
        (debit("inps", "D", 10_000), "debits[1].code"),
        (debit("inail", "1", 10_000), "debits[1].code"),
        (debit("erario", "10011", 10_000), "debits[1].code"),
        (debit("erario", "1001", 0), "debits[1].amount"),
        (debit("erario", "1001", -5), "debits[1].amount"),
    ] {
        let e = reserve(&t, &who, &party, &lines, &[debit("erario", "1040", 1), bad])
            .await
            .unwrap_err();
        assert_eq!((e.code(), field(&e)), ("invalid", want), "{e}");
    }
    let many: Vec<_> = (0..101).map(|_| debit("erario", "1001", 100)).collect();
    let e = reserve(&t, &who, &party, &lines, &many).await.unwrap_err();
    assert_eq!(field(&e), "debits");
    assert_eq!(reserved(&t, &who, &party).await, 0);
}

async fn r_f24_balance_credits_may_not_exceed_the_debits(t: TestApp) {
    let (party, who, line) = holder(&t, PartyKind::Company).await;
    let debits = [
        debit("erario", "1001", 60_000),
        debit("inps", "dm10", 40_000),
    ];
    let e = reserve(&t, &who, &party, &using(&line, 100_001), &debits)
        .await
        .unwrap_err();
    assert_eq!(
        (e.rule(), e.code()),
        (Some("R-F24-BALANCE"), "f24_negative_balance")
    );
    assert!(e.to_string().contains("1.000,01"), "{e}");
    assert_eq!(reserved(&t, &who, &party).await, 0);
    // A balance of zero is allowed; the debits come back as the core read them.
    let key = t.key();
    let today = rome_date(t.app.now());
    let lines = using(&line, 100_000);
    let r = t
        .reserve_f24(&who, &party, &key, today, &lines, &debits)
        .await
        .unwrap();
    assert_eq!(r.debits.len(), 2);
    assert_eq!(r.debits[1].section, F24Section::Inps);
    assert_eq!(r.debits[1].code, "DM10");
    // The same request again reserves nothing twice and says the same.
    let again = t
        .reserve_f24(&who, &party, &key, today, &lines, &debits)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.debits, r.debits);
    assert_eq!(reserved(&t, &who, &party).await, 100_000);
    // Other parties, and every party before 2025, may pay INPS with building credits.
    let inps_only = [debit("inps", "DM10", 50_000)];
    reserve(&t, &who, &party, &using(&line, 50_000), &inps_only)
        .await
        .unwrap();
}

async fn r_ban_bank_inps_from_2025_bank_credits_pay_only_other_debits(t: TestApp) {
    t.set_rome(2025, 3, 3, 10, 0);
    let (bank, who, line) = holder(&t, PartyKind::Bank).await;
    // The bank must say what the F24 pays.
    let e = reserve(&t, &who, &bank, &using(&line, 10_000), &[])
        .await
        .unwrap_err();
    assert_eq!(
        (e.rule(), e.code()),
        (Some("R-BAN-BANK-INPS"), "f24_debits_required")
    );
    let debits = [
        debit("erario", "1001", 60_000),
        debit("inps", "DM10", 30_000),
        debit("inail", "P", 10_000),
    ];
    // Within the balance, but the building credits would pay contributions and premiums.
    let e = reserve(&t, &who, &bank, &using(&line, 60_001), &debits)
        .await
        .unwrap_err();
    assert_eq!(
        (e.rule(), e.code()),
        (Some("R-BAN-BANK-INPS"), "r_ban_bank_inps")
    );
    assert!(e.to_string().contains("01/01/2025"), "{e}");
    assert_eq!(reserved(&t, &who, &bank).await, 0);
    // What the Erario lines take is allowed; INPS and INAIL are paid with other means.
    reserve(&t, &who, &bank, &using(&line, 60_000), &debits)
        .await
        .unwrap();
    assert_eq!(reserved(&t, &who, &bank).await, 60_000);
    // A company in 2025 is not concerned.
    let company = t.company(2).await;
    let cw = t.user_for(&company, "azienda").await;
    let credit = t
        .holding(&company, &cw, "superbonus", 1_000_000, old_day())
        .await;
    let rata = credit.rate.iter().find(|r| r.year.get() == 2025).unwrap();
    let lines = [F24LineInput {
        codice_tributo: rata.codice_tributo.clone(),
        year: 2025,
        amount: cents(40_000),
    }];
    reserve(&t, &cw, &company, &lines, &[debit("inps", "DM10", 40_000)])
        .await
        .unwrap();
}
