//! The first start of a production register, as its administrator does it, on both
//! backends: `cessio serve` on an empty register says how to create the first operator;
//! `cessio operator add` creates it from environment variables or standard input (never
//! from the command line), refuses a malformed PIN, a weak password or a taken username
//! with exit code 2 and nothing written; and the new operator signs in, through the app
//! (password and PIN) and through the server's login.

#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use cessio_app::App;
use cessio_core::catalogue::Catalogue;
use cessio_core::time::SystemClock;
use cessio_test_support::http::Request;

const BIN: &str = env!("CARGO_BIN_EXE_cessio");
const PASSWORD: &str = "una-password-lunga";
const PIN: &str = "24681357";
const HINT: &str = "cessio operator add NOME_UTENTE";

/// Where the register is: the arguments every `cessio` command gets.
struct Db {
    url: String,
    schema: Option<String>,
}

impl Db {
    fn args(&self) -> Vec<String> {
        let mut a = vec!["--database-url".to_string(), self.url.clone()];
        if let Some(s) = &self.schema {
            a.extend(["--schema".to_string(), s.clone()]);
        }
        a
    }

    async fn app(&self) -> App {
        let store = common::open_store(&self.url, self.schema.as_deref()).await;
        App::new(
            store,
            Arc::new(SystemClock),
            Arc::new(Catalogue::builtin().unwrap()),
        )
    }
}

/// A `cessio` command with only the variables given (none inherited that could change
/// where the register is or where the secrets come from), fed `stdin` if any.
fn cessio(db: &Db, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args(db.args())
        .env_remove("CESSIO_DATABASE_URL")
        .env_remove("CESSIO_DATABASE_SCHEMA")
        .env_remove("CESSIO_OPERATOR_PASSWORD")
        .env_remove("CESSIO_OPERATOR_PIN")
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn add(db: &Db, username: &str, password: &str, pin: &str) -> Output {
    cessio(
        db,
        &["operator", "add", username],
        &[
            ("CESSIO_OPERATOR_PASSWORD", password),
            ("CESSIO_OPERATOR_PIN", pin),
        ],
        None,
    )
}

/// Asserts a refusal: exit code 2, the reason on standard error, no success said.
fn assert_refused(out: &Output, reason: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(reason), "«{reason}» not in: {stderr}");
    assert!(stderr.contains("nessuna utenza è stata creata"), "{stderr}");
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
}

/// Nobody was created: no operator, and no user of any name tried.
async fn assert_empty(db: &Db) {
    let app = db.app().await;
    assert!(!app.has_operator().await.unwrap());
    for name in ["primo", "primo operatore"] {
        assert!(app.store().user_by_name(name).await.unwrap().is_none());
    }
}

/// Starts `cessio serve` on an ephemeral port; returns it, its address, and what it wrote
/// on standard error until it listened.
fn serve(db: &Db) -> (Child, String, String) {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(db.args())
        .args(["--listen", "127.0.0.1:0", "--keep-monitoring", "0"])
        .env_remove("CESSIO_DATABASE_URL")
        .env_remove("CESSIO_DATABASE_SCHEMA")
        .env_remove("CESSIO_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server exited before listening")
            .unwrap();
        if let Some(rest) = line.split("in ascolto su http://").nth(1) {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    // What the server says before it listens is on standard error by now; read it without
    // waiting for more.
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut said = Vec::new();
    while let Ok(piece) = rx.recv_timeout(Duration::from_millis(500)) {
        said.extend(piece);
    }
    (child, addr, text(&said))
}

fn stop(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The server's login (`POST /api/v1/session`): the status of its answer.
async fn http_login(addr: &str, username: &str, password: &str) -> u16 {
    let body = serde_json::json!({ "username": username, "password": password }).to_string();
    Request::post("/api/v1/session")
        .json(&body)
        .send(addr.parse().unwrap())
        .await
        .expect("no answer to the login")
        .status
}

async fn first_start(db: Db) {
    // An empty register: the server says, before anything else, how to create the first
    // operator, with this register's address.
    let (server, _, said) = serve(&db);
    stop(server);
    assert!(said.contains(HINT), "no hint on standard error: {said}");
    assert!(
        said.contains("CESSIO_OPERATOR_PASSWORD") && said.contains("CESSIO_OPERATOR_PIN"),
        "{said}"
    );
    if db.url.starts_with("sqlite://") {
        assert!(said.contains(&db.url), "{said}");
    }
    if let Some(schema) = &db.schema {
        assert!(said.contains(&format!("--schema '{schema}'")), "{said}");
    }
    assert!(!db.app().await.has_operator().await.unwrap());

    // The password and the PIN never come from the command line.
    let out = cessio(
        &db,
        &["operator", "add", "primo", "--password", PASSWORD],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unexpected argument"),
        "{}",
        text(&out.stderr)
    );
    let out = cessio(&db, &["operator", "add", "primo", PASSWORD, PIN], &[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unexpected argument"),
        "{}",
        text(&out.stderr)
    );

    // Malformed PINs, a weak password, a malformed username: refused, nothing written.
    for pin in ["12ab56", "12345", "1234567890123", ""] {
        assert_refused(&add(&db, "primo", PASSWORD, pin), "pin: da 6 a 12 cifre");
    }
    assert_refused(
        &add(&db, "primo", "corta", PIN),
        "password: almeno 12 caratteri",
    );
    assert_refused(
        &add(&db, "primo operatore", PASSWORD, PIN),
        "username: da 1 a 64 caratteri",
    );
    // No variables and nothing on standard input: refused, not waited for.
    assert_refused(
        &cessio(&db, &["operator", "add", "primo"], &[], None),
        "CESSIO_OPERATOR_PASSWORD",
    );
    assert_empty(&db).await;

    // The first operator, from the variables.
    let out = add(&db, "primo", PASSWORD, PIN);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Operatore «primo» creato"),
        "{}",
        text(&out.stdout)
    );
    let app = db.app().await;
    assert!(app.has_operator().await.unwrap());
    let p = app.login("primo", PASSWORD).await.unwrap();
    assert!(p.is_operator());
    app.check_pin(&p, Some(PIN)).await.unwrap();
    assert!(app.login("primo", "un'altra-password").await.is_err());

    // The same username again: refused, and the first one's password still the one.
    assert_refused(
        &add(&db, "primo", "una-password-diversa", "11223344"),
        "Il nome utente 'primo' è già in uso",
    );
    assert!(app.login("primo", "una-password-diversa").await.is_err());
    app.login("primo", PASSWORD).await.unwrap();

    // A second operator from standard input, one line each, as a script may pipe them;
    // a variable, when set, takes the place of its line.
    let out = cessio(
        &db,
        &["operator", "add", "secondo", "--name", "Seconda Operatrice"],
        &[],
        Some("password-da-stdin\r\n13572468\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let p = app.login("secondo", "password-da-stdin").await.unwrap();
    assert_eq!(p.display_name, "Seconda Operatrice");
    app.check_pin(&p, Some("13572468")).await.unwrap();
    let out = cessio(
        &db,
        &["operator", "add", "terzo"],
        &[("CESSIO_OPERATOR_PIN", "97531864")],
        Some("password-del-terzo\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let p = app.login("terzo", "password-del-terzo").await.unwrap();
    app.check_pin(&p, Some("97531864")).await.unwrap();

    // Now the server has no hint to give, and the operator signs in through it.
    let (server, addr, said) = serve(&db);
    let status = http_login(&addr, "primo", PASSWORD).await;
    let refused = http_login(&addr, "primo", "una-password-diversa").await;
    stop(server);
    assert!(!said.contains(HINT), "{said}");
    assert_eq!((status, refused), (200, 401));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_sqlite() {
    let dir = std::env::temp_dir().join(format!("cessio-first-start-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("registro.db").display());
    first_start(Db { url, schema: None }).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_postgres() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let schema = format!("first_start_{}", std::process::id());
    common::drop_schema(&url, &schema).await;
    first_start(Db {
        url: url.clone(),
        schema: Some(schema.clone()),
    })
    .await;
    common::drop_schema(&url, &schema).await;
}
