//! Ownership rules shared by the storage, network, account and event
//! commands: the account a create acts for, the wider scope CloudStack gives a
//! lookup by `id`, and which accounts a caller may manage.

use super::prelude::*;
use crate::registry::Param;
use stratus_core::inventory::{AccountType, Inventory};

/// The list scope of a call. Beyond `Scope::from_params`: a lookup by `id`
/// (without `account`/`domainid`) is not limited to the caller's own account
/// for admins, as in CloudStack's `buildACLSearchParameters` — root admins
/// find any entity by id, domain admins any in their subtree. Marvin relies on
/// it (it lists users' resources by id with the admin's client).
pub fn list_scope(c: &Ctx<'_>, ctl: &Controller) -> Result<Scope, ApiError> {
    let scope = Scope::from_params(c.caller, ctl, c.p)?;
    let by_id = c.p.opt_str("id").is_some_and(|v| !v.is_empty())
        && c.p.opt_str("account").is_none()
        && c.p.opt_str("domainid").is_none();
    Ok(match (by_id, c.caller.role) {
        (true, Role::Admin) => Scope::Everything,
        (true, Role::DomainAdmin) => Scope::Domain {
            path: c.caller.domain_path.clone(),
            recursive: true,
        },
        _ => scope,
    })
}

/// Whether an entity of account `a` is in the list scope and the caller may see it.
pub fn listed(c: &Ctx<'_>, scope: &Scope, inv: &Inventory, a: AccountId) -> bool {
    scope.covers(inv, a) && c.caller.owns(inv, a)
}

/// Whether the caller may see or act on entities of the account at `a`.
pub fn sees(caller: &Caller, inv: &Inventory, a: AccountIdx) -> bool {
    caller.owns(inv, inv.account(a).id)
}

/// Whether the caller may manage the users of `account` (their keys, new
/// users): admins, over the accounts they own — but only the root admin
/// manages root admin accounts (a domain admin of ROOT must not mint keys for
/// the admin). A plain user manages only itself, which callers check apart.
pub fn manages(caller: &Caller, inv: &Inventory, account: AccountId) -> bool {
    let Some(a) = inv.find_account(account) else {
        return false;
    };
    caller.role != Role::User
        && caller.owns(inv, account)
        && (caller.is_admin() || inv.account(a).account_type != AccountType::Admin)
}

/// The account a create acts for: `account` (in `domainid`, default the
/// caller's domain) when given and owned by the caller, else the caller's own.
pub fn target_account(c: &Ctx<'_>, ctl: &Controller) -> Result<AccountId, ApiError> {
    let Some(name) = c.p.opt_str("account").filter(|s| !s.is_empty()) else {
        return Ok(c.caller.account);
    };
    let inv = &ctl.cloud().inv;
    let path = match c.p.opt_uuid("domainid")? {
        Some(d) => {
            let di = inv.find_domain(DomainId(d)).ok_or_else(|| not_found("domain", d))?;
            inv.domain(di).path.clone()
        }
        None => c.caller.domain_path.clone(),
    };
    let a = inv
        .accounts
        .iter()
        .find(|a| a.name == name && inv.domain(a.domain).path == path)
        .ok_or_else(|| ApiError::param(format!("Unable to find account {name} in domain {path}")))?;
    if !c.caller.owns(inv, a.id) {
        return Err(ApiError::permission_denied(format!(
            "Caller {} has no access to account {name}",
            c.caller.account_name
        )));
    }
    Ok(a.id)
}

/// A domain by `param` (or the caller's own when absent) that the caller may
/// manage: (id, path). Outside the caller's subtree → 531, as CloudStack's
/// checkAccess answers.
pub fn managed_domain(c: &Ctx<'_>, ctl: &Controller, param: &str) -> Result<(DomainId, String), ApiError> {
    let inv = &ctl.cloud().inv;
    let (id, path) = match c.p.opt_uuid(param)? {
        Some(d) => {
            let di = inv.find_domain(DomainId(d)).ok_or_else(|| not_found("domain", d))?;
            (DomainId(d), inv.domain(di).path.clone())
        }
        None => (c.caller.domain, c.caller.domain_path.clone()),
    };
    if c.caller.role == Role::User || !c.caller.sees_domain(&path) {
        return Err(ApiError::permission_denied(format!(
            "Caller {} has no access to domain {path}",
            c.caller.account_name
        )));
    }
    Ok((id, path))
}

/// An IPv4 parameter, if given.
pub fn opt_ip(c: &Ctx<'_>, name: &str) -> Result<Option<std::net::Ipv4Addr>, ApiError> {
    match c.p.opt_str(name).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid_parameter_value(format!("{v} is not a valid IPv4 address ({name})"))),
    }
}

// The owner and scope parameters most commands share.
pub const ACCOUNT: Param = p("account", Ty::Str, "the account of the resource; used with domainid");
pub const DOMAINID: Param = p("domainid", Ty::Uuid, "the domain of the account");
pub const ISRECURSIVE: Param = p(
    "isrecursive",
    Ty::Bool,
    "defaults to false; true lists the domain's subdomains too",
);
pub const LISTALL: Param = p("listall", Ty::Bool, "list everything the caller may see");
