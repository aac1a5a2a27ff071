//! `stratus bench journal`: durable journal throughput with group commit.
//!
//! Wraps `stratus_runtime::store::bench_journal`: `--producers` tasks each
//! append one input at a time through a `GroupCommit` and wait until it is
//! durable; the writer commits whatever queued up as one transaction. By
//! default the store is a fresh SQLite file in the temporary directory (WAL,
//! `synchronous=FULL`: every commit is fsynced), removed afterwards.
//!
//! Payloads are opaque bytes of `--payload-bytes`; by default the size of a
//! real encoded controller input (a deploy request, the largest per-call
//! input). The sizes of the common inputs, encoded as the journal stores them
//! (`Input::to_bytes`), are reported alongside.

use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use stratus_core::controller::effects::{DriverError, DriverResult, OpId, Timer};
use stratus_core::controller::{Input, Request};
use stratus_runtime::store::{JournalBench, bench_journal, redact_url};
use stratus_sim::synth::{SynthConfig, build, workload};

#[derive(Args, Debug)]
pub struct JournalArgs {
    /// Store URL (`sqlite://PATH`, `postgres://USER:PASS@HOST/DB`); default: a
    /// new SQLite file in the temporary directory, removed afterwards.
    #[arg(long)]
    db: Option<String>,
    /// Inputs to append.
    #[arg(long, default_value_t = 100_000)]
    inputs: u64,
    /// Bytes per input (default: an encoded deploy request, see `payloads`).
    #[arg(long)]
    payload_bytes: Option<usize>,
    /// Concurrent producers, each waiting for its input to be durable before
    /// appending the next.
    #[arg(long, default_value_t = 256)]
    producers: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Encoded sizes (bytes, `Input::to_bytes`) of common controller inputs.
#[derive(Debug, Clone, Serialize)]
pub struct PayloadSizes {
    /// `Input::Result` of a call that succeeded (most journal entries).
    pub result_ok: usize,
    /// `Input::Result` of a call that failed with a short message.
    pub result_failed: usize,
    /// `Input::Timer { Tick }`.
    pub timer_tick: usize,
    /// `Input::Request { Deploy }` of the synthetic workload (offering, template, account, zone).
    pub request_deploy: usize,
    /// `Input::Request { Stop }`.
    pub request_stop: usize,
    /// `Input::Pings` with 1,000 hosts, and the bytes each host adds.
    pub pings_1000_hosts: usize,
    pub pings_per_host: f64,
}

impl PayloadSizes {
    pub fn measure() -> anyhow::Result<PayloadSizes> {
        let synth = build(&SynthConfig::with_hosts(1_000)).map_err(|e| anyhow::anyhow!("{e}"))?;
        let spec = workload(&synth, 1, 1).next().expect("one deploy");
        let vm = stratus_core::ids::VmId(stratus_core::rng::DetRng::new(1).uuid());
        let len = |i: Input| i.to_bytes().len();
        let pings = |n: usize| {
            len(Input::Pings {
                hosts: synth.hosts[..n].to_vec(),
            })
        };
        Ok(PayloadSizes {
            result_ok: len(Input::Result {
                op: OpId(123_456),
                result: DriverResult::Ok,
            }),
            result_failed: len(Input::Result {
                op: OpId(123_456),
                result: DriverResult::Failed(DriverError::unavailable("host agent not connected")),
            }),
            timer_tick: len(Input::Timer { timer: Timer::Tick(3) }),
            request_deploy: len(Input::Request {
                request: Request::Deploy(spec),
            }),
            request_stop: len(Input::Request {
                request: Request::Stop { vm, forced: false },
            }),
            pings_1000_hosts: pings(1_000),
            pings_per_host: (pings(1_000) - pings(0)) as f64 / 1_000.0,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct JournalReport {
    /// The store (password redacted), or "temporary SQLite file".
    pub db: String,
    /// Where the payload size came from.
    pub payload: &'static str,
    #[serde(flatten)]
    pub bench: JournalBench,
    pub payloads: PayloadSizes,
}

/// A fresh SQLite file in the temporary directory; its files are removed on drop.
#[derive(Debug)]
pub struct TempDb {
    path: PathBuf,
}

impl TempDb {
    pub fn new(what: &str) -> TempDb {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("stratus-bench-{what}-{}-{nanos}.db", std::process::id()));
        TempDb { path }
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    /// Bytes of the database and its WAL.
    pub fn bytes(&self) -> u64 {
        ["", "-wal"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{}{s}", self.path.display())).ok())
            .map(|m| m.len())
            .sum()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

pub fn run(args: &JournalArgs) -> anyhow::Result<()> {
    let payloads = PayloadSizes::measure()?;
    let (payload_bytes, payload) = match args.payload_bytes {
        Some(b) => (b, "--payload-bytes"),
        None => (payloads.request_deploy, "encoded deploy request"),
    };
    let temp = args.db.is_none().then(|| TempDb::new("journal"));
    let url = match (&args.db, &temp) {
        (Some(url), _) => url.clone(),
        (None, Some(t)) => t.url(),
        (None, None) => unreachable!("a temporary database when no URL is given"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let bench = rt.block_on(bench_journal(&url, args.inputs, payload_bytes, args.producers))?;
    let report = JournalReport {
        db: if temp.is_some() {
            "temporary SQLite file".into()
        } else {
            redact_url(&url)
        },
        payload,
        bench,
        payloads,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let b = &report.bench;
        let p = &report.payloads;
        println!(
            "{} inputs of {} B ({}) from {} producers into {} ({}): {:.0} durable inputs/s, {:.3} s\n\
             {} transactions, mean batch {:.1}, largest {}; ack p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n\
             encoded inputs: result ok {} B, result failed {} B, tick {} B, deploy {} B, stop {} B, pings {:.1} B per host",
            b.inputs,
            b.payload_bytes,
            report.payload,
            b.producers,
            b.backend,
            report.db,
            b.inputs_per_s,
            b.elapsed_s,
            b.transactions,
            b.mean_batch,
            b.largest_batch,
            b.p50_ack_ms,
            b.p99_ack_ms,
            b.max_ack_ms,
            p.result_ok,
            p.result_failed,
            p.timer_tick,
            p.request_deploy,
            p.request_stop,
            p.pings_per_host
        );
    }
    Ok(())
}
