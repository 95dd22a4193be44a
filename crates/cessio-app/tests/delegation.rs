//! SPEC §2 delegations granted by the titolare: a family or a company delegates its
//! studio from the app, with the PIN, for consultazione or also disposizione, until a day
//! or until revoked; the studio sees what it holds; every change is in the audit trail.

#![expect(clippy::unwrap_used, reason = "tests")]

#[macro_use]
mod support;

use cessio_app::{DelegationState, Principal};
use cessio_store::{
    DELEGATION_GRANTED_EVENT, DELEGATION_REVOKED_EVENT, DelegationScope, OperatorEventQuery, Party,
};
use chrono::NaiveDate;
use support::*;

backends!(
    delegation_consultazione_reads_f1_f4_but_cannot_cede,
    delegation_disposizione_lets_the_studio_cede,
    delegation_expired_after_its_last_day_grants_nothing,
    delegation_revoked_by_the_titolare_grants_nothing_at_once,
    delegation_titolare_cannot_grant_for_a_party_not_its_own,
    delegation_grant_and_revoke_need_the_pin,
    delegation_end_date_in_the_past_is_refused,
    delegation_grant_is_idempotent_under_its_key,
    delegation_audit_entries_name_who_and_when,
    delegation_intermediary_sees_scope_and_end_of_what_it_holds,
    delegation_operator_delegates_disposizione_with_no_end,
);

/// A family (titolare, password login) holding an Ecobonus, a cessionario, and a studio
/// with a user of its own but no delegation yet.
struct Family {
    family: Party,
    titolare: Principal,
    cessionario: Party,
    studio: Principal,
    rata: i64,
}

async fn family(t: &TestApp) -> Family {
    let family = t.company(1).await;
    let titolare = t.user_for(&family, "famiglia").await;
    let cessionario = t.company(2).await;
    let studio_party = t.company(3).await;
    let studio = t.user_for(&studio_party, "studio").await;
    let credit = t
        .holding(&family, &titolare, "ecobonus", 10_000, old_day())
        .await;
    Family {
        family,
        titolare,
        cessionario,
        studio,
        rata: credit.rate[0].id,
    }
}

async fn grant(t: &TestApp, f: &Family, scope: DelegationScope, until: Option<NaiveDate>) {
    t.app
        .grant_delegation(
            &f.titolare,
            &t.key(),
            Some(PIN),
            f.family.id,
            "studio",
            scope,
            until,
        )
        .await
        .unwrap();
}

async fn studio_cedes(t: &TestApp, f: &Family) -> Result<(), cessio_app::AppError> {
    t.cede(&f.studio, &f.family, &[line(f.rata, &f.cessionario, None)])
        .await
        .map(|_| ())
}

async fn studio_reads(t: &TestApp, f: &Family) -> Result<(), cessio_app::AppError> {
    t.app.monitoring(&f.studio, f.family.id, None).await?;
    let filter = cessio_app::MovementFilter {
        registered_from: Some(date(2024, 1, 1)),
        ..cessio_app::MovementFilter::default()
    };
    t.app.movements(&f.studio, f.family.id, &filter).await?;
    Ok(())
}

async fn delegation_consultazione_reads_f1_f4_but_cannot_cede(t: TestApp) {
    let f = family(&t).await;
    assert_eq!(
        code(studio_reads(&t, &f).await),
        "forbidden",
        "no delegation yet"
    );
    grant(&t, &f, DelegationScope::Consultazione, None).await;
    studio_reads(&t, &f).await.unwrap();
    assert!(
        !t.cedible(&f.studio, &f.family).await.is_empty(),
        "it sees what is cedible"
    );
    let e = studio_cedes(&t, &f).await.unwrap_err();
    assert_eq!(e.code(), "delegation_view_only");
    assert_eq!(e.rule(), Some("R-DELEGA-SCOPE"));
    let answer = t
        .answer(&f.studio, &f.family, Default::default(), true)
        .await;
    assert_eq!(code(answer), "delegation_view_only");
    assert_eq!(
        t.max_cedibile(&f.titolare, &f.family, f.rata).await,
        cents(1_000)
    );
}

async fn delegation_disposizione_lets_the_studio_cede(t: TestApp) {
    let f = family(&t).await;
    grant(&t, &f, DelegationScope::Disposizione, None).await;
    studio_cedes(&t, &f).await.unwrap();
    assert_eq!(
        t.max_cedibile(&f.titolare, &f.family, f.rata).await,
        cents(0)
    );
}

async fn delegation_expired_after_its_last_day_grants_nothing(t: TestApp) {
    let f = family(&t).await;
    grant(
        &t,
        &f,
        DelegationScope::Disposizione,
        Some(date(2024, 3, 31)),
    )
    .await;
    // The last day counts whole, in Rome's time.
    t.set_rome(2024, 3, 31, 23, 59);
    studio_reads(&t, &f).await.unwrap();
    assert_eq!(t.app.parties_of(&f.studio).await.unwrap().len(), 2);
    t.set_rome(2024, 4, 1, 0, 0);
    assert_eq!(code(studio_reads(&t, &f).await), "forbidden");
    assert_eq!(code(studio_cedes(&t, &f).await), "forbidden");
    let mine: Vec<_> = t.app.parties_of(&f.studio).await.unwrap();
    assert!(
        mine.iter().all(|p| p.id != f.family.id),
        "gone from the chooser"
    );
    assert!(t.app.delegations_held(&f.studio).await.unwrap().is_empty());
    let listed = t
        .app
        .delegations_granted(&f.titolare, f.family.id)
        .await
        .unwrap();
    assert_eq!(listed[0].state, DelegationState::Expired);
}

async fn delegation_revoked_by_the_titolare_grants_nothing_at_once(t: TestApp) {
    let f = family(&t).await;
    grant(&t, &f, DelegationScope::Disposizione, None).await;
    studio_reads(&t, &f).await.unwrap();
    let r = t
        .app
        .revoke_delegation_by_titolare(&f.titolare, &t.key(), Some(PIN), f.family.id, "studio")
        .await
        .unwrap();
    assert_eq!((r.scope, r.replayed), (None, false));
    assert_eq!(code(studio_reads(&t, &f).await), "forbidden");
    assert_eq!(code(studio_cedes(&t, &f).await), "forbidden");
    let again = t
        .app
        .revoke_delegation_by_titolare(&f.titolare, &t.key(), Some(PIN), f.family.id, "studio")
        .await;
    assert_eq!(code(again), "not_found", "nothing live to revoke");
}

async fn delegation_titolare_cannot_grant_for_a_party_not_its_own(t: TestApp) {
    let f = family(&t).await;
    let other = t.company(4).await;
    let outsider = t.user_for(&other, "altro").await;
    let try_grant = |who: &Principal, party: i64| {
        let (app, key) = (t.app.clone(), t.key());
        let who = who.clone();
        async move {
            app.grant_delegation(
                &who,
                &key,
                Some(PIN),
                party,
                "altro",
                DelegationScope::Disposizione,
                None,
            )
            .await
        }
    };
    assert_eq!(code(try_grant(&outsider, f.family.id).await), "forbidden");
    // A delegate, even for disposizione, cannot pass its delegation on.
    grant(&t, &f, DelegationScope::Disposizione, None).await;
    let e = try_grant(&f.studio, f.family.id).await.unwrap_err();
    assert_eq!(e.code(), "forbidden");
    assert!(e.to_string().contains("solo il titolare"), "{e}");
    // Nor revoke it, nor read the titolare's list.
    let revoke = t
        .app
        .revoke_delegation_by_titolare(&f.studio, &t.key(), Some(PIN), f.family.id, "studio")
        .await;
    assert_eq!(code(revoke), "forbidden");
    assert_eq!(
        code(t.app.delegations_granted(&f.studio, f.family.id).await),
        "forbidden"
    );
    assert!(t.app.delegations_held(&outsider).await.unwrap().is_empty());
    // Delegating its own users or the operator makes no sense and is refused.
    let self_grant = t
        .app
        .grant_delegation(
            &f.titolare,
            &t.key(),
            Some(PIN),
            f.family.id,
            "famiglia",
            DelegationScope::Disposizione,
            None,
        )
        .await;
    assert_eq!(code(self_grant), "invalid");
}

async fn delegation_grant_and_revoke_need_the_pin(t: TestApp) {
    let f = family(&t).await;
    let with_pin = |pin: Option<&'static str>, who: Principal| {
        let (app, key, party) = (t.app.clone(), t.key(), f.family.id);
        async move {
            app.grant_delegation(
                &who,
                &key,
                pin,
                party,
                "studio",
                DelegationScope::Consultazione,
                None,
            )
            .await
        }
    };
    assert_eq!(
        code(with_pin(None, f.titolare.clone()).await),
        "pin_required"
    );
    assert_eq!(
        code(with_pin(Some("999999"), f.titolare.clone()).await),
        "pin_wrong"
    );
    assert!(t.app.delegations_held(&f.studio).await.unwrap().is_empty());
    let strong = t.strong("famiglia").await;
    with_pin(None, strong).await.unwrap();
    let revoke = t
        .app
        .revoke_delegation_by_titolare(&f.titolare, &t.key(), None, f.family.id, "studio")
        .await;
    assert_eq!(code(revoke), "pin_required");
    assert_eq!(t.app.delegations_held(&f.studio).await.unwrap().len(), 1);
}

async fn delegation_end_date_in_the_past_is_refused(t: TestApp) {
    let f = family(&t).await;
    let e = t
        .app
        .grant_delegation(
            &f.titolare,
            &t.key(),
            Some(PIN),
            f.family.id,
            "studio",
            DelegationScope::Consultazione,
            Some(date(2024, 2, 29)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.rule()),
        ("delegation_until_past", Some("R-DELEGA-END"))
    );
    assert!(e.to_string().contains("29/02/2024"), "{e}");
    // Today is a valid last day.
    grant(
        &t,
        &f,
        DelegationScope::Consultazione,
        Some(date(2024, 3, 1)),
    )
    .await;
    studio_reads(&t, &f).await.unwrap();
}

async fn delegation_grant_is_idempotent_under_its_key(t: TestApp) {
    let f = family(&t).await;
    let key = t.key();
    let send = |scope| {
        let (app, key, who, party) = (t.app.clone(), key.clone(), f.titolare.clone(), f.family.id);
        async move {
            app.grant_delegation(&who, &key, Some(PIN), party, "studio", scope, None)
                .await
        }
    };
    let first = send(DelegationScope::Consultazione).await.unwrap();
    let retry = send(DelegationScope::Consultazione).await.unwrap();
    assert!(!first.replayed && retry.replayed);
    assert_eq!(first.operation_id, retry.operation_id);
    assert_eq!(
        t.app
            .delegations_granted(&f.titolare, f.family.id)
            .await
            .unwrap()
            .len(),
        1,
        "the retry granted nothing more"
    );
    assert_eq!(
        code(send(DelegationScope::Disposizione).await),
        "idempotency_mismatch"
    );
}

async fn delegation_audit_entries_name_who_and_when(t: TestApp) {
    let f = family(&t).await;
    grant(
        &t,
        &f,
        DelegationScope::Consultazione,
        Some(date(2024, 6, 30)),
    )
    .await;
    t.advance_days(1);
    grant(&t, &f, DelegationScope::Disposizione, None).await;
    t.advance_days(1);
    t.app
        .revoke_delegation_by_titolare(&f.titolare, &t.key(), Some(PIN), f.family.id, "studio")
        .await
        .unwrap();
    let events = t
        .app
        .store()
        .operator_events(&OperatorEventQuery {
            kinds: vec![
                DELEGATION_GRANTED_EVENT.into(),
                DELEGATION_REVOKED_EVENT.into(),
            ],
            party: Some(f.family.id),
            ..OperatorEventQuery::default()
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            DELEGATION_GRANTED_EVENT,
            DELEGATION_GRANTED_EVENT,
            DELEGATION_REVOKED_EVENT
        ]
    );
    assert!(events.iter().all(|e| e.actor == f.titolare.actor()));
    assert_eq!(events[0].data["scope"], "consultazione");
    assert_eq!(events[0].data["until"], "2024-06-30");
    assert_eq!(events[0].data["user"], f.studio.user_id);
    assert!(events[0].at < events[1].at && events[1].at < events[2].at);

    // The titolare's list: newest first, who and when for each.
    let listed = t
        .app
        .delegations_granted(&f.titolare, f.family.id)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (listed[0].scope, listed[0].state),
        (DelegationScope::Disposizione, DelegationState::Revoked)
    );
    assert_eq!(listed[0].revoked_by.as_deref(), Some("famiglia"));
    assert_eq!(listed[0].revoked_at, Some(events[2].at));
    assert_eq!(
        (listed[1].scope, listed[1].until, listed[1].state),
        (
            DelegationScope::Consultazione,
            Some(date(2024, 6, 30)),
            DelegationState::Revoked
        ),
        "superseded by the second grant"
    );
    assert_eq!(listed[1].granted_by.as_deref(), Some("famiglia"));
    assert_eq!(listed[1].delegate_username, "studio");
    // The operator reads the same list.
    assert_eq!(
        t.app
            .delegations_granted(&t.op, f.family.id)
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn delegation_intermediary_sees_scope_and_end_of_what_it_holds(t: TestApp) {
    let f = family(&t).await;
    let condominio = t.company(5).await;
    let amministratore = t.user_for(&condominio, "amministratore").await;
    grant(
        &t,
        &f,
        DelegationScope::Consultazione,
        Some(date(2024, 12, 31)),
    )
    .await;
    t.app
        .grant_delegation(
            &amministratore,
            &t.key(),
            Some(PIN),
            condominio.id,
            "studio",
            DelegationScope::Disposizione,
            None,
        )
        .await
        .unwrap();
    let held = t.app.delegations_held(&f.studio).await.unwrap();
    let seen: Vec<_> = held
        .iter()
        .map(|h| (h.party.id, h.scope, h.until))
        .collect();
    assert_eq!(
        seen,
        [
            (
                f.family.id,
                DelegationScope::Consultazione,
                Some(date(2024, 12, 31))
            ),
            (condominio.id, DelegationScope::Disposizione, None),
        ],
        "by name: Soggetto 1, Soggetto 5"
    );
    assert_eq!(t.app.parties_of(&f.studio).await.unwrap().len(), 3);
}

async fn delegation_operator_delegates_disposizione_with_no_end(t: TestApp) {
    let f = family(&t).await;
    t.app
        .delegate(&t.op, "studio", f.family.cf.as_str())
        .await
        .unwrap();
    // A repeat of the same delegation changes nothing.
    t.app
        .delegate(&t.op, "studio", f.family.cf.as_str())
        .await
        .unwrap();
    let listed = t.app.delegations_granted(&t.op, f.family.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].scope,
            listed[0].until,
            listed[0].granted_by.as_deref()
        ),
        (DelegationScope::Disposizione, None, Some(OPERATOR))
    );
    studio_cedes(&t, &f).await.unwrap();
    t.app
        .revoke_delegation(&t.op, "studio", f.family.cf.as_str())
        .await
        .unwrap();
    assert_eq!(code(studio_reads(&t, &f).await), "forbidden");
    assert_eq!(
        code(
            t.app
                .revoke_delegation(&t.op, "studio", f.family.cf.as_str())
                .await
        ),
        "not_found"
    );
}
