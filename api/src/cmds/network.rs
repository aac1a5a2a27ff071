//! Networks, network offerings, public IP ranges and addresses; and the
//! network-rule lists Stratus has nothing for (empty answers).

use super::access::{ACCOUNT, DOMAINID, ISRECURSIVE, LISTALL, list_scope, listed, opt_ip, sees, target_account};
use super::prelude::*;
use std::net::Ipv4Addr;
use stratus_core::cloud::NetworkSpec;
use stratus_core::controller::admin::AdminChange;
use stratus_core::controller::directory::{PublicIp, PublicIpId};
use stratus_core::inventory::{Cidr, Network};

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

fn offering_view() -> Obj {
    // Stratus gives each isolated network DHCP, DNS and user data itself;
    // the provider is named as CloudStack names it so clients recognise it.
    let service = |name: &str| {
        Obj::new()
            .s("name", name)
            .list("provider", vec![Obj::new().s("name", "VirtualRouter")])
    };
    Obj::new()
        .s("id", DEFAULT_OFFERING_ID)
        .s("name", "DefaultIsolatedNetworkOffering")
        .s(
            "displaytext",
            "Offering for Isolated networks with no Source Nat service",
        )
        .s("traffictype", "Guest")
        .s("guestiptype", "Isolated")
        .s("state", "Enabled")
        .s("availability", "Optional")
        .b("isdefault", true)
        .b("specifyvlan", false)
        .b("specifyipranges", false)
        .b("conservemode", true)
        .b("forvpc", false)
        .b("ispersistent", false)
        .b("egressdefaultpolicy", true)
        .list("service", vec![service("Dhcp"), service("Dns"), service("UserData")])
}

fn list_network_offerings<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let eq = |param: &str, value: &str| c.p.opt_str(param).is_none_or(|v| v.eq_ignore_ascii_case(value));
        let id_ok = c.p.opt_uuid("id")?.is_none_or(|i| i.to_string() == DEFAULT_OFFERING_ID);
        let ok = id_ok
            && eq("name", "DefaultIsolatedNetworkOffering")
            && eq("guestiptype", "Isolated")
            && eq("state", "Enabled")
            && eq("traffictype", "Guest")
            && eq("isdefault", "true")
            && eq("forvpc", "false")
            && eq("specifyvlan", "false")
            && eq("specifyipranges", "false")
            && views::keyword_ok(c.p, "DefaultIsolatedNetworkOffering");
        let items = if ok { vec![offering_view()] } else { vec![] };
        let (count, page) = views::page(items, c.p)?;
        Ok(render::list_body("networkoffering", count, page))
    })
}

fn overlaps(a: &Cidr, b: &Cidr) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

/// The CIDR of a new network: from gateway+netmask (the gateway must be the
/// network's first address, which Stratus always uses), else the first /24
/// of the zone's guest CIDR that no network of the zone uses.
fn network_cidr(
    ctl: &Controller,
    zone: ZoneId,
    gateway: Option<Ipv4Addr>,
    netmask: Option<Ipv4Addr>,
) -> Result<String, ApiError> {
    let inv = &ctl.cloud().inv;
    let zi = inv.find_zone(zone).ok_or_else(|| not_found("zone", zone.0))?;
    match (gateway, netmask) {
        (Some(g), Some(m)) => {
            let mask = u32::from(m);
            if mask.leading_ones() + mask.trailing_zeros() != 32 || mask.leading_ones() > 30 {
                return Err(ApiError::invalid_parameter_value(format!(
                    "{m} is not a usable netmask"
                )));
            }
            let net = u32::from(g) & mask;
            if u32::from(g) != net + 1 {
                return Err(ApiError::invalid_parameter_value(format!(
                    "the gateway must be the first address of the network ({})",
                    Ipv4Addr::from(net + 1)
                )));
            }
            Ok(format!("{}/{}", Ipv4Addr::from(net), mask.leading_ones()))
        }
        (None, None) => {
            let guest = inv
                .zone(zi)
                .guest_cidr
                .ok_or_else(|| ApiError::param("the zone has no guest CIDR; give gateway and netmask"))?;
            let used: Vec<Cidr> = inv.networks.iter().filter(|n| n.zone == zi).map(|n| n.cidr).collect();
            let prefix = guest.prefix.max(24);
            let step = 1u64 << (32 - prefix);
            let count = 1u64 << (prefix - guest.prefix);
            let base = u64::from(u32::from(guest.network()));
            (0..count)
                .map(|k| Cidr {
                    addr: Ipv4Addr::from((base + k * step) as u32),
                    prefix,
                })
                .find(|c| !used.iter().any(|u| overlaps(u, c)))
                .map(|c| c.to_string())
                .ok_or_else(|| ApiError::insufficient_capacity("no free guest subnet left in the zone's guest CIDR"))
        }
        _ => Err(ApiError::param("gateway and netmask must be given together")),
    }
}

/// deployVirtualMachine without `networkids` in an Advanced zone: like
/// CloudStack, the VM goes on its account's isolated network in that zone,
/// created on first use. Basic zones (or a zone without a guest CIDR) give
/// VMs no guest NIC here.
pub async fn default_network(
    c: &Ctx<'_>,
    spec: &stratus_core::cloud::DeploySpec,
) -> Result<Option<NetworkId>, ApiError> {
    let (Some(account), Some(zone)) = (spec.account, spec.zone) else {
        return Ok(None);
    };
    let find = || {
        c.api.read(|ctl| {
            let inv = &ctl.cloud().inv;
            let zi = inv.find_zone(zone)?;
            let z = inv.zone(zi);
            if z.network_type != stratus_core::inventory::NetworkType::Advanced || z.guest_cidr.is_none() {
                return Some(Err(()));
            }
            let ai = inv.find_account(account)?;
            inv.networks
                .iter()
                .find(|n| n.zone == zi && n.account == Some(ai))
                .map(|n| Ok(n.id))
        })
    };
    // Concurrent deploys would each create one: the first creates it under
    // the lock, the others find it once they hold the lock.
    let mut lock = None;
    loop {
        match find() {
            Some(Ok(id)) => return Ok(Some(id)),
            Some(Err(())) => return Ok(None),
            None if lock.is_some() => break,
            None => lock = Some(c.api.default_networks.lock().await),
        }
    }
    let (name, cidr) = c.api.read(|ctl| {
        let inv = &ctl.cloud().inv;
        let a = inv
            .find_account(account)
            .map(|a| inv.account(a).name.clone())
            .unwrap_or_default();
        Ok::<_, ApiError>((format!("{a}-network"), network_cidr(ctl, zone, None, None)?))
    })?;
    let spec = NetworkSpec {
        name: name.clone(),
        zone,
        cidr,
        account: Some(account),
        vlan: None,
    };
    let created = c
        .api
        .admin(
            Some(c.caller),
            AdminChange::CreateNetwork {
                spec,
                display_text: name,
            },
        )
        .await?;
    Ok(Some(NetworkId(created.id)))
}

fn create_network<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let name = c.p.req_str("name")?.to_string();
        let display_text = c.p.opt_str("displaytext").unwrap_or(&name).to_string();
        let offering = c.p.req_uuid("networkofferingid")?;
        if offering.to_string() != DEFAULT_OFFERING_ID {
            return Err(not_found("network offering", offering));
        }
        let zone = ZoneId(c.p.req_uuid("zoneid")?);
        let (gateway, netmask) = (opt_ip(c, "gateway")?, opt_ip(c, "netmask")?);
        let vlan = match c.p.opt_i64("vlan")? {
            None => None,
            Some(_) if c.caller.role != Role::Admin => {
                return Err(ApiError::permission_denied(
                    "Only root admins can choose a network's VLAN",
                ));
            }
            Some(v) => {
                Some(u16::try_from(v).map_err(|_| ApiError::param(format!("vlan: {v} is not a VLAN id (1-4094)")))?)
            }
        };
        let (account, cidr) = c.api.read(|ctl| {
            let a = target_account(c, ctl)?;
            Ok::<_, ApiError>((a, network_cidr(ctl, zone, gateway, netmask)?))
        })?;
        let spec = NetworkSpec {
            name,
            zone,
            cidr,
            account: Some(account),
            vlan,
        };
        let created = c
            .api
            .admin(Some(c.caller), AdminChange::CreateNetwork { spec, display_text })
            .await?;
        c.api.read(|ctl| {
            let inv = &ctl.cloud().inv;
            let n = inv
                .find_network(NetworkId(created.id))
                .ok_or_else(|| ApiError::internal("the new network is gone"))?;
            Ok(Obj::new().obj("network", views::network(ctl, inv.network(n))))
        })
    })
}

fn list_networks<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let zone = c.p.opt_uuid("zoneid")?;
        let kind = c.p.opt_str("type");
        let traffic_ok =
            c.p.opt_str("traffictype")
                .is_none_or(|t| t.eq_ignore_ascii_case("Guest"));
        // No system networks are exposed; every listed network can take VMs.
        let system = c.p.opt_bool("issystem")?.unwrap_or(false);
        let deploy_ok = c.p.opt_bool("canusefordeploy")?.unwrap_or(true);
        c.api.read(|ctl| {
            let scope = list_scope(c, ctl)?;
            let inv = &ctl.cloud().inv;
            let items: Vec<&Network> = inv
                .networks
                .iter()
                .filter(|_| traffic_ok && !system && deploy_ok)
                // Shared networks (no owner) are open to every account.
                .filter(|n| n.account.is_none_or(|a| listed(c, &scope, inv, inv.account(a).id)))
                .filter(|n| id.is_none_or(|i| n.id.0 == i))
                .filter(|n| zone.is_none_or(|z| inv.zone(n.zone).id.0 == z))
                .filter(|n| {
                    let t = if n.account.is_some() { "Isolated" } else { "Shared" };
                    kind.is_none_or(|k| k.eq_ignore_ascii_case(t))
                })
                .filter(|n| views::keyword_ok(c.p, &n.name))
                .collect();
            let (count, page) = views::page(items, c.p)?;
            let objs = page.into_iter().map(|n| views::network(ctl, n)).collect();
            Ok(render::list_body("network", count, objs))
        })
    })
}

fn associate_ip_address<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        if c.p.opt_bool("isportable")? == Some(true) {
            return Err(ApiError::param("portable IP addresses are not supported"));
        }
        let zone = c.p.opt_uuid("zoneid")?;
        let net = c.p.opt_uuid("networkid")?;
        let (account, zone, network) = c.api.read(|ctl| {
            let account = target_account(c, ctl)?;
            let inv = &ctl.cloud().inv;
            let network = match net {
                None => None,
                Some(n) => {
                    let ni = inv
                        .find_network(NetworkId(n))
                        .filter(|ni| inv.network(*ni).account.is_none_or(|a| sees(c.caller, inv, a)))
                        .ok_or_else(|| not_found("network", n))?;
                    if inv.network(ni).account.is_some_and(|a| inv.account(a).id != account) {
                        return Err(ApiError::invalid_parameter_value(
                            "the network belongs to another account",
                        ));
                    }
                    Some(ni)
                }
            };
            let zone = match (zone, network) {
                (Some(z), Some(ni)) if inv.zone(inv.network(ni).zone).id.0 != z => {
                    return Err(ApiError::invalid_parameter_value("the network is in another zone"));
                }
                (Some(z), _) => ZoneId(z),
                (None, Some(ni)) => inv.zone(inv.network(ni).zone).id,
                (None, None) => {
                    return Err(ApiError::param(
                        "Unable to figure out zone to assign ip to. Please specify either zoneid, or networkid",
                    ));
                }
            };
            Ok((account, zone, network.map(|ni| inv.network(ni).id)))
        })?;
        let change = AdminChange::AssociateIp { zone, account, network };
        let created = c.api.admin(Some(c.caller), change).await?;
        let job = created
            .job
            .ok_or_else(|| ApiError::internal("associateIpAddress made no job"))?;
        Ok(render::async_create_body(&created.id.to_string(), &job.to_string()))
    })
}

/// An allocated public IP the caller may see.
fn owned_ip<'c>(c: &Ctx<'_>, ctl: &'c Controller, id: Uuid) -> Result<&'c PublicIp, ApiError> {
    let inv = &ctl.cloud().inv;
    ctl.directory()
        .public_ip(PublicIpId(id))
        .filter(|ip| ip.account.is_some_and(|a| c.caller.owns(inv, a)))
        .ok_or_else(|| not_found("public IP address", id))
}

fn disassociate_ip_address<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("id")?;
        c.api.read(|ctl| owned_ip(c, ctl, id).map(|_| ()))?;
        let created = c
            .api
            .admin(Some(c.caller), AdminChange::DisassociateIp { ip: PublicIpId(id) })
            .await?;
        let job = created
            .job
            .ok_or_else(|| ApiError::internal("disassociateIpAddress made no job"))?;
        Ok(render::async_body(&job.to_string()))
    })
}

fn list_public_ip_addresses<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let allocated_only = c.p.opt_bool("allocatedonly")?.unwrap_or(true);
        let id = c.p.opt_uuid("id")?;
        let zone = c.p.opt_uuid("zoneid")?;
        let network = c.p.opt_uuid("associatednetworkid")?;
        let vlan = c.p.opt_uuid("vlanid")?;
        let address = opt_ip(c, "ipaddress")?;
        let state = c.p.opt_str("state");
        // No source NAT or static NAT addresses, and all are virtual-network ones.
        let none = c.p.opt_bool("issourcenat")? == Some(true)
            || c.p.opt_bool("isstaticnat")? == Some(true)
            || c.p.opt_bool("forvirtualnetwork")? == Some(false);
        c.api.read(|ctl| {
            let scope = list_scope(c, ctl)?;
            let inv = &ctl.cloud().inv;
            let items: Vec<&PublicIp> = ctl
                .directory()
                .public_ips
                .iter()
                .filter(|_| !none)
                .filter(|ip| match ip.account {
                    Some(a) => listed(c, &scope, inv, a),
                    // Free addresses belong to no one: the root admin's view only.
                    None => !allocated_only && c.caller.is_admin(),
                })
                .filter(|ip| id.is_none_or(|i| ip.id.0 == i))
                .filter(|ip| zone.is_none_or(|z| ip.zone.0 == z))
                .filter(|ip| network.is_none_or(|n| ip.network.is_some_and(|x| x.0 == n)))
                .filter(|ip| vlan.is_none_or(|v| ip.range.0 == v))
                .filter(|ip| address.is_none_or(|a| ip.address == a))
                .filter(|ip| {
                    let st = if ip.account.is_some() { "Allocated" } else { "Free" };
                    state.is_none_or(|s| s.eq_ignore_ascii_case(st))
                })
                .filter(|ip| views::keyword_ok(c.p, &ip.address.to_string()))
                .collect();
            let (count, page) = views::page(items, c.p)?;
            let objs = page.into_iter().filter_map(|ip| ip_view(ctl, ip.id.0)).collect();
            Ok(render::list_body("publicipaddress", count, objs))
        })
    })
}

const OFFERING_FIELDS: &[&str] = &[
    "id",
    "name",
    "displaytext",
    "traffictype",
    "guestiptype",
    "state",
    "availability",
    "isdefault",
    "specifyvlan",
    "specifyipranges",
    "conservemode",
    "forvpc",
    "ispersistent",
    "egressdefaultpolicy",
    "service",
];

const NETWORK_FIELDS: &[&str] = &[
    "id",
    "name",
    "displaytext",
    "zoneid",
    "zonename",
    "cidr",
    "gateway",
    "netmask",
    "type",
    "traffictype",
    "state",
    "networkofferingid",
    "networkofferingname",
    "isdefault",
    "issystem",
    "canusefordeploy",
    "restartrequired",
    "acltype",
    "broadcastdomaintype",
    "vlan",
    "broadcasturi",
    "account",
    "domainid",
    "domain",
];

const IP_FIELDS: &[&str] = &[
    "id",
    "ipaddress",
    "zoneid",
    "zonename",
    "vlanid",
    "state",
    "issourcenat",
    "isstaticnat",
    "issystem",
    "forvirtualnetwork",
    "allocated",
    "account",
    "domainid",
    "domain",
    "associatednetworkid",
];

pub static COMMANDS: &[Command] = &[
    Command {
        name: "listNetworkOfferings",
        description: "Lists all available network offerings.",
        is_async: false,
        min_role: Role::User,
        params: &[
            p("id", Ty::Uuid, "list network offerings by ID"),
            p("name", Ty::Str, "list network offerings by name"),
            p(
                "guestiptype",
                Ty::Str,
                "list network offerings by guest type: shared or isolated",
            ),
            p("state", Ty::Str, "list network offerings by state"),
            p("traffictype", Ty::Str, "list by traffic type"),
            p(
                "isdefault",
                Ty::Bool,
                "true if need to list only default network offerings",
            ),
            p(
                "forvpc",
                Ty::Bool,
                "the network offering can be used only for network creation inside the VPC",
            ),
            p("specifyvlan", Ty::Bool, "the tags for the network offering."),
            p(
                "specifyipranges",
                Ty::Bool,
                "true if need to list only network offerings which support specifying ip ranges",
            ),
            p(
                "zoneid",
                Ty::Uuid,
                "list network offerings available for network creation in specific zone",
            ),
        ],
        object: "networkoffering",
        fields: OFFERING_FIELDS,
        handler: list_network_offerings,
    },
    Command {
        name: "createNetwork",
        description: "Creates a network",
        is_async: false,
        min_role: Role::User,
        params: &[
            req("name", Ty::Str, "the name of the network"),
            p("displaytext", Ty::Str, "the display text of the network"),
            req("networkofferingid", Ty::Uuid, "the network offering ID"),
            req("zoneid", Ty::Uuid, "the zone ID for the network"),
            p("gateway", Ty::Str, "the gateway of the network (its first address)"),
            p("netmask", Ty::Str, "the netmask of the network"),
            p(
                "vlan",
                Ty::Int,
                "the ID or VID of the network (root admin only; default: the lowest free tag of the zone's guest VLAN range)",
            ),
            ACCOUNT,
            DOMAINID,
        ],
        object: "network",
        fields: NETWORK_FIELDS,
        handler: create_network,
    },
    Command {
        name: "listNetworks",
        description: "Lists all available networks.",
        is_async: false,
        min_role: Role::User,
        params: &[
            p("id", Ty::Uuid, "list networks by ID"),
            p("zoneid", Ty::Uuid, "the zone ID of the network"),
            p("type", Ty::Str, "the type of the network: Isolated or Shared"),
            p("traffictype", Ty::Str, "type of the traffic"),
            p("issystem", Ty::Bool, "true if network is system, false otherwise"),
            p("canusefordeploy", Ty::Bool, "list networks available for VM deployment"),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
        ],
        object: "network",
        fields: NETWORK_FIELDS,
        handler: list_networks,
    },
    Command {
        name: "associateIpAddress",
        description: "Acquires and associates a public IP to an account.",
        is_async: true,
        min_role: Role::User,
        params: &[
            p(
                "zoneid",
                Ty::Uuid,
                "the ID of the availability zone you want to acquire an public IP address from",
            ),
            p(
                "networkid",
                Ty::Uuid,
                "The network this IP address should be associated to.",
            ),
            p(
                "isportable",
                Ty::Bool,
                "should be set to true if public IP is required to be transferable across zones",
            ),
            ACCOUNT,
            DOMAINID,
        ],
        object: "ipaddress",
        fields: IP_FIELDS,
        handler: associate_ip_address,
    },
    Command {
        name: "disassociateIpAddress",
        description: "Disassociates an IP address from the account.",
        is_async: true,
        min_role: Role::User,
        params: &[req("id", Ty::Uuid, "the ID of the public IP address to disassociate")],
        object: "success",
        fields: &["success", "displaytext"],
        handler: disassociate_ip_address,
    },
    Command {
        name: "listPublicIpAddresses",
        description: "Lists all public IP addresses",
        is_async: false,
        min_role: Role::User,
        params: &[
            p("id", Ty::Uuid, "lists IP address by ID"),
            p(
                "allocatedonly",
                Ty::Bool,
                "limits search results to allocated public IP addresses (default true)",
            ),
            p("ipaddress", Ty::Str, "lists the specified IP address"),
            p("zoneid", Ty::Uuid, "lists all public IP addresses by zone ID"),
            p(
                "associatednetworkid",
                Ty::Uuid,
                "lists all public IP addresses associated to the network specified",
            ),
            p("vlanid", Ty::Uuid, "lists all public IP addresses by VLAN ID"),
            p("state", Ty::Str, "lists all public IP addresses by state"),
            p("forvirtualnetwork", Ty::Bool, "the virtual network for the IP address"),
            p("issourcenat", Ty::Bool, "list only source NAT IP addresses"),
            p("isstaticnat", Ty::Bool, "list only static NAT IP addresses"),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
        ],
        object: "publicipaddress",
        fields: IP_FIELDS,
        handler: list_public_ip_addresses,
    },
];
