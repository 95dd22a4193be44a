//! Lists read page by page over the API: a stable order (each list's sort key, unique per
//! row), a page of at most [`PAGE_MAX`] rows, and an opaque cursor that says where the next
//! page starts. The whole selection is reachable, up to the cap the list has: F4's
//! selection over R-50000 is refused on its first page, as its export is, rather than
//! served in part; a party's delegations are its 500 newest, as on its page (older ones
//! are not listed anywhere).
//!
//! A cursor carries the position (the last row's sort key: an id, or a composite key such
//! as type, year and cedente), how many rows came before, and a fingerprint of the filters
//! it was made for. A cursor sent with other filters is refused: its position means nothing
//! in another selection. The cursor is not signed: what a client could gain by forging one
//! (starting elsewhere, or resetting the count that caps the pages) it can have by asking
//! with narrower filters, and every page is still authorised as the first.
//!
//! Two ways to page. F4 reads its page from the store, after the cursor's id
//! (`EntryQuery::after`), as the list can hold up to R-50000 rows. The other lists are
//! computed whole by the app from what the party holds (F1's rows per type and year, F2's
//! holdings, F3's groups, F5's rows, delegations, the operator's lists): a page of them is
//! a slice of the computed list, put in its key's order, from the first row whose key comes
//! after the cursor's ([`Position::slice`]). Correct and simple: every row once, in order,
//! even when rows come or go between pages (a row that went is not waited for, one that
//! came is met in its place), at the cost of computing the list for each page; no list of
//! these is large enough for that to matter, and none needs a migration.

use std::cmp::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
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

/// A sort key in descending order (newest first), as the cursor holds it: the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Desc<K>(pub K);

impl<K: Ord> PartialOrd for Desc<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord> Ord for Desc<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.cmp(&self.0)
    }
}

/// A list read page by page: the filters of this request. A refused cursor names no rule:
/// paging is the API's, not a rule of the platform.
#[derive(Debug)]
pub(crate) struct Listing<'f, F> {
    pub filter: &'f F,
}

// By hand: a reference to the filters is copied whatever the filters are.
impl<F> Clone for Listing<'_, F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for Listing<'_, F> {}

/// Where a page starts, as decoded from its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position<K> {
    /// Rows of the selection whose key comes after this one (`None`: from the first).
    pub after: Option<K>,
    /// Rows the pages before handed over.
    pub seen: usize,
    /// Rows this page holds at most.
    pub limit: usize,
}

const VERSION: &str = "c1";
/// The fingerprint's length: eight bytes of its digest, in hex.
const FINGERPRINT_HEX: usize = 16;

fn fingerprint(filter: &impl Serialize) -> String {
    let json = serde_json::to_vec(filter).unwrap_or_default();
    let digest = Sha256::digest(&json);
    digest[..FINGERPRINT_HEX / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn cursor_refused(code: &'static str, detail: &str) -> AppError {
    AppError::Cursor {
        code,
        detail: detail.into(),
    }
}

impl PageRequest {
    /// The page's position, checked against the filters of this request.
    pub(crate) fn position<K: DeserializeOwned, F: Serialize>(
        &self,
        listing: Listing<'_, F>,
    ) -> Result<Position<K>, AppError> {
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
        // The key is JSON and may hold dots of its own: the other parts are read from the
        // ends.
        let (version, rest) = text.split_once('.').ok_or_else(invalid)?;
        let mut tail = rest.rsplitn(3, '.');
        let (Some(made_for), Some(seen), Some(after)) = (tail.next(), tail.next(), tail.next())
        else {
            return Err(invalid());
        };
        // A cursor cut short loses its fingerprint's end: damaged, not made for other filters.
        let fingerprint_whole =
            made_for.len() == FINGERPRINT_HEX && made_for.bytes().all(|b| b.is_ascii_hexdigit());
        if version != VERSION || !fingerprint_whole {
            return Err(invalid());
        }
        let after: K = serde_json::from_str(after).map_err(|_| invalid())?;
        let seen: usize = seen.parse().map_err(|_| invalid())?;
        if made_for != fingerprint(listing.filter) {
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

impl<K: Ord + Serialize> Position<K> {
    /// The page of a list computed whole: `rows` in the order of `key` (one key per row),
    /// those after the cursor's key, at most `limit` of them.
    pub(crate) fn slice<T>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> K,
        filter: &impl Serialize,
    ) -> Page<T> {
        rows.sort_by_key(&key);
        let start = self
            .after
            .as_ref()
            .map_or(0, |after| rows.partition_point(|r| key(r) <= *after));
        let mut page: Vec<T> = rows.into_iter().skip(start).take(self.limit + 1).collect();
        let more = page.len() > self.limit;
        page.truncate(self.limit);
        let next = match page.last() {
            Some(last) if more => Some(next_cursor(&key(last), self.seen + page.len(), filter)),
            _ => None,
        };
        Page { rows: page, next }
    }
}

/// The cursor of the page after the row whose key is `last`, when `seen` rows have been
/// handed over in all.
pub(crate) fn next_cursor(last: &impl Serialize, seen: usize, filter: &impl Serialize) -> String {
    let key = serde_json::to_string(last).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(format!("{VERSION}.{key}.{seen}.{}", fingerprint(filter)))
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct F {
        year: Option<u16>,
    }

    fn f4(filter: &F) -> Listing<'_, F> {
        Listing { filter }
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
        let c = next_cursor(&41, 10, &f);
        assert_eq!(
            request(Some(c)).position(f4(&f)).unwrap(),
            Position {
                after: Some(41),
                seen: 10,
                limit: 10
            }
        );
    }

    #[test]
    fn a_cursor_made_for_other_filters_is_refused() {
        let c = next_cursor(&41, 10, &F { year: Some(2022) });
        let e = request(Some(c))
            .position::<i64, _>(f4(&F { year: Some(2023) }))
            .unwrap_err();
        assert_eq!((e.code(), e.rule()), ("cursor_filters_changed", None));
    }

    #[test]
    fn a_forged_or_damaged_cursor_is_refused() {
        let f = F { year: None };
        for bad in ["", "%%%", "YzEuMS4y", "eDEuMS4yLjAw"] {
            let e = request(Some(bad.into()))
                .position::<i64, _>(f4(&f))
                .unwrap_err();
            assert_eq!(e.code(), "cursor_invalid", "{bad}");
        }
        // Cut short, a cursor loses its fingerprint's end: damaged, not other filters.
        let c = next_cursor(&41, 10, &f);
        let e = request(Some(c[..c.len() / 2].into()))
            .position::<i64, _>(f4(&f))
            .unwrap_err();
        assert_eq!(e.code(), "cursor_invalid");
    }

    #[test]
    fn a_limit_outside_one_to_a_thousand_is_refused() {
        let f = F { year: None };
        for limit in [0, PAGE_MAX + 1] {
            let r = PageRequest {
                limit: Some(limit),
                cursor: None,
            };
            assert!(matches!(
                r.position::<i64, _>(f4(&f)),
                Err(AppError::Invalid { .. })
            ));
        }
        assert_eq!(
            PageRequest::default()
                .position::<i64, _>(f4(&f))
                .unwrap()
                .limit,
            PAGE_DEFAULT
        );
    }

    #[test]
    fn a_composite_key_with_dots_leads_back_to_its_position() {
        let f = F { year: None };
        let key = ("6.1.a".to_string(), 2022_u16, "RSSMRA".to_string());
        let c = next_cursor(&key, 3, &f);
        let listing = Listing { filter: &f };
        let at: Position<(String, u16, String)> = request(Some(c)).position(listing).unwrap();
        assert_eq!((at.after, at.seen), (Some(key), 3));
        let e = request(Some(next_cursor(&41, 3, &f)))
            .position::<(String, u16, String), _>(listing)
            .unwrap_err();
        assert_eq!((e.code(), e.rule()), ("cursor_invalid", None));
    }

    #[test]
    fn a_slice_takes_the_rows_after_the_key_in_its_order() {
        let f = F { year: None };
        let rows = vec![5_i64, 1, 9, 3, 7];
        let first: Position<Desc<i64>> = request(None).position(Listing { filter: &f }).unwrap();
        let first = Position { limit: 2, ..first };
        let page = first.slice(rows.clone(), |r| Desc(*r), &f);
        assert_eq!(page.rows, [9, 7]);
        let next: Position<Desc<i64>> =
            request(page.next).position(Listing { filter: &f }).unwrap();
        assert_eq!(next.seen, 2);
        // A row gone since the page before is not waited for: the next starts after its key.
        let rows: Vec<i64> = rows.into_iter().filter(|r| *r != 7).collect();
        let page = Position { limit: 2, ..next }.slice(rows.clone(), |r| Desc(*r), &f);
        assert_eq!(page.rows, [5, 3]);
        let last = request(page.next)
            .position::<Desc<i64>, _>(Listing { filter: &f })
            .unwrap();
        let page = Position { limit: 2, ..last }.slice(rows, |r| Desc(*r), &f);
        assert_eq!((page.rows, page.next), (vec![1], None));
    }
}
