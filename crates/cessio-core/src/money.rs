//! Money as integer euro cents (SPEC §7). Never `f64`: every operation is checked.
//!
//! Three concerns live here, and only here, so that every layer agrees on them:
//!
//! - **Arithmetic.** [`Cents`] wraps an `i64`; every operation that can overflow returns
//!   `Option`, and there is deliberately no `Sum`/`Add` impl, because those would have to
//!   either panic or wrap. [`Cents::checked_sum`] is the way to total a column.
//! - **Display.** Users are Italian: [`Cents`] displays as `1.234,56 €`. Machine-facing
//!   outputs (CSV, JSON-ish text) use [`Cents::to_decimal_string`], which has no thousands
//!   separators so that spreadsheets and parsers do not misread it.
//! - **Parsing user input.** People type amounts in every style they have seen. The parser
//!   accepts the unambiguous ones and refuses, with an actionable Italian message, anything
//!   it would otherwise have to guess (`1.234` may be milleduecentotrentaquattro euro or one
//!   euro and a bit). A wrong guess on a tax credit is worse than a second attempt at typing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An amount in euro cents. Arithmetic is checked: an overflow is an error, never a wrap.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Cents(i64);

/// One named schema for every amount, so the document says once what an amount is.
impl schemars::JsonSchema for Cents {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Cents".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "integer",
            "format": "int64",
            "description": "Importo in centesimi di euro"
        })
    }
}

impl Cents {
    pub const ZERO: Cents = Cents(0);
    pub const MAX: Cents = Cents(i64::MAX);

    /// The largest amount a single operation (a cession, a rata, a payment) may carry:
    /// €10.000.000.000.000,00, i.e. 10^13 euro = 10^15 cents.
    ///
    /// Why this value: it is orders of magnitude above the sum of every Italian tax credit
    /// ever issued (the building bonuses together are in the hundreds of billions of euro),
    /// so no honest input reaches it; and it is far below `i64::MAX` (~9.2 × 10^18 cents),
    /// so that totals stay exact: any 9,223 maximal amounts sum without overflow, and
    /// realistic amounts (millions of operations of up to a billion euro each) stay several
    /// orders of magnitude away from the limit. Anything above it is a typo (extra digits),
    /// and refusing it at the edge keeps the overflow checks deep in the ledger theoretical.
    pub const MAX_AMOUNT: Cents = Cents(1_000_000_000_000_000);

    pub const fn new(cents: i64) -> Self {
        Cents(cents)
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    pub fn checked_sub(self, other: Cents) -> Option<Cents> {
        self.0.checked_sub(other.0).map(Cents)
    }

    pub fn checked_mul(self, factor: i64) -> Option<Cents> {
        self.0.checked_mul(factor).map(Cents)
    }

    /// Sums the amounts, or `None` if any partial sum overflows.
    ///
    /// This replaces `std::iter::Sum`, which could only panic or wrap on overflow.
    /// Partial sums are checked (not just the total) because an intermediate overflow is
    /// what a wrapping implementation would silently hide.
    pub fn checked_sum<I: IntoIterator<Item = Cents>>(iter: I) -> Option<Cents> {
        iter.into_iter().try_fold(Cents::ZERO, Cents::checked_add)
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Splits `self` into `parts` equal amounts with the remainder cents on the first
    /// (R-SPLIT-CENTS, and rata derivation in F8). The parts always sum to `self`.
    ///
    /// Panics if `parts` is zero or `self` is negative: both are programming errors.
    pub fn split_even(self, parts: u32) -> Vec<Cents> {
        assert!(parts > 0, "split_even into zero parts");
        assert!(self.0 >= 0, "split_even of a negative amount");
        let n = i64::from(parts);
        let base = self.0 / n;
        let remainder = self.0 % n;
        let mut out = vec![Cents(base); parts as usize];
        out[0] = Cents(base + remainder);
        out
    }

    /// The amount as `1234,56` (or `1234.56`) with the given decimal separator, a leading
    /// `-` when negative, always two decimals and no thousands separators.
    ///
    /// For CSV files and JSON-ish displays, where thousands separators would be misread.
    /// The output parses back to the same amount with [`Cents::parse_amount`] for either
    /// `,` or `.` as separator (two decimals are never ambiguous).
    pub fn to_decimal_string(self, decimal_separator: char) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        // `unsigned_abs` because `-i64::MIN` does not exist.
        let magnitude = self.0.unsigned_abs();
        format!(
            "{sign}{}{decimal_separator}{:02}",
            magnitude / 100,
            magnitude % 100
        )
    }

    /// Parses an amount typed by a person. Accepted, with optional surrounding spaces, an
    /// optional `€` before or after and an optional leading `-`:
    ///
    /// - `1234`, `1234,5`, `1234,56`, `1234.56`;
    /// - `1.234,56`, `1,234.56`: when both `.` and `,` appear, the last one is the decimal
    ///   separator and the other must group thousands properly (1–3 digits, then groups
    ///   of exactly 3);
    /// - `1.234.567` (or `1,234,567`): several separators of one kind are thousands groups.
    ///
    /// A single `,` is always decimal. A single `.` is decimal too, except when it could
    /// equally be a thousands separator (`1.234`, `12.345`, `123.456`): that is refused as
    /// [`MoneyError::Ambiguous`] rather than guessed. More than two decimals is
    /// [`MoneyError::TooManyDecimals`], never rounded.
    ///
    /// Negative amounts are parsed; whether they are acceptable is the caller's business
    /// (see [`Cents::parse_positive_amount`]).
    pub fn parse_amount(input: &str) -> Result<Cents, MoneyError> {
        // Work on chars, not bytes, so that positions in errors match what the user sees
        // (`€` is three bytes in UTF-8).
        let chars: Vec<char> = input.chars().collect();
        let mut start = 0;
        let mut end = chars.len();
        let mut minus_at: Option<usize> = None;
        let mut euro_seen = false;

        // Prefix: spaces, at most one `-` and at most one `€`, in either order (`-€ 5`,
        // `€ -5`), because both orders are common in copied text.
        while start < end {
            let c = chars[start];
            if c == '-' && minus_at.is_none() {
                minus_at = Some(start);
            } else if c == '€' && !euro_seen {
                euro_seen = true;
            } else if !c.is_whitespace() {
                break;
            }
            start += 1;
        }
        // Suffix: spaces and the `€`, unless it was already written in front.
        while end > start {
            let c = chars[end - 1];
            if c == '€' && !euro_seen {
                euro_seen = true;
            } else if !c.is_whitespace() {
                break;
            }
            end -= 1;
        }
        if start == end {
            return match minus_at {
                Some(at) => Err(malformed(at, '-')),
                None => Err(MoneyError::Empty),
            };
        }

        // Split the number into digit groups and the separators between them.
        let mut groups: Vec<&[char]> = Vec::new();
        let mut separators: Vec<(usize, char)> = Vec::new();
        let mut group_start = start;
        for (at, &c) in chars.iter().enumerate().take(end).skip(start) {
            match c {
                '0'..='9' => {}
                '.' | ',' => {
                    // A separator must sit between digits: not first, not doubled.
                    if at == group_start {
                        return Err(malformed(at, c));
                    }
                    groups.push(&chars[group_start..at]);
                    separators.push((at, c));
                    group_start = at + 1;
                }
                _ => return Err(malformed(at, c)),
            }
        }
        if group_start == end {
            // Trailing separator (`1234,`): the loop above guarantees one exists.
            let (at, c) = separators[separators.len() - 1];
            return Err(malformed(at, c));
        }
        groups.push(&chars[group_start..end]);

        let has_dot = separators.iter().any(|&(_, c)| c == '.');
        let has_comma = separators.iter().any(|&(_, c)| c == ',');
        let last = groups.len() - 1;
        let (integer_groups, fraction): (&[&[char]], Option<&[char]>) = match (has_dot, has_comma) {
            (false, false) => (&groups[..], None),
            (true, true) => {
                let (_, decimal) = separators[separators.len() - 1];
                let grouping = &separators[..separators.len() - 1];
                if let Some(&(at, c)) = grouping.iter().find(|&&(_, c)| c == decimal) {
                    return Err(malformed(at, c));
                }
                check_thousands(&groups[..last], grouping)?;
                (&groups[..last], Some(groups[last]))
            }
            _ if separators.len() == 1 => {
                let (_, c) = separators[0];
                if c == '.' && groups[1].len() == 3 && is_leading_group(groups[0]) {
                    return Err(MoneyError::Ambiguous {
                        written: chars[start..end].iter().collect(),
                    });
                }
                (&groups[..1], Some(groups[1]))
            }
            _ => {
                check_thousands(&groups, &separators)?;
                (&groups[..], None)
            }
        };

        let fraction = fraction.unwrap_or(&[]);
        if fraction.len() > 2 {
            return Err(MoneyError::TooManyDecimals {
                decimals: fraction.len(),
            });
        }

        // i128 so that i64::MIN's magnitude fits before the sign is applied; a digit
        // string too long even for i128 is an overflow all the same.
        let mut magnitude: i128 = 0;
        let integer_digits = integer_groups.iter().flat_map(|g| g.iter());
        let fraction_digits = fraction
            .iter()
            .chain(std::iter::repeat_n(&'0', 2 - fraction.len()));
        for &d in integer_digits.chain(fraction_digits) {
            let digit = i128::from(d as u8 - b'0');
            magnitude = magnitude
                .checked_mul(10)
                .and_then(|m| m.checked_add(digit))
                .ok_or(MoneyError::Overflow)?;
        }
        let signed = if minus_at.is_some() {
            -magnitude
        } else {
            magnitude
        };
        i64::try_from(signed)
            .map(Cents)
            .map_err(|_| MoneyError::Overflow)
    }

    /// Parses an amount that a single operation is going to carry: like
    /// [`Cents::parse_amount`], then [`Cents::ensure_positive_amount`].
    pub fn parse_positive_amount(input: &str) -> Result<Cents, MoneyError> {
        Cents::parse_amount(input)?.ensure_positive_amount()
    }

    /// Checks that `self` can be carried by a single operation: strictly positive
    /// ([`MoneyError::NotPositive`]) and at most [`Cents::MAX_AMOUNT`]
    /// ([`MoneyError::TooLarge`]).
    ///
    /// Separate from parsing so that amounts arriving as integers (API, import files) go
    /// through the same gate as typed ones.
    pub fn ensure_positive_amount(self) -> Result<Cents, MoneyError> {
        if !self.is_positive() {
            Err(MoneyError::NotPositive { amount: self })
        } else if self > Cents::MAX_AMOUNT {
            Err(MoneyError::TooLarge { amount: self })
        } else {
            Ok(self)
        }
    }
}

/// `1.234,56 €`, `-1.234,56 €`, `0,00 €`: the Italian convention, always two decimals.
///
/// The space before `€` is a plain space so that the text survives copy-paste into any
/// field; width/alignment flags of the formatter are honoured.
/// `12.345`: a whole number with the Italian thousands separator (groups of three counted
/// from the right), as amounts and counts are written for people.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() * 4 / 3);
    let mut until_dot = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    for digit in digits.chars() {
        if until_dot == 0 {
            out.push('.');
            until_dot = 3;
        }
        out.push(digit);
        until_dot -= 1;
    }
    out
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let magnitude = self.0.unsigned_abs();
        let mut out = String::with_capacity(32);
        if self.0 < 0 {
            out.push('-');
        }
        out.push_str(&thousands(magnitude / 100));
        out.push(',');
        let cents = magnitude % 100;
        out.push(char::from(b'0' + (cents / 10) as u8));
        out.push(char::from(b'0' + (cents % 10) as u8));
        out.push_str(" €");
        f.pad(&out)
    }
}

impl FromStr for Cents {
    type Err = MoneyError;

    /// Same as [`Cents::parse_amount`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cents::parse_amount(s)
    }
}

/// Why an amount was refused. `Display` is an Italian message for the person who typed
/// it; [`MoneyError::code`] is the stable machine code for APIs, logs and tests.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("Importo mancante: indicare un importo in euro, ad esempio 1.234,56.")]
    Empty,

    /// `position` counts characters from 1, as a person would, in the original input.
    #[error(
        "Importo non valido: il carattere «{found}» in posizione {position} non è ammesso lì. \
         Scrivere l'importo con le sole cifre, la virgola per i decimali e, se si vuole, il \
         punto per le migliaia: ad esempio 1.234,56 oppure 1234,56."
    )]
    Malformed { position: usize, found: char },

    /// `written` is the number as typed, without spaces, sign and `€`.
    #[error("{}", ambiguous_message(written))]
    Ambiguous { written: String },

    #[error(
        "Importo con {decimals} cifre decimali: sono ammessi al massimo 2 decimali (i \
         centesimi). Correggere l'importo, che non viene arrotondato automaticamente: ad \
         esempio 1.234,56."
    )]
    TooManyDecimals { decimals: usize },

    #[error(
        "Importo fuori scala: supera il massimo rappresentabile ({max}). Verificare di non \
         aver inserito cifre in più.",
        max = Cents::MAX
    )]
    Overflow,

    /// One variant for zero and negative (one machine code, `amount_not_positive`), with
    /// a message that tells the two apart.
    #[error("{}", not_positive_message(*amount))]
    NotPositive { amount: Cents },

    #[error(
        "L'importo {amount} supera il massimo ammesso per una singola operazione \
         ({max}). Verificare di non aver inserito cifre in più.",
        max = Cents::MAX_AMOUNT
    )]
    TooLarge { amount: Cents },
}

impl MoneyError {
    /// A stable machine code: part of the public interface, never reworded.
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::Empty => "amount_empty",
            MoneyError::Malformed { .. } => "amount_malformed",
            MoneyError::Ambiguous { .. } => "amount_ambiguous",
            MoneyError::TooManyDecimals { .. } => "amount_too_many_decimals",
            MoneyError::Overflow => "amount_overflow",
            MoneyError::NotPositive { .. } => "amount_not_positive",
            MoneyError::TooLarge { .. } => "amount_too_large",
        }
    }
}

fn malformed(index: usize, found: char) -> MoneyError {
    MoneyError::Malformed {
        position: index + 1,
        found,
    }
}

/// Could `group` start a thousands grouping? 1–3 digits, no leading zero: `0.234` can
/// only be a decimal, so it is not ambiguous.
fn is_leading_group(group: &[char]) -> bool {
    (1..=3).contains(&group.len()) && group.first() != Some(&'0')
}

/// `groups` must be a leading group followed by groups of exactly 3 digits; the error
/// points at the separator next to the offending group.
fn check_thousands(groups: &[&[char]], separators: &[(usize, char)]) -> Result<(), MoneyError> {
    let Some((&first, rest)) = groups.split_first() else {
        return Ok(());
    };
    if let (false, Some(&(at, c))) = (is_leading_group(first), separators.first()) {
        return Err(malformed(at, c));
    }
    for (group, &(at, c)) in rest.iter().zip(separators) {
        if group.len() != 3 {
            return Err(malformed(at, c));
        }
    }
    Ok(())
}

fn ambiguous_message(written: &str) -> String {
    let plain: String = written.chars().filter(|&c| c != '.').collect();
    format!(
        "Importo ambiguo: in «{written}» il punto può separare le migliaia o i decimali. \
         Per indicare {plain} euro scrivere {plain},00 oppure {written},00; per i decimali \
         usare la virgola."
    )
}

fn not_positive_message(amount: Cents) -> String {
    if amount == Cents::ZERO {
        "L'importo è zero: indicare un importo maggiore di zero.".to_owned()
    } else {
        format!("L'importo {amount} è negativo: indicare un importo maggiore di zero.")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn r_split_cents_remainder_on_first_rata() {
        let rate = Cents(100_003).split_even(10);
        assert_eq!(rate[0], Cents(10_003));
        assert!(rate[1..].iter().all(|r| *r == Cents(10_000)));
        assert_eq!(rate.iter().map(|c| c.get()).sum::<i64>(), 100_003);
    }

    #[test]
    fn display_uses_italian_format() {
        let table: &[(i64, &str)] = &[
            (0, "0,00 €"),
            (1, "0,01 €"),
            (99, "0,99 €"),
            (100, "1,00 €"),
            (123_456, "1.234,56 €"),
            (100_000_000, "1.000.000,00 €"),
            (-1, "-0,01 €"),
            (-123_456, "-1.234,56 €"),
            (i64::MAX, "92.233.720.368.547.758,07 €"),
            (i64::MIN, "-92.233.720.368.547.758,08 €"),
        ];
        for &(cents, expected) in table {
            assert_eq!(Cents(cents).to_string(), expected, "cents = {cents}");
        }
    }

    #[test]
    fn display_honours_width() {
        assert_eq!(format!("{:>10}", Cents(100)), "    1,00 €");
    }

    #[test]
    fn to_decimal_string_has_no_thousands_separators() {
        let table: &[(i64, char, &str)] = &[
            (0, ',', "0,00"),
            (5, '.', "0.05"),
            (123_456, ',', "1234,56"),
            (123_456, '.', "1234.56"),
            (-123_456, ',', "-1234,56"),
            (i64::MIN, '.', "-92233720368547758.08"),
        ];
        for &(cents, sep, expected) in table {
            assert_eq!(Cents(cents).to_decimal_string(sep), expected);
        }
    }

    #[test]
    fn parse_accepts_common_styles() {
        let table: &[(&str, i64)] = &[
            ("1.234,56", 123_456),
            ("1234,56", 123_456),
            ("1234.56", 123_456),
            ("1234", 123_400),
            ("1.234.567,8", 123_456_780),
            ("1.234.567", 123_456_700),
            ("1,234,567", 123_456_700),
            ("1,234.56", 123_456),
            ("0,5", 50),
            ("0.05", 5),
            ("12.5", 1_250),
            ("007", 700),
            ("  1.234,56  ", 123_456),
            ("1.234,56 €", 123_456),
            ("1.234,56€", 123_456),
            ("€ 1.234,56", 123_456),
            ("€1234", 123_400),
            ("-1.234,56", -123_456),
            ("-1.234,56 €", -123_456),
            ("-€ 5", -500),
            ("€ -5", -500),
            ("-0", 0),
            ("\u{a0}5\u{a0}€", 500),
            ("-92.233.720.368.547.758,08", i64::MIN),
            ("92233720368547758,07", i64::MAX),
        ];
        for &(input, cents) in table {
            assert_eq!(
                Cents::parse_amount(input),
                Ok(Cents(cents)),
                "input = {input:?}"
            );
            assert_eq!(
                input.parse::<Cents>(),
                Ok(Cents(cents)),
                "input = {input:?}"
            );
        }
    }

    #[test]
    fn parse_rejects_with_specific_errors() {
        use MoneyError::*;
        let m = |position, found| Malformed { position, found };
        let amb = |w: &str| Ambiguous {
            written: w.to_owned(),
        };
        let table: Vec<(&str, MoneyError)> = vec![
            ("", Empty),
            ("   ", Empty),
            ("€", Empty),
            (" € ", Empty),
            ("-", m(1, '-')),
            ("€ -", m(3, '-')),
            ("1.234", amb("1.234")),
            ("12.345", amb("12.345")),
            ("-123.456 €", amb("123.456")),
            ("1,234", TooManyDecimals { decimals: 3 }),
            ("1234.567", TooManyDecimals { decimals: 3 }),
            ("0.500", TooManyDecimals { decimals: 3 }),
            ("1.234,567", TooManyDecimals { decimals: 3 }),
            ("1,2345", TooManyDecimals { decimals: 4 }),
            ("92233720368547758,08", Overflow),
            ("-92233720368547758,09", Overflow),
            ("99999999999999999999999999999999999999999999", Overflow),
            ("abc", m(1, 'a')),
            ("12a", m(3, 'a')),
            ("1 234", m(2, ' ')),
            ("+5", m(1, '+')),
            ("--5", m(2, '-')),
            ("5-", m(2, '-')),
            ("€5€", m(3, '€')),
            (",50", m(1, ',')),
            ("1234,", m(5, ',')),
            ("1..234", m(3, '.')),
            ("1,,5", m(3, ',')),
            ("1.23.456", m(2, '.')),
            ("1234.567.890", m(5, '.')),
            ("0.234.567", m(2, '.')),
            ("12.34,56", m(3, '.')),
            ("1,234,56", m(6, ',')),
            ("1.234,567.89", m(2, '.')),
            ("1'234", m(2, '\'')),
            ("1.2e3", m(4, 'e')),
        ];
        for (input, expected) in table {
            assert_eq!(
                Cents::parse_amount(input),
                Err(expected),
                "input = {input:?}"
            );
        }
    }

    #[test]
    fn malformed_position_counts_characters_not_bytes() {
        // `€` is 3 bytes: a byte offset would say 7.
        assert_eq!(
            Cents::parse_amount("€ 12x"),
            Err(MoneyError::Malformed {
                position: 5,
                found: 'x'
            })
        );
    }

    #[test]
    fn parse_positive_amount_bounds() {
        assert_eq!(Cents::parse_positive_amount("0,01"), Ok(Cents(1)));
        assert_eq!(
            Cents::parse_positive_amount("10.000.000.000.000,00 €"),
            Ok(Cents::MAX_AMOUNT)
        );
        assert_eq!(
            Cents::parse_positive_amount("0"),
            Err(MoneyError::NotPositive { amount: Cents(0) })
        );
        assert_eq!(
            Cents::parse_positive_amount("-5"),
            Err(MoneyError::NotPositive {
                amount: Cents(-500)
            })
        );
        assert_eq!(
            Cents::parse_positive_amount("10.000.000.000.000,01"),
            Err(MoneyError::TooLarge {
                amount: Cents(1_000_000_000_000_001)
            })
        );
        assert_eq!(
            Cents::parse_positive_amount("1.234"),
            Err(MoneyError::Ambiguous {
                written: "1.234".to_owned()
            })
        );
        assert_eq!(Cents::MAX_AMOUNT.get(), 10_i64.pow(15));
    }

    #[test]
    fn zero_and_negative_have_distinct_messages() {
        let zero = MoneyError::NotPositive { amount: Cents(0) }.to_string();
        let negative = MoneyError::NotPositive {
            amount: Cents(-500),
        }
        .to_string();
        assert!(zero.contains("zero"), "{zero}");
        assert!(
            negative.contains("negativo") && negative.contains("-5,00 €"),
            "{negative}"
        );
    }

    #[test]
    fn error_codes_are_stable() {
        let table: Vec<(MoneyError, &str)> = vec![
            (MoneyError::Empty, "amount_empty"),
            (
                MoneyError::Malformed {
                    position: 1,
                    found: 'x',
                },
                "amount_malformed",
            ),
            (
                MoneyError::Ambiguous {
                    written: "1.234".to_owned(),
                },
                "amount_ambiguous",
            ),
            (
                MoneyError::TooManyDecimals { decimals: 3 },
                "amount_too_many_decimals",
            ),
            (MoneyError::Overflow, "amount_overflow"),
            (
                MoneyError::NotPositive { amount: Cents(0) },
                "amount_not_positive",
            ),
            (
                MoneyError::TooLarge { amount: Cents::MAX },
                "amount_too_large",
            ),
        ];
        for (error, code) in table {
            assert_eq!(error.code(), code);
            assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn ambiguous_message_suggests_both_unambiguous_spellings() {
        let message = MoneyError::Ambiguous {
            written: "1.234".to_owned(),
        }
        .to_string();
        assert!(message.contains("1234,00"), "{message}");
        assert!(message.contains("1.234,00"), "{message}");
    }

    #[test]
    fn checked_sum_detects_overflow() {
        assert_eq!(Cents::checked_sum(Vec::new()), Some(Cents::ZERO));
        assert_eq!(
            Cents::checked_sum([Cents(1), Cents(2), Cents(-4)]),
            Some(Cents(-1))
        );
        assert_eq!(Cents::checked_sum([Cents::MAX, Cents(1)]), None);
        // An intermediate overflow counts even if the final total would fit.
        assert_eq!(Cents::checked_sum([Cents::MAX, Cents(1), Cents(-1)]), None);
        // The documented headroom: 9,223 maximal amounts fit.
        assert!(Cents::checked_sum(std::iter::repeat_n(Cents::MAX_AMOUNT, 9_223)).is_some());
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            // Keep failures in the test output instead of writing regression files into
            // the source tree.
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn decimal_string_round_trips(cents in any::<i64>()) {
            let x = Cents(cents);
            prop_assert_eq!(Cents::parse_amount(&x.to_decimal_string(',')), Ok(x));
            prop_assert_eq!(Cents::parse_amount(&x.to_decimal_string('.')), Ok(x));
        }

        #[test]
        fn display_round_trips(cents in any::<i64>()) {
            let x = Cents(cents);
            prop_assert_eq!(Cents::parse_amount(&x.to_string()), Ok(x));
        }

        #[test]
        fn small_amounts_round_trip_through_display(cents in -10_000_000_i64..10_000_000) {
            let x = Cents(cents);
            prop_assert_eq!(x.to_string().parse::<Cents>(), Ok(x));
        }

        #[test]
        fn split_even_properties(cents in 0..=i64::MAX, parts in 1_u32..=500) {
            let split = Cents(cents).split_even(parts);
            prop_assert_eq!(split.len(), parts as usize);
            prop_assert_eq!(Cents::checked_sum(split.iter().copied()), Some(Cents(cents)));
            let first = split[0];
            let other = split.get(1).copied().unwrap_or(first);
            prop_assert!(split[1..].iter().all(|&c| c == other));
            prop_assert!(first >= other);
            prop_assert!(first.get() - other.get() < i64::from(parts));
        }
    }
}
