//! `Problem.code` cannot drift from the code: the workspace's sources are read for every
//! place a code is raised, and each one must be in the catalogue (`cessio_web::codes`), with
//! the rule written next to it and the status written at the site; every catalogued code
//! must still be raised somewhere; the OpenAPI document lists exactly the catalogue.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cessio_web::codes::{CODES, statuses};

/// The error types whose `code()` reaches `Problem.code`, directly or as an `AppError::Rule`.
const ON_THE_WIRE: &[&str] = &[
    "AppError",
    "StoreError",
    "LedgerError",
    "MoneyError",
    "OptStopError",
    "SuspError",
    "ChainError",
    "F24Error",
    "DebitError",
    "ReductionError",
    "SplitError",
];

/// The error types with a `code()` that never becomes `Problem.code`, and why.
const OFF_THE_WIRE: &[(&str, &str)] = &[
    ("CatalogueError", "catalogue/types.toml at start-up"),
    ("LawError", "catalogue/rules.toml at start-up"),
    ("OptStopTableError", "catalogue/opt_stop.toml at start-up"),
    ("RiskRule", "the rule of a risk hit, a field of RiskHits"),
    ("CfError", "the API sends cf_invalid (AppError::Cf)"),
    (
        "FileError",
        "the field of an `invalid` problem, or a row of an import report",
    ),
    (
        "IdentifierError",
        "the field of an `invalid` problem (via RataError)",
    ),
    ("RataError", "the field of an `invalid` problem"),
    ("YearError", "the field of an `invalid` problem"),
];

/// Codes a wire type's `code()` names that the API never sends, and why.
const SHADOWED: &[(&str, &str)] = &[(
    "idempotency_conflict",
    "AppError::code sends idempotency_mismatch for StoreError::IdempotencyConflict",
)];

/// Functions whose first argument is a code literal.
const CODE_WRAPPERS: &[&str] = &["cursor_refused("];

/// One place a code is raised.
#[derive(Debug)]
struct Site {
    code: String,
    /// The rule id written next to the code, when one is.
    rule: Option<String>,
    /// The HTTP status written next to the code (`StatusCode::NAME` or a number), when one is.
    status: Option<u16>,
    at: String,
}

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn sources() -> Vec<PathBuf> {
    let crates = crates_dir();
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&crates)
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    assert!(out.len() > 50, "the sources were not found: {crates:?}");
    out
}

/// The file without its test module, which raises nothing the service sends.
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\n").map_or(text, |i| &text[..i])
}

/// A string literal at the start of `s` (after blanks), and what follows it.
fn literal(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start().strip_prefix('"')?;
    let end = s.find('"')?;
    Some((&s[..end], &s[end + 1..]))
}

fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// `const NAME: &str = "code";`, to resolve a code written as a constant's path.
fn constants(files: &[(String, String)]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (_, text) in files {
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("pub const ") else {
                continue;
            };
            let Some((name, value)) = rest.split_once(": &str =") else {
                continue;
            };
            if let Some((v, _)) = literal(value) {
                out.insert(name.trim().to_string(), v.to_string());
            }
        }
    }
    out
}

/// `rule("R-…", "code", …)`: the store engine's refusals.
fn rule_calls(path: &str, text: &str, sites: &mut Vec<Site>) {
    for (i, _) in text.match_indices("rule(") {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
            || text[..i].ends_with("fn ")
        {
            continue;
        }
        let Some((rule, rest)) = literal(&text[i + 5..]) else {
            continue;
        };
        let Some((code, _)) = rest.trim_start().strip_prefix(',').and_then(literal) else {
            continue;
        };
        sites.push(Site {
            code: code.into(),
            rule: Some(rule.into()),
            status: None,
            at: format!("{path}:{}", line_of(text, i)),
        });
    }
}

/// `AppError::Rule { rule: …, code: …, … }`, `StoreError::Rule { … }`, `AppError::Cursor { … }`.
fn rule_literals(path: &str, text: &str, consts: &BTreeMap<String, String>, sites: &mut Vec<Site>) {
    for head in [
        "AppError::Rule {",
        "StoreError::Rule {",
        "AppError::Cursor {",
    ] {
        for (i, _) in text.match_indices(head) {
            let mut rest = text[i + head.len()..].trim_start();
            let mut rule = None;
            if let Some(r) = rest.strip_prefix("rule:") {
                let (expr, after) = r.split_once(',').unwrap();
                rule = literal(expr).map(|(l, _)| l.to_string());
                rest = after.trim_start();
            }
            let Some(c) = rest.strip_prefix("code:") else {
                continue;
            };
            let expr = c.split([',', '}']).next().unwrap().trim();
            let code = match literal(expr) {
                Some((l, _)) => l.to_string(),
                None => match consts.get(expr.rsplit("::").next().unwrap()) {
                    Some(v) => v.clone(),
                    // `e.code()`: the error type's `code()` is read on its own.
                    None => continue,
                },
            };
            sites.push(Site {
                code,
                rule,
                status: None,
                at: format!("{path}:{}", line_of(text, i)),
            });
        }
    }
}

fn wrapper_calls(path: &str, text: &str, sites: &mut Vec<Site>) {
    for wrapper in CODE_WRAPPERS {
        for (i, _) in text.match_indices(wrapper) {
            if text[..i].ends_with("fn ") {
                continue;
            }
            if let Some((code, _)) = literal(&text[i + wrapper.len()..]) {
                sites.push(Site {
                    code: code.into(),
                    rule: None,
                    status: None,
                    at: format!("{path}:{}", line_of(text, i)),
                });
            }
        }
    }
}

/// `Problem::new(StatusCode::X, "code", …)`, and the web's `match status { StatusCode::X
/// => "code" … }` tables that pick a code for a status.
fn web_problems(path: &str, text: &str, sites: &mut Vec<Site>) {
    for (i, _) in text.match_indices("Problem::new(") {
        let args = &text[i + "Problem::new(".len()..];
        let Some((status, rest)) = args.split_once(',') else {
            continue;
        };
        if let Some((code, _)) = literal(rest) {
            sites.push(Site {
                code: code.into(),
                rule: None,
                status: status_written(status),
                at: format!("{path}:{}", line_of(text, i)),
            });
        }
    }
    for (i, _) in text.match_indices("match status {") {
        let body = &text[i..];
        let body = &body[..body.find("\n    };").unwrap()];
        for (j, _) in body.match_indices("=>") {
            let pattern = body[..j].rsplit(['\n', ',']).next().unwrap().trim();
            let value = body[j + 2..].trim_start();
            let value = value.strip_prefix('(').unwrap_or(value);
            let Some((code, _)) = literal(value) else {
                continue;
            };
            sites.push(Site {
                code: code.into(),
                rule: None,
                status: status_written(pattern),
                at: format!("{path}:{}", line_of(text, i + j)),
            });
        }
    }
}

/// A `match self` body's arms, one a line as rustfmt writes them: each arm's variants
/// (`Type::Variant`) and the literal it gives (`"x"` or `Some("x")`), when it gives one.
fn arms(body: &str) -> Vec<(Vec<String>, Option<String>)> {
    let mut out: Vec<(Vec<String>, Option<String>)> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let mut lines = body.lines().peekable();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let (pattern, value) = match line.split_once("=>") {
            Some((p, v)) => (p, Some(v.trim())),
            None => (line, None),
        };
        for alternative in pattern.split('|') {
            let path: String = alternative
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            if path.contains("::") || path == "_" {
                pending.push(path);
            }
        }
        let Some(value) = value else {
            continue;
        };
        let value = match value {
            "{" => lines.peek().map_or("", |l| l.trim()),
            v => v,
        };
        let value = value.strip_prefix("Some(").unwrap_or(value);
        let lit = literal(value).map(|(l, _)| l.to_string());
        out.push((std::mem::take(&mut pending), lit));
    }
    out
}

/// The body of the function whose signature starts at `at`, braces balanced.
fn fn_body(text: &str, at: usize) -> &str {
    let open = at + text[at..].find('{').unwrap();
    let mut depth = 0;
    for (k, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + k];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced function body")
}

/// The type of the `impl` block around `at`.
fn impl_type(text: &str, at: usize) -> String {
    let head = text[..at].rfind("\nimpl ").unwrap();
    text[head + 6..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Each `fn code(&self) -> &'static str` of an error type: its arms' codes, each with the
/// rule the same impl's `fn rule` gives that variant, when it gives a literal.
fn code_fns(path: &str, text: &str, by_type: &mut BTreeMap<String, Vec<Site>>) {
    for signature in [
        "fn code(&self) -> &'static str",
        "fn code(self) -> &'static str",
    ] {
        for (i, _) in text.match_indices(signature) {
            let ty = impl_type(text, i);
            let impl_end = text[i..].find("\n}\n").map_or(text.len(), |e| i + e);
            let impl_start = text[..i].rfind("\nimpl ").unwrap();
            let block = &text[impl_start..impl_end];
            let mut rules: BTreeMap<String, String> = BTreeMap::new();
            let mut whole_rule = None;
            for (j, _) in block.match_indices("fn rule(&self)") {
                let body = fn_body(block, j);
                if let Some((l, _)) = literal(body) {
                    whole_rule = Some(l.to_string());
                }
                for (variants, lit) in arms(body) {
                    for v in variants {
                        if let Some(l) = &lit {
                            rules.insert(v, l.clone());
                        }
                    }
                }
            }
            let body = fn_body(text, i);
            let offset = text[..i].matches('\n').count() + 1;
            for (n, (variants, lit)) in arms(body).into_iter().enumerate() {
                let Some(code) = lit else { continue };
                let rule = variants
                    .iter()
                    .map(|v| {
                        rules
                            .get(v)
                            .or_else(|| rules.get("_"))
                            .or(whole_rule.as_ref())
                    })
                    .next()
                    .flatten()
                    .cloned();
                by_type.entry(ty.clone()).or_default().push(Site {
                    code,
                    rule,
                    status: None,
                    at: format!("{path}:{} (arm {})", offset, n + 1),
                });
            }
        }
    }
}

struct Scan {
    /// Every code the service may send, with where it is raised.
    wire: Vec<Site>,
    /// Codes of `OFF_THE_WIRE` types.
    off: BTreeSet<String>,
    /// Types with a `code()` that are in neither list.
    unclassified: BTreeSet<String>,
    /// Every type with a `code()`.
    types: BTreeSet<String>,
}

fn scan() -> Scan {
    let crates = crates_dir();
    let files: Vec<(String, String)> = sources()
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = p.strip_prefix(&crates).unwrap().display().to_string();
            (name, without_tests(&text).to_string())
        })
        .collect();
    let consts = constants(&files);
    let mut wire = Vec::new();
    let mut by_type = BTreeMap::new();
    for (path, text) in &files {
        rule_calls(path, text, &mut wire);
        rule_literals(path, text, &consts, &mut wire);
        wrapper_calls(path, text, &mut wire);
        if path.contains("cessio-web/src") {
            web_problems(path, text, &mut wire);
        }
        code_fns(path, text, &mut by_type);
    }
    let mut off = BTreeSet::new();
    let mut unclassified = BTreeSet::new();
    let types = by_type.keys().cloned().collect();
    for (ty, sites) in by_type {
        if ON_THE_WIRE.contains(&ty.as_str()) {
            wire.extend(
                sites
                    .into_iter()
                    .filter(|s| !SHADOWED.iter().any(|(c, _)| *c == s.code)),
            );
        } else if OFF_THE_WIRE.iter().any(|(t, _)| *t == ty) {
            off.extend(sites.into_iter().map(|s| s.code));
        } else {
            unclassified.insert(ty);
        }
    }
    Scan {
        wire,
        off,
        unclassified,
        types,
    }
}

#[test]
fn every_error_type_with_a_code_is_classified() {
    let s = scan();
    assert!(
        s.unclassified.is_empty(),
        "these types have a code(): add each to ON_THE_WIRE or OFF_THE_WIRE: {:?}",
        s.unclassified
    );
    for ty in ON_THE_WIRE
        .iter()
        .copied()
        .chain(OFF_THE_WIRE.iter().map(|(t, _)| *t))
    {
        assert!(s.types.contains(ty), "{ty}: no code() found any more");
    }
}

#[test]
fn every_code_raised_is_catalogued_with_its_rule_and_status() {
    let s = scan();
    let catalogue: BTreeMap<&str, _> = CODES.iter().map(|c| (c.code, c)).collect();
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    for site in &s.wire {
        assert!(is_code(&site.code), "{}: {:?}", site.at, site.code);
        let Some(entry) = catalogue.get(site.code.as_str()) else {
            missing.push(format!("{} ({:?}) at {}", site.code, site.rule, site.at));
            continue;
        };
        if site.rule.is_some() && site.rule.as_deref() != entry.rule {
            wrong.push(format!(
                "{}: rule {:?} at {}, {:?} in the catalogue",
                site.code, site.rule, site.at, entry.rule
            ));
        }
        if let Some(status) = site.status
            && !statuses(entry).contains(&status)
        {
            wrong.push(format!(
                "{}: status {status} at {}, {:?} in the catalogue",
                site.code,
                site.at,
                statuses(entry)
            ));
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "raised but not catalogued:\n{}",
        missing.join("\n")
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_catalogued_code_is_raised_somewhere() {
    let s = scan();
    let raised: BTreeSet<&str> = s.wire.iter().map(|x| x.code.as_str()).collect();
    let dead: Vec<&str> = CODES
        .iter()
        .map(|c| c.code)
        .filter(|c| !raised.contains(c))
        .collect();
    assert!(dead.is_empty(), "catalogued but never raised: {dead:?}");
    for (code, why) in SHADOWED {
        assert!(
            !CODES.iter().any(|c| c.code == *code),
            "{code} is never sent ({why})"
        );
    }
}

/// `status_of` names no code that is not catalogued: a renamed code leaves no stale status.
#[test]
fn status_of_names_only_catalogued_codes() {
    let path = crates_dir().join("cessio-web/src/problem.rs");
    let text = std::fs::read_to_string(path).unwrap();
    let at = text.find("pub fn status_of(").unwrap();
    let body = fn_body(&text, at);
    let mut named = 0;
    for piece in body.split('"').skip(1).step_by(2) {
        named += 1;
        assert!(
            CODES.iter().any(|c| c.code == piece),
            "status_of names {piece}, which is not catalogued"
        );
    }
    assert!(named > 20, "status_of was not read: {named} codes");
}

#[test]
fn off_the_wire_codes_are_not_catalogued_unless_also_sent() {
    let s = scan();
    let raised: BTreeSet<&str> = s.wire.iter().map(|x| x.code.as_str()).collect();
    for c in CODES {
        assert!(
            !s.off.contains(c.code) || raised.contains(c.code),
            "{} is only a code of a type that never reaches the API",
            c.code
        );
    }
}

#[test]
fn the_catalogue_is_sorted_unique_and_described() {
    let codes: Vec<&str> = CODES.iter().map(|c| c.code).collect();
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(codes, sorted, "CODES is kept sorted, each code once");
    for c in CODES {
        assert!(is_code(c.code), "{}", c.code);
        assert!(!c.description.trim().is_empty(), "{}", c.code);
        assert!(
            c.also.iter().all(|s| (400..600).contains(s)),
            "{}: {:?}",
            c.code,
            c.also
        );
    }
}

/// The document's `Problem.code` lists exactly the catalogue, each code with its statuses
/// (from `status_of`) and its rule.
#[test]
fn openapi_problem_code_is_the_catalogue() {
    let doc = cessio_web::openapi::build();
    let problem = &doc["components"]["schemas"]["Problem"];
    let listed: Vec<&str> = problem["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let codes: Vec<&str> = CODES.iter().map(|c| c.code).collect();
    assert_eq!(listed, codes);
    for c in CODES {
        let entry = &problem["x-codes"][c.code];
        let documented: Vec<u16> = entry["status"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| u16::try_from(s.as_u64().unwrap()).unwrap())
            .collect();
        assert_eq!(documented, statuses(c), "{}", c.code);
        assert_eq!(entry["rule"].as_str(), c.rule, "{}", c.code);
        assert_eq!(entry["description"], c.description, "{}", c.code);
    }
}

/// The status an expression names: `StatusCode::NAME` or a number; a variable names none.
fn status_written(expr: &str) -> Option<u16> {
    let expr = expr.trim();
    if let Ok(n) = expr.parse() {
        return Some(n);
    }
    use axum::http::StatusCode as S;
    let status = match expr.strip_prefix("StatusCode::")? {
        "BAD_REQUEST" => S::BAD_REQUEST,
        "NOT_FOUND" => S::NOT_FOUND,
        "METHOD_NOT_ALLOWED" => S::METHOD_NOT_ALLOWED,
        "REQUEST_TIMEOUT" => S::REQUEST_TIMEOUT,
        "LENGTH_REQUIRED" => S::LENGTH_REQUIRED,
        "PAYLOAD_TOO_LARGE" => S::PAYLOAD_TOO_LARGE,
        "URI_TOO_LONG" => S::URI_TOO_LONG,
        "UNSUPPORTED_MEDIA_TYPE" => S::UNSUPPORTED_MEDIA_TYPE,
        "UNPROCESSABLE_ENTITY" => S::UNPROCESSABLE_ENTITY,
        "TOO_MANY_REQUESTS" => S::TOO_MANY_REQUESTS,
        "REQUEST_HEADER_FIELDS_TOO_LARGE" => S::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "SERVICE_UNAVAILABLE" => S::SERVICE_UNAVAILABLE,
        other => panic!("StatusCode::{other}: add it to status_written"),
    };
    Some(status.as_u16())
}
