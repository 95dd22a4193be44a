//! `cessio register-parties` and the CSV files of the national simulation (what
//! `cessio-bench generate --csv` writes), run as an operator runs them: the generated `soggetti.csv` and `comunicazioni.csv` load with the two imports, a
//! second run registers nothing twice, and bad rows are refused one by one with their line
//! and reason (exit code 2) while the good ones are kept.

#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cessio_bench::national::Params;

/// The small national register every test here loads: seed 3, 300 parties.
const PARAMS: Params = Params {
    seed: 3,
    scale: 0.0001,
};

fn cessio(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cessio"))
        .args(args)
        .output()
        .expect("running the cessio binary")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cessio-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("register.db").display())
}

#[test]
fn generated_csv_files_load_with_register_parties_then_import() {
    let dir = temp_dir("generated-csv");
    let csv = dir.join("csv");
    cessio_bench::generate::to_csv(&csv, PARAMS).unwrap();
    let db = url(&dir);
    let parties = csv.join("soggetti.csv");
    let communications = csv.join("comunicazioni.csv");
    let text_of_communications = std::fs::read_to_string(&communications).unwrap();
    let rows = text_of_communications.lines().count() - 1;
    // Some communications are of 2023 and name their DL 11/2023 exception (R-OPT-STOP).
    assert!(text_of_communications.contains(";SB_CILAS_NON_COND;10/01/2023;"));

    // Each file, loaded: the summary line of a successful run.
    let load = |command: &str, file: &Path| {
        let out = cessio(&[command, "--database-url", &db, file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    assert_eq!(
        load("register-parties", &parties),
        "registrati 300, già presenti 0, rifiutati 0"
    );
    assert_eq!(
        load("import", &communications),
        format!("registrate {rows}, già presenti 0, rifiutate 0")
    );
    // Both again: nothing registered twice.
    assert_eq!(
        load("register-parties", &parties),
        "registrati 0, già presenti 300, rifiutati 0"
    );
    assert_eq!(
        load("import", &communications),
        format!("registrate 0, già presenti {rows}, rifiutate 0")
    );
    let out = cessio(&["verify", "--database-url", &db]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn register_parties_refuses_bad_rows_one_by_one_and_keeps_the_good_ones() {
    let dir = temp_dir("parties-bad-rows");
    let file = dir.join("soggetti.csv");
    std::fs::write(
        &file,
        "codice_fiscale;denominazione;tipo\n\
         00743110157;Edilizia Bianchi S.r.l.;company\n\
         00743110158;Codice sbagliato S.r.l.;company\n\
         03189950961;Banca Esempio S.p.A.;banca\n\
         \n\
         RSSMRA85T10A562S;Mario Rossi\n\
         RSSMRA85T10A562S;Mario Rossi;person\n\
         10000260017;;company\n\
         12345670017;\"Rossi; Bianchi & C. \"\"Edilizia\"\" s.n.c.\";company\n",
    )
    .unwrap();
    let db = url(&dir);
    let out = cessio(&[
        "register-parties",
        "--database-url",
        &db,
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(
        text(&out.stdout).trim(),
        "registrati 3, già presenti 0, rifiutati 4"
    );
    assert!(
        stderr.contains("riga 3:") && stderr.contains("[cf_invalid]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("riga 4:") && stderr.contains("tipo «banca» sconosciuto"),
        "{stderr}"
    );
    assert!(stderr.contains("riga 6: attese 3 colonne"), "{stderr}");
    assert!(
        stderr.contains("riga 8: denominazione mancante"),
        "{stderr}"
    );

    // A file that is not the registry's format is refused whole, saying what was expected.
    std::fs::write(&file, "cf;nome\n00743110157;X\n").unwrap();
    let out = cessio(&[
        "register-parties",
        "--database-url",
        &db,
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("intestazione attesa «codice_fiscale;denominazione;tipo»"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(&file, [0xff, 0xfe, 0x00]).unwrap();
    let out = cessio(&[
        "register-parties",
        "--database-url",
        &db,
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("UTF-8"), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cessio export` writes F4's CSV as it reads it, into a file that appears only whole: a
/// refused export leaves no file behind, nor a partial one.
#[test]
fn export_writes_the_whole_file_or_none() {
    let dir = temp_dir("export");
    let db = url(&dir);
    let csv = dir.join("csv");
    cessio_bench::generate::to_csv(&csv, PARAMS).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = common::open_store(&db, None).await;
        cessio_bench::generate::to_store(store, PARAMS, 256)
            .await
            .unwrap();
    });
    let parties = std::fs::read_to_string(csv.join("soggetti.csv")).unwrap();
    let bank = parties
        .lines()
        .find(|l| l.ends_with(";bank"))
        .and_then(|l| l.split(';').next())
        .expect("a bank in soggetti.csv");
    let file = dir.join("movimenti.csv");
    let export = |party: &str, filters: &[&str]| {
        let mut args = vec!["export", "--database-url", &db, "--party", party];
        args.extend_from_slice(filters);
        args.extend_from_slice(&["--output", file.to_str().unwrap()]);
        cessio(&args)
    };
    let whole = [
        "--registered-from",
        "2020-01-01",
        "--registered-to",
        "2023-12-31",
    ];
    let out = export(bank, &whole);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.starts_with('\u{feff}'));
    let rows = written.lines().count() - 1;
    assert!(rows > 0, "the bank has movements");
    assert!(
        text(&out.stderr).contains(&format!("{rows} movimenti esportati")),
        "{}",
        text(&out.stderr)
    );
    // Refused exports: no filter besides tracciabilità (F4), a party not registered.
    std::fs::remove_file(&file).unwrap();
    let not_registered = "00000010009";
    for (party, filters) in [(bank, &[][..]), (not_registered, &whole[..])] {
        let out = export(party, filters);
        assert!(!out.status.success());
        assert!(!file.exists(), "{}", text(&out.stderr));
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
