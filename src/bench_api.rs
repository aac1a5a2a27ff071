//! `stratus bench api`: the CloudStack API under load, end to end in one
//! process. The whole server starts as `stratus serve` assembles it
//! (`stratus::serve::start`: the durable gateway on a Store, simulated hosts
//! as real agents over TLS, the HTTP API) on a fresh temporary SQLite file
//! (or `--db`); the load generator runs in the same process and runtime and
//! talks to it over loopback TCP, keep-alive HTTP/1.1, one connection per
//! client, every request signed afresh (the signing is inside the measured
//! latency).
//!
//! Everything is built through the API, as an operator and a tenant would
//! (`bench_api_setup`): zone, pod, Simulator clusters of up to 100 hosts of 64
//! cores and 512 GiB with an NFS pool each, an image store, an offering of
//! 1 vCPU / 256 MB, a template, a user account with API keys and a /16
//! network. Then the phases:
//! 1. populate: `--vms` × `deployVirtualMachine startvm=false` (the VM and its
//!    volume records, no driver call) from `--clients` clients;
//! 2. `listVirtualMachines pagesize=500` over those VMs, cycling the pages,
//!    from 1 client (target 1: p99 < 20 ms) and from `--clients` clients;
//! 3. `listZones` from `--clients` clients (target 2: ≥ 5,000 requests/s);
//! 4. one request at a time, in process, stage by stage (`bench_api_stages`);
//! 5. `deployVirtualMachine startvm=false` from `--clients` clients (target 3:
//!    ≥ 2,000 accepted/s: HTTP 200 with the job id, the request durable);
//! 6. `deployVirtualMachine` with startvm=true into the /16 network: the same
//!    acceptance while the jobs run on the simulated hosts, at most as many as
//!    the hosts can run (50 guests each); then every job of the phase is
//!    waited for and must have succeeded.
//!
//! Any answer other than HTTP 200, a 200 that is not the expected answer, a
//! connection error, a failed or unfinished job is an error: the phase's
//! verdict is FAIL and the command exits non-zero. A missed target alone does
//! not change the exit status.

use crate::bench_api_http::{Conn, Keys, signed_target};
use crate::bench_api_report::{ApiReport, JobsReport, PhaseReport, Verdict, journal_delta, pct_ms};
use crate::bench_api_setup::{Ids, setup};
use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stratus::serve::{Running, ServeOptions, start};
use stratus_core::controller::{JobId, JobStatus};

#[derive(Args, Debug)]
pub struct ApiArgs {
    /// VMs to create (deployVirtualMachine startvm=false) before the list phases.
    #[arg(long, default_value_t = 10_000)]
    vms: usize,
    /// Concurrent clients (one keep-alive connection each) of the load phases.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Length of each timed phase, seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Store URL (`sqlite://PATH`, `postgres://USER:PASS@HOST/DB`, an empty
    /// store); default: a new SQLite file in the temporary directory, removed
    /// afterwards.
    #[arg(long)]
    db: Option<String>,
    /// Simulated hosts (64 cores, 512 GiB each), 100 per cluster. The
    /// Simulator runs at most 50 guests per host: the startvm=true phase
    /// deploys at most hosts × 50 VMs.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=2000))]
    hosts: u16,
    /// Each simulated host call that changes something takes MIN-MAX ms.
    #[arg(long, value_name = "MIN-MAX", default_value = "1-5")]
    latency: String,
    /// `pagesize` of listVirtualMachines.
    #[arg(long, default_value_t = 500)]
    pagesize: usize,
    /// Store a snapshot every this many inputs (as `stratus serve --snapshot-every`).
    #[arg(long, default_value_t = 10_000)]
    snapshot_every: u64,
    /// Skip the last phase (deploys with startvm=true and their jobs).
    #[arg(long)]
    no_start: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// What a phase asks.
#[derive(Clone, Copy, Debug)]
pub enum Work {
    ListVms { pages: usize },
    ListZones,
    Deploy { start: bool },
}

/// How long a phase runs: until either limit is reached.
#[derive(Clone, Copy, Debug)]
struct Limit {
    seconds: Option<f64>,
    requests: Option<u64>,
}

/// A target of the issue.
#[derive(Clone, Copy, Debug)]
enum Target {
    P99BelowMs(f64),
    RateAtLeast(f64),
}

/// What one client saw.
#[derive(Debug, Default)]
struct Tally {
    latencies_us: Vec<u32>,
    body_bytes: u64,
    statuses: BTreeMap<u16, u64>,
    io_errors: u64,
    bad_bodies: u64,
    first_error: Option<String>,
    jobs: Vec<String>,
}

/// How a 200 answer must begin (list phases: the command's envelope and the
/// expected `count`), so a wrong answer cannot pass as a fast one.
fn expected_prefix(work: Work, vms: usize) -> Option<String> {
    match work {
        Work::ListVms { .. } => Some(format!("{{\"listvirtualmachinesresponse\":{{\"count\":{vms},")),
        Work::ListZones => Some("{\"listzonesresponse\":{\"count\":1,".into()),
        Work::Deploy { .. } => None,
    }
}

fn latency(s: &str) -> anyhow::Result<(u64, u64)> {
    let (a, b) = s.split_once('-').context("--latency takes MIN-MAX, e.g. 1-5")?;
    let (a, b): (u64, u64) = (a.trim().parse()?, b.trim().parse()?);
    anyhow::ensure!(a <= b, "--latency {s}: MIN is above MAX");
    Ok((a, b))
}

pub fn params(work: Work, ids: &Ids, seq: u64) -> Vec<(&'static str, String)> {
    match work {
        Work::ListVms { pages } => vec![
            ("command", "listVirtualMachines".into()),
            ("page", (seq % pages.max(1) as u64 + 1).to_string()),
            ("pagesize", ids.pagesize.clone()),
        ],
        Work::ListZones => vec![("command", "listZones".into())],
        Work::Deploy { start } => {
            let mut p = vec![
                ("command", "deployVirtualMachine".into()),
                ("zoneid", ids.zone.clone()),
                ("serviceofferingid", ids.offering.clone()),
                ("templateid", ids.template.clone()),
                ("startvm", start.to_string()),
            ];
            if start {
                p.push(("networkids", ids.network.clone()));
            }
            p
        }
    }
}

pub fn command_of(work: Work) -> String {
    match work {
        Work::ListVms { .. } => "listVirtualMachines".into(),
        Work::ListZones => "listZones".into(),
        Work::Deploy { start } => format!("deployVirtualMachine startvm={start}"),
    }
}

/// The `jobid` of a deploy answer.
fn job_id(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let rest = &text[text.find("\"jobid\":\"")? + 9..];
    Some(rest[..rest.find('"')?].to_string())
}

fn short(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

#[allow(clippy::too_many_arguments)]
async fn client(
    addr: SocketAddr,
    keys: Arc<Keys>,
    ids: Arc<Ids>,
    work: Work,
    limit: Limit,
    seq: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    ready: Arc<tokio::sync::Barrier>,
    start: Arc<std::sync::OnceLock<Instant>>,
) -> Tally {
    let mut t = Tally::default();
    let mut conn = Conn::new(addr);
    if let Err(e) = conn.connect().await {
        t.io_errors += 1;
        t.first_error = Some(format!("connect: {e}"));
    }
    ready.wait().await;
    let t0 = *start.get_or_init(Instant::now);
    let collect_jobs = matches!(work, Work::Deploy { start: true });
    let prefix = expected_prefix(work, ids.vms);
    loop {
        let n = seq.fetch_add(1, Ordering::Relaxed);
        if limit.requests.is_some_and(|max| n >= max) || limit.seconds.is_some_and(|s| t0.elapsed().as_secs_f64() >= s)
        {
            break;
        }
        let began = Instant::now();
        let p = params(work, &ids, n);
        let refs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let target = signed_target(&refs, &keys);
        let r = conn.get(&target).await;
        let us = u32::try_from(began.elapsed().as_micros()).unwrap_or(u32::MAX);
        t.latencies_us.push(us);
        t.body_bytes += conn.body.len() as u64;
        match r {
            Ok(200) => {
                let good = match &prefix {
                    Some(p) => conn.body.starts_with(p.as_bytes()),
                    None => match job_id(&conn.body) {
                        Some(j) if collect_jobs => {
                            t.jobs.push(j);
                            true
                        }
                        Some(_) => true,
                        None => false,
                    },
                };
                if !good {
                    t.bad_bodies += 1;
                    t.first_error
                        .get_or_insert_with(|| format!("unexpected 200 answer: {}", short(&conn.body)));
                }
                *t.statuses.entry(200).or_default() += 1;
            }
            Ok(status) => {
                *t.statuses.entry(status).or_default() += 1;
                t.first_error
                    .get_or_insert_with(|| format!("HTTP {status}: {}", short(&conn.body)));
            }
            Err(e) => {
                t.io_errors += 1;
                t.first_error.get_or_insert_with(|| format!("connection: {e}"));
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    t
}

fn bar(limit: Limit, name: &str) -> ProgressBar {
    // Hidden automatically when stderr is not a terminal.
    let (len, template) = match (limit.requests, limit.seconds) {
        (Some(n), _) => (n, "{msg} [{bar:30}] {pos}/{len} {per_sec}"),
        (None, s) => ((s.unwrap_or(0.0) * 10.0) as u64, "{msg} [{bar:30}] {elapsed}"),
    };
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(name.to_string());
    pb
}

struct Phase<'a> {
    name: &'a str,
    work: Work,
    clients: usize,
    limit: Limit,
    target: Option<Target>,
}

async fn run_phase(running: &Running, keys: &Arc<Keys>, ids: &Arc<Ids>, ph: Phase<'_>) -> (PhaseReport, Vec<String>) {
    let addr = running.http;
    let before = running.gw.durability();
    let seq = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(tokio::sync::Barrier::new(ph.clients));
    let start = Arc::new(std::sync::OnceLock::new());
    let pb = bar(ph.limit, ph.name);
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (pb, done, stop, start, limit) = (pb.clone(), done.clone(), stop.clone(), start.clone(), ph.limit);
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if limit.requests.is_some() {
                    pb.set_position(done.load(Ordering::Relaxed));
                } else {
                    let s = start.get().map_or(0.0, |t: &Instant| t.elapsed().as_secs_f64());
                    pb.set_position((s * 10.0) as u64);
                }
            }
        })
    };
    let tasks: Vec<_> = (0..ph.clients)
        .map(|_| {
            tokio::spawn(client(
                addr,
                keys.clone(),
                ids.clone(),
                ph.work,
                ph.limit,
                seq.clone(),
                done.clone(),
                ready.clone(),
                start.clone(),
            ))
        })
        .collect();
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await.unwrap_or_else(|e| Tally {
            io_errors: 1,
            first_error: Some(format!("client task failed: {e}")),
            ..Tally::default()
        });
        all.latencies_us.extend(t.latencies_us);
        all.body_bytes += t.body_bytes;
        for (s, n) in t.statuses {
            *all.statuses.entry(s).or_default() += n;
        }
        all.io_errors += t.io_errors;
        all.bad_bodies += t.bad_bodies;
        all.first_error = all.first_error.or(t.first_error);
        all.jobs.extend(t.jobs);
    }
    let seconds = start.get().map_or(0.0, |t| t.elapsed().as_secs_f64());
    let journal = journal_delta(&before, &running.gw.durability());
    stop.store(true, Ordering::Relaxed);
    let _ = ticker.await;
    pb.finish_and_clear();

    let lat = &mut all.latencies_us;
    lat.sort_unstable();
    let requests = lat.len() as u64;
    let non_200: u64 = all.statuses.iter().filter(|(s, _)| **s != 200).map(|(_, n)| n).sum();
    let errors = non_200 + all.io_errors + all.bad_bodies;
    let rate = if seconds > 0.0 { requests as f64 / seconds } else { 0.0 };
    let p99 = pct_ms(lat, 0.99);
    let verdict = ph.target.map(|t| {
        let (text, met) = match t {
            Target::P99BelowMs(ms) => (format!("p99 < {ms} ms"), p99 < ms),
            Target::RateAtLeast(r) => (format!(">= {r} requests/s"), rate >= r),
        };
        Verdict {
            target: if errors > 0 {
                format!("{text} (and no errors: {errors})")
            } else {
                text
            },
            pass: met && errors == 0,
        }
    });
    let report = PhaseReport {
        name: ph.name.to_string(),
        command: command_of(ph.work),
        clients: ph.clients,
        requests,
        seconds,
        requests_per_s: rate,
        mean_ms: if lat.is_empty() {
            0.0
        } else {
            lat.iter().map(|&u| f64::from(u)).sum::<f64>() / lat.len() as f64 / 1000.0
        },
        p50_ms: pct_ms(lat, 0.50),
        p90_ms: pct_ms(lat, 0.90),
        p99_ms: p99,
        max_ms: lat.last().map_or(0.0, |&u| f64::from(u) / 1000.0),
        mean_body_bytes: all.body_bytes.checked_div(requests).unwrap_or(0),
        statuses: all.statuses.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
        io_errors: all.io_errors,
        bad_bodies: all.bad_bodies,
        errors,
        first_error: all.first_error,
        verdict,
        journal,
    };
    (report, all.jobs)
}

/// Waits (up to 5 minutes) until no job of `jobs` is pending.
async fn drain(running: &Running, jobs: &[String]) -> JobsReport {
    let ids: Vec<JobId> = jobs
        .iter()
        .filter_map(|j| uuid::Uuid::parse_str(j).ok().map(JobId))
        .collect();
    let t0 = Instant::now();
    loop {
        let (mut ok, mut failed, mut pending, mut first) = (0, 0, 0, None);
        running.api.read(|c| {
            for id in &ids {
                match c.job(*id).map(|j| (j.status, &j.error)) {
                    Some((JobStatus::Succeeded, _)) => ok += 1,
                    Some((JobStatus::Failed, e)) => {
                        failed += 1;
                        if first.is_none() {
                            first = e.clone();
                        }
                    }
                    _ => pending += 1,
                }
            }
        });
        if pending == 0 || t0.elapsed() > Duration::from_secs(300) {
            return JobsReport {
                submitted: jobs.len(),
                succeeded: ok,
                failed,
                pending: pending + jobs.len() - ids.len(),
                drain_seconds: t0.elapsed().as_secs_f64(),
                first_failure: first,
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn bench(args: &ApiArgs, db: String, shown_db: String) -> anyhow::Result<ApiReport> {
    let latency_ms = latency(&args.latency)?;
    anyhow::ensure!(
        args.clients >= 1 && args.seconds > 0.0,
        "--clients and --seconds must be positive"
    );
    anyhow::ensure!(
        args.pagesize >= 1 && args.vms >= 1,
        "--pagesize and --vms must be at least 1"
    );
    let t0 = Instant::now();
    let running = start(ServeOptions {
        db,
        http: SocketAddr::from(([127, 0, 0, 1], 0)),
        demo: false,
        admin_password: Some("bench-admin-password-1".into()),
        seed: 1,
        fleet_file: None,
        latency_ms,
        snapshot_every: args.snapshot_every,
        secondary_mounts: Vec::new(),
        agent_listen: None,
    })
    .await?;
    let result = async {
        let (keys, ids) = setup(&running, args.hosts, args.pagesize, args.vms).await?;
        let setup_seconds = t0.elapsed().as_secs_f64();
        let (keys, ids) = (Arc::new(keys), Arc::new(ids));
        let addr = running.http;
        let timed = Limit {
            seconds: Some(args.seconds),
            requests: None,
        };
        let n = args.clients;
        let mut phases = Vec::new();
        let (populate, _) = run_phase(
            &running,
            &keys,
            &ids,
            Phase {
                name: "populate",
                work: Work::Deploy { start: false },
                clients: n,
                limit: Limit {
                    seconds: None,
                    requests: Some(args.vms as u64),
                },
                target: None,
            },
        )
        .await;
        phases.push(populate);
        let mut c = Conn::new(addr);
        let v = c
            .call(&keys, &[("command", "listVirtualMachines"), ("pagesize", "1")])
            .await?;
        let listed_count = v["listvirtualmachinesresponse"]["count"].as_u64().unwrap_or(0);
        let pages = args.vms.div_ceil(args.pagesize);
        let plan = [
            ("list VMs, 1 client", Work::ListVms { pages }, 1, Some(Target::P99BelowMs(20.0))),
            ("list VMs", Work::ListVms { pages }, n, None),
            ("listZones", Work::ListZones, n, Some(Target::RateAtLeast(5000.0))),
            (
                "deploy, startvm=false",
                Work::Deploy { start: false },
                n,
                Some(Target::RateAtLeast(2000.0)),
            ),
        ];
        let mut stages = Vec::new();
        for (name, work, clients, target) in plan {
            if matches!(work, Work::Deploy { .. }) {
                // Here: the list phases are over, and the VM count may grow.
                for (work, k) in [(Work::ListVms { pages }, 200), (Work::ListZones, 2000), (Work::Deploy { start: false }, 200)] {
                    stages.push(crate::bench_api_stages::stages(&running.api, &keys, &ids, work, k).await?);
                }
            }
            let phase = Phase {
                name,
                work,
                clients,
                limit: timed,
                target,
            };
            phases.push(run_phase(&running, &keys, &ids, phase).await.0);
        }
        let mut start_jobs = None;
        if !args.no_start {
            // Every VM of this phase runs: at most the hosts' guest limit in all.
            let phase = Phase {
                name: "deploy, startvm=true",
                work: Work::Deploy { start: true },
                clients: n,
                limit: Limit {
                    requests: Some(ids.guest_capacity),
                    ..timed
                },
                target: Some(Target::RateAtLeast(2000.0)),
            };
            let (report, jobs) = run_phase(&running, &keys, &ids, phase).await;
            phases.push(report);
            start_jobs = Some(drain(&running, &jobs).await);
        }
        let errors = phases.iter().map(|p| p.errors).sum::<u64>()
            + u64::from(listed_count != args.vms as u64)
            + start_jobs.as_ref().map_or(0, |j| (j.failed + j.pending) as u64);
        Ok::<_, anyhow::Error>(ApiReport {
            db: shown_db,
            hosts: args.hosts,
            vms: args.vms,
            clients: n,
            seconds: args.seconds,
            latency_ms,
            pagesize: args.pagesize,
            snapshot_every: args.snapshot_every,
            how_populated: "deployVirtualMachine startvm=false through the API (signed, keep-alive), --clients at a time",
            setup_seconds,
            listed_count,
            phases,
            stages,
            start_jobs,
            errors,
            max_rss_mb: crate::bench::peak_rss_mb(),
            guest_capacity: ids.guest_capacity,
        })
    }
    .await;
    running.stop();
    result
}

pub fn run(args: &ApiArgs) -> anyhow::Result<()> {
    let temp = args.db.is_none().then(|| crate::bench_journal::TempDb::new("api"));
    let (url, shown) = match (&args.db, &temp) {
        (Some(url), _) => (url.clone(), stratus_runtime::store::redact_url(url)),
        (None, Some(t)) => (t.url(), "temporary SQLite file".to_string()),
        (None, None) => unreachable!("a temporary database when no URL is given"),
    };
    // As `stratus serve` runs: two worker threads; the clients share them.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let report = rt.block_on(bench(args, url, shown))?;
    rt.shutdown_timeout(Duration::from_secs(1));
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    anyhow::ensure!(
        report.errors == 0,
        "{} errors (non-200 answers, connection errors, deploys without a job id, failed or unfinished jobs, or a wrong VM count)",
        report.errors
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_found_in_deploy_answers() {
        let body = br#"{"deployvirtualmachineresponse":{"id":"a","jobid":"5f0c-1"}}"#;
        assert_eq!(job_id(body).as_deref(), Some("5f0c-1"));
        assert_eq!(job_id(b"{}"), None);
    }
}
