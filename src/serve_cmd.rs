//! `stratus serve`: see `stratus::serve`. Prints where the API is, how to log
//! in, and (with `--demo`) a `cs` command line that deploys a VM.

use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use stratus::serve::{ServeOptions, start};
use stratus_api::bootstrap::{AdminUser, ensure_keys};
use stratus_api::secstorage::SecondaryMount;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The Store: sqlite://PATH (created if missing), sqlite::memory:, postgres://USER:PASS@HOST:PORT/DB.
    #[arg(long, default_value = "sqlite://stratus.db")]
    db: String,
    /// HTTP port of the API (`/client/api`) and `/metrics`.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// On a fresh database, build a ready zone from scenarios/seed-lab.toml
    /// (hosts, storage, offerings, template) and print a ready-to-paste `cs` command.
    #[arg(long)]
    demo: bool,
    /// The admin password on first start (else STRATUS_ADMIN_PASSWORD, else a
    /// random one is generated and printed once).
    #[arg(long, env = "STRATUS_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Seed of the simulated hosts' world.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the simulated hosts' state here (default: next to a sqlite:// database).
    #[arg(long)]
    fleet_file: Option<PathBuf>,
    /// Each simulated host call that changes something takes MIN-MAX ms.
    #[arg(long, value_name = "MIN-MAX", default_value = "20-200")]
    latency: String,
    /// Store a snapshot every this many inputs.
    #[arg(long, default_value_t = 10_000)]
    snapshot_every: u64,
    /// An image store (secondary storage) this server has mounted, as URL=DIR, e.g.
    /// nfs://10.0.0.5/export/secondary=/mnt/secondary; templates for real hypervisors
    /// are downloaded there. Repeat for several stores.
    #[arg(long = "secondary-mount", value_name = "URL=DIR", value_parser = SecondaryMount::parse)]
    secondary_mounts: Vec<SecondaryMount>,
    /// Where KVM hosts' agents connect (`stratus agent --server`), HOST:PORT;
    /// default: an ephemeral loopback port (simulated hosts only).
    #[arg(long, value_name = "HOST:PORT")]
    agent_listen: Option<SocketAddr>,
}

fn latency(s: &str) -> anyhow::Result<(u64, u64)> {
    let (a, b) = s.split_once('-').context("--latency takes MIN-MAX, e.g. 20-200")?;
    let (a, b): (u64, u64) = (a.trim().parse()?, b.trim().parse()?);
    anyhow::ensure!(a <= b, "--latency {s}: MIN is above MAX");
    Ok((a, b))
}

fn fleet_file(db: &str) -> Option<PathBuf> {
    let path = db.strip_prefix("sqlite://")?;
    let path = path.split('?').next()?;
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(format!("{path}.simhosts.json")))
}

pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("STRATUS_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let opts = ServeOptions {
        fleet_file: a.fleet_file.clone().or_else(|| fleet_file(&a.db)),
        db: a.db.clone(),
        http: SocketAddr::new(a.bind, a.port),
        demo: a.demo,
        admin_password: a.admin_password.clone(),
        seed: a.seed,
        latency_ms: latency(&a.latency)?,
        snapshot_every: a.snapshot_every,
        secondary_mounts: a.secondary_mounts.clone(),
        agent_listen: a.agent_listen,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async move {
        let running = start(opts).await?;
        let url = format!("http://{}/client/api", running.http);
        eprintln!("Stratus API on {url}  (metrics on http://{}/metrics)", running.http);
        eprintln!("web console on http://{}/client/  (log in as admin)", running.http);
        eprintln!(
            "database {}{}",
            a.db,
            if running.recovered { " (recovered)" } else { "" }
        );
        match &running.admin {
            AdminUser::Generated(_, pw) => {
                eprintln!("admin user created: log in as admin with password {pw}  (shown once)")
            }
            AdminUser::Created(_) => eprintln!("admin user created with the password you gave"),
            AdminUser::Existing(_) => eprintln!("log in as admin with the password set on first start"),
        }
        if a.demo {
            let (key, secret) = ensure_keys(&running.api, running.admin.id())
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.text))?;
            let ids = running.api.read(|c| {
                let inv = &c.cloud().inv;
                let zone = inv.zones.first().map(|z| z.id.0.to_string()).unwrap_or_default();
                let offering = inv
                    .service_offerings
                    .first()
                    .map(|o| o.id.0.to_string())
                    .unwrap_or_default();
                let template = inv.templates.first().map(|t| t.id.0.to_string()).unwrap_or_default();
                (zone, offering, template)
            });
            eprintln!("demo zone ready. With the `cs` client (pip install cs):");
            println!(
                "export CLOUDSTACK_ENDPOINT={url} CLOUDSTACK_KEY={key} CLOUDSTACK_SECRET={secret}\n\
                 cs deployVirtualMachine zoneid={} serviceofferingid={} templateid={} name=demo-vm-1\n\
                 cs listVirtualMachines",
                ids.0, ids.1, ids.2
            );
        }
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        eprintln!("stopping");
        running.stop();
        Ok(())
    })
}
