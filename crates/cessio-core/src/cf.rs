//! Italian tax codes (codice fiscale and partita IVA): rule R-CF of SPEC.md.
//!
//! A 16-character personal code is accepted when its structure, month letter, day of
//! birth (a real date in either candidate century, +40 for women), omocodia
//! substitutions and check character are right; an 11-digit code when its progressive
//! number, office code and Luhn check digit are right. Input is normalised first
//! (separators, lower case, `IT` prefix), so every stored code has one spelling.
//!
//! The only way to obtain a [`CodiceFiscale`] or a [`PartitaIva`] is through `parse`
//! (also behind `FromStr` and `Deserialize`), so holding one is proof that R-CF passed.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const PERSON_LEN: usize = 16;
const ENTITY_LEN: usize = 11;

/// 0-based indexes of the seven digits that omocodia may replace with letters.
const OMOCODE_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];
/// Replacement letter for digits 0..=9. The gaps (no O, no W…) are the Agenzia's choice.
const OMOCODE_LETTERS: &[u8; 10] = b"LMNPQRSTUV";
/// January..December.
const MONTH_LETTERS: &[u8; 12] = b"ABCDEHLMPRST";
/// Check-character weights for odd (1-based) positions; digits reuse the values of A–J.
const ODD_VALUES: [u8; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];
/// Office codes above 100 that the Agenzia has assigned to special offices.
const SPECIAL_OFFICES: [u16; 4] = [120, 121, 888, 999];

const EXPECTED_NAME_LETTER: &str = "una lettera (cognome e nome)";
const EXPECTED_DIGIT_OR_OMOCODE: &str =
    "una cifra o una lettera di omocodia (L, M, N, P, Q, R, S, T, U, V)";
const EXPECTED_PLACE_LETTER: &str = "una lettera (codice del comune o dello Stato di nascita)";
const EXPECTED_CHECK_LETTER: &str = "una lettera (carattere di controllo)";
const EXPECTED_DIGIT: &str = "una cifra";

/// Which of the two code families a [`CodiceFiscale`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CfKind {
    /// 16-character code of a natural person.
    Person,
    /// 11-digit code of a company or other entity (same number as its partita IVA).
    Entity,
}

/// Birth data encoded in a personal code.
///
/// Only the two-digit year is stored: the code itself cannot tell 1900s from 2000s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PersonBirth {
    /// Day of the month, 1..=31 (the +40 offset for women already removed).
    pub day: u8,
    /// Month, 1..=12.
    pub month: u8,
    /// Last two digits of the year of birth.
    pub year2: u8,
    /// Encoded by adding 40 to the day.
    pub female: bool,
}

/// Why an input is not a valid codice fiscale / partita IVA.
///
/// Positions are 1-based and refer to the normalised code (separators removed), which
/// is how a person counts characters on the card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CfError {
    #[error("Codice fiscale o partita IVA mancante: il campo è vuoto")]
    Empty,
    #[error(
        "Codice fiscale non valido: deve avere 16 caratteri (persona fisica) o 11 cifre (società/ente), ne ha {len}"
    )]
    Length { len: usize },
    #[error("Partita IVA non valida: deve avere 11 cifre, ne ha {len}")]
    PartitaIvaLength { len: usize },
    #[error(
        "Codice fiscale non valido: il carattere '{}' in posizione {position} non è ammesso (solo lettere e cifre)",
        found.escape_debug()
    )]
    InvalidCharacter { position: usize, found: char },
    #[error(
        "Codice fiscale non valido: in posizione {position} ci dovrebbe essere {expected}, invece c'è '{found}'"
    )]
    Structure {
        position: usize,
        found: char,
        expected: &'static str,
    },
    #[error(
        "Codice fiscale non valido: il 9° carattere indica il mese di nascita e deve essere una delle lettere A, B, C, D, E, H, L, M, P, R, S, T, invece è '{found}'"
    )]
    Month { found: char },
    #[error(
        "Codice fiscale non valido: il giorno di nascita (10° e 11° carattere) deve essere tra 01 e 31 per gli uomini o tra 41 e 71 per le donne, invece è {found:02}"
    )]
    Day { found: u8 },
    #[error(
        "Codice fiscale non valido: la data di nascita {day:02}/{month:02}/{year2:02} non esiste (né nel 19{year2:02} né nel 20{year2:02})"
    )]
    Date { day: u8, month: u8, year2: u8 },
    #[error(
        "Codice fiscale non valido: il carattere di controllo dovrebbe essere '{expected}' ma è '{found}'"
    )]
    CheckCharacter { expected: char, found: char },
    #[error(
        "Partita IVA / codice fiscale numerico non valido: le prime 7 cifre (numero progressivo) non possono essere tutte zero"
    )]
    Progressive,
    #[error(
        "Partita IVA / codice fiscale numerico non valido: le cifre dalla 8ª alla 10ª (codice dell'ufficio) devono essere tra 001 e 100 oppure 120, 121, 888, 999, invece sono {found:03}"
    )]
    OfficeCode { found: u16 },
    #[error(
        "Partita IVA / codice fiscale numerico non valido: la cifra di controllo (11ª) dovrebbe essere {expected} ma è {found}"
    )]
    CheckDigit { expected: u8, found: u8 },
}

impl CfError {
    /// Stable machine-readable code; part of the API contract, never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            CfError::Empty => "cf_empty",
            CfError::Length { .. } => "cf_length",
            CfError::PartitaIvaLength { .. } => "cf_piva_length",
            CfError::InvalidCharacter { .. } => "cf_invalid_character",
            CfError::Structure { .. } => "cf_structure",
            CfError::Month { .. } => "cf_month",
            CfError::Day { .. } => "cf_day",
            CfError::Date { .. } => "cf_date",
            CfError::CheckCharacter { .. } => "cf_check_character",
            CfError::Progressive => "cf_progressive",
            CfError::OfficeCode { .. } => "cf_office_code",
            CfError::CheckDigit { .. } => "cf_check_digit",
        }
    }
}

/// A valid, normalised codice fiscale: 16 characters for a person, 11 digits for an entity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodiceFiscale(String);

impl CodiceFiscale {
    /// The numeric codice fiscale of synthetic entity `n`: `n` in seven digits, office
    /// code 001, and its check digit. For the registers the project makes (the national
    /// simulation, the demo, benchmarks, tests), never for a real party. `None` from
    /// `n` = 10,000,000, which no longer fits seven digits.
    pub fn synthetic_entity(n: u32) -> Option<Self> {
        if n >= 10_000_000 {
            return None;
        }
        let first10 = format!("{n:07}001");
        let check = luhn_check_digit(&first10)?;
        CodiceFiscale::parse(&format!("{first10}{check}")).ok()
    }

    /// Normalises `input` and applies every R-CF check, reporting the first that fails.
    pub fn parse(input: &str) -> Result<Self, CfError> {
        let code = prepare(input)?;
        match code.len() {
            PERSON_LEN => decode_person(code.as_bytes()).map(|_| CodiceFiscale(code)),
            ENTITY_LEN => validate_entity(code.as_bytes()).map(|()| CodiceFiscale(code)),
            len => Err(CfError::Length { len }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> CfKind {
        if self.0.len() == PERSON_LEN {
            CfKind::Person
        } else {
            CfKind::Entity
        }
    }

    /// True for a personal code in which at least one digit was replaced by a letter,
    /// which the Agenzia does only to tell apart people whose data would collide.
    pub fn is_omocode(&self) -> bool {
        self.kind() == CfKind::Person
            && OMOCODE_POSITIONS
                .iter()
                .any(|&i| self.0.as_bytes()[i].is_ascii_uppercase())
    }

    /// Birth data of a personal code; `None` for an entity.
    pub fn birth(&self) -> Option<PersonBirth> {
        if self.kind() != CfKind::Person {
            return None;
        }
        decode_person(self.0.as_bytes()).ok().map(|d| d.birth())
    }

    /// Every spelling of the same personal code: all 128 omocodia variants, the
    /// unsubstituted code first. An entity code has no variants but itself.
    ///
    /// Useful to recognise the same person whatever variant a document carries.
    pub fn omocode_variants(&self) -> Vec<CodiceFiscale> {
        match self.decoded() {
            Some(decoded) => (0u8..128)
                .map(|mask| variant(self.0.as_bytes(), &decoded.digits, mask))
                .collect(),
            None => vec![self.clone()],
        }
    }

    /// The variant with no omocodia substitution (itself for entities and plain codes).
    pub fn canonical(&self) -> CodiceFiscale {
        match self.decoded() {
            Some(decoded) => variant(self.0.as_bytes(), &decoded.digits, 0),
            None => self.clone(),
        }
    }

    fn decoded(&self) -> Option<DecodedPerson> {
        if self.kind() == CfKind::Person {
            decode_person(self.0.as_bytes()).ok()
        } else {
            None
        }
    }
}

/// Both codes are a validated string: shown and serialised as their text, and parsed (from
/// text or from JSON alike) only through their own `parse`, so that none skips validation.
macro_rules! validated_text {
    ($code:ident) => {
        impl fmt::Display for $code {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $code {
            type Err = CfError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $code {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $code {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $code {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        string_schema!($code);
    };
}

validated_text!(CodiceFiscale);

impl From<PartitaIva> for CodiceFiscale {
    fn from(piva: PartitaIva) -> Self {
        CodiceFiscale(piva.0)
    }
}

/// A valid, normalised partita IVA: always 11 digits, without the `IT` prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitaIva(String);

impl PartitaIva {
    /// Like [`CodiceFiscale::parse`], but a personal (16-character) code is rejected:
    /// persons without a VAT number have no partita IVA.
    pub fn parse(input: &str) -> Result<Self, CfError> {
        let code = prepare(input)?;
        if code.len() != ENTITY_LEN {
            return Err(CfError::PartitaIvaLength { len: code.len() });
        }
        validate_entity(code.as_bytes())?;
        Ok(PartitaIva(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

validated_text!(PartitaIva);

/// Check character of a personal code from its first 15 characters.
///
/// Expects the normalised form (upper-case ASCII letters and digits); returns `None`
/// for any other character or a length other than 15.
pub fn check_character(first15: &str) -> Option<char> {
    let bytes = first15.as_bytes();
    if bytes.len() != PERSON_LEN - 1 {
        return None;
    }
    check_byte(bytes).map(char::from)
}

/// Luhn check digit of an 11-digit code from its first 10 digits; `None` unless the
/// input is exactly 10 ASCII digits.
pub fn luhn_check_digit(first10: &str) -> Option<u8> {
    let bytes = first10.as_bytes();
    if bytes.len() != ENTITY_LEN - 1 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let digits: Vec<u8> = bytes.iter().map(|b| b - b'0').collect();
    Some(luhn(&digits))
}

/// Removes what people and documents add around a code, so that the same code always
/// compares equal. Whitespace covers the non-breaking spaces that PDFs put in.
fn normalise(input: &str) -> String {
    let mut code: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | ':' | '.'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    // Only a VAT number carries the country prefix; a personal code may legitimately
    // begin with "IT" (e.g. a surname like "Itri"), so it must be left alone.
    let is_prefixed_vat = code.len() == ENTITY_LEN + 2
        && code.starts_with("IT")
        && code.bytes().skip(2).all(|b| b.is_ascii_digit());
    if is_prefixed_vat {
        code.drain(..2);
    }
    code
}

/// Normalises and rejects what cannot be a code of either kind, so that the kind-specific
/// checks only ever see upper-case ASCII letters and digits.
fn prepare(input: &str) -> Result<String, CfError> {
    let code = normalise(input);
    if code.is_empty() {
        return Err(CfError::Empty);
    }
    if let Some((i, found)) = code
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_alphanumeric())
    {
        return Err(CfError::InvalidCharacter {
            position: i + 1,
            found,
        });
    }
    Ok(code)
}

/// The numeric content of a structurally valid personal code, omocodia undone.
#[derive(Debug, Clone, Copy)]
struct DecodedPerson {
    /// The seven digits at [`OMOCODE_POSITIONS`], as digits.
    digits: [u8; 7],
    /// 1..=12.
    month: u8,
}

impl DecodedPerson {
    fn year2(&self) -> u8 {
        self.digits[0] * 10 + self.digits[1]
    }

    fn raw_day(&self) -> u8 {
        self.digits[2] * 10 + self.digits[3]
    }

    fn birth(&self) -> PersonBirth {
        let raw = self.raw_day();
        PersonBirth {
            day: if raw > 40 { raw - 40 } else { raw },
            month: self.month,
            year2: self.year2(),
            female: raw > 40,
        }
    }
}

/// All checks for a 16-character code, in the order a person reads it, so the error
/// points at the leftmost problem.
fn decode_person(code: &[u8]) -> Result<DecodedPerson, CfError> {
    let mut digits = [0u8; 7];
    let mut month = 0u8;
    let mut next_digit = digits.iter_mut();
    for (i, &c) in code.iter().enumerate() {
        let (fits, expected) = match i {
            8 => match MONTH_LETTERS.iter().position(|&m| m == c) {
                Some(m) => {
                    month = m as u8 + 1;
                    continue;
                }
                None => {
                    return Err(CfError::Month {
                        found: char::from(c),
                    });
                }
            },
            6 | 7 | 9 | 10 | 12 | 13 | 14 => match (decode_digit(c), next_digit.next()) {
                (Some(d), Some(slot)) => {
                    *slot = d;
                    (true, EXPECTED_DIGIT_OR_OMOCODE)
                }
                _ => (false, EXPECTED_DIGIT_OR_OMOCODE),
            },
            11 => (c.is_ascii_uppercase(), EXPECTED_PLACE_LETTER),
            15 => (c.is_ascii_uppercase(), EXPECTED_CHECK_LETTER),
            _ => (c.is_ascii_uppercase(), EXPECTED_NAME_LETTER),
        };
        if !fits {
            return Err(CfError::Structure {
                position: i + 1,
                found: char::from(c),
                expected,
            });
        }
    }
    let decoded = DecodedPerson { digits, month };

    let raw_day = decoded.raw_day();
    if !matches!(raw_day, 1..=31 | 41..=71) {
        return Err(CfError::Day { found: raw_day });
    }
    let birth = decoded.birth();
    if !date_exists(birth.day, birth.month, birth.year2) {
        return Err(CfError::Date {
            day: birth.day,
            month: birth.month,
            year2: birth.year2,
        });
    }

    let expected = check_byte(&code[..PERSON_LEN - 1]);
    let found = code[PERSON_LEN - 1];
    if expected != Some(found) {
        return Err(CfError::CheckCharacter {
            expected: expected.map_or('?', char::from),
            found: char::from(found),
        });
    }
    Ok(decoded)
}

/// The code does not say the century, so the date only has to exist in one of the two
/// that a living person can have been born in (this matters only for 29 February).
fn date_exists(day: u8, month: u8, year2: u8) -> bool {
    [1900, 2000].iter().any(|century| {
        NaiveDate::from_ymd_opt(century + i32::from(year2), u32::from(month), u32::from(day))
            .is_some()
    })
}

fn decode_digit(c: u8) -> Option<u8> {
    if c.is_ascii_digit() {
        Some(c - b'0')
    } else {
        OMOCODE_LETTERS
            .iter()
            .position(|&l| l == c)
            .map(|d| d as u8)
    }
}

/// Sum of position values mod 26. Each position's value map is injective over the
/// characters that position may hold, which is why any single substitution is caught.
fn check_byte(first15: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    for (i, &c) in first15.iter().enumerate() {
        let index = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A',
            _ => return None,
        };
        // Positions are counted from 1 in the official algorithm, so index 0 is "odd".
        let value = if i % 2 == 0 {
            ODD_VALUES[usize::from(index)]
        } else {
            index
        };
        sum += u32::from(value);
    }
    Some(b'A' + (sum % 26) as u8)
}

fn validate_entity(code: &[u8]) -> Result<(), CfError> {
    let mut digits = [0u8; ENTITY_LEN];
    for (i, (slot, &c)) in digits.iter_mut().zip(code).enumerate() {
        if !c.is_ascii_digit() {
            return Err(CfError::Structure {
                position: i + 1,
                found: char::from(c),
                expected: EXPECTED_DIGIT,
            });
        }
        *slot = c - b'0';
    }
    if digits[..7].iter().all(|&d| d == 0) {
        return Err(CfError::Progressive);
    }
    let office = u16::from(digits[7]) * 100 + u16::from(digits[8]) * 10 + u16::from(digits[9]);
    if !((1..=100).contains(&office) || SPECIAL_OFFICES.contains(&office)) {
        return Err(CfError::OfficeCode { found: office });
    }
    let expected = luhn(&digits[..ENTITY_LEN - 1]);
    let found = digits[ENTITY_LEN - 1];
    if expected != found {
        return Err(CfError::CheckDigit { expected, found });
    }
    Ok(())
}

/// Digit that makes the weighted sum a multiple of 10; `digits` are values 0..=9.
fn luhn(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Rebuilds a personal code with omocodia applied at the positions set in `mask`
/// (bit k ↔ `OMOCODE_POSITIONS[k]`) and the check character recomputed.
fn variant(code: &[u8], digits: &[u8; 7], mask: u8) -> CodiceFiscale {
    let mut bytes = [0u8; PERSON_LEN];
    bytes.copy_from_slice(&code[..PERSON_LEN]);
    for (k, (&pos, &d)) in OMOCODE_POSITIONS.iter().zip(digits).enumerate() {
        bytes[pos] = if mask & (1 << k) != 0 {
            OMOCODE_LETTERS[usize::from(d)]
        } else {
            b'0' + d
        };
    }
    if let Some(check) = check_byte(&bytes[..PERSON_LEN - 1]) {
        bytes[PERSON_LEN - 1] = check;
    }
    CodiceFiscale(bytes.iter().map(|&b| char::from(b)).collect())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    #[test]
    fn synthetic_entities_are_valid_and_distinct_up_to_seven_digits() {
        let a = super::CodiceFiscale::synthetic_entity(1).unwrap();
        let b = super::CodiceFiscale::synthetic_entity(9_999_999).unwrap();
        assert_eq!(a.as_str().len(), 11);
        assert!(a.as_str().starts_with("0000001001"));
        assert_ne!(a, b);
        assert!(super::CodiceFiscale::synthetic_entity(10_000_000).is_none());
    }

    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    const VALID_PERSONS: [&str; 11] = [
        "MRTNTN23M02D969P",
        "RCCMNL83S18D969H",
        "MRSMSR81D60Z611H",
        "CNTCHR83T41D969D",
        "FOXDRA26C24H872Y",
        "MAILCU91A25F839D",
        "RSSMRA45C12F205C",
        "RSSMRA45C12F20RX",
        "RSSMRA45C12F2L5N",
        "RSSMRA45C12F2LRI",
        "RSSMRAQRCMNFNLRG",
    ];

    const VALID_ENTITIES: [&str; 5] = [
        "00743110157",
        "03189950961",
        "00140869991",
        "00567410014",
        "10427800114",
    ];

    fn err(input: &str) -> CfError {
        CodiceFiscale::parse(input).unwrap_err()
    }

    /// Completes a 15-character prefix with its correct check character, so a test can
    /// prove that a rejection comes from the check under test and not from the CIN.
    fn with_check(first15: &str) -> String {
        format!("{first15}{}", check_character(first15).unwrap())
    }

    fn with_luhn(first10: &str) -> String {
        format!("{first10}{}", luhn_check_digit(first10).unwrap())
    }

    #[test]
    fn r_cf_accepts_reference_vectors() {
        for code in VALID_PERSONS {
            let cf = CodiceFiscale::parse(code).unwrap();
            assert_eq!(cf.as_str(), code);
            assert_eq!(cf.kind(), CfKind::Person);
        }
        for code in VALID_ENTITIES {
            let cf = CodiceFiscale::parse(code).unwrap();
            assert_eq!(cf.as_str(), code);
            assert_eq!(cf.kind(), CfKind::Entity);
            assert_eq!(PartitaIva::parse(code).unwrap().as_str(), code);
        }
    }

    #[test]
    fn r_cf_check_character_matches_reference() {
        assert_eq!(check_character("MRTNTN23M02D969"), Some('P'));
        assert_eq!(check_character("BNCSFN85T58G702"), Some('W'));
        assert_eq!(check_character("RCDLSN84S16D969"), Some('Z'));
        assert_eq!(check_character("MRTNTN23M02D96"), None);
        assert_eq!(check_character("MRTNTN23M02D969P"), None);
        assert_eq!(check_character("mrtntn23m02d969"), None);
        assert_eq!(check_character("MRTNTN23M02D9-9"), None);
    }

    #[test]
    fn r_cf_luhn_check_digit_matches_reference() {
        for code in VALID_ENTITIES {
            let expected = code.as_bytes()[10] - b'0';
            assert_eq!(luhn_check_digit(&code[..10]), Some(expected), "{code}");
        }
        assert_eq!(luhn_check_digit("123456789"), None);
        assert_eq!(luhn_check_digit("12345678901"), None);
        assert_eq!(luhn_check_digit("123456789A"), None);
    }

    #[test]
    fn r_cf_rejects_bad_month_letter() {
        assert_eq!(err("CSTNGL22I10D086I"), CfError::Month { found: 'I' });
        assert_eq!(err("CSTNGL22I10D086I").code(), "cf_month");
        assert_eq!(err("CSTNGL2201 0D086I"), CfError::Month { found: '0' });
    }

    #[test]
    fn r_cf_rejects_bad_check_character() {
        assert_eq!(
            err("FOXDRA26C24H872A"),
            CfError::CheckCharacter {
                expected: 'Y',
                found: 'A'
            }
        );
        assert_eq!(
            err("CCCFBA85D03L219B"),
            CfError::CheckCharacter {
                expected: 'P',
                found: 'B'
            }
        );
        assert_eq!(err("CCCFBA85D03L219B").code(), "cf_check_character");
    }

    #[test]
    fn r_cf_rejects_impossible_day() {
        assert_eq!(err("CNTCHR83T32D969H"), CfError::Day { found: 32 });
        for day in ["00", "32", "40", "72", "99"] {
            let code = with_check(&format!("CCCFBA85D{day}L219"));
            assert_eq!(err(&code).code(), "cf_day", "{code}");
        }
        // Omocode letters in the day are decoded before the range check: "VV" is 99.
        assert_eq!(err("CCCFBA85DVVL219P"), CfError::Day { found: 99 });
        // March (C) has 31 days, so both ends of each range are real dates.
        for day in ["01", "31", "41", "71"] {
            let code = with_check(&format!("CCCFBA85C{day}L219"));
            assert!(CodiceFiscale::parse(&code).is_ok(), "{code}");
        }
    }

    #[test]
    fn r_cf_rejects_dates_missing_from_the_calendar() {
        // 31 April, for either sex.
        for day in ["31", "71"] {
            let code = with_check(&format!("RSSMRA45D{day}F205"));
            assert_eq!(
                err(&code),
                CfError::Date {
                    day: 31,
                    month: 4,
                    year2: 45
                }
            );
        }
        // 30 February never exists.
        assert_eq!(err(&with_check("RSSMRA04B30F205")).code(), "cf_date");
        // 29 February: 2000 and 1904/2004 are leap years, 1901/2001 are not.
        assert!(CodiceFiscale::parse(&with_check("RSSMRA00B29F205")).is_ok());
        assert!(CodiceFiscale::parse(&with_check("RSSMRA04B69F205")).is_ok());
        assert_eq!(
            err(&with_check("RSSMRA01B29F205")),
            CfError::Date {
                day: 29,
                month: 2,
                year2: 1
            }
        );
    }

    #[test]
    fn r_cf_rejects_wrong_length() {
        assert_eq!(err("CCCFBA85D03L219"), CfError::Length { len: 15 });
        assert_eq!(err("CCCFBA85D03L219PP"), CfError::Length { len: 17 });
        assert_eq!(err("0074311015"), CfError::Length { len: 10 });
        assert_eq!(err("CCCFBA85D03L219").code(), "cf_length");
        // An "IT" prefix is only removed from VAT numbers, never from personal codes.
        assert_eq!(err("ITCCCFBA85D03L219P"), CfError::Length { len: 18 });
        assert_eq!(err(""), CfError::Empty);
        assert_eq!(err(" - . "), CfError::Empty);
    }

    #[test]
    fn r_cf_rejects_structure_errors() {
        let cases = [
            ("C1CFBA85D03L219P", 2, '1'),
            ("CCCFBA8AD03L219P", 8, 'A'),
            ("CCCFBA85D0OL219P", 11, 'O'),
            ("CCCFBA85D03 9219P", 12, '9'),
            ("CCCFBA85D03L2W9P", 14, 'W'),
            ("CCCFBA85D03L2191", 16, '1'),
        ];
        for (code, position, found) in cases {
            match err(code) {
                CfError::Structure {
                    position: p,
                    found: f,
                    ..
                } => assert_eq!((p, f), (position, found), "{code}"),
                other => panic!("{code}: expected a structure error, got {other:?}"),
            }
        }
    }

    #[test]
    fn r_cf_rejects_invalid_characters() {
        assert_eq!(
            err("CCCFBA85D03L219/"),
            CfError::InvalidCharacter {
                position: 16,
                found: '/'
            }
        );
        assert_eq!(
            err("CCCFBÀ85D03L219P"),
            CfError::InvalidCharacter {
                position: 6,
                found: 'À'
            }
        );
        assert_eq!(
            err("CCCFBA85D03L219\u{200B}").code(),
            "cf_invalid_character"
        );
    }

    #[test]
    fn r_cf_normalises_spaces_dashes_case_and_it_prefix() {
        let expected = CodiceFiscale::parse("CCCFBA85D03L219P").unwrap();
        for input in [
            "CCC FBA 85 D03 L219 P",
            "CCC-FBA-85-D03-L219-P",
            "cccfba85d03l219p",
            " CccFba.85:D03\tL219\u{a0}p ",
        ] {
            assert_eq!(CodiceFiscale::parse(input).unwrap(), expected, "{input:?}");
        }
        for input in [
            "IT00743110157",
            "it 00743110157",
            "IT-007 431 101 57",
            "00743110157",
        ] {
            assert_eq!(CodiceFiscale::parse(input).unwrap().as_str(), "00743110157");
            assert_eq!(PartitaIva::parse(input).unwrap().as_str(), "00743110157");
        }
        // 13 characters starting with IT but not followed by digits: nothing to strip.
        assert_eq!(err("IT0074311015X"), CfError::Length { len: 13 });
    }

    #[test]
    fn r_cf_keeps_it_at_start_of_personal_code() {
        let code = with_check("ITRLCU80A01H501");
        let cf = CodiceFiscale::parse(&code.to_lowercase()).unwrap();
        assert_eq!(cf.as_str(), code);
        assert!(cf.as_str().starts_with("IT"));
    }

    #[test]
    fn r_cf_decodes_birth() {
        let birth = |code: &str| CodiceFiscale::parse(code).unwrap().birth().unwrap();
        assert_eq!(
            birth("MRSMSR81D60Z611H"),
            PersonBirth {
                day: 20,
                month: 4,
                year2: 81,
                female: true
            }
        );
        assert_eq!(
            birth("CNTCHR83T41D969D"),
            PersonBirth {
                day: 1,
                month: 12,
                year2: 83,
                female: true
            }
        );
        assert_eq!(
            birth("RSSMRAQRCMNFNLRG"),
            PersonBirth {
                day: 12,
                month: 3,
                year2: 45,
                female: false
            }
        );
        assert_eq!(CodiceFiscale::parse("00743110157").unwrap().birth(), None);
    }

    #[test]
    fn r_cf_detects_omocodes() {
        let base = CodiceFiscale::parse("CCCFBA85D03L219P").unwrap();
        assert!(!base.is_omocode());
        for code in [
            "CCCFBA85D03L21VE",
            "CCCFBA85D03L2MVP",
            "CCCFBA85D03LNMVE",
            "CCCFBA85D0PLNMVA",
            "CCCFBA85DLPLNMVL",
            "CCCFBA8RDLPLNMVX",
            "CCCFBAURDLPLNMVU",
        ] {
            let cf = CodiceFiscale::parse(code).unwrap();
            assert!(cf.is_omocode(), "{code}");
            assert_eq!(cf.canonical(), base, "{code}");
            assert_eq!(cf.birth(), base.birth(), "{code}");
        }
        let rossi = CodiceFiscale::parse("RSSMRA45C12F205C").unwrap();
        for code in &VALID_PERSONS[7..] {
            assert_eq!(CodiceFiscale::parse(code).unwrap().canonical(), rossi);
        }
        assert!(!CodiceFiscale::parse("00743110157").unwrap().is_omocode());
    }

    #[test]
    fn r_cf_omocodes_all_valid_and_distinct() {
        let base = CodiceFiscale::parse("CCCFBA85D03L219P").unwrap();
        let variants = base.omocode_variants();
        assert_eq!(variants.len(), 128);
        assert_eq!(variants[0], base);
        let distinct: HashSet<_> = variants.iter().collect();
        assert_eq!(distinct.len(), 128);
        for v in &variants {
            assert_eq!(&CodiceFiscale::parse(v.as_str()).unwrap(), v);
            assert_eq!(v.canonical(), base);
            let mut again = v.omocode_variants();
            again.sort();
            let mut sorted = variants.clone();
            sorted.sort();
            assert_eq!(again, sorted);
        }
        assert!(variants.iter().any(|v| v.as_str() == "CCCFBAURDLPLNMVU"));
    }

    #[test]
    fn r_cf_entity_has_no_birth_and_single_variant() {
        let cf = CodiceFiscale::parse("00743110157").unwrap();
        assert_eq!(cf.omocode_variants(), vec![cf.clone()]);
        assert_eq!(cf.canonical(), cf);
    }

    #[test]
    fn r_cf_entity_rejects_bad_check_digit() {
        assert_eq!(
            err("00743110158"),
            CfError::CheckDigit {
                expected: 7,
                found: 8
            }
        );
        assert_eq!(
            err("12345670018"),
            CfError::CheckDigit {
                expected: 7,
                found: 8
            }
        );
        assert_eq!(err("12345670018").code(), "cf_check_digit");
        assert_eq!(
            PartitaIva::parse("00743110158").unwrap_err().code(),
            "cf_check_digit"
        );
    }

    #[test]
    fn r_cf_entity_rejects_bad_office_code() {
        assert_eq!(err("00000011015"), CfError::OfficeCode { found: 101 });
        for office in ["000", "101", "119", "122", "887", "998"] {
            let code = with_luhn(&format!("1234567{office}"));
            assert_eq!(err(&code).code(), "cf_office_code", "{code}");
        }
        for office in ["001", "100", "120", "121", "888", "999"] {
            let code = with_luhn(&format!("1234567{office}"));
            assert!(CodiceFiscale::parse(&code).is_ok(), "{code}");
        }
    }

    #[test]
    fn r_cf_entity_rejects_zero_progressive() {
        assert_eq!(err("00000000018"), CfError::Progressive);
        assert_eq!(err("00000000018").code(), "cf_progressive");
    }

    #[test]
    fn r_cf_entity_rejects_letters() {
        assert_eq!(
            err("0074311015A"),
            CfError::Structure {
                position: 11,
                found: 'A',
                expected: EXPECTED_DIGIT
            }
        );
    }

    #[test]
    fn r_cf_partita_iva_accepts_only_eleven_digits() {
        assert_eq!(
            PartitaIva::parse("RSSMRA45C12F205C").unwrap_err(),
            CfError::PartitaIvaLength { len: 16 }
        );
        assert_eq!(
            PartitaIva::parse("RSSMRA45C12F205X").unwrap_err().code(),
            "cf_piva_length"
        );
        assert_eq!(PartitaIva::parse("").unwrap_err(), CfError::Empty);
        let piva: PartitaIva = "IT 03189950961".parse().unwrap();
        assert_eq!(piva.to_string(), "03189950961");
        let cf = CodiceFiscale::from(piva);
        assert_eq!(cf.kind(), CfKind::Entity);
    }

    #[test]
    fn r_cf_error_codes_are_stable_and_distinct() {
        let all = [
            CfError::Empty,
            CfError::Length { len: 0 },
            CfError::PartitaIvaLength { len: 0 },
            CfError::InvalidCharacter {
                position: 1,
                found: '/',
            },
            CfError::Structure {
                position: 1,
                found: '1',
                expected: EXPECTED_DIGIT,
            },
            CfError::Month { found: 'I' },
            CfError::Day { found: 0 },
            CfError::Date {
                day: 31,
                month: 4,
                year2: 0,
            },
            CfError::CheckCharacter {
                expected: 'A',
                found: 'B',
            },
            CfError::Progressive,
            CfError::OfficeCode { found: 101 },
            CfError::CheckDigit {
                expected: 1,
                found: 2,
            },
        ];
        let codes: HashSet<_> = all.iter().map(CfError::code).collect();
        assert_eq!(codes.len(), all.len());
        assert!(codes.iter().all(|c| c.starts_with("cf_")));
    }

    #[test]
    fn r_cf_error_messages_are_italian_and_actionable() {
        assert_eq!(
            err("FOXDRA26C24H872A").to_string(),
            "Codice fiscale non valido: il carattere di controllo dovrebbe essere 'Y' ma è 'A'"
        );
        assert_eq!(
            err("CCCFBA85D03L219").to_string(),
            "Codice fiscale non valido: deve avere 16 caratteri (persona fisica) o 11 cifre (società/ente), ne ha 15"
        );
        assert!(err("CSTNGL22I10D086I").to_string().contains("invece è 'I'"));
        assert!(err("CNTCHR83T32D969H").to_string().contains("invece è 32"));
        assert!(
            err(&with_check("RSSMRA01B29F205"))
                .to_string()
                .contains("29/02/01 non esiste (né nel 1901 né nel 2001)")
        );
        assert!(err("00000011015").to_string().contains("invece sono 101"));
        assert!(
            err("00743110158")
                .to_string()
                .contains("dovrebbe essere 7 ma è 8")
        );
        assert!(
            err("C1CFBA85D03L219P")
                .to_string()
                .contains("in posizione 2 ci dovrebbe essere una lettera")
        );
        assert!(
            err("CCCFBA85D03L219\u{200B}")
                .to_string()
                .contains("\\u{200b}")
        );
    }

    #[test]
    fn r_cf_serde_round_trips_and_deserialisation_validates() {
        #[derive(Debug, Deserialize)]
        struct Row {
            cf: CodiceFiscale,
            piva: PartitaIva,
        }
        let row: Row =
            toml::from_str("cf = \"rss mra 45c12 f205c\"\npiva = \"IT00743110157\"").unwrap();
        assert_eq!(row.cf.as_str(), "RSSMRA45C12F205C");
        assert_eq!(row.piva.as_str(), "00743110157");
        assert_eq!(
            toml::Value::try_from(&row.cf).unwrap(),
            toml::Value::String("RSSMRA45C12F205C".to_owned())
        );
        assert_eq!(
            toml::Value::try_from(&row.piva).unwrap(),
            toml::Value::String("00743110157".to_owned())
        );
        let bad =
            toml::from_str::<Row>("cf = \"FOXDRA26C24H872A\"\npiva = \"00743110157\"").unwrap_err();
        assert!(bad.to_string().contains("carattere di controllo"), "{bad}");
        assert!(
            toml::from_str::<Row>("cf = \"RSSMRA45C12F205C\"\npiva = \"RSSMRA45C12F205C\"")
                .is_err()
        );
    }

    fn days_in_month(month: u8, year2: u8) -> u8 {
        match month {
            // Between 2000 and 2099 every fourth year is leap, which also covers 1904–1996.
            2 if NaiveDate::from_ymd_opt(2000 + i32::from(year2), 2, 29).is_some() => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    /// A valid personal code built independently of the parser, with its expected birth
    /// data and omocodia mask.
    fn valid_person() -> impl Strategy<Value = (String, PersonBirth, u8)> {
        (
            prop::collection::vec(b'A'..=b'Z', 6),
            0u8..100,
            1u8..=12,
            0u8..31,
            any::<bool>(),
            b'A'..=b'Z',
            0u16..1000,
            0u8..128,
        )
            .prop_map(
                |(name, year2, month, day_seed, female, place, place_num, mask)| {
                    let day = day_seed % days_in_month(month, year2) + 1;
                    let mut code: Vec<u8> = name;
                    code.extend(format!("{year2:02}").bytes());
                    code.push(MONTH_LETTERS[usize::from(month - 1)]);
                    code.extend(format!("{:02}", day + if female { 40 } else { 0 }).bytes());
                    code.push(place);
                    code.extend(format!("{place_num:03}").bytes());
                    for (k, &pos) in OMOCODE_POSITIONS.iter().enumerate() {
                        if mask & (1 << k) != 0 {
                            code[pos] = OMOCODE_LETTERS[usize::from(code[pos] - b'0')];
                        }
                    }
                    let first15: String = code.iter().map(|&b| char::from(b)).collect();
                    let code = with_check(&first15);
                    let birth = PersonBirth {
                        day,
                        month,
                        year2,
                        female,
                    };
                    (code, birth, mask)
                },
            )
    }

    fn valid_entity() -> impl Strategy<Value = String> {
        (
            1u32..10_000_000,
            prop::sample::select(vec![1u16, 2, 15, 50, 99, 100, 120, 121, 888, 999]),
        )
            .prop_map(|(progressive, office)| with_luhn(&format!("{progressive:07}{office:03}")))
    }

    const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    proptest! {
        #[test]
        fn r_cf_generated_person_codes_parse_and_round_trip((code, birth, mask) in valid_person()) {
            let cf = CodiceFiscale::parse(&code).unwrap();
            prop_assert_eq!(cf.as_str(), code.as_str());
            prop_assert_eq!(cf.kind(), CfKind::Person);
            prop_assert_eq!(cf.birth(), Some(birth));
            prop_assert_eq!(cf.is_omocode(), mask != 0);
            prop_assert_eq!(&cf.to_string().parse::<CodiceFiscale>().unwrap(), &cf);
            let sloppy = format!(" {}-{} ", code[..8].to_lowercase(), &code[8..]);
            prop_assert_eq!(&CodiceFiscale::parse(&sloppy).unwrap(), &cf);
            let canonical = cf.canonical();
            prop_assert!(!canonical.is_omocode());
            prop_assert!(cf.omocode_variants().contains(&cf));
            prop_assert!(canonical.omocode_variants().contains(&cf));
        }

        /// Every position's value map is injective over the characters allowed there
        /// (digits and omocode letters never share a value; letters A–Z are a permutation
        /// of 0..26 in both maps), so a single substitution shifts the sum by a non-zero
        /// residue mod 26 and the check character no longer matches. Changing the check
        /// character itself obviously fails. Hence no single change can land on another
        /// valid code, omocode or not — the test checks all 16 × 35 changes.
        #[test]
        fn r_cf_single_character_change_of_person_code_is_rejected((code, _, _) in valid_person()) {
            for pos in 0..PERSON_LEN {
                for &replacement in ALPHABET {
                    if code.as_bytes()[pos] == replacement {
                        continue;
                    }
                    let mut mutated = code.clone().into_bytes();
                    mutated[pos] = replacement;
                    let mutated: String = mutated.iter().map(|&b| char::from(b)).collect();
                    prop_assert!(
                        CodiceFiscale::parse(&mutated).is_err(),
                        "{} -> {} accepted", code, mutated
                    );
                }
            }
        }

        /// Luhn weights 1 and 2 (with the minus-9 fold) both permute 0..=9, so any single
        /// digit change moves the sum by a non-zero residue mod 10.
        #[test]
        fn r_cf_single_digit_change_of_entity_code_is_rejected(code in valid_entity()) {
            prop_assert!(CodiceFiscale::parse(&code).is_ok());
            prop_assert!(PartitaIva::parse(&code).is_ok());
            for pos in 0..ENTITY_LEN {
                for replacement in b'0'..=b'9' {
                    if code.as_bytes()[pos] == replacement {
                        continue;
                    }
                    let mut mutated = code.clone().into_bytes();
                    mutated[pos] = replacement;
                    let mutated: String = mutated.iter().map(|&b| char::from(b)).collect();
                    prop_assert!(CodiceFiscale::parse(&mutated).is_err(), "{} accepted", mutated);
                    prop_assert_ne!(
                        luhn_check_digit(&mutated[..10]),
                        Some(mutated.as_bytes()[10] - b'0')
                    );
                }
            }
        }
    }
}
