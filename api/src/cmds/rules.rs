//! Lists of things Stratus does not have — forwarding, firewall and load
//! balancer rules, security groups, SSH key pairs, tags, resource details —
//! answered with CloudStack's empty list `{}`: libcloud's list_nodes calls
//! the forwarding-rule lists, and clients probe the others. Affinity groups
//! exist in the inventory and are listed for real.

use super::access::{ACCOUNT, DOMAINID, ISRECURSIVE, LISTALL, list_scope, listed};
use super::prelude::*;
use crate::registry::Param;
use stratus_core::inventory::AffinityGroup;

fn empty<'a>(_c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move { Ok(Obj::new()) })
}

fn list_affinity_groups<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let vm = c.p.opt_uuid("virtualmachineid")?;
        let name = c.p.opt_str("name");
        let kind = c.p.opt_str("type");
        c.api.read(|ctl| {
            let scope = list_scope(c, ctl)?;
            let cloud = ctl.cloud();
            let inv = &cloud.inv;
            let members = |i: usize| -> Vec<&stratus_core::vm::Vm> {
                cloud
                    .vms()
                    .map(|(_, v)| v)
                    .filter(|v| v.affinity_groups.iter().any(|g| g.0 as usize == i))
                    .collect()
            };
            let items: Vec<(usize, &AffinityGroup)> = inv
                .affinity_groups
                .iter()
                .enumerate()
                .filter(|(_, g)| listed(c, &scope, inv, inv.account(g.account).id))
                .filter(|(_, g)| id.is_none_or(|i| g.id.0 == i))
                .filter(|(_, g)| name.is_none_or(|n| g.name == n))
                .filter(|(_, g)| kind.is_none_or(|k| k.eq_ignore_ascii_case(g.kind.as_str())))
                .filter(|(i, _)| vm.is_none_or(|m| members(*i).iter().any(|v| v.id.0 == m)))
                .filter(|(_, g)| views::keyword_ok(c.p, &g.name))
                .collect();
            let (count, page) = views::page(items, c.p)?;
            let objs = page
                .into_iter()
                .map(|(_, g)| {
                    let acc = inv.account(g.account);
                    let d = inv.domain(acc.domain);
                    Obj::new()
                        .s("id", g.id.0.to_string())
                        .s("name", g.name.clone())
                        .s("type", g.kind.as_str())
                        .s("account", acc.name.clone())
                        .s("domainid", d.id.0.to_string())
                        .s("domain", d.name.clone())
                })
                .collect();
            Ok(render::list_body("affinitygroup", count, objs))
        })
    })
}

const ID: Param = p("id", Ty::Uuid, "list by ID");

/// An empty list command with the usual id/owner parameters.
macro_rules! empty_list {
    ($name:literal, $object:literal, $description:literal, [$($extra:expr),*]) => {
        Command {
            name: $name,
            description: $description,
            is_async: false,
            min_role: Role::User,
            params: &[ID, $($extra,)* ACCOUNT, DOMAINID, ISRECURSIVE, LISTALL],
            object: $object,
            fields: &["id"],
            handler: empty,
        }
    };
}

pub static COMMANDS: &[Command] = &[
    empty_list!(
        "listPortForwardingRules",
        "portforwardingrule",
        "Lists all port forwarding rules for an IP address (none exist).",
        [p(
            "ipaddressid",
            Ty::Uuid,
            "the ID of IP address of the port forwarding services"
        )]
    ),
    empty_list!(
        "listIpForwardingRules",
        "ipforwardingrule",
        "List the IP forwarding rules (none exist).",
        [
            p(
                "ipaddressid",
                Ty::Uuid,
                "list the rule belonging to this public IP address"
            ),
            p(
                "virtualmachineid",
                Ty::Uuid,
                "Lists all rules applied to the specified VM."
            )
        ]
    ),
    empty_list!(
        "listFirewallRules",
        "firewallrule",
        "Lists all firewall rules for an IP address (none exist).",
        [
            p("ipaddressid", Ty::Uuid, "the ID of IP address of the firewall services"),
            p("networkid", Ty::Uuid, "list firewall rules for certain network")
        ]
    ),
    empty_list!(
        "listLoadBalancerRules",
        "loadbalancerrule",
        "Lists load balancer rules (none exist).",
        [
            p(
                "publicipid",
                Ty::Uuid,
                "the public IP address ID of the load balancer rule"
            ),
            p(
                "virtualmachineid",
                Ty::Uuid,
                "the ID of the virtual machine of the load balancer rule"
            ),
            p("zoneid", Ty::Uuid, "the availability zone ID"),
            p("name", Ty::Str, "the name of the load balancer rule")
        ]
    ),
    empty_list!(
        "listSecurityGroups",
        "securitygroup",
        "Lists security groups (none exist: zones have no security groups).",
        [
            p("securitygroupname", Ty::Str, "lists security groups by name"),
            p(
                "virtualmachineid",
                Ty::Uuid,
                "lists security groups by virtual machine id"
            )
        ]
    ),
    empty_list!(
        "listSSHKeyPairs",
        "sshkeypair",
        "List registered keypairs (none exist).",
        [
            p("name", Ty::Str, "A key pair name to look for"),
            p("fingerprint", Ty::Str, "A public key fingerprint to look for")
        ]
    ),
    empty_list!(
        "listTags",
        "tag",
        "List resource tag(s) (none exist).",
        [
            p("resourceid", Ty::Str, "list by resource id"),
            p("resourcetype", Ty::Str, "list by resource type"),
            p("key", Ty::Str, "list by key"),
            p("value", Ty::Str, "list by value")
        ]
    ),
    empty_list!(
        "listResourceDetails",
        "resourcedetail",
        "List resource detail(s) (none exist).",
        [
            p("resourceid", Ty::Str, "list by resource id"),
            p("resourcetype", Ty::Str, "list by resource type"),
            p("key", Ty::Str, "list by key")
        ]
    ),
    Command {
        name: "listAffinityGroups",
        description: "Lists affinity groups",
        is_async: false,
        min_role: Role::User,
        params: &[
            ID,
            p("name", Ty::Str, "lists affinity groups by name"),
            p("type", Ty::Str, "lists affinity groups by type"),
            p(
                "virtualmachineid",
                Ty::Uuid,
                "lists affinity groups by virtual machine ID",
            ),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
        ],
        object: "affinitygroup",
        fields: &["id", "name", "type", "account", "domainid", "domain"],
        handler: list_affinity_groups,
    },
];
