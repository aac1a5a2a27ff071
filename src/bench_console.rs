//! `stratus bench console`: the web console's instances page over many VMs,
//! timed inside the server (the handler: API pipeline call, JSON, template,
//! body), for an admin (every account, `listall`) and for the tenant that
//! owns the VMs. The VMs are created as `bench api` creates them: the whole
//! server in-process on a Store, deployVirtualMachine startvm=false through
//! the API's own pipeline with the tenant's login session.

use anyhow::Context;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stratus::serve::{ServeOptions, start};
use stratus_api::Api;
use stratus_console::client::Session;

#[derive(Args, Debug)]
pub struct ConsoleArgs {
    /// VMs to create before timing the page.
    #[arg(long, default_value_t = 10_000)]
    vms: usize,
    /// Simulated hosts.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=2000))]
    hosts: u16,
    /// Page loads per case.
    #[arg(long, default_value_t = 50)]
    iterations: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize, Debug)]
struct Case {
    name: String,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    bytes: usize,
}

#[derive(Serialize, Debug)]
struct ConsoleReport {
    vms: usize,
    hosts: u16,
    iterations: usize,
    target_ms: f64,
    cases: Vec<Case>,
    populate_seconds: f64,
}

/// Logs in through the pipeline; the session as a browser would hold it.
async fn session(api: &Arc<Api>, user: &str, password: &str) -> anyhow::Result<Session> {
    let pairs = vec![
        ("command".to_string(), "login".to_string()),
        ("username".to_string(), user.to_string()),
        ("password".to_string(), password.to_string()),
        ("response".to_string(), "json".to_string()),
    ];
    let a = stratus_api::server::call(api, Method::POST, &HeaderMap::new(), pairs).await;
    anyhow::ensure!(a.status == 200, "login of {user} refused ({})", a.status);
    let mut cookies: Vec<String> = a
        .cookies
        .iter()
        .filter_map(|c| c.split(';').next().map(str::to_string))
        .collect();
    let admin = user == "admin";
    cookies.push(format!("stratususer={user}.{user}.{}", if admin { 1 } else { 0 }));
    let mut h = HeaderMap::new();
    h.insert(header::COOKIE, HeaderValue::from_str(&cookies.join("; "))?);
    Session::from_headers(api, &h).context("no session cookie after login")
}

async fn time_case(s: &Session, name: &str, filters: &[(&str, &str)], n: usize) -> anyhow::Result<Case> {
    let f: HashMap<String, String> = filters.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut ms = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let t = Instant::now();
        let r = stratus_console::instances_page(s, &f).await;
        anyhow::ensure!(r.status().is_success(), "{name}: HTTP {}", r.status());
        let body = axum::body::to_bytes(r.into_body(), usize::MAX).await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        bytes = body.len();
        anyhow::ensure!(
            std::str::from_utf8(&body).is_ok_and(|b| b.contains("Page ")),
            "{name}: the page has no pager"
        );
    }
    ms.sort_by(f64::total_cmp);
    let q = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    Ok(Case {
        name: name.to_string(),
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        max_ms: *ms.last().unwrap_or(&0.0),
        bytes,
    })
}

async fn bench(args: &ConsoleArgs, db: String) -> anyhow::Result<ConsoleReport> {
    let running = start(ServeOptions {
        db,
        http: SocketAddr::from(([127, 0, 0, 1], 0)),
        demo: false,
        admin_password: Some("bench-admin-password-1".into()),
        seed: 1,
        fleet_file: None,
        latency_ms: (1, 5),
        snapshot_every: 10_000,
        ..ServeOptions::default()
    })
    .await?;
    let result = async {
        let (_, ids) = crate::bench_api_setup::setup(&running, args.hosts, 500, args.vms).await?;
        let tenant = session(&running.api, "bench", "bench-password-1").await?;
        let t0 = Instant::now();
        let bar = ProgressBar::new(args.vms as u64).with_style(
            ProgressStyle::with_template("creating VMs {bar:40} {pos}/{len} {per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let workers = 16;
        let mut tasks = Vec::new();
        for w in 0..workers {
            let (api, s) = (running.api.clone(), tenant.clone());
            let (zone, offering, template, network) = (
                ids.zone.clone(),
                ids.offering.clone(),
                ids.template.clone(),
                ids.network.clone(),
            );
            let (bar, n) = (bar.clone(), args.vms);
            tasks.push(tokio::spawn(async move {
                let mut i = w;
                while i < n {
                    let name = format!("vm-{i:05}");
                    let pairs = vec![
                        ("command".to_string(), "deployVirtualMachine".to_string()),
                        ("zoneid".to_string(), zone.clone()),
                        ("serviceofferingid".to_string(), offering.clone()),
                        ("templateid".to_string(), template.clone()),
                        ("networkids".to_string(), network.clone()),
                        ("name".to_string(), name),
                        ("startvm".to_string(), "false".to_string()),
                        ("sessionkey".to_string(), s.key.clone()),
                        ("response".to_string(), "json".to_string()),
                    ];
                    let a = stratus_api::server::call(&api, Method::POST, &s.headers, pairs).await;
                    anyhow::ensure!(a.status == 200, "deploy refused: {}", a.status);
                    bar.inc(1);
                    i += workers;
                }
                Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        bar.finish_and_clear();
        let populate_seconds = t0.elapsed().as_secs_f64();
        let admin = session(&running.api, "admin", "bench-admin-password-1").await?;
        let last = args.vms.div_ceil(stratus_console::PAGE_SIZE).to_string();
        let n = args.iterations;
        let cases = vec![
            time_case(&admin, "admin, page 1 (every account)", &[], n).await?,
            time_case(&admin, "admin, last page", &[("page", &last)], n).await?,
            time_case(&admin, "admin, keyword vm-099", &[("keyword", "vm-099")], n).await?,
            time_case(
                &admin,
                "admin, state Stopped, page 2",
                &[("state", "Stopped"), ("page", "2")],
                n,
            )
            .await?,
            time_case(&tenant, "tenant, page 1", &[], n).await?,
            time_case(&tenant, "tenant, last page", &[("page", &last)], n).await?,
        ];
        Ok::<_, anyhow::Error>(ConsoleReport {
            vms: args.vms,
            hosts: args.hosts,
            iterations: n,
            target_ms: 300.0,
            cases,
            populate_seconds,
        })
    }
    .await;
    running.stop();
    result
}

pub fn run(args: &ConsoleArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.vms >= 1 && args.iterations >= 1,
        "--vms and --iterations must be at least 1"
    );
    let temp = crate::bench_journal::TempDb::new("console");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let report = rt.block_on(bench(args, temp.url()))?;
    rt.shutdown_timeout(Duration::from_secs(1));
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "instances page, {} VMs ({} per page), {} loads per case, server time (handler + body):",
            report.vms,
            stratus_console::PAGE_SIZE,
            report.iterations
        );
        println!(
            "{:<36} {:>9} {:>9} {:>9} {:>9}",
            "case", "p50 ms", "p99 ms", "max ms", "bytes"
        );
        for c in &report.cases {
            println!(
                "{:<36} {:>9.2} {:>9.2} {:>9.2} {:>9}",
                c.name, c.p50_ms, c.p99_ms, c.max_ms, c.bytes
            );
        }
        println!(
            "VMs created in {:.1} s; target: p99 < {} ms",
            report.populate_seconds, report.target_ms
        );
    }
    let worst = report.cases.iter().map(|c| c.p99_ms).fold(0.0, f64::max);
    anyhow::ensure!(
        worst < report.target_ms,
        "p99 {worst:.1} ms is above the {} ms target",
        report.target_ms
    );
    Ok(())
}
