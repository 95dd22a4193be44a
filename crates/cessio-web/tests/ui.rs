//! The web pages over real HTTP, without a browser: what must hold whether or not
//! JavaScript runs — login and its CSRF binding, CSRF on every form, no session fixation,
//! no open redirect, security headers, session expiry and logout, access to other parties'
//! pages, and a whole cession by plain form posts.

#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

use std::time::Duration;

use support::*;

/// The form posts every page makes, with a body that would be valid but for the token.
const FORMS: &[(&str, &str)] = &[
    ("/esci", ""),
    (
        "/soggetti/00743110157/cessione",
        "step=riepilogo&sel=1&importo_1=1,00&cf_1=03189950961",
    ),
    (
        "/soggetti/00743110157/accettazione",
        "step=conferma&esito=accetta",
    ),
    (
        "/soggetti/00743110157/accettazione/elenco",
        "step=verifica&codici=X&esito=accetta",
    ),
    (
        "/soggetti/RSSMRA45C12F205C/comunicazioni",
        "tipo=superbonus&anno_spesa=2022",
    ),
    (
        "/soggetti/RSSMRA45C12F205C/comunicazioni/annulla",
        "credito=1&chiave=k",
    ),
    (
        "/soggetti/00743110157/deleghe",
        "step=concedi&chiave=k&intermediario=studio&ambito=disposizione",
    ),
    (
        "/operatore/soggetti",
        "chiave=k&cf=RSSMRA45C12F205C&nome=x&natura=persona",
    ),
    ("/operatore/utenti", "username=x&nome=x&password=x&pin=x"),
    (
        "/operatore/deleghe",
        "delega-username=studio&delega-cf=00743110157&azione=revoca",
    ),
    ("/operatore/pin", "sblocco-username=impresa"),
    (
        "/operatore/debiti",
        "chiave=k&debito-cf=00743110157&importo_0=1,00",
    ),
];

fn html(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}

/// The value of the first hidden input with this name.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in the page"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

fn cookie_of(r: &Reply, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.split(';').next().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_login_and_carry_security_headers() {
    let s = Server::start().await;
    let r = s.page("/soggetti/00743110157/monitoraggio", None).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/accesso?dopo=%2Fsoggetti%2F00743110157%2Fmonitoraggio")
    );
    let r = s.page("/accesso", None).await;
    assert_eq!(r.status, 200);
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = html(&r);
    assert!(body.contains("<html lang=\"it\">"));
    assert!(
        !body.contains("<script>") && !body.contains(" style=\""),
        "inline script or style"
    );
    let set = r.header("set-cookie").unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && !set.contains("Secure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_form_is_bound_to_its_browser_and_never_fixes_a_session() {
    let s = Server::start().await;
    let login = s.page("/accesso", None).await;
    let pre = cookie_of(&login, "cessio_prelogin").unwrap();
    let token = hidden(&html(&login), "csrf");
    let body = format!("csrf={token}&username=famiglia&password={PASSWORD}&dopo=%2Fsoggetti");
    // Without the cookie that the form came with (a cross-site post): refused.
    let r = s.form("/accesso", None, &body).await;
    assert_eq!(r.status, 403);
    let r = s
        .form("/accesso", Some(&pre), &body.replace(&token, "altro"))
        .await;
    assert_eq!(r.status, 403);
    // A wrong password: the message next to the field, the same for unknown users.
    let wrong = s
        .form("/accesso", Some(&pre), &body.replace(PASSWORD, "sbagliata"))
        .await;
    assert_eq!(wrong.status, 401);
    let unknown = s
        .form(
            "/accesso",
            Some(&pre),
            &body
                .replace("famiglia", "nessuno")
                .replace(PASSWORD, "sbagliata"),
        )
        .await;
    assert!(html(&wrong).contains("Nome utente o password errati"));
    assert!(html(&unknown).contains("Nome utente o password errati"));
    // A session id planted by an attacker is not adopted: the login issues a new one.
    let planted = format!("{pre}; cessio_session=planted");
    let ok = s.form("/accesso", Some(&planted), &body).await;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.header("location"), Some("/soggetti"));
    let session = cookie_of(&ok, "cessio_session").unwrap();
    assert_ne!(session, "cessio_session=planted");
    assert!(s.page("/soggetti", Some(&session)).await.status < 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_login_only_local_paths_are_followed() {
    let s = Server::start().await;
    for (dopo, expected) in [
        ("%2F%2Fevil.example%2F", "/"),
        ("https%3A%2F%2Fevil.example", "/"),
        ("%2F%5Cevil.example", "/"),
        ("%2Fsoggetti%2F00743110157", "/soggetti/00743110157"),
    ] {
        let login = s.page("/accesso", None).await;
        let pre = cookie_of(&login, "cessio_prelogin").unwrap();
        let token = hidden(&html(&login), "csrf");
        let body = format!("csrf={token}&username=impresa&password={PASSWORD}&dopo={dopo}");
        let r = s.form("/accesso", Some(&pre), &body).await;
        assert_eq!(r.header("location"), Some(expected), "{dopo}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_refuses_a_missing_or_foreign_csrf_token() {
    let s = Server::start().await;
    for user in ["impresa", "operatore"] {
        let cookie = s.login(user).await;
        let before = s.app.store().counts().await.unwrap();
        for (path, body) in FORMS {
            for token in ["", "csrf=0000&"] {
                let r = s.form(path, Some(&cookie), &format!("{token}{body}")).await;
                assert_eq!(r.status, 403, "{user} {path} with {token:?}: {}", html(&r));
                assert!(html(&r).contains("Nessuna operazione è stata eseguita"));
            }
        }
        assert_eq!(
            s.app.store().counts().await.unwrap(),
            before,
            "a refused form changed something"
        );
        // The session is still alive: the refused logout did not log out.
        assert!(s.page("/soggetti", Some(&cookie)).await.status < 400);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_parties_pages_are_refused_alike_whether_or_not_they_exist() {
    let s = Server::start().await;
    let cookie = s.login("famiglia").await;
    let mut bodies = Vec::new();
    for cf in [
        BANK,
        "RSSMRA45C12F205C".replace("RSS", "BNC").as_str(),
        "NONVALIDO",
        "80000000000",
    ] {
        let r = s
            .page(&format!("/soggetti/{cf}/movimenti"), Some(&cookie))
            .await;
        assert_eq!(r.status, 403, "{cf}");
        let b = html(&r);
        let start = b.find("<main").unwrap();
        bodies.push(b[start..].to_string());
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "refusals differ: the registry can be probed"
    );
    assert_eq!(s.page("/operatore", Some(&cookie)).await.status, 403);
    // The own party and a delegated one are open.
    let studio = s.login("studio").await;
    assert_eq!(
        s.page(&format!("/soggetti/{COMPANY}/cessione"), Some(&studio))
            .await
            .status,
        200
    );
    let chooser = html(&s.page("/soggetti", Some(&studio)).await);
    assert!(chooser.contains(COMPANY) && chooser.contains(OTHER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_and_idle_sessions_expire() {
    let s = Server::start_with(|state| state.session_idle = Duration::from_millis(1500)).await;
    let cookie = s.login("impresa").await;
    let home = s.page(&format!("/soggetti/{COMPANY}"), Some(&cookie)).await;
    assert_eq!(home.status, 200);
    let csrf = hidden(&html(&home), "csrf");
    let r = s
        .form("/esci", Some(&cookie), &format!("csrf={csrf}"))
        .await;
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(s.page("/soggetti", Some(&cookie)).await.status, 303);

    let cookie = s.login("impresa").await;
    assert_eq!(
        s.page("/soggetti", Some(&cookie)).await.status,
        303,
        "one party: straight to it"
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let r = s.page(&format!("/soggetti/{COMPANY}"), Some(&cookie)).await;
    assert_eq!(r.status, 303);
    assert!(r.header("location").unwrap().starts_with("/accesso"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_when_served_over_tls() {
    let s = Server::start_with(|state| state.secure_cookies = true).await;
    let r = s.page("/accesso", None).await;
    assert!(r.header("set-cookie").unwrap().contains("; Secure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_served_with_long_caching_under_their_digest() {
    let s = Server::start().await;
    let page = html(&s.page("/accesso", None).await);
    let start = page.find("/static/").unwrap();
    let css = page[start..].split('"').next().unwrap().to_string();
    let r = s.page(&css, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    // A page cached before an upgrade still gets its file, but not for keeps.
    let r = s.page("/static/000000000000/cessio/cessio.css", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(s.page("/static/x/nessuno.css", None).await.status, 404);
}

/// Answers everything a party received from `cedente` (all when empty) through the
/// confirmation page, as a person would.
async fn answer_by_forms(s: &Server, cookie: &str, party: &str, cedente: &str, accept: bool) {
    let esito = if accept { "accetta" } else { "rifiuta" };
    let path = format!("/soggetti/{party}/accettazione");
    let list = html(&s.page(&path, Some(cookie)).await);
    let csrf = hidden(&list, "csrf");
    let filters = format!("tipo=&anno=&cedente={cedente}&esito={esito}");
    let confirm = s
        .form(
            &path,
            Some(cookie),
            &format!("csrf={csrf}&step=conferma&{filters}"),
        )
        .await;
    let confirm = html(&confirm);
    assert!(confirm.contains("irreversibile"), "{confirm}");
    let key = hidden(&confirm, "chiave");
    let body = format!("csrf={csrf}&step=esegui&{filters}&chiave={key}");
    let no_pin = s.form(&path, Some(cookie), &body).await;
    assert_eq!(no_pin.status, 403);
    assert!(html(&no_pin).contains("id=\"pin-errore\""));
    let r = s
        .form(&path, Some(cookie), &format!("{body}&pin={PIN}"))
        .await;
    assert_eq!(r.status, 303, "{}", html(&r));
    let notice = html(&s.page(&path, Some(cookie)).await);
    assert!(notice.contains(if accept {
        "Crediti accettati"
    } else {
        "Crediti rifiutati"
    }));
}

/// R-300 / R-50000: over the 300 rows the table shows, the page still offers the whole
/// export, with its count; only the table asks for narrower filters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_300_the_export_is_offered_with_its_count_above_300_rows() {
    let s = Server::start().await;
    let op = s.app.login("operatore", PASSWORD).await.unwrap();
    let mut csv = String::from(
        "cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione\n",
    );
    for i in 0..80 {
        csv.push_str(&format!(
            "{FAMILY};superbonus;2022;sconto;{COMPANY};{},00;2023-01-10\n",
            1_000 + i
        ));
    }
    let report = s
        .app
        .import_communications(&op, None, csv.as_bytes(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.registered, 80, "{report:?}");
    let cookie = s.login("impresa").await;
    let query = "registrate_dal=01%2F03%2F2024";
    let page = html(
        &s.page(
            &format!("/soggetti/{COMPANY}/movimenti?{query}"),
            Some(&cookie),
        )
        .await,
    );
    assert!(
        page.contains("la tabella ne mostra al massimo 300"),
        "{page}"
    );
    let count: usize = page
        .split("Esporta tutti in CSV (")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .map(|n| n.replace('.', ""))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(count > 300, "{page}");
    let csv = s
        .page(
            &format!("/soggetti/{COMPANY}/movimenti.csv?{query}"),
            Some(&cookie),
        )
        .await;
    assert_eq!(csv.status, 200);
    let lines = String::from_utf8_lossy(&csv.body).lines().count();
    assert_eq!(lines, count + 1, "header and one line per movement");
}

/// "Rifiuta tutti" beside "Accetta tutti", through the same irreversible confirmation; an
/// answer the forms never send is refused rather than read as a refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f3_refuse_all_goes_through_the_irreversible_confirmation() {
    let s = Server::start().await;
    let cookie = s.login("impresa").await;
    let path = format!("/soggetti/{COMPANY}/accettazione");
    let list = html(&s.page(&path, Some(&cookie)).await);
    assert!(
        list.contains("Accetta tutti") && list.contains("Rifiuta tutti"),
        "{list}"
    );
    let csrf = hidden(&list, "csrf");
    let odd = s
        .form(
            &path,
            Some(&cookie),
            &format!("csrf={csrf}&step=conferma&tipo=&anno=&cedente=&esito=forse"),
        )
        .await;
    assert_eq!(odd.status, 422, "{}", html(&odd));
    answer_by_forms(&s, &cookie, COMPANY, "", false).await;
    let after = html(&s.page(&path, Some(&cookie)).await);
    assert!(
        !after.contains("Rifiuta tutti"),
        "nothing left to answer: {after}"
    );
}

/// A cession and its refusal by plain form posts, as a browser without JavaScript does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cession_and_answer_work_with_plain_forms() {
    let s = Server::start().await;
    let cookie = s.login("impresa").await;
    // The company accepts the option communication it received ("Accetta tutti").
    answer_by_forms(&s, &cookie, COMPANY, "", true).await;
    let list = html(
        &s.page(&format!("/soggetti/{COMPANY}/cessione"), Some(&cookie))
            .await,
    );
    let csrf = hidden(&list, "csrf");
    let rata: i64 = hidden(&list, "sel").parse().unwrap();
    // A malformed codice fiscale: refused next to its row, with the rule.
    let bad = s
        .form(
            &format!("/soggetti/{COMPANY}/cessione"),
            Some(&cookie),
            &format!("csrf={csrf}&step=riepilogo&sel={rata}&importo_{rata}=10.000,00&cf_{rata}=03189950962"),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(html(&bad).contains(&format!("id=\"cf_{rata}-errore\"")));
    // Tracciabile Superbonus: only whole (R-PARTIAL), refused in the summary step.
    let partial = s
        .form(
            &format!("/soggetti/{COMPANY}/cessione"),
            Some(&cookie),
            &format!("csrf={csrf}&step=riepilogo&sel={rata}&importo_{rata}=1,00&cf_{rata}={BANK}"),
        )
        .await;
    assert_eq!(partial.status, 422, "{}", html(&partial));
    // The sentence is plain Italian; the rule is a link to its entry on the Regole page.
    let refused = html(&partial);
    assert!(refused.contains("si cede solo per intero"), "{refused}");
    assert!(!refused.contains("(R-PARTIAL)"), "{refused}");
    assert!(
        refused.contains("href=\"/regole#r-partial\">Regola R-PARTIAL</a>"),
        "{refused}"
    );
    let whole = hidden(&list, &format!("importo_{rata}"));
    let summary = s
        .form(
            &format!("/soggetti/{COMPANY}/cessione"),
            Some(&cookie),
            &format!(
                "csrf={csrf}&step=riepilogo&sel={rata}&importo_{rata}={whole}&cf_{rata}={BANK}"
            ),
        )
        .await;
    assert_eq!(summary.status, 200, "{}", html(&summary));
    let summary = html(&summary);
    assert!(summary.contains("Riepilogo della cessione"));
    let key = hidden(&summary, "chiave");
    let cents = hidden(&summary, "l_importo");
    let confirm = format!(
        "csrf={csrf}&chiave={key}&l_rata={rata}&l_importo={cents}&l_cf={BANK}&autorizzo=si&step=conferma"
    );
    // Without the consent to show the cedente's name the cession cannot proceed: the
    // message stands next to the box, and no PIN attempt is spent.
    let unticked = confirm.replace("&autorizzo=si", "");
    let no_consent = s
        .form(
            &format!("/soggetti/{COMPANY}/cessione"),
            Some(&cookie),
            &format!("{unticked}&pin={PIN}"),
        )
        .await;
    assert_eq!(no_consent.status, 422, "{}", html(&no_consent));
    assert!(html(&no_consent).contains("id=\"autorizzo-errore\""));
    let wrong = s
        .form(
            &format!("/soggetti/{COMPANY}/cessione"),
            Some(&cookie),
            &format!("{confirm}&pin=000000"),
        )
        .await;
    assert_eq!(wrong.status, 403);
    assert!(html(&wrong).contains("id=\"pin-errore\""));
    let done = s
        .form(
            &format!("/soggetti/{COMPANY}/cessione"),
            Some(&cookie),
            &format!("{confirm}&pin={PIN}"),
        )
        .await;
    assert_eq!(done.status, 303, "{}", html(&done));
    let receipt = html(
        &s.page(&format!("/soggetti/{COMPANY}/cessione"), Some(&cookie))
            .await,
    );
    assert!(receipt.contains("Cessione comunicata"));
    // The notice links the operation's PDF receipt, which the page's user can download.
    let link = receipt
        .split("href=\"")
        .find(|s| s.contains("ricevuta.pdf"))
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no receipt link: {receipt}"))
        .to_string();
    assert!(
        link.starts_with(&format!("/soggetti/{COMPANY}/operazioni/")),
        "{link}"
    );
    assert!(receipt.contains("Scarica ricevuta (PDF)"), "{receipt}");
    let pdf = s.page(&link, Some(&cookie)).await;
    assert_eq!(pdf.status, 200, "{}", pdf.text());
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));
    assert!(pdf.body.starts_with(b"%PDF-"));
    // F4's rows link the receipt of the operation that recorded each movement.
    let movements = html(
        &s.page(
            &format!("/soggetti/{COMPANY}/movimenti?stato=in_attesa"),
            Some(&cookie),
        )
        .await,
    );
    let row_link = movements
        .split("href=\"")
        .find(|s| s.contains("ricevuta.pdf"))
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no receipt link in F4: {movements}"))
        .to_string();
    let pdf = s.page(&row_link, Some(&cookie)).await;
    assert_eq!(pdf.status, 200, "{row_link}: {}", pdf.text());
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));
    // The same operation id through a party it does not concern: as unknown.
    let other = s.login("altro").await;
    let foreign = s
        .page(
            &link.replace(
                &format!("/soggetti/{COMPANY}/"),
                &format!("/soggetti/{OTHER}/"),
            ),
            Some(&other),
        )
        .await;
    assert_eq!(foreign.status, 404, "{}", html(&foreign));
    // The same confirmation posted again (a double click) cedes nothing more.
    let again = s
        .form(
            &format!("/soggetti/{COMPANY}/cessione"),
            Some(&cookie),
            &format!("{confirm}&pin={PIN}"),
        )
        .await;
    assert_eq!(again.status, 303);
    let receipt = html(
        &s.page(&format!("/soggetti/{COMPANY}/cessione"), Some(&cookie))
            .await,
    );
    assert!(receipt.contains("nessuna cessione ripetuta"), "{receipt}");

    // The bank refuses it (after R-WAIT5's five working days: a later cession of a
    // tracciabile credit): confirmation first (irreversible), then the PIN.
    s.clock.advance(chrono::Duration::days(8));
    let bank = s.login("banca").await;
    answer_by_forms(&s, &bank, BANK, COMPANY, false).await;
    let after = html(
        &s.page(&format!("/soggetti/{COMPANY}/cessione"), Some(&cookie))
            .await,
    );
    assert!(
        after.contains(&whole),
        "the refused amount is not cedible again"
    );
}

/// The operator records a debt position (the input of R-BAN-100K and R-BAN-1500): what the
/// law counts is shown back; a malformed amount is refused next to its field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_records_a_debt_position_by_form() {
    let s = Server::start().await;
    let op = s.login("operatore").await;
    let page = html(&s.page("/operatore", Some(&op)).await);
    let csrf = hidden(&page, "csrf");
    let key = hidden(&page, "chiave");
    let bad = s
        .form(
            "/operatore/debiti",
            Some(&op),
            &format!("csrf={csrf}&chiave={key}&debito-cf={COMPANY}&natura_0=erariale&importo_0=12%2C345&piano_0=nessuna&scaduto_0=si"),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(
        html(&bad).contains("id=\"importo_0-errore\""),
        "{}",
        html(&bad)
    );
    let ok = s
        .form(
            "/operatore/debiti",
            Some(&op),
            &format!(
                "csrf={csrf}&chiave={key}&debito-cf={COMPANY}\
                 &natura_0=erariale&importo_0=150.000%2C00&sospeso_0=40.000%2C00&piano_0=nessuna&scaduto_0=si\
                 &natura_1=altro&importo_1=9.000%2C00&piano_1=nessuna&scaduto_1=si"
            ),
        )
        .await;
    assert_eq!(ok.status, 303, "{}", html(&ok));
    let after = html(&s.page("/operatore", Some(&op)).await);
    assert!(after.contains("Posizione debitoria registrata"), "{after}");
    assert!(
        after.contains("110.000,00 €"),
        "counted for R-BAN-100K: {after}"
    );
}

/// A client that sends its headers and then stalls on the body gets an answer (408) after
/// the request timeout instead of holding the connection forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_times_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start_with(|state| state.request_timeout = Duration::from_millis(300)).await;
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    c.write_all(
        b"POST /api/v1/session HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .expect("no answer to a stalled request")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(head.contains("request_timeout"));
}

/// Every page × every kind of caller: anonymous (to the login), the titolare, its delegated
/// intermediary, another titolare, an intermediary whose delegation was revoked, the
/// operator. A page the caller may not see answers like a party that does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_matrix_every_page() {
    let s = Server::start().await;
    let op = s.app.login("operatore", PASSWORD).await.unwrap();
    company_intermediary(&s.app, "revocato", "Revocato").await;
    s.app
        .revoke_delegation(&op, "revocato", COMPANY)
        .await
        .unwrap();
    let base = format!("/soggetti/{COMPANY}");
    let pages = [
        base.clone(),
        format!("{base}/monitoraggio"),
        format!("{base}/cessione"),
        format!("{base}/accettazione"),
        format!("{base}/movimenti?anno=2024"),
        format!("{base}/movimenti.csv?anno=2024"),
        format!("{base}/comunicazioni"),
        format!("{base}/f24"),
        "/operatore".to_string(),
        // Only the titolare (and the operator) manages the party's delegations.
        format!("{base}/deleghe"),
    ];
    let callers: [(&str, Option<&str>, [u16; 10]); 6] = [
        ("anonymous", None, [303; 10]),
        (
            "titolare",
            Some("impresa"),
            [200, 200, 200, 200, 200, 200, 200, 200, 403, 200],
        ),
        (
            "delegated",
            Some("studio"),
            [200, 200, 200, 200, 200, 200, 200, 200, 403, 403],
        ),
        ("other titolare", Some("altro"), [403; 10]),
        ("revoked delegation", Some("revocato"), [403; 10]),
        ("operator", Some("operatore"), [200; 10]),
    ];
    for (who, user, expected) in callers {
        let cookie = match user {
            Some(u) => Some(s.login(u).await),
            None => None,
        };
        for (page, want) in pages.iter().zip(expected) {
            let r = s.page(page, cookie.as_deref()).await;
            assert_eq!(r.status, want, "{who} on {page}: {}", html(&r));
            if want == 303 {
                assert!(r.header("location").unwrap().starts_with("/accesso?dopo="));
            }
        }
    }
}

/// The operator suspends a pending communication from the controls page (R-SUSP): the
/// holder's Accettazione shows it suspended and offers no answer; voided, it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_suspends_and_voids_a_communication_by_form() {
    let s = Server::start().await;
    let op = s.login("operatore").await;
    let rows = s
        .get(
            &format!("/api/v1/parties/{COMPANY}/movements?type_key=superbonus"),
            &op,
        )
        .await
        .json();
    let transfer = rows[0]["id"].as_i64().unwrap();
    let page = html(&s.page("/operatore/controlli", Some(&op)).await);
    let csrf = hidden(&page, "csrf");
    let bad = s
        .form(
            "/operatore/controlli",
            Some(&op),
            &format!("csrf={csrf}&azione=sospendi&chiave=k1&movimento=abc&giorni=10&motivo=x"),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(html(&bad).contains("id=\"movimento-errore\""));
    let r = s
        .form(
            "/operatore/controlli",
            Some(&op),
            &format!("csrf={csrf}&azione=sospendi&chiave=k2&movimento={transfer}&giorni=10&motivo=verifica"),
        )
        .await;
    assert_eq!(r.status, 303, "{}", html(&r));
    assert!(
        html(&s.page("/operatore/controlli", Some(&op)).await).contains("Comunicazione sospesa")
    );
    let holder = s.login("impresa").await;
    let acc = html(
        &s.page(&format!("/soggetti/{COMPANY}/accettazione"), Some(&holder))
            .await,
    );
    assert!(acc.contains("Sospesa dall'Agenzia"), "{acc}");
    let r = s
        .form(
            "/operatore/controlli",
            Some(&op),
            &format!(
                "csrf={csrf}&azione=fine-sospensione&chiave=k3&movimento={transfer}&esito=annulla"
            ),
        )
        .await;
    assert_eq!(r.status, 303, "{}", html(&r));
    assert!(html(&s.page("/operatore/controlli", Some(&op)).await).contains("non effettuata"));
}

/// The Guida is open before the login, linked from the header of every page (signed in
/// or not), and its table of contents points only at sections it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guide_is_open_to_everyone_and_linked_from_every_header() {
    let s = Server::start().await;
    let guide = s.page("/guida", None).await;
    assert_eq!(guide.status, 200);
    let body = html(&guide);
    for figure in ["300 righe", "1.000 operazioni", "50.000 righe", "PIN"] {
        assert!(body.contains(figure), "the guide does not state {figure}");
    }
    let mut anchors = 0;
    for link in body.split("href=\"#").skip(1) {
        let anchor = link.split('"').next().unwrap();
        assert!(
            body.contains(&format!("id=\"{anchor}\"")),
            "the table of contents links #{anchor}, which the guide lacks"
        );
        anchors += 1;
    }
    assert!(anchors >= 10, "a table of contents was expected");
    assert!(html(&s.page("/accesso", None).await).contains("href=\"/guida\""));

    let cookie = s.login("impresa").await;
    for page in [
        format!("/soggetti/{COMPANY}"),
        format!("/soggetti/{COMPANY}/cessione"),
    ] {
        let r = s.page(&page, Some(&cookie)).await;
        assert!(html(&r).contains("href=\"/guida\""), "no Guida on {page}");
    }
    let signed_in = html(&s.page("/guida", Some(&cookie)).await);
    assert!(
        signed_in.contains("Esci"),
        "the guide drops the signed-in header"
    );
}

/// A person reads a credit type by its Italian name, never by its catalogue key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_name_credit_types_in_italian() {
    let s = Server::start().await;
    let cookie = s.login("impresa").await;
    let list = html(
        &s.page(
            &format!("/soggetti/{COMPANY}/movimenti?tipo=superbonus"),
            Some(&cookie),
        )
        .await,
    );
    assert!(list.contains("<td>Superbonus</td>"), "{list}");
    assert!(!list.contains("<td>superbonus</td>"));
}

/// The Regole page is open to everyone, linked from the Guida and every footer, and has
/// an entry with its anchor for every rule of the specification (and F2, the consent to
/// show the cedente's name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_page_lists_every_rule_with_its_anchor() {
    const RULES: &[&str] = &[
        "R-CF",
        "R-CF-EXISTS",
        "R-PARTIAL",
        "R-PENDING-OUT",
        "R-CHAIN",
        "R-BANK-CLIENT",
        "R-ONCE",
        "R-PA",
        "R-ECO-2018",
        "R-WAIT5",
        "R-ANSWER",
        "R-300",
        "R-1000",
        "R-50000",
        "R-HISTORY",
        "R-CONSERVE",
        "R-F24-CHOICE",
        "R-F24-FUTURE",
        "R-F24-OVER",
        "R-F24-WINDOW-121",
        "R-F24-WINDOW-122",
        "R-BAN-100K",
        "R-BAN-1500",
        "R-SPLIT-ELIGIBLE",
        "R-SPLIT-CENTS",
        "R-SPLIT-NOCEDE",
        "R-SPLIT-ANNUL",
        "R-OPT-STOP",
        "R-OPT-ANNUL",
        "R-RENT",
        "R-SUSP",
        "R-SEIZE",
        "F2",
    ];
    let s = Server::start().await;
    let r = s.page("/regole", None).await;
    assert_eq!(r.status, 200);
    let body = html(&r);
    for rule in RULES {
        let anchor = rule.to_ascii_lowercase();
        assert!(
            body.contains(&format!("id=\"{anchor}\"")),
            "no entry #{anchor} for {rule}"
        );
    }
    assert!(body.contains("Fonte: art. 121 c.1-quater DL 34/2020"));
    for link in body.split("href=\"#").skip(1) {
        let anchor = link.split('"').next().unwrap();
        assert!(
            body.contains(&format!("id=\"{anchor}\"")),
            "#{anchor} missing"
        );
    }
    assert!(html(&s.page("/guida", None).await).contains("href=\"/regole\""));
    assert!(html(&s.page("/accesso", None).await).contains("href=\"/regole\""));
}

/// The titolare delegates its studio from the Deleghe page, linked from its home: a
/// refusal stands next to its field (PIN, end date, intermediary), the studio's chooser
/// shows the scope and the last day, and a revocation takes effect at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_titolare_grants_and_revokes_by_form() {
    let s = Server::start().await;
    let cookie = s.login("famiglia").await;
    let base = format!("/soggetti/{FAMILY}/deleghe");
    let home = html(&s.page(&format!("/soggetti/{FAMILY}"), Some(&cookie)).await);
    assert!(home.contains(&format!("href=\"{base}\"")), "{home}");
    let page = s.page(&base, Some(&cookie)).await;
    assert_eq!(page.status, 200);
    let page = html(&page);
    assert!(page.contains("Nessuna delega concessa"));
    let csrf = hidden(&page, "csrf");
    let key = hidden(&page, "chiave");
    let grant = format!(
        "csrf={csrf}&step=concedi&chiave={key}&intermediario=studio&ambito=consultazione&fino-al=31%2F12%2F2024"
    );
    let no_pin = s.form(&base, Some(&cookie), &grant).await;
    assert_eq!(no_pin.status, 403, "{}", html(&no_pin));
    assert!(html(&no_pin).contains("id=\"pin-errore\""));
    assert!(
        html(&no_pin).contains("value=\"studio\""),
        "what was typed stays"
    );
    let past = s
        .form(
            &base,
            Some(&cookie),
            &format!(
                "{}&pin={PIN}",
                grant.replace("31%2F12%2F2024", "29%2F02%2F2024")
            ),
        )
        .await;
    assert_eq!(past.status, 422);
    assert!(html(&past).contains("id=\"fino-al-errore\""));
    let nobody = s
        .form(
            &base,
            Some(&cookie),
            &format!("{}&pin={PIN}", grant.replace("=studio", "=nessuno")),
        )
        .await;
    assert_eq!(nobody.status, 404);
    assert!(html(&nobody).contains("id=\"intermediario-errore\""));
    let done = s
        .form(&base, Some(&cookie), &format!("{grant}&pin={PIN}"))
        .await;
    assert_eq!(done.status, 303, "{}", html(&done));
    assert_eq!(done.header("location"), Some(base.as_str()));
    let listed = html(&s.page(&base, Some(&cookie)).await);
    assert!(listed.contains("Delega concessa"), "{listed}");
    assert!(listed.contains("fino al 31/12/2024 (incluso)"));
    assert!(listed.contains("Attiva") && listed.contains(" da famiglia"));

    let studio = s.login("studio").await;
    let chooser = html(&s.page("/soggetti", Some(&studio)).await);
    assert!(chooser.contains("Mario Rossi"), "{chooser}");
    assert!(chooser.contains("Delega: consultazione, fino al 31/12/2024 (incluso)"));
    assert!(chooser.contains("Delega: consultazione e disposizione, fino a revoca"));
    let seen = s
        .page(&format!("/soggetti/{FAMILY}/monitoraggio"), Some(&studio))
        .await;
    assert_eq!(seen.status, 200);
    assert_eq!(s.page(&base, Some(&studio)).await.status, 403);

    let page = html(&s.page(&base, Some(&cookie)).await);
    let key = hidden(&page[page.find("value=\"revoca\"").unwrap()..], "chiave");
    let revoke = format!("csrf={csrf}&step=revoca&chiave={key}&revoca-intermediario=studio");
    let no_pin = s.form(&base, Some(&cookie), &revoke).await;
    assert_eq!(no_pin.status, 403);
    assert!(html(&no_pin).contains("id=\"pin-revoca-errore\""));
    let revoked = s
        .form(&base, Some(&cookie), &format!("{revoke}&pin-revoca={PIN}"))
        .await;
    assert_eq!(revoked.status, 303, "{}", html(&revoked));
    let listed = html(&s.page(&base, Some(&cookie)).await);
    assert!(listed.contains("Delega revocata") && listed.contains("Revocata"));
    let gone = s
        .page(&format!("/soggetti/{FAMILY}/monitoraggio"), Some(&studio))
        .await;
    assert_eq!(gone.status, 403);
}

/// R-OPT-STOP on the page: the exceptions are a list with Italian labels, every fact field
/// says which exceptions need it, and a refusal is shown next to the field at fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_opt_stop_page_offers_the_exceptions_and_shows_errors_next_to_the_fact() {
    let s = Server::start().await;
    let family = s.login("famiglia").await;
    let path = format!("/soggetti/{FAMILY}/comunicazioni");
    let page = html(&s.page(&path, Some(&family)).await);
    assert!(
        page.contains("<option value=\"SB_CILAS_NON_COND\">1. Superbonus – interventi diversi dai condomìni con CILAS presentata entro il 16/02/2023</option>"),
        "{page}"
    );
    assert!(page.contains("name=\"data_cilas\""));
    assert!(page.contains("name=\"data_fattura\""));
    assert!(page.contains("name=\"acconto_versato\""));
    assert!(page.contains("name=\"requisito_barriere\""));
    assert!(
        page.contains("Serve per le eccezioni 1, 2, 9, 10."),
        "{page}"
    );
    let csrf = hidden(&page, "csrf");
    let post = |extra: &str| {
        format!(
            "csrf={csrf}&chiave=k-{}&tipo=superbonus&anno_spesa=2023&origine=sconto&cf_cessionario={COMPANY}&importo=1.000%2C00&pin={PIN}{extra}",
            extra.len()
        )
    };
    // No exception: refused next to the list.
    let r = s.form(&path, Some(&family), &post("")).await;
    assert_eq!(r.status, 422);
    let body = html(&r);
    assert!(body.contains("id=\"eccezione-errore\""), "{body}");
    assert!(body.contains("17/02/2023"), "{body}");
    // Free text is not a choice of the list.
    let r = s
        .form(
            &path,
            Some(&family),
            &post("&eccezione=CILAS+presentata+entro+il+16%2F02%2F2023"),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(html(&r).contains("id=\"eccezione-errore\""));
    // A CILAS filed after the stop: the message sits under the CILAS date.
    let r = s
        .form(
            &path,
            Some(&family),
            &post("&eccezione=SB_CILAS_NON_COND&data_cilas=20%2F02%2F2023"),
        )
        .await;
    assert_eq!(r.status, 422);
    let body = html(&r);
    let error = body
        .split("id=\"data_cilas-errore\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no error under data_cilas: {body}"));
    assert!(error.starts_with("Eccezione SB_CILAS_NON_COND"), "{error}");
    assert!(error.contains("20/02/2023") && error.contains("16/02/2023"));
    // The form keeps what was typed.
    assert!(body.contains("<option value=\"SB_CILAS_NON_COND\" selected>"));
    assert!(body.contains("value=\"20/02/2023\""));
    // A date that is not a date is refused by the page itself, next to its field.
    let r = s
        .form(
            &path,
            Some(&family),
            &post("&eccezione=SB_CILAS_NON_COND&data_cilas=ieri"),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(html(&r).contains("id=\"data_cilas-errore\""));
    // Filed in time: registered.
    let r = s
        .form(
            &path,
            Some(&family),
            &post("&eccezione=SB_CILAS_NON_COND&data_cilas=10%2F01%2F2023"),
        )
        .await;
    assert_eq!(r.status, 303, "{}", html(&r));
    // The notice offers the communication's receipt, which downloads.
    let next = r.header("location").unwrap().to_string();
    let page = html(&s.page(&next, Some(&family)).await);
    let href = page
        .split("href=\"")
        .map(|rest| rest.split('"').next().unwrap_or_default())
        .find(|h| h.contains("/operazioni/") && h.ends_with("/ricevuta.pdf"))
        .unwrap_or_else(|| panic!("no receipt link in the notice: {page}"))
        .to_string();
    let pdf = s.page(&href, Some(&family)).await;
    assert_eq!(pdf.status, 200, "{href}");
    assert!(pdf.body.starts_with(b"%PDF-"), "{href}");
}

/// F3 by a list on the page: the rows checked and shown first (what each would answer, why
/// one cannot), then answered with the PIN, each row's outcome kept on the page after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f3_answer_by_list_shows_each_row_before_and_after() {
    let s = Server::start().await;
    let protocol = superbonus_to(&s.app, "lista", BANK, 400_000).await.protocol;
    let cookie = s.login("banca").await;
    let home = html(
        &s.page(&format!("/soggetti/{BANK}/accettazione"), Some(&cookie))
            .await,
    );
    assert!(home.contains("/accettazione/elenco"), "{home}");
    let path = format!("/soggetti/{BANK}/accettazione/elenco");
    let form = html(&s.page(&path, Some(&cookie)).await);
    let csrf = hidden(&form, "csrf");
    // Nothing pasted: refused next to the text area.
    let empty = s
        .form(
            &path,
            Some(&cookie),
            &format!("csrf={csrf}&step=verifica&codici=&esito=accetta"),
        )
        .await;
    assert_eq!(empty.status, 422);
    assert!(html(&empty).contains("codici-errore"), "{}", html(&empty));
    // The protocol in lower case and an unknown code, one per line.
    let codes = format!("{}%0D%0ANON-ESISTE", protocol.to_lowercase());
    let confirm = s
        .form(
            &path,
            Some(&cookie),
            &format!("csrf={csrf}&step=verifica&codici={codes}&esito=accetta"),
        )
        .await;
    let page = html(&confirm);
    assert_eq!(confirm.status, 200, "{page}");
    assert!(
        page.contains("Stai per <strong>accettare</strong> 4 operazioni"),
        "{page}"
    );
    assert!(page.contains("Non eseguibile"), "{page}");
    let key = hidden(&page, "chiave");
    let wrong = s
        .form(
            &path,
            Some(&cookie),
            &format!(
                "csrf={csrf}&step=esegui&codici={codes}&esito=accetta&chiave={key}&pin=000000"
            ),
        )
        .await;
    assert_eq!(wrong.status, 403, "{}", html(&wrong));
    let done = s
        .form(
            &path,
            Some(&cookie),
            &format!("csrf={csrf}&step=esegui&codici={codes}&esito=accetta&chiave={key}&pin={PIN}"),
        )
        .await;
    // Answered as a bulk job: its page, once the job has ended, has every row and the
    // operation's receipt.
    let done = s.job_page(&done, &cookie).await;
    let page = html(&done);
    assert_eq!(done.status, 200, "{page}");
    assert!(page.contains("Crediti accettati per elenco"), "{page}");
    assert!(
        page.contains("Esito di ogni riga") && page.contains("NON-ESISTE"),
        "{page}"
    );
    assert!(
        page.contains("Eseguite 1,") && page.contains("scartate 1"),
        "{page}"
    );
    let receipt = page
        .split("href=\"")
        .skip(1)
        .map(|h| h.split('"').next().unwrap_or(""))
        .find(|h| h.ends_with("/ricevuta.pdf"))
        .unwrap_or_else(|| panic!("no receipt link: {page}"))
        .to_string();
    let pdf = s.page(&receipt, Some(&cookie)).await;
    assert_eq!(pdf.status, 200);
    assert!(pdf.body.starts_with(b"%PDF"));
    // The list is answered: checked again, nothing is left to answer.
    let again = s
        .form(
            &path,
            Some(&cookie),
            &format!("csrf={csrf}&step=verifica&codici={codes}&esito=accetta"),
        )
        .await;
    assert!(
        html(&again).contains("Nessuna riga dell"),
        "{}",
        html(&again)
    );
}
