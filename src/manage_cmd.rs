//! `stratus manage`: the durable management server over a scenario's
//! inventory — the agent gateway (TLS) on `--listen`, the journal and
//! snapshots in `--db`, and a newline-delimited JSON control socket on a
//! loopback `--admin-listen` (`stratus_runtime::admin`). A restart on the same
//! database recovers the controller (snapshot + journal, checked by state
//! hash) and agents reconnect without new tokens.

use anyhow::{Context, bail};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use stratus_core::controller::Controller;
use stratus_runtime::hosts::{Gateway, GatewayConfig};
use stratus_sim::agent_world::TokenFile;

#[derive(Args, Debug)]
pub struct ManageArgs {
    /// Scenario whose inventory a fresh database starts with (a recovered one keeps its own).
    #[arg(long)]
    scenario: PathBuf,
    /// The durable Store: sqlite://PATH, sqlite::memory:, postgres://USER:PASS@HOST:PORT/DB.
    #[arg(long)]
    db: String,
    /// Address agents connect to (TLS), HOST:PORT.
    #[arg(long)]
    listen: String,
    /// The control socket (newline-delimited JSON), a loopback HOST:PORT.
    #[arg(long)]
    admin_listen: SocketAddr,
    /// Write enrollment tokens of hosts not enrolled yet here (JSON, mode 0600);
    /// without it they are printed.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Store a snapshot every this many inputs.
    #[arg(long, default_value_t = 10_000)]
    snapshot_every: u64,
}

pub fn run(a: ManageArgs) -> anyhow::Result<()> {
    if !a.admin_listen.ip().is_loopback() {
        bail!(
            "--admin-listen {}: the control socket has no authentication; use a loopback address",
            a.admin_listen
        );
    }
    let (_, built) = stratus_sim::scenario::load_and_build(&a.scenario).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async move {
        let config = GatewayConfig {
            store_url: Some(a.db.clone()),
            snapshot_every: a.snapshot_every,
            ..GatewayConfig::new()
        };
        let gw = Gateway::open(|| Controller::new(built.cloud), config).await?;
        match gw.recovery() {
            Some(r) if !r.fresh => eprintln!(
                "recovered state {} at input {} (snapshot {} + {} replayed) in {} ms; {} hosts enrolled",
                r.hash, r.seq, r.snapshot_seq, r.replayed, r.millis, r.enrolled
            ),
            _ => eprintln!("fresh database: the scenario's inventory is snapshot 0"),
        }
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .with_context(|| format!("--listen {}", a.listen))?;
        let admin = tokio::net::TcpListener::bind(a.admin_listen)
            .await
            .with_context(|| format!("--admin-listen {}", a.admin_listen))?;
        let enrolled = gw.enrolled();
        let hosts: Vec<(String, _)> = gw.with_controller(|c| {
            let inv = &c.cloud().inv;
            inv.live_hosts().map(|(_, h)| (h.name.clone(), h.id)).collect()
        });
        let mut tokens = TokenFile::default();
        for (name, id) in hosts.into_iter().filter(|(_, id)| !enrolled.contains(id)) {
            let token = gw.issue_token_durable(id).await.map_err(anyhow::Error::msg)?;
            tokens.tokens.insert(name, token);
        }
        match &a.token_file {
            Some(path) => tokens
                .save(path)
                .with_context(|| format!("--token-file {}", path.display()))?,
            None => tokens.tokens.iter().for_each(|(n, t)| println!("{n}: {t}")),
        }
        eprintln!("agents on {}, control socket on {}", a.listen, a.admin_listen);
        tokio::spawn(stratus_runtime::admin::serve_admin(gw.clone(), admin));
        gw.serve(listener).await.context("the management server stopped")?;
        Ok(())
    })
}
