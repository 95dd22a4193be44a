//! `cessio serve` with a SPID/CIE provider: the relying party's key is required, and a
//! missing, unreadable or unusable key file stops the start with its path and the reason,
//! before anything is served or any provider contacted.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cessio");
/// Nothing listens there: each start must fail before contacting the provider.
const ISSUER: &str = "http://127.0.0.1:9";

fn serve(dir: &std::path::Path, extra: &[&str]) -> Output {
    let db = format!("sqlite://{}", dir.join("cessio.db").display());
    Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db])
        .args(["--oidc-issuer", ISSUER])
        .args(extra)
        .env_remove("CESSIO_DATABASE_URL")
        .env_remove("CESSIO_OIDC_CLIENT_KEY")
        .env_remove("CESSIO_OIDC_CLIENT_ENC_KEY")
        .env_remove("CESSIO_OIDC_ISSUER")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cessio-oidc-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn issuer_without_client_key_refused() {
    let dir = temp_dir("missing");
    let output = serve(&dir, &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--oidc-issuer needs --oidc-client-key PATH"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unreadable_client_key_refused_with_its_path() {
    let dir = temp_dir("unreadable");
    let path = dir.join("assente.pem");
    let output = serve(&dir, &["--oidc-client-key", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("reading the OpenID client key"), "{text}");
    assert!(text.contains("assente.pem"), "{text}");
}

#[test]
fn client_key_that_is_not_rsa_pem_refused_without_echoing_it() {
    let dir = temp_dir("not-rsa");
    let path = dir.join("chiave.pem");
    std::fs::write(&path, "-----BEGIN PRIVATE KEY-----\nnon-una-chiave\n").unwrap();
    let output = serve(&dir, &["--oidc-client-key", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("non è una chiave privata RSA in PEM"),
        "{text}"
    );
    assert!(!text.contains("non-una-chiave"), "{text}");
}

/// The key UserInfo is encrypted to must be a second key: the signing key given twice is
/// refused, naming the encryption key's file.
#[test]
fn encryption_key_equal_to_the_signing_key_refused() {
    let dir = temp_dir("same-key");
    let path = dir.join("rp.pem");
    std::fs::write(&path, cessio_oidc::RpKey::generate().to_pem()).unwrap();
    let key = path.to_str().unwrap();
    let output = serve(
        &dir,
        &["--oidc-client-key", key, "--oidc-client-enc-key", key],
    );
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("the OpenID client encryption key"), "{text}");
    assert!(text.contains("diversa da quella di firma"), "{text}");
}
