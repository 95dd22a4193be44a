//! A party's events: what happened to what it sent, received or holds, in the order the
//! ledger registered it, read from where the reader left off. They come from the ledger's
//! own history (the party's feed, `cessio_store::feed`, and the operator's register for
//! suspensions), so they cannot disagree with what F4 shows.
//!
//! One event per movement of a rata: a cession of three rate is three `cession_received`
//! events with one protocol and one operation, as F3 can answer each rata by its codice
//! univoco. An answer is told to both sides of what it answers. An event's `id` is stable
//! (`t` and the movement, or `s` and the operator's entry), for a reader that must not act
//! twice; the cursor (`after`) is where the next read starts, and every read returns one,
//! so that a reader that saw nothing keeps its place.
//!
//! A read finds the events after the cursor; with `wait`, a read that finds none waits up
//! to that long for the first, asking the database again every [`POLL`]: several
//! processes may serve one PostgreSQL register, so a notice from this process's writer
//! would miss the others' writes.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cessio_core::ledger::{PartyId, Phase, TransferId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::suspension::SuspensionEnd;
use cessio_store::feed::{self, FeedRow};
use cessio_store::{OperatorEvent, SUSPENSION_END_EVENT, SUSPENSION_EVENT};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::paging::{PAGE_DEFAULT, PAGE_MAX};
use crate::{App, AppError, Principal};

/// The longest a read waits for a first event.
pub const WAIT_MAX: Duration = Duration::from_secs(30);
/// How often a waiting read asks the database again.
pub const POLL: Duration = Duration::from_millis(250);

/// What happened, as an integrator switches on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The party ceded a rata (F2); it awaits the cessionario's answer.
    CessionSent,
    /// A rata was ceded to the party (F2); it awaits its answer (F3).
    CessionReceived,
    CessionAccepted,
    CessionRefused,
    /// The cedente annulled its cession before the answer.
    CessionAnnulled,
    /// "Non effettuata": the operator voided the suspended cession (R-SUSP).
    CessionVoided,
    /// The operator suspended the cession (R-SUSP): it cannot be answered until released.
    CessionSuspended,
    CessionReleased,
    /// The beneficiary communicated the option (F8) for a rata.
    CommunicationSent,
    /// An option communication names the party as the first cessionario or supplier.
    CommunicationReceived,
    CommunicationAccepted,
    CommunicationRefused,
    /// The beneficiary annulled its communication before the answer (R-OPT-ANNUL).
    CommunicationAnnulled,
    CommunicationVoided,
    CommunicationSuspended,
    CommunicationReleased,
    /// A rata came to the party with no answer needed (a credit granted to it).
    CreditIssued,
    /// An F24 reserved an amount of the rata (F5).
    F24Reserved,
    F24Confirmed,
    F24Discarded,
    /// An amount used in an F24 at once.
    F24Used,
    /// A rata split in ten instalments (F6): the rata that went out and each new one.
    Split,
    /// The split annulled: the new rate went out and the rata came back.
    SplitAnnulled,
    /// Riduzione (F7).
    Reduced,
    /// The unused amount of the year's rata expired at year end (R-F24-WINDOW-121/122).
    Expired,
    /// The operator seized an amount of the rata (R-SEIZE).
    Seized,
    SeizureReleased,
    /// An operator's correction recorded with a request reference (F9), such as an
    /// acceptance annulled on request.
    Corrected,
}

impl EventKind {
    pub const ALL: [EventKind; 28] = [
        EventKind::CessionSent,
        EventKind::CessionReceived,
        EventKind::CessionAccepted,
        EventKind::CessionRefused,
        EventKind::CessionAnnulled,
        EventKind::CessionVoided,
        EventKind::CessionSuspended,
        EventKind::CessionReleased,
        EventKind::CommunicationSent,
        EventKind::CommunicationReceived,
        EventKind::CommunicationAccepted,
        EventKind::CommunicationRefused,
        EventKind::CommunicationAnnulled,
        EventKind::CommunicationVoided,
        EventKind::CommunicationSuspended,
        EventKind::CommunicationReleased,
        EventKind::CreditIssued,
        EventKind::F24Reserved,
        EventKind::F24Confirmed,
        EventKind::F24Discarded,
        EventKind::F24Used,
        EventKind::Split,
        EventKind::SplitAnnulled,
        EventKind::Reduced,
        EventKind::Expired,
        EventKind::Seized,
        EventKind::SeizureReleased,
        EventKind::Corrected,
    ];
}

/// One event of a party's feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Event {
    /// Stable: the same event always has the same id.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// When the ledger registered it.
    pub at: DateTime<Utc>,
    /// The movement (F4's row id for a cession or communication; for an answer, the id
    /// of the movement answered, so that both refer to the same F4 row).
    pub transfer: TransferId,
    /// The operation that registered it (its receipt), when it came through one.
    pub operation: Option<i64>,
    pub protocol: String,
    pub codice_univoco: String,
    pub type_key: String,
    pub year: i64,
    pub amount: Cents,
    /// The two sides of a cession or communication, by codice fiscale (none for the
    /// other movements, which have one side).
    pub cedente: Option<String>,
    pub cessionario: Option<String>,
    /// The last day of a suspension (R-SUSP).
    pub suspended_until: Option<NaiveDate>,
}

/// A read of a party's events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// The cursor of the next read: after the last event of this one, or where the read
    /// started when it found none.
    pub after: String,
}

/// Where a read starts: the last movement and the last operator's entry read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cursor {
    transfer: TransferId,
    suspension: i64,
}

const CURSOR_VERSION: &str = "e1";

impl Cursor {
    fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{CURSOR_VERSION}.{}.{}",
            self.transfer, self.suspension
        ))
    }

    fn decode(text: &str) -> Result<Cursor, AppError> {
        let invalid = || {
            AppError::Cursor {
            code: "cursor_invalid",
            detail: "Il cursore non è valido: ripartire senza after, o con after=end per i soli eventi futuri".into(),
        }
        };
        let text = URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(invalid)?;
        let mut parts = text.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(CURSOR_VERSION), Some(t), Some(s), None) => {
                let transfer: TransferId = t.parse().map_err(|_| invalid())?;
                let suspension: i64 = s.parse().map_err(|_| invalid())?;
                if transfer < 0 || suspension < 0 {
                    return Err(invalid());
                }
                Ok(Cursor {
                    transfer,
                    suspension,
                })
            }
            _ => Err(invalid()),
        }
    }
}

/// Where a reader asks to start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum EventsFrom {
    /// From the party's first event.
    #[default]
    Start,
    /// From what happens next (`after=end`).
    End,
    /// After the events a read returned (its `after`).
    Cursor(String),
}

impl EventsFrom {
    /// `after` as a request spells it.
    pub fn parse(after: Option<&str>) -> EventsFrom {
        match after.map(str::trim) {
            None | Some("") => EventsFrom::Start,
            Some("end") => EventsFrom::End,
            Some(c) => EventsFrom::Cursor(c.to_string()),
        }
    }
}

/// What kind of event a movement of the feed is, for `party`.
fn kind_of(r: &FeedRow, party: PartyId) -> EventKind {
    use EventKind as E;
    let into = r.counterparty == Some(party);
    if let Some(a) = r.answers {
        let accepted = r.phase == Phase::PostPending;
        // An answer keeps the kind of the movement it answers.
        return match r.kind {
            TransferKind::Use if accepted => E::F24Confirmed,
            TransferKind::Use => E::F24Discarded,
            kind => {
                let communication = kind == TransferKind::Issue;
                let by = r.party;
                match (accepted, communication) {
                    (true, false) => E::CessionAccepted,
                    (true, true) => E::CommunicationAccepted,
                    _ if by.is_some() && by == a.counterparty => {
                        if communication {
                            E::CommunicationRefused
                        } else {
                            E::CessionRefused
                        }
                    }
                    _ if by.is_some() && by == a.party => {
                        if communication {
                            E::CommunicationAnnulled
                        } else {
                            E::CessionAnnulled
                        }
                    }
                    // Only the operator's void of a suspended one answers for no party.
                    (_, true) => E::CommunicationVoided,
                    (_, false) => E::CessionVoided,
                }
            }
        };
    }
    let pending = r.phase == Phase::Pending;
    match r.kind {
        TransferKind::Cession if into => E::CessionReceived,
        TransferKind::Cession => E::CessionSent,
        TransferKind::Issue if into && pending => E::CommunicationReceived,
        TransferKind::Issue if into => E::CreditIssued,
        TransferKind::Issue => E::CommunicationSent,
        TransferKind::Use if pending => E::F24Reserved,
        TransferKind::Use => E::F24Used,
        TransferKind::Expire => E::Expired,
        // A split moves the rata out and its ten new rate in; its annulment the reverse.
        TransferKind::Split if into == r.split_of.is_some() => E::Split,
        TransferKind::Split => E::SplitAnnulled,
        TransferKind::Reduce => E::Reduced,
        TransferKind::Seize if into => E::SeizureReleased,
        TransferKind::Seize => E::Seized,
        TransferKind::Correction => E::Corrected,
    }
}

/// The two sides a cession or communication names: the pending movement's.
fn sides(r: &FeedRow) -> Option<(Option<PartyId>, Option<PartyId>)> {
    if !matches!(r.kind, TransferKind::Cession | TransferKind::Issue) {
        return None;
    }
    Some(match r.answers {
        Some(a) => (a.party, a.counterparty),
        None => (r.party, r.counterparty),
    })
}

/// A suspension's last day, as the operator's entry records it.
fn suspended_until(e: &OperatorEvent) -> Option<NaiveDate> {
    e.data
        .get("until")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

impl App {
    /// A party's events after `from`, at most `limit` (300 by default, up to 1,000). With
    /// `wait`, a read that finds none waits up to that long (at most [`WAIT_MAX`]) for the
    /// first. Who may see the party's movements may read its events.
    pub async fn events(
        &self,
        p: &Principal,
        party: PartyId,
        from: &EventsFrom,
        limit: Option<usize>,
        wait: Duration,
    ) -> Result<EventPage, AppError> {
        self.authorize_view(p, party).await?;
        let limit = limit.unwrap_or(PAGE_DEFAULT);
        if !(1..=PAGE_MAX).contains(&limit) {
            return Err(AppError::Invalid {
                field: "limit".into(),
                reason: format!("da 1 a {PAGE_MAX} eventi per lettura"),
            });
        }
        if wait > WAIT_MAX {
            return Err(AppError::Invalid {
                field: "wait".into(),
                reason: format!("al massimo {} secondi di attesa", WAIT_MAX.as_secs()),
            });
        }
        let start = match from {
            EventsFrom::Start => Cursor::default(),
            EventsFrom::Cursor(c) => Cursor::decode(c)?,
            EventsFrom::End => self.end_of_events(party).await?,
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let page = self.events_after(party, start, limit).await?;
            if !page.events.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(page);
            }
            tokio::time::sleep_until((tokio::time::Instant::now() + POLL).min(deadline)).await;
        }
    }

    /// Where a party's events end now: a reader starting there gets only what comes next.
    async fn end_of_events(&self, party: PartyId) -> Result<Cursor, AppError> {
        let (transfer, suspension) = self.store.party_feed_end(party).await?;
        Ok(Cursor {
            transfer,
            suspension,
        })
    }

    /// The cursor a new webhook starts from, authorised by its caller.
    pub(crate) async fn events_end_cursor(&self, party: PartyId) -> Result<String, AppError> {
        Ok(self.end_of_events(party).await?.encode())
    }

    /// The events after a webhook's cursor, for its delivery: the subscription was
    /// authorised when it was made.
    pub(crate) async fn events_for_delivery(
        &self,
        party: PartyId,
        cursor: &str,
        limit: usize,
    ) -> Result<EventPage, AppError> {
        self.events_after(party, Cursor::decode(cursor)?, limit)
            .await
    }

    /// One read: the feed's movements and the suspensions after the cursor, merged in the
    /// order they were registered (a movement first when both carry the same instant).
    /// Each source is taken in its own order, so what a read returns of each is a prefix
    /// of what follows its part of the cursor: nothing is skipped or told twice.
    async fn events_after(
        &self,
        party: PartyId,
        start: Cursor,
        limit: usize,
    ) -> Result<EventPage, AppError> {
        let moves = self.store.party_feed(party, start.transfer, limit).await?;
        let entries = self
            .store
            .operator_events(&feed::suspensions_after(party, start.suspension, limit))
            .await?;
        // A poll that finds nothing, the usual case of a waiting read, asks nothing more.
        if moves.is_empty() && entries.is_empty() {
            return Ok(EventPage {
                events: Vec::new(),
                after: start.encode(),
            });
        }
        let suspended_ids: Vec<TransferId> = entries.iter().filter_map(|e| e.transfer).collect();
        let suspended: std::collections::HashMap<TransferId, FeedRow> = if suspended_ids.is_empty()
        {
            std::collections::HashMap::new()
        } else {
            self.store
                .feed_rows(&suspended_ids)
                .await?
                .into_iter()
                .map(|r| (r.transfer, r))
                .collect()
        };

        let mut cursor = start;
        let mut taken = Vec::with_capacity(limit);
        let (mut m, mut s) = (moves.iter().peekable(), entries.iter().peekable());
        while taken.len() < limit {
            let take_move = match (m.peek(), s.peek()) {
                (Some(a), Some(b)) => a.at <= b.at,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_move {
                let Some(r) = m.next() else { break };
                cursor.transfer = r.transfer;
                taken.push(Taken::Move(r));
            } else {
                let Some(e) = s.next() else { break };
                cursor.suspension = e.id;
                if let Some(r) = e.transfer.and_then(|t| suspended.get(&t)) {
                    taken.push(Taken::Suspension(e, r));
                }
            }
        }
        let mut ids: Vec<PartyId> = taken
            .iter()
            .filter_map(|t| sides(t.row()))
            .flat_map(|(a, b)| [a, b])
            .flatten()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let cfs = self.cf_of(&ids).await?;
        let cf = |id: Option<PartyId>| id.and_then(|i| cfs.get(&i).cloned());
        let events = taken
            .into_iter()
            .filter_map(|t| {
                let (id, kind, at, until, operation) = match t {
                    Taken::Move(r) => (
                        format!("t{}", r.transfer),
                        kind_of(r, party),
                        r.at,
                        None,
                        Some(r.operation),
                    ),
                    Taken::Suspension(e, r) => {
                        let communication = r.kind == TransferKind::Issue;
                        let kind = match (e.kind.as_str(), communication) {
                            (SUSPENSION_EVENT, false) => EventKind::CessionSuspended,
                            (SUSPENSION_EVENT, true) => EventKind::CommunicationSuspended,
                            // A void is the movement's own event (`*_voided`), told once.
                            (SUSPENSION_END_EVENT, _)
                                if e.data.get("outcome")
                                    == Some(&serde_json::json!(SuspensionEnd::Voided)) =>
                            {
                                return None;
                            }
                            (_, false) => EventKind::CessionReleased,
                            (_, true) => EventKind::CommunicationReleased,
                        };
                        let until = (e.kind == SUSPENSION_EVENT)
                            .then(|| suspended_until(e))
                            .flatten();
                        (format!("s{}", e.id), kind, e.at, until, None)
                    }
                };
                let r = t.row();
                let (cedente, cessionario) = sides(r).unwrap_or((None, None));
                Some(Event {
                    id,
                    kind,
                    at,
                    transfer: r.answers.map_or(r.transfer, |a| a.transfer),
                    operation,
                    protocol: r.protocol.clone(),
                    codice_univoco: r.codice_univoco.clone(),
                    type_key: r.type_key.clone(),
                    year: r.year,
                    amount: r.answers.map_or(r.amount, |a| a.amount),
                    cedente: cf(cedente),
                    cessionario: cf(cessionario),
                    suspended_until: until,
                })
            })
            .collect();
        Ok(EventPage {
            events,
            after: cursor.encode(),
        })
    }
}

/// A row a read took, from either source.
enum Taken<'a> {
    Move(&'a FeedRow),
    Suspension(&'a OperatorEvent, &'a FeedRow),
}

impl Taken<'_> {
    fn row(&self) -> &FeedRow {
        match self {
            Taken::Move(r) | Taken::Suspension(_, r) => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cessio_store::feed::Answered;

    const HOLDER: PartyId = 1;
    const OTHER: PartyId = 2;

    fn row(
        kind: TransferKind,
        phase: Phase,
        party: Option<PartyId>,
        to: Option<PartyId>,
    ) -> FeedRow {
        FeedRow {
            transfer: 10,
            operation: 3,
            at: DateTime::<Utc>::default(),
            kind,
            phase,
            amount: Cents::new(100),
            party,
            counterparty: to,
            answers: None,
            rata: 5,
            codice_univoco: "X".into(),
            year: 2024,
            protocol: "P".into(),
            type_key: "superbonus".into(),
            split_of: None,
        }
    }

    fn answer(kind: TransferKind, accept: bool, by: Option<PartyId>) -> FeedRow {
        let phase = if accept {
            Phase::PostPending
        } else {
            Phase::VoidPending
        };
        FeedRow {
            answers: Some(Answered {
                transfer: 9,
                party: Some(HOLDER),
                counterparty: Some(OTHER),
                amount: Cents::new(100),
            }),
            ..row(kind, phase, by, Some(OTHER))
        }
    }

    #[test]
    fn each_movement_is_named_for_the_party_that_reads_it() {
        use EventKind as E;
        use TransferKind as K;
        let cases = [
            (
                row(K::Cession, Phase::Pending, Some(HOLDER), Some(OTHER)),
                HOLDER,
                E::CessionSent,
            ),
            (
                row(K::Cession, Phase::Pending, Some(HOLDER), Some(OTHER)),
                OTHER,
                E::CessionReceived,
            ),
            (
                answer(K::Cession, true, Some(OTHER)),
                HOLDER,
                E::CessionAccepted,
            ),
            (
                answer(K::Cession, false, Some(OTHER)),
                HOLDER,
                E::CessionRefused,
            ),
            (
                answer(K::Cession, false, Some(HOLDER)),
                OTHER,
                E::CessionAnnulled,
            ),
            (answer(K::Cession, false, None), OTHER, E::CessionVoided),
            (
                answer(K::Issue, false, Some(OTHER)),
                HOLDER,
                E::CommunicationRefused,
            ),
            (
                answer(K::Issue, false, Some(HOLDER)),
                HOLDER,
                E::CommunicationAnnulled,
            ),
            (
                row(K::Issue, Phase::Pending, Some(OTHER), Some(HOLDER)),
                HOLDER,
                E::CommunicationReceived,
            ),
            (
                row(K::Issue, Phase::Pending, Some(OTHER), Some(HOLDER)),
                OTHER,
                E::CommunicationSent,
            ),
            (
                row(K::Issue, Phase::Posted, None, Some(HOLDER)),
                HOLDER,
                E::CreditIssued,
            ),
            (
                row(K::Use, Phase::Pending, Some(HOLDER), None),
                HOLDER,
                E::F24Reserved,
            ),
            (
                row(K::Use, Phase::Posted, Some(HOLDER), None),
                HOLDER,
                E::F24Used,
            ),
            (answer(K::Use, true, Some(HOLDER)), HOLDER, E::F24Confirmed),
            (answer(K::Use, false, Some(HOLDER)), HOLDER, E::F24Discarded),
            (
                row(K::Expire, Phase::Posted, Some(HOLDER), None),
                HOLDER,
                E::Expired,
            ),
            (
                row(K::Reduce, Phase::Posted, Some(HOLDER), None),
                HOLDER,
                E::Reduced,
            ),
            (
                row(K::Seize, Phase::Posted, Some(HOLDER), None),
                HOLDER,
                E::Seized,
            ),
            (
                row(K::Seize, Phase::Posted, None, Some(HOLDER)),
                HOLDER,
                E::SeizureReleased,
            ),
            (
                row(K::Correction, Phase::Posted, Some(OTHER), Some(HOLDER)),
                HOLDER,
                E::Corrected,
            ),
            // The rata split goes out; its new rate come in. The annulment reverses both.
            (
                row(K::Split, Phase::Posted, Some(HOLDER), None),
                HOLDER,
                E::Split,
            ),
            (
                FeedRow {
                    split_of: Some(5),
                    ..row(K::Split, Phase::Posted, Some(HOLDER), Some(HOLDER))
                },
                HOLDER,
                E::Split,
            ),
            (
                FeedRow {
                    split_of: Some(5),
                    ..row(K::Split, Phase::Posted, Some(HOLDER), None)
                },
                HOLDER,
                E::SplitAnnulled,
            ),
            (
                row(K::Split, Phase::Posted, None, Some(HOLDER)),
                HOLDER,
                E::SplitAnnulled,
            ),
        ];
        for (r, party, expected) in cases {
            assert_eq!(kind_of(&r, party), expected, "{r:?} for {party}");
        }
    }

    #[test]
    fn every_kind_is_listed_once() {
        let mut names: Vec<String> = EventKind::ALL
            .iter()
            .map(|k| serde_json::to_string(k).unwrap_or_default())
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len());
        assert!(
            names.contains(&"\"f24_confirmed\"".to_string()),
            "{names:?}"
        );
    }

    #[test]
    fn a_cursor_reads_back_what_it_holds() {
        let c = Cursor {
            transfer: 42,
            suspension: 7,
        };
        assert_eq!(Cursor::decode(&c.encode()).ok(), Some(c));
    }

    #[test]
    fn a_damaged_cursor_is_refused_as_invalid() {
        let good = Cursor {
            transfer: 42,
            suspension: 7,
        }
        .encode();
        for bad in [
            "x",
            &good[..good.len() - 2],
            &URL_SAFE_NO_PAD.encode("e1.-1.0"),
            &URL_SAFE_NO_PAD.encode("e2.1.0"),
            &URL_SAFE_NO_PAD.encode("e1.1.0.9"),
        ] {
            match Cursor::decode(bad) {
                Err(AppError::Cursor { code, .. }) => assert_eq!(code, "cursor_invalid"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn after_end_and_nothing_are_told_apart_from_a_cursor() {
        assert_eq!(EventsFrom::parse(None), EventsFrom::Start);
        assert_eq!(EventsFrom::parse(Some(" ")), EventsFrom::Start);
        assert_eq!(EventsFrom::parse(Some("end")), EventsFrom::End);
        assert_eq!(
            EventsFrom::parse(Some("abc")),
            EventsFrom::Cursor("abc".into())
        );
    }
}
