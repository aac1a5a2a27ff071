//! Hosts: addHost (Simulator hosts, CloudStack's `http://sim/...` URLs with
//! per-host overrides; KVM hosts, which answer with the one-time enrollment
//! token their `stratus agent --libvirt` presents), listHosts, updateHost,
//! maintenance.

use super::prelude::*;
use std::time::Duration;
use stratus_core::cloud::{HostSpec, PoolScopeSpec, PoolSpec};
use stratus_core::controller::admin::AdminChange;
use stratus_core::inventory::*;

/// A simulated host's shape: CloudStack's mock-host defaults (4 × 8000 MHz,
/// 8 GiB, 1 TiB local) with the URL's last-segment overrides
/// (`cpuspeed=`, `cpucore=`, `memory=` bytes, `localstorage=` bytes).
#[derive(Debug, PartialEq, Eq)]
pub struct SimHostUrl {
    pub name: String,
    pub cores: u32,
    pub mhz: u32,
    pub memory: u64,
    pub local: u64,
}

/// A KVM host's URL: `kvm://<host name>[/cpucore=N&cpuspeed=MHZ&memory=BYTES]`
/// (or `http://`). The name is the one its agent calls itself; the numbers
/// size its capacity (default 1 core × 1000 MHz, 1 GiB: give the host's real
/// ones, which its agent also reports at enrollment).
pub fn parse_kvm_url(url: &str) -> Result<SimHostUrl, ApiError> {
    let bad = || ApiError::param(format!("url: '{url}' is not a KVM host URL (kvm://<host name>)"));
    let rest = url
        .strip_prefix("kvm://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        return Err(bad());
    }
    let mut h = SimHostUrl {
        name: name.to_string(),
        cores: 1,
        mhz: 1000,
        memory: 1 << 30,
        local: 0,
    };
    for part in path.split(['/', '&']).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(bad)?;
        let n: u64 = v
            .trim()
            .parse()
            .map_err(|_| ApiError::param(format!("url: {k}={v} is not a number")))?;
        match k {
            "cpuspeed" => h.mhz = u32::try_from(n).map_err(|_| bad())?,
            "cpucore" => h.cores = u32::try_from(n).map_err(|_| bad())?,
            "memory" => h.memory = n,
            _ => return Err(ApiError::param(format!("url: unknown KVM host setting {k}"))),
        }
    }
    if h.cores == 0 || h.mhz == 0 || h.memory == 0 {
        return Err(ApiError::param("url: cores, MHz and memory must be above zero"));
    }
    Ok(h)
}

pub fn parse_sim_url(url: &str) -> Result<SimHostUrl, ApiError> {
    let bad = || {
        ApiError::param(format!(
            "url: '{url}' is not a simulator URL (http://sim/<cluster>/<host>)"
        ))
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !authority.starts_with("sim") {
        return Err(bad());
    }
    let mut h = SimHostUrl {
        name: String::new(),
        cores: 4,
        mhz: 8000,
        memory: 8 << 30,
        local: 1 << 40,
    };
    let mut names = Vec::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        let mut plain = Vec::new();
        for part in seg.split('&') {
            match part.split_once('=') {
                Some((k, v)) => {
                    let n: u64 = v
                        .trim()
                        .parse()
                        .map_err(|_| ApiError::param(format!("url: {k}={v} is not a number")))?;
                    match k {
                        "cpuspeed" => h.mhz = u32::try_from(n).map_err(|_| bad())?,
                        "cpucore" => h.cores = u32::try_from(n).map_err(|_| bad())?,
                        "memory" => h.memory = n,
                        "localstorage" => h.local = n,
                        _ => return Err(ApiError::param(format!("url: unknown simulator override {k}"))),
                    }
                }
                None => plain.push(part),
            }
        }
        names.extend(plain.into_iter().filter(|p| !p.is_empty()).map(str::to_string));
    }
    if names.is_empty() {
        return Err(bad());
    }
    h.name = format!("sim-{}", names.join("-"));
    if h.cores == 0 || h.mhz == 0 || h.memory == 0 {
        return Err(ApiError::param("url: cores, MHz and memory must be above zero"));
    }
    Ok(h)
}

fn host_obj(c: &Ctx<'_>, id: Uuid) -> Result<Obj, ApiError> {
    c.api.read(|ctl| {
        let h = ctl
            .cloud()
            .inv
            .find_host(HostId(id))
            .ok_or_else(|| not_found("host", id))?;
        Ok(views::host(ctl, h))
    })
}

fn add_host<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let hv = c.p.req_str("hypervisor")?;
        let hypervisor = match Hypervisor::parse(hv) {
            Some(h @ (Hypervisor::Simulator | Hypervisor::Kvm)) => h,
            _ => {
                return Err(ApiError::param(format!(
                    "hypervisor: '{hv}' hosts cannot be added here (Simulator, KVM)"
                )));
            }
        };
        let url = match hypervisor {
            Hypervisor::Kvm => parse_kvm_url(c.p.req_str("url")?)?,
            _ => parse_sim_url(c.p.req_str("url")?)?,
        };
        let zone = ZoneId(c.p.req_uuid("zoneid")?);
        let pod = PodId(c.p.req_uuid("podid")?);
        let cluster = c.api.read(|ctl| -> Result<ClusterId, ApiError> {
            let inv = &ctl.cloud().inv;
            let cl = match (c.p.opt_uuid("clusterid")?, c.p.opt_str("clustername")) {
                (Some(id), _) => inv
                    .find_cluster(ClusterId(id))
                    .ok_or_else(|| not_found("cluster", id))?,
                (None, Some(n)) => inv
                    .live_clusters()
                    .find(|(_, x)| x.name == n)
                    .map(|(i, _)| i)
                    .ok_or_else(|| ApiError::param(format!("Unable to find cluster by name {n}")))?,
                (None, None) => {
                    return Err(ApiError::param(
                        "Unable to execute API command addhost due to missing parameter clusterid",
                    ));
                }
            };
            let cl = inv.cluster(cl);
            if inv.pod(cl.pod).id != pod || inv.zone(cl.zone).id != zone {
                return Err(ApiError::param("the cluster is not in that pod and zone"));
            }
            if cl.hypervisor != hypervisor {
                return Err(ApiError::param(format!(
                    "cluster {} is a {} cluster, not {hypervisor}",
                    cl.name, cl.hypervisor
                )));
            }
            Ok(cl.id)
        })?;
        let spec = HostSpec {
            name: url.name.clone(),
            cluster,
            cpu_cores: url.cores,
            cpu_mhz: url.mhz,
            memory_bytes: url.memory,
            tags: c
                .p
                .opt_list("hosttags")
                .unwrap_or_default()
                .into_iter()
                .map(str::to_string)
                .collect(),
        };
        let created = c.api.admin(Some(c.caller), AdminChange::AddHost { spec }).await?;
        let host = HostId(created.id);
        let local = c.api.read(|ctl| {
            let inv = &ctl.cloud().inv;
            inv.find_zone(zone).is_some_and(|z| inv.zone(z).local_storage_enabled)
        });
        if local && url.local > 0 {
            let spec = PoolSpec {
                name: format!("{}-local", url.name),
                zone,
                scope: PoolScopeSpec::Host(host),
                pool_type: PoolType::Filesystem,
                capacity_bytes: url.local,
                tags: Vec::new(),
            };
            c.api.admin(Some(c.caller), AdminChange::CreatePool { spec }).await?;
        }
        if hypervisor == Hypervisor::Kvm {
            // The host runs its own agent: hand its enrollment token back.
            let token = c.api.gw.issue_token_durable(host).await.map_err(ApiError::internal)?;
            let obj = host_obj(c, host.0)?.s("enrollmenttoken", token);
            return Ok(render::list_body("host", 1, vec![obj]));
        }
        if let Some(sim) = &c.api.sim {
            let token = c.api.gw.issue_token_durable(host).await.map_err(ApiError::internal)?;
            sim.host_added(host, token).map_err(ApiError::internal)?;
            // CloudStack answers once the agent connected: wait (briefly) for its first ping.
            for _ in 0..100 {
                let up = c.api.read(|ctl| {
                    let inv = &ctl.cloud().inv;
                    inv.find_host(host)
                        .is_some_and(|h| inv.host(h).status != HostStatus::Connecting)
                });
                if up {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(render::list_body("host", 1, vec![host_obj(c, host.0)?]))
    })
}

fn list_hosts<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let zone = c.p.opt_uuid("zoneid")?;
        let pod = c.p.opt_uuid("podid")?;
        let cluster = c.p.opt_uuid("clusterid")?;
        let vm = c.p.opt_uuid("virtualmachineid")?;
        let name = c.p.opt_str("name");
        let state = c.p.opt_str("state");
        let rstate = c.p.opt_str("resourcestate");
        let ty = c.p.opt_str("type");
        let hv = c.p.opt_str("hypervisor");
        let evidence = c.p.opt_list("details").is_some_and(|d| {
            d.iter()
                .any(|x| x.eq_ignore_ascii_case("all") || x.eq_ignore_ascii_case("evidence"))
        });
        c.api.read(|ctl| {
            let cloud = ctl.cloud();
            let inv = &cloud.inv;
            let vm_host = match vm {
                Some(v) => Some(cloud.vm(VmId(v)).ok_or_else(|| not_found("virtual machine", v))?.host),
                None => None,
            };
            let list: Vec<HostIdx> = (0..inv.hosts.len() as u32)
                .map(HostIdx)
                .filter(|h| {
                    let x = inv.host(*h);
                    !x.is_removed()
                        && id.is_none_or(|i| x.id.0 == i)
                        && zone.is_none_or(|z| inv.zone(x.zone).id.0 == z)
                        && pod.is_none_or(|p| inv.pod(x.pod).id.0 == p)
                        && cluster.is_none_or(|cl| inv.cluster(x.cluster).id.0 == cl)
                        && vm_host.is_none_or(|vh| vh == Some(*h))
                        && name.is_none_or(|n| x.name == n)
                        && state.is_none_or(|s| x.status.as_str().eq_ignore_ascii_case(s))
                        && rstate.is_none_or(|s| x.resource_state.as_str().eq_ignore_ascii_case(s))
                        && ty.is_none_or(|t| t.eq_ignore_ascii_case("Routing"))
                        && hv.is_none_or(|t| x.hypervisor.as_str().eq_ignore_ascii_case(t))
                        && views::keyword_ok(c.p, &x.name)
                })
                .collect();
            let (count, page) = views::page(list, c.p)?;
            Ok(render::list_body(
                "host",
                count,
                page.into_iter()
                    .map(|h| {
                        let o = views::host(ctl, h);
                        if evidence { with_health(ctl, h, o) } else { o }
                    })
                    .collect(),
            ))
        })
    })
}

/// `details=evidence` (or `all`), a Stratus addition: why the host is in its
/// state — last ping, since when it is Down, the fencing proof, and the
/// investigator's answers (lease reads, neighbour pings), newest last.
fn with_health(ctl: &Controller, h: HostIdx, o: Obj) -> Obj {
    use stratus_core::controller::FenceProof;
    let r = ctl.host_report(h);
    let fenced = r.fenced.map(|f| match f {
        FenceProof::LeaseExpired { stale_ms } => format!("lease expired (stale for {} s)", stale_ms / 1000),
        FenceProof::PoweredOff => "powered off by the fence driver".to_string(),
    });
    let evidence = r
        .evidence
        .iter()
        .map(|e| {
            Obj::new()
                .date("at", e.at.0)
                .s("source", e.source.clone())
                .s("sign", format!("{:?}", e.sign))
                .s("detail", e.detail.clone())
        })
        .collect();
    o.opt_date("lastpinged", r.last_ping.map(|m| m.0))
        .opt_date("downsince", r.down_since.map(|m| m.0))
        .opt_s("fenced", fenced)
        .list("evidence", evidence)
}

fn update_host<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("id")?;
        // CloudStack's updateHost takes Enable/Disable (and Enabled/Disabled from some clients).
        let allocation = match c.p.opt_str("allocationstate") {
            None => None,
            Some(s) if s.eq_ignore_ascii_case("enable") || s.eq_ignore_ascii_case("enabled") => {
                Some(AllocationState::Enabled)
            }
            Some(s) if s.eq_ignore_ascii_case("disable") || s.eq_ignore_ascii_case("disabled") => {
                Some(AllocationState::Disabled)
            }
            Some(s) => {
                return Err(ApiError::param(format!(
                    "allocationstate: '{s}' is not Enable or Disable"
                )));
            }
        };
        let tags = c.p.opt_str("hosttags").map(|t| {
            t.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        });
        let change = AdminChange::UpdateHost {
            host: HostId(id),
            allocation,
            tags,
        };
        c.api.admin(Some(c.caller), change).await?;
        Ok(Obj::new().obj("host", host_obj(c, id)?))
    })
}

fn prepare_maintenance<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let host = HostId(c.p.req_uuid("id")?);
        let created = c
            .api
            .admin(Some(c.caller), AdminChange::PrepareMaintenance { host })
            .await?;
        let job = created
            .job
            .ok_or_else(|| ApiError::internal("maintenance made no job"))?;
        Ok(render::async_body(&job.to_string()))
    })
}

fn cancel_maintenance<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let host = HostId(c.p.req_uuid("id")?);
        let created = c
            .api
            .admin(Some(c.caller), AdminChange::CancelMaintenance { host })
            .await?;
        let job = created
            .job
            .ok_or_else(|| ApiError::internal("maintenance made no job"))?;
        Ok(render::async_body(&job.to_string()))
    })
}

const HOST: &[&str] = &[
    "id",
    "name",
    "state",
    "resourcestate",
    "type",
    "hypervisor",
    "hypervisorversion",
    "ipaddress",
    "zoneid",
    "zonename",
    "podid",
    "podname",
    "clusterid",
    "clustername",
    "clustertype",
    "cpunumber",
    "cpusockets",
    "cpuspeed",
    "cpuallocated",
    "cpuwithoverprovisioning",
    "memorytotal",
    "memoryallocated",
    "memoryused",
    "hosttags",
    "islocalstorageactive",
    "hasenoughcapacity",
    "created",
    "events",
    "enrollmenttoken",
];

pub static COMMANDS: &[Command] = &[
    Command {
        name: "addHost",
        description: "Adds a new host.",
        is_async: false,
        min_role: Role::Admin,
        params: &[
            req("hypervisor", Ty::Str, "hypervisor type of the host"),
            req(
                "url",
                Ty::Str,
                "the host URL (Simulator: http://sim/<cluster>/<host>[/cpuspeed=N&cpucore=N&memory=BYTES]; KVM: kvm://<host name>[/cpucore=N&cpuspeed=MHZ&memory=BYTES], answered with the agent's enrollmenttoken)",
            ),
            req("username", Ty::Str, "the username for the host"),
            req("password", Ty::Str, "the password for the host"),
            req("zoneid", Ty::Uuid, "the Zone ID for the host"),
            req("podid", Ty::Uuid, "the Pod ID for the host"),
            p("clusterid", Ty::Uuid, "the cluster ID for the host"),
            p("clustername", Ty::Str, "the cluster name for the host"),
            p("hosttags", Ty::List, "list of tags to be added to the host"),
            p(
                "allocationstate",
                Ty::Str,
                "Allocation state of this Host for allocation of new resources",
            ),
        ],
        object: "host",
        fields: HOST,
        handler: add_host,
    },
    Command {
        name: "listHosts",
        description: "Lists hosts.",
        is_async: false,
        min_role: Role::Admin,
        params: &[
            p("id", Ty::Uuid, "the id of the host"),
            p("name", Ty::Str, "the name of the host"),
            p("zoneid", Ty::Uuid, "the Zone ID for the host"),
            p("podid", Ty::Uuid, "the Pod ID for the host"),
            p("clusterid", Ty::Uuid, "lists hosts existing in particular cluster"),
            p("state", Ty::Str, "the state of the host"),
            p("resourcestate", Ty::Str, "list hosts by resource state"),
            p("type", Ty::Str, "the host type"),
            p("hypervisor", Ty::Str, "hypervisor type of host"),
            p(
                "virtualmachineid",
                Ty::Uuid,
                "lists hosts in the same cluster as this VM",
            ),
            p(
                "details",
                Ty::List,
                "comma separated list of host details requested; evidence (or all) adds lastpinged, downsince, fenced and the investigator's evidence",
            ),
        ],
        object: "host",
        fields: HOST,
        handler: list_hosts,
    },
    Command {
        name: "updateHost",
        description: "Updates a host.",
        is_async: false,
        min_role: Role::Admin,
        params: &[
            req("id", Ty::Uuid, "the ID of the host to update"),
            p(
                "allocationstate",
                Ty::Str,
                "Change resource state of host, valid values are [Enable, Disable]",
            ),
            p("hosttags", Ty::List, "list of tags to be added to the host"),
        ],
        object: "host",
        fields: HOST,
        handler: update_host,
    },
    Command {
        name: "prepareHostForMaintenance",
        description: "Prepares a host for maintenance.",
        is_async: true,
        min_role: Role::Admin,
        params: &[req("id", Ty::Uuid, "the host ID")],
        object: "host",
        fields: HOST,
        handler: prepare_maintenance,
    },
    Command {
        name: "cancelHostMaintenance",
        description: "Cancels host maintenance.",
        is_async: true,
        min_role: Role::Admin,
        params: &[req("id", Ty::Uuid, "the host ID")],
        object: "host",
        fields: HOST,
        handler: cancel_maintenance,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulator_urls() {
        let h = parse_sim_url("http://sim/c0/h0").unwrap();
        assert_eq!(
            (h.name.as_str(), h.cores, h.mhz, h.memory),
            ("sim-c0-h0", 4, 8000, 8 << 30)
        );
        let h = parse_sim_url("http://sim/c1/h2/cpuspeed=2400&cpucore=16&memory=68719476736").unwrap();
        assert_eq!((h.cores, h.mhz, h.memory), (16, 2400, 64 << 30));
        assert!(parse_sim_url("http://kvm1/").is_err());
        assert!(parse_sim_url("http://sim/").is_err());
        assert!(parse_sim_url("http://sim/c0/h0/cpucore=x").is_err());
        assert!(parse_sim_url("http://sim/c0/h0/cpucore=0").is_err());
        assert!(parse_sim_url("http://sim/c0/h0/bogus=1").is_err());
    }
}
