//! What a crash leaves on a host, found and cleaned when the agent starts
//! or reconnects. The policy:
//!
//! 1. **Running domains** marked as Stratus's are never touched here: the
//!    agent reports them and the management server's VM sync adopts or
//!    stops them (it alone knows where each VM belongs).
//! 2. **Defined but stopped** Stratus domains are undefined: in Stratus's
//!    model a domain exists only while it runs (a crash between define and
//!    start, or between destroy and undefine, leaves them).
//! 3. **OVS ports** libvirt made for a domain (`external_ids:vm-id`) that no
//!    running domain on this host owns are deleted (what an operator would
//!    otherwise remove with `ovs-vsctl del-port`).
//! 4. **Volumes** (`<uuid>.qcow2`) on this host's pools are only listed, in
//!    the log: deleting data is the management server's decision (its
//!    ledger's DeleteVolume), never the agent's.
//!
//! Domains without Stratus's mark are not Stratus's: never listed or touched.

use super::cmd::run;
use super::xml::MANAGED_MARK;
use super::{Kvm, virt_error};
use std::collections::BTreeSet;
use std::time::Duration;
use stratus_wire::{DriverError, PoolSpec};

/// What one pass found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Stratus domains that run (reported to management).
    pub running: Vec<String>,
    /// Stopped Stratus domains undefined.
    pub undefined: Vec<String>,
    /// OVS ports deleted.
    pub ports_removed: Vec<String>,
    /// Volume files on local-visible pools (listed for management).
    pub volumes: Vec<String>,
}

impl Kvm {
    pub async fn reconcile(&self) -> Result<Reconciled, DriverError> {
        let (running, undefined, running_uuids) = self
            .0
            .blocking(|_, conn| {
                let mut running = Vec::new();
                let mut undefined = Vec::new();
                let mut uuids = BTreeSet::new();
                for d in conn.list_all_domains(0).map_err(|e| virt_error("list domains", e))? {
                    let Ok(xml) = d.xml_desc(0) else { continue };
                    if !xml.contains(MANAGED_MARK) {
                        continue;
                    }
                    let name = d.name().unwrap_or_default();
                    if d.is_active().unwrap_or(false) {
                        uuids.insert(d.uuid_string().unwrap_or_default());
                        running.push(name);
                    } else if d.undefine().is_ok() {
                        undefined.push(name);
                    }
                }
                Ok((running, undefined, uuids))
            })
            .await?;
        let mut ports_removed = Vec::new();
        if self.0.config.bridge_kind != stratus_wire::BridgeKind::Linux {
            let out = run(
                "ovs-vsctl",
                &[
                    "--bare",
                    "--columns=name,external_ids",
                    "find",
                    "interface",
                    "external_ids:vm-id!=\"\"",
                ],
                Duration::from_secs(20),
            )
            .await
            .unwrap_or_default();
            for record in out.split("\n\n").filter(|r| !r.trim().is_empty()) {
                let mut lines = record.lines();
                let name = lines.next().unwrap_or_default().trim().to_string();
                let ids = lines.collect::<Vec<_>>().join(" ");
                let vm_id = ids
                    .split(|c: char| c == ',' || c.is_whitespace() || c == '{' || c == '}')
                    .find_map(|kv| kv.strip_prefix("vm-id="))
                    .map(|v| v.trim_matches('"').to_string());
                if let Some(id) = vm_id
                    && !name.is_empty()
                    && !running_uuids.contains(&id)
                    && run(
                        "ovs-vsctl",
                        &["--if-exists", "del-port", &name],
                        Duration::from_secs(20),
                    )
                    .await
                    .is_ok()
                {
                    ports_removed.push(name);
                }
            }
        }
        let mut volumes = Vec::new();
        let pools: Vec<PoolSpec> = self.0.pools.lock().expect("pools lock").values().cloned().collect();
        for spec in pools {
            let dir = match spec {
                PoolSpec::Dir { path } => Some(path),
                PoolSpec::NetFs { mount_point, .. } => Some(mount_point),
                PoolSpec::QemuNfs { local_path, .. } => local_path,
            };
            let Some(dir) = dir else { continue };
            if let Ok(mut rd) = tokio::fs::read_dir(&dir).await {
                while let Ok(Some(e)) = rd.next_entry().await {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if n.ends_with(".qcow2") && !n.starts_with("tmpl-") {
                        volumes.push(format!("{dir}/{n}"));
                    }
                }
            }
        }
        volumes.sort();
        Ok(Reconciled {
            running,
            undefined,
            ports_removed,
            volumes,
        })
    }
}
