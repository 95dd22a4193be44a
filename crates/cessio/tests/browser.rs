//! Journeys in headless Chromium, driven by playwright-core, against the real binary
//! serving a fresh demo register with a fixed clock: the user guide's journey
//! (`tests/browser/journey.mjs`) and a keyboard-only one (`tests/browser/keyboard.mjs`).
//! Every page they visit is audited at 1280 and 375 px (`tests/browser/audit.mjs`):
//! overlapping text, sideways scrolling, axe-core. Each journey has a server of its own,
//! so that neither depends on what the other changed in the register.
//!
//! Needs Debian's `chromium` and Node.js; `scripts/test.sh` (the README's test command)
//! installs them. Screenshots and the exported CSV land in `target/browser-artifacts/`.
//! `CESSIO_SKIP_BROWSER=1` skips this test on a machine without a browser, saying so.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn chromium() -> Option<PathBuf> {
    let path =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    path.exists().then_some(path)
}

/// Installs the pinned npm packages (playwright-core, axe-core, pdfjs-dist) once; the journeys run
/// in parallel and must not both install into the same folder.
fn npm_ci(dir: &Path) {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if ["playwright-core", "axe-core", "pdfjs-dist"]
        .iter()
        .all(|p| dir.join("node_modules").join(p).exists())
    {
        return;
    }
    let status = Command::new("npm")
        // pdfjs-dist's optional canvas only draws pages; the journey reads their text.
        .args(["ci", "--no-audit", "--no-fund", "--omit=optional"])
        .current_dir(dir)
        .status()
        .expect("npm is needed for the browser tests (scripts/test.sh installs Node.js)");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

#[test]
fn user_guide_journey_in_chromium_with_axe() {
    run_journey("journey.mjs");
}

#[test]
fn keyboard_only_journey_in_chromium() {
    run_journey("keyboard.mjs");
}

/// Serves a fresh demo register and runs one journey script against it.
fn run_journey(script: &str) {
    let Some(chromium) = chromium() else {
        if std::env::var("CESSIO_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("browser journey {script} SKIPPED: no chromium (CESSIO_SKIP_BROWSER=1)");
            return;
        }
        panic!(
            "Chromium not found at /usr/bin/chromium: run scripts/test.sh (it installs Debian's chromium), \
             or set CHROMIUM=/path/to/chromium, or CESSIO_SKIP_BROWSER=1 to skip this test"
        );
    };
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    npm_ci(&here);

    let dir = std::env::temp_dir().join(format!(
        "cessio-browser-{}-{}",
        std::process::id(),
        script.trim_end_matches(".mjs")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("demo.db");
    let server = common::DemoServer::start(&db);
    let url = server.url.clone();

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-artifacts");
    let output = Command::new("node")
        .arg(here.join(script))
        .arg(&url)
        .arg(&artifacts)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node is needed for the browser tests");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    println!("{out}");
    assert!(
        output.status.success(),
        "browser journey {script} failed:\n{out}\n{err}"
    );
}
