//! Settings (listConfigurations, updateConfiguration), listHypervisors, the
//! system VM and router lists (always empty) and configureSimulator.

use super::prelude::*;
use crate::registry::Param;
use serde_json::json;
use stratus_core::controller::Input;
use stratus_core::controller::admin::AdminChange;
use stratus_core::settings::{Scope as SettingScope, SettingDef, Value, lookup_def, parse_value};

/// The scope `zoneid`/`clusterid`/`storageid`/`accountid` name (one at most),
/// checked to exist.
fn setting_scope(c: &Ctx<'_>, ctl: &Controller) -> Result<SettingScope, ApiError> {
    let inv = &ctl.cloud().inv;
    let mut found = Vec::new();
    if let Some(z) = c.p.opt_uuid("zoneid")? {
        inv.find_zone(ZoneId(z)).ok_or_else(|| not_found("zone", z))?;
        found.push(SettingScope::Zone(ZoneId(z)));
    }
    if let Some(x) = c.p.opt_uuid("clusterid")? {
        inv.find_cluster(ClusterId(x)).ok_or_else(|| not_found("cluster", x))?;
        found.push(SettingScope::Cluster(ClusterId(x)));
    }
    if let Some(x) = c.p.opt_uuid("storageid")? {
        inv.find_pool(PoolId(x)).ok_or_else(|| not_found("storage pool", x))?;
        found.push(SettingScope::Pool(PoolId(x)));
    }
    if let Some(x) = c.p.opt_uuid("accountid")? {
        inv.find_account(AccountId(x)).ok_or_else(|| not_found("account", x))?;
        found.push(SettingScope::Account(AccountId(x)));
    }
    match found.as_slice() {
        [] => Ok(SettingScope::Global),
        [one] => Ok(*one),
        _ => Err(ApiError::invalid_parameter_value(
            "specify at most one of zoneid, clusterid, storageid and accountid",
        )),
    }
}

fn scope_id(s: SettingScope) -> Option<Uuid> {
    match s {
        SettingScope::Global => None,
        SettingScope::Zone(z) => Some(z.0),
        SettingScope::Cluster(x) => Some(x.0),
        SettingScope::Pool(x) => Some(x.0),
        SettingScope::Account(x) => Some(x.0),
    }
}

fn config_view(d: &SettingDef, v: &Value, at: SettingScope) -> Obj {
    // A value equal to the default is shown as the registry spells it ("1.0", not "1").
    let text = match parse_value(d, d.default) {
        Ok(def) if def == *v => d.default.to_string(),
        _ => v.to_string(),
    };
    Obj::new()
        .s("category", d.category)
        .s("name", d.name)
        .s("value", text)
        .s("defaultvalue", d.default)
        .s("description", d.description)
        .s("scope", d.scope.as_str())
        .opt_s("id", scope_id(at).map(|u| u.to_string()))
        .b("isdynamic", true)
}

fn list_configurations<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        // CloudStack matches `name` as a substring; an exact match is put
        // first since clients read the first row.
        let name = c.p.opt_str("name").map(str::to_ascii_lowercase);
        let category = c.p.opt_str("category");
        c.api.read(|ctl| {
            let at = setting_scope(c, ctl)?;
            let mut rows: Vec<(&SettingDef, Value)> = ctl
                .cloud()
                .settings
                .list(at)
                .into_iter()
                .filter(|(d, _)| name.as_deref().is_none_or(|n| d.name.to_ascii_lowercase().contains(n)))
                .filter(|(d, _)| category.is_none_or(|k| d.category.eq_ignore_ascii_case(k)))
                .filter(|(d, _)| views::keyword_ok(c.p, d.name))
                .collect();
            rows.sort_by_key(|(d, _)| name.as_deref() != Some(d.name.to_ascii_lowercase().as_str()));
            let (count, page) = views::page(rows, c.p)?;
            let objs = page.iter().map(|(d, v)| config_view(d, v, at)).collect();
            Ok(render::list_body("configuration", count, objs))
        })
    })
}

fn update_configuration<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let name = c.p.req_str("name")?.to_string();
        let value = c.p.req_str("value")?.to_string();
        let scope = c.api.read(|ctl| setting_scope(c, ctl))?;
        let input = Input::UpdateSetting {
            name: name.clone(),
            scope,
            value: value.clone(),
        };
        // The core validates name, value and scope; a refusal changes nothing.
        c.api.input_done(input).await?;
        let def = lookup_def(&name).ok_or_else(|| not_found("configuration", &name))?;
        let audit = AdminChange::Audit {
            kind: "CONFIGURATION.VALUE.EDIT".into(),
            description: format!("Successfully edited configuration value: {} = {value}", def.name),
            account: Some(c.caller.account),
        };
        c.api.admin(Some(c.caller), audit).await?;
        c.api.read(|ctl| {
            let v = ctl.cloud().settings.get(def.name, scope);
            Ok(Obj::new().obj("configuration", config_view(def, &v, scope)))
        })
    })
}

fn list_hypervisors<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let zone = c.p.opt_uuid("zoneid")?;
        c.api.read(|ctl| {
            let inv = &ctl.cloud().inv;
            if let Some(z) = zone {
                inv.find_zone(ZoneId(z)).ok_or_else(|| not_found("zone", z))?;
            }
            // The hypervisors of the clusters in use, and the two Stratus drives.
            let mut names: Vec<&str> = Vec::new();
            let in_use = inv
                .clusters
                .iter()
                .filter(|cl| zone.is_none_or(|z| inv.zone(cl.zone).id.0 == z))
                .map(|cl| cl.hypervisor.as_str());
            for n in in_use.chain(["Simulator", "KVM"]) {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            let items: Vec<Obj> = names.into_iter().map(|n| Obj::new().s("name", n)).collect();
            Ok(render::list_body("hypervisor", items.len(), items))
        })
    })
}

/// Stratus runs no system VMs (secondary storage VM, console proxy) and no
/// virtual routers: storage and guest networking are done by the agents, so
/// these lists are always empty.
fn none<'a>(_c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move { Ok(Obj::new()) })
}

/// CloudStack agent command names (configureSimulator's `name`) → the driver
/// call that does that work here.
fn driver_call(name: &str) -> Option<&'static str> {
    const CALLS: &[&str] = &[
        "DefineDomain",
        "UndefineDomain",
        "StartDomain",
        "StopDomain",
        "RebootDomain",
        "MigrateDomain",
        "CopyTemplate",
        "CreateVolume",
        "DeleteVolume",
        "AttachDisk",
        "DetachDisk",
        "PlugNic",
        "UnplugNic",
        "CreateSnapshot",
        "DeleteSnapshot",
    ];
    let mapped = match name {
        "StartCommand" => "StartDomain",
        "StopCommand" => "StopDomain",
        "RebootCommand" => "RebootDomain",
        "MigrateCommand" => "MigrateDomain",
        "CreateCommand" => "CreateVolume",
        "DestroyCommand" => "DeleteVolume",
        "AttachCommand" => "AttachDisk",
        "DettachCommand" | "DetachCommand" => "DetachDisk",
        "CopyCommand" | "PrimaryStorageDownloadCommand" => "CopyTemplate",
        other => other,
    };
    CALLS.iter().copied().find(|c| *c == mapped)
}

/// `fail_calls` on one host or (no `host`) any; without a count it lasts
/// until `clear_faults` (count 0 lifts it).
fn fail_calls(host: Option<Uuid>, call: &str, count: Option<i64>) -> serde_json::Value {
    let mut f = json!({"fault": "fail_calls", "call": call, "count": count.unwrap_or(i64::from(u32::MAX))});
    if let Some(h) = host {
        f["host"] = json!(h);
    }
    f
}

/// configureSimulator's parameters as a SimControl fault: CloudStack's
/// `name=StartCommand value=result:fail count=N [hostid]`, or Stratus's
/// `fault=<name> [hostid|poolid|call|count]`.
fn fault_json(c: &Ctx<'_>, ctl: &Controller) -> Result<serde_json::Value, ApiError> {
    let inv = &ctl.cloud().inv;
    let host = match c.p.opt_uuid("hostid")? {
        Some(h) => Some(
            inv.find_host(HostId(h))
                .map(|_| h)
                .ok_or_else(|| not_found("host", h))?,
        ),
        None => None,
    };
    let pool = match c.p.opt_uuid("poolid")? {
        Some(x) => Some(
            inv.find_pool(PoolId(x))
                .map(|_| x)
                .ok_or_else(|| not_found("storage pool", x))?,
        ),
        None => None,
    };
    let count = match c.p.opt_i64("count")? {
        None => None,
        Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => Some(n),
        Some(n) => return Err(ApiError::invalid_parameter_value(format!("Invalid count {n}"))),
    };
    let need_host = || host.ok_or_else(|| c.p.missing("hostid"));
    let need_pool = || pool.ok_or_else(|| c.p.missing("poolid"));
    if let Some(fault) = c.p.opt_str("fault") {
        return Ok(match fault {
            "crash_host" | "recover_host" | "partition_host" | "heal_host" => {
                json!({"fault": fault, "host": need_host()?})
            }
            "storage_outage" | "storage_restore" => json!({"fault": fault, "pool": need_pool()?}),
            "clear_faults" => json!({"fault": fault}),
            "fail_calls" => {
                let name = c.p.opt_str("call").ok_or_else(|| c.p.missing("call"))?;
                let call = driver_call(name)
                    .ok_or_else(|| ApiError::invalid_parameter_value(format!("Unknown driver call {name}")))?;
                fail_calls(host, call, count)
            }
            other => return Err(ApiError::invalid_parameter_value(format!("Unknown fault {other}"))),
        });
    }
    let name = c.p.opt_str("name").ok_or_else(|| c.p.missing("name"))?;
    let value = c.p.opt_str("value").unwrap_or("");
    let call = driver_call(name).ok_or_else(|| ApiError::param(format!("Simulating {name} is not supported")))?;
    if value.eq_ignore_ascii_case("result:fail") {
        Ok(fail_calls(host, call, count))
    } else if value.is_empty() || value.eq_ignore_ascii_case("result:success") {
        // Back to normal for this command: a count of 0 removes the rule.
        Ok(fail_calls(host, call, Some(0)))
    } else {
        Err(ApiError::param(format!(
            "Unsupported value {value}: only result:fail and result:success"
        )))
    }
}

fn configure_simulator<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let Some(sim) = c.api.sim.clone() else {
            return Err(ApiError::unsupported(
                "configureSimulator is not available: this server drives no simulated hosts",
            ));
        };
        let fault = c.api.read(|ctl| fault_json(c, ctl))?;
        let said = tokio::task::spawn_blocking(move || sim.inject(&fault))
            .await
            .map_err(|e| ApiError::internal(format!("the simulator failed: {e}")))?
            .map_err(ApiError::param)?;
        Ok(Obj::new().b("success", true).s("displaytext", said))
    })
}

const CONFIG_FIELDS: &[&str] = &[
    "category",
    "name",
    "value",
    "defaultvalue",
    "description",
    "scope",
    "id",
    "isdynamic",
];

// Where updateConfiguration sets a value and listConfigurations reads it.
const ZONEID: Param = p(
    "zoneid",
    Ty::Uuid,
    "the ID of the Zone to update the parameter value for",
);
const CLUSTERID: Param = p(
    "clusterid",
    Ty::Uuid,
    "the ID of the Cluster to update the parameter value for",
);
const STORAGEID: Param = p(
    "storageid",
    Ty::Uuid,
    "the ID of the Storage pool to update the parameter value for",
);
const ACCOUNTID: Param = p(
    "accountid",
    Ty::Uuid,
    "the ID of the Account to update the parameter value for",
);

pub static COMMANDS: &[Command] = &[
    Command {
        name: "listConfigurations",
        description: "Lists all configurations.",
        is_async: false,
        min_role: Role::Admin,
        params: &[
            p("name", Ty::Str, "lists configuration by name"),
            p("category", Ty::Str, "lists configurations by category"),
            ZONEID,
            CLUSTERID,
            STORAGEID,
            ACCOUNTID,
        ],
        object: "configuration",
        fields: CONFIG_FIELDS,
        handler: list_configurations,
    },
    Command {
        name: "updateConfiguration",
        description: "Updates a configuration.",
        is_async: false,
        min_role: Role::Admin,
        params: &[
            req("name", Ty::Str, "the name of the configuration"),
            req("value", Ty::Str, "the value of the configuration"),
            ZONEID,
            CLUSTERID,
            STORAGEID,
            ACCOUNTID,
        ],
        object: "configuration",
        fields: CONFIG_FIELDS,
        handler: update_configuration,
    },
    Command {
        name: "listHypervisors",
        description: "List hypervisors",
        is_async: false,
        min_role: Role::User,
        params: &[p("zoneid", Ty::Uuid, "the zone id for listing hypervisors.")],
        object: "hypervisor",
        fields: &["name"],
        handler: list_hypervisors,
    },
    Command {
        name: "listSystemVms",
        description: "List system virtual machines (none: Stratus runs no system VMs).",
        is_async: false,
        min_role: Role::Admin,
        params: &[
            p("id", Ty::Uuid, "the ID of the system virtual machine"),
            p("hostid", Ty::Uuid, "the host ID of the system virtual machine"),
            p("zoneid", Ty::Uuid, "the Zone ID of the system virtual machine"),
            p("podid", Ty::Uuid, "the Pod ID of the system virtual machine"),
            p("name", Ty::Str, "the name of the system virtual machine"),
            p("state", Ty::Str, "the state of the system virtual machine"),
            p("systemvmtype", Ty::Str, "the system VM type"),
        ],
        object: "systemvm",
        fields: &["id", "name", "systemvmtype", "state", "zoneid", "hostid"],
        handler: none,
    },
    Command {
        name: "listRouters",
        description: "List routers (none: Stratus runs no virtual routers).",
        is_async: false,
        min_role: Role::DomainAdmin,
        params: &[
            p("id", Ty::Uuid, "the ID of the disk router"),
            p("hostid", Ty::Uuid, "the host ID of the router"),
            p("zoneid", Ty::Uuid, "the Zone ID of the router"),
            p("networkid", Ty::Uuid, "list by network id"),
            p("name", Ty::Str, "the name of the router"),
            p("state", Ty::Str, "the state of the router"),
            p("account", Ty::Str, "list resources by account"),
            p(
                "domainid",
                Ty::Uuid,
                "list only resources belonging to the domain specified",
            ),
            p("listall", Ty::Bool, "list everything the caller may see"),
        ],
        object: "router",
        fields: &["id", "name", "state", "zoneid", "hostid", "guestnetworkid"],
        handler: none,
    },
    Command {
        name: "configureSimulator",
        description: "configure simulator: fail agent commands (name=StartCommand value=result:fail count=N) or inject a Stratus fault (fault=crash_host|recover_host|partition_host|heal_host|storage_outage|storage_restore|fail_calls|clear_faults)",
        is_async: false,
        min_role: Role::Admin,
        params: &[
            p("name", Ty::Str, "which agent command to configure, e.g. StartCommand"),
            p("value", Ty::Str, "result:fail or result:success"),
            p(
                "count",
                Ty::Int,
                "how many times the failure applies (default: until cleared)",
            ),
            p("hostid", Ty::Uuid, "the host to affect"),
            p("zoneid", Ty::Uuid, "configure a zone (accepted, not narrowing)"),
            p("podid", Ty::Uuid, "configure a pod (accepted, not narrowing)"),
            p("clusterid", Ty::Uuid, "configure a cluster (accepted, not narrowing)"),
            p("fault", Ty::Str, "a Stratus fault name"),
            p("poolid", Ty::Uuid, "the storage pool of storage_outage/storage_restore"),
            p("call", Ty::Str, "the driver call of fail_calls, e.g. StartDomain"),
        ],
        object: "success",
        fields: &["success", "displaytext"],
        handler: configure_simulator,
    },
];
