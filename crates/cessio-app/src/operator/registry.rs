//! F9 registry: a party's deceased flag, a bank's current-account clients (R-BANK-CLIENT).

use std::collections::HashMap;

use cessio_core::chain::BankClient;
use cessio_core::ledger::PartyId;
use cessio_store::{OperatorEventQuery, Party};
use chrono::{DateTime, Utc};

use crate::chain::{BANK_CLIENT_EVENT, BankClientEntry};
use crate::{App, AppError, Principal};

impl App {
    /// F9: the operator records that a party is deceased (or corrects it).
    pub async fn set_deceased(
        &self,
        p: &Principal,
        cf: &str,
        deceased: bool,
    ) -> Result<Party, AppError> {
        Self::require_operator(p)?;
        let party = self.party_by_cf(cf).await?;
        self.store
            .set_deceased(party.id, deceased, &p.actor(), self.now())
            .await?;
        self.store
            .party(party.id)
            .await?
            .ok_or(AppError::NotFound { what: "Soggetto" })
    }

    /// R-BANK-CLIENT: the operator records a bank's current-account client and whether it
    /// is a consumer, a non-consumer or a cliente professionale (`no` ends the relation).
    pub async fn set_bank_client(
        &self,
        p: &Principal,
        bank_cf: &str,
        client_cf: &str,
        relation: BankClient,
    ) -> Result<BankClientEntry, AppError> {
        Self::require_operator(p)?;
        let bank = self.party_by_cf(bank_cf).await?;
        if bank.kind != cessio_store::PartyKind::Bank {
            return Err(AppError::invalid(
                "bank_cf",
                format!("{} non è registrato come banca", bank.cf),
            ));
        }
        let client = self.party_by_cf(client_cf).await?;
        if client.id == bank.id {
            return Err(AppError::invalid(
                "client_cf",
                "il correntista deve essere diverso dalla banca",
            ));
        }
        let event = self.actor_event(
            p,
            BANK_CLIENT_EVENT,
            None,
            Some(bank.id),
            Some(client.id),
            serde_json::json!({ "relation": relation }),
        );
        let at = event.at;
        self.store.append_operator_event(event).await?;
        Ok(BankClientEntry {
            bank_cf: bank.cf.as_str().to_string(),
            client_cf: client.cf.as_str().to_string(),
            relation,
            recorded_at: at,
        })
    }

    /// R-BANK-CLIENT: a bank's current relations (the last recorded per client, without
    /// ended ones).
    pub async fn bank_clients(
        &self,
        p: &Principal,
        bank_cf: &str,
    ) -> Result<Vec<BankClientEntry>, AppError> {
        Self::require_operator(p)?;
        let bank = self.party_by_cf(bank_cf).await?;
        let events = self
            .store
            .operator_events(&OperatorEventQuery {
                kinds: vec![BANK_CLIENT_EVENT.into()],
                party: Some(bank.id),
                ..OperatorEventQuery::default()
            })
            .await?;
        let mut last: HashMap<PartyId, (BankClient, DateTime<Utc>)> = HashMap::new();
        for e in events.iter().filter(|e| e.party == Some(bank.id)) {
            if let Some(client) = e.counterparty {
                let relation =
                    serde_json::from_value(e.data["relation"].clone()).unwrap_or(BankClient::No);
                last.insert(client, (relation, e.at));
            }
        }
        let ids: Vec<PartyId> = last.keys().copied().collect();
        let cfs = self.cf_of(&ids).await?;
        let mut out: Vec<BankClientEntry> = last
            .into_iter()
            .filter(|(_, (r, _))| *r != BankClient::No)
            .map(|(client, (relation, at))| BankClientEntry {
                bank_cf: bank.cf.as_str().to_string(),
                client_cf: cfs.get(&client).cloned().unwrap_or_default(),
                relation,
                recorded_at: at,
            })
            .collect();
        out.sort_by(|a, b| a.client_cf.cmp(&b.client_cf));
        Ok(out)
    }
}
