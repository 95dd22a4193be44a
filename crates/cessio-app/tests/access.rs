//! SPEC §2: login and PIN, who may see and do what for a party, and whose name a
//! cessionario sees.

#![expect(clippy::unwrap_used, reason = "tests")]

#[macro_use]
mod support;

use cessio_app::{AppError, IncomingFilter, MovementFilter, Principal};
use support::*;

backends!(
    pin_required_for_dispositive_operations_after_password_login,
    pin_required_for_communication_and_annulment_by_users,
    pin_wrong_reports_remaining_attempts,
    pin_locked_after_five_wrong_even_for_the_right_pin,
    pin_unlocked_by_the_operator_works_again,
    pin_right_resets_the_failure_count,
    pin_not_needed_after_strong_login,
    login_failed_same_for_wrong_password_and_unknown_user,
    visibility_table_of_functions_by_actor,
    visibility_cedente_name_only_when_disclosed,
    r_history_intermediary_action_records_user_and_party,
);

/// A titolare (password login) holding a non-tracciabile Ecobonus, and a cessionario.
async fn titolare(t: &TestApp) -> (Actors, Vec<i64>) {
    let (holder, c) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "titolare").await;
    let cu = t.user_for(&c, "cessionario").await;
    let credit = t.holding(&holder, &h, "ecobonus", 10_000, old_day()).await;
    let rate = credit.rate.iter().map(|r| r.id).collect();
    (Actors { holder, h, c, cu }, rate)
}

async fn cede_with(
    t: &TestApp,
    x: &Actors,
    who: &Principal,
    rata: i64,
    pin: Option<&str>,
) -> Result<(), AppError> {
    t.app
        .cede(
            who,
            &t.key(),
            pin,
            x.holder.id,
            &[line(rata, &x.c, None)],
            true,
        )
        .await
        .map(|_| ())
}

async fn pin_required_for_dispositive_operations_after_password_login(t: TestApp) {
    let (x, rate) = titolare(&t).await;
    for pin in [None, Some("")] {
        assert_eq!(
            code(cede_with(&t, &x, &x.h, rate[0], pin).await),
            "pin_required"
        );
    }
    t.cede(&x.h, &x.holder, &[line(rate[0], &x.c, None)])
        .await
        .unwrap();
    let e = t
        .app
        .answer(
            &x.cu,
            &t.key(),
            None,
            x.c.id,
            &IncomingFilter::default(),
            true,
        )
        .await;
    assert_eq!(code(e), "pin_required");
    assert_eq!(t.incoming(&x.cu, &x.c).await.len(), 1);
}

async fn pin_wrong_reports_remaining_attempts(t: TestApp) {
    let (x, rate) = titolare(&t).await;
    for remaining in [4, 3] {
        let e = cede_with(&t, &x, &x.h, rate[0], Some("654321"))
            .await
            .unwrap_err();
        assert_eq!(e, AppError::PinWrong { remaining });
        assert!(e.to_string().contains(&remaining.to_string()), "{e}");
    }
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[0]).await, cents(1_000));
}

async fn pin_locked_after_five_wrong_even_for_the_right_pin(t: TestApp) {
    let (x, rate) = titolare(&t).await;
    for _ in 0..4 {
        assert_eq!(
            code(cede_with(&t, &x, &x.h, rate[0], Some("000000")).await),
            "pin_wrong"
        );
    }
    let fifth = cede_with(&t, &x, &x.h, rate[0], Some("000000")).await;
    assert_eq!(code(fifth), "pin_locked");
    assert_eq!(
        code(cede_with(&t, &x, &x.h, rate[0], Some(PIN)).await),
        "pin_locked"
    );
    // Also for answers, and for a new password session.
    let again = t.app.login("titolare", PASSWORD).await.unwrap();
    assert_eq!(
        code(cede_with(&t, &x, &again, rate[0], Some(PIN)).await),
        "pin_locked"
    );
    let e = t
        .app
        .answer(
            &again,
            &t.key(),
            Some(PIN),
            x.holder.id,
            &IncomingFilter::default(),
            true,
        )
        .await;
    assert_eq!(code(e), "pin_locked");
    assert_eq!(t.max_cedibile(&x.h, &x.holder, rate[0]).await, cents(1_000));
}

async fn pin_unlocked_by_the_operator_works_again(t: TestApp) {
    let (x, rate) = titolare(&t).await;
    for _ in 0..5 {
        cede_with(&t, &x, &x.h, rate[0], Some("000000"))
            .await
            .unwrap_err();
    }
    // Only the operator unlocks.
    assert_eq!(code(t.app.unlock_pin(&x.cu, "titolare").await), "forbidden");
    assert_eq!(code(t.app.unlock_pin(&t.op, "nessuno").await), "not_found");
    t.app.unlock_pin(&t.op, "titolare").await.unwrap();
    cede_with(&t, &x, &x.h, rate[0], Some(PIN)).await.unwrap();
    assert_eq!(t.incoming(&x.cu, &x.c).await.len(), 1);
}

async fn pin_right_resets_the_failure_count(t: TestApp) {
    let (x, rate) = titolare(&t).await;
    for _ in 0..4 {
        cede_with(&t, &x, &x.h, rate[0], Some("000000"))
            .await
            .unwrap_err();
    }
    cede_with(&t, &x, &x.h, rate[0], Some(PIN)).await.unwrap();
    let e = cede_with(&t, &x, &x.h, rate[1], Some("000000"))
        .await
        .unwrap_err();
    assert_eq!(e, AppError::PinWrong { remaining: 4 });
}

async fn pin_not_needed_after_strong_login(t: TestApp) {
    let (x, rate) = titolare(&t).await;
    let spid = t.strong("titolare").await;
    cede_with(&t, &x, &spid, rate[0], None).await.unwrap();
    let cessionario = t.strong("cessionario").await;
    t.app
        .answer(
            &cessionario,
            &t.key(),
            None,
            x.c.id,
            &IncomingFilter::default(),
            true,
        )
        .await
        .unwrap();
    assert_eq!(t.max_cedibile(&x.cu, &x.c, rate[0]).await, cents(1_000));
    // Strong login of an unknown user fails like a password login.
    assert_eq!(
        t.app.login_strong("nessuno").await,
        Err(AppError::LoginFailed)
    );
}

async fn login_failed_same_for_wrong_password_and_unknown_user(t: TestApp) {
    let p = t.company(1).await;
    t.user_for(&p, "titolare").await;
    let wrong = t
        .app
        .login("titolare", "password-sbagliata")
        .await
        .unwrap_err();
    let unknown = t.app.login("nessuno", PASSWORD).await.unwrap_err();
    assert_eq!(wrong, AppError::LoginFailed);
    assert_eq!(unknown, wrong);
    assert_eq!(unknown.to_string(), wrong.to_string());
    assert_eq!(wrong.code(), "login_failed");
    // The PIN is not a password.
    assert_eq!(
        t.app.login("titolare", PIN).await,
        Err(AppError::LoginFailed)
    );
}

#[derive(Clone, Copy, Debug)]
enum Who {
    Titolare,
    OtherTitolare,
    Intermediary,
    RevokedIntermediary,
    Operator,
}

#[derive(Clone, Copy, Debug)]
enum Func {
    Monitoring,
    Cedible,
    Incoming,
    Movements,
    Cede,
    Answer,
}

const FUNCS: [Func; 6] = [
    Func::Monitoring,
    Func::Cedible,
    Func::Incoming,
    Func::Movements,
    Func::Cede,
    Func::Answer,
];

const OK: &str = "ok";
const NO: &str = "forbidden";

/// Expected outcome of each function (in [`FUNCS`] order) on the titolare's party.
const TABLE: [(Who, [&str; 6]); 5] = [
    (Who::Titolare, [OK, OK, OK, OK, OK, OK]),
    (Who::OtherTitolare, [NO, NO, NO, NO, NO, NO]),
    (Who::Intermediary, [OK, OK, OK, OK, OK, OK]),
    (Who::RevokedIntermediary, [NO, NO, NO, NO, NO, NO]),
    // Operators see everything and dispose of nothing.
    (Who::Operator, [OK, OK, OK, OK, NO, NO]),
];

async fn visibility_table_of_functions_by_actor(t: TestApp) {
    let (x, rate) = titolare(&t).await;
    // Ten received groups (2022..2031) still waiting for the titolare's answer.
    let ben = t.company(5).await;
    t.communicate(&ben, &x.holder, "ecobonus", 10_000, old_day())
        .await;
    let other_party = t.company(3).await;
    let other = t.user_for(&other_party, "altro").await;
    let intermediary = t.intermediary(4, "intermediario", &x.holder).await;
    let revoked = t.intermediary(6, "revocato", &x.holder).await;
    t.app
        .revoke_delegation(&t.op, "revocato", x.holder.cf.as_str())
        .await
        .unwrap();
    let mut next_rata = rate.iter();
    let mut next_year = 2022..;
    for (who, expected) in TABLE {
        let p = match who {
            Who::Titolare => &x.h,
            Who::OtherTitolare => &other,
            Who::Intermediary => &intermediary,
            Who::RevokedIntermediary => &revoked,
            Who::Operator => &t.op,
        };
        for (func, expected) in FUNCS.into_iter().zip(expected) {
            let party = x.holder.id;
            let outcome = match func {
                Func::Monitoring => t.app.monitoring(p, party, None).await.map(|_| ()),
                Func::Cedible => t.app.cedible(p, party).await.map(|_| ()),
                Func::Incoming => t
                    .app
                    .incoming(p, party, &IncomingFilter::default())
                    .await
                    .map(|_| ()),
                Func::Movements => {
                    let f = MovementFilter {
                        year: Some(2022),
                        ..MovementFilter::default()
                    };
                    t.app.movements(p, party, &f).await.map(|_| ())
                }
                Func::Cede => {
                    let rata = *next_rata.next().unwrap();
                    cede_with(&t, &x, p, rata, Some(PIN)).await
                }
                Func::Answer => {
                    let selection = IncomingFilter {
                        cedente_cf: Some(ben.cf.as_str().into()),
                        ..by_year(next_year.next().unwrap())
                    };
                    t.app
                        .answer(p, &t.key(), Some(PIN), party, &selection, true)
                        .await
                        .map(|_| ())
                }
            };
            let got = outcome.as_ref().map_or_else(AppError::code, |()| OK);
            assert_eq!(got, expected, "{who:?} {func:?}: {outcome:?}");
        }
    }
    // Exactly the two allowed actors ceded and answered.
    let m = t.monitor(&x.holder, "ecobonus", 2024).await;
    assert_eq!(m.ceded_pending, cents(1_000));
    assert_eq!(t.incoming(&x.h, &x.holder).await.len(), 10 - 2);
}

async fn visibility_cedente_name_only_when_disclosed(t: TestApp) {
    let (x, rate) = titolare(&t).await;
    let shy = t.company(3).await;
    let s = t.user_for(&shy, "riservato").await;
    let shy_credit = t.holding(&shy, &s, "ecobonus", 10_000, old_day()).await;
    t.cede(&x.h, &x.holder, &[line(rate[0], &x.c, None)])
        .await
        .unwrap();
    // A cession recorded without the consent: the platform's own history before the box
    // became required, loaded as it was (the app refuses new ones, F2).
    t.app
        .store()
        .submit(cessio_store::Operation {
            idempotency_key: cessio_store::IdempotencyKey::parse("storico:riservato").unwrap(),
            acting_user: "storico".into(),
            on_behalf_of: Some(shy.id),
            at: t.app.now(),
            command: cessio_store::Command::Transfer(vec![cessio_store::TransferRequest::Move {
                rata: shy_credit.rate[0].id,
                from: cessio_store::AccountRef::Holder(shy.id),
                to: cessio_store::AccountRef::Holder(x.c.id),
                amount: shy_credit.rate[0].amount,
                kind: cessio_core::ledger::TransferKind::Cession,
                pending: true,
                disclose: false,
                path: None,
            }]),
            request_hash: None,
            delegate: None,
            checks: Vec::new(),
        })
        .await
        .unwrap();
    let name_in_incoming = |groups: &[cessio_app::IncomingGroup], cf: &str| {
        groups
            .iter()
            .find(|g| g.cedente.cf == cf)
            .unwrap()
            .cedente
            .name
            .clone()
    };
    let groups = t.incoming(&x.cu, &x.c).await;
    assert_eq!(
        name_in_incoming(&groups, x.holder.cf.as_str()),
        Some(x.holder.name.clone())
    );
    assert_eq!(name_in_incoming(&groups, shy.cf.as_str()), None);

    t.accept_all(&x.cu, &x.c).await;
    let rows = t.movements(&x.cu, &x.c).await;
    let name_in_movements = |cf: &str| {
        rows.iter()
            .find(|r| r.cedente.cf == cf)
            .unwrap()
            .cedente
            .name
            .clone()
    };
    assert_eq!(
        name_in_movements(x.holder.cf.as_str()),
        Some(x.holder.name.clone())
    );
    assert_eq!(name_in_movements(shy.cf.as_str()), None);
    // The cedente always sees its own name.
    let own = t.movements(&s, &shy).await;
    assert!(
        own.iter()
            .any(|r| r.cedente.name.as_deref() == Some(shy.name.as_str()))
    );
}

async fn pin_required_for_communication_and_annulment_by_users(t: TestApp) {
    let (ben, holder) = (t.company(1).await, t.company(2).await);
    let b = t.user_for(&ben, "beneficiario").await;
    let input = cessio_app::OptionInput {
        exception: Some(cilas_exception()),
        ..t.option(&ben, &holder, "superbonus", 100_000, date(2024, 3, 1))
    };
    let e = t.app.communicate_option(&b, &t.key(), None, &input).await;
    assert_eq!(code(e), "pin_required");
    let credit = t
        .app
        .communicate_option(&b, &t.key(), Some(PIN), &input)
        .await
        .unwrap();
    let e = t.app.annul_option(&b, &t.key(), None, credit.id).await;
    assert_eq!(code(e), "pin_required");
    t.app
        .annul_option(&b, &t.key(), Some(PIN), credit.id)
        .await
        .unwrap();
}

async fn r_history_intermediary_action_records_user_and_party(t: TestApp) {
    let (x, rate) = titolare(&t).await;
    let i = t.intermediary(4, "intermediario", &x.holder).await;
    cede_with(&t, &x, &i, rate[0], Some(PIN)).await.unwrap();
    let history = t.app.store().history(rate[0]).await.unwrap();
    let last = history.last().unwrap();
    assert!(last.acting_user.starts_with("intermediario"), "{last:?}");
    assert_eq!(
        (last.party, last.counterparty),
        (Some(x.holder.id), Some(x.c.id))
    );
}
