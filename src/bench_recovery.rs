//! `stratus bench recovery`: how long a management server takes to come back
//! from the durable Store with a large state and a long journal.
//!
//! 1. Build a synthetic datacenter and deploy and start `--vms` VMs through
//!    the ledger fast path (`Cloud::deploy_vm`, as `bench placement` does),
//!    then hand the cloud to a controller and boot it.
//! 2. Write its state as the snapshot (seq 0) to the Store.
//! 3. Drive the controller forward with `stratus_sim::synth_inputs` (API
//!    requests, heartbeats, timers, a driver stub answering every call `Ok`)
//!    for `--journal` inputs; the inputs, encoded as the journal stores them,
//!    are appended to the Store.
//! 4. Recover as `StoreJournal::recover` does, timing each phase: open the
//!    Store, load the latest snapshot and the journal after it, decode the
//!    snapshot, check it against the hash it was taken with, decode every
//!    input and replay it. The recovered state must hash equal to the live
//!    controller's; anything else is an error.
//! 5. Recover once more through `StoreJournal::open` + `recover` itself (the
//!    code path the engine uses), timed end to end and checked the same way.

use crate::bench_journal::TempDb;
use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use std::time::Instant;
use stratus_core::controller::input::hash_hex;
use stratus_core::controller::journal::{InputJournal, replay};
use stratus_core::controller::{Controller, Input};
use stratus_runtime::StoreJournal;
use stratus_runtime::store::{JournalEntry, Snapshot, Store, redact_url};
use stratus_sim::synth::{SynthConfig, build, workload};
use stratus_sim::synth_inputs::{InputCounts, InputMix, InputStream};

#[derive(Args, Debug)]
pub struct RecoveryArgs {
    /// Hosts in the datacenter (100 per cluster, up to 10 pods).
    #[arg(long, default_value_t = 10_000)]
    hosts: usize,
    /// VMs deployed and started before the snapshot.
    #[arg(long, default_value_t = 200_000)]
    vms: usize,
    /// Journal entries after the snapshot.
    #[arg(long, default_value_t = 100_000)]
    journal: u64,
    /// Store URL (`sqlite://PATH`, `postgres://USER:PASS@HOST/DB`, empty
    /// store); default: a new SQLite file in the temporary directory, removed
    /// afterwards.
    #[arg(long)]
    db: Option<String>,
    /// Global `cpu.overprovisioning.factor` (at 4, 200,000 VMs of the mix fit
    /// in 10,000 hosts with room for the journal's deploys and starts).
    #[arg(long, default_value_t = 4.0)]
    cpu_overprovisioning: f64,
    /// API requests per simulated second in the journal.
    #[arg(long, default_value_t = 20.0)]
    request_rate: f64,
    /// Seed of the datacenter, the VMs and the journal.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Recovery, phase by phase (seconds).
#[derive(Debug, Default, Serialize)]
pub struct RecoveryTimes {
    /// `Store::open` (connect, migrations check).
    pub open_seconds: f64,
    /// Reading the latest snapshot and every journal entry after it.
    pub load_seconds: f64,
    /// `Controller::from_state_bytes` of the snapshot.
    pub decode_seconds: f64,
    /// Re-encoding the decoded state and hashing it, against the hash the
    /// snapshot was taken with (`StoreJournal::recover` does it).
    pub verify_seconds: f64,
    /// `Input::from_bytes` of every journal entry.
    pub decode_inputs_seconds: f64,
    /// Applying every input (`journal::replay`).
    pub replay_seconds: f64,
    /// All of the above.
    pub total_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct RecoveryReport {
    pub hosts: usize,
    pub vms: usize,
    pub placed: usize,
    pub seed: u64,
    /// The store (password redacted), or "temporary SQLite file".
    pub db: String,
    /// Building the datacenter, deploying the VMs, booting the controller.
    pub build_seconds: f64,
    pub snapshot_bytes: usize,
    /// `state_bytes` + SHA-256.
    pub snapshot_encode_seconds: f64,
    /// `Store::put_snapshot` (one transaction).
    pub snapshot_write_seconds: f64,
    pub journal_inputs: u64,
    pub journal_bytes: u64,
    /// Bytes of the `Pings` entries among them (every host, every `ping.interval`).
    pub journal_pings_bytes: u64,
    pub journal_mix: InputCounts,
    /// Simulated time the journal covers.
    pub journal_sim_seconds: f64,
    /// Running the live controller forward and encoding its inputs.
    pub journal_generate_seconds: f64,
    /// `Store::append` of the whole journal, 4,096 entries per transaction.
    pub journal_write_seconds: f64,
    /// Database (and WAL) size on disk, for the temporary SQLite file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_bytes: Option<u64>,
    pub recovery: RecoveryTimes,
    /// `StoreJournal::open` + `recover`, end to end (the engine's code path).
    pub store_journal_recover_seconds: f64,
    /// Hash of the live controller after the journal; both recoveries matched it.
    pub state_hash: String,
    pub hash_ok: bool,
    pub max_rss_mb: f64,
}

/// Journal entries appended per transaction while loading the store.
const WRITE_BATCH: usize = 4096;

pub fn run(args: &RecoveryArgs) -> anyhow::Result<()> {
    let report = recovery(args)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let r = &report.recovery;
        let mb = |b: f64| b / 1e6;
        println!(
            "state: {} hosts, {} VMs ({} placed), built in {:.2} s\n\
             snapshot: {:.1} MB, encoded in {:.3} s, written in {:.3} s\n\
             journal: {} inputs, {:.1} MB ({:.1} MB of pings), {:.0} s simulated, generated in {:.2} s, written in {:.2} s\n\
             recovery: {:.3} s = open {:.3} + load {:.3} + decode {:.3} + verify {:.3} + decode inputs {:.3} + replay {:.3}\n\
             StoreJournal::recover: {:.3} s; state hash {} matches the live controller; peak RSS {:.0} MB",
            report.hosts,
            report.vms,
            report.placed,
            report.build_seconds,
            mb(report.snapshot_bytes as f64),
            report.snapshot_encode_seconds,
            report.snapshot_write_seconds,
            report.journal_inputs,
            mb(report.journal_bytes as f64),
            mb(report.journal_pings_bytes as f64),
            report.journal_sim_seconds,
            report.journal_generate_seconds,
            report.journal_write_seconds,
            r.total_seconds,
            r.open_seconds,
            r.load_seconds,
            r.decode_seconds,
            r.verify_seconds,
            r.decode_inputs_seconds,
            r.replay_seconds,
            report.store_journal_recover_seconds,
            &report.state_hash[..16],
            report.max_rss_mb
        );
    }
    Ok(())
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

pub fn recovery(args: &RecoveryArgs) -> anyhow::Result<RecoveryReport> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let temp = args.db.is_none().then(|| TempDb::new("recovery"));
    let url = match (&args.db, &temp) {
        (Some(url), _) => url.clone(),
        (None, Some(t)) => t.url(),
        (None, None) => unreachable!("a temporary database when no URL is given"),
    };
    let shown = if temp.is_some() {
        "temporary SQLite file".to_string()
    } else {
        redact_url(&url)
    };

    // 1. The state: datacenter, VMs through the ledger, a booted controller.
    let t = Instant::now();
    let mut cfg = SynthConfig::with_hosts(args.hosts);
    cfg.seed = args.seed;
    cfg.cpu_overprovisioning = args.cpu_overprovisioning;
    let mut synth = build(&cfg).context("building the synthetic datacenter")?;
    let deploys = workload(&synth, usize::MAX, args.seed.wrapping_add(1));
    synth.cloud.reserve_vms(args.vms + args.vms / 8);
    let mut placed = 0;
    for spec in workload(&synth, args.vms, args.seed) {
        if synth.cloud.deploy_vm(spec).is_ok() {
            placed += 1;
        }
    }
    let mut live = Controller::new(synth.cloud);
    live.set_logging(false);
    let mix = InputMix {
        request_rate: args.request_rate,
        seed: args.seed,
        ..InputMix::default()
    };
    let mut stream = InputStream::boot(&mut live, deploys, mix, 0);
    let build_seconds = secs(t);

    // 2. The snapshot.
    let t = Instant::now();
    let payload = live.state_bytes();
    let snapshot_hash = hash_hex(&payload);
    let snapshot_encode_seconds = secs(t);
    let snapshot_bytes = payload.len();
    let store = rt.block_on(Store::open(&url))?;
    if rt.block_on(store.last_seq())? != 0 || rt.block_on(store.latest_snapshot())?.is_some() {
        bail!("the store at {shown} is not empty: the benchmark needs an empty one");
    }
    let t = Instant::now();
    rt.block_on(store.put_snapshot(&Snapshot {
        seq: 0,
        state_hash: snapshot_hash,
        taken_at_ms: live.now().0 as i64,
        payload,
    }))?;
    let snapshot_write_seconds = secs(t);

    // 3. The journal: the live controller runs forward.
    let t = Instant::now();
    let mut entries = Vec::with_capacity(args.journal as usize);
    let (mut journal_bytes, mut journal_pings_bytes) = (0u64, 0u64);
    for seq in 1..=args.journal {
        let (at, input) = stream.next_input(&mut live);
        let payload = input.to_bytes();
        journal_bytes += payload.len() as u64;
        if matches!(input, Input::Pings { .. }) {
            journal_pings_bytes += payload.len() as u64;
        }
        entries.push(JournalEntry {
            seq,
            at_ms: at as i64,
            payload,
        });
    }
    let journal_generate_seconds = secs(t);
    let live_hash = live.state_hash();
    let t = Instant::now();
    for chunk in entries.chunks(WRITE_BATCH) {
        rt.block_on(store.append(chunk))?;
    }
    let journal_write_seconds = secs(t);
    drop(entries);
    rt.block_on(store.close());

    // 4. Recovery, phase by phase.
    let mut times = RecoveryTimes::default();
    let start = Instant::now();
    let t = Instant::now();
    let store = rt.block_on(Store::open(&url))?;
    times.open_seconds = secs(t);
    let t = Instant::now();
    let snap = rt
        .block_on(store.latest_snapshot())?
        .context("the store holds no snapshot")?;
    let rows = rt.block_on(store.journal_after(snap.seq))?;
    times.load_seconds = secs(t);
    let t = Instant::now();
    let mut back = Controller::from_state_bytes(&snap.payload).map_err(anyhow::Error::msg)?;
    times.decode_seconds = secs(t);
    let t = Instant::now();
    let decoded_hash = back.state_hash();
    if decoded_hash != snap.state_hash {
        bail!(
            "snapshot {} decodes to state {decoded_hash}, but was taken as {}",
            snap.seq,
            snap.state_hash
        );
    }
    times.verify_seconds = secs(t);
    drop(snap);
    let t = Instant::now();
    let mut last = 0;
    let mut inputs = Vec::with_capacity(rows.len());
    for e in &rows {
        if e.seq != last + 1 {
            bail!("journal gap: entry {} follows {last}", e.seq);
        }
        last = e.seq;
        let input = Input::from_bytes(&e.payload).map_err(|x| anyhow::anyhow!("journal entry {}: {x}", e.seq))?;
        inputs.push((e.at_ms as u64, input));
    }
    times.decode_inputs_seconds = secs(t);
    drop(rows);
    let t = Instant::now();
    back.set_logging(false);
    for (at, input) in inputs {
        replay(&mut back, at, input);
    }
    times.replay_seconds = secs(t);
    times.total_seconds = secs(start);
    rt.block_on(store.close());
    if last != args.journal {
        bail!("recovered up to input {last}, but {} were journaled", args.journal);
    }
    let recovered = back.state_hash();
    if recovered != live_hash {
        bail!("recovery mismatch: the recovered state hashes to {recovered}, the live controller to {live_hash}");
    }
    drop(back);

    // 5. The engine's code path, end to end.
    let t = Instant::now();
    let (ctl, seq) = StoreJournal::open(&url)
        .and_then(|mut j| j.recover())
        .map_err(anyhow::Error::msg)?;
    let store_journal_recover_seconds = secs(t);
    let via_journal = ctl.state_hash();
    if seq != args.journal || via_journal != live_hash {
        bail!(
            "StoreJournal::recover mismatch: state {via_journal} after input {seq}, the live controller {live_hash} after {}",
            args.journal
        );
    }
    drop(ctl);

    Ok(RecoveryReport {
        hosts: args.hosts,
        vms: args.vms,
        placed,
        seed: args.seed,
        db: shown,
        build_seconds,
        snapshot_bytes,
        snapshot_encode_seconds,
        snapshot_write_seconds,
        journal_inputs: args.journal,
        journal_bytes,
        journal_pings_bytes,
        journal_mix: stream.counts,
        journal_sim_seconds: stream.now() as f64 / 1000.0,
        journal_generate_seconds,
        journal_write_seconds,
        db_bytes: temp.as_ref().map(TempDb::bytes),
        recovery: times,
        store_journal_recover_seconds,
        state_hash: live_hash,
        hash_ok: true,
        max_rss_mb: crate::bench::peak_rss_mb(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_recovery_matches_the_live_state() {
        let args = RecoveryArgs {
            hosts: 100,
            vms: 500,
            journal: 2_000,
            db: None,
            cpu_overprovisioning: 4.0,
            request_rate: 20.0,
            seed: 1,
            json: true,
        };
        let r = recovery(&args).unwrap();
        assert!(r.hash_ok);
        assert_eq!(r.placed, 500);
        assert_eq!(r.journal_inputs, 2_000);
        assert!(
            r.journal_mix.requests > 100 && r.journal_mix.refused == 0,
            "{:?}",
            r.journal_mix
        );
        assert!(r.journal_bytes > 0 && r.snapshot_bytes > 0);
    }
}
