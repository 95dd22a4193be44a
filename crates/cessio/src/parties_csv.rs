//! `cessio register-parties`: the operator's registry (F9) filled from a CSV file
//! `codice_fiscale;denominazione;tipo`, the format `cessio-bench generate --csv` writes as
//! `soggetti.csv`, so that a generated register can be loaded with the two imports
//! (`register-parties`, then `import` of `comunicazioni.csv`). Each row is registered on its
//! own under a key derived from its codice fiscale, so a re-run registers nothing twice;
//! refused rows are reported with their line and reason and nothing else is lost.

use anyhow::{Context, Result, bail};
use cessio_app::{App, AppError};
use cessio_core::cf::CodiceFiscale;
use cessio_store::PartyKind;

const HEADER: &str = "codice_fiscale;denominazione;tipo";

/// What a run did, for the summary line and the exit code.
#[derive(Debug, Default)]
pub struct Report {
    pub registered: u64,
    pub already_registered: u64,
    /// (line, code, message) of each refused row.
    pub refused: Vec<(usize, &'static str, String)>,
}

fn kinds() -> String {
    PartyKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The line a record starts on, from its byte offset. The csv crate's own line number
/// counts a record that follows blank lines from the first of them; the line its first
/// cell is on is what a person looks for.
fn line_of(text: &str, byte: u64) -> usize {
    let start = usize::try_from(byte).unwrap_or(usize::MAX).min(text.len());
    let skipped = text[start..]
        .bytes()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    // The BOM was stripped before reading, and offsets count from there.
    1 + text[..start + skipped]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
}

pub async fn register(app: &App, bytes: &[u8]) -> Result<Report> {
    let text = std::str::from_utf8(bytes)
        .context("il file non è testo UTF-8: salvarlo in UTF-8 e riprovare")?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // One CSV reader for every row: a name may be quoted and hold a ';' or a line break.
    let mut rows = csv::ReaderBuilder::new()
        .delimiter(b';')
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = rows.records();
    match records.next().transpose() {
        Ok(Some(h)) if h.iter().collect::<Vec<_>>().join(";") == HEADER => {}
        Ok(Some(h)) => bail!(
            "intestazione attesa «{HEADER}», trovata «{}»",
            h.iter().collect::<Vec<_>>().join(";")
        ),
        Ok(None) => bail!("il file è vuoto: attesa l'intestazione «{HEADER}»"),
        Err(e) => bail!("intestazione illeggibile: {e}"),
    }
    let console = App::console();
    let mut report = Report::default();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line_no = e.position().map_or(0, |p| p.line() as usize);
                report.refused.push((line_no, "csv", e.to_string()));
                // A broken quote leaves the reader unable to find the next row.
                break;
            }
        };
        let line_no = record.position().map_or(0, |p| line_of(text, p.byte()));
        if record.iter().all(str::is_empty) {
            continue;
        }
        let fields: Vec<&str> = record.iter().collect();
        let [cf, name, kind] = fields[..] else {
            report.refused.push((
                line_no,
                "columns",
                format!("attese 3 colonne separate da «;», trovate {}", fields.len()),
            ));
            continue;
        };
        let cf = match CodiceFiscale::parse(cf) {
            Ok(cf) => cf,
            Err(e) => {
                report.refused.push((line_no, "cf_invalid", e.to_string()));
                continue;
            }
        };
        let Some(kind) = PartyKind::parse(kind) else {
            report.refused.push((
                line_no,
                "kind_invalid",
                format!("tipo «{kind}» sconosciuto: ammessi {}", kinds()),
            ));
            continue;
        };
        if name.is_empty() {
            report
                .refused
                .push((line_no, "name_missing", "denominazione mancante".into()));
            continue;
        }
        match app.party_by_cf(cf.as_str()).await {
            Ok(_) => {
                report.already_registered += 1;
                continue;
            }
            Err(AppError::CfUnknown { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let key = format!("soggetto-{}", cf.as_str());
        match app
            .register_party(&console, &key, cf.as_str(), name, kind)
            .await
        {
            Ok(_) => report.registered += 1,
            Err(e) => report.refused.push((line_no, e.code(), e.to_string())),
        }
    }
    Ok(report)
}
