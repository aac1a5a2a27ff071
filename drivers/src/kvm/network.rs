//! Guest networking: one Open vSwitch bridge per physical network (kernel
//! or userspace `netdev` datapath), each NIC a port libvirt adds with its
//! network's VLAN tag and removes with the domain; or Linux bridges, one per
//! VLAN (`<bridge>-<vlan>`). `UnplugNic` removes what a crash left behind.

use super::cmd::run;
use super::{Kvm, KvmBackend};
use crate::{DriverOutcome, NetworkDriver};
use async_trait::async_trait;
use std::net::Ipv4Addr;
use std::time::Duration;
use stratus_wire::ids::*;
use stratus_wire::{BridgeKind, DriverError, Mac, NicDetail, NicModel};

const OVS: Duration = Duration::from_secs(20);

/// Makes sure a bridge exists and is up.
pub(crate) async fn ensure_bridge(bridge: &str, kind: BridgeKind) -> DriverOutcome {
    match kind {
        BridgeKind::Ovs => {
            run("ovs-vsctl", &["--may-exist", "add-br", bridge], OVS).await?;
        }
        BridgeKind::OvsNetdev => {
            run(
                "ovs-vsctl",
                &[
                    "--may-exist",
                    "add-br",
                    bridge,
                    "--",
                    "set",
                    "bridge",
                    bridge,
                    "datapath_type=netdev",
                ],
                OVS,
            )
            .await?;
        }
        BridgeKind::Linux => {
            if run("ip", &["link", "show", bridge], OVS).await.is_err() {
                run("ip", &["link", "add", bridge, "type", "bridge"], OVS).await?;
            }
        }
    }
    run("ip", &["link", "set", bridge, "up"], OVS).await.map(|_| ())
}

/// The OVS interfaces libvirt made for a MAC (`external_ids:attached-mac`).
pub async fn ovs_ports_of_mac(mac: Mac) -> Result<Vec<String>, DriverError> {
    let out = run(
        "ovs-vsctl",
        &[
            "--bare",
            "--columns=name",
            "find",
            "interface",
            &format!("external_ids:attached-mac=\"{mac}\""),
        ],
        OVS,
    )
    .await?;
    Ok(out.split_whitespace().map(str::to_string).collect())
}

/// The VLAN tag on an OVS port (`None`: untagged).
pub async fn ovs_port_tag(port: &str) -> Result<Option<u16>, DriverError> {
    let out = run("ovs-vsctl", &["get", "port", port, "tag"], OVS).await?;
    Ok(out.trim().parse().ok())
}

impl KvmBackend {
    async fn ensure_nic_bridge(&self, network: NetworkId, mac: Mac, vlan: Option<u16>) -> DriverOutcome {
        let nic = NicDetail {
            mac,
            vlan: vlan.or_else(|| self.config.network_vlans.get(&network).copied()),
            bridge: None,
            model: NicModel::Virtio,
        };
        let (bridge, _) = self.bridge_for(&nic);
        ensure_bridge(&bridge, self.config.bridge_kind).await
    }
}

#[async_trait]
impl NetworkDriver for Kvm {
    /// The port itself appears when the domain starts (libvirt adds it with
    /// the tag from the domain XML); here the bridge is made ready.
    async fn plug_nic(
        &self,
        _: HostId,
        _: VmId,
        network: NetworkId,
        mac: Mac,
        _: Ipv4Addr,
        vlan: Option<u16>,
    ) -> DriverOutcome {
        self.0.ensure_nic_bridge(network, mac, vlan).await
    }

    /// Removes ports with this MAC that no running domain holds (libvirt
    /// removes a stopped domain's own ports; these are a crash's leftovers).
    async fn unplug_nic(&self, _: HostId, vm: VmId, _: NetworkId, mac: Mac) -> DriverOutcome {
        if self.0.config.bridge_kind == BridgeKind::Linux {
            return Ok(());
        }
        let running = self
            .0
            .blocking(move |_, conn| {
                Ok(super::compute::lookup(conn, vm)?.is_some_and(|d| d.is_active().unwrap_or(false)))
            })
            .await?;
        if running {
            return Ok(());
        }
        for port in ovs_ports_of_mac(mac).await? {
            run("ovs-vsctl", &["--if-exists", "del-port", &port], OVS).await?;
        }
        Ok(())
    }

    async fn ensure_network(&self, _: HostId, _: NetworkId, bridge: &str, kind: BridgeKind) -> DriverOutcome {
        ensure_bridge(bridge, kind).await
    }
}
