//! `stratus agent --libvirt URI`: the host agent over the KVM backend
//! (libvirt, Open vSwitch or Linux bridges, dir/NFS pools). Built with the
//! cargo feature `kvm`.

use anyhow::{Context, bail};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stratus_agent::{Agent, AgentConfig, CredentialStore, Credentials, Hooks, HostMonitorLink, TokioConnector};
use stratus_core::ids::{HostId, NetworkId, PoolId};
use stratus_drivers::ComputeDriver;
use stratus_drivers::kvm::{DomainType, Kvm, KvmConfig, SecondaryStore};
use stratus_drivers::{BridgeKind, PoolSpec};
use uuid::Uuid;

/// The KVM options of `stratus agent` (with `--libvirt`).
#[derive(Args, Debug, Clone)]
pub struct KvmArgs {
    /// Domain type: kvm (hardware virtualization) or qemu (TCG emulation).
    #[arg(long, default_value = "kvm", requires = "libvirt")]
    pub domain_type: String,
    /// A primary pool this host reaches, by the id the management server gave
    /// it: ID=dir:/path, ID=nfs://SERVER/EXPORT (qemu's NFS client; add
    /// #/local/dir when this host sees the export's directory), or
    /// ID=netfs://SERVER/EXPORT@/mount/point (mounted by libvirt). Repeatable.
    #[arg(long = "pool", value_name = "ID=SPEC", requires = "libvirt")]
    pub pools: Vec<String>,
    /// Secondary storage: nfs://SERVER/EXPORT or a directory.
    #[arg(long, requires = "libvirt")]
    pub secondary: Option<String>,
    /// The directory behind an NFS secondary export, when this host sees it.
    #[arg(long, requires = "secondary")]
    pub secondary_local: Option<String>,
    /// The bridge of the guest physical network.
    #[arg(long, default_value = "cloudbr0", requires = "libvirt")]
    pub bridge: String,
    /// ovs, ovs-netdev (userspace datapath) or linux.
    #[arg(long, default_value = "ovs", requires = "libvirt")]
    pub bridge_kind: String,
    /// A guest network's VLAN: NETWORK_ID=VLAN. Repeatable.
    #[arg(long = "network-vlan", value_name = "ID=VLAN", requires = "libvirt")]
    pub network_vlans: Vec<String>,
    /// Directory for the guests' serial console logs.
    #[arg(long, requires = "libvirt")]
    pub console_dir: Option<String>,
    /// Seconds a graceful shutdown may take before the domain is destroyed.
    #[arg(long, default_value_t = 10, requires = "libvirt")]
    pub shutdown_timeout: u64,
    /// The libvirt URI peers use to migrate to this host (reported at enrollment).
    #[arg(long, requires = "libvirt")]
    pub migration_uri: Option<String>,
    /// The data URI of live migrations (e.g. tcp://127.0.0.1).
    #[arg(long, requires = "libvirt")]
    pub migration_data_uri: Option<String>,
    /// A peer's libvirt URI for neighbour checks: HOST_ID=URI. Repeatable.
    #[arg(long = "peer", value_name = "ID=URI", requires = "libvirt")]
    pub peers: Vec<String>,
    /// Command that powers a peer off ({host} = its id); exit 0 = proven off.
    #[arg(long, requires = "libvirt")]
    pub fence_command: Option<String>,
    /// This host runs `stratus hostmon --run-dir DIR`: the monitor renews the
    /// leases and runs the isolation watchdog, so they outlive this agent;
    /// the agent stamps management contact into DIR for it.
    #[arg(long, value_name = "DIR", requires = "libvirt")]
    pub host_monitor_dir: Option<PathBuf>,
    /// Seconds without a new stamp from the monitor after which this agent
    /// renews the leases itself (and logs an error) until it is back.
    #[arg(long, default_value_t = 6.0, requires = "host_monitor_dir")]
    pub host_monitor_takeover: f64,
}

/// The link to this host's monitor, if `--host-monitor-dir` names one.
pub fn host_monitor(a: &KvmArgs) -> anyhow::Result<Option<HostMonitorLink>> {
    let Some(dir) = &a.host_monitor_dir else {
        return Ok(None);
    };
    let s = a.host_monitor_takeover;
    if !(s.is_finite() && (0.5..=600.0).contains(&s)) {
        bail!("--host-monitor-takeover {s}: expected seconds between 0.5 and 600");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("--host-monitor-dir {}", dir.display()))?;
    Ok(Some(HostMonitorLink {
        run_dir: dir.clone(),
        takeover_after: Duration::from_secs_f64(s),
    }))
}

pub fn split_id(text: &str, what: &str) -> anyhow::Result<(Uuid, String)> {
    let (id, rest) = text
        .split_once('=')
        .with_context(|| format!("{what} {text}: expected ID=VALUE"))?;
    let id = Uuid::parse_str(id.trim()).with_context(|| format!("{what} {text}: {id} is not a UUID"))?;
    Ok((id, rest.trim().to_string()))
}

/// Parses `dir:/path`, `nfs://SERVER/EXPORT[#/local]`, `netfs://SERVER/EXPORT@/mnt`.
pub fn parse_pool(spec: &str) -> anyhow::Result<PoolSpec> {
    if let Some(path) = spec.strip_prefix("dir:") {
        return Ok(PoolSpec::Dir { path: path.to_string() });
    }
    if let Some(rest) = spec.strip_prefix("netfs://") {
        let (url, mount_point) = rest
            .split_once('@')
            .context("netfs pool: expected netfs://SERVER/EXPORT@/mount")?;
        let (server, export) = url.split_once('/').context("netfs pool: expected SERVER/EXPORT")?;
        return Ok(PoolSpec::NetFs {
            server: server.to_string(),
            export: format!("/{export}"),
            mount_point: mount_point.to_string(),
        });
    }
    if let Some(rest) = spec.strip_prefix("nfs://") {
        let (url, local) = match rest.split_once('#') {
            Some((u, l)) => (u, Some(l.to_string())),
            None => (rest, None),
        };
        let (server, export) = url.split_once('/').context("nfs pool: expected nfs://SERVER/EXPORT")?;
        return Ok(PoolSpec::QemuNfs {
            server: server.to_string(),
            export: format!("/{}", export.trim_end_matches('/')),
            local_path: local,
        });
    }
    bail!("pool {spec}: expected dir:/path, nfs://SERVER/EXPORT[#/local/dir] or netfs://SERVER/EXPORT@/mount")
}

pub fn kvm_config(uri: &str, a: &KvmArgs) -> anyhow::Result<KvmConfig> {
    let mut c = KvmConfig::new(uri);
    c.domain_type = match a.domain_type.as_str() {
        "kvm" => DomainType::Kvm,
        "qemu" => DomainType::Qemu,
        other => bail!("--domain-type {other}: expected kvm or qemu"),
    };
    for p in &a.pools {
        let (id, spec) = split_id(p, "--pool")?;
        c.pools.insert(PoolId(id), parse_pool(&spec)?);
    }
    if let Some(s) = &a.secondary {
        let mut store = SecondaryStore::parse(s).map_err(anyhow::Error::msg)?;
        if let SecondaryStore::Nfs { local_path, .. } = &mut store {
            *local_path = a.secondary_local.clone();
        }
        c.secondary = Some(store);
    }
    c.bridge = a.bridge.clone();
    c.bridge_kind = match a.bridge_kind.as_str() {
        "ovs" => BridgeKind::Ovs,
        "ovs-netdev" => BridgeKind::OvsNetdev,
        "linux" => BridgeKind::Linux,
        other => bail!("--bridge-kind {other}: expected ovs, ovs-netdev or linux"),
    };
    let mut vlans = BTreeMap::new();
    for v in &a.network_vlans {
        let (id, vlan) = split_id(v, "--network-vlan")?;
        let vlan: u16 = vlan
            .parse()
            .ok()
            .filter(|v| (1..4095).contains(v))
            .with_context(|| format!("--network-vlan {v}: VLAN 1-4094"))?;
        vlans.insert(NetworkId(id), vlan);
    }
    c.network_vlans = vlans;
    c.console_dir = a.console_dir.clone();
    c.shutdown_timeout = Duration::from_secs(a.shutdown_timeout);
    c.advertised_uri = a.migration_uri.clone();
    c.migration_data_uri = a.migration_data_uri.clone();
    for p in &a.peers {
        let (id, uri) = split_id(p, "--peer")?;
        c.peers.insert(HostId(id), uri);
    }
    c.fence_command = a.fence_command.clone();
    Ok(c)
}

/// Options of one KVM agent run.
#[derive(Debug)]
pub struct KvmAgentOptions {
    pub server: String,
    pub name: String,
    pub token: Option<String>,
    pub state_file: Option<PathBuf>,
    pub ping_interval: Option<Duration>,
    pub seed: u64,
    pub config: KvmConfig,
    pub host_monitor: Option<HostMonitorLink>,
}

pub fn run_kvm_agent(o: KvmAgentOptions) -> anyhow::Result<()> {
    crate::hostmon_cmd::init_logging();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async move {
        let kvm = Kvm::new(o.config);
        // Facts for enrollment, straight from libvirt (the host id is not needed).
        let facts = kvm
            .host_facts(HostId(Uuid::nil()))
            .await
            .map_err(|e| anyhow::anyhow!("libvirt {}: {}", kvm.0.config.libvirt_uri, e.message))?;
        tracing::info!(?facts, "kvm.facts");
        // What a crash left here is cleaned before the first report (policy: drivers::kvm::reconcile).
        match kvm.reconcile().await {
            Ok(r) => tracing::info!(
                running = ?r.running,
                undefined = ?r.undefined,
                ports_removed = ?r.ports_removed,
                volumes = r.volumes.len(),
                "kvm.reconciled"
            ),
            Err(e) => tracing::warn!(error = %e.message, "kvm.reconcile.failed"),
        }
        let mut config = AgentConfig::new(&o.server, &o.name, facts);
        config.token = o.token;
        config.ping_interval = o.ping_interval;
        config.seed = o.seed;
        config.lease_pools = kvm.0.lease_pools();
        if let Some(m) = &o.host_monitor {
            tracing::info!(run_dir = %m.run_dir.display(), "agent.hostmon: the host monitor renews the leases");
        }
        config.host_monitor = o.host_monitor;
        let creds: CredentialStore = Arc::new(Mutex::new(match &o.state_file {
            Some(p) => Credentials::load(p)?,
            None => None,
        }));
        let mut hooks = Hooks::default();
        if let Some(path) = o.state_file.clone() {
            hooks.on_enrolled = Some(Box::new(move |c: &Credentials| {
                if let Err(e) = c.save(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "agent.credentials.unsaved");
                }
            }));
        }
        hooks.on_note = Some(Box::new(|text: &str| tracing::info!(note = text, "agent")));
        Agent::new(config, TokioConnector, Arc::new(kvm), creds)
            .with_hooks(hooks)
            .run()
            .await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_specs_parse() {
        assert_eq!(
            parse_pool("dir:/var/lib/s").unwrap(),
            PoolSpec::Dir {
                path: "/var/lib/s".into()
            }
        );
        assert_eq!(
            parse_pool("nfs://127.0.0.1/primary#/srv/primary").unwrap(),
            PoolSpec::QemuNfs {
                server: "127.0.0.1".into(),
                export: "/primary".into(),
                local_path: Some("/srv/primary".into())
            }
        );
        assert_eq!(
            parse_pool("netfs://nfs1/export/ps1@/mnt/ps1").unwrap(),
            PoolSpec::NetFs {
                server: "nfs1".into(),
                export: "/export/ps1".into(),
                mount_point: "/mnt/ps1".into()
            }
        );
        assert!(parse_pool("gluster://x/y").is_err());
    }
}
