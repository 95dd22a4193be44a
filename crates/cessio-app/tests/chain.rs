//! SPEC §5, who may receive what, through the app on both backends: R-CHAIN,
//! R-BANK-CLIENT, R-ONCE, R-PA, R-ECO-2018. The cedibilità of each holding comes from the
//! rata's own history; every scenario ends with `verify`.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

#[macro_use]
mod support;

use std::sync::Arc;

use cessio_app::{AppError, CedibilitaClass};
use cessio_core::catalogue::Catalogue;
use cessio_core::chain::BankClient;
use cessio_store::{Party, PartyKind};
use support::*;

backends!(
    r_chain_one_free_then_two_qualified_then_non_cedibile,
    r_chain_counts_only_cessions_from_2022_02_17,
    r_chain_a_cession_carries_the_path_its_cedente_had_when_registered,
    r_chain_kept_paths_equal_the_replay_after_every_kind_of_movement,
    r_bank_client_bank_at_the_limit_cedes_to_own_non_consumer_client_only,
    r_bank_client_outside_the_count_and_the_client_may_not_cede,
    r_once_one_cession_then_f24_only,
    r_once_dl_4_2022_window_one_further_cession_then_f24_only,
    r_once_dl_4_2022_window_a_cessione_option_was_the_one_cession,
    r_pa_may_not_acquire,
    r_eco_2018_never_to_banks_except_no_tax_area_beneficiary,
);

/// Cedes the whole rata from `from` to `to` and lets `to` accept it after R-WAIT5.
async fn pass(t: &TestApp, from: &Holder, to: &Holder, rata: i64) {
    t.cede(&from.user, &from.party, &[line(rata, &to.party, None)])
        .await
        .unwrap();
    t.advance_days(8);
    t.answer(&to.user, &to.party, by_cedente(&from.party), true)
        .await
        .unwrap();
}

async fn class_of(t: &TestApp, h: &Holder, rata: i64) -> Option<CedibilitaClass> {
    t.cedible(&h.user, &h.party)
        .await
        .into_iter()
        .find(|c| c.rata == rata)
        .map(|c| c.cedibilita.class)
}

/// A tracciabile superbonus held (accepted) by `h`: its first rata.
async fn superbonus(t: &TestApp, h: &Holder) -> i64 {
    t.holding(&h.party, &h.user, "superbonus", 400_000, tracciabile_day())
        .await
        .rate[0]
        .id
}

async fn r_chain_one_free_then_two_qualified_then_non_cedibile(t: TestApp) {
    let a = t.holder(1, PartyKind::Company).await;
    let b = t.holder(2, PartyKind::Company).await;
    let other = t.company(3).await;
    let bank = t.holder(4, PartyKind::Bank).await;
    let insurer = t.holder(5, PartyKind::Insurer).await;
    let rata = superbonus(&t, &a).await;
    assert_eq!(class_of(&t, &a, rata).await, Some(CedibilitaClass::Anyone));

    // First cession after the option: to anyone.
    pass(&t, &a, &b, rata).await;
    assert_eq!(
        class_of(&t, &b, rata).await,
        Some(CedibilitaClass::QualifiedOnly)
    );
    let e = t
        .cede(&b.user, &b.party, &[line(rata, &other, None)])
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e), ("R-CHAIN", "r_chain_not_qualified"));
    assert!(e.to_string().contains("Dopo 1 cessioni"), "{e}");
    // The preview says the same before the PIN.
    let preview = t
        .app
        .preview_cession(&b.user, b.party.id, &[line(rata, &other, None)])
        .await
        .unwrap();
    assert_eq!(
        preview[0].as_ref().map(AppError::code),
        Some("r_chain_not_qualified")
    );

    // Two more, each to a soggetto qualificato.
    pass(&t, &b, &bank, rata).await;
    assert_eq!(
        class_of(&t, &bank, rata).await,
        Some(CedibilitaClass::QualifiedOnly)
    );
    pass(&t, &bank, &insurer, rata).await;

    // The last allowed cession leaves it non cedibile: not listed, refused, F1 says so.
    assert_eq!(class_of(&t, &insurer, rata).await, None);
    let e = t
        .cede(
            &insurer.user,
            &insurer.party,
            &[line(rata, &bank.party, None)],
        )
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e), ("R-CHAIN", "not_cedible"));
    assert!(e.to_string().contains("3 cessioni"), "{e}");
    let row = t.monitor(&insurer.party, "superbonus", 2024).await;
    assert_eq!(row.residual_cedible, cents(0));
    assert_eq!(row.residual_not_cedible, cents(100_000));
    let row = t.monitor(&b.party, "superbonus", 2024).await;
    assert_eq!(row.residual_cedible, cents(0));
    t.verify_clean().await;
}

async fn r_chain_counts_only_cessions_from_2022_02_17(t: TestApp) {
    let a = t.holder(1, PartyKind::Company).await;
    let b = t.holder(2, PartyKind::Company).await;
    let c = t.holder(3, PartyKind::Company).await;
    let d = t.holder(4, PartyKind::Company).await;
    t.set_rome(2022, 1, 10, 10, 0);
    let credit = t
        .holding(&a.party, &a.user, "ecobonus", 100_000, date(2022, 1, 10))
        .await;
    // The rata of 2024, still in its window when the test moves to 2024.
    let rata = rata_of(&credit, 2024);
    // Two cessions before DL 13/2022 (no limit, and they do not count after it).
    pass(&t, &a, &b, rata).await;
    pass(&t, &b, &c, rata).await;
    t.set_rome(2024, 3, 1, 10, 0);
    assert_eq!(class_of(&t, &c, rata).await, Some(CedibilitaClass::Anyone));
    // The free cession of the new regime, then only qualified parties.
    pass(&t, &c, &d, rata).await;
    assert_eq!(
        class_of(&t, &d, rata).await,
        Some(CedibilitaClass::QualifiedOnly)
    );
    let row = t.monitor(&d.party, "ecobonus", 2024).await;
    assert_eq!(row.residual_restricted, row.residual_cedible);
    t.verify_clean().await;
}

/// A holder that receives the same rata again, along a longer path, after it has ceded
/// part of it: what it ceded carried the path it had when the cession was registered (one
/// cession before it, so two for the cessionario), not the longer one it got later.
async fn r_chain_a_cession_carries_the_path_its_cedente_had_when_registered(t: TestApp) {
    let x = t.holder(1, PartyKind::Company).await;
    let a = t.holder(2, PartyKind::Bank).await;
    let b = t.holder(3, PartyKind::Bank).await;
    let c = t.holder(4, PartyKind::Insurer).await;
    let credit = t
        .holding(&x.party, &x.user, "ecobonus", 100_000, old_day())
        .await;
    let rata = rata_of(&credit, 2024);
    // Partial cessions of a non-tracciabile rata: answerable at once (R-WAIT5).
    for to in [&a, &b] {
        cede_part(&t, &x, to, rata, 3_000).await;
        accept_from(&t, to, &x).await;
    }
    // B → A is registered first, A → C second; A accepts B's only afterwards.
    cede_part(&t, &b, &a, rata, 1_000).await;
    cede_part(&t, &a, &c, rata, 1_000).await;
    accept_from(&t, &a, &b).await;
    accept_from(&t, &c, &a).await;
    // C: X → A → C, two cessions: still cedible to soggetti qualificati.
    assert_eq!(
        class_of(&t, &c, rata).await,
        Some(CedibilitaClass::QualifiedOnly)
    );
    // A itself now holds it along X → B → A too: the most restrictive path counts.
    assert_eq!(
        class_of(&t, &a, rata).await,
        Some(CedibilitaClass::QualifiedOnly)
    );
    cede_part(&t, &a, &c, rata, 1_000).await;
    accept_from(&t, &c, &a).await;
    // What C got now came along X → B → A → C: three cessions, the limit.
    assert_eq!(class_of(&t, &c, rata).await, None);
    t.verify_clean().await;
}

/// The §5 paths kept by the writer (`cessio_store::paths`) give every holding the state the
/// replay of its history gives: along two paths to one holder, after a refusal, a
/// bank-client cession and a seizure and its release. `verify_clean` compares the two for
/// every party, here and at the end of every scenario that calls it.
async fn r_chain_kept_paths_equal_the_replay_after_every_kind_of_movement(t: TestApp) {
    let x = t.holder(1, PartyKind::Company).await;
    let a = t.holder(2, PartyKind::Bank).await;
    let b = t.holder(3, PartyKind::Company).await;
    let c = t.holder(4, PartyKind::Insurer).await;
    let credit = t
        .holding(&x.party, &x.user, "ecobonus", 100_000, old_day())
        .await;
    let rata = rata_of(&credit, 2024);
    let kept = |h: &Holder| {
        let (t, party) = (&t, h.party.id);
        async move {
            let account = t
                .app
                .store()
                .account(rata, cessio_store::AccountRef::Holder(party))
                .await
                .unwrap()
                .unwrap();
            t.app.store().holding_paths(&[account.id]).await.unwrap()[0].1
        }
    };
    cede_part(&t, &x, &a, rata, 3_000).await;
    cede_part(&t, &x, &b, rata, 3_000).await;
    accept_from(&t, &a, &x).await;
    t.answer(&b.user, &b.party, by_cedente(&x.party), false)
        .await
        .unwrap();
    t.verify_clean().await;
    cede_part(&t, &x, &b, rata, 2_000).await;
    accept_from(&t, &b, &x).await;
    cede_part(&t, &b, &a, rata, 1_000).await;
    accept_from(&t, &a, &b).await;
    // A holds it along X → A and X → B → A: the most restrictive, two cessions, counts.
    let path = kept(&a).await;
    assert_eq!(
        (path.before_cutoff + path.from_cutoff, path.unknown),
        (2, false)
    );
    cede_part(&t, &a, &c, rata, 1_000).await;
    accept_from(&t, &c, &a).await;
    assert!(kept(&c).await.is_complete());
    t.verify_clean().await;
    t.app
        .seize(
            &t.op,
            &t.key(),
            c.party.cf.as_str(),
            rata,
            "Decreto n. 1/2024",
        )
        .await
        .unwrap();
    assert!(
        kept(&c).await.seized,
        "a seizure sends the holding to its history"
    );
    t.verify_clean().await;
    t.advance_days(10);
    t.app
        .release_seizure(&t.op, &t.key(), c.party.cf.as_str(), rata)
        .await
        .unwrap();
    t.verify_clean().await;
}

/// Cedes `cents` of `rata` from `from` to `to`, pending.
async fn cede_part(t: &TestApp, from: &Holder, to: &Holder, rata: i64, cents: i64) {
    t.cede(
        &from.user,
        &from.party,
        &[line(rata, &to.party, Some(cents))],
    )
    .await
    .unwrap();
}

/// `to` accepts what `from` ceded to it.
async fn accept_from(t: &TestApp, to: &Holder, from: &Holder) {
    t.answer(&to.user, &to.party, by_cedente(&from.party), true)
        .await
        .unwrap();
}

/// A bank holding a rata that has had its three counted cessions.
async fn bank_at_the_limit(t: &TestApp) -> (Holder, i64) {
    let a = t.holder(1, PartyKind::Company).await;
    let b = t.holder(2, PartyKind::Company).await;
    let bank1 = t.holder(3, PartyKind::Bank).await;
    let bank2 = t.holder(4, PartyKind::Bank).await;
    let rata = superbonus(t, &a).await;
    pass(t, &a, &b, rata).await;
    pass(t, &b, &bank1, rata).await;
    pass(t, &bank1, &bank2, rata).await;
    (bank2, rata)
}

async fn r_bank_client_bank_at_the_limit_cedes_to_own_non_consumer_client_only(t: TestApp) {
    let (bank, rata) = bank_at_the_limit(&t).await;
    assert_eq!(
        class_of(&t, &bank, rata).await,
        Some(CedibilitaClass::OwnBankClientsOnly)
    );
    let client = t.holder(10, PartyKind::Company).await;
    let consumer = t.party(11, PartyKind::Person).await;
    let other_bank = t.party(12, PartyKind::Bank).await;
    // Not yet a client, a consumer client, another bank: refused, naming R-CHAIN (the limit), not the bank-client exception.
    for to in [&client.party, &consumer, &other_bank] {
        let e = t
            .cede(&bank.user, &bank.party, &[line(rata, to, None)])
            .await
            .unwrap_err();
        assert_eq!(rule_of(&e), ("R-CHAIN", "r_chain_exhausted"), "{to:?}");
    }
    // Only the operator keeps the registry.
    assert_eq!(
        t.app
            .set_bank_client(
                &bank.user,
                bank.party.cf.as_str(),
                client.party.cf.as_str(),
                BankClient::NonConsumer,
            )
            .await
            .unwrap_err()
            .code(),
        "forbidden"
    );
    t.app
        .set_bank_client(
            &t.op,
            bank.party.cf.as_str(),
            consumer.cf.as_str(),
            BankClient::Consumer,
        )
        .await
        .unwrap();
    let e = t
        .cede(&bank.user, &bank.party, &[line(rata, &consumer, None)])
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e), ("R-CHAIN", "r_chain_exhausted"));
    t.app
        .set_bank_client(
            &t.op,
            bank.party.cf.as_str(),
            client.party.cf.as_str(),
            BankClient::NonConsumer,
        )
        .await
        .unwrap();
    let listed = t
        .app
        .bank_clients(&t.op, bank.party.cf.as_str())
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    pass(&t, &bank, &client, rata).await;
    // The client may not cede further.
    assert_eq!(class_of(&t, &client, rata).await, None);
    let e = t
        .cede(
            &client.user,
            &client.party,
            &[line(rata, &other_bank, None)],
        )
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e), ("R-BANK-CLIENT", "not_cedible"));
    t.verify_clean().await;
}

async fn r_bank_client_outside_the_count_and_the_client_may_not_cede(t: TestApp) {
    let a = t.holder(1, PartyKind::Company).await;
    let b = t.holder(2, PartyKind::Company).await;
    let bank = t.holder(3, PartyKind::Bank).await;
    let client = t.holder(4, PartyKind::Company).await;
    let rata = superbonus(&t, &a).await;
    pass(&t, &a, &b, rata).await;
    pass(&t, &b, &bank, rata).await;
    // Only qualified parties now; the bank's non-consumer client is admitted anyway.
    t.app
        .set_bank_client(
            &t.op,
            bank.party.cf.as_str(),
            client.party.cf.as_str(),
            BankClient::NonConsumer,
        )
        .await
        .unwrap();
    pass(&t, &bank, &client, rata).await;
    assert_eq!(class_of(&t, &client, rata).await, None);
    let row = t.monitor(&client.party, "superbonus", 2024).await;
    assert_eq!(row.residual_not_cedible, cents(100_000));
    // Ending the relation stops further bank-client cessions, not the one registered.
    t.app
        .set_bank_client(
            &t.op,
            bank.party.cf.as_str(),
            client.party.cf.as_str(),
            BankClient::No,
        )
        .await
        .unwrap();
    assert!(
        t.app
            .bank_clients(&t.op, bank.party.cf.as_str())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(class_of(&t, &client, rata).await, None);
    t.verify_clean().await;
}

async fn r_once_one_cession_then_f24_only(mut t: TestApp) {
    // A catalogue where the recupero edilizio credit is "cedibile una sola volta".
    let text = cessio_core::catalogue::BUILTIN_TOML;
    let at = text.find("key = \"recupero_edilizio\"").unwrap();
    let (head, tail) = text.split_at(at);
    let tail = tail.replacen(
        "cession_regime = \"art121\"",
        "cession_regime = \"once\"",
        1,
    );
    t.app.catalogue = Arc::new(Catalogue::from_toml_str(&format!("{head}{tail}")).unwrap());
    let a = t.holder(1, PartyKind::Company).await;
    let bank = t.holder(2, PartyKind::Bank).await;
    let insurer = t.party(3, PartyKind::Insurer).await;
    let rata = t
        .holding(
            &a.party,
            &a.user,
            "recupero_edilizio",
            100_000,
            tracciabile_day(),
        )
        .await
        .rate[0]
        .id;
    assert_eq!(class_of(&t, &a, rata).await, Some(CedibilitaClass::Once));
    pass(&t, &a, &bank, rata).await;
    assert_eq!(class_of(&t, &bank, rata).await, None);
    let e = t
        .cede(&bank.user, &bank.party, &[line(rata, &insurer, None)])
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e), ("R-ONCE", "not_cedible"));
    assert!(e.to_string().contains("una sola volta"), "{e}");
    t.verify_clean().await;
}

/// DL 4/2022 art. 28 as the platform applied it, 17–25/02/2022 (`catalogue/rules.toml`):
/// a credit ceded before the cut-off is cedibile una sola volta; its cessionario may only
/// use it in F24 while the rule lasts, and under DL 13/2022 that cession was its free one.
async fn r_once_dl_4_2022_window_one_further_cession_then_f24_only(t: TestApp) {
    let a = t.holder(1, PartyKind::Company).await;
    let b = t.holder(2, PartyKind::Company).await;
    let c = t.holder(3, PartyKind::Company).await;
    let bank = t.party(4, PartyKind::Bank).await;
    t.set_rome(2022, 1, 10, 10, 0);
    let credit = t
        .holding(&a.party, &a.user, "ecobonus", 100_000, date(2022, 1, 10))
        .await;
    let rata = rata_of(&credit, 2024);
    // Before the cut-off: no limit, and nothing counted.
    cede_part(&t, &a, &b, rata, 4_000).await;
    accept_from(&t, &b, &a).await;
    t.set_rome(2022, 2, 18, 10, 0);
    assert_eq!(class_of(&t, &b, rata).await, Some(CedibilitaClass::Once));
    let row = t.monitor(&b.party, "ecobonus", 2024).await;
    assert_eq!(row.residual_restricted, cents(4_000));
    cede_part(&t, &b, &c, rata, 4_000).await;
    accept_from(&t, &c, &b).await;
    // The one cession is made: F24 only, whoever the cessionario.
    assert_eq!(class_of(&t, &c, rata).await, None);
    let e = t
        .cede(&c.user, &c.party, &[line(rata, &bank, None)])
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e), ("R-ONCE", "not_cedible"));
    assert!(e.to_string().contains("una sola volta"), "{e}");
    // A holding ceded before the cut-off and not since keeps its one cession.
    assert_eq!(class_of(&t, &a, rata).await, Some(CedibilitaClass::Once));
    // DL 13/2022 from 26/02/2022: that cession was the free one.
    t.set_rome(2022, 2, 26, 10, 0);
    assert_eq!(
        class_of(&t, &c, rata).await,
        Some(CedibilitaClass::QualifiedOnly)
    );
    assert_eq!(class_of(&t, &a, rata).await, Some(CedibilitaClass::Anyone));
    t.verify_clean().await;
}

/// In the window a cessione was itself the one cession (its cessionario may not cede); a
/// sconto in fattura leaves the supplier one cession (DL 4/2022 art. 28 c.1).
async fn r_once_dl_4_2022_window_a_cessione_option_was_the_one_cession(t: TestApp) {
    let cessionario = t.holder(1, PartyKind::Company).await;
    let supplier = t.holder(2, PartyKind::Company).await;
    let other = t.party(3, PartyKind::Company).await;
    t.set_rome(2022, 2, 21, 10, 0);
    let day = date(2022, 2, 21);
    let ceded = t
        .holding(
            &cessionario.party,
            &cessionario.user,
            "ecobonus",
            100_000,
            day,
        )
        .await;
    let ceded = rata_of(&ceded, 2024);
    assert_eq!(class_of(&t, &cessionario, ceded).await, None);
    let e = t
        .cede(
            &cessionario.user,
            &cessionario.party,
            &[line(ceded, &other, None)],
        )
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e), ("R-ONCE", "not_cedible"));

    let beneficiary = t.company(5).await;
    let mut sconto = t.option(&beneficiary, &supplier.party, "ecobonus", 100_000, day);
    sconto.origin = cessio_core::catalogue::Origin::Sconto;
    let credit = t.try_communicate(&sconto).await.unwrap();
    t.answer(
        &supplier.user,
        &supplier.party,
        by_cedente(&beneficiary),
        true,
    )
    .await
    .unwrap();
    let rata = rata_of(&credit, 2024);
    assert_eq!(
        class_of(&t, &supplier, rata).await,
        Some(CedibilitaClass::Once)
    );
    t.cede(&supplier.user, &supplier.party, &[line(rata, &other, None)])
        .await
        .unwrap();
    t.verify_clean().await;
}

async fn r_pa_may_not_acquire(t: TestApp) {
    let a = t.holder(1, PartyKind::Company).await;
    let pa = t.party(2, PartyKind::PublicAdministration).await;
    let rata = superbonus(&t, &a).await;
    let e = t
        .cede(&a.user, &a.party, &[line(rata, &pa, None)])
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e), ("R-PA", "r_pa"));
    // Nor as the first cessionario of an option communication.
    let beneficiary = t.company(3).await;
    let e = t
        .try_communicate(&t.option(&beneficiary, &pa, "superbonus", 10_000, tracciabile_day()))
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e), ("R-PA", "r_pa"));
    assert_eq!(class_of(&t, &a, rata).await, Some(CedibilitaClass::Anyone));
    t.verify_clean().await;
}

fn eco_option(t: &TestApp, beneficiary: &Party, holder: &Party) -> cessio_app::OptionInput {
    cessio_app::OptionInput {
        expense_year: 2019,
        ..t.option(
            beneficiary,
            holder,
            "ecobonus_art14",
            100_000,
            date(2020, 3, 2),
        )
    }
}

async fn r_eco_2018_never_to_banks_except_no_tax_area_beneficiary(t: TestApp) {
    let beneficiary = t.party(1, PartyKind::Person).await;
    let bank = t.holder(2, PartyKind::Bank).await;
    let intermediary = t.party(3, PartyKind::FinancialIntermediary).await;
    let supplier = t.holder(4, PartyKind::Company).await;
    let private = t.party(5, PartyKind::Person).await;
    // The option to a bank: only for a beneficiary in the no-tax area.
    let e = t
        .try_communicate(&eco_option(&t, &beneficiary, &bank.party))
        .await
        .unwrap_err();
    assert_eq!(rule_of(&e), ("R-ECO-2018", "r_eco_2018"));
    assert!(e.to_string().contains("no tax area"), "{e}");
    t.app
        .communicate_option_declaring(
            &t.op,
            &t.key(),
            None,
            &eco_option(&t, &beneficiary, &bank.party),
            true,
        )
        .await
        .unwrap();
    // To the supplier, then never on to a bank or financial intermediary.
    let credit = t
        .try_communicate(&eco_option(&t, &beneficiary, &supplier.party))
        .await
        .unwrap();
    t.answer(
        &supplier.user,
        &supplier.party,
        by_cedente(&beneficiary),
        true,
    )
    .await
    .unwrap();
    let rata = credit.rate[0].id;
    assert_eq!(
        class_of(&t, &supplier, rata).await,
        Some(CedibilitaClass::AnyoneExceptBanks)
    );
    for to in [&bank.party, &intermediary] {
        let e = t
            .cede(
                &supplier.user,
                &supplier.party,
                &[line(rata, to, Some(1_000))],
            )
            .await
            .unwrap_err();
        assert_eq!(rule_of(&e), ("R-ECO-2018", "r_eco_2018"));
    }
    t.cede(
        &supplier.user,
        &supplier.party,
        &[line(rata, &private, Some(1_000))],
    )
    .await
    .unwrap();
    // The declaration is kept with the communication: a no-tax-area beneficiary's credit
    // may reach a bank further down the chain too.
    let declared = t
        .app
        .communicate_option_declaring(
            &t.op,
            &t.key(),
            None,
            &eco_option(&t, &beneficiary, &supplier.party),
            true,
        )
        .await
        .unwrap();
    let stored = t
        .app
        .store()
        .credit(declared.credit.id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.beneficiary_no_tax_area);
    t.answer(
        &supplier.user,
        &supplier.party,
        by_cedente(&beneficiary),
        true,
    )
    .await
    .unwrap();
    let rata = declared.credit.rate[0].id;
    assert_eq!(
        class_of(&t, &supplier, rata).await,
        Some(CedibilitaClass::Anyone)
    );
    t.cede(
        &supplier.user,
        &supplier.party,
        &[line(rata, &bank.party, Some(1_000))],
    )
    .await
    .unwrap();
    t.verify_clean().await;
}
