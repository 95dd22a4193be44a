//! Lists read page by page over the API: a stable order (registration order, the ids the
//! single writer hands out), a page of at most [`PAGE_MAX`] rows, and an opaque cursor that
//! says where the next page starts. The whole selection is reachable, up to the cap the
//! list's export has (R-50000 for F4): a selection larger than that is refused on its first
//! page, as the export is, rather than served in part.
//!
//! A cursor carries the position (the last row's id), how many rows came before, and a
//! fingerprint of the filters it was made for. A cursor sent with other filters is
//! refused: its position means nothing in another selection. The cursor is not signed:
//! what a client could gain by forging one (starting elsewhere, or resetting the count that
//! caps the pages) it can have by asking with narrower filters, and every page is still
//! authorised as the first.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cessio_core::ledger::TransferId;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::AppError;

/// Rows in a page when the caller names no `limit`: as many as F4's table shows.
pub const PAGE_DEFAULT: usize = cessio_core::rules::MOVEMENTS_SHOWN_LIMIT;
/// The largest `limit` a caller may ask for.
pub const PAGE_MAX: usize = 1_000;

/// Which page a caller asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows in the page (`PAGE_DEFAULT` when `None`), 1 to `PAGE_MAX`.
    pub limit: Option<usize>,
    /// The `next` of the page before; `None` for the first page.
    pub cursor: Option<String>,
}

/// One page of a list, and the cursor of the next when there is one.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    pub fn empty() -> Self {
        Page {
            rows: Vec::new(),
            next: None,
        }
    }
}

/// Where a page starts, as decoded from its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    /// Rows of the selection after this one (`None`: from the first).
    pub after: Option<TransferId>,
    /// Rows the pages before handed over.
    pub seen: usize,
    /// Rows this page holds at most.
    pub limit: usize,
}

const VERSION: &str = "c1";

fn fingerprint(filter: &impl Serialize) -> String {
    let json = serde_json::to_vec(filter).unwrap_or_default();
    let digest = Sha256::digest(&json);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn cursor_refused(code: &'static str, detail: &str) -> AppError {
    AppError::Rule {
        rule: "F4",
        code,
        detail: detail.into(),
    }
}

impl PageRequest {
    /// The page's position, checked against the filters of this request.
    pub(crate) fn position(&self, filter: &impl Serialize) -> Result<Position, AppError> {
        let limit = self.limit.unwrap_or(PAGE_DEFAULT);
        if !(1..=PAGE_MAX).contains(&limit) {
            return Err(AppError::Invalid {
                field: "limit".into(),
                reason: format!("da 1 a {PAGE_MAX} righe per pagina"),
            });
        }
        let Some(cursor) = &self.cursor else {
            return Ok(Position {
                after: None,
                seen: 0,
                limit,
            });
        };
        let invalid = || {
            cursor_refused(
                "cursor_invalid",
                "Il cursore non è valido: ripartire dalla prima pagina (senza cursor)",
            )
        };
        let text = URL_SAFE_NO_PAD
            .decode(cursor.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(invalid)?;
        let parts: Vec<&str> = text.split('.').collect();
        let [VERSION, after, seen, made_for] = parts.as_slice() else {
            return Err(invalid());
        };
        let after: TransferId = after.parse().map_err(|_| invalid())?;
        let seen: usize = seen.parse().map_err(|_| invalid())?;
        if *made_for != fingerprint(filter) {
            return Err(cursor_refused(
                "cursor_filters_changed",
                "Il cursore è stato ottenuto con altri filtri: ripartire dalla prima pagina con i filtri nuovi",
            ));
        }
        Ok(Position {
            after: Some(after),
            seen,
            limit,
        })
    }
}

/// The cursor of the page after `last`, when `seen` rows have been handed over in all.
pub(crate) fn next_cursor(last: TransferId, seen: usize, filter: &impl Serialize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{VERSION}.{last}.{seen}.{}", fingerprint(filter)))
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct F {
        year: Option<u16>,
    }

    fn request(cursor: Option<String>) -> PageRequest {
        PageRequest {
            limit: Some(10),
            cursor,
        }
    }

    #[test]
    fn a_cursor_leads_back_to_its_position() {
        let f = F { year: Some(2022) };
        let c = next_cursor(41, 10, &f);
        assert_eq!(
            request(Some(c)).position(&f).unwrap(),
            Position {
                after: Some(41),
                seen: 10,
                limit: 10
            }
        );
    }

    #[test]
    fn a_cursor_made_for_other_filters_is_refused() {
        let c = next_cursor(41, 10, &F { year: Some(2022) });
        let e = request(Some(c))
            .position(&F { year: Some(2023) })
            .unwrap_err();
        assert_eq!(e.code(), "cursor_filters_changed");
    }

    #[test]
    fn a_forged_or_damaged_cursor_is_refused() {
        let f = F { year: None };
        for bad in ["", "%%%", "YzEuMS4y", "eDEuMS4yLjAw"] {
            let e = request(Some(bad.into())).position(&f).unwrap_err();
            assert_eq!(e.code(), "cursor_invalid", "{bad}");
        }
    }

    #[test]
    fn a_limit_outside_one_to_a_thousand_is_refused() {
        let f = F { year: None };
        for limit in [0, PAGE_MAX + 1] {
            let r = PageRequest {
                limit: Some(limit),
                cursor: None,
            };
            assert!(matches!(r.position(&f), Err(AppError::Invalid { .. })));
        }
        assert_eq!(
            PageRequest::default().position(&f).unwrap().limit,
            PAGE_DEFAULT
        );
    }
}
