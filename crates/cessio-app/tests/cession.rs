//! F2 Cessione crediti: R-CF-EXISTS, R-PARTIAL, R-PENDING-OUT, R-PA, bulk cessions and
//! the refusals of bad rows.

#![expect(clippy::unwrap_used, reason = "tests")]

#[macro_use]
mod support;

use cessio_app::{AppError, CessionLine};
use cessio_core::money::Cents;
use cessio_store::PartyKind;
use support::*;

backends!(
    r_cf_exists_malformed_cf_is_cf_invalid,
    r_cf_exists_unregistered_cf_is_cf_unknown,
    r_cf_exists_check_cf_reports_flags_without_name,
    r_cf_omocodic_variant_is_the_same_registered_subject,
    r_partial_tracciabile_rata_moves_whole,
    r_partial_non_tracciabile_may_be_ceded_in_part,
    r_partial_art122_may_be_ceded_in_part,
    r_partial_tax_credit_vacanze_may_be_ceded_in_part,
    r_pending_out_amount_neither_cedible_nor_available_until_refused,
    r_pending_out_whole_rata_leaves_the_cedible_list,
    r_pending_out_cedente_cannot_take_back_a_cession,
    r_pa_cession_to_public_administration_refused,
    f2_bulk_cession_of_many_rows_to_one_cf,
    f2_bulk_cession_with_one_bad_row_applies_nothing,
    f2_bulk_cession_over_available_in_one_row_applies_nothing,
    f2_amounts_zero_negative_and_too_large_refused,
    f2_self_cession_refused,
    f2_cession_refused_without_the_consent_to_show_the_name,
    f2_same_rata_twice_in_one_cession_refused,
    f2_amount_above_max_cedibile_refused_with_italian_amounts,
);

/// A non-tracciabile Ecobonus of 100,00 €: ten rate of 10,00 €, partial cessions allowed.
async fn eco(t: &TestApp) -> (Actors, Vec<i64>) {
    t.holder_and_cessionario("cedente", "ecobonus", 10_000, old_day())
        .await
}

fn to_cf(rata: i64, cf: &str) -> CessionLine {
    CessionLine {
        rata,
        cessionario_cf: cf.into(),
        amount: None,
    }
}

async fn r_cf_exists_malformed_cf_is_cf_invalid(t: TestApp) {
    let (x, rate) = eco(&t).await;
    let mut bad = entity_cf(2).to_string();
    bad.replace_range(10.., if bad.ends_with('0') { "1" } else { "0" });
    for cf in [bad.as_str(), "1234", "RSSMRA85T10A562"] {
        let e = t
            .cede(&x.h, &x.holder, &[to_cf(rate[0], cf)])
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.rule()), ("cf_invalid", Some("R-CF")), "{cf}");
    }
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[0]).await, cents(1_000));
}

async fn r_cf_exists_unregistered_cf_is_cf_unknown(t: TestApp) {
    let (x, rate) = eco(&t).await;
    let e = t
        .cede(&x.h, &x.holder, &[to_cf(rate[0], entity_cf(777).as_str())])
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.rule()), ("cf_unknown", Some("R-CF-EXISTS")));
    assert!(t.incoming(&x.cu, &x.c).await.is_empty());
}

async fn r_cf_exists_check_cf_reports_flags_without_name(t: TestApp) {
    let c = t.company(2).await;
    // Normalised input: lower-case IT prefix, spaces.
    let typed = format!("it {} {}", &c.cf.as_str()[..5], &c.cf.as_str()[5..]);
    let ok = t.app.check_cf(&typed).await.unwrap();
    assert_eq!(
        (ok.cf.as_str(), ok.valid, ok.registered),
        (c.cf.as_str(), true, true)
    );
    assert_eq!(ok.message, None);
    let unknown = t.app.check_cf(entity_cf(777).as_str()).await.unwrap();
    assert_eq!((unknown.valid, unknown.registered), (true, false));
    assert!(unknown.message.as_deref().unwrap().contains("R-CF-EXISTS"));
    let bad = t.app.check_cf("0000000000X").await.unwrap();
    assert_eq!((bad.valid, bad.registered), (false, false));
    assert!(bad.message.is_some());
    // Never whose it is.
    let json = format!("{ok:?}{unknown:?}");
    assert!(!json.contains(&c.name), "{json}");
}

async fn r_cf_omocodic_variant_is_the_same_registered_subject(t: TestApp) {
    // Mario Rossi is registered under his code; his omocodic spelling finds him, a cession
    // to it reaches his party, and the operator cannot register him twice.
    let mario = t
        .app
        .register_party(
            &t.op,
            "mario",
            "RSSMRA45C12F205C",
            "Mario Rossi",
            PartyKind::Person,
        )
        .await
        .unwrap();
    let check = t.app.check_cf("RSSMRA45C12F20RX").await.unwrap();
    assert_eq!((check.valid, check.registered), (true, true));
    let e = t
        .app
        .register_party(
            &t.op,
            "mario-2",
            "RSSMRA45C12F20RX",
            "Mario Rossi",
            PartyKind::Person,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "party_exists");
    let (x, rate) = eco(&t).await;
    let by_variant = cessio_app::CessionLine {
        rata: rate[0],
        cessionario_cf: "RSSMRA45C12F20RX".into(),
        amount: Some(Cents::new(100)),
    };
    t.cede(&x.h, &x.holder, &[by_variant]).await.unwrap();
    let mu = t.user_for(&mario, "mario").await;
    assert_eq!(t.incoming(&mu, &mario).await.len(), 1);
}

async fn r_partial_tracciabile_rata_moves_whole(t: TestApp) {
    let (x, rate) = t
        .holder_and_cessionario("cedente", "superbonus", 100_000, tracciabile_day())
        .await;
    let row = t.cedible(&x.h, &x.holder).await;
    assert!(row.iter().all(|r| r.tracciabile && !r.partial_allowed));
    let e = t
        .cede(&x.h, &x.holder, &[line(rate[0], &x.c, Some(24_999))])
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.rule()), ("r_partial", Some("R-PARTIAL")));
    assert_eq!(
        t.max_cedibile(&x.h, &x.holder, rate[0]).await,
        cents(25_000)
    );
    // The whole amount, typed or prefilled, is fine.
    let r = t
        .cede(&x.h, &x.holder, &[line(rate[0], &x.c, Some(25_000))])
        .await
        .unwrap();
    assert_eq!(r.amount, cents(25_000));
    let r = t
        .cede(&x.h, &x.holder, &[line(rate[1], &x.c, None)])
        .await
        .unwrap();
    assert_eq!(r.amount, cents(25_000));
}

async fn r_partial_non_tracciabile_may_be_ceded_in_part(t: TestApp) {
    let (x, rate) = eco(&t).await;
    assert!(
        t.cedible(&x.h, &x.holder)
            .await
            .iter()
            .all(|r| r.partial_allowed)
    );
    let r = t
        .cede(&x.h, &x.holder, &[line(rate[0], &x.c, Some(1))])
        .await
        .unwrap();
    assert_eq!(r.amount, cents(1));
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[0]).await, cents(999));
}

async fn r_partial_art122_may_be_ceded_in_part(t: TestApp) {
    let (holder, c) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "cedente").await;
    let landlord = t.company(3).await;
    // Rent credits could be ceded only until 31/12/2021 (rules.toml cession_deadline): a
    // tracciabile art. 122 credit of today is a Tax credit vacanze.
    let rent = cessio_app::OptionInput {
        expense_year: 2020,
        ..t.option(
            &landlord,
            &holder,
            "tax_credit_vacanze",
            50_000,
            date(2024, 3, 1),
        )
    };
    let credit = t.try_communicate(&rent).await.unwrap();
    assert!(credit.tracciabile);
    t.accept_all(&h, &holder).await;
    let rata = credit.rate[0].id;
    let row = t.cedible(&h, &holder).await;
    assert!(row[0].tracciabile && row[0].partial_allowed);
    t.cede(&h, &holder, &[line(rata, &c, Some(20_000))])
        .await
        .unwrap();
    assert_eq!(t.max_cedibile(&h, &holder, rata).await, cents(30_000));
}

async fn r_pending_out_amount_neither_cedible_nor_available_until_refused(t: TestApp) {
    let (x, rate) = eco(&t).await;
    t.cede(&x.h, &x.holder, &[line(rate[0], &x.c, Some(400))])
        .await
        .unwrap();
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[0]).await, cents(600));
    let row = t.monitor(&x.holder, "ecobonus", 2024).await;
    assert_eq!(
        (row.ceded_pending, row.residual_cedible),
        (cents(400), cents(600))
    );
    // The pending 4,00 € cannot be ceded again: 6,00 € + 0,01 € is too much.
    let e = t
        .cede(&x.h, &x.holder, &[line(rate[0], &x.c, Some(601))])
        .await
        .unwrap_err();
    assert_eq!(e.code(), "insufficient_available");
    t.answer(&x.cu, &x.c, by_cedente(&x.holder), false)
        .await
        .unwrap();
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[0]).await, cents(1_000));
    let row = t.monitor(&x.holder, "ecobonus", 2024).await;
    assert_eq!(
        (row.ceded_pending, row.residual_cedible),
        (Cents::ZERO, cents(1_000))
    );
}

async fn r_pending_out_whole_rata_leaves_the_cedible_list(t: TestApp) {
    let (x, rate) = t
        .holder_and_cessionario("cedente", "superbonus", 100_000, tracciabile_day())
        .await;
    t.cede(&x.h, &x.holder, &[line(rate[0], &x.c, None)])
        .await
        .unwrap();
    assert!(
        !t.cedible(&x.h, &x.holder)
            .await
            .iter()
            .any(|h| h.rata == rate[0])
    );
    let third = t.company(3).await;
    let e = t
        .cede(&x.h, &x.holder, &[line(rate[0], &third, None)])
        .await
        .unwrap_err();
    // Its own code and rule: not a malformed request.
    assert_eq!(
        (e.code(), e.rule()),
        ("r_pending_out", Some("R-PENDING-OUT"))
    );
    assert!(e.to_string().contains("in attesa di risposta"), "{e}");
}

async fn r_pending_out_cedente_cannot_take_back_a_cession(t: TestApp) {
    let (x, rate) = eco(&t).await;
    t.cede(&x.h, &x.holder, &[line(rate[0], &x.c, None)])
        .await
        .unwrap();
    // The cedente has nothing to answer: only the cessionario's refusal gives it back.
    assert!(t.incoming(&x.h, &x.holder).await.is_empty());
    let e = t
        .answer(&x.h, &x.holder, by_cedente(&x.holder), false)
        .await;
    assert_eq!(code(e), "conflict");
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[0]).await, Cents::ZERO);
}

async fn r_pa_cession_to_public_administration_refused(t: TestApp) {
    let (x, rate) = eco(&t).await;
    let pa = t.party(3, PartyKind::PublicAdministration).await;
    let e = t
        .cede(&x.h, &x.holder, &[line(rate[0], &pa, None)])
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.rule()), ("r_pa", Some("R-PA")));
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[0]).await, cents(1_000));
}

async fn f2_bulk_cession_of_many_rows_to_one_cf(t: TestApp) {
    // The eight rate from 2024 (those of 2022 and 2023 have expired on 1 March 2024).
    let (x, rate) = eco(&t).await;
    let lines: Vec<_> = rate.iter().map(|r| line(*r, &x.c, None)).collect();
    let r = t.cede(&x.h, &x.holder, &lines).await.unwrap();
    assert_eq!((r.transfers.len(), r.amount), (8, cents(8_000)));
    assert!(t.cedible(&x.h, &x.holder).await.is_empty());
    let groups = t.incoming(&x.cu, &x.c).await;
    assert_eq!(groups.len(), 8);
    assert!(
        groups
            .iter()
            .all(|g| g.operations == 1 && g.amount == cents(1_000))
    );
}

async fn f2_bulk_cession_with_one_bad_row_applies_nothing(t: TestApp) {
    let (x, rate) = eco(&t).await;
    let before = t.cedible(&x.h, &x.holder).await;
    let mut lines: Vec<_> = rate.iter().map(|r| line(*r, &x.c, None)).collect();
    lines[7].cessionario_cf = entity_cf(777).to_string();
    assert_eq!(code(t.cede(&x.h, &x.holder, &lines).await), "cf_unknown");
    lines[7] = line(rate[7], &x.c, Some(0));
    assert_eq!(
        code(t.cede(&x.h, &x.holder, &lines).await),
        "amount_not_positive"
    );
    lines[7] = line(rate[7], &x.holder, None);
    let e = t.cede(&x.h, &x.holder, &lines).await.unwrap_err();
    assert!(e.to_string().contains("lines[7].cessionario_cf"), "{e}");
    assert_eq!(t.cedible(&x.h, &x.holder).await, before);
    assert!(t.incoming(&x.cu, &x.c).await.is_empty());
}

async fn f2_bulk_cession_over_available_in_one_row_applies_nothing(t: TestApp) {
    let (x, rate) = eco(&t).await;
    let before = t.cedible(&x.h, &x.holder).await;
    // Rows 0–6 are fine; row 7 asks for more than the rata: the store refuses the batch.
    let mut lines: Vec<_> = rate.iter().map(|r| line(*r, &x.c, Some(500))).collect();
    lines[7].amount = Some(cents(1_001));
    let e = t.cede(&x.h, &x.holder, &lines).await.unwrap_err();
    assert_eq!(e.code(), "insufficient_available");
    assert_eq!(t.cedible(&x.h, &x.holder).await, before);
    assert!(t.incoming(&x.cu, &x.c).await.is_empty());
    let verify = t.app.store().verify().await.unwrap();
    assert!(verify.problems.is_empty(), "{:?}", verify.problems);
}

async fn f2_amounts_zero_negative_and_too_large_refused(t: TestApp) {
    let (x, rate) = eco(&t).await;
    for (amount, expected) in [
        (0, "amount_not_positive"),
        (-1, "amount_not_positive"),
        (i64::MIN, "amount_not_positive"),
        (Cents::MAX_AMOUNT.get() + 1, "amount_too_large"),
        (i64::MAX, "amount_too_large"),
    ] {
        let e = t
            .cede(&x.h, &x.holder, &[line(rate[0], &x.c, Some(amount))])
            .await
            .unwrap_err();
        assert_eq!(e.code(), expected, "{amount}");
        assert!(matches!(e, AppError::Amount(_)), "{e:?}");
    }
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[0]).await, cents(1_000));
}

async fn f2_self_cession_refused(t: TestApp) {
    let (x, rate) = eco(&t).await;
    let e = t
        .cede(&x.h, &x.holder, &[line(rate[0], &x.holder, None)])
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid");
    assert!(e.to_string().contains("lines[0].cessionario_cf"), "{e}");
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[0]).await, cents(1_000));
}

async fn f2_cession_refused_without_the_consent_to_show_the_name(t: TestApp) {
    let (x, rate) = eco(&t).await;
    let e = t
        .app
        .cede(
            &x.h,
            &t.key(),
            Some(PIN),
            x.holder.id,
            &[line(rate[0], &x.c, None)],
            false,
        )
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.rule()), ("name_consent_required", Some("F2")));
    assert!(e.to_string().contains("autorizzare il cessionario"), "{e}");
    // Nothing moved, and no PIN attempt was spent on the refusal.
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[0]).await, cents(1_000));
    t.cede(&x.h, &x.holder, &[line(rate[0], &x.c, None)])
        .await
        .unwrap();
}

async fn f2_same_rata_twice_in_one_cession_refused(t: TestApp) {
    let (x, rate) = eco(&t).await;
    let lines = [
        line(rate[0], &x.c, Some(100)),
        line(rate[0], &x.c, Some(100)),
    ];
    let e = t.cede(&x.h, &x.holder, &lines).await.unwrap_err();
    assert!(e.to_string().contains("lines[1].rata"), "{e}");
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[0]).await, cents(1_000));
}

async fn f2_amount_above_max_cedibile_refused_with_italian_amounts(t: TestApp) {
    let (x, rate) = eco(&t).await;
    let e = t
        .cede(&x.h, &x.holder, &[line(rate[0], &x.c, Some(1_001))])
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("10,01 €") && msg.contains("10,00 €"), "{msg}");
}

async fn r_partial_tax_credit_vacanze_may_be_ceded_in_part(t: TestApp) {
    let (holder, c) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "cedente").await;
    let family = t.company(3).await;
    let vacanze = cessio_app::OptionInput {
        expense_year: 2020,
        ..t.option(
            &family,
            &holder,
            "tax_credit_vacanze",
            50_000,
            date(2024, 3, 1),
        )
    };
    let credit = t.try_communicate(&vacanze).await.unwrap();
    t.accept_all(&h, &holder).await;
    let rata = credit.rate[0].id;
    assert!(t.cedible(&h, &holder).await[0].partial_allowed);
    t.cede(&h, &holder, &[line(rata, &c, Some(20_000))])
        .await
        .unwrap();
    assert_eq!(t.max_cedibile(&h, &holder, rata).await, cents(30_000));
}
