//! Sign-in and sign-out, the signed-in user with its parties, API tokens.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cessio_app::Principal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiResult, PartyView};
use crate::{
    ApiError, ApiJson, Auth, ClientIp, SESSION_COOKIE, WebState, cookie_value, too_many_attempts,
};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Login")]
pub(crate) struct LoginBody {
    username: String,
    password: String,
}

#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Me")]
pub(crate) struct MeBody {
    user: Principal,
    parties: Vec<PartyView>,
}

async fn me_body(state: &WebState, p: Principal) -> ApiResult<MeBody> {
    let parties = state
        .app
        .parties_of(&p)
        .await?
        .into_iter()
        .map(|x| PartyView {
            id: x.id,
            cf: x.cf.as_str().to_string(),
            name: x.name,
            kind: x.kind,
        })
        .collect();
    Ok(MeBody { user: p, parties })
}

pub(crate) async fn login(
    State(state): State<WebState>,
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    if let Err(seconds) = state.allow_login(client, &body.username).await? {
        return Ok(too_many_attempts(seconds).into_response());
    }
    let p = state.app.login(&body.username, &body.password).await?;
    state.login_succeeded(client, &body.username).await;
    let id = state.new_session(p.clone()).await?;
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax{}",
        if state.secure_cookies { "; Secure" } else { "" }
    );
    let mut response = Json(me_body(&state, p).await?).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

pub(crate) async fn logout(State(state): State<WebState>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie_value(&headers, SESSION_COOKIE)
        && let Err(e) = state.end_session(id).await
    {
        // Not signed out: saying so beats a 204 the session would outlive.
        return ApiError(e).into_response();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("cessio_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    response
}

pub(crate) async fn me(State(state): State<WebState>, Auth(p): Auth) -> ApiResult<Json<MeBody>> {
    Ok(Json(me_body(&state, p).await?))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TokenRequest")]
pub(crate) struct TokenBody {
    name: String,
}

/// A new token: its secret is shown this once.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Token")]
pub(crate) struct TokenCreated {
    id: i64,
    token: String,
}

pub(crate) async fn create_token(
    State(state): State<WebState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let (id, token) = state.app.create_token(&p, &body.name).await?;
    Ok((StatusCode::CREATED, Json(TokenCreated { id, token })))
}

pub(crate) async fn revoke_token(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state.app.revoke_token(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
