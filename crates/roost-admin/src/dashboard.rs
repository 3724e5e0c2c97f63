//! The web dashboard's static files (`crates/roost-admin/dashboard/`),
//! embedded in the binary with rust-embed and served at `/` (the page) and
//! `/dashboard/*` (its scripts, styles and vendored libraries): plain ES
//! modules and CSS, no build step, nothing loaded from elsewhere.
//!
//! Every response carries a strong ETag (the file's SHA-256, computed at
//! build time) and `Cache-Control: no-cache`, so a browser revalidates and
//! gets `304 Not Modified` until the binary changes. No authentication
//! here: the files hold no data; the API calls they make carry the login's
//! token.

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use rust_embed::Embed;

/// The dashboard's files, read from the source tree at build time.
#[derive(Embed)]
#[folder = "dashboard/"]
#[exclude = "*.md"]
struct Assets;

/// What a browser may load and connect to from the dashboard: its own
/// files, the API, and the broker's WebSocket listener (another port, so
/// `ws:`/`wss:`). uPlot sizes its canvas through inline styles.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// The routes: `GET /`, `GET /dashboard` (redirects to `/`) and
/// `GET /dashboard/{*path}`; merged into the API's router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/dashboard", get(|| async { Redirect::permanent("/") }))
        .route("/dashboard/", get(|| async { Redirect::permanent("/") }))
        .route("/dashboard/{*path}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// One embedded file, or 304 when the browser's copy is current, or 404.
fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        return (StatusCode::NOT_FOUND, "no such dashboard file").into_response();
    };
    let etag = etag_of(&file.metadata.sha256_hash());
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(file.data.into_owned()))
    };
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// A strong ETag: the quoted hex SHA-256 of the file.
fn etag_of(hash: &[u8; 32]) -> String {
    let mut tag = String::with_capacity(66);
    tag.push('"');
    for byte in hash {
        tag.push_str(&format!("{byte:02x}"));
    }
    tag.push('"');
    tag
}

/// The media type by extension (the dashboard holds few kinds of file).
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "text/plain; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use axum::body::to_bytes;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn fetch(uri: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::get(uri);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        router::<()>()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_page_is_served_at_the_root_as_html() {
        let response = fetch("/", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(
            response.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        assert!(
            std::str::from_utf8(&body)
                .unwrap()
                .contains("Roost dashboard")
        );
    }

    #[tokio::test]
    async fn scripts_styles_and_vendored_libraries_have_their_types() {
        for (uri, kind) in [
            ("/dashboard/app.js", "text/javascript; charset=utf-8"),
            ("/dashboard/style.css", "text/css; charset=utf-8"),
            (
                "/dashboard/vendor/mqtt.esm.js",
                "text/javascript; charset=utf-8",
            ),
            (
                "/dashboard/vendor/uplot.iife.min.js",
                "text/javascript; charset=utf-8",
            ),
            (
                "/dashboard/pages/overview.js",
                "text/javascript; charset=utf-8",
            ),
        ] {
            let response = fetch(uri, None).await;
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], kind, "{uri}");
            assert_eq!(
                response.headers()[header::X_CONTENT_TYPE_OPTIONS],
                "nosniff"
            );
        }
    }

    #[tokio::test]
    async fn a_current_etag_gets_304_and_a_stale_one_the_file() {
        let first = fetch("/dashboard/app.js", None).await;
        let tag = first.headers()[header::ETAG].to_str().unwrap().to_string();
        assert!(tag.starts_with('"') && tag.len() == 66, "{tag}");
        let again = fetch("/dashboard/app.js", Some(&tag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], tag.as_str());
        let stale = fetch("/dashboard/app.js", Some("\"0000\"")).await;
        assert_eq!(stale.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_files_and_the_readme_are_404() {
        assert_eq!(
            fetch("/dashboard/nope.js", None).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            fetch("/dashboard/vendor/README.md", None).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            fetch("/dashboard/../Cargo.toml", None).await.status(),
            StatusCode::NOT_FOUND
        );
    }
}
