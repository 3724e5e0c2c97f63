//! Users of the password file (`[auth.password_file]`): list, add, change
//! password, remove; the file is rewritten atomically and reloaded.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roost_broker::UsersError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::Shared;

/// A user of the password file.
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    /// User name.
    pub username: String,
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUser {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A new password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewPassword {
    /// Password.
    pub password: String,
}

fn users_error(e: UsersError) -> ApiError {
    match e {
        UsersError::NoPasswordFile => ApiError::conflict(
            "NO_PASSWORD_FILE",
            "no password file is configured: add [auth.password_file] to the config",
        ),
        UsersError::NotFound => ApiError::not_found("USER_NOT_FOUND", "no such user"),
        UsersError::Exists => {
            ApiError::conflict("USER_EXISTS", "the user exists (PUT changes its password)")
        }
        other => ApiError::bad_request("BAD_REQUEST", other.to_string()),
    }
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.is_empty() {
        return Err(ApiError::bad_request("BAD_PASSWORD", "empty password"));
    }
    Ok(())
}

/// The users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = [User]), (status = 409, description = "NO_PASSWORD_FILE", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn list(State(state): State<Shared>) -> Result<Json<Vec<User>>, ApiError> {
    let users = state.broker.password_users().map_err(users_error)?;
    Ok(Json(
        users
            .into_iter()
            .map(|username| User { username })
            .collect(),
    ))
}

/// Adds a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = User), (status = 400, body = crate::error::ErrorBody),
              (status = 409, description = "USER_EXISTS or NO_PASSWORD_FILE", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn add(
    State(state): State<Shared>,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let Json(user) = body?;
    check_password(&user.password)?;
    let broker = state.broker.clone();
    let name = user.username.clone();
    // Hashing and the file write block: off the runtime's threads.
    tokio::task::spawn_blocking(move || broker.password_user_set(&name, &user.password, true))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(users_error)?;
    tracing::info!(
        username = user.username,
        "password-file user added through the management API"
    );
    Ok((
        StatusCode::CREATED,
        Json(User {
            username: user.username,
        }),
    ))
}

/// Changes a user's password.
#[utoipa::path(put, path = "/api/v1/users/{username}", tag = "users", request_body = NewPassword,
    params(("username" = String, Path, description = "user name")),
    responses((status = 204, description = "changed"), (status = 404, description = "USER_NOT_FOUND", body = crate::error::ErrorBody),
              (status = 409, description = "NO_PASSWORD_FILE", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn passwd(
    State(state): State<Shared>,
    Path(username): Path<String>,
    body: Result<Json<NewPassword>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(new) = body?;
    check_password(&new.password)?;
    let broker = state.broker.clone();
    let name = username.clone();
    tokio::task::spawn_blocking(move || broker.password_user_set(&name, &new.password, false))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(users_error)?;
    tracing::info!(username, "password changed through the management API");
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a user.
#[utoipa::path(delete, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path, description = "user name")),
    responses((status = 204, description = "removed"), (status = 404, description = "USER_NOT_FOUND", body = crate::error::ErrorBody),
              (status = 409, description = "NO_PASSWORD_FILE", body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn remove(
    State(state): State<Shared>,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    let broker = state.broker.clone();
    let name = username.clone();
    tokio::task::spawn_blocking(move || broker.password_user_remove(&name))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(users_error)?;
    tracing::info!(
        username,
        "password-file user removed through the management API"
    );
    Ok(StatusCode::NO_CONTENT)
}
