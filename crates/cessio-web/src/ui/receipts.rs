//! "Scarica ricevuta (PDF)": the receipt of an operation, from its confirmation notice,
//! and of the operation that recorded a movement, from F4's rows. The same PDF as the API
//! gives ([`crate::receipt_pdf`]); the app decides who may have it.

use axum::extract::{Path, State};
use axum::response::Response;
use cessio_app::parse_receipt_id;
use cessio_store::Party;

use super::{Ui, error_page, party_for, party_home};
use crate::WebState;

/// Where a notice links the receipt of the operation it confirms.
pub fn operation_href(party: &Party, operation_id: i64) -> String {
    format!(
        "{}/operazioni/{operation_id}/ricevuta.pdf",
        party_home(party)
    )
}

/// Where an F4 row links the receipt of the operation that recorded it.
pub fn movement_href(cf: &str, transfer: i64) -> String {
    format!("/soggetti/{cf}/movimenti/{transfer}/ricevuta.pdf")
}

/// What a receipt's address names: the operation, or a movement it recorded.
#[derive(Clone, Copy, Debug)]
enum Named {
    Operation,
    Movement,
}

pub async fn operation(
    State(state): State<WebState>,
    ui: Ui,
    Path((cf, id)): Path<(String, String)>,
) -> Response {
    receipt(&state, &ui, &cf, &id, Named::Operation).await
}

pub async fn movement(
    State(state): State<WebState>,
    ui: Ui,
    Path((cf, id)): Path<(String, String)>,
) -> Response {
    receipt(&state, &ui, &cf, &id, Named::Movement).await
}

async fn receipt(state: &WebState, ui: &Ui, cf: &str, id: &str, named: Named) -> Response {
    let party = match party_for(state, ui, cf).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let receipt = match (parse_receipt_id("id", id), named) {
        (Ok(id), Named::Operation) => state.app.operation_receipt(&ui.user, party.id, id).await,
        (Ok(id), Named::Movement) => state.app.movement_receipt(&ui.user, party.id, id).await,
        (Err(e), _) => Err(e),
    };
    match receipt {
        Ok(r) => crate::api::receipts::pdf_download(&r),
        Err(e) => error_page(Some(ui), &e),
    }
}
