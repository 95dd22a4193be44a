//! The platform's functions F8, F1, F2 and F3, a module each, and what they share with F4's list.

use std::collections::{HashMap, HashSet};

use cessio_core::catalogue::CessionRegime;
use cessio_core::ledger::{PartyId, RataId, TransferId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::time::rome_date;
use cessio_store::{Party, PartyEntry, PartyKind};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{App, AppError};

mod acceptance;
mod bulk_answer;
mod cession;
mod monitoring;
mod origination;
mod states;

pub use acceptance::*;
pub use bulk_answer::*;
pub use cession::*;
pub use monitoring::*;
pub use origination::*;
pub(crate) use states::StatesContext;

/// A party as another party may see it: the CF always, the name only when allowed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PartyRef {
    pub cf: String,
    pub name: Option<String>,
}

/// F4 states, as the platform names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MovementState {
    InAttesa,
    /// Awaiting an answer, but suspended by the Agency (R-SUSP, art. 122-bis DL 34/2020):
    /// nobody may answer it until its last day (`MovementRow::suspended_until`).
    Sospesa,
    Accettato,
    Rifiutato,
    /// A communication annulled by its sender (R-OPT-ANNUL): never answered by the holder.
    Annullato,
    /// Suspended and then voided by the operator (R-SUSP): as if it had never been sent.
    NonEffettuata,
    /// Accepted, then annulled by the operator on the parties' request (F9): the amount
    /// went back to the cedente.
    AccettazioneAnnullata,
}

impl MovementState {
    pub const fn label(self) -> &'static str {
        match self {
            MovementState::InAttesa => "In attesa di risposta cessionario",
            MovementState::Sospesa => "Sospesa dall'Agenzia",
            MovementState::Accettato => "Accettato",
            MovementState::Rifiutato => "Rifiutato",
            MovementState::Annullato => "Annullato dal mittente",
            MovementState::NonEffettuata => "Non effettuata (sospesa e annullata dall'Agenzia)",
            MovementState::AccettazioneAnnullata => {
                "Accettazione annullata su richiesta delle parti"
            }
        }
    }
}

impl MovementRow {
    /// The state as a person reads it, with a suspension's last day.
    pub fn state_text(&self) -> String {
        match self.suspended_until {
            Some(until) => format!(
                "{} fino al {}",
                self.state.label(),
                cessio_core::law::it_date(until)
            ),
            None => self.state.label().to_string(),
        }
    }
}

/// F4 filters. At least one besides `tracciabile` is required.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MovementFilter {
    #[serde(default)]
    pub registered_from: Option<NaiveDate>,
    #[serde(default)]
    pub registered_to: Option<NaiveDate>,
    #[serde(default)]
    pub answered_from: Option<NaiveDate>,
    #[serde(default)]
    pub answered_to: Option<NaiveDate>,
    #[serde(default)]
    pub cedente_cf: Option<String>,
    #[serde(default)]
    pub cessionario_cf: Option<String>,
    #[serde(default)]
    pub state: Option<MovementState>,
    #[serde(default)]
    pub type_key: Option<String>,
    #[serde(default)]
    pub codice_tributo: Option<String>,
    #[serde(default)]
    pub year: Option<u16>,
    /// Protocol of the communication or codice identificativo univoco of the rata.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub tracciabile: Option<bool>,
    /// "Data di cessione": the option communication's day for a communication, the day
    /// the cession was registered for a cession (`MovementRow::ceded_on`).
    #[serde(default)]
    pub ceded_from: Option<NaiveDate>,
    #[serde(default)]
    pub ceded_to: Option<NaiveDate>,
    /// "Tipologia per cedibilità": the party's holding of the rata as F1/F2 classify it
    /// today (`MovementRow::cedibilita_class`).
    #[serde(default)]
    pub cedibilita: Option<crate::CedibilitaClass>,
}

impl MovementFilter {
    pub(crate) fn has_filter_besides_tracciabile(&self) -> bool {
        self.registered_from.is_some()
            || self.registered_to.is_some()
            || self.answered_from.is_some()
            || self.answered_to.is_some()
            || self
                .cedente_cf
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty())
            || self
                .cessionario_cf
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty())
            || self.state.is_some()
            || self.type_key.is_some()
            || self.codice_tributo.is_some()
            || self.year.is_some()
            || self.code.as_deref().is_some_and(|s| !s.trim().is_empty())
            || self.ceded_from.is_some()
            || self.ceded_to.is_some()
            || self.cedibilita.is_some()
    }
}

/// F4: one movement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MovementRow {
    pub id: TransferId,
    /// The credit (option communication) the movement belongs to: what annulling refers to.
    pub credit: i64,
    pub rata: RataId,
    pub registered_at: DateTime<Utc>,
    pub kind: TransferKind,
    pub cedente: PartyRef,
    pub cessionario: PartyRef,
    pub type_key: String,
    /// The type's Italian name, as people read it (the catalogue's).
    #[serde(default)]
    pub type_name: String,
    pub codice_tributo: String,
    pub year: u16,
    pub amount: Cents,
    pub state: MovementState,
    /// The last day of the suspension of a movement in state `sospesa` (R-SUSP).
    #[serde(default)]
    pub suspended_until: Option<NaiveDate>,
    pub answered_at: Option<DateTime<Utc>>,
    pub protocol: String,
    pub codice_univoco: String,
    pub tracciabile: bool,
    /// The party's holding of the rata today, as F1/F2 classify it (§5, R-F24-WINDOW-121, R-SPLIT-NOCEDE...);
    /// "non detenuta" when the party holds none of it.
    pub cedibilita: String,
    /// The class behind `cedibilita`; `None` when the party holds none of the rata.
    #[serde(default)]
    pub cedibilita_class: Option<crate::CedibilitaClass>,
    /// "Data cessione": the option communication's day for a communication, the day the
    /// cession was registered (Rome) for a cession.
    pub ceded_on: NaiveDate,
}

/// The state of a cession or communication, as F4 shows it. `annulled`: the acceptances
/// the operator annulled on request.
pub(crate) fn state_of(
    e: &PartyEntry,
    annulled: &HashSet<TransferId>,
    suspended: &HashMap<TransferId, NaiveDate>,
) -> MovementState {
    match (e.pending, e.answer) {
        (false, _) => MovementState::Accettato,
        (true, None) if suspended.contains_key(&e.transfer) => MovementState::Sospesa,
        (true, None) => MovementState::InAttesa,
        (true, Some(a)) if a.accepted && annulled.contains(&e.transfer) => {
            MovementState::AccettazioneAnnullata
        }
        (true, Some(a)) if a.accepted => MovementState::Accettato,
        (true, Some(a)) if a.by.is_some() && a.by == e.party => MovementState::Annullato,
        (true, Some(a)) if a.by.is_some() => MovementState::Rifiutato,
        // Only the operator's void of a suspended cession answers for no party (R-SUSP).
        (true, Some(_)) => MovementState::NonEffettuata,
    }
}

impl App {
    fn type_name(&self, key: &str) -> String {
        self.catalogue
            .get(key)
            .map_or_else(|| key.to_string(), |t| t.name.clone())
    }

    fn regime(&self, key: &str) -> CessionRegime {
        self.catalogue
            .get(key)
            .map_or(CessionRegime::Art121, |t| t.cession_regime)
    }

    pub(crate) fn today(&self) -> NaiveDate {
        rome_date(self.now())
    }

    async fn party_map(&self, entries: &[PartyEntry]) -> Result<HashMap<PartyId, Party>, AppError> {
        parties_of(&*self.store, entries).await
    }
}

/// Dates a person may ask about: the register's years, so that date arithmetic cannot
/// overflow on a typo like year 262142.
pub(crate) fn check_date(field: &str, d: NaiveDate) -> Result<NaiveDate, AppError> {
    use chrono::Datelike;
    if (2000..=2100).contains(&d.year()) {
        Ok(d)
    } else {
        Err(AppError::invalid(
            field,
            "la data deve essere tra il 2000 e il 2100",
        ))
    }
}

/// R-PA: public administrations may not acquire credits (DL 11/2023 art. 1).
fn check_may_acquire(party: &Party) -> Result<(), AppError> {
    if party.kind == PartyKind::PublicAdministration {
        return Err(AppError::Rule {
            rule: "R-PA",
            code: "r_pa",
            detail: format!(
                "{} è una pubblica amministrazione e non può acquisire crediti (DL 11/2023 art. 1) (R-PA)",
                party.cf
            ),
        });
    }
    Ok(())
}

/// The parties a list of movements names, by id: one read for the whole list.
pub(crate) async fn parties_of(
    store: &dyn cessio_store::Store,
    entries: &[PartyEntry],
) -> Result<HashMap<PartyId, Party>, AppError> {
    let mut ids: Vec<PartyId> = entries
        .iter()
        .flat_map(|e| [e.party, e.counterparty])
        .flatten()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(store
        .parties(&ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect())
}

/// A party as a list shows it; the name only where it may be shown.
pub(crate) fn party_ref(
    parties: &HashMap<PartyId, Party>,
    id: Option<PartyId>,
    show_name: bool,
) -> PartyRef {
    match id.and_then(|i| parties.get(&i)) {
        Some(p) => PartyRef {
            cf: p.cf.as_str().to_string(),
            name: show_name.then(|| p.name.clone()),
        },
        None => PartyRef {
            cf: String::new(),
            name: None,
        },
    }
}
