//! The demo register: realistic parties (a family, a condominium, a building company, a
//! bank, an intermediary with delegations, a municipality, an operator) and credits in every
//! state F1–F4 can show. It is built through the app layer, with a clock that walks through
//! 2023 and 2024 so that waiting periods (R-WAIT5) have passed when the demo starts.

use std::sync::Arc;

use anyhow::{Context, Result};
use cessio_app::{App, CessionLine, IncomingFilter, OptionInput, Principal};
use cessio_core::catalogue::{Catalogue, Origin};
use cessio_core::money::Cents;
use cessio_core::time::FixedClock;
use cessio_store::{PartyKind, Role, Store};
use chrono::NaiveDate;

pub const PASSWORD: &str = "cessio-demo-2024";

/// The demo's "today" (Europe/Rome), when `serve --demo` is not given a `--clock`: early
/// 2025, with the 2025 rate usable and the waiting periods of the seeded cessions over.
pub fn today() -> anyhow::Result<chrono::NaiveDateTime> {
    date(2025, 2, 3)?
        .and_hms_opt(10, 0, 0)
        .ok_or_else(|| anyhow::anyhow!("demo date"))
}
pub const PIN: &str = "246810";

pub struct Login {
    pub username: &'static str,
    pub who: &'static str,
}

pub const LOGINS: &[Login] = &[
    Login {
        username: "operatore",
        who: "operatore dell'Agenzia (anagrafe, deleghe, sblocco PIN)",
    },
    Login {
        username: "mario.rossi",
        who: "Mario Rossi, persona fisica, beneficiario",
    },
    Login {
        username: "bianchi",
        who: "Impresa Edile Bianchi S.r.l., fornitore",
    },
    Login {
        username: "banca",
        who: "Banca Esempio S.p.A., cessionario",
    },
    Login {
        username: "studio.verdi",
        who: "Studio Verdi, intermediario delegato da Mario Rossi, dal Condominio e da Bianchi",
    },
];

const ROSSI: &str = "RSSMRA45C12F205C";
const CONDOMINIO: &str = "10427800114";
const BIANCHI: &str = "00743110157";
const BANCA: &str = "03189950961";
const STUDIO: &str = "00567410014";
const COMUNE: &str = "00140869991";

fn date(y: i32, m: u32, d: u32) -> Result<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d).context("demo date")
}

pub async fn seed(store: Arc<dyn Store>) -> Result<()> {
    let clock = FixedClock::at_rome(2023, 2, 10, 9, 30);
    let app = App::new(
        store,
        Arc::new(clock.clone()),
        Arc::new(Catalogue::builtin()?),
    );
    app.bootstrap_operator("operatore", "Operatore Agenzia", PASSWORD, PIN)
        .await?;
    let op = app.login("operatore", PASSWORD).await?;
    let mut n = 0u32;
    let mut key = || {
        n += 1;
        format!("demo-{n}")
    };
    for (cf, name, kind) in [
        (ROSSI, "Mario Rossi", PartyKind::Person),
        (CONDOMINIO, "Condominio Via Roma 12", PartyKind::Company),
        (BIANCHI, "Impresa Edile Bianchi S.r.l.", PartyKind::Company),
        (BANCA, "Banca Esempio S.p.A.", PartyKind::Bank),
        (
            STUDIO,
            "Studio Verdi Commercialisti Associati",
            PartyKind::Company,
        ),
        (COMUNE, "Comune di Esempio", PartyKind::PublicAdministration),
    ] {
        app.register_party(&op, &key(), cf, name, kind).await?;
    }
    for (username, name, cf) in [
        ("mario.rossi", "Mario Rossi", ROSSI),
        ("bianchi", "Giulia Bianchi (Impresa Edile Bianchi)", BIANCHI),
        ("banca", "Ufficio crediti fiscali, Banca Esempio", BANCA),
        ("studio.verdi", "Dott.ssa Anna Verdi", STUDIO),
    ] {
        app.create_user(&op, username, name, PASSWORD, PIN, Some(cf), Role::User)
            .await?;
    }
    app.delegate(&op, "studio.verdi", ROSSI).await?;
    app.delegate(&op, "studio.verdi", CONDOMINIO).await?;
    // A client that holds cedible credits, so that the intermediary's journey (choose the
    // client, then cede) can be walked in the demo.
    app.delegate(&op, "studio.verdi", BIANCHI).await?;

    // A strong login stands in for the users' own confirmation in the seed.
    let bianchi = app.login_strong("bianchi").await?;
    let banca = app.login_strong("banca").await?;
    let studio = app.login_strong("studio.verdi").await?;
    let bianchi_id = app.party_by_cf(BIANCHI).await?.id;
    let banca_id = app.party_by_cf(BANCA).await?.id;

    let communicate = |beneficiary: &str,
                       holder: &str,
                       type_key: &str,
                       expense_year: u16,
                       origin,
                       total: i64,
                       on: NaiveDate| OptionInput {
        beneficiary_cf: beneficiary.into(),
        type_key: type_key.into(),
        expense_year,
        origin,
        holder_cf: holder.into(),
        total: Cents::new(total),
        communicated_on: Some(on),
        exception: None,
    };

    // Condominium Superbonus, sconto to Bianchi (tracciabile, 4 rate from 2023), sent by
    // the intermediary for the condominium before the 2023 stop; accepted.
    let superbonus = app
        .communicate_option(
            &studio,
            &key(),
            None,
            &communicate(
                CONDOMINIO,
                BIANCHI,
                "superbonus",
                2022,
                Origin::Sconto,
                48_000_000,
                date(2023, 2, 10)?,
            ),
        )
        .await?;
    // The family's Ecobonus 2021 (not tracciabile: sent before 1 May 2022), sent in 2022.
    clock.set(
        cessio_core::time::rome_start_of_day(date(2023, 2, 13)?) + chrono::Duration::hours(10),
    );
    let accept = |p: Principal, party, key: String| {
        let app = app.clone();
        async move {
            app.answer(&p, &key, None, party, &IncomingFilter::default(), true)
                .await
        }
    };
    accept(bianchi.clone(), bianchi_id, key()).await?;
    let ecobonus = app
        .communicate_option(
            &op,
            &key(),
            None,
            &communicate(
                ROSSI,
                BIANCHI,
                "ecobonus",
                2021,
                Origin::Sconto,
                3_000_050,
                date(2022, 3, 10)?,
            ),
        )
        .await?;
    accept(bianchi.clone(), bianchi_id, key()).await?;

    // Bianchi cedes the 2025 and 2026 Superbonus rate to the bank (whole: tracciabili),
    // and part of the Ecobonus 2024 rata (partial is allowed: not tracciabile).
    clock
        .set(cessio_core::time::rome_start_of_day(date(2024, 3, 1)?) + chrono::Duration::hours(11));
    let rata = |c: &cessio_store::Credit, year: u16| {
        c.rate
            .iter()
            .find(|r| r.year.get() == year)
            .map(|r| r.id)
            .context("demo rata")
    };
    app.cede(
        &bianchi,
        &key(),
        None,
        bianchi_id,
        &[
            CessionLine {
                rata: rata(&superbonus, 2025)?,
                cessionario_cf: BANCA.into(),
                amount: None,
            },
            CessionLine {
                rata: rata(&superbonus, 2026)?,
                cessionario_cf: BANCA.into(),
                amount: None,
            },
        ],
        true,
    )
    .await?;
    app.cede(
        &bianchi,
        &key(),
        None,
        bianchi_id,
        &[CessionLine {
            rata: rata(&ecobonus, 2024)?,
            cessionario_cf: BANCA.into(),
            amount: Some(Cents::new(150_000)),
        }],
        // A cession needs the cedente's consent to show its name (name_consent_required).
        true,
    )
    .await?;
    // Ten days later the bank accepts the Superbonus cessions and refuses the Ecobonus one.
    clock
        .set(cessio_core::time::rome_start_of_day(date(2024, 3, 11)?) + chrono::Duration::hours(9));
    app.answer(
        &banca,
        &key(),
        None,
        banca_id,
        &IncomingFilter {
            type_key: Some("superbonus".into()),
            ..IncomingFilter::default()
        },
        true,
    )
    .await?;
    app.answer(
        &banca,
        &key(),
        None,
        banca_id,
        &IncomingFilter {
            type_key: Some("ecobonus".into()),
            ..IncomingFilter::default()
        },
        false,
    )
    .await?;

    // Still open when the demo starts: a new cession to the bank, and a Bonus facciate
    // communication the company has not answered yet.
    clock
        .set(cessio_core::time::rome_start_of_day(date(2024, 4, 2)?) + chrono::Duration::hours(15));
    app.cede(
        &bianchi,
        &key(),
        None,
        bianchi_id,
        &[CessionLine {
            rata: rata(&superbonus, 2024)?,
            cessionario_cf: BANCA.into(),
            amount: None,
        }],
        true,
    )
    .await?;
    app.communicate_option(
        &op,
        &key(),
        None,
        &communicate(
            ROSSI,
            BIANCHI,
            "bonus_facciate",
            2021,
            Origin::Sconto,
            1_250_000,
            date(2022, 3, 15)?,
        ),
    )
    .await?;
    let report = app.verify().await?;
    anyhow::ensure!(
        report.ok(),
        "demo data failed verification: {:?}",
        report.problems
    );
    Ok(())
}
