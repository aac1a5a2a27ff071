//! Public IP ranges: createVlanIpRange, listVlanIpRanges. Only public
//! ranges for isolated networks' addresses exist (no shared or pod ranges).

use super::access::{ACCOUNT, DOMAINID, opt_ip};
use super::prelude::*;
use stratus_core::controller::admin::AdminChange;
use stratus_core::controller::directory::VlanRange;

fn range_view(ctl: &Controller, r: &VlanRange) -> Obj {
    let cloud = ctl.cloud();
    let inv = &cloud.inv;
    let zone = inv.find_zone(r.zone).map(|z| inv.zone(z));
    let root = cloud.root_domain();
    Obj::new()
        .s("id", r.id.to_string())
        .s("zoneid", r.zone.0.to_string())
        .opt_s("zonename", zone.map(|z| z.name.clone()))
        .s("vlan", r.vlan.clone())
        .s("gateway", r.gateway.to_string())
        .s("netmask", r.netmask.to_string())
        .s("startip", r.start.to_string())
        .s("endip", r.end.to_string())
        .s("description", format!("{}-{}", r.start, r.end))
        .b("forvirtualnetwork", true)
        .b("fordisplay", true)
        .s("domainid", root.0.to_string())
        .s("domain", "ROOT")
}

fn create_vlan_ip_range<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        // Only public ranges for isolated networks' addresses exist here.
        if c.p.opt_bool("forvirtualnetwork")? == Some(false) {
            return Err(ApiError::param(
                "only public (forvirtualnetwork=true) ranges are supported",
            ));
        }
        if c.p.opt_str("account").is_some() {
            return Err(ApiError::param(
                "dedicating a public range to an account is not supported",
            ));
        }
        let zone = match (c.p.opt_uuid("zoneid")?, c.p.opt_uuid("networkid")?) {
            (Some(z), _) => ZoneId(z),
            (None, Some(n)) => c.api.read(|ctl| {
                let inv = &ctl.cloud().inv;
                let ni = inv.find_network(NetworkId(n)).ok_or_else(|| not_found("network", n))?;
                Ok::<_, ApiError>(inv.zone(inv.network(ni).zone).id)
            })?,
            (None, None) => return Err(c.p.missing("zoneid")),
        };
        let need = |name: &str| opt_ip(c, name)?.ok_or_else(|| c.p.missing(name));
        let gateway = need("gateway")?;
        let netmask = need("netmask")?;
        let start = need("startip")?;
        let end = opt_ip(c, "endip")?.unwrap_or(start);
        let vlan =
            c.p.opt_str("vlan")
                .filter(|v| !v.is_empty())
                .unwrap_or("untagged")
                .to_string();
        let change = AdminChange::CreateVlanRange {
            zone,
            vlan,
            gateway,
            netmask,
            start,
            end,
        };
        let created = c.api.admin(Some(c.caller), change).await?;
        c.api.read(|ctl| {
            let r = ctl
                .directory()
                .ranges
                .iter()
                .find(|r| r.id.0 == created.id)
                .ok_or_else(|| ApiError::internal("the new range is gone"))?;
            Ok(Obj::new().obj("vlan", range_view(ctl, r)))
        })
    })
}

fn list_vlan_ip_ranges<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let zone = c.p.opt_uuid("zoneid")?;
        let vlan = c.p.opt_str("vlan");
        let virt = c.p.opt_bool("forvirtualnetwork")?.unwrap_or(true);
        c.api.read(|ctl| {
            let items: Vec<&VlanRange> = ctl
                .directory()
                .ranges
                .iter()
                .filter(|_| virt)
                .filter(|r| id.is_none_or(|i| r.id.0 == i))
                .filter(|r| zone.is_none_or(|z| r.zone.0 == z))
                .filter(|r| vlan.is_none_or(|v| r.vlan == v))
                .collect();
            let (count, page) = views::page(items, c.p)?;
            let objs = page.into_iter().map(|r| range_view(ctl, r)).collect();
            Ok(render::list_body("vlaniprange", count, objs))
        })
    })
}

const RANGE_FIELDS: &[&str] = &[
    "id",
    "zoneid",
    "zonename",
    "vlan",
    "gateway",
    "netmask",
    "startip",
    "endip",
    "description",
    "forvirtualnetwork",
    "fordisplay",
    "domainid",
    "domain",
];

pub static COMMANDS: &[Command] = &[
    Command {
        name: "createVlanIpRange",
        description: "Creates a VLAN IP range.",
        is_async: false,
        min_role: Role::Admin,
        params: &[
            p("zoneid", Ty::Uuid, "the Zone ID of the VLAN IP range"),
            p("vlan", Ty::Str, "the ID or VID of the VLAN (default untagged)"),
            p("gateway", Ty::Str, "the gateway of the VLAN IP range"),
            p("netmask", Ty::Str, "the netmask of the VLAN IP range"),
            p("startip", Ty::Str, "the beginning IP address in the VLAN IP range"),
            p("endip", Ty::Str, "the ending IP address in the VLAN IP range"),
            p(
                "forvirtualnetwork",
                Ty::Bool,
                "true if VLAN is of Virtual type (only true is supported)",
            ),
            p("networkid", Ty::Uuid, "the network id (its zone is the range's zone)"),
            p("podid", Ty::Uuid, "optional parameter; ignored for public ranges"),
            p("physicalnetworkid", Ty::Uuid, "the physical network id (ignored)"),
            ACCOUNT,
            DOMAINID,
        ],
        object: "vlan",
        fields: RANGE_FIELDS,
        handler: create_vlan_ip_range,
    },
    Command {
        name: "listVlanIpRanges",
        description: "Lists all VLAN IP ranges.",
        is_async: false,
        min_role: Role::Admin,
        params: &[
            p("id", Ty::Uuid, "the ID of the VLAN IP range"),
            p("zoneid", Ty::Uuid, "the Zone ID of the VLAN IP range"),
            p("vlan", Ty::Str, "the ID or VID of the VLAN"),
            p("forvirtualnetwork", Ty::Bool, "true if VLAN is of Virtual type"),
        ],
        object: "vlaniprange",
        fields: RANGE_FIELDS,
        handler: list_vlan_ip_ranges,
    },
];
