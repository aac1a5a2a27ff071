//! What deployVirtualMachine's parameters mean: the owner account, the
//! offering, template, zone, disks, network and custom sizes, each checked
//! (431 with CloudStack's wording) before anything is submitted.

use super::prelude::*;
use super::vms::admin_uuid;
use stratus_core::cloud::DeploySpec;
use stratus_core::inventory::Hypervisor;

/// Sizes given for a customized offering.
#[derive(Default)]
pub(super) struct CustomSize {
    pub cpu: Option<u32>,
    pub speed: Option<u32>,
    pub memory_mb: Option<u64>,
}

/// `details[0].cpuNumber=2` (or the `key`/`value` form): the custom sizes.
pub(super) fn custom_size(c: &Ctx<'_>) -> Result<CustomSize, ApiError> {
    let mut out = CustomSize::default();
    for entry in c.p.map("details")? {
        let pairs: Vec<(String, String)> = match (entry.get("key"), entry.get("value")) {
            (Some(k), Some(v)) => vec![(k.clone(), v.clone())],
            _ => entry.into_iter().collect(),
        };
        for (k, v) in pairs {
            let num = || {
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0 && *n <= u64::from(u32::MAX))
                    .ok_or_else(|| ApiError::invalid_parameter_value(format!("Invalid value {v} for details {k}")))
            };
            match k.to_ascii_lowercase().as_str() {
                "cpunumber" => out.cpu = Some(num()? as u32),
                "cpuspeed" => out.speed = Some(num()? as u32),
                "memory" => out.memory_mb = Some(num()?),
                _ => {} // other VM details are not kept
            }
        }
    }
    Ok(out)
}

/// The account a new VM belongs to: the caller's, or `account`+`domainid`
/// for admins acting for an account they manage.
fn owner_account(c: &Ctx<'_>, ctl: &Controller) -> Result<AccountId, ApiError> {
    let inv = &ctl.cloud().inv;
    let name = c.p.opt_str("account").filter(|a| !a.is_empty());
    let domain = c.p.opt_uuid("domainid")?;
    let Some(name) = name else {
        if domain.is_some() {
            return Err(ApiError::invalid_parameter_value(
                "domainid must be given together with account",
            ));
        }
        return Ok(c.caller.account);
    };
    let path = match domain {
        Some(d) => {
            let di = inv
                .find_domain(DomainId(d))
                .filter(|di| c.caller.sees_domain(&inv.domain(*di).path))
                .ok_or_else(|| not_found("domain", d))?;
            inv.domain(di).path.clone()
        }
        None => c.caller.domain_path.clone(),
    };
    let a = inv
        .accounts
        .iter()
        .find(|a| a.name == name && inv.domain(a.domain).path == path)
        .filter(|a| c.caller.owns(inv, a.id))
        .ok_or_else(|| ApiError::invalid_parameter_value(format!("Unable to find account {name} in domain {path}")))?;
    Ok(a.id)
}

fn positive_gib(c: &Ctx<'_>, name: &str) -> Result<Option<u64>, ApiError> {
    match c.p.opt_i64(name)? {
        Some(g) if g <= 0 => Err(ApiError::invalid_parameter_value(format!(
            "{name} must be a positive number of GiB, not {g}"
        ))),
        g => Ok(g.map(|g| g as u64)),
    }
}

pub(super) fn deploy_spec(c: &Ctx<'_>, ctl: &Controller) -> Result<DeploySpec, ApiError> {
    let inv = &ctl.cloud().inv;
    let dir = ctl.directory();
    let account = owner_account(c, ctl)?;
    let zone = c.p.req_uuid("zoneid")?;
    inv.find_zone(ZoneId(zone)).ok_or_else(|| not_found("zone", zone))?;
    let so = c.p.req_uuid("serviceofferingid")?;
    if inv.find_service_offering(ServiceOfferingId(so)).is_none() || dir.is_removed(so) {
        return Err(not_found("service offering", so));
    }
    let tpl = c.p.req_uuid("templateid")?;
    // ISO boots need a blank root disk, which the core does not model.
    match inv.find_template(TemplateId(tpl)).map(|t| inv.template(t)) {
        Some(t) if !t.is_iso => {}
        _ => return Err(not_found("template", tpl)),
    }
    let disk = c.p.opt_uuid("diskofferingid")?;
    if let Some(d) = disk
        && (inv.find_disk_offering(DiskOfferingId(d)).is_none() || dir.is_removed(d))
    {
        return Err(not_found("disk offering", d));
    }
    let host = admin_uuid(c, "hostid")?;
    if let Some(h) = host {
        inv.find_host(HostId(h)).ok_or_else(|| not_found("host", h))?;
    }
    let network = match c.p.opt_uuid_list("networkids")? {
        Some(ids) if !ids.is_empty() => {
            let n = ids[0];
            // Shared networks, or the new VM's account's own.
            inv.find_network(NetworkId(n))
                .map(|ni| inv.network(ni))
                .filter(|net| net.account.is_none_or(|a| inv.account(a).id == account))
                .ok_or_else(|| not_found("network", n))?;
            Some(NetworkId(n))
        }
        _ => None,
    };
    if let Some(h) = c.p.opt_str("hypervisor").filter(|h| !h.is_empty())
        && Hypervisor::parse(h).is_none()
    {
        return Err(ApiError::invalid_parameter_value(format!(
            "Invalid hypervisor type {h}"
        )));
    }
    let size = custom_size(c)?;
    Ok(DeploySpec {
        name: c.p.opt_str("name").unwrap_or("").to_string(),
        account: Some(account),
        zone: Some(ZoneId(zone)),
        offering: Some(ServiceOfferingId(so)),
        template: Some(TemplateId(tpl)),
        disk_offering: disk.map(DiskOfferingId),
        data_disk_gib: positive_gib(c, "size")?,
        root_disk_gib: positive_gib(c, "rootdisksize")?,
        cpu_number: size.cpu,
        cpu_speed_mhz: size.speed,
        memory_mb: size.memory_mb,
        host: host.map(HostId),
        affinity_groups: c
            .p
            .opt_uuid_list("affinitygroupids")?
            .unwrap_or_default()
            .into_iter()
            .map(AffinityGroupId)
            .collect(),
        network,
        ha: None,
        planner: None,
        start: c.p.opt_bool("startvm")?.unwrap_or(true),
    })
}

pub(super) fn display_name(c: &Ctx<'_>) -> Result<Option<String>, ApiError> {
    match c.p.opt_str("displayname") {
        None | Some("") => Ok(None),
        Some(d) if d.chars().count() > 255 => Err(ApiError::invalid_parameter_value(
            "displayname can be at most 255 characters long",
        )),
        Some(d) => Ok(Some(d.to_string())),
    }
}
