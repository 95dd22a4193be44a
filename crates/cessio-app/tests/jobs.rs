//! Bulk jobs on both backends: an import worked through in parts with each row's outcome,
//! a job taken over from a runner that died, rows applied before found applied, an answer
//! by a list of codes, and bad submissions refused with nothing recorded.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

#[macro_use]
mod support;

use cessio_app::{
    AnswerJobRow, BulkJob, BulkJobKind, BulkJobState, IMPORT_PART, ImportRow, PageRequest,
    Principal,
};
use cessio_store::Party;
use cessio_store::jobs::JobPart;
use support::*;

backends!(
    jobs_import_registers_every_row_in_parts_and_a_file_sent_again_applies_nothing_twice,
    jobs_a_job_whose_runner_died_is_taken_over_from_where_it_stood,
    jobs_answer_accepts_by_codes_with_each_row_and_its_operation,
    jobs_are_their_submitters_and_bad_submissions_record_nothing,
);

const HEADER: &str =
    "cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione;riferimento";

/// `rows` communications of four beneficiaries to one supplier, the 7th row's amount
/// unreadable; each row has its own reference (and amount), so each is its own.
fn file(bens: &[Party], bank: &Party, rows: usize) -> String {
    let mut out = vec![HEADER.to_string()];
    for i in 0..rows {
        let ben = &bens[i % bens.len()];
        let amount = if i == 6 {
            "mille".to_string()
        } else {
            format!("{},00", 1_000 + i)
        };
        out.push(format!(
            "{};ecobonus_art14;2019;cessione;{};{amount};02/03/2020;R{i}",
            ben.cf, bank.cf
        ));
    }
    out.join("\n") + "\n"
}

async fn parties(t: &TestApp) -> (Vec<Party>, Party) {
    let mut bens = Vec::new();
    for n in 1..=4 {
        bens.push(t.company(n).await);
    }
    (bens, t.company(9).await)
}

async fn all_rows<T: serde::de::DeserializeOwned>(t: &TestApp, who: &Principal, id: i64) -> Vec<T> {
    let mut rows = Vec::new();
    let mut cursor = None;
    loop {
        let page = t
            .app
            .bulk_job_rows(
                who,
                id,
                &PageRequest {
                    limit: Some(250),
                    cursor,
                },
            )
            .await
            .unwrap();
        rows.extend(
            page.rows
                .into_iter()
                .map(|r| serde_json::from_value(serde_json::to_value(r).unwrap()).unwrap()),
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => return rows,
        }
    }
}

async fn run(t: &TestApp, id: i64) -> BulkJob {
    let mut parts = 0;
    let job = t
        .app
        .run_one_bulk_job(Some(id), |_| parts += 1)
        .await
        .unwrap()
        .unwrap();
    assert!(parts >= 1);
    job
}

async fn jobs_import_registers_every_row_in_parts_and_a_file_sent_again_applies_nothing_twice(
    t: TestApp,
) {
    let (bens, bank) = parties(&t).await;
    let rows = IMPORT_PART + 40;
    let csv = file(&bens, &bank, rows);
    // The first 20 rows were registered before, by an import of their own: the job finds
    // them by their content.
    let head: String = csv.lines().take(21).collect::<Vec<_>>().join("\n") + "\n";
    let before = t
        .app
        .import_communications(&t.op, None, head.as_bytes(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(
        (before.registered, before.refused),
        (19, 1),
        "{:?}",
        before.rows
    );

    let job = t
        .app
        .submit_import_job(&t.op, None, csv.as_bytes())
        .await
        .unwrap();
    assert_eq!(
        (job.kind, job.state, job.total_rows, job.done_rows),
        (BulkJobKind::Import, BulkJobState::Queued, rows as i64, 0)
    );
    // Sent again before it runs: the same job.
    let again = t
        .app
        .submit_import_job(&t.op, None, csv.as_bytes())
        .await
        .unwrap();
    assert_eq!((again.id, again.submissions), (job.id, 2));

    let done = run(&t, job.id).await;
    assert_eq!(done.state, BulkJobState::Done);
    assert_eq!(
        (done.done_rows, done.applied, done.already, done.refused),
        (rows as i64, rows as i64 - 20, 19, 1)
    );
    let outcomes: Vec<ImportRow> = all_rows(&t, &t.op, job.id).await;
    assert_eq!(outcomes.len(), rows);
    assert!(outcomes.windows(2).all(|w| w[0].line < w[1].line));
    assert_eq!(outcomes[6].code.as_deref(), Some("amount_malformed"));
    assert!(outcomes[0].already_registered && outcomes[0].protocol.is_some());
    assert!(outcomes[rows - 1].protocol.is_some() && !outcomes[rows - 1].already_registered);
    let report = t.app.bulk_import_report(&t.op, job.id).await.unwrap();
    assert_eq!(
        (report.registered, report.already_registered, report.refused),
        (rows - 20, 19, 1)
    );

    // Sent again after it ended: a new job, which registers nothing twice.
    let third = t
        .app
        .submit_import_job(&t.op, None, csv.as_bytes())
        .await
        .unwrap();
    assert_ne!(third.id, job.id);
    let third = run(&t, third.id).await;
    assert_eq!(
        (third.applied, third.already, third.refused),
        (0, rows as i64 - 1, 1)
    );
    let again: Vec<ImportRow> = all_rows(&t, &t.op, third.id).await;
    let protocols = |rows: &[ImportRow]| -> Vec<Option<String>> {
        rows.iter().map(|r| r.protocol.clone()).collect()
    };
    assert_eq!(protocols(&again), protocols(&outcomes));
    t.verify_clean().await;
}

async fn jobs_a_job_whose_runner_died_is_taken_over_from_where_it_stood(t: TestApp) {
    let (bens, bank) = parties(&t).await;
    let csv = file(&bens, &bank, IMPORT_PART + 10);
    let job = t
        .app
        .submit_import_job(&t.op, None, csv.as_bytes())
        .await
        .unwrap();
    // A runner claims it and dies before its first part is saved: its lease runs out.
    let now = t.app.now();
    let store = t.app.store();
    let (claimed, file) = store
        .claim_job(now, now - chrono::Duration::seconds(1), Some(job.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.state, file.as_slice()),
        (BulkJobState::Running, csv.as_bytes())
    );
    // A stale runner's part is not saved over where the job stands.
    let stale = store
        .save_job_part(job.id, 5, JobPart::default(), now, now)
        .await
        .unwrap();
    assert!(!stale);
    // Nothing else waits: the next runner takes the job over and ends it.
    let ran = t.app.run_bulk_jobs().await.unwrap();
    assert_eq!(ran, 1);
    let done = t.app.bulk_job(&t.op, job.id).await.unwrap();
    assert_eq!(
        (done.state, done.done_rows, done.refused),
        (BulkJobState::Done, (IMPORT_PART + 10) as i64, 1)
    );
    assert_eq!(t.app.run_bulk_jobs().await.unwrap(), 0);
    t.verify_clean().await;
}

async fn jobs_answer_accepts_by_codes_with_each_row_and_its_operation(t: TestApp) {
    let (ben, c) = (t.company(1).await, t.company(2).await);
    let cu = t.user_for(&c, "cessionario").await;
    let first = t
        .communicate(&ben, &c, "superbonus", 100_000, tracciabile_day())
        .await;
    let second = t
        .communicate(&ben, &c, "superbonus", 40_000, tracciabile_day())
        .await;
    let codes = vec![
        first.protocol.clone(),
        "NON-ESISTE".to_string(),
        second.rate[0].codice_univoco.to_lowercase(),
    ];
    let job = t
        .app
        .submit_answer_job(&cu, Some(PIN), c.id, &codes, true)
        .await
        .unwrap();
    assert_eq!((job.kind, job.accept), (BulkJobKind::Answer, Some(true)));
    let done = run(&t, job.id).await;
    assert_eq!(
        (done.state, done.applied, done.already, done.refused),
        (BulkJobState::Done, 2, 0, 1)
    );
    let rows: Vec<AnswerJobRow> = all_rows(&t, &cu, job.id).await;
    let shape: Vec<(usize, usize, Option<&str>)> = rows
        .iter()
        .map(|r| {
            (
                r.line,
                r.operations,
                r.error.as_ref().map(|e| e.code.as_str()),
            )
        })
        .collect();
    // The protocol names every rata of the first communication (those of past years too).
    let whole = rows[0].operations;
    assert!(whole >= first.rate.len());
    assert_eq!(
        shape,
        [(1, whole, None), (2, 0, Some("not_awaiting")), (3, 1, None)]
    );
    // One operation answered the part: its receipt names both communications' rows.
    let operation = rows[0].operation_id.unwrap();
    assert_eq!(rows[2].operation_id, Some(operation));
    let receipt = t.app.operation_receipt(&cu, c.id, operation).await.unwrap();
    assert_eq!(receipt.rows.len(), whole + 1);

    // The same list again: a new job; nothing awaits any more, nothing is answered twice.
    let again = t
        .app
        .submit_answer_job(&cu, Some(PIN), c.id, &codes, true)
        .await
        .unwrap();
    let again = run(&t, again.id).await;
    assert_eq!((again.applied, again.refused), (0, 3));
    t.verify_clean().await;
}

async fn jobs_are_their_submitters_and_bad_submissions_record_nothing(t: TestApp) {
    let (ben, c) = (t.company(1).await, t.company(2).await);
    let cu = t.user_for(&c, "cessionario").await;
    let other = t.user_for(&ben, "beneficiario").await;
    let credit = t
        .communicate(&ben, &c, "superbonus", 100_000, tracciabile_day())
        .await;
    let codes = vec![credit.protocol.clone()];
    // A wrong PIN, an empty list, a code on two lines, another party's list: refused.
    assert_eq!(
        code(
            t.app
                .submit_answer_job(&cu, Some("000000"), c.id, &codes, true)
                .await
        ),
        "pin_wrong"
    );
    assert_eq!(
        code(
            t.app
                .submit_answer_job(&cu, Some(PIN), c.id, &[], true)
                .await
        ),
        "invalid"
    );
    assert_eq!(
        code(
            t.app
                .submit_answer_job(&cu, Some(PIN), c.id, &["A\nB".to_string()], true)
                .await
        ),
        "invalid"
    );
    assert_eq!(
        code(
            t.app
                .submit_answer_job(&other, Some(PIN), c.id, &codes, true)
                .await
        ),
        "forbidden"
    );
    // A file that cannot be read: refused whole.
    assert_eq!(
        code(
            t.app
                .submit_import_job(&t.op, None, b"not;a;header\n")
                .await
        ),
        "invalid"
    );
    assert!(t.app.bulk_jobs(&t.op, 10).await.unwrap().is_empty());
    assert!(t.app.bulk_jobs(&cu, 10).await.unwrap().is_empty());
    assert_eq!(t.app.run_bulk_jobs().await.unwrap(), 0);

    // A job is its submitter's (and the operators'): another user is told it is not there.
    let job = t
        .app
        .submit_answer_job(&cu, Some(PIN), c.id, &codes, false)
        .await
        .unwrap();
    assert_eq!(code(t.app.bulk_job(&other, job.id).await), "not_found");
    assert_eq!(
        code(
            t.app
                .bulk_job_rows(&other, job.id, &PageRequest::default())
                .await
        ),
        "not_found"
    );
    assert_eq!(t.app.bulk_job(&t.op, job.id).await.unwrap().id, job.id);
    assert_eq!(t.app.bulk_jobs(&cu, 10).await.unwrap().len(), 1);
    let done = run(&t, job.id).await;
    assert_eq!((done.applied, done.refused), (1, 0));
    t.verify_clean().await;
}
