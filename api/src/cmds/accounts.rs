//! Domains, accounts, users and their API keys: createAccount, listAccounts,
//! createUser, listUsers, createDomain, listDomains, registerUserKeys,
//! getUserKeys. Changes go in as admin changes (the core records
//! ACCOUNT.CREATE, USER.CREATE, DOMAIN.CREATE, REGISTER.USER.KEY).

use super::access::{ACCOUNT, DOMAINID, ISRECURSIVE, LISTALL, list_scope, listed, managed_domain, manages};
use super::prelude::*;
use crate::auth::{hash_password, new_keys};
use crate::registry::Param;
use stratus_core::controller::admin::{AdminChange, NewUser};
use stratus_core::controller::directory::{User, UserId};
use stratus_core::inventory::{AccountType, Inventory};
use stratus_core::vm::{VmState, VolumeState};

fn role_name(t: AccountType) -> &'static str {
    match t {
        AccountType::Admin => "Admin",
        AccountType::DomainAdmin => "DomainAdmin",
        AccountType::User => "User",
    }
}

/// A user; `apikey` only for the user itself and those who manage its
/// account, `secretkey` never (getUserKeys hands it out).
fn user_view(ctl: &Controller, u: &User, caller: &Caller) -> Obj {
    let cloud = ctl.cloud();
    let inv = &cloud.inv;
    let mut o = Obj::new()
        .s("id", u.id.to_string())
        .s("username", u.username.clone())
        .s("firstname", u.first_name.clone())
        .s("lastname", u.last_name.clone())
        .s("email", u.email.clone())
        .date("created", u.created.0)
        .s("state", if u.enabled { "enabled" } else { "disabled" })
        .opt_s("timezone", u.timezone.clone());
    if let Some(ai) = inv.find_account(u.account) {
        let a = inv.account(ai);
        let d = inv.domain(a.domain);
        o = o
            .s("account", a.name.clone())
            .s("accountid", a.id.0.to_string())
            .i("accounttype", i64::from(Role::of(a.account_type).account_type()))
            .s("roletype", role_name(a.account_type))
            .s("domainid", d.id.0.to_string())
            .s("domain", d.name.clone());
    }
    let shows_key = caller.user == u.id || manages(caller, inv, u.account);
    o.opt_s("apikey", u.api_key.clone().filter(|_| shows_key))
        .b("isdefault", u.account == cloud.admin_account() && u.username == "admin")
        .s("usersource", "native")
}

fn account_view(ctl: &Controller, ai: AccountIdx, caller: &Caller) -> Obj {
    let cloud = ctl.cloud();
    let inv = &cloud.inv;
    let a = inv.account(ai);
    let d = inv.domain(a.domain);
    let (mut total, mut running, mut stopped) = (0i64, 0i64, 0i64);
    for (_, vm) in cloud.vms().filter(|(_, v)| v.account == ai) {
        if matches!(vm.state, VmState::Destroyed | VmState::Expunging) {
            continue;
        }
        total += 1;
        match vm.state {
            VmState::Running => running += 1,
            VmState::Stopped => stopped += 1,
            _ => {}
        }
    }
    let volumes = cloud
        .volumes()
        .filter(|(_, v)| v.account == ai && !matches!(v.state, VolumeState::Destroy | VolumeState::Expunged))
        .count();
    let snapshots = cloud.snapshots().filter(|s| s.account == ai).count();
    let ips = ctl
        .directory()
        .public_ips
        .iter()
        .filter(|p| p.account == Some(a.id))
        .count();
    let networks = inv.networks.iter().filter(|n| n.account == Some(ai)).count();
    let users = ctl
        .directory()
        .users
        .iter()
        .filter(|u| u.account == a.id)
        .map(|u| user_view(ctl, u, caller))
        .collect();
    let unlimited = |o: Obj, name: &'static str| o.s(name, "Unlimited");
    let mut o = Obj::new()
        .s("id", a.id.0.to_string())
        .s("name", a.name.clone())
        .i("accounttype", i64::from(Role::of(a.account_type).account_type()))
        .s("roletype", role_name(a.account_type))
        .s("rolename", role_name(a.account_type))
        .s("domainid", d.id.0.to_string())
        .s("domain", d.name.clone())
        .s("domainpath", d.path.clone())
        .s("state", "enabled")
        .b("isdefault", a.id == cloud.admin_account())
        .i("vmtotal", total)
        .i("vmrunning", running)
        .i("vmstopped", stopped)
        .i("volumetotal", volumes as i64)
        .i("snapshottotal", snapshots as i64)
        .i("iptotal", ips as i64)
        .i("networktotal", networks as i64)
        .i("receivedbytes", 0)
        .i("sentbytes", 0);
    for name in [
        "vmlimit",
        "vmavailable",
        "volumelimit",
        "volumeavailable",
        "snapshotlimit",
        "snapshotavailable",
        "iplimit",
        "ipavailable",
        "networklimit",
        "networkavailable",
    ] {
        o = unlimited(o, name);
    }
    o.list("user", users)
}

fn domain_view(inv: &Inventory, di: DomainIdx) -> Obj {
    let d = inv.domain(di);
    let parent = d.parent.map(|p| inv.domain(p));
    Obj::new()
        .s("id", d.id.0.to_string())
        .s("name", d.name.clone())
        .i("level", d.path.matches('/').count() as i64)
        .opt_s("parentdomainid", parent.map(|p| p.id.0.to_string()))
        .opt_s("parentdomainname", parent.map(|p| p.name.clone()))
        .b("haschild", inv.domains.iter().any(|x| x.parent == Some(di)))
        .s("path", d.path.clone())
        .s("state", "Active")
}

/// `accounttype` (0 user, 1 root admin, 2 domain admin) or `roletype`.
fn account_type(c: &Ctx<'_>) -> Result<AccountType, ApiError> {
    if let Some(t) = c.p.opt_i64("accounttype")? {
        return match t {
            0 => Ok(AccountType::User),
            1 => Ok(AccountType::Admin),
            2 => Ok(AccountType::DomainAdmin),
            _ => Err(ApiError::invalid_parameter_value(format!(
                "Invalid account type {t}: use 0 (user), 1 (root admin) or 2 (domain admin)"
            ))),
        };
    }
    match c.p.opt_str("roletype") {
        Some(r) if r.eq_ignore_ascii_case("Admin") => Ok(AccountType::Admin),
        Some(r) if r.eq_ignore_ascii_case("DomainAdmin") => Ok(AccountType::DomainAdmin),
        Some(r) if r.eq_ignore_ascii_case("User") => Ok(AccountType::User),
        Some(r) => Err(ApiError::invalid_parameter_value(format!(
            "Invalid role type {r}: use Admin, DomainAdmin or User"
        ))),
        None => Err(c.p.missing("accounttype")),
    }
}

/// The new user's fields, with the password hashed off the async threads.
async fn new_user(c: &Ctx<'_>) -> Result<NewUser, ApiError> {
    let password = c.p.req_str("password")?.to_string();
    if password.is_empty() {
        return Err(ApiError::invalid_parameter_value("the password must not be empty"));
    }
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))?;
    Ok(NewUser {
        username: c.p.req_str("username")?.to_string(),
        password_hash,
        first_name: c.p.req_str("firstname")?.to_string(),
        last_name: c.p.req_str("lastname")?.to_string(),
        email: c.p.req_str("email")?.to_string(),
        timezone: c.p.opt_str("timezone").filter(|t| !t.is_empty()).map(String::from),
    })
}

fn create_account<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let account_type = account_type(c)?;
        let username = c.p.req_str("username")?;
        let name =
            c.p.opt_str("account")
                .filter(|s| !s.is_empty())
                .unwrap_or(username)
                .to_string();
        let (domain, _) = c.api.read(|ctl| managed_domain(c, ctl, "domainid"))?;
        if account_type == AccountType::Admin && !c.caller.is_admin() {
            return Err(ApiError::permission_denied(
                "only the root admin may create root admin accounts",
            ));
        }
        let user = new_user(c).await?;
        let change = AdminChange::CreateAccount {
            name,
            domain: Some(domain),
            account_type,
            user,
        };
        let created = c.api.admin(Some(c.caller), change).await?;
        c.api.read(|ctl| {
            let inv = &ctl.cloud().inv;
            let ai = inv
                .find_account(AccountId(created.id))
                .ok_or_else(|| ApiError::internal("the new account is gone"))?;
            Ok(Obj::new().obj("account", account_view(ctl, ai, c.caller)))
        })
    })
}

fn list_accounts<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let name = c.p.opt_str("name");
        let kind = c.p.opt_i64("accounttype")?;
        let state_ok = c.p.opt_str("state").is_none_or(|s| s.eq_ignore_ascii_case("enabled"));
        let listall = c.p.opt_bool("listall")?.unwrap_or(false);
        let recursive = c.p.opt_bool("isrecursive")?.unwrap_or(false) || listall;
        c.api.read(|ctl| {
            let inv = &ctl.cloud().inv;
            // CloudStack's listAccounts: users see their own account; admins
            // the accounts of one domain (theirs unless domainid), its
            // subdomains too when recursive; a lookup by id anywhere visible.
            let scope = match (c.caller.role, id, c.p.opt_uuid("domainid")?) {
                (Role::User, _, _) => Scope::Account(c.caller.account),
                (_, Some(_), None) => list_scope(c, ctl)?,
                (_, _, d) => {
                    let path = match d {
                        Some(_) => managed_domain(c, ctl, "domainid")?.1,
                        None => c.caller.domain_path.clone(),
                    };
                    Scope::Domain { path, recursive }
                }
            };
            let items: Vec<AccountIdx> = (0..inv.accounts.len())
                .map(|i| AccountIdx(i as u32))
                .filter(|ai| listed(c, &scope, inv, inv.account(*ai).id))
                .filter(|ai| id.is_none_or(|i| inv.account(*ai).id.0 == i))
                .filter(|ai| name.is_none_or(|n| inv.account(*ai).name == n))
                .filter(|ai| {
                    kind.is_none_or(|k| i64::from(Role::of(inv.account(*ai).account_type).account_type()) == k)
                })
                .filter(|ai| state_ok && views::keyword_ok(c.p, &inv.account(*ai).name))
                .collect();
            let (count, page) = views::page(items, c.p)?;
            let objs = page.into_iter().map(|ai| account_view(ctl, ai, c.caller)).collect();
            Ok(render::list_body("account", count, objs))
        })
    })
}

fn create_user<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let name = c.p.req_str("account")?;
        let account = c.api.read(|ctl| {
            let inv = &ctl.cloud().inv;
            let (_, path) = managed_domain(c, ctl, "domainid")?;
            let a = inv
                .accounts
                .iter()
                .find(|a| a.name == name && inv.domain(a.domain).path == path)
                .ok_or_else(|| ApiError::param(format!("Unable to find account {name} in domain {path}")))?;
            if !manages(c.caller, inv, a.id) {
                return Err(ApiError::permission_denied(format!(
                    "Caller {} may not add users to account {name}",
                    c.caller.account_name
                )));
            }
            Ok(a.id)
        })?;
        let user = new_user(c).await?;
        let created = c
            .api
            .admin(Some(c.caller), AdminChange::CreateUser { account, user })
            .await?;
        c.api.read(|ctl| {
            let u = ctl
                .directory()
                .user(UserId(created.id))
                .ok_or_else(|| ApiError::internal("the new user is gone"))?;
            Ok(Obj::new().obj("user", user_view(ctl, u, c.caller)))
        })
    })
}

fn list_users<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let username = c.p.opt_str("username");
        let kind = c.p.opt_i64("accounttype")?;
        let state = c.p.opt_str("state");
        c.api.read(|ctl| {
            let scope = list_scope(c, ctl)?;
            let inv = &ctl.cloud().inv;
            let items: Vec<&User> = ctl
                .directory()
                .users
                .iter()
                .filter(|u| inv.find_account(u.account).is_some() && listed(c, &scope, inv, u.account))
                .filter(|u| id.is_none_or(|i| u.id.0 == i))
                .filter(|u| username.is_none_or(|n| u.username == n))
                .filter(|u| {
                    kind.is_none_or(|k| {
                        let a = inv.account(inv.find_account(u.account).expect("checked above"));
                        i64::from(Role::of(a.account_type).account_type()) == k
                    })
                })
                .filter(|u| {
                    let st = if u.enabled { "enabled" } else { "disabled" };
                    state.is_none_or(|s| s.eq_ignore_ascii_case(st))
                })
                .filter(|u| views::keyword_ok(c.p, &u.username))
                .collect();
            let (count, page) = views::page(items, c.p)?;
            let objs = page.into_iter().map(|u| user_view(ctl, u, c.caller)).collect();
            Ok(render::list_body("user", count, objs))
        })
    })
}

fn create_domain<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let name = c.p.req_str("name")?.to_string();
        if name.contains('/') {
            return Err(ApiError::invalid_parameter_value("a domain name cannot contain '/'"));
        }
        let (parent, _) = c.api.read(|ctl| managed_domain(c, ctl, "parentdomainid"))?;
        let change = AdminChange::CreateDomain {
            name,
            parent: Some(parent),
        };
        let created = c.api.admin(Some(c.caller), change).await?;
        c.api.read(|ctl| {
            let inv = &ctl.cloud().inv;
            let di = inv
                .find_domain(DomainId(created.id))
                .ok_or_else(|| ApiError::internal("the new domain is gone"))?;
            Ok(Obj::new().obj("domain", domain_view(inv, di)))
        })
    })
}

fn list_domains<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.opt_uuid("id")?;
        let name = c.p.opt_str("name");
        let level = c.p.opt_i64("level")?;
        let listall = c.p.opt_bool("listall")?.unwrap_or(false) || c.p.opt_bool("isrecursive")?.unwrap_or(false);
        c.api.read(|ctl| {
            let inv = &ctl.cloud().inv;
            // CloudStack: the root admin searches every domain; a domain
            // admin its own domain, or its subtree with listall; by id any
            // domain it may see.
            let mut items: Vec<DomainIdx> = (0..inv.domains.len())
                .map(|i| DomainIdx(i as u32))
                .filter(|di| {
                    let d = inv.domain(*di);
                    match (c.caller.role, id) {
                        (_, Some(i)) => d.id.0 == i && c.caller.sees_domain(&d.path),
                        (Role::Admin, None) => true,
                        (_, None) if listall => c.caller.sees_domain(&d.path),
                        (_, None) => d.id == c.caller.domain,
                    }
                })
                .filter(|di| name.is_none_or(|n| inv.domain(*di).name == n))
                .filter(|di| level.is_none_or(|l| inv.domain(*di).path.matches('/').count() as i64 == l))
                .filter(|di| views::keyword_ok(c.p, &inv.domain(*di).name))
                .collect();
            items.sort_by(|a, b| inv.domain(*a).path.cmp(&inv.domain(*b).path));
            let (count, page) = views::page(items, c.p)?;
            let objs = page.into_iter().map(|di| domain_view(inv, di)).collect();
            Ok(render::list_body("domain", count, objs))
        })
    })
}

/// A user whose keys the caller may handle: itself, or one of an account it
/// manages. Anyone else's id is "not found" (no hint that it exists).
fn key_user(c: &Ctx<'_>, ctl: &Controller, id: Uuid) -> Result<UserId, ApiError> {
    let inv = &ctl.cloud().inv;
    ctl.directory()
        .user(UserId(id))
        .filter(|u| u.id == c.caller.user || manages(c.caller, inv, u.account))
        .map(|u| u.id)
        .ok_or_else(|| not_found("user", id))
}

fn register_user_keys<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("id")?;
        let user = c.api.read(|ctl| key_user(c, ctl, id))?;
        let (api_key, secret_key) = new_keys();
        let change = AdminChange::SetUserKeys {
            user,
            api_key: api_key.clone(),
            secret_key: secret_key.clone(),
        };
        c.api.admin(Some(c.caller), change).await?;
        let keys = Obj::new().s("apikey", api_key).s("secretkey", secret_key);
        Ok(Obj::new().obj("userkeys", keys))
    })
}

fn get_user_keys<'a>(c: &'a Ctx<'a>) -> Fut<'a> {
    boxed(async move {
        let id = c.p.req_uuid("id")?;
        c.api.read(|ctl| {
            let user = key_user(c, ctl, id)?;
            let u = ctl.directory().user(user).ok_or_else(|| not_found("user", id))?;
            let keys = Obj::new()
                .opt_s("apikey", u.api_key.clone())
                .opt_s("secretkey", u.secret_key.clone());
            Ok(Obj::new().obj("userkeys", keys))
        })
    })
}

const ACCOUNT_FIELDS: &[&str] = &[
    "id",
    "name",
    "accounttype",
    "roletype",
    "rolename",
    "domainid",
    "domain",
    "domainpath",
    "state",
    "isdefault",
    "vmtotal",
    "vmrunning",
    "vmstopped",
    "volumetotal",
    "snapshottotal",
    "iptotal",
    "networktotal",
    "receivedbytes",
    "sentbytes",
    "vmlimit",
    "vmavailable",
    "volumelimit",
    "volumeavailable",
    "snapshotlimit",
    "snapshotavailable",
    "iplimit",
    "ipavailable",
    "networklimit",
    "networkavailable",
    "user",
];

const USER_FIELDS: &[&str] = &[
    "id",
    "username",
    "firstname",
    "lastname",
    "email",
    "created",
    "state",
    "timezone",
    "account",
    "accountid",
    "accounttype",
    "roletype",
    "domainid",
    "domain",
    "apikey",
    "isdefault",
    "usersource",
];

const DOMAIN_FIELDS: &[&str] = &[
    "id",
    "name",
    "level",
    "parentdomainid",
    "parentdomainname",
    "haschild",
    "path",
    "state",
];

// The new user's parameters (createAccount, createUser).
const USERNAME: Param = req("username", Ty::Str, "Unique username");
const PASSWORD: Param = req("password", Ty::Str, "Clear text password (hashed by the server)");
const EMAIL: Param = req("email", Ty::Str, "email");
const FIRSTNAME: Param = req("firstname", Ty::Str, "firstname");
const LASTNAME: Param = req("lastname", Ty::Str, "lastname");
const TIMEZONE: Param = p("timezone", Ty::Str, "the user's timezone");

pub static COMMANDS: &[Command] = &[
    Command {
        name: "createAccount",
        description: "Creates an account",
        is_async: false,
        min_role: Role::DomainAdmin,
        params: &[
            p(
                "accounttype",
                Ty::Int,
                "Type of the account: 0 user, 1 root admin, 2 domain admin",
            ),
            p(
                "roletype",
                Ty::Str,
                "Admin, DomainAdmin or User (instead of accounttype)",
            ),
            USERNAME,
            PASSWORD,
            EMAIL,
            FIRSTNAME,
            LASTNAME,
            TIMEZONE,
            p("account", Ty::Str, "Name of the account; defaults to the username"),
            p("domainid", Ty::Uuid, "Creates the account under the specified domain"),
        ],
        object: "account",
        fields: ACCOUNT_FIELDS,
        handler: create_account,
    },
    Command {
        name: "listAccounts",
        description: "Lists accounts and provides detailed account information for listed accounts",
        is_async: false,
        min_role: Role::User,
        params: &[
            p("id", Ty::Uuid, "list account by account ID"),
            p("name", Ty::Str, "list account by account name"),
            p("accounttype", Ty::Int, "list accounts by account type"),
            p("state", Ty::Str, "list accounts by state"),
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
        ],
        object: "account",
        fields: ACCOUNT_FIELDS,
        handler: list_accounts,
    },
    Command {
        name: "createUser",
        description: "Creates a user for an account that already exists",
        is_async: false,
        min_role: Role::DomainAdmin,
        params: &[
            req("account", Ty::Str, "the account to add the user to"),
            USERNAME,
            PASSWORD,
            EMAIL,
            FIRSTNAME,
            LASTNAME,
            TIMEZONE,
            p("domainid", Ty::Uuid, "the domain of the account"),
        ],
        object: "user",
        fields: USER_FIELDS,
        handler: create_user,
    },
    Command {
        name: "listUsers",
        description: "Lists user accounts",
        is_async: false,
        min_role: Role::User,
        params: &[
            p("id", Ty::Uuid, "List user by ID."),
            p("username", Ty::Str, "List user by the username"),
            p("accounttype", Ty::Int, "List users by account type."),
            p("state", Ty::Str, "List users by state of the user account."),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
        ],
        object: "user",
        fields: USER_FIELDS,
        handler: list_users,
    },
    Command {
        name: "createDomain",
        description: "Creates a domain",
        is_async: false,
        min_role: Role::DomainAdmin,
        params: &[
            req("name", Ty::Str, "creates domain with this name"),
            p(
                "parentdomainid",
                Ty::Uuid,
                "assigns new domain a parent domain by domain ID of the parent; defaults to the caller's domain",
            ),
        ],
        object: "domain",
        fields: DOMAIN_FIELDS,
        handler: create_domain,
    },
    Command {
        name: "listDomains",
        description: "Lists domains and provides detailed information for listed domains",
        is_async: false,
        min_role: Role::DomainAdmin,
        params: &[
            p("id", Ty::Uuid, "List domain by domain ID."),
            p("name", Ty::Str, "List domain by domain name."),
            p("level", Ty::Int, "List domains by domain level."),
            ISRECURSIVE,
            LISTALL,
        ],
        object: "domain",
        fields: DOMAIN_FIELDS,
        handler: list_domains,
    },
    Command {
        name: "registerUserKeys",
        description: "This command allows a user to register for the developer API, returning a secret key and an API key.",
        is_async: false,
        min_role: Role::User,
        params: &[req("id", Ty::Uuid, "User id")],
        object: "userkeys",
        fields: &["apikey", "secretkey"],
        handler: register_user_keys,
    },
    Command {
        name: "getUserKeys",
        description: "This command allows the user to query the secret and API keys for the account",
        is_async: false,
        min_role: Role::User,
        params: &[req("id", Ty::Uuid, "ID of the user whose keys are required")],
        object: "userkeys",
        fields: &["apikey", "secretkey"],
        handler: get_user_keys,
    },
];
