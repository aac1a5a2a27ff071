//! `stratus bench kvm`: Stratus versus raw libvirt on real KVM hosts (issue
//! 9's "Measure"), both sides in one run at one load. The Stratus side goes
//! through the CloudStack API only (this process serves it; two `stratus agent
//! --libvirt` children are hosts A and B); the raw side drives the same kind
//! of domain with `virsh` (`bench_kvm_raw`). Prints medians, Stratus/raw
//! ratios (target ≤ 1.10), the HA restart time with `--ha`, and can write the
//! raw call latencies as a simulator latency profile (`--profile-out`).
//!
//! Needs the services of `.ci/kvm-setup.sh` (its env.sh is read when the
//! `STRATUS_TEST_*` variables are not set) and a binary built with `--features kvm`.

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct KvmBenchArgs {
    /// Rounds per side (each: deploy, migrate, stop, start).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Also kill host A (its agent, then its libvirtd, then its QEMU processes
    /// through the fence command) with an HA VM on it and time the restart on B.
    /// Host A's libvirtd is started again afterwards (`/usr/sbin/libvirtd -d`).
    #[arg(long)]
    ha: bool,
    /// Host A's libvirtd pidfile (for `--ha`).
    #[arg(long, default_value = "/run/libvirtd.pid")]
    libvirtd_a_pidfile: PathBuf,
    /// The fence script the agents run against a dead peer, called with that
    /// host's QEMU pidfile directory (`.ci/kvm-fence-qemu.sh`).
    #[arg(long, default_value = ".ci/kvm-fence-qemu.sh")]
    fence_script: PathBuf,
    /// Write the raw call latencies as a simulator latency profile (TOML) here.
    #[arg(long, value_name = "FILE")]
    profile_out: Option<PathBuf>,
    /// What the profile says it was measured on.
    #[arg(long, default_value = "qemu TCG (no /dev/kvm) on the shared 2-vCPU CI machine")]
    profile_machine: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// The KVM services, from `STRATUS_TEST_*` (`.ci/kvm-setup.sh`'s env.sh).
#[derive(Debug, Clone)]
pub struct Env {
    pub kvm_dir: String,
    pub libvirt_a: String,
    pub libvirt_b: String,
    pub domain_type: String,
    pub migrate_uri: String,
    pub ovs_bridge: String,
    pub nfs_server: String,
    pub nfs_primary_export: String,
    pub nfs_secondary_export: String,
    pub nfs_primary_dir: String,
    pub nfs_secondary_dir: String,
    pub template_url: String,
    pub template_path: String,
    pub template_sha256: String,
    pub marker: String,
}

impl Env {
    /// The environment, completed from env.sh (`STRATUS_CI_KVM_DIR`, default
    /// /var/lib/stratus-ci/kvm) for what it does not set.
    pub fn load() -> anyhow::Result<Env> {
        let dir = std::env::var("STRATUS_CI_KVM_DIR").unwrap_or_else(|_| "/var/lib/stratus-ci/kvm".into());
        let file = std::fs::read_to_string(Path::new(&dir).join("env.sh")).unwrap_or_default();
        let from_file: BTreeMap<&str, &str> = file
            .lines()
            .filter_map(|l| l.trim().strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('\'')))
            .collect();
        let get = |name: &str| -> anyhow::Result<String> {
            std::env::var(name)
                .ok()
                .or_else(|| from_file.get(name).map(|v| v.to_string()))
                .filter(|v| !v.is_empty())
                .with_context(|| format!("{name} is not set (run `bash .ci/kvm-setup.sh`)"))
        };
        Ok(Env {
            kvm_dir: get("STRATUS_TEST_KVM_DIR")?,
            libvirt_a: get("STRATUS_TEST_LIBVIRT_A")?,
            libvirt_b: get("STRATUS_TEST_LIBVIRT_B")?,
            domain_type: get("STRATUS_TEST_LIBVIRT_DOMAIN_TYPE")?,
            migrate_uri: get("STRATUS_TEST_MIGRATE_URI")?,
            ovs_bridge: get("STRATUS_TEST_OVS_BRIDGE")?,
            nfs_server: get("STRATUS_TEST_NFS_SERVER")?,
            nfs_primary_export: get("STRATUS_TEST_NFS_PRIMARY_EXPORT")?,
            nfs_secondary_export: get("STRATUS_TEST_NFS_SECONDARY_EXPORT")?,
            nfs_primary_dir: get("STRATUS_TEST_NFS_PRIMARY_DIR")?,
            nfs_secondary_dir: get("STRATUS_TEST_NFS_SECONDARY_DIR")?,
            template_url: get("STRATUS_TEST_TEMPLATE_URL")?,
            template_path: get("STRATUS_TEST_TEMPLATE_PATH")?,
            template_sha256: get("STRATUS_TEST_TEMPLATE_SHA256")?,
            marker: get("STRATUS_TEST_GUEST_MARKER")?,
        })
    }
}

/// Milliseconds per operation, in the order measured.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(transparent)]
pub struct Samples(BTreeMap<String, Vec<u64>>);

impl Samples {
    pub fn add(&mut self, op: &str, ms: u64) {
        self.0.entry(op.to_string()).or_default().push(ms);
    }
    pub fn get(&self, op: &str) -> &[u64] {
        self.0.get(op).map_or(&[], Vec::as_slice)
    }
    pub fn median(&self, op: &str) -> Option<u64> {
        let mut v = self.get(op).to_vec();
        v.sort_unstable();
        match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]) / 2),
        }
    }
    pub fn medians(&self) -> BTreeMap<String, u64> {
        self.0
            .keys()
            .filter_map(|k| Some((k.clone(), self.median(k)?)))
            .collect()
    }
    /// The latest sample of every operation, for progress lines.
    pub fn last_line(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .filter_map(|(k, v)| Some(format!("{k} {} ms", v.last()?)))
            .collect();
        parts.join(", ")
    }
}

pub fn ms_since(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}

/// Waits until the guest's marker is in its console log (120 s from `since`).
pub fn wait_marker(console: &Path, marker: &str, since: Instant) -> anyhow::Result<()> {
    loop {
        if std::fs::read(console).is_ok_and(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes())) {
            return Ok(());
        }
        if since.elapsed() > Duration::from_secs(120) {
            bail!("no marker in {} within 120 s", console.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stratus operation ↔ the raw operation it is compared with.
const PAIRS: [(&str, &str); 5] = [
    ("deploy", "define_start"),
    ("deploy_to_marker", "define_start_to_marker"),
    ("migrate_live", "migrate_live"),
    ("stop_forced", "destroy"),
    ("start", "start"),
];

#[derive(Debug, Serialize)]
struct Report {
    rounds: usize,
    /// The hosts' size per listHosts, from their agents' facts.
    hosts: Vec<serde_json::Value>,
    load_average_before: f64,
    load_average_after: f64,
    stratus_median_ms: BTreeMap<String, u64>,
    raw_median_ms: BTreeMap<String, u64>,
    ratio_stratus_over_raw: BTreeMap<String, f64>,
    target_ratio: f64,
    /// Host A killed → the HA VM Running on B, per the API (`--ha`).
    #[serde(skip_serializing_if = "Option::is_none")]
    ha_restart_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ha_host_down_ms: Option<u64>,
    stratus_samples_ms: Samples,
    raw_samples_ms: Samples,
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

pub fn run(args: KvmBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    let env = Env::load()?;
    let bar = ProgressBar::with_draw_target(Some((args.rounds * 2) as u64), ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template(
        "{spinner} [{elapsed}] {bar:30} {pos}/{len} {msg}",
    )?);
    let progress = |line: String| {
        bar.inc(1);
        // `suspend` prints even when stderr is not a terminal (the bar is hidden then).
        bar.suspend(|| eprintln!("[bench kvm] {line}"));
    };
    let load_before = load_average();
    let options = crate::bench_kvm_stratus::Options {
        rounds: args.rounds,
        ha: args.ha,
        libvirtd_a_pidfile: args.libvirtd_a_pidfile.clone(),
        fence_script: std::fs::canonicalize(&args.fence_script)
            .with_context(|| format!("--fence-script {}", args.fence_script.display()))?,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let stratus = rt.block_on(crate::bench_kvm_stratus::run(&env, &options, &progress))?;
    let raw = crate::bench_kvm_raw::rounds(&env, args.rounds, &progress)?;
    bar.finish_and_clear();
    let ratio = PAIRS
        .iter()
        .filter_map(|(s, r)| {
            let (ours, theirs) = (stratus.samples.median(s)?, raw.median(r)?);
            Some((
                s.to_string(),
                (ours as f64 / theirs.max(1) as f64 * 100.0).round() / 100.0,
            ))
        })
        .collect();
    let report = Report {
        rounds: args.rounds,
        hosts: stratus.hosts,
        load_average_before: load_before,
        load_average_after: load_average(),
        stratus_median_ms: stratus.samples.medians(),
        raw_median_ms: raw.medians(),
        ratio_stratus_over_raw: ratio,
        target_ratio: 1.10,
        ha_restart_ms: stratus.ha_restart_ms,
        ha_host_down_ms: stratus.ha_down_ms,
        stratus_samples_ms: stratus.samples,
        raw_samples_ms: raw.clone(),
    };
    if let Some(path) = &args.profile_out {
        let text = crate::bench_kvm_profile::profile_toml(
            &raw,
            &args.profile_machine,
            args.rounds,
            load_before,
            &path.display().to_string(),
        )?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("latency profile written to {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &Report) {
    let mut t = comfy_table::Table::new();
    t.set_header(["operation", "Stratus median ms", "raw median ms", "Stratus/raw"]);
    for (s, raw) in PAIRS {
        let cell = |m: &BTreeMap<String, u64>, k: &str| m.get(k).map_or("-".into(), |v| v.to_string());
        t.add_row([
            format!("{s} / {raw}"),
            cell(&r.stratus_median_ms, s),
            cell(&r.raw_median_ms, raw),
            r.ratio_stratus_over_raw
                .get(s)
                .map_or("-".into(), |v| format!("{v:.2}")),
        ]);
    }
    println!("{t}");
    if let Some(ms) = r.ha_restart_ms {
        println!("HA: host A killed -> VM Running on B after {:.1} s", ms as f64 / 1000.0);
    }
    println!(
        "{} rounds per side, load average {:.1} -> {:.1}, target ratio <= {:.2}",
        r.rounds, r.load_average_before, r.load_average_after, r.target_ratio
    );
}
