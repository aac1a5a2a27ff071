//! The KVM backend (cargo feature `kvm`): one host's compute through libvirt
//! (`virt`), its primary pools (`dir` pools, NFS through qemu's own client
//! or a `netfs` mount), secondary storage, and guest networking on Open
//! vSwitch or Linux bridges. It implements the same driver traits as the
//! simulator, so the agent runs either unchanged.
//!
//! Layout on a pool (a directory, or the root of an NFS export):
//! `<volume id>.qcow2` (volumes; root volumes are qcow2 overlays on the
//! template's base image), `tmpl-<template id>.qcow2` (base images, copied on
//! first use) and `stratus-hb-<host id>.lease` (storage heartbeat). On
//! secondary storage: `template/tmpl/<template id>/<template id>.qcow2` (CloudStack's layout) and
//! `snapshot/<snapshot id>.qcow2`.

mod cmd;
mod compute;
pub mod network;
pub mod reconcile;
mod storage;
pub mod xml;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stratus_wire::ids::*;
use stratus_wire::{BridgeKind, DriverError, PoolSpec};
use virt::connect::Connect;

pub use storage::CopyState;

/// The domain type libvirt runs guests with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainType {
    /// Hardware virtualization (production).
    Kvm,
    /// TCG emulation: hosts without VT-x/AMD-V (and this CI machine).
    Qemu,
}

impl DomainType {
    pub fn libvirt_name(self) -> &'static str {
        match self {
            DomainType::Kvm => "kvm",
            DomainType::Qemu => "qemu",
        }
    }
}

/// Boot a kernel and initrd from the host (guest images without a
/// bootloader, such as CI's busybox guest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectKernel {
    pub kernel: String,
    pub initrd: String,
    pub cmdline: String,
}

/// Where a volume (or image) lives, as qemu opens it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeLocation {
    File(String),
    /// On an NFS export through qemu's client: `path` includes the export.
    Nfs {
        server: String,
        path: String,
    },
}

impl VolumeLocation {
    /// The name `qemu-img` takes (a path or an `nfs://` URL).
    pub fn qemu_name(&self) -> String {
        match self {
            VolumeLocation::File(p) => p.clone(),
            VolumeLocation::Nfs { server, path } => format!("nfs://{server}{path}"),
        }
    }
}

/// Secondary storage: a directory, or an NFS export reached with qemu's
/// client (`nfs://server/export`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecondaryStore {
    Dir(String),
    Nfs {
        server: String,
        export: String,
        /// The export's directory when this host sees it (deletes; see `PoolSpec::QemuNfs`).
        local_path: Option<String>,
    },
}

impl SecondaryStore {
    /// `nfs://server/export` or a directory.
    pub fn parse(text: &str) -> Result<SecondaryStore, String> {
        match text.strip_prefix("nfs://") {
            Some(rest) => {
                let (server, export) = rest
                    .split_once('/')
                    .ok_or_else(|| format!("{text}: expected nfs://SERVER/EXPORT"))?;
                Ok(SecondaryStore::Nfs {
                    server: server.to_string(),
                    export: format!("/{}", export.trim_end_matches('/')),
                    local_path: None,
                })
            }
            None if text.starts_with('/') => Ok(SecondaryStore::Dir(text.trim_end_matches('/').to_string())),
            None => Err(format!("{text}: expected an absolute directory or nfs://SERVER/EXPORT")),
        }
    }

    pub fn location(&self, relative: &str) -> VolumeLocation {
        match self {
            SecondaryStore::Dir(d) => VolumeLocation::File(format!("{d}/{relative}")),
            SecondaryStore::Nfs { server, export, .. } => VolumeLocation::Nfs {
                server: server.clone(),
                path: format!("{export}/{relative}"),
            },
        }
    }
}

/// What one KVM host is configured with (`stratus agent --libvirt …`).
#[derive(Clone, Debug)]
pub struct KvmConfig {
    /// `qemu:///system`, `qemu+unix:///system?socket=…`, or `test:///default`.
    pub libvirt_uri: String,
    pub domain_type: DomainType,
    /// The primary pools this host reaches, by the management server's id.
    pub pools: BTreeMap<PoolId, PoolSpec>,
    pub secondary: Option<SecondaryStore>,
    /// The bridge of the guest physical network, and its kind.
    pub bridge: String,
    pub bridge_kind: BridgeKind,
    /// The VLAN of each guest network, when the controller does not send one.
    pub network_vlans: BTreeMap<NetworkId, u16>,
    /// Where serial console logs go (one file per domain name).
    pub console_dir: Option<String>,
    pub direct_kernel: Option<DirectKernel>,
    /// A graceful shutdown waits this long before the domain is destroyed.
    pub shutdown_timeout: Duration,
    /// The data URI of live migrations (`tcp://127.0.0.1`); `None`: libvirt's choice.
    pub migration_data_uri: Option<String>,
    /// Where peers reach this host's libvirt for migrations (reported in the facts).
    pub advertised_uri: Option<String>,
    /// Destination libvirt URIs by host, for calls that carry none.
    pub peers: BTreeMap<HostId, String>,
    /// Where a downloaded template is staged before it is checked.
    pub staging_dir: String,
    /// Longest a template copy may run.
    pub copy_timeout: Duration,
    /// Powers a peer off out of band (IPMI, PDU): `{host}` is replaced by
    /// the host id; exit 0 means proven off. `None`: this host fences no one.
    pub fence_command: Option<String>,
}

impl KvmConfig {
    pub fn new(libvirt_uri: impl Into<String>) -> KvmConfig {
        KvmConfig {
            libvirt_uri: libvirt_uri.into(),
            domain_type: DomainType::Kvm,
            pools: BTreeMap::new(),
            secondary: None,
            bridge: "cloudbr0".into(),
            bridge_kind: BridgeKind::Ovs,
            network_vlans: BTreeMap::new(),
            console_dir: None,
            direct_kernel: None,
            shutdown_timeout: Duration::from_secs(10),
            migration_data_uri: None,
            advertised_uri: None,
            peers: BTreeMap::new(),
            staging_dir: std::env::temp_dir().display().to_string(),
            copy_timeout: Duration::from_secs(3600),
            fence_command: None,
        }
    }
}

/// One KVM host's drivers (compute, storage, network; fencing is a peer's).
pub struct KvmBackend {
    pub config: KvmConfig,
    conn: Mutex<Option<Arc<Connect>>>,
    /// The configured pools plus those `EnsurePool` added.
    pools: Mutex<BTreeMap<PoolId, PoolSpec>>,
    copies: Mutex<BTreeMap<(PoolId, TemplateId), Arc<CopyState>>>,
    /// Last lease value written per pool: renewals are strictly increasing.
    leases: Mutex<BTreeMap<PoolId, u64>>,
}

impl std::fmt::Debug for KvmBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KvmBackend({})", self.config.libvirt_uri)
    }
}

/// A libvirt failure as a driver error: a missing domain is `NotFound`, a
/// lost connection `Unavailable`, anything else `Refused`.
pub(crate) fn virt_error(what: &str, e: virt::error::Error) -> DriverError {
    use virt::enumutil::Enum::Known;
    use virt::error::ErrorNumber::*;
    let msg = format!("{what}: {}", e.message());
    match e.code() {
        Known(NoDomain) | Known(NoStoragePool) | Known(NoStorageVolume) => DriverError::not_found(msg),
        Known(NoConnect) | Known(SystemError) | Known(Rpc) => DriverError::unavailable(msg),
        _ => DriverError::refused(msg),
    }
}

impl KvmBackend {
    pub fn new(config: KvmConfig) -> KvmBackend {
        KvmBackend {
            pools: Mutex::new(config.pools.clone()),
            config,
            conn: Mutex::new(None),
            copies: Mutex::new(BTreeMap::new()),
            leases: Mutex::new(BTreeMap::new()),
        }
    }

    /// The libvirt connection, opened (again) when needed.
    pub(crate) fn connect(&self) -> Result<Arc<Connect>, DriverError> {
        let mut slot = self.conn.lock().expect("connection lock");
        if let Some(c) = slot.as_ref()
            && c.is_alive().unwrap_or(false)
        {
            return Ok(c.clone());
        }
        let c = Connect::open(Some(&self.config.libvirt_uri))
            .map_err(|e| DriverError::unavailable(format!("libvirt {}: {}", self.config.libvirt_uri, e.message())))?;
        let c = Arc::new(c);
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Runs blocking libvirt work off the async threads.
    pub(crate) async fn blocking<T, F>(self: &Arc<Self>, work: F) -> Result<T, DriverError>
    where
        T: Send + 'static,
        F: FnOnce(&KvmBackend, &Connect) -> Result<T, DriverError> + Send + 'static,
    {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = me.connect()?;
            work(&me, &conn)
        })
        .await
        .map_err(|e| DriverError::in_doubt(format!("libvirt worker: {e}")))?
    }

    /// Where a volume lives on one of this host's pools.
    pub fn volume_location(&self, pool: PoolId, file: &str) -> Result<VolumeLocation, DriverError> {
        let spec = self.pool_spec(pool)?;
        Ok(match spec {
            PoolSpec::Dir { path } => VolumeLocation::File(format!("{path}/{file}")),
            PoolSpec::NetFs { mount_point, .. } => VolumeLocation::File(format!("{mount_point}/{file}")),
            PoolSpec::QemuNfs { server, export, .. } => VolumeLocation::Nfs {
                server: server.clone(),
                path: format!("{export}/{file}"),
            },
        })
    }

    pub fn pool_spec(&self, pool: PoolId) -> Result<PoolSpec, DriverError> {
        self.pools
            .lock()
            .expect("pools lock")
            .get(&pool)
            .cloned()
            .ok_or_else(|| DriverError::not_found(format!("pool {pool} is not configured on this host")))
    }

    /// The file a location names on this host, if it can unlink it.
    pub fn local_file(&self, loc: &VolumeLocation) -> Option<String> {
        match loc {
            VolumeLocation::File(p) => Some(p.clone()),
            VolumeLocation::Nfs { server, path } => {
                let pools = self.pools.lock().expect("pools lock");
                let from_pool = pools.values().find_map(|s| match s {
                    PoolSpec::QemuNfs {
                        server: srv,
                        export,
                        local_path: Some(l),
                    } if srv == server => path.strip_prefix(export.as_str()).map(|rest| format!("{l}{rest}")),
                    _ => None,
                });
                from_pool.or_else(|| match &self.config.secondary {
                    Some(SecondaryStore::Nfs {
                        server: srv,
                        export,
                        local_path: Some(l),
                    }) if srv == server => path.strip_prefix(export.as_str()).map(|rest| format!("{l}{rest}")),
                    _ => None,
                })
            }
        }
    }

    pub fn volume_file(volume: VolumeId) -> String {
        format!("{volume}.qcow2")
    }

    pub fn template_file(template: TemplateId) -> String {
        format!("tmpl-{template}.qcow2")
    }

    /// The pools whose leases this host renews: every shared one (a `dir`
    /// pool is host-local and holds none).
    pub fn lease_pools(&self) -> Vec<PoolId> {
        self.pools
            .lock()
            .expect("pools lock")
            .iter()
            .filter(|(_, s)| !matches!(s, PoolSpec::Dir { .. }))
            .map(|(p, _)| *p)
            .collect()
    }
}

/// The trait implementations take `Arc<KvmBackend>` (work moves to blocking
/// threads); this handle is what the agent holds.
#[derive(Clone, Debug)]
pub struct Kvm(pub Arc<KvmBackend>);

impl Kvm {
    pub fn new(config: KvmConfig) -> Kvm {
        Kvm(Arc::new(KvmBackend::new(config)))
    }
}

#[async_trait::async_trait]
impl crate::FenceDriver for Kvm {
    async fn power_off(&self, host: HostId) -> crate::DriverOutcome {
        let Some(template) = &self.0.config.fence_command else {
            return Err(DriverError::refused("no fence device configured on this host"));
        };
        let command = template.replace("{host}", &host.to_string());
        cmd::run("sh", &["-c", &command], Duration::from_secs(60))
            .await
            .map(|_| ())
    }
}
