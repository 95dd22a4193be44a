//! The PIN gate under concurrency (a defect found by the kill loop under HTTP load,
//! `crates/cessio/tests/kill_loop.rs`): `check_pin` used to count every attempt as a
//! failure before verifying it, so a program with more requests in flight than
//! `pin_max_failures`, all with the right PIN, got `pin_locked`. Only wrong PINs count now
//! (SPEC §2); parallel wrong guesses are still held at the lock (`pin_lock_holds_against_
//! parallel_guesses` in the web tests).

#![expect(clippy::unwrap_used, reason = "tests")]

#[macro_use]
mod support;

use support::*;

backends!(pin_right_pin_in_concurrent_requests_is_never_refused,);

async fn pin_right_pin_in_concurrent_requests_is_never_refused(t: TestApp) {
    let (holder, c) = (t.company(1).await, t.company(2).await);
    let h = t.user_for(&holder, "cedente").await;
    let credit = t.holding(&holder, &h, "ecobonus", 100_000, old_day()).await;
    let rata = credit.rate[0].id;
    // Twelve one-cent cessions at once, each with the right PIN.
    let calls: Vec<_> = (0..12)
        .map(|i| {
            let app = t.app.clone();
            let (h, holder, c) = (h.clone(), holder.clone(), c.clone());
            tokio::spawn(async move {
                app.cede(
                    &h,
                    &format!("pin-{i}"),
                    Some(PIN),
                    holder.id,
                    &[line(rata, &c, Some(1))],
                    true,
                )
                .await
            })
        })
        .collect();
    let mut refused = Vec::new();
    for call in calls {
        if let Err(e) = call.await.unwrap() {
            refused.push(e.code());
        }
    }
    assert!(
        refused.is_empty(),
        "refused with the right PIN: {refused:?}"
    );
}
