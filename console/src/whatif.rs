//! What-if: run a hypothetical on the live inventory (`runWhatIf`, an async
//! admin command) and read its report as tables and charts. The form is built
//! from what `listApis` says runWhatIf takes, so it follows the server; a
//! server without the command gets an honest "not available" page.

use crate::client::{Json, Session};
use crate::view::{Field, Flash, Form, Group, Section, Table, text};
use crate::{Fields, page, refused, session};
use axum::Router;
use axum::extract::{Form as FormData, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use std::sync::Arc;
use stratus_api::Api;

pub fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/client/whatif", get(form).post(run))
        .route("/client/whatif/report/{job}", get(report))
}

const CURRENT: &str = "/client/whatif";

/// runWhatIf's parameters as listApis describes them, or `None`.
async fn what_if_params(s: &Session) -> Option<Vec<Value>> {
    let v = s.get(&[("command", "listApis"), ("name", "runWhatIf")]).await.ok()?;
    let api = v.list("api").into_iter().find(|a| a.s("name") == "runWhatIf")?;
    Some(api.list("params"))
}

async fn form(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let s = match session(&api, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    render_form(&s, &Fields::new(), None).await
}

async fn render_form(s: &Session, values: &Fields, err: Option<crate::client::ApiErr>) -> Response {
    let Some(params) = what_if_params(s).await else {
        let mut p = page(s, CURRENT, "What-if", Vec::new());
        p.flashes.push(Flash {
            kind: "info",
            text: "What-if is not available on this server: its API (listApis) has no runWhatIf command.".into(),
        });
        return p.into_response();
    };
    let mut fields: Vec<Field> = params
        .iter()
        .map(|p| {
            let name = p.s("name");
            let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
            Field::text(&name, &name, required)
                .value(values.get(&name).cloned().unwrap_or_default())
                .help(format!("{} ({})", p.s("description"), p.s("type")))
        })
        .collect();
    fields.sort_by_key(|f| !f.required);
    let f = Form {
        id: "whatif".into(),
        action: "/client/whatif".into(),
        sessionkey: s.key.clone(),
        hidden: Vec::new(),
        groups: vec![Group {
            legend: "Hypothetical".into(),
            fields,
        }],
        submit: "Run what-if".into(),
    };
    let intro = Section::Text("Runs the hypothetical on a copy of the live inventory; nothing changes.".into());
    let mut p = page(s, CURRENT, "What-if", vec![intro, Section::Form(f)]);
    if let Some(e) = &err {
        p.flashes.push(crate::error_flash(e));
    }
    p.into_response()
}

async fn run(State(api): State<Arc<Api>>, headers: HeaderMap, FormData(f): FormData<Fields>) -> Response {
    let s = match session(&api, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut pairs: Vec<(&str, &str)> = vec![("command", "runWhatIf")];
    for (k, v) in &f {
        if k != "sessionkey" && k != "command" {
            pairs.push((k.as_str(), v.as_str()));
        }
    }
    let key = f.get("sessionkey").map(String::as_str).unwrap_or("");
    match s.post(key, &pairs).await {
        Ok(v) => axum::response::Redirect::to(&format!("/client/jobs/{}", v.s("jobid"))).into_response(),
        Err(e) => render_form(&s, &f, Some(e)).await,
    }
}

async fn report(State(api): State<Arc<Api>>, headers: HeaderMap, Path(job): Path<String>) -> Response {
    let s = match session(&api, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let v = match s.get(&[("command", "queryAsyncJobResult"), ("jobid", &job)]).await {
        Ok(v) => v,
        Err(e) => return refused(&s, CURRENT, "What-if report", e),
    };
    // The server's own HTML report (plots, tables) when it sends one.
    if let Some(html) = v.get("jobresult").and_then(|r| r.get("html")).and_then(Value::as_str) {
        let frame = Section::Frame {
            title: "Capacity what-if report".into(),
            srcdoc: html.to_string(),
        };
        return page(&s, CURRENT, "What-if report", vec![frame]).into_response();
    }
    let raw = v
        .get("jobresult")
        .and_then(|r| r.get("whatif"))
        .cloned()
        .unwrap_or(Value::Null);
    // The report may come as a JSON object or as JSON text.
    let report = match raw {
        Value::String(t) => serde_json::from_str(&t).unwrap_or(Value::String(t)),
        other => other,
    };
    let mut sections = Vec::new();
    render_value("Report", &report, &mut sections, 0);
    page(&s, CURRENT, "What-if report", sections).into_response()
}

/// Scalars as a definition list, arrays of objects as tables, arrays of
/// numbers as line charts, nested objects as their own headed sections.
fn render_value(title: &str, v: &Value, out: &mut Vec<Section>, depth: usize) {
    match v {
        Value::Object(m) => {
            let kv: Vec<(String, String)> = m
                .iter()
                .filter(|(_, x)| !x.is_object() && !x.is_array())
                .map(|(k, x)| (k.clone(), scalar(x)))
                .collect();
            if depth > 0 {
                out.push(Section::Heading(title.to_string()));
            }
            if !kv.is_empty() {
                out.push(Section::Kv(kv));
            }
            for (k, x) in m.iter().filter(|(_, x)| x.is_object() || x.is_array()) {
                render_value(k, x, out, depth + 1);
            }
        }
        Value::Array(items) if items.iter().all(Value::is_number) && !items.is_empty() => {
            let ys: Vec<f64> = items.iter().filter_map(Value::as_f64).collect();
            out.push(Section::Heading(title.to_string()));
            out.push(Section::Svg(line_chart(title, &ys)));
        }
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            let mut cols: Vec<String> = Vec::new();
            for it in items {
                for k in it.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !cols.contains(k) {
                        cols.push(k.clone());
                    }
                }
            }
            let headers: Vec<&str> = cols.iter().map(String::as_str).collect();
            let mut t = Table::new(title, &headers);
            for it in items {
                t.rows.push(
                    cols.iter()
                        .map(|c| text(it.get(c).map(scalar).unwrap_or_default()))
                        .collect(),
                );
            }
            out.push(Section::Table(t));
        }
        Value::Array(items) => {
            out.push(Section::Heading(title.to_string()));
            out.push(Section::Pre(items.iter().map(scalar).collect::<Vec<_>>().join("\n")));
        }
        other => out.push(Section::Kv(vec![(title.to_string(), scalar(other))])),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A small SVG line chart of a series (numbers only; the title is escaped).
pub(crate) fn line_chart(title: &str, ys: &[f64]) -> String {
    let (w, h, pad) = (600.0, 180.0, 30.0);
    let max = ys.iter().copied().fold(f64::MIN, f64::max).max(1e-9);
    let min = ys.iter().copied().fold(f64::MAX, f64::min).min(0.0);
    let span = (max - min).max(1e-9);
    let n = ys.len().max(2) - 1;
    let pts: Vec<String> = ys
        .iter()
        .enumerate()
        .map(|(i, y)| {
            let x = pad + (w - 2.0 * pad) * i as f64 / n as f64;
            let yy = h - pad - (h - 2.0 * pad) * (y - min) / span;
            format!("{x:.1},{yy:.1}")
        })
        .collect();
    let esc = title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    format!(
        r##"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{esc}"><title>{esc}</title><line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="#999"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{b}" stroke="#999"/><text x="2" y="{ty}" font-size="10">{max:.1}</text><text x="2" y="{b}" font-size="10">{min:.1}</text><polyline fill="none" stroke="#1890ff" stroke-width="2" points="{p}"/></svg>"##,
        b = h - pad,
        r = w - pad,
        ty = pad + 4.0,
        p = pts.join(" ")
    )
}
