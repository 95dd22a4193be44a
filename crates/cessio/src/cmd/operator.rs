//! `cessio operator add USERNAME`: how a register gets its operators, the first one above
//! all (an empty register has nobody who could sign in and register the rest). The checks
//! and the write are the app's (`App::bootstrap_operator`); this file only reads the
//! password and the PIN, never from the command line, where other users of the machine
//! and the shell's history would see them:
//!
//! - `CESSIO_OPERATOR_PASSWORD` and `CESSIO_OPERATOR_PIN`, for scripts;
//! - otherwise, on a terminal, typed without echo and asked twice;
//! - otherwise one line each from standard input (the password first).

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, Result};
use cessio_app::{AppError, check_password, check_pin_format};

use cessio::register::{DbArgs, app_for};

pub const PASSWORD_ENV: &str = "CESSIO_OPERATOR_PASSWORD";
pub const PIN_ENV: &str = "CESSIO_OPERATOR_PIN";

#[derive(clap::Args, Debug)]
pub struct OperatorArgs {
    #[command(subcommand)]
    command: OperatorCmd,
}

#[derive(clap::Subcommand, Debug)]
enum OperatorCmd {
    /// Create an operator (the first one of an empty register, or another). The password
    /// (at least 12 characters) and the PIN (6 to 12 digits) are read from
    /// CESSIO_OPERATOR_PASSWORD and CESSIO_OPERATOR_PIN, else typed on the terminal without
    /// echo, else one line each from standard input; never from the command line. Exits 2,
    /// writing nothing, when a value is refused or the username is taken.
    Add {
        #[command(flatten)]
        db: DbArgs,
        /// The login name: 1 to 64 letters, digits and . _ - @
        username: String,
        /// The name shown in the pages and the audit log (default: the username).
        #[arg(long)]
        name: Option<String>,
    },
}

/// One secret to read, and the words to ask for it and refuse it with.
struct Secret {
    env: &'static str,
    what: &'static str,
    prompt: &'static str,
    check: fn(&str) -> Result<(), AppError>,
}

const PASSWORD: Secret = Secret {
    env: PASSWORD_ENV,
    what: "la password",
    prompt: "Password dell'operatore (almeno 12 caratteri): ",
    check: check_password,
};

const PIN: Secret = Secret {
    env: PIN_ENV,
    what: "il PIN",
    prompt: "PIN dell'operatore (da 6 a 12 cifre): ",
    check: check_pin_format,
};

/// Why the command refused: said on standard error, exit code 2, nothing written.
struct Refused(String);

impl From<AppError> for Refused {
    fn from(e: AppError) -> Self {
        Refused(e.to_string())
    }
}

pub async fn run(args: OperatorArgs) -> Result<()> {
    let OperatorCmd::Add { db, username, name } = args.command;
    let app = app_for(db.open().await?, None)?;
    let outcome = async {
        // The name first, so that nobody types a password for a login that cannot exist.
        app.check_new_username(&username).await?;
        let mut stdin = std::io::stdin().lock();
        let password = read_secret(&PASSWORD, &mut stdin)?;
        let pin = read_secret(&PIN, &mut stdin)?;
        let display_name = name.as_deref().unwrap_or(&username);
        Ok::<_, Refused>(
            app.bootstrap_operator(&username, display_name, &password, &pin)
                .await?,
        )
    }
    .await;
    match outcome {
        Ok(id) => {
            println!(
                "Operatore «{}» creato (utente {id}): può entrare con nome utente e password",
                username.trim()
            );
            Ok(())
        }
        Err(Refused(message)) => {
            eprintln!("errore: {message}");
            eprintln!("nessuna utenza è stata creata");
            std::process::exit(2);
        }
    }
}

/// A secret from its variable, the terminal or standard input, checked as soon as it is read.
fn read_secret(secret: &Secret, stdin: &mut impl BufRead) -> Result<String, Refused> {
    let value = if let Some(v) = std::env::var_os(secret.env) {
        v.into_string().map_err(|_| {
            Refused(format!(
                "{} di {} non è testo UTF-8",
                secret.what, secret.env
            ))
        })?
    } else if std::io::stdin().is_terminal() {
        let first = prompt(secret.prompt)?;
        (secret.check)(&first)?;
        if prompt("Ripetere per conferma: ")? != first {
            return Err(Refused(format!(
                "{} non coincide con la conferma",
                secret.what
            )));
        }
        first
    } else {
        let mut line = String::new();
        let read = stdin
            .read_line(&mut line)
            .context("reading standard input")
            .map_err(|e| Refused(format!("{e:#}")))?;
        if read == 0 {
            return Err(Refused(format!(
                "manca {}: impostare {} o scriverne il valore su una riga dello standard input",
                secret.what, secret.env
            )));
        }
        let end = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(end);
        line
    };
    (secret.check)(&value)?;
    Ok(value)
}

fn prompt(text: &str) -> Result<String, Refused> {
    rpassword::prompt_password(text)
        .map_err(|e| Refused(format!("lettura dal terminale non riuscita: {e}")))
}

/// The command that creates the first operator on this register, to copy: the same
/// database, with a PostgreSQL URL's password left for the reader to fill in.
pub fn first_operator_hint(url: &str, schema: Option<&str>) -> String {
    let mut command = String::from("cessio operator add NOME_UTENTE");
    if url != "sqlite://cessio.db" {
        command.push_str(&format!(" --database-url '{}'", without_password(url)));
    }
    if let Some(schema) = schema {
        command.push_str(&format!(" --schema '{schema}'"));
    }
    command
}

/// `postgres://user:secret@host/db?password=secret` as
/// `postgres://user:PASSWORD@host/db?password=PASSWORD`: a hint is printed and logged, a
/// password must not be.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:PASSWORD@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                    format!("{key}=PASSWORD")
                }
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{first_operator_hint, without_password};

    #[test]
    fn the_first_operator_hint_names_the_register_but_no_password() {
        assert_eq!(
            first_operator_hint("sqlite://cessio.db", None),
            "cessio operator add NOME_UTENTE"
        );
        assert_eq!(
            first_operator_hint("sqlite:///srv/cessio.db", None),
            "cessio operator add NOME_UTENTE --database-url 'sqlite:///srv/cessio.db'"
        );
        assert_eq!(
            first_operator_hint("postgres://cessio:s3gr3t0@db:5432/registro", Some("prod")),
            "cessio operator add NOME_UTENTE --database-url 'postgres://cessio:PASSWORD@db:5432/registro' --schema 'prod'"
        );
        assert_eq!(
            without_password("postgres://cessio@db/registro?sslmode=require&password=s3gr3t0"),
            "postgres://cessio@db/registro?sslmode=require&password=PASSWORD"
        );
        assert_eq!(
            without_password("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
    }
}
