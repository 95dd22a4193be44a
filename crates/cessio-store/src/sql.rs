//! The statements both backends run as they are, written once.
//!
//! Parameters are spelled `$1`, `$2`, …, first used in that order: PostgreSQL numbers them
//! so, and SQLite takes `$1` as a named parameter whose position is that of its first use,
//! so the same positional arguments bind the same way in both (checked by a test below).
//! What the dialects spell differently (`= ANY($1)` against `IN (…)`, `FOR UPDATE`, bulk
//! inserts with `unnest`) stays with each backend.

use crate::rows::{
    credit_columns, delegation_columns, party_columns, rata_columns, transfer_columns, user_columns,
};

pub const PARTY_BY_ID: &str = concat!("SELECT ", party_columns!(), " FROM parties WHERE id = $1");
pub const CREDIT_BY_ID: &str = concat!("SELECT ", credit_columns!(), " FROM credits WHERE id = $1");
pub const RATE_OF_CREDIT: &str = concat!(
    "SELECT ",
    rata_columns!(),
    " FROM rate WHERE credit = $1 ORDER BY idx"
);
pub const SPLITS_OF_RATA: &str = "SELECT id FROM credits WHERE split_of = $1 ORDER BY id";
pub const RATE_AMOUNTS: &str = "SELECT id, amount FROM rate";

pub const TRANSFER_BY_ID: &str = concat!(
    "SELECT ",
    transfer_columns!(),
    " FROM transfers WHERE id = $1"
);
pub const TRANSFERS_OF_RATA: &str = concat!(
    "SELECT ",
    transfer_columns!(),
    " FROM transfers WHERE rata = $1 ORDER BY id"
);
/// The amounts a party moved as cedente (communications and cessions, answered or waiting):
/// F9's amount rule compares a new communication with them. By `transfers_party`.
pub const SENT_AMOUNTS: &str = "SELECT id, amount FROM transfers
     WHERE party = $1 AND id > $2 AND kind IN ('issue', 'cession') AND phase IN ('posted', 'pending')";
/// A page of the whole history after a transfer id: `verify` reads it in bounded memory.
pub const TRANSFERS_AFTER: &str = concat!(
    "SELECT ",
    transfer_columns!(),
    " FROM transfers WHERE id > $1 ORDER BY id LIMIT $2"
);
/// An operation's transfers, a range of the primary key its receipt names.
pub const TRANSFERS_OF_OPERATION: &str = concat!(
    "SELECT ",
    transfer_columns!(),
    " FROM transfers WHERE id >= $1 AND id <= $2 AND operation = $3 ORDER BY id"
);
pub const LAST_TRANSFER: &str = "SELECT id, hash FROM transfers ORDER BY id DESC LIMIT 1";
pub const OPERATION_RECEIPT: &str = "SELECT receipt FROM operations WHERE id = $1";
/// An operation with its log entry's place in the chain: the log is reached by the
/// idempotency key, which it keeps unique (and indexed).
pub const OPERATION_ENTRY: &str =
    "SELECT o.id, o.kind, o.acting_user, o.on_behalf_of, o.at, o.receipt, l.seq, l.hash
     FROM operations o JOIN log l ON l.idempotency_key = o.idempotency_key WHERE o.id = $1";
pub const CREDIT_OF_RATA: &str = "SELECT credit FROM rate WHERE id = $1";
pub const LOGGED_OPERATION: &str =
    "SELECT request_hash, receipt FROM log WHERE idempotency_key = $1";

pub const USER_BY_ID: &str = concat!("SELECT ", user_columns!(), " FROM users u WHERE u.id = $1");
pub const USER_BY_NAME: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users u WHERE u.username = $1"
);
pub const USERS_OF_PARTY: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users u WHERE u.party = $1 ORDER BY u.id"
);
pub const USER_OF_TOKEN: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users u JOIN api_tokens t ON t.user_id = u.id WHERE t.token_hash = $1 AND t.revoked_at IS NULL"
);
pub const HAS_ROLE: &str = "SELECT EXISTS (SELECT 1 FROM users WHERE role = $1)";
pub const PIN_FAILURES: &str = "SELECT pin_failures FROM users WHERE id = $1";
pub const PIN_FAILED: &str =
    "UPDATE users SET pin_failures = pin_failures + 1 WHERE id = $1 RETURNING pin_failures";
/// R-PIN: counts an attempt only while the user is under the limit `$2`.
pub const PIN_ATTEMPT: &str = "UPDATE users SET pin_failures = pin_failures + 1 WHERE id = $1 AND pin_failures < $2 RETURNING pin_failures";

pub const LIVE_DELEGATIONS_OF_USER: &str = concat!(
    "SELECT ",
    delegation_columns!(),
    " FROM delegations WHERE user_id = $1 AND revoked_at IS NULL ORDER BY party, id"
);
pub const DELEGATIONS_OF_PARTY: &str = concat!(
    "SELECT ",
    delegation_columns!(),
    " FROM delegations WHERE party = $1 ORDER BY id DESC LIMIT $2"
);

/// Each rata's last F24 choice by the party (R-F24-CHOICE): a revocation ends a choice.
pub const LAST_F24_CHOICES: &str = "SELECT f.rata, f.declared, f.on_date FROM f24_choices f
  WHERE f.party = $1
    AND f.id = (SELECT MAX(g.id) FROM f24_choices g WHERE g.party = f.party AND g.rata = f.rata)
  ORDER BY f.rata";
pub const LAST_DEBT_POSITION: &str =
    "SELECT position FROM debt_positions WHERE party = $1 ORDER BY id DESC LIMIT 1";

#[cfg(test)]
mod tests {
    /// Every statement here, for the placeholder check.
    const ALL: &[&str] = &[
        super::PARTY_BY_ID,
        super::CREDIT_BY_ID,
        super::RATE_OF_CREDIT,
        super::SPLITS_OF_RATA,
        super::RATE_AMOUNTS,
        super::TRANSFER_BY_ID,
        super::TRANSFERS_OF_RATA,
        super::SENT_AMOUNTS,
        super::TRANSFERS_AFTER,
        super::TRANSFERS_OF_OPERATION,
        super::LAST_TRANSFER,
        super::OPERATION_RECEIPT,
        super::LOGGED_OPERATION,
        super::OPERATION_ENTRY,
        super::CREDIT_OF_RATA,
        super::USER_BY_ID,
        super::USER_BY_NAME,
        super::USERS_OF_PARTY,
        super::USER_OF_TOKEN,
        super::HAS_ROLE,
        super::PIN_FAILURES,
        super::PIN_FAILED,
        super::PIN_ATTEMPT,
        super::LIVE_DELEGATIONS_OF_USER,
        super::DELEGATIONS_OF_PARTY,
        super::LAST_F24_CHOICES,
        super::LAST_DEBT_POSITION,
    ];

    /// SQLite binds `$n` by the position of its first use: `$1`, `$2`, … must first
    /// appear in that order, or the two backends would bind the arguments differently.
    #[test]
    fn placeholders_first_appear_in_order() {
        for sql in ALL {
            let mut next = 1;
            let mut rest = *sql;
            while let Some(i) = rest.find('$') {
                let digits: String = rest[i + 1..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let n: usize = digits.parse().unwrap_or(0);
                assert!(n <= next, "{sql}: ${n} is used before ${next}");
                if n == next {
                    next += 1;
                }
                rest = &rest[i + 1 + digits.len()..];
            }
        }
    }
}
