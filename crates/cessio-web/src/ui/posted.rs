//! A form posted about a party, taken apart before the handler runs: the signed-in user,
//! the fields, and the party, reached only once the form's CSRF token has been checked and
//! the user's authority over the party with it (`Ui::form_party`). A handler that takes a
//! [`PartyForm`] cannot forget either check.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::response::{IntoResponse, Response};
use cessio_store::Party;
use serde::de::DeserializeOwned;

use super::layout::form_value;
use super::{PageForm, Ui};
use crate::WebState;

/// A form that carries the CSRF token of the page that showed it.
pub trait Posted {
    fn csrf(&self) -> &str;
}

/// Forms read as name-value pairs (fields that repeat or vary by row).
impl Posted for Vec<(String, String)> {
    fn csrf(&self) -> &str {
        form_value(self, "csrf")
    }
}

/// A typed form whose `csrf` field is its token.
macro_rules! posted {
    ($($form:ty),+ $(,)?) => {
        $(impl $crate::ui::posted::Posted for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })+
    };
}
pub(crate) use posted;

/// The user, the party of the path's `{cf}` and the fields of a form posted to one of its
/// pages.
pub struct PartyForm<F>(pub Ui, pub Party, pub F);

impl<F> FromRequest<WebState> for PartyForm<F>
where
    F: Posted + DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &WebState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let ui = Ui::from_request_parts(&mut parts, state).await?;
        let Path(cf) = Path::<String>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let PageForm(form) =
            PageForm::<F>::from_request(Request::from_parts(parts, body), state).await?;
        let party = ui.form_party(state, form.csrf(), &cf).await?;
        Ok(PartyForm(ui, party, form))
    }
}
