//! `POST /api/v1/login`: a dashboard user's name and password for a token.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::LoginOutcome;
use crate::error::ApiError;
use crate::state::Shared;

/// The login request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// A dashboard user (`roost ctl admin create`).
    pub username: String,
    /// Its password.
    pub password: String,
}

/// A token for `Authorization: Bearer <token>`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The token.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Who logged in.
    pub username: String,
}

/// Logs a dashboard user in. Failed logins are counted per peer address;
/// beyond `http.login_max_failures` within `http.login_window_s` the answer
/// is 429 until the window has passed.
#[utoipa::path(post, path = "/api/v1/login", tag = "auth", security(()),
    request_body = LoginRequest,
    responses((status = 200, body = LoginResponse),
              (status = 401, description = "BAD_CREDENTIALS", body = crate::error::ErrorBody),
              (status = 429, description = "TOO_MANY_ATTEMPTS", body = crate::error::ErrorBody)))]
pub(crate) async fn login(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<LoginResponse>, ApiError> {
    let Json(request) = body?;
    match state
        .auth
        .login(peer.ip(), &request.username, &request.password)
        .await
    {
        LoginOutcome::Token(token, ttl) => Ok(Json(LoginResponse {
            token,
            expires_in: ttl.as_secs(),
            username: request.username,
        })),
        LoginOutcome::BadCredentials => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "BAD_CREDENTIALS",
            "wrong user name or password",
        )),
        LoginOutcome::TooManyAttempts(wait) => {
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_ATTEMPTS",
                format!(
                    "too many failed logins from this address; retry in {} s",
                    wait.as_secs().max(1)
                ),
            );
            error.retry_after = Some(wait.as_secs().max(1));
            Err(error)
        }
    }
}
