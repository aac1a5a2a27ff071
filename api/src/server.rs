//! The HTTP side: `/client/api` (GET and POST), `/metrics`. One pipeline per
//! request: parse, pick the format, authenticate (login/logout, API-key
//! signature, or session), find the command, check the role and the
//! parameters against the command table, run the handler, answer in
//! CloudStack's envelope. Every failure is CloudStack's error for the case; a
//! panic inside a handler is caught and answered 530.

use crate::api::Api;
use crate::auth;
use crate::caller::Caller;
use crate::errors::ApiError;
use crate::params::Params;
use crate::registry::{Ctx, commands};
use crate::render::{self, Obj};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tracing::Instrument;

pub fn router(api: Arc<Api>) -> Router {
    let limit = api.config.max_request_bytes;
    Router::new()
        .route("/client/api", get(handle).post(handle).fallback(other_method))
        .route("/client/api/", get(handle).post(handle).fallback(other_method))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(api.clone(), too_large))
        .with_state(api)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

/// An answer: the top-level key and its body, with the HTTP status.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub top: String,
    pub body: Obj,
    pub cookies: Vec<String>,
}

impl Answer {
    pub fn ok(top: String, body: Obj) -> Answer {
        Answer {
            status: 200,
            top,
            body,
            cookies: Vec::new(),
        }
    }
    pub fn error(top: String, e: &ApiError) -> Answer {
        Answer {
            status: e.code,
            top,
            body: e.body(),
            cookies: Vec::new(),
        }
    }
}

async fn metrics(State(api): State<Arc<Api>>) -> Response {
    let sessions = api.sessions.count();
    let text = api.read(|c| api.metrics.render(c, sessions));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn handle(
    State(api): State<Arc<Api>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let query = uri.query().unwrap_or("").as_bytes();
    let body = match body {
        Ok(b) => b,
        Err(r) => return refused_body(&api, query, &r),
    };
    let form: &[u8] = if is_form(&headers) { &body } else { &[] };
    // Known before parsing, so even a request that does not parse is
    // answered in the format it asked for.
    let format = if crate::params::wants_json(query, form) {
        Format::Json
    } else {
        Format::Xml
    };
    // 414 like the HTTP layer's own refusal of URIs above 64 KiB.
    if query.len() > api.config.max_request_bytes {
        let text = format!("the query string is longer than {} bytes", api.config.max_request_bytes);
        let e = ApiError::new(414, crate::errors::cs::SERVER_API, text);
        return finish(&api, format, "-", Answer::error("errorresponse".into(), &e));
    }
    let params = match Params::parse(query, form) {
        Ok(p) => p,
        Err(e) => return finish(&api, format, "-", Answer::error("errorresponse".into(), &e)),
    };
    let command = params.command().unwrap_or("").to_string();
    let id = crate::sessions::random_token(6);
    let span = tracing::info_span!("request", request_id = %id, command = %command);
    let work = AssertUnwindSafe(dispatch(&api, &method, &headers, params)).catch_unwind();
    let answer = match work.instrument(span).await {
        Ok(a) => a,
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            tracing::error!(command = %command, panic = %why, "handler panicked");
            let e = ApiError::internal("Internal error executing command, please contact your system administrator");
            Answer::error(response_name(&command), &e)
        }
    };
    finish(&api, format, &command, answer)
}

/// A body announced above `max_request_bytes` is refused before any of it
/// is read (413); hyper then closes the connection.
async fn too_large(State(api): State<Arc<Api>>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > api.config.max_request_bytes as u64) {
        let query = req.uri().query().unwrap_or("").as_bytes();
        return refused(&api, query, 413, too_large_text(&api));
    }
    next.run(req).await
}

fn too_large_text(api: &Api) -> String {
    format!("the request body is larger than {} bytes", api.config.max_request_bytes)
}

/// A body that was not read: above `max_request_bytes` without a
/// Content-Length saying so (413 once that many bytes came), or broken off.
fn refused_body(api: &Api, query: &[u8], r: &BytesRejection) -> Response {
    let status = r.status().as_u16();
    let text = if status == 413 {
        too_large_text(api)
    } else {
        format!("the request body could not be read: {}", r.body_text())
    };
    refused(api, query, status, text)
}

/// A refusal before the parameters were read: the envelope in the format
/// the query string asks for.
fn refused(api: &Api, query: &[u8], status: u16, text: String) -> Response {
    let format = if crate::params::wants_json(query, b"") {
        Format::Json
    } else {
        Format::Xml
    };
    let e = ApiError::new(status, crate::errors::cs::SERVER_API, text);
    finish(api, format, "-", Answer::error("errorresponse".into(), &e))
}

/// PUT, DELETE, ...: CloudStack's servlet serves GET and POST only. A 405 in
/// the envelope (axum's own has an empty body).
async fn other_method(
    State(api): State<Arc<Api>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let query = uri.query().unwrap_or("").as_bytes();
    let body = body.unwrap_or_default();
    let form: &[u8] = if is_form(&headers) { &body } else { &[] };
    let format = if crate::params::wants_json(query, form) {
        Format::Json
    } else {
        Format::Xml
    };
    let e = ApiError::method_not_allowed(format!("HTTP method {method} is not supported: use GET or POST"));
    let mut resp = finish(&api, format, "-", Answer::error("errorresponse".into(), &e));
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    resp
}

fn is_form(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

fn response_name(command: &str) -> String {
    match commands().get(command) {
        Some(c) => c.response_name(),
        None => "errorresponse".into(),
    }
}

async fn dispatch(api: &Api, method: &Method, headers: &HeaderMap, params: Params) -> Answer {
    let command = params.command().unwrap_or("").to_string();
    match command.as_str() {
        "login" => return auth::login(api, method, &params).await,
        "logout" => return auth::logout(api, headers, &params).await,
        _ => {}
    }
    let (caller, by_key) = match auth::authenticate(api, headers, &params) {
        Ok(c) => c,
        Err(e) => return Answer::error(response_name(&command), &e),
    };
    if command.is_empty() {
        let e = ApiError::new(400, crate::errors::cs::SERVER_API, "no command given");
        return Answer::error("errorresponse".into(), &e);
    }
    let Some(cmd) = commands().get(command.as_str()).copied() else {
        // Signed requests for unknown commands fail verification (CloudStack).
        let e = if by_key {
            ApiError::unable_to_verify()
        } else {
            ApiError::unsupported(format!(
                "The given command:{command} does not exist or it is not available for user"
            ))
        };
        return Answer::error("errorresponse".into(), &e);
    };
    let top = cmd.response_name();
    if caller.role < cmd.min_role {
        let e = ApiError::unauthorized(format!(
            "The given command '{command}' either does not exist, is not available for user, or not available from ip address"
        ));
        return Answer::error(top, &e);
    }
    if let Err(e) = cmd.check_params(&params) {
        return Answer::error(top, &e);
    }
    let ctx = Ctx {
        api,
        caller: &caller,
        p: &params,
        cmd,
    };
    match (cmd.handler)(&ctx).await {
        Ok(body) => Answer::ok(top, body),
        Err(e) => {
            tracing::debug!(code = e.code, text = %e.text, "refused");
            Answer::error(top, &e)
        }
    }
}

fn finish(api: &Api, format: Format, command: &str, a: Answer) -> Response {
    api.metrics
        .record(if command.is_empty() { "-" } else { command }, a.status);
    let (text, ctype) = match format {
        Format::Json => (render::json(&a.top, &a.body), "application/json; charset=UTF-8"),
        Format::Xml => (render::xml(&a.top, &a.body), "text/xml; charset=UTF-8"),
    };
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, text).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert("X-Content-Type-Options", HeaderValue::from_static("nosniff"));
    h.insert("X-XSS-Protection", HeaderValue::from_static("1;mode=block"));
    if a.status != 200
        && let Some(crate::render::Val::Str(t)) = a.body.get("errortext")
        && let Ok(v) = HeaderValue::from_str(&t.replace(['\r', '\n'], " "))
    {
        h.insert("X-Description", v);
    }
    for c in a.cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// A caller for internal use (tests, the demo bootstrap).
pub fn caller_of(api: &Api, user: stratus_core::controller::directory::UserId) -> Option<Caller> {
    api.read(|c| Caller::of_user(c, user))
}

/// One request through this pipeline without the HTTP layer: the web
/// console's way in. The same authentication (session key and cookies from
/// `headers`), command lookup, role and parameter checks, handlers, panic
/// catching and metrics as `GET|POST /client/api`; `pairs` are the request's
/// decoded parameters (first value of a name wins). The answer is what the
/// envelope would carry (status, top-level name, body, cookies to set).
pub async fn call(api: &Api, method: Method, headers: &HeaderMap, pairs: Vec<(String, String)>) -> Answer {
    let params = Params::from_pairs(pairs);
    let command = params.command().unwrap_or("").to_string();
    let work = AssertUnwindSafe(dispatch(api, &method, headers, params)).catch_unwind();
    let answer = match work.await {
        Ok(a) => a,
        Err(_) => {
            tracing::error!(command = %command, "handler panicked (console call)");
            let e = ApiError::internal("Internal error executing command, please contact your system administrator");
            Answer::error(response_name(&command), &e)
        }
    };
    api.metrics
        .record(if command.is_empty() { "-" } else { &command }, answer.status);
    answer
}
