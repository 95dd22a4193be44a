//! What the core's unit tests share: a date and the built-in law table.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use chrono::NaiveDate;

use crate::law::LawTable;

pub fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

pub fn law() -> LawTable {
    LawTable::builtin().unwrap()
}
