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
        .route("/client/api", get(handle).post(handle))
        .route("/client/api/", get(handle).post(handle))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
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

async fn handle(State(api): State<Arc<Api>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let query = uri.query().unwrap_or("").as_bytes();
    if query.len() > api.config.max_request_bytes {
        let e = ApiError::malformed("the query string is too long");
        return finish(&api, Format::Json, "-", Answer::error("errorresponse".into(), &e));
    }
    let form: &[u8] = if is_form(&headers) { &body } else { &[] };
    let params = match Params::parse(query, form) {
        Ok(p) => p,
        Err(e) => return finish(&api, Format::Json, "-", Answer::error("errorresponse".into(), &e)),
    };
    let format = match params.opt_str("response") {
        Some(r) if r.eq_ignore_ascii_case("json") => Format::Json,
        _ => Format::Xml,
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
