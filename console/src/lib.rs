//! The web console under `/client`, as CloudStack's UI lives there:
//! server-rendered pages (askama) with a vendored htmx for job progress.
//! Every action goes through the API crate's own pipeline
//! (`stratus_api::server::call`) with the browser's login session — the same
//! authentication, role checks, parameter validation and error texts as
//! `/client/api` — and nothing reads the controller directly. Reading works
//! without JavaScript; htmx only polls running jobs.

pub mod client;
mod infra;
mod instances;
mod jobs;
mod manage;
mod overview;
pub mod view;
mod whatif;
mod wizard;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use client::{ApiErr, Session};
use std::collections::HashMap;
use std::sync::Arc;
use stratus_api::Api;
use view::{Flash, Login, Page, Section};

pub use instances::{PAGE_SIZE, instances_page};

pub type Fields = HashMap<String, String>;

/// The console's routes, to merge beside the API's (`/client/api`).
pub fn router(api: Arc<Api>) -> Router {
    let limit = api.config.max_request_bytes;
    Router::new()
        .route("/client", get(home))
        .route("/client/", get(home))
        .route("/client/login", get(login_page).post(login))
        .route("/client/logout", post(logout))
        .route("/client/static/htmx.min.js", get(htmx))
        .route("/client/static/console.css", get(css))
        .merge(overview::routes())
        .merge(infra::routes())
        .merge(wizard::routes())
        .merge(instances::routes())
        .merge(manage::routes())
        .merge(jobs::routes())
        .merge(whatif::routes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(api)
}

async fn htmx() -> Response {
    static_file(include_str!("../static/htmx.min.js"), "text/javascript; charset=utf-8")
}

async fn css() -> Response {
    static_file(include_str!("../static/console.css"), "text/css; charset=utf-8")
}

fn static_file(body: &'static str, ctype: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    r
}

async fn home(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    match Session::from_headers(&api, &headers) {
        Some(_) => Redirect::to("/client/dashboard").into_response(),
        None => Redirect::to("/client/login").into_response(),
    }
}

async fn login_page() -> Login {
    Login {
        error: None,
        username: String::new(),
        domain: "/".into(),
    }
}

/// CloudStack's `login` command through the pipeline; its cookies (session
/// key, JSESSIONID) go to the browser, plus who logged in (for navigation).
async fn login(State(api): State<Arc<Api>>, headers: HeaderMap, Form(f): Form<Fields>) -> Response {
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let domain = if get("domain").trim().is_empty() {
        "/".to_string()
    } else {
        get("domain")
    };
    let pairs = vec![
        ("command".to_string(), "login".to_string()),
        ("username".to_string(), get("username")),
        ("password".to_string(), get("password")),
        ("domain".to_string(), domain.clone()),
        ("response".to_string(), "json".to_string()),
    ];
    let a = stratus_api::server::call(&api, Method::POST, &headers, pairs).await;
    let text = stratus_api::render::json(&a.top, &a.body);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let body = v.get(&a.top).cloned().unwrap_or_default();
    use client::Json;
    if a.status != 200 {
        tracing::info!(user = %get("username"), "console login refused");
        let page = Login {
            error: Some(body.s("errortext")),
            username: get("username"),
            domain,
        };
        return (StatusCode::UNAUTHORIZED, page).into_response();
    }
    let admin = body.s("type") == "1";
    let mut r = Redirect::to(if admin {
        "/client/dashboard"
    } else {
        "/client/instances"
    })
    .into_response();
    for c in a.cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    let who = client::who_cookie(&body.s("username"), &body.s("account"), &body.s("type"));
    if let Ok(v) = HeaderValue::from_str(&format!("stratususer={who}; Path=/client; SameSite=Lax")) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(api): State<Arc<Api>>, headers: HeaderMap, Form(f): Form<Fields>) -> Response {
    let key = f.get("sessionkey").cloned().unwrap_or_default();
    let pairs = vec![
        ("command".to_string(), "logout".to_string()),
        ("sessionkey".to_string(), key),
        ("response".to_string(), "json".to_string()),
    ];
    let a = stratus_api::server::call(&api, Method::POST, &headers, pairs).await;
    let mut r = Redirect::to("/client/login").into_response();
    for c in a.cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("stratususer=; Path=/client; Max-Age=0"),
    );
    r
}

/// The session of a request, or a redirect to the login page.
// The Err is the handler's own answer, returned as is: boxing it buys nothing.
#[allow(clippy::result_large_err)]
pub(crate) fn session(api: &Arc<Api>, headers: &HeaderMap) -> Result<Session, Response> {
    Session::from_headers(api, headers).ok_or_else(|| Redirect::to("/client/login").into_response())
}

/// A page for this session.
pub(crate) fn page(s: &Session, current: &str, title: impl Into<String>, sections: Vec<Section>) -> Page {
    Page {
        title: title.into(),
        nav: Some(s.nav(current)),
        flashes: Vec::new(),
        sections,
    }
}

pub(crate) fn error_flash(e: &ApiErr) -> Flash {
    Flash {
        kind: "error",
        text: e.to_string(),
    }
}

/// A refused read: an expired session goes back to the login page, anything
/// else shows CloudStack's error text.
pub(crate) fn refused(s: &Session, current: &str, title: &str, e: ApiErr) -> Response {
    if e.session_gone() {
        return Redirect::to("/client/login").into_response();
    }
    let mut p = page(s, current, title, Vec::new());
    p.flashes.push(error_flash(&e));
    (StatusCode::OK, p).into_response()
}

/// Percent-encodes a query value.
pub(crate) fn q(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Bytes in GiB/MiB for people.
pub(crate) fn bytes(n: f64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    if n >= 1024.0 * GIB {
        format!("{:.1} TiB", n / (1024.0 * GIB))
    } else if n >= GIB {
        format!("{:.1} GiB", n / GIB)
    } else {
        format!("{:.0} MiB", n / (1u64 << 20) as f64)
    }
}
