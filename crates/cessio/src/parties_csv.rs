//! `cessio register-parties`: the operator's registry (F9) filled from a CSV file
//! `codice_fiscale;denominazione;tipo`, the format `cessio generate --csv` writes as
//! `soggetti.csv`, so that a generated register can be loaded with the two imports
//! (`register-parties`, then `import` of `comunicazioni.csv`). Each row is registered on its
//! own under a key derived from its codice fiscale, so a re-run registers nothing twice;
//! refused rows are reported with their line and reason and nothing else is lost.

use anyhow::{Context, Result, bail};
use cessio_app::{App, AppError};
use cessio_core::cf::CodiceFiscale;
use cessio_store::PartyKind;

pub const HEADER: &str = "codice_fiscale;denominazione;tipo";

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

pub async fn register(app: &App, bytes: &[u8]) -> Result<Report> {
    let text = std::str::from_utf8(bytes)
        .context("il file non è testo UTF-8: salvarlo in UTF-8 e riprovare")?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim() == HEADER => {}
        Some((_, h)) => bail!("intestazione attesa «{HEADER}», trovata «{}»", h.trim()),
        None => bail!("il file è vuoto: attesa l'intestazione «{HEADER}»"),
    }
    let console = App::console();
    let mut report = Report::default();
    for (i, line) in lines {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(';').map(str::trim).collect();
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
