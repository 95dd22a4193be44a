//! F4 Lista movimenti: the list (at most 300 rows, R-300) and its CSV export (at most
//! 50,000, R-50000), read a batch at a time so that an export's memory does not grow with
//! its rows.
//!
//! R-50000 refuses the whole export, so the count comes first: the database counts what
//! the pushed-down conditions select, up to one past the limit (`Store::count_entries`);
//! only when that is over are the rows read once through the filters kept in memory,
//! counting. Then `Store::stream_entries` hands the rows to the HTTP body, the page's
//! download or `cessio export`. An export cut short is an error, never a shorter file (the
//! HTTP response is cut, `cessio export` removes its partial file), and a register that
//! grew past the limit between count and read is refused there too. Each row's cedibilità
//! is F1's kept view, looked up once per batch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cessio_core::catalogue::Catalogue;
use cessio_core::cf::CodiceFiscale;
use cessio_core::ledger::{PartyId, RataId, TransferId, TransferKind};
use cessio_core::rules;
use cessio_core::split::is_split_code;
use cessio_core::time::{rome_date, rome_start_of_day};
use cessio_store::{EntryQuery, EntryStream, Party, PartyEntry, Store};
use chrono::NaiveDate;

use crate::functions::{check_date, parties_of, party_ref, state_of};
use crate::paging::{Listing, Page, PageRequest, next_cursor};
use crate::{
    App, AppError, CedibilitaClass, MovementFilter, MovementRow, MovementState, Principal,
};

/// What a movement list selects: the store's query, and the filters the store cannot
/// apply (a codice fiscale's prefix, the state, the answer's dates, a code).
#[derive(Debug)]
struct Selection {
    party: PartyId,
    filter: MovementFilter,
    cedente_prefix: Option<String>,
    cessionario_prefix: Option<String>,
    code: Option<String>,
    annulled: HashSet<TransferId>,
    /// Pending movements suspended today, with their last day (R-SUSP).
    suspended: HashMap<TransferId, NaiveDate>,
    catalogue: Arc<Catalogue>,
    /// Who asks, and the app whose kept F1 view gives each rata's cedibilità.
    app: App,
    principal: Principal,
}

/// The F4 label of a class of cedibilità (`CedibilitaClass::label`); `None`: nothing of the
/// rata is available to the party (ceded away, used, pending out, or never held).
fn cedibilita_label(class: Option<CedibilitaClass>) -> &'static str {
    class.map_or("nessun residuo disponibile", CedibilitaClass::label)
}

impl Selection {
    /// The row a movement shows, if the filters keep it.
    fn row(&self, e: &PartyEntry, parties: &HashMap<PartyId, Party>) -> Option<MovementRow> {
        let f = &self.filter;
        if !matches!(e.kind, TransferKind::Issue | TransferKind::Cession) {
            return None;
        }
        let in_range = |d: NaiveDate, from: Option<NaiveDate>, to: Option<NaiveDate>| {
            from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t)
        };
        let state = state_of(e, &self.annulled, &self.suspended);
        let ceded_on = match e.kind {
            TransferKind::Issue => e.communicated_on,
            _ => rome_date(e.at),
        };
        let cedente = party_ref(parties, e.party, e.disclose || e.party == Some(self.party));
        let cessionario = party_ref(parties, e.counterparty, true);
        let keep = in_range(rome_date(e.at), f.registered_from, f.registered_to)
            && (f.answered_from.is_none() && f.answered_to.is_none()
                || e.answer
                    .is_some_and(|a| in_range(rome_date(a.at), f.answered_from, f.answered_to)))
            && self
                .cedente_prefix
                .as_ref()
                .is_none_or(|x| cedente.cf.starts_with(x.as_str()))
            && self
                .cessionario_prefix
                .as_ref()
                .is_none_or(|x| cessionario.cf.starts_with(x.as_str()))
            && f.state.is_none_or(|s| s == state)
            && f.type_key.as_ref().is_none_or(|t| *t == e.type_key)
            && f.codice_tributo
                .as_ref()
                .is_none_or(|c| *c == e.codice_tributo)
            && f.year.is_none_or(|y| y == e.year.get())
            && self
                .code
                .as_ref()
                .is_none_or(|c| *c == e.protocol || *c == e.codice_univoco)
            && f.tracciabile.is_none_or(|t| t == e.tracciabile)
            && in_range(ceded_on, f.ceded_from, f.ceded_to);
        keep.then(|| MovementRow {
            id: e.transfer,
            credit: e.credit,
            rata: e.rata,
            registered_at: e.at,
            kind: e.kind,
            cedente,
            cessionario,
            type_key: e.type_key.clone(),
            type_name: self
                .catalogue
                .get(&e.type_key)
                .map_or_else(|| e.type_key.clone(), |t| t.name.clone()),
            codice_tributo: e.codice_tributo.clone(),
            year: e.year.get(),
            amount: e.amount,
            state,
            suspended_until: (state == MovementState::Sospesa)
                .then(|| self.suspended.get(&e.transfer).copied())
                .flatten(),
            answered_at: e.answer.map(|a| a.at),
            protocol: e.protocol.clone(),
            codice_univoco: e.codice_univoco.clone(),
            tracciabile: e.tracciabile,
            // Filled per batch from the kept F1 view (`classify`).
            cedibilita: String::new(),
            cedibilita_class: None,
            ceded_on,
        })
    }

    /// Each row's cedibilità as F1/F2 classify the party's holding of its rata today, then
    /// the "tipologia per cedibilità" filter.
    async fn classify(&self, rows: Vec<MovementRow>) -> Result<Vec<MovementRow>, AppError> {
        let rate: Vec<RataId> = rows.iter().map(|r| r.rata).collect();
        let classes: HashMap<RataId, CedibilitaClass> = self
            .app
            .with_holding_classes(&self.principal, self.party, |view| {
                rate.iter()
                    .filter_map(|r| view.class_of(*r).map(|c| (*r, c)))
                    .collect()
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|mut r| {
                // R-SPLIT-NOCEDE holds whatever the view says of a split rata.
                let class = classes.get(&r.rata).copied().map(|c| {
                    if is_split_code(&self.catalogue, &r.codice_tributo) {
                        CedibilitaClass::NotCedible
                    } else {
                        c
                    }
                });
                r.cedibilita = cedibilita_label(class).to_string();
                r.cedibilita_class = class;
                r
            })
            .filter(|r| {
                self.filter
                    .cedibilita
                    .is_none_or(|c| r.cedibilita_class == Some(c))
            })
            .collect())
    }

    /// The rows of a batch of movements, refused once more than `max` are kept in all.
    async fn rows(
        &self,
        store: &dyn Store,
        entries: &[PartyEntry],
        kept: &mut usize,
        (max, rule): (usize, &'static str),
    ) -> Result<Vec<MovementRow>, AppError> {
        let parties = parties_of(store, entries).await?;
        let candidates: Vec<MovementRow> = entries
            .iter()
            .filter_map(|e| self.row(e, &parties))
            .collect();
        let rows = self.classify(candidates).await?;
        if *kept + rows.len() > max {
            return Err(AppError::TooManyRows { limit: max, rule });
        }
        *kept += rows.len();
        Ok(rows)
    }
}

/// F4's export as it is read: rows in registration order, one batch at a time, R-50000
/// checked before the first. Made by [`App::movements_export`].
#[derive(Debug)]
pub struct MovementExport {
    store: Arc<dyn Store>,
    /// What is exported and the rows' stream; `None` when nothing is (a codice fiscale
    /// of no party).
    source: Option<(Selection, EntryStream)>,
    kept: usize,
    header_written: bool,
}

impl MovementExport {
    /// The next rows; `None` once all are read.
    pub async fn next_rows(&mut self) -> Option<Result<Vec<MovementRow>, AppError>> {
        let (selection, stream) = self.source.as_mut()?;
        loop {
            let batch = match stream.next().await? {
                Ok(batch) => batch,
                Err(e) => return Some(Err(e.into())),
            };
            // The count was taken before the rows were read: a register that grew in
            // between is refused here rather than exported past the limit.
            let rows = selection
                .rows(&*self.store, &batch, &mut self.kept, export_limit())
                .await;
            match rows {
                Ok(rows) if rows.is_empty() => {}
                other => return Some(other),
            }
        }
    }

    /// The next piece of the CSV file: the BOM and header first, then the rows of each
    /// batch; `None` at the end.
    pub async fn next_csv(&mut self) -> Option<Result<Vec<u8>, AppError>> {
        if !self.header_written {
            self.header_written = true;
            return Some(csv_header().map_err(csv_error));
        }
        Some(
            self.next_rows()
                .await?
                .and_then(|rows| csv_rows(&rows).map_err(csv_error)),
        )
    }

    /// Rows handed over so far.
    pub fn rows_read(&self) -> usize {
        self.kept
    }
}

fn csv_error(e: std::io::Error) -> AppError {
    AppError::invalid("csv", e.to_string())
}

fn export_limit() -> (usize, &'static str) {
    (rules::MOVEMENTS_EXPORT_LIMIT, "R-50000")
}

impl App {
    /// F4 Lista movimenti: cessions and communications where the party is cedente or
    /// cessionario. Above 300 rows the caller is told to narrow (never truncated).
    pub async fn movements(
        &self,
        p: &Principal,
        party: PartyId,
        filter: &MovementFilter,
    ) -> Result<Vec<MovementRow>, AppError> {
        let Some((query, selection)) = self.movement_selection(p, party, filter).await? else {
            return Ok(Vec::new());
        };
        let q = &query;
        let entries = self
            .listing_read(party, |s| async move { s.find_entries(q).await })
            .await?;
        selection
            .rows(
                &*self.store,
                &entries,
                &mut 0,
                (rules::MOVEMENTS_SHOWN_LIMIT, "R-300"),
            )
            .await
    }

    /// F4 over the API, a page at a time in registration order (`crate::paging`): the
    /// rows R-300 would refuse are reached page by page, up to R-50000, which is checked on
    /// the first page as the export checks it (and again on each page, for a register that
    /// grew in between).
    pub async fn movements_page(
        &self,
        p: &Principal,
        party: PartyId,
        filter: &MovementFilter,
        page: &PageRequest,
    ) -> Result<Page<MovementRow>, AppError> {
        let position = page.position(Listing { filter })?;
        let Some((mut query, selection)) = self.movement_selection(p, party, filter).await? else {
            return Ok(Page::empty());
        };
        let (cap, rule) = export_limit();
        // The database's count is of a superset (the filters kept in memory are not in it):
        // only above the cap are the rows counted through them.
        if position.after.is_none()
            && self.store.count_entries(&query, cap + 1).await? > cap
            && self.movements_count(p, party, filter).await?.is_none()
        {
            return Err(AppError::TooManyRows { limit: cap, rule });
        }
        // One row more than the page, to know whether another follows; the rows the
        // filters kept in memory drop are made up by reading on, at least a hundred
        // movements a round so that a rare match does not cost a round per row.
        let wanted = position.limit + 1;
        let read = wanted.max(100);
        query.limit = Some(read);
        query.after = position.after;
        let mut rows = Vec::new();
        loop {
            let q = &query;
            let entries = self
                .listing_read(party, |s| async move { s.find_entries(q).await })
                .await?;
            let read_all = entries.len() < read;
            query.after = entries.last().map(|e| e.transfer).or(query.after);
            rows.extend(
                selection
                    .rows(&*self.store, &entries, &mut 0, (usize::MAX, rule))
                    .await?,
            );
            if rows.len() >= wanted || read_all {
                break;
            }
        }
        let more = rows.len() > position.limit;
        rows.truncate(position.limit);
        let seen = position.seen + rows.len();
        if seen > cap {
            return Err(AppError::TooManyRows { limit: cap, rule });
        }
        let next = match rows.last() {
            Some(last) if more => Some(next_cursor(&last.id, seen, filter)),
            _ => None,
        };
        Ok(Page { rows, next })
    }

    /// How many movements the selection holds, counted up to the export's limit: what the
    /// page says when the list is over the 300 rows it shows, so that the export is
    /// still offered. `None` above the export's limit (R-50000).
    pub async fn movements_count(
        &self,
        p: &Principal,
        party: PartyId,
        filter: &MovementFilter,
    ) -> Result<Option<usize>, AppError> {
        let Some((query, selection)) = self.movement_selection(p, party, filter).await? else {
            return Ok(Some(0));
        };
        let (max, rule) = export_limit();
        // The rows are counted through the filters kept in memory (the database's count
        // is a superset: other kinds of movement, codice fiscale prefixes...).
        let mut counting = self.entry_stream(party, &query).await?;
        let mut kept = 0;
        while let Some(batch) = counting.next().await {
            match selection
                .rows(&*self.store, &batch?, &mut kept, (max, rule))
                .await
            {
                Ok(_) => {}
                Err(AppError::TooManyRows { .. }) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Ok(Some(kept))
    }

    /// F4's CSV export of the same selection, at most 50,000 rows (R-50000): refused whole
    /// above that, never truncated. The rows are read as the caller takes them.
    pub async fn movements_export(
        &self,
        p: &Principal,
        party: PartyId,
        filter: &MovementFilter,
    ) -> Result<MovementExport, AppError> {
        let mut export = MovementExport {
            store: self.store.clone(),
            source: None,
            kept: 0,
            header_written: false,
        };
        let Some((query, selection)) = self.movement_selection(p, party, filter).await? else {
            return Ok(export);
        };
        let (max, rule) = export_limit();
        // The database counts what its conditions select, a superset of the rows. Only when
        // that is over the limit are the rows read once through the other filters, counting.
        let q = &query;
        let counted = self
            .listing_read(party, |s| async move { s.count_entries(q, max + 1).await })
            .await?;
        if counted > max {
            let mut counting = self.entry_stream(party, &query).await?;
            let mut kept = 0;
            while let Some(batch) = counting.next().await {
                selection
                    .rows(&*self.store, &batch?, &mut kept, (max, rule))
                    .await?;
            }
        }
        export.source = Some((selection, self.entry_stream(party, &query).await?));
        Ok(export)
    }

    /// F4's rows of `party` as a stream, from the replica or the primary as
    /// `listing_read` chooses when the stream opens.
    async fn entry_stream(
        &self,
        party: PartyId,
        query: &EntryQuery,
    ) -> Result<EntryStream, AppError> {
        Ok(self
            .listing_read(party, |s| {
                let query = query.clone();
                async move { s.stream_entries(query).await }
            })
            .await?)
    }

    /// Checks the filters and the principal, and splits the filters into the store's query
    /// and the rest; `None` when a named codice fiscale is no party's (nothing to read).
    async fn movement_selection(
        &self,
        p: &Principal,
        party: PartyId,
        filter: &MovementFilter,
    ) -> Result<Option<(EntryQuery, Selection)>, AppError> {
        self.authorize_view(p, party).await?;
        for (field, date) in [
            ("registered_from", filter.registered_from),
            ("registered_to", filter.registered_to),
            ("answered_from", filter.answered_from),
            ("answered_to", filter.answered_to),
            ("ceded_from", filter.ceded_from),
            ("ceded_to", filter.ceded_to),
        ] {
            if let Some(d) = date {
                check_date(field, d)?;
            }
        }
        if !filter.has_filter_besides_tracciabile() {
            return Err(AppError::Rule {
                rule: "F4",
                code: "filter_required",
                detail: "Indicare almeno un filtro oltre alla tracciabilità, per esempio il periodo di registrazione (F4)".into(),
            });
        }
        let prefix = |s: &Option<String>| {
            s.as_deref()
                .map(|v| v.trim().to_uppercase())
                .filter(|v| !v.is_empty())
        };
        // A movement ceded on or after a day was registered on or after it too (an option
        // is registered on or after its communication's day): a bound the store can use.
        let registered_from = match (filter.registered_from, filter.ceded_from) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let mut query = EntryQuery {
            cessions_only: true,
            registered_from: registered_from.map(rome_start_of_day),
            registered_before: filter
                .registered_to
                .map(|d| cessio_core::time::rome_end_of_day(d) + chrono::Duration::microseconds(1)),
            type_key: filter.type_key.clone(),
            year: filter.year,
            ..EntryQuery::of(party)
        };
        let (cedente_prefix, cessionario_prefix) =
            (prefix(&filter.cedente_cf), prefix(&filter.cessionario_cf));
        // A whole codice fiscale is a prefix of its own only (a valid one has 11 digits or
        // 16 characters starting with letters): the store then reads that party's
        // movements rather than all of this party's.
        for (given, side) in [
            (&cedente_prefix, &mut query.cedente),
            (&cessionario_prefix, &mut query.cessionario),
        ] {
            if let Some(cf) = given.as_deref().and_then(|g| CodiceFiscale::parse(g).ok()) {
                match self.store.party_by_cf(&cf).await? {
                    Some(named) => *side = Some(named.id),
                    // A whole codice fiscale of no party: nothing to read.
                    None => return Ok(None),
                }
            }
        }
        let selection = Selection {
            party,
            filter: filter.clone(),
            cedente_prefix,
            cessionario_prefix,
            code: filter
                .code
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            annulled: self.annulled_acceptances(party).await?,
            suspended: self.suspended_today().await?,
            catalogue: self.catalogue.clone(),
            app: self.clone(),
            principal: p.clone(),
        };
        Ok(Some((query, selection)))
    }
}

const CSV_COLUMNS: [&str; 16] = [
    "ID registrazione",
    "Data registrazione",
    "Data cessione",
    "CF cedente",
    "Cedente",
    "CF cessionario",
    "Tipo credito",
    "Codice tributo",
    "Anno riferimento",
    "Importo",
    "Stato",
    "Data accettazione/rifiuto",
    "Codice identificativo univoco",
    "Protocollo",
    "Tracciabile",
    "Cedibilita'",
];

/// The start of F4's CSV file: BOM and column names.
fn csv_header() -> std::io::Result<Vec<u8>> {
    let mut w = cessio_core::csv::CsvWriter::new(Vec::with_capacity(512))?;
    w.header(&CSV_COLUMNS)?;
    Ok(w.into_inner())
}

/// Rows of F4's CSV file (`;`, two-decimal amounts, no cell that a spreadsheet would read
/// as a formula), to follow [`csv_header`].
fn csv_rows(rows: &[MovementRow]) -> std::io::Result<Vec<u8>> {
    let mut w = cessio_core::csv::CsvWriter::continuing(Vec::with_capacity(rows.len() * 200));
    for r in rows {
        w.text(&r.id.to_string())
            .date(Some(rome_date(r.registered_at)))
            .date(Some(r.ceded_on))
            .text(&r.cedente.cf)
            .text(r.cedente.name.as_deref().unwrap_or(""))
            .text(&r.cessionario.cf)
            .text(&r.type_name)
            .text(&r.codice_tributo)
            .text(&r.year.to_string())
            .amount(r.amount)
            .text(&r.state_text())
            .date(r.answered_at.map(rome_date))
            .text(if r.tracciabile { &r.codice_univoco } else { "" })
            .text(&r.protocol)
            .text(if r.tracciabile { "Sì" } else { "No" })
            .text(&r.cedibilita);
        w.end_row()?;
    }
    Ok(w.into_inner())
}
