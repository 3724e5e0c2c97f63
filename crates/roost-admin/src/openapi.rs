//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! attributes; served at `/api/v1/openapi.json` and checked in as
//! `docs/openapi.json` (a test fails when they differ: `roost ctl openapi
//! > docs/openapi.json` updates it).

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api;

/// Basic (API key) and bearer (login token) auth, both accepted everywhere.
#[derive(Debug)]
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Roost management API", description = "docs/management.md"),
    paths(
        api::login::login,
        api::status::status,
        api::stats::stats,
        api::status::nodes,
        api::status::listeners,
        api::clients::list,
        api::clients::get,
        api::clients::kick,
        api::clients::subscriptions,
        api::client_subs::subscribe,
        api::client_subs::unsubscribe,
        api::clients::sessions,
        api::clients::all_subscriptions,
        api::clients::topics,
        api::retained::list,
        api::retained::get,
        api::retained::delete,
        api::publish::publish,
        api::publish::reload,
        api::banned::list,
        api::banned::add,
        api::banned::remove,
        api::users::list,
        api::users::add,
        api::users::passwd,
        api::users::remove,
        serve,
        metrics_doc,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&SecuritySchemes),
    security(("api_key" = []), ("token" = [])),
)]
pub struct ApiDoc;

/// The document as pretty JSON with a final newline (the form of docs/openapi.json).
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut text = doc
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "status",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object),
              (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn serve() -> Json<serde_json::Value> {
    Json(serde_json::from_str(&document()).unwrap_or_default())
}

/// Prometheus metrics in the OpenMetrics text format. Open without
/// credentials unless `[http] metrics_auth = true`.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String),
              (status = 401, body = crate::error::ErrorBody)))]
#[allow(dead_code)]
fn metrics_doc() {}
