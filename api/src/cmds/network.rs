//! Networks, network offerings, public IP ranges and addresses.

use super::prelude::*;

/// The one network offering Stratus has (isolated guest networks).
pub const DEFAULT_OFFERING_ID: &str = "5e1f3b1e-7c1a-4d43-9a51-8d0f0e0c0001";

pub fn ip_view(ctl: &Controller, id: Uuid) -> Option<Obj> {
    let cloud = ctl.cloud();
    let inv = &cloud.inv;
    let ip = ctl
        .directory()
        .public_ip(stratus_core::controller::directory::PublicIpId(id))?;
    let z = inv.zone(inv.find_zone(ip.zone)?);
    let mut o = Obj::new()
        .s("id", ip.id.to_string())
        .s("ipaddress", ip.address.to_string())
        .s("zoneid", z.id.0.to_string())
        .s("zonename", z.name.clone())
        .s("vlanid", ip.range.to_string())
        .s("state", if ip.account.is_some() { "Allocated" } else { "Free" })
        .b("issourcenat", false)
        .b("isstaticnat", false)
        .b("issystem", false)
        .b("forvirtualnetwork", true)
        .opt_date("allocated", ip.allocated.map(|m| m.0));
    if let Some(a) = ip.account.and_then(|a| inv.find_account(a)) {
        let acc = inv.account(a);
        let d = inv.domain(acc.domain);
        o = o
            .s("account", acc.name.clone())
            .s("domainid", d.id.0.to_string())
            .s("domain", d.name.clone());
    }
    if let Some(n) = ip.network.and_then(|n| inv.find_network(n)) {
        o = o.s("associatednetworkid", inv.network(n).id.0.to_string());
    }
    Some(o)
}

pub static COMMANDS: &[Command] = &[];
