//! Async jobs: an action that answers a job id goes to the job's page, which
//! polls `queryAsyncJobResult` (htmx, every second) until the job ends, then
//! shows the result or CloudStack's error text. Without JavaScript the page
//! shows the state at load and a refresh link.

use crate::client::{Json, Session};
use crate::view::{JobBox, JobHtml, Section, link};
use crate::{Fields, page, refused, session};
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::Value;
use std::sync::Arc;
use stratus_api::Api;

pub fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/client/jobs/{id}", get(job_page))
        .route("/client/jobs/{id}/status", get(job_status))
}

async fn job_page(State(api): State<Arc<Api>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = match session(&api, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match job_box(&s, &id).await {
        Ok(b) => {
            let html = b.render().unwrap_or_default();
            page(&s, "", "Job progress", vec![Section::Job(JobHtml { html })]).into_response()
        }
        Err(r) => r,
    }
}

async fn job_status(State(api): State<Arc<Api>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = match session(&api, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match job_box(&s, &id).await {
        Ok(b) => b.into_response(),
        Err(r) => r,
    }
}

#[allow(clippy::result_large_err)] // the Err is the handler's answer
async fn job_box(s: &Session, id: &str) -> Result<JobBox, Response> {
    let v = s
        .get(&[("command", "queryAsyncJobResult"), ("jobid", id)])
        .await
        .map_err(|e| refused(s, "", "Job progress", e))?;
    Ok(render_job(id, &v))
}

pub(crate) fn render_job(id: &str, v: &Value) -> JobBox {
    let status = v.get("jobstatus").and_then(Value::as_i64).unwrap_or(0);
    let cmd = v.s("cmd");
    let what = cmd
        .rsplit('.')
        .next()
        .unwrap_or(&cmd)
        .trim_end_matches("Cmd")
        .to_string();
    let r = v.get("jobresult").cloned().unwrap_or(Value::Null);
    let mut result = Vec::new();
    let mut next = None;
    let mut error = None;
    match status {
        1 => {
            if let Some(vm) = r.get("virtualmachine") {
                result.push(("Instance".into(), vm.s("name")));
                result.push(("State".into(), vm.s("state")));
                result.push(("Host".into(), vm.s("hostname")));
                next = Some(link("Open the instance", format!("/client/vm/{}", vm.s("id"))));
            } else if let Some(h) = r.get("host") {
                result.push(("Host".into(), h.s("name")));
                result.push(("Resource state".into(), h.s("resourcestate")));
                next = Some(link("Open the host", format!("/client/hosts/{}", h.s("id"))));
            } else if r.get("whatif").is_some() {
                next = Some(link("Open the report", format!("/client/whatif/report/{id}")));
            } else if let Some(o) = r.as_object() {
                for (k, x) in o.iter().take(8) {
                    result.push((k.clone(), x.to_string()));
                }
            }
        }
        2 => error = Some(format!("{} (error {})", r.s("errortext"), r.s("errorcode"))),
        _ => {}
    }
    let (status_text, class) = match status {
        0 => ("In progress", "busy"),
        1 => ("Succeeded", "good"),
        _ => ("Failed", "bad"),
    };
    JobBox {
        jobid: id.to_string(),
        what: if what.is_empty() { "Job".into() } else { what },
        done: status != 0,
        status,
        status_text: status_text.into(),
        class,
        error,
        result,
        next,
    }
}

/// Runs an async command from a form and goes to its job page; a refusal
/// shows CloudStack's error text on `back`'s page title.
pub(crate) async fn start_job(s: &Session, f: &Fields, pairs: &[(&str, &str)], title: &str) -> Response {
    let key = f.get("sessionkey").map(String::as_str).unwrap_or("");
    match s.post(key, pairs).await {
        Ok(v) => {
            let job = v.s("jobid");
            if job.is_empty() {
                return Redirect::to("/client/dashboard").into_response();
            }
            Redirect::to(&format!("/client/jobs/{job}")).into_response()
        }
        Err(e) => {
            let mut r = refused(s, "", title, e);
            if r.status() == StatusCode::OK {
                *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            }
            r
        }
    }
}
