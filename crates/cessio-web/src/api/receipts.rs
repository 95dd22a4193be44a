//! The printable receipt of an operation over HTTP: `GET
//! /api/v1/parties/{cf}/operations/{id}/receipt.pdf`, `{id}` being the `operation_id` every
//! dispositive call returns. The app decides who may have it; the layout is
//! [`crate::receipt_pdf`].

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use cessio_app::{OperationReceipt, parse_receipt_id};

use super::{ApiResult, party_in_path};
use crate::{Auth, WebState};

pub(crate) async fn receipt_pdf(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path((cf, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = parse_receipt_id("id", &id)?;
    let party = party_in_path(&state, &p, &cf).await?;
    let receipt = state.app.operation_receipt(&p, party, id).await?;
    Ok(pdf_download(&receipt))
}

/// A receipt as a PDF file to keep, named after its operation.
pub(crate) fn pdf_download(r: &OperationReceipt) -> Response {
    let mut response = crate::receipt_pdf::render(r).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"ricevuta-operazione-{}.pdf\"",
        r.operation_id
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}
