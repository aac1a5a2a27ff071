//! Entities as CloudStack's response objects (field names verbatim; nulls
//! omitted), and the paging every list command shares.

use crate::errors::ApiError;
use crate::params::Params;
use crate::render::Obj;
use stratus_core::capacity::CapacityRow;
use stratus_core::cloud::{CapacityScope, Cloud};
use stratus_core::controller::Controller;
use stratus_core::ids::*;
use stratus_core::inventory::*;
use stratus_core::vm::{Vm, Volume};
use uuid::Uuid;

/// Where a page starts and how long it is, from `page` (from 1) and
/// `pagesize` (default 500, `-1` = all); None: everything.
fn page_bounds(p: &Params) -> Result<Option<(usize, usize)>, ApiError> {
    let size = p.opt_i64("pagesize")?;
    let page = p.opt_i64("page")?;
    let size = match size {
        None if page.is_none() => return Ok(None),
        None => 500,
        Some(-1) => return Ok(None),
        Some(s) if s >= 1 => s as usize,
        Some(s) => {
            return Err(ApiError::param(format!(
                "Page size can't be {s}; it must be -1 or at least 1"
            )));
        }
    };
    let page = match page.unwrap_or(1) {
        n if n >= 1 => n as usize,
        n => return Err(ApiError::param(format!("Page number can't be {n}; it starts at 1"))),
    };
    Ok(Some(((page - 1).saturating_mul(size), size)))
}

/// `page` (from 1) and `pagesize` (default 500, `-1` = all) over `items`:
/// (total count, the page).
pub fn page<T>(items: Vec<T>, p: &Params) -> Result<(usize, Vec<T>), ApiError> {
    let count = items.len();
    Ok(match page_bounds(p)? {
        None => (count, items),
        Some((skip, size)) => (count, items.into_iter().skip(skip).take(size).collect()),
    })
}

/// [`page`] over `items` in the order of `key`, which must be unique per
/// item. Only the page is sorted: it is selected in linear time first (a page
/// of 500 out of 10,000 VMs sorts 500, not 10,000).
pub fn page_sorted<T, K: Ord>(
    mut items: Vec<T>,
    p: &Params,
    key: impl Fn(&T) -> K,
) -> Result<(usize, Vec<T>), ApiError> {
    let count = items.len();
    let Some((skip, size)) = page_bounds(p)? else {
        items.sort_unstable_by_key(key);
        return Ok((count, items));
    };
    if skip >= count {
        return Ok((count, Vec::new()));
    }
    if skip > 0 {
        items.select_nth_unstable_by_key(skip, &key);
        items.drain(..skip);
    }
    if size < items.len() {
        items.select_nth_unstable_by_key(size, &key);
        items.truncate(size);
    }
    items.sort_unstable_by_key(key);
    Ok((count, items))
}

/// `keyword` matches a name case-insensitively (CloudStack: LIKE %keyword%).
pub fn keyword_ok(p: &Params, name: &str) -> bool {
    p.opt_str("keyword")
        .is_none_or(|k| name.to_lowercase().contains(&k.to_lowercase()))
}

fn created(ctl: &Controller, id: Uuid) -> Option<u64> {
    ctl.directory().created_at(id).map(|m| m.0)
}

pub fn zone(ctl: &Controller, z: &Zone) -> Obj {
    Obj::new()
        .s("id", z.id.0.to_string())
        .s("name", z.name.clone())
        .s("networktype", z.network_type.as_str())
        .s("dns1", z.dns1.to_string())
        .s("internaldns1", z.internal_dns1.to_string())
        .opt_s("guestcidraddress", z.guest_cidr.map(|c| c.to_string()))
        .s("allocationstate", z.allocation_state.as_str())
        .b("localstorageenabled", z.local_storage_enabled)
        .b("securitygroupsenabled", false)
        .opt_date("created", created(ctl, z.id.0))
}

pub fn pod(cloud: &Cloud, p: &Pod) -> Obj {
    let z = cloud.inv.zone(p.zone);
    Obj::new()
        .s("id", p.id.0.to_string())
        .s("name", p.name.clone())
        .s("zoneid", z.id.0.to_string())
        .s("zonename", z.name.clone())
        .s("gateway", p.gateway.to_string())
        .s("netmask", p.netmask.to_string())
        .s("startip", p.start_ip.to_string())
        .s("endip", p.end_ip.to_string())
        .s("allocationstate", p.allocation_state.as_str())
}

pub fn cluster(cloud: &Cloud, c: &Cluster) -> Obj {
    let z = cloud.inv.zone(c.zone);
    let pd = cloud.inv.pod(c.pod);
    let s = &cloud.settings;
    let scope = stratus_core::settings::Scope::Cluster(c.id);
    Obj::new()
        .s("id", c.id.0.to_string())
        .s("name", c.name.clone())
        .s("podid", pd.id.0.to_string())
        .s("podname", pd.name.clone())
        .s("zoneid", z.id.0.to_string())
        .s("zonename", z.name.clone())
        .s("hypervisortype", c.hypervisor.as_str())
        .s("clustertype", c.cluster_type.as_str())
        .s("allocationstate", c.allocation_state.as_str())
        .s("managedstate", "Managed")
        .s(
            "cpuovercommitratio",
            s.f64("cpu.overprovisioning.factor", scope).to_string(),
        )
        .s(
            "memoryovercommitratio",
            s.f64("mem.overprovisioning.factor", scope).to_string(),
        )
}

pub fn host(ctl: &Controller, h: HostIdx) -> Obj {
    let cloud = ctl.cloud();
    let host = cloud.inv.host(h);
    let v = cloud.host_view(h);
    let cl = cloud.inv.cluster(host.cluster);
    let pd = cloud.inv.pod(host.pod);
    let z = cloud.inv.zone(host.zone);
    let mem_used = v.memoryallocated;
    Obj::new()
        .s("id", host.id.0.to_string())
        .s("name", host.name.clone())
        .s("state", host.status.as_str())
        .s("resourcestate", host.resource_state.as_str())
        .s("type", "Routing")
        .s("hypervisor", host.hypervisor.as_str())
        .s("hypervisorversion", "stratus-sim")
        .s("ipaddress", host_ip(cloud, h))
        .s("zoneid", z.id.0.to_string())
        .s("zonename", z.name.clone())
        .s("podid", pd.id.0.to_string())
        .s("podname", pd.name.clone())
        .s("clusterid", cl.id.0.to_string())
        .s("clustername", cl.name.clone())
        .s("clustertype", cl.cluster_type.as_str())
        .i("cpunumber", i64::from(host.cpu_cores))
        .i("cpusockets", 1)
        .i("cpuspeed", i64::from(host.cpu_mhz_per_core))
        .s("cpuallocated", v.cpuallocated.clone())
        .s("cpuwithoverprovisioning", v.cpuwithoverprovisioning.to_string())
        .i("memorytotal", host.memory_bytes as i64)
        .i("memoryallocated", mem_used as i64)
        .i("memoryused", mem_used as i64)
        .s("hosttags", v.hosttags.join(","))
        .b("islocalstorageactive", cloud.inv.zone(host.zone).local_storage_enabled)
        .b("hasenoughcapacity", v.cpuwithoverprovisioning > 0)
        .opt_date("created", created(ctl, host.id.0))
        .s(
            "events",
            "AgentConnected; AgentDisconnected; HostDown; PingTimeout; Remove; ShutdownRequested; StartAgentRebalance",
        )
}

/// A made-up but stable management address from the pod's range (simulated hosts).
fn host_ip(cloud: &Cloud, h: HostIdx) -> String {
    let host = cloud.inv.host(h);
    let pd = cloud.inv.pod(host.pod);
    let start = u32::from(pd.start_ip);
    let span = u32::from(pd.end_ip).saturating_sub(start).max(1);
    std::net::Ipv4Addr::from(start + (h.0 % span)).to_string()
}

pub fn pool(cloud: &Cloud, i: usize) -> Obj {
    let p = &cloud.inv.pools[i];
    let z = cloud.inv.zone(p.zone);
    let u = &cloud.book.pool[i];
    let (scope, cluster) = match p.scope {
        PoolScope::Cluster(c) => ("CLUSTER", Some(cloud.inv.cluster(c))),
        PoolScope::Zone => ("ZONE", None),
        PoolScope::Host(h) => ("HOST", Some(cloud.inv.cluster(cloud.inv.host(h).cluster))),
    };
    let pod = cluster.map(|c| cloud.inv.pod(c.pod));
    let factor = if u.raw_total > 0 {
        u.allocatable_total as f64 / u.raw_total as f64
    } else {
        1.0
    };
    Obj::new()
        .s("id", p.id.0.to_string())
        .s("name", p.name.clone())
        .s("zoneid", z.id.0.to_string())
        .s("zonename", z.name.clone())
        .opt_s("podid", pod.map(|x| x.id.0.to_string()))
        .opt_s("podname", pod.map(|x| x.name.clone()))
        .opt_s("clusterid", cluster.map(|x| x.id.0.to_string()))
        .opt_s("clustername", cluster.map(|x| x.name.clone()))
        .s("scope", scope)
        .s("type", p.pool_type.as_str())
        .s("state", p.state.as_str())
        .i("disksizetotal", u.raw_total as i64)
        .i("disksizeallocated", u.allocated as i64)
        .i("disksizeused", u.used as i64)
        .s("overprovisionfactor", factor.to_string())
        .s("tags", cloud.inv.tags.names_of(&p.tags).join(","))
        .s("hypervisor", cluster.map_or("Any", |c| c.hypervisor.as_str()))
}

pub fn image_store(cloud: &Cloud, s: &ImageStore) -> Obj {
    let z = s.zone.map(|z| cloud.inv.zone(z));
    let protocol = s.url.split_once("://").map_or("nfs", |(p, _)| p).to_string();
    Obj::new()
        .s("id", s.id.0.to_string())
        .s("name", s.name.clone())
        .s("url", s.url.clone())
        .s("protocol", protocol)
        .s("providername", "NFS")
        .s("scope", if z.is_some() { "ZONE" } else { "REGION" })
        .opt_s("zoneid", z.map(|z| z.id.0.to_string()))
        .opt_s("zonename", z.map(|z| z.name.clone()))
}

pub fn service_offering(ctl: &Controller, o: &ServiceOffering) -> Obj {
    let tags = &ctl.cloud().inv.tags;
    let dir = ctl.directory();
    let mut obj = Obj::new()
        .s("id", o.id.0.to_string())
        .s("name", o.name.clone())
        .s(
            "displaytext",
            dir.display_text.get(&o.id.0).cloned().unwrap_or_else(|| o.name.clone()),
        )
        .s("storagetype", o.storage_type.as_str())
        .b("offerha", o.offer_ha)
        .b("limitcpuuse", false)
        .b("isvolatile", false)
        .b("issystem", false)
        .b("defaultuse", false)
        .b("iscustomized", o.custom.is_some())
        .s("provisioningtype", "thin")
        .opt_date("created", created(ctl, o.id.0));
    if o.cpu_number > 0 {
        obj = obj.i("cpunumber", i64::from(o.cpu_number));
    }
    if o.cpu_speed_mhz > 0 {
        obj = obj.i("cpuspeed", i64::from(o.cpu_speed_mhz));
    }
    if o.memory_mb > 0 {
        obj = obj.i("memory", o.memory_mb as i64);
    }
    let ht = tags.names_of(&o.host_tags);
    let st = tags.names_of(&o.storage_tags);
    obj.opt_s("hosttags", (!ht.is_empty()).then(|| ht.join(",")))
        .opt_s("tags", (!st.is_empty()).then(|| st.join(",")))
        .opt_s("deploymentplanner", o.planner.map(|p| p.as_str()))
}

pub fn disk_offering(ctl: &Controller, o: &DiskOffering) -> Obj {
    let tags = ctl.cloud().inv.tags.names_of(&o.storage_tags);
    let dir = ctl.directory();
    let (size_gib, custom) = match o.size {
        DiskSize::Fixed(b) => (Some((b >> 30) as i64), false),
        DiskSize::Custom { .. } => (None, true),
    };
    Obj::new()
        .s("id", o.id.0.to_string())
        .s("name", o.name.clone())
        .s(
            "displaytext",
            dir.display_text.get(&o.id.0).cloned().unwrap_or_else(|| o.name.clone()),
        )
        .opt_i("disksize", size_gib)
        .b("iscustomized", custom)
        .s("storagetype", o.storage_type.as_str())
        .s("provisioningtype", "thin")
        .b("displayoffering", true)
        .opt_s("tags", (!tags.is_empty()).then(|| tags.join(",")))
        .opt_date("created", created(ctl, o.id.0))
}

/// A template or ISO as seen from one zone (CloudStack lists one row per zone).
pub fn template(ctl: &Controller, t: &Template, zone: Option<ZoneIdx>) -> Obj {
    let cloud = ctl.cloud();
    let z = zone.map(|z| cloud.inv.zone(z));
    let state = zone.and_then(|z| t.state_in(z));
    let admin = cloud.admin_account();
    Obj::new()
        .s("id", t.id.0.to_string())
        .s("name", t.name.clone())
        .s(
            "displaytext",
            ctl.directory()
                .display_text
                .get(&t.id.0)
                .cloned()
                .unwrap_or_else(|| t.name.clone()),
        )
        .s("format", t.format.as_str())
        .s("hypervisor", t.hypervisor.as_str())
        .i(
            "size",
            if t.downloads.is_empty() || t.downloads.iter().any(|d| d.physical_bytes.is_some()) {
                t.size_bytes as i64
            } else {
                0
            },
        )
        .s("ostypeid", crate::ostypes::id_of(&t.os_type).to_string())
        .s("ostypename", t.os_type.clone())
        .b("isready", state == Some(TemplateZoneState::Ready))
        .opt_s(
            "status",
            state.map(|s| {
                let error = zone.and_then(|z| t.download_in(z)).and_then(|d| d.error.as_deref());
                crate::secstorage::status_text(s, None, error)
            }),
        )
        .opt_i(
            "physicalsize",
            zone.and_then(|z| t.download_in(z))
                .and_then(|d| d.physical_bytes)
                .map(|b| b as i64),
        )
        .b("ispublic", true)
        .b("isfeatured", true)
        .b("isextractable", false)
        .b("passwordenabled", false)
        .b("bootable", true)
        .b("crossZones", false)
        .s("templatetype", if t.is_iso { "USER" } else { "BUILTIN" })
        .s("account", "admin")
        .s("accountid", admin.0.to_string())
        .s("domainid", cloud.root_domain().0.to_string())
        .s("domain", "ROOT")
        .opt_s("zoneid", z.map(|z| z.id.0.to_string()))
        .opt_s("zonename", z.map(|z| z.name.clone()))
        .opt_date("created", created(ctl, t.id.0))
}

fn owner(obj: Obj, cloud: &Cloud, a: AccountIdx) -> Obj {
    let acc = cloud.inv.account(a);
    let d = cloud.inv.domain(acc.domain);
    obj.s("account", acc.name.clone())
        .s("domainid", d.id.0.to_string())
        .s("domain", d.name.clone())
}

pub fn vm(ctl: &Controller, v: &Vm, admin: bool) -> Obj {
    let cloud = ctl.cloud();
    let inv = &cloud.inv;
    let z = inv.zone(v.zone);
    let o = inv.service_offering(v.offering);
    let t = inv.template(v.template);
    let host = v.host.map(|h| inv.host(h));
    let mut obj = Obj::new()
        .s("id", v.id.0.to_string())
        .s("name", v.name.clone())
        .s("displayname", v.display_name.clone())
        .s("state", v.state.as_str())
        .s("zoneid", z.id.0.to_string())
        .s("zonename", z.name.clone())
        .s("templateid", t.id.0.to_string())
        .s("templatename", t.name.clone())
        .s("templatedisplaytext", t.name.clone())
        .s("serviceofferingid", o.id.0.to_string())
        .s("serviceofferingname", o.name.clone())
        .i("cpunumber", i64::from(v.size.cpu_number))
        .i("cpuspeed", i64::from(v.size.cpu_speed_mhz))
        .i("memory", v.size.memory_mb as i64)
        .b("haenable", v.ha_enabled)
        .b("passwordenabled", false)
        .b("isdynamicallyscalable", false)
        .s(
            "hypervisor",
            host.map_or(t.hypervisor.as_str(), |h| h.hypervisor.as_str()),
        )
        .s("guestosid", crate::ostypes::id_of(&t.os_type).to_string())
        .s("ostypeid", crate::ostypes::id_of(&t.os_type).to_string())
        .s("rootdevicetype", "ROOT")
        .i("rootdeviceid", 0)
        .date("created", v.created.0);
    obj = owner(obj, cloud, v.account);
    if let Some(h) = host {
        obj = obj.s("hostid", h.id.0.to_string()).s("hostname", h.name.clone());
    }
    if admin {
        obj = obj.s("instancename", format!("i-{}", &v.id.0.simple().to_string()[..8]));
    }
    let nics: Vec<Obj> = v
        .nic
        .iter()
        .map(|n| {
            let net = inv.network(n.network);
            let mac = n.mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
            Obj::new()
                .s("id", Uuid::from_u128(v.id.0.as_u128() ^ 0x6e6963).to_string())
                .s("networkid", net.id.0.to_string())
                .s("networkname", net.name.clone())
                .s("ipaddress", n.ip.to_string())
                .s("netmask", std::net::Ipv4Addr::from(net.cidr.mask()).to_string())
                .s("gateway", net.gateway.to_string())
                .s("macaddress", mac)
                .b("isdefault", true)
                .s("traffictype", "Guest")
                .s("type", "Isolated")
        })
        .collect();
    obj.list("nic", nics)
        .list("securitygroup", Vec::new())
        .list("affinitygroup", Vec::new())
        .list("tags", Vec::new())
}

pub fn volume(ctl: &Controller, v: &Volume) -> Obj {
    let cloud = ctl.cloud();
    let inv = &cloud.inv;
    let z = inv.zone(v.zone);
    let vm = v.vm.map(|i| cloud.vm_at(i));
    let pool = v.pool.map(|p| inv.pool(p));
    let offering = v.disk_offering.map(|d| inv.disk_offering(d));
    let obj = Obj::new()
        .s("id", v.id.0.to_string())
        .s("name", v.name.clone())
        .s(
            "type",
            if v.volume_type.as_str() == "Root" {
                "ROOT"
            } else {
                "DATADISK"
            },
        )
        .s("state", v.state.as_str())
        .i("size", v.size_bytes as i64)
        .s("zoneid", z.id.0.to_string())
        .s("zonename", z.name.clone())
        .s("storagetype", v.storage_type.as_str())
        .s("provisioningtype", "thin")
        .opt_s("virtualmachineid", vm.map(|m| m.id.0.to_string()))
        .opt_s("vmname", vm.map(|m| m.name.clone()))
        .opt_s("vmdisplayname", vm.map(|m| m.display_name.clone()))
        .opt_s("vmstate", vm.map(|m| m.state.as_str()))
        // The position in the VM's volume list (root 0), what detachVolume's deviceid names.
        .opt_i(
            "deviceid",
            vm.and_then(|m| m.volumes.iter().position(|x| cloud.volume_at(*x).id == v.id))
                .map(|p| p as i64),
        )
        .opt_s("storageid", pool.map(|p| p.id.0.to_string()))
        .opt_s("storage", pool.map(|p| p.name.clone()))
        .opt_s("diskofferingid", offering.map(|o| o.id.0.to_string()))
        .opt_s("diskofferingname", offering.map(|o| o.name.clone()))
        .b("destroyed", v.state.as_str() == "Destroy")
        .b("isextractable", false);
    owner(obj, cloud, v.account)
}

pub fn network(ctl: &Controller, n: &Network) -> Obj {
    let cloud = ctl.cloud();
    let z = cloud.inv.zone(n.zone);
    let obj = Obj::new()
        .s("id", n.id.0.to_string())
        .s("name", n.name.clone())
        .s(
            "displaytext",
            ctl.directory()
                .display_text
                .get(&n.id.0)
                .cloned()
                .unwrap_or_else(|| n.name.clone()),
        )
        .s("zoneid", z.id.0.to_string())
        .s("zonename", z.name.clone())
        .s("cidr", n.cidr.to_string())
        .s("gateway", n.gateway.to_string())
        .s("netmask", std::net::Ipv4Addr::from(n.cidr.mask()).to_string())
        .s("type", if n.account.is_some() { "Isolated" } else { "Shared" })
        .s("traffictype", "Guest")
        .s("state", "Implemented")
        .s("networkofferingid", crate::cmds::network::DEFAULT_OFFERING_ID)
        .s("networkofferingname", "DefaultIsolatedNetworkOffering")
        .b("isdefault", false)
        .b("issystem", false)
        .b("canusefordeploy", true)
        .b("restartrequired", false)
        .s("acltype", if n.account.is_some() { "Account" } else { "Domain" })
        .s("broadcastdomaintype", "Vlan");
    match n.account {
        Some(a) => owner(obj, cloud, a),
        None => obj,
    }
}

/// listCapacity rows at cluster level (or for one zone), for /metrics.
#[derive(Debug)]
pub struct CapRow {
    pub zone_name: String,
    pub cluster_name: String,
    pub kind: &'static str,
    pub used: u64,
    pub total: u64,
}

pub fn capacity_rows(ctl: &Controller, zone: Option<ZoneIdx>) -> Vec<CapRow> {
    let cloud = ctl.cloud();
    let mut out = Vec::new();
    for (i, c) in cloud.inv.clusters.iter().enumerate() {
        if c.removed || zone.is_some_and(|z| z != c.zone) {
            continue;
        }
        for r in cloud.capacity(CapacityScope::Cluster(ClusterIdx(i as u32)), None) {
            out.push(CapRow {
                zone_name: r.zonename.clone(),
                cluster_name: c.name.clone(),
                kind: r.name,
                used: r.capacityused,
                total: r.capacitytotal,
            });
        }
    }
    out
}

pub fn capacity(r: &CapacityRow) -> Obj {
    Obj::new()
        .i("type", i64::from(r.capacity_type))
        .s("name", r.name)
        .s("zoneid", r.zoneid.0.to_string())
        .s("zonename", r.zonename.clone())
        .opt_s("podid", r.podid.map(|p| p.0.to_string()))
        .opt_s("podname", r.podname.clone())
        .opt_s("clusterid", r.clusterid.map(|c| c.0.to_string()))
        .opt_s("clustername", r.clustername.clone())
        .i("capacitytotal", r.capacitytotal as i64)
        .i("capacityused", r.capacityused as i64)
        .i("capacityallocated", r.capacityallocated as i64)
        .s("percentused", r.percentused.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn page_sorted_equals_sort_then_page(
            keys in proptest::collection::hash_set(0u32..500, 0..120),
            page_no in proptest::option::of(-1i64..12),
            size in proptest::option::of(prop_oneof![Just(-1i64), 1i64..40]),
        ) {
            let mut pairs = Vec::new();
            if let Some(n) = page_no {
                pairs.push(("page".to_string(), n.to_string()));
            }
            if let Some(n) = size {
                pairs.push(("pagesize".to_string(), n.to_string()));
            }
            let p = Params::from_pairs(pairs);
            let items: Vec<u32> = keys.into_iter().collect();
            let mut sorted = items.clone();
            sorted.sort_unstable();
            match (page(sorted, &p), page_sorted(items, &p, |k| *k)) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(a), Err(b)) => prop_assert_eq!(a.text, b.text),
                (a, b) => prop_assert!(false, "{:?} vs {:?}", a.map(|x| x.0), b.map(|x| x.0)),
            }
        }
    }
}
