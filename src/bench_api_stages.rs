//! Where one request's time goes in `stratus bench api`: the stages of the
//! server's pipeline (`stratus_api::server`) called directly, one request at
//! a time, in process (no HTTP, no concurrency), each timed on its own:
//! signing (the client's side), parsing, authentication (one short read of
//! the gateway's state, then the HMAC), the handler (list handlers hold the
//! gateway lock for all of their work; a deploy waits for its input to be
//! durable: the journal's group commit, an fsync on SQLite) and the JSON
//! rendering. What the HTTP phases add on top is the HTTP/1.1 stack, the
//! loopback TCP and the client reading the answer.

use crate::bench_api::{Work, params};
use crate::bench_api_http::{Keys, signed_target};
use crate::bench_api_setup::Ids;
use anyhow::Context;
use serde::Serialize;
use std::time::Instant;
use stratus_api::Api;
use stratus_api::params::Params;
use stratus_api::registry::{Ctx, commands};

/// Medians over the iterations, µs.
#[derive(Debug, Serialize)]
pub struct Stages {
    pub command: String,
    pub iterations: usize,
    pub sign_us: f64,
    pub parse_us: f64,
    pub auth_us: f64,
    pub check_us: f64,
    pub handler_us: f64,
    /// JSON text, and freeing the response objects.
    pub render_us: f64,
    /// The median of the sums (not the sum of the medians).
    pub total_us: f64,
    pub body_bytes: usize,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable_by(f64::total_cmp);
    v[v.len() / 2]
}

fn us(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e6
}

/// `iterations` requests of `work`, stage by stage.
pub async fn stages(api: &Api, keys: &Keys, ids: &Ids, work: Work, iterations: usize) -> anyhow::Result<Stages> {
    let mut t: [Vec<f64>; 7] = Default::default();
    let mut body_bytes = 0;
    let mut command = String::new();
    let headers = axum::http::HeaderMap::new();
    for i in 0..iterations {
        let p = params(work, ids, i as u64);
        let refs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let t0 = Instant::now();
        let target = signed_target(&refs, keys);
        let sign = us(t0);
        let query = target.split_once('?').map_or("", |(_, q)| q);
        let t1 = Instant::now();
        let ps = Params::parse(query.as_bytes(), &[]).map_err(|e| anyhow::anyhow!("{}", e.text))?;
        let parse = us(t1);
        let t2 = Instant::now();
        let (caller, _) =
            stratus_api::auth::authenticate(api, &headers, &ps).map_err(|e| anyhow::anyhow!("{}", e.text))?;
        let auth = us(t2);
        let t3 = Instant::now();
        let cmd = commands()
            .get(ps.command().unwrap_or(""))
            .copied()
            .context("unknown command")?;
        cmd.check_params(&ps).map_err(|e| anyhow::anyhow!("{}", e.text))?;
        let check = us(t3);
        let ctx = Ctx {
            api,
            caller: &caller,
            p: &ps,
            cmd,
        };
        let t4 = Instant::now();
        let body = (cmd.handler)(&ctx)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", cmd.name, e.text))?;
        let handler = us(t4);
        let t5 = Instant::now();
        let text = stratus_api::render::json(&cmd.response_name(), &body);
        drop(body);
        let render = us(t5);
        body_bytes = text.len();
        command = crate::bench_api::command_of(work);
        let all = [sign, parse, auth, check, handler, render];
        for (v, x) in t.iter_mut().zip(all) {
            v.push(x);
        }
        t[6].push(all.iter().sum());
    }
    let [sign, parse, auth, check, handler, render, total] = &mut t;
    Ok(Stages {
        command,
        iterations,
        sign_us: median(sign),
        parse_us: median(parse),
        auth_us: median(auth),
        check_us: median(check),
        handler_us: median(handler),
        render_us: median(render),
        total_us: median(total),
        body_bytes,
    })
}
