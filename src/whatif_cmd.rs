//! `stratus whatif INVENTORY ...` and `stratus export --db URL`.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::{Path, PathBuf};
use stratus_core::Cloud;
use stratus_core::whatif::{self, AddHosts, Options, export};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Html,
}

#[derive(Args, Debug)]
pub struct WhatIfArgs {
    /// A scenario file (.toml: its workload is run up to the first fault) or an
    /// inventory export (.json, from `stratus export` or `exportInventory`).
    inventory: PathBuf,
    /// Fail a host (name or id); repeatable.
    #[arg(long = "fail-host")]
    fail_host: Vec<String>,
    /// Fail every host of a cluster (name or id).
    #[arg(long = "fail-cluster")]
    fail_cluster: Vec<String>,
    /// Fail every host of a pod (name or id).
    #[arg(long = "fail-pod")]
    fail_pod: Vec<String>,
    /// Put a host into maintenance (its VMs are live-migrated); repeatable.
    #[arg(long = "drain-host")]
    drain_host: Vec<String>,
    /// Remove (decommission) a host: its VMs are live-migrated by plan, then its capacity is gone; repeatable.
    #[arg(long = "remove-host")]
    remove_host: Vec<String>,
    /// Remove a cluster and all its hosts (VMs migrated out of the cluster by plan); repeatable.
    #[arg(long = "remove-cluster")]
    remove_cluster: Vec<String>,
    /// Add N hosts to a cluster: CLUSTER:N:SHAPE, SHAPE = CORESxMHZ/MEMG (32x2400/256G) or a host name to copy.
    #[arg(long = "add-hosts")]
    add_hosts: Vec<String>,
    /// Grow the running workload by PCT percent per month (compounded), with its current mix.
    #[arg(long, requires = "months")]
    grow: Option<f64>,
    /// Months to project (with --grow).
    #[arg(long, requires = "grow")]
    months: Option<u32>,
    /// Change a global setting first (thresholds, overprovisioning factors, ...): NAME=VALUE; repeatable.
    #[arg(long = "set")]
    set: Vec<String>,
    /// Most k-subsets of a cluster's hosts simulated per k when proving failures tolerated.
    #[arg(long, default_value_t = 256)]
    exact_budget: u64,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Write the report here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The Store of a `stratus serve`/`stratus manage` server: sqlite:PATH or postgres://...
    #[arg(long, env = "STRATUS_DB")]
    db: String,
    /// Write the inventory here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn load_inventory(path: &Path) -> anyhow::Result<Cloud> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if text.trim_start().starts_with('{') {
        export::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    } else {
        stratus_sim::whatif_input::load(path).map_err(|e| anyhow::anyhow!(e))
    }
}

pub fn options(args: &WhatIfArgs) -> anyhow::Result<Options> {
    let mut o = Options::new();
    o.fail_hosts = args.fail_host.clone();
    o.fail_clusters = args.fail_cluster.clone();
    o.fail_pods = args.fail_pod.clone();
    o.drain_hosts = args.drain_host.clone();
    o.remove_hosts = args.remove_host.clone();
    o.remove_clusters = args.remove_cluster.clone();
    for a in &args.add_hosts {
        o.add_hosts.push(AddHosts::parse(a)?);
    }
    if let (Some(p), Some(m)) = (args.grow, args.months) {
        o.grow = Some((p, m));
    }
    for s in &args.set {
        let Some((k, v)) = s.split_once('=') else {
            bail!("--set {s}: expected NAME=VALUE");
        };
        o.settings.push((k.trim().to_string(), v.trim().to_string()));
    }
    o.exact_budget = args.exact_budget;
    Ok(o)
}

pub fn run(args: WhatIfArgs) -> anyhow::Result<()> {
    let opts = options(&args)?;
    let mut cloud = load_inventory(&args.inventory)?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(0);
        b.set_style(ProgressStyle::with_template("{msg:>20} [{bar:40}] {pos}/{len} {elapsed}").expect("template"));
        b
    };
    let report = whatif::run(&mut cloud, &opts, &mut |stage, done, total| {
        bar.set_message(stage.to_string());
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Text => crate::whatif_text::render(&report),
        Format::Html => stratus_api::whatif_html::render(&report),
    };
    match &args.out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(())
}

pub fn export_cmd(args: ExportArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let cloud = rt.block_on(async {
        let store = stratus_runtime::store::Store::open(&args.db)
            .await
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", args.db))?;
        let rec = stratus_runtime::recover::recover(&store)
            .await
            .map_err(|e| anyhow::anyhow!("recovering from {}: {e}", args.db))?;
        store.close().await;
        match rec {
            Some(r) => Ok(r.ctl.cloud().clone()),
            None => bail!("{} holds no state yet (no snapshot)", args.db),
        }
    })?;
    let text = export::to_json(&cloud).map_err(|e| anyhow::anyhow!(e))? + "\n";
    match &args.out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(())
}
