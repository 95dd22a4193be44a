//! F8 option communications: rate derivation, R-OPT-STOP, R-OPT-ANNUL, R-PA.

#![expect(clippy::unwrap_used, reason = "tests")]

#[macro_use]
mod support;

use cessio_app::{AppError, IncomingFilter, OptionInput};
use cessio_core::money::Cents;
use cessio_store::PartyKind;
use support::*;

backends!(
    f8_rate_derived_with_remainder_on_first,
    f8_communication_pending_for_holder_until_accepted,
    f8_tracciabile_from_2022_05_01,
    r_opt_stop_refuses_art121_without_exception,
    r_opt_stop_accepts_art121_with_exception,
    r_opt_stop_refuses_an_unknown_code_and_free_text,
    r_opt_stop_refuses_a_fact_after_the_deadline_naming_it,
    r_opt_stop_exception_must_cover_the_credit_type,
    r_opt_stop_invoice_needed_from_2024_03_30,
    r_opt_stop_earthquake_cap_registered_by_the_operator_only,
    r_opt_stop_bulk_file_carries_the_exception_and_the_no_tax_area,
    r_opt_stop_bulk_file_reports_a_bad_code_on_its_row,
    r_opt_stop_does_not_apply_to_art122,
    r_opt_stop_not_evaded_by_backdating,
    f8_invalid_communications_refused,
    r_opt_annul_before_deadline_voids_communication,
    r_opt_annul_allowed_on_the_fifth_of_next_month,
    r_opt_annul_refused_after_deadline,
    r_opt_annul_refused_after_acceptance,
    r_opt_annul_refused_to_the_holder,
    r_opt_annul_not_reported_as_refused_by_the_holder,
    r_pa_public_administration_may_not_be_holder,
);

async fn f8_rate_derived_with_remainder_on_first(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    // Superbonus, expense 2022: 4 rate from 2023; 1.000,03 € → 250,03 + 3 × 250,00.
    let credit = t
        .try_communicate(&t.option(&ben, &holder, "superbonus", 100_003, tracciabile_day()))
        .await
        .unwrap();
    let rate: Vec<(u16, i64, &str)> = credit
        .rate
        .iter()
        .map(|r| (r.year.get(), r.amount.get(), r.codice_tributo.as_str()))
        .collect();
    assert_eq!(
        rate,
        [
            (2023, 25_003, "7708"),
            (2024, 25_000, "7708"),
            (2025, 25_000, "7708"),
            (2026, 25_000, "7708"),
        ]
    );
    assert_eq!(credit.beneficiary, ben.id);
    assert_eq!(credit.holder, holder.id);
    assert_eq!(credit.communicated_on, tracciabile_day());
}

async fn f8_communication_pending_for_holder_until_accepted(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    t.communicate(&ben, &holder, "superbonus", 100_003, tracciabile_day())
        .await;
    let row = t.monitor(&holder, "superbonus", 2023).await;
    assert_eq!(row.received_pending, cents(25_003));
    assert_eq!(row.received_accepted, Cents::ZERO);
    assert_eq!(row.residual_cedible, Cents::ZERO);
    assert!(t.cedible(&h, &holder).await.is_empty());
    let groups = t.incoming(&h, &holder).await;
    assert_eq!(groups.len(), 4, "one group per reference year: {groups:?}");
    assert!(groups.iter().all(|g| g.cedente.cf == ben.cf.as_str()));

    t.accept_all(&h, &holder).await;
    let row = t.monitor(&holder, "superbonus", 2023).await;
    assert_eq!(row.received_pending, Cents::ZERO);
    assert_eq!(row.received_accepted, cents(25_003));
    // On 1 March 2024 the rata of 2023 has expired (R-F24-WINDOW-121): held, not cedible.
    assert_eq!(row.residual_cedible, Cents::ZERO);
    assert_eq!(row.residual_not_cedible, cents(25_003));
    let row = t.monitor(&holder, "superbonus", 2024).await;
    assert_eq!(row.residual_cedible, cents(25_000));
    assert_eq!(t.cedible(&h, &holder).await.len(), 3);
}

async fn f8_tracciabile_from_2022_05_01(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let before = t
        .communicate(&ben, &holder, "ecobonus", 1_000, date(2022, 4, 30))
        .await;
    let after = t
        .communicate(&ben, &holder, "ecobonus", 1_000, date(2022, 5, 1))
        .await;
    assert!(!before.tracciabile);
    assert!(after.tracciabile);
}

async fn r_opt_stop_refuses_art121_without_exception(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    for on in [date(2023, 2, 17), date(2024, 3, 1)] {
        let e = t
            .try_communicate(&t.option(&ben, &holder, "superbonus", 100_000, on))
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.rule()), ("r_opt_stop", Some("R-OPT-STOP")));
    }
    // A code without the facts it needs is no exception.
    let bare = OptionInput {
        exception: Some(exception("SB_CILAS_NON_COND")),
        ..t.option(&ben, &holder, "superbonus", 100_000, date(2023, 6, 1))
    };
    let e = t.try_communicate(&bare).await.unwrap_err();
    assert_eq!(
        (e.code(), e.rule()),
        ("r_opt_stop_fact_missing", Some("R-OPT-STOP"))
    );
    assert!(e.to_string().contains("CILA"), "{e}");
    // The day before the stop needs none.
    t.communicate(&ben, &holder, "superbonus", 100_000, date(2023, 2, 16))
        .await;
}

async fn r_opt_stop_accepts_art121_with_exception(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let input = OptionInput {
        exception: Some(cilas_exception()),
        ..t.option(&ben, &holder, "superbonus", 100_000, date(2024, 3, 1))
    };
    let credit = t.try_communicate(&input).await.unwrap();
    assert_eq!(credit.rate.len(), 4);
    assert_eq!(credit.rate[0].year.get(), 2024);
}

async fn r_opt_stop_refuses_an_unknown_code_and_free_text(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let unknown = OptionInput {
        exception: Some(exception("CILAS_ENTRO_IL_16_FEBBRAIO")),
        ..t.option(&ben, &holder, "superbonus", 100_000, date(2024, 3, 1))
    };
    let e = t.try_communicate(&unknown).await.unwrap_err();
    assert_eq!(
        (e.code(), e.rule()),
        ("r_opt_stop_unknown", Some("R-OPT-STOP"))
    );
    // Free text, however long, is not even a code: the body is refused before any rule.
    let body = |exception: serde_json::Value| {
        serde_json::from_value::<OptionInput>(serde_json::json!({
            "beneficiary_cf": ben.cf.as_str(), "type_key": "superbonus", "expense_year": 2023,
            "origin": "cessione", "holder_cf": holder.cf.as_str(), "total": 100_000,
            "exception": exception
        }))
    };
    assert!(body(serde_json::json!("CILAS presentata entro il 16/02/2023")).is_err());
    assert!(body(serde_json::json!({ "code": "X".repeat(300 * 1024) })).is_err());
    assert!(
        body(serde_json::json!({ "code": "SB_CILAS_NON_COND", "cilas_filed_on": "2023-01-10" }))
            .is_ok()
    );
}

async fn r_opt_stop_refuses_a_fact_after_the_deadline_naming_it(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let mut late = cilas_exception();
    late.cilas_filed_on = Some(date(2023, 2, 17));
    let input = OptionInput {
        exception: Some(late),
        ..t.option(&ben, &holder, "superbonus", 100_000, date(2024, 3, 1))
    };
    let e = t.try_communicate(&input).await.unwrap_err();
    assert_eq!(
        (e.code(), e.rule()),
        ("r_opt_stop_fact_late", Some("R-OPT-STOP"))
    );
    let text = e.to_string();
    assert!(
        text.contains("17/02/2023") && text.contains("16/02/2023"),
        "{text}"
    );
    // Nothing was registered.
    assert_eq!(
        t.monitor(&holder, "superbonus", 2024)
            .await
            .received_pending,
        Cents::ZERO
    );
}

async fn r_opt_stop_exception_must_cover_the_credit_type(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let barriere = OptionInput {
        exception: Some(exception("BARRIERE_75")),
        ..t.option(&ben, &holder, "superbonus", 100_000, date(2024, 3, 1))
    };
    assert_eq!(code(t.try_communicate(&barriere).await), "r_opt_stop_type");
    // The same code on a barriere credit of 2023 expenses holds by itself.
    let ok = OptionInput {
        type_key: "barriere_75".into(),
        ..barriere
    };
    t.try_communicate(&ok).await.unwrap();
}

async fn r_opt_stop_invoice_needed_from_2024_03_30(t: TestApp) {
    t.set_rome(2024, 4, 2, 10, 0);
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let on = date(2024, 4, 2);
    let input = OptionInput {
        exception: Some(cilas_exception()),
        ..t.option(&ben, &holder, "superbonus", 100_000, on)
    };
    let e = t.try_communicate(&input).await.unwrap_err();
    assert_eq!(code(Err::<(), _>(e.clone())), "r_opt_stop_fact_missing");
    assert!(e.to_string().contains("fattura"), "{e}");
    let mut invoiced = cilas_exception();
    invoiced.invoice_on = Some(date(2024, 3, 30));
    let late = OptionInput {
        exception: Some(invoiced.clone()),
        ..input.clone()
    };
    assert_eq!(code(t.try_communicate(&late).await), "r_opt_stop_fact_late");
    invoiced.invoice_on = Some(date(2024, 3, 29));
    let ok = OptionInput {
        exception: Some(invoiced),
        ..input
    };
    t.try_communicate(&ok).await.unwrap();
}

async fn r_opt_stop_earthquake_cap_registered_by_the_operator_only(t: TestApp) {
    t.set_rome(2024, 4, 2, 10, 0);
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let b = t.user_for(&ben, "beneficiario").await;
    let input = OptionInput {
        exception: Some(exception("SISMA_2009_2016_CAP")),
        communicated_on: None,
        ..t.option(&ben, &holder, "superbonus", 100_000, date(2024, 4, 2))
    };
    let e = t
        .app
        .communicate_option(&b, &t.key(), Some(PIN), &input)
        .await;
    assert_eq!(code(e), "r_opt_stop_operator");
    t.try_communicate(&input).await.unwrap();
}

async fn r_opt_stop_bulk_file_carries_the_exception_and_the_no_tax_area(t: TestApp) {
    let ben = t.company(1).await;
    let holder = t.company(2).await;
    let bank = t.party(3, PartyKind::Bank).await;
    let (b, h, k) = (ben.cf.as_str(), holder.cf.as_str(), bank.cf.as_str());
    let file = format!(
        "cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione;eccezione;no_tax_area;data_cilas\n\
         {b};superbonus;2023;cessione;{h};1.000,00;01/03/2024;;;\n\
         {b};superbonus;2023;cessione;{h};1.000,00;01/03/2024;SB_CILAS_NON_COND;;10/01/2023\n\
         {b};ecobonus_art14;2019;cessione;{k};1.000,00;02/03/2020;;si;\n\
         {b};ecobonus_art14;2019;cessione;{k};2.000,00;02/03/2020;;no;\n\
         {b};ecobonus_art14;2019;cessione;{k};3.000,00;02/03/2020;;forse;\n"
    );
    let report = t
        .app
        .import_communications(&t.op, None, file.as_bytes(), |_, _| {})
        .await
        .unwrap();
    let codes: Vec<Option<&str>> = report.rows.iter().map(|r| r.code.as_deref()).collect();
    assert_eq!(
        codes,
        [
            Some("r_opt_stop"),
            None,
            None,
            Some("r_eco_2018"),
            Some("no_tax_area_invalid")
        ],
        "{:?}",
        report.rows
    );
    assert_eq!((report.registered, report.refused), (2, 3));
}

async fn r_opt_stop_bulk_file_reports_a_bad_code_on_its_row(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let (b, h) = (ben.cf.as_str(), holder.cf.as_str());
    let file = format!(
        "cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione;eccezione;data_cilas;riferimento\n\
         {b};superbonus;2023;cessione;{h};1.000,00;01/03/2024;SB_CILAS_NON_COND;10/01/2023;A\n\
         {b};superbonus;2023;cessione;{h};2.000,00;01/03/2024;NON_ESISTE;10/01/2023;B\n\
         {b};superbonus;2023;cessione;{h};3.000,00;01/03/2024;CILAS presentata entro il 16/02/2023;;C\n\
         {b};superbonus;2023;cessione;{h};4.000,00;01/03/2024;SB_CILAS_NON_COND;20/02/2023;D\n\
         {b};superbonus;2023;cessione;{h};5.000,00;01/03/2024;sb_cilas_non_cond;16/02/2023;E\n"
    );
    let report = t
        .app
        .import_communications(&t.op, None, file.as_bytes(), |_, _| {})
        .await
        .unwrap();
    let rows: Vec<(usize, Option<&str>)> = report
        .rows
        .iter()
        .map(|r| (r.line, r.code.as_deref()))
        .collect();
    assert_eq!(
        rows,
        [
            (2, None),
            (3, Some("r_opt_stop_unknown")),
            (4, Some("exception_invalid")),
            (5, Some("r_opt_stop_fact_late")),
            (6, None),
        ],
        "{:?}",
        report.rows
    );
    // Each message names what to fix on that row.
    let message = |line: usize| {
        report
            .rows
            .iter()
            .find(|r| r.line == line)
            .unwrap()
            .message
            .clone()
            .unwrap()
    };
    assert!(message(3).contains("NON_ESISTE"), "{}", message(3));
    assert!(
        message(4).contains("riga 4, colonna eccezione"),
        "{}",
        message(4)
    );
    assert!(message(5).contains("20/02/2023"), "{}", message(5));
    assert_eq!((report.registered, report.refused), (2, 3));
}

async fn r_opt_stop_does_not_apply_to_art122(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let rent = OptionInput {
        expense_year: 2021,
        ..t.option(&ben, &holder, "canoni_locazione", 50_000, date(2024, 3, 1))
    };
    let credit = t.try_communicate(&rent).await.unwrap();
    assert_eq!(credit.rate.len(), 1);
}

async fn r_opt_annul_before_deadline_voids_communication(t: TestApp) {
    // The window runs from the sending: the communication date, here today.
    t.set_rome(2023, 1, 10, 9, 0);
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let b = t.user_for(&ben, "beneficiario").await;
    let h = t.user_for(&holder, "fornitore").await;
    let credit = t
        .communicate(&ben, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    t.set_rome(2023, 1, 20, 9, 0);
    let r = t
        .app
        .annul_option(&b, &t.key(), Some(PIN), credit.id)
        .await
        .unwrap();
    assert_eq!(r.operations, 4);
    assert!(!r.accepted);
    assert!(t.incoming(&h, &holder).await.is_empty());
    assert_eq!(
        t.monitor(&holder, "superbonus", 2023)
            .await
            .received_pending,
        Cents::ZERO
    );
    assert_eq!(
        code(t.answer(&h, &holder, IncomingFilter::default(), true).await),
        "conflict"
    );
    assert!(t.cedible(&h, &holder).await.is_empty());
}

async fn r_opt_annul_allowed_on_the_fifth_of_next_month(t: TestApp) {
    // The window runs from the sending: the communication date, here today.
    t.set_rome(2023, 1, 10, 9, 0);
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    let credit = t
        .communicate(&ben, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    assert_eq!(t.incoming(&h, &holder).await.len(), 4);
    t.set_rome(2023, 2, 5, 23, 59);
    let r = t
        .app
        .annul_option(&t.op, &t.key(), None, credit.id)
        .await
        .unwrap();
    // Each of the four rate's pending movements is voided: nothing is left to answer.
    assert_eq!(r.operations, 4);
    assert!(!r.accepted);
    assert!(t.incoming(&h, &holder).await.is_empty());
}

async fn r_opt_annul_refused_after_deadline(t: TestApp) {
    // The window runs from the sending: the communication date, here today.
    t.set_rome(2023, 1, 10, 9, 0);
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    let credit = t
        .communicate(&ben, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    t.set_rome(2023, 2, 6, 0, 0);
    let e = t
        .app
        .annul_option(&t.op, &t.key(), None, credit.id)
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.rule()), ("r_opt_annul", Some("R-OPT-ANNUL")));
    assert!(e.to_string().contains("05/02/2023"), "{e}");
    // Still pending: the holder may answer it.
    assert_eq!(t.incoming(&h, &holder).await.len(), 4);
}

async fn r_opt_annul_refused_after_acceptance(t: TestApp) {
    // The window runs from the sending: the communication date, here today.
    t.set_rome(2023, 1, 10, 9, 0);
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    let credit = t
        .communicate(&ben, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    // Even one year accepted makes the communication final.
    t.answer(&h, &holder, by_year(2024), true).await.unwrap();
    let e = t.app.annul_option(&t.op, &t.key(), None, credit.id).await;
    assert_eq!(code(e), "conflict");
    let row = t.monitor(&holder, "superbonus", 2024).await;
    assert_eq!(row.received_accepted, cents(25_000));
    assert_eq!(
        t.monitor(&holder, "superbonus", 2023)
            .await
            .received_pending,
        cents(25_000)
    );
}

async fn r_opt_annul_refused_to_the_holder(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    let credit = t
        .communicate(&ben, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    // Only the sender annuls; the holder refuses instead. Same answer as a missing one.
    let e = t.app.annul_option(&h, &t.key(), Some(PIN), credit.id).await;
    assert_eq!(code(e), "not_found");
    assert_eq!(t.incoming(&h, &holder).await.len(), 4);
}

async fn r_pa_public_administration_may_not_be_holder(t: TestApp) {
    let ben = t.company(1).await;
    let pa = t.party(2, PartyKind::PublicAdministration).await;
    let e = t
        .try_communicate(&t.option(&ben, &pa, "superbonus", 100_000, tracciabile_day()))
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.rule()), ("r_pa", Some("R-PA")));
    assert!(matches!(e, AppError::Rule { .. }));
}

async fn r_opt_stop_not_evaded_by_backdating(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let b = t.user_for(&ben, "beneficiario").await;
    // Today is 1 March 2024; the user claims to have sent it on 10 January 2023.
    let input = t.option(&ben, &holder, "superbonus", 100_000, tracciabile_day());
    let r = t
        .app
        .communicate_option(&b, &t.key(), Some(PIN), &input)
        .await;
    assert!(r.is_err(), "backdated communication accepted: {r:?}");
}

async fn f8_invalid_communications_refused(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let base = t.option(&ben, &holder, "superbonus", 100_000, tracciabile_day());
    let cases = [
        (
            OptionInput {
                total: Cents::ZERO,
                ..base.clone()
            },
            "amount_not_positive",
        ),
        (
            OptionInput {
                total: cents(-100),
                ..base.clone()
            },
            "amount_not_positive",
        ),
        (
            OptionInput {
                total: cents(3),
                ..base.clone()
            },
            "invalid",
        ),
        (
            OptionInput {
                total: Cents::MAX,
                ..base.clone()
            },
            "amount_too_large",
        ),
        (
            OptionInput {
                type_key: "bonus_mobili".into(),
                ..base.clone()
            },
            "invalid",
        ),
        (
            OptionInput {
                communicated_on: Some(date(2024, 3, 2)),
                ..base.clone()
            },
            "invalid",
        ),
        (
            OptionInput {
                holder_cf: ben.cf.as_str().into(),
                ..base.clone()
            },
            "invalid",
        ),
        (
            OptionInput {
                holder_cf: entity_cf(777).to_string(),
                ..base.clone()
            },
            "cf_unknown",
        ),
        (
            OptionInput {
                beneficiary_cf: "123".into(),
                ..base.clone()
            },
            "cf_invalid",
        ),
    ];
    for (input, expected) in cases {
        let e = t.try_communicate(&input).await.unwrap_err();
        assert_eq!(e.code(), expected, "{input:?}: {e}");
    }
    // Only the operator or someone acting for the beneficiary communicates.
    let other = t.company(3).await;
    let o = t.user_for(&other, "estraneo").await;
    let e = t
        .app
        .communicate_option(&o, &t.key(), Some(PIN), &base)
        .await;
    assert_eq!(code(e), "forbidden");
    let h = t.user_for(&holder, "fornitore").await;
    assert!(t.incoming(&h, &holder).await.is_empty());
}

async fn r_opt_annul_not_reported_as_refused_by_the_holder(t: TestApp) {
    // The window runs from the sending: the communication date, here today.
    t.set_rome(2023, 1, 10, 9, 0);
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "fornitore").await;
    let credit = t
        .communicate(&ben, &holder, "superbonus", 100_000, tracciabile_day())
        .await;
    t.app
        .annul_option(&t.op, &t.key(), None, credit.id)
        .await
        .unwrap();
    let row = t.monitor(&holder, "superbonus", 2023).await;
    assert_eq!(row.received_refused, Cents::ZERO, "{row:?}");
    let rows = t.movements(&h, &holder).await;
    assert!(
        rows.iter()
            .all(|r| r.state != cessio_app::MovementState::Rifiutato),
        "{rows:?}"
    );
}
