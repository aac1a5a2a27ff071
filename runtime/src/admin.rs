//! The admin control socket of `stratus manage`: newline-delimited JSON on a
//! loopback TCP port (not the CloudStack API). One request object per line,
//! one answer object per line, in order:
//!
//! | request | answer |
//! |---|---|
//! | `{"submit": <Request>}` | `{"job": "<uuid>"}` once the request is durable, or `{"error": "..."}` (refused: nothing changed) |
//! | `{"job_status": "<uuid>"}` | [`JobStatusAnswer`], or `{"error": "unknown job ..."}` |
//! | `{"job_status": ["<uuid>", ...]}` | `{"jobs": [<JobStatusAnswer or {"job": id, "error": ...}>, ...]}` (one durable read for all) |
//! | `{"summary": true}` | [`Summary`] |
//!
//! Reads answer only once every input they may reflect is durable, so what a
//! client saw is never taken back by a crash.

use crate::hosts::{DurabilityStats, Gateway};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use stratus_core::controller::input::hash_hex;
use stratus_core::controller::{Controller, JobId, JobStatus, Request};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The longest request line accepted.
const MAX_LINE: usize = 1 << 20;

/// Answer to `job_status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatusAnswer {
    pub job: JobId,
    /// `Pending`, `Succeeded` or `Failed`.
    pub status: JobStatus,
    pub command: String,
    pub vm: Option<String>,
    /// The VM's state now, if the job has a VM.
    pub vm_state: Option<String>,
    pub error: Option<String>,
    pub error_code: Option<u16>,
}

/// Answer to `summary`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Jobs by status (`Pending`, `Succeeded`, `Failed`).
    pub jobs: BTreeMap<String, u64>,
    /// VMs by state.
    pub vms: BTreeMap<String, u64>,
    /// Sagas still working (jobs, internal expunges, HA restarts).
    pub sagas_in_flight: usize,
    /// Hosts by name: their status.
    pub hosts: BTreeMap<String, String>,
    /// `Cloud::audit` violations (empty: capacity reconciles exactly).
    pub audit: Vec<String>,
    /// Addresses allocated and VMs holding one (equal when nothing leaked).
    pub addresses: u64,
    pub vms_with_address: u64,
    /// SHA-256 of the whole controller state (changes with every heartbeat).
    pub state_hash: String,
    /// SHA-256 of the ledger alone ([`ledger_hash`]): stable while nothing happens.
    pub ledger_hash: String,
    /// Agents connected now, and inputs applied/durable (0 when summarized offline).
    pub connected: usize,
    pub applied: u64,
    pub durable: u64,
    /// The write-ahead path's counters (group commit batches, commit and
    /// snapshot times); `None` when summarized offline.
    pub durability: Option<DurabilityStats>,
}

/// SHA-256 of the ledger: VMs, volumes, capacity book, snapshots, addresses
/// and jobs — not clocks, heartbeats or host health, so it stays put while
/// nothing is done.
pub fn ledger_hash(ctl: &Controller) -> String {
    let c = &ctl.cloud();
    let vms: Vec<_> = c.vms().map(|(_, v)| v).collect();
    let volumes: Vec<_> = c.volumes().map(|(_, v)| v).collect();
    let snapshots: Vec<_> = c.snapshots().collect();
    let addresses: Vec<_> = ctl.ipam().all().collect();
    let v = json!({
        "vms": vms, "volumes": volumes, "book": &c.book, "snapshots": snapshots,
        "addresses": addresses, "jobs": ctl.jobs(),
    });
    hash_hex(&serde_json::to_vec(&v).expect("the ledger serializes"))
}

/// The summary of a controller (`connected`, `applied`, `durable` left 0).
pub fn summarize(ctl: &Controller) -> Summary {
    let mut jobs = BTreeMap::new();
    for j in ctl.jobs() {
        *jobs.entry(format!("{:?}", j.status)).or_insert(0) += 1;
    }
    let mut vms = BTreeMap::new();
    for (_, v) in ctl.cloud().vms() {
        *vms.entry(v.state.to_string()).or_insert(0) += 1;
    }
    let hosts = ctl
        .cloud()
        .inv
        .hosts
        .iter()
        .map(|h| (h.name.clone(), h.status.to_string()))
        .collect();
    Summary {
        jobs,
        vms,
        sagas_in_flight: ctl.in_flight(),
        hosts,
        audit: ctl.cloud().audit().violations.iter().map(|v| v.to_string()).collect(),
        addresses: ctl.ipam().all().count() as u64,
        vms_with_address: ctl.cloud().vms().filter(|(_, v)| v.nic.is_some()).count() as u64,
        state_hash: ctl.state_hash(),
        ledger_hash: ledger_hash(ctl),
        connected: 0,
        applied: 0,
        durable: 0,
        durability: None,
    }
}

fn job_status(ctl: &Controller, id: JobId) -> Option<JobStatusAnswer> {
    let j = ctl.job(id)?;
    let vm = j.vm.and_then(|vm| ctl.cloud().vm(vm));
    Some(JobStatusAnswer {
        job: j.id,
        status: j.status,
        command: format!("{:?}", j.command),
        vm: j.vm.map(|v| v.to_string()),
        vm_state: vm.map(|v| v.state.to_string()),
        error: j.error.clone(),
        error_code: j.error_code,
    })
}

fn error(message: impl std::fmt::Display) -> Value {
    json!({ "error": message.to_string() })
}

/// Answers one request line.
pub async fn answer(gw: &Gateway, line: &str) -> Value {
    let req: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return error(format!("malformed request: {e}")),
    };
    if let Some(r) = req.get("submit") {
        let request: Request = match serde_json::from_value(r.clone()) {
            Ok(r) => r,
            Err(e) => return error(format!("not a request: {e}")),
        };
        return match gw.try_submit(request).await {
            Some(Ok(job)) => json!({ "job": job }),
            Some(Err(e)) => error(e),
            None => error("the management server is stopping"),
        };
    }
    if let Some(ids) = req.get("job_status") {
        let parse = |v: &Value| v.as_str().and_then(|s| s.parse().ok()).map(JobId);
        if let Some(list) = ids.as_array() {
            let Some(ids) = list.iter().map(parse).collect::<Option<Vec<JobId>>>() else {
                return error("job_status takes job ids (UUIDs)");
            };
            let read = |ctl: &Controller| {
                ids.iter()
                    .map(|id| match job_status(ctl, *id) {
                        Some(s) => serde_json::to_value(s).expect("statuses serialize"),
                        None => json!({ "job": id, "error": format!("unknown job {id}") }),
                    })
                    .collect::<Vec<Value>>()
            };
            return match gw.read_durable(read).await {
                Some(jobs) => json!({ "jobs": jobs }),
                None => error("the management server is stopping"),
            };
        }
        let Some(id) = parse(ids) else {
            return error("job_status takes a job id (a UUID) or a list of them");
        };
        return match gw.read_durable(|ctl| job_status(ctl, id)).await {
            Some(Some(s)) => serde_json::to_value(s).expect("statuses serialize"),
            Some(None) => error(format!("unknown job {id}")),
            None => error("the management server is stopping"),
        };
    }
    if req.get("summary").is_some() {
        let connected = gw.connected().len();
        return match gw.read_durable(summarize).await {
            Some(mut s) => {
                let d = gw.durability();
                (s.connected, s.applied, s.durable) = (connected, d.applied, d.durable);
                s.durability = Some(d);
                serde_json::to_value(s).expect("summaries serialize")
            }
            None => error("the management server is stopping"),
        };
    }
    error("expected one of: submit, job_status, summary")
}

/// Serves the control socket until the listener fails.
pub async fn serve_admin(gw: Gateway, listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (sock, _) = listener.accept().await?;
        tokio::spawn(session(gw.clone(), sock));
    }
}

async fn session(gw: Gateway, sock: TcpStream) {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r);
    let mut line = String::new();
    loop {
        line.clear();
        match (&mut lines).take(MAX_LINE as u64).read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) if !line.ends_with('\n') && line.len() >= MAX_LINE => {
                let _ = w.write_all(format!("{}\n", error("line too long")).as_bytes()).await;
                return;
            }
            Ok(_) => {}
        }
        if line.trim().is_empty() {
            continue;
        }
        let out = answer(&gw, line.trim()).await;
        if w.write_all(format!("{out}\n").as_bytes()).await.is_err() {
            return;
        }
    }
}
