//! Who is calling, and what they may see: CloudStack's three roles (root
//! admin, domain admin, user) and its visibility rules. Every list filters
//! through `Scope`; every action on an entity checks `Caller::owns`.

use crate::errors::ApiError;
use crate::params::Params;
use stratus_core::controller::Controller;
use stratus_core::controller::directory::UserId;
use stratus_core::ids::{AccountId, DomainId};
use stratus_core::inventory::{AccountType, Inventory};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    User,
    DomainAdmin,
    Admin,
}

impl Role {
    /// CloudStack's account type ordinal (login's `type`, listAccounts' `accounttype`).
    pub fn account_type(self) -> u8 {
        match self {
            Role::User => 0,
            Role::Admin => 1,
            Role::DomainAdmin => 2,
        }
    }
    pub fn of(t: AccountType) -> Role {
        match t {
            AccountType::User => Role::User,
            AccountType::Admin => Role::Admin,
            AccountType::DomainAdmin => Role::DomainAdmin,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Caller {
    pub user: UserId,
    pub username: String,
    pub account: AccountId,
    pub account_name: String,
    pub domain: DomainId,
    /// `ROOT/sub` path of the caller's domain.
    pub domain_path: String,
    pub role: Role,
}

impl Caller {
    /// The caller behind an enabled user of an existing account.
    pub fn of_user(ctl: &Controller, user: UserId) -> Option<Caller> {
        let u = ctl.directory().user(user)?;
        if !u.enabled {
            return None;
        }
        let inv = &ctl.cloud().inv;
        let a = inv.account(inv.find_account(u.account)?);
        let d = inv.domain(a.domain);
        Some(Caller {
            user,
            username: u.username.clone(),
            account: a.id,
            account_name: a.name.clone(),
            domain: d.id,
            domain_path: d.path.clone(),
            role: Role::of(a.account_type),
        })
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the caller may act on resources of `account` (own account;
    /// domain admins: accounts in their subtree; root admin: all).
    pub fn owns(&self, inv: &Inventory, account: AccountId) -> bool {
        match self.role {
            Role::Admin => true,
            Role::User => account == self.account,
            Role::DomainAdmin => inv
                .find_account(account)
                .map(|a| in_subtree(&inv.domain(inv.account(a).domain).path, &self.domain_path))
                .unwrap_or(false),
        }
    }

    /// Whether the caller may see or manage domain `path`.
    pub fn sees_domain(&self, path: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::DomainAdmin => in_subtree(path, &self.domain_path),
            Role::User => path == self.domain_path,
        }
    }
}

/// `path` is `root` or below it (`ROOT/a` is below `ROOT`, `ROOT/ab` is not below `ROOT/a`).
pub fn in_subtree(path: &str, root: &str) -> bool {
    path == root || path.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'))
}

/// Which accounts a list call covers, from `account`, `domainid`, `listall`
/// and `isrecursive` as CloudStack reads them: by default only the caller's
/// own account, even for admins; `listall=true` widens to everything the
/// caller may see.
#[derive(Clone, Debug)]
pub enum Scope {
    Account(AccountId),
    /// Accounts in this domain (and below when recursive).
    Domain {
        path: String,
        recursive: bool,
    },
    Everything,
}

impl Scope {
    pub fn from_params(c: &Caller, ctl: &Controller, p: &Params) -> Result<Scope, ApiError> {
        let inv = &ctl.cloud().inv;
        let listall = p.opt_bool("listall")?.unwrap_or(false);
        let recursive = p.opt_bool("isrecursive")?.unwrap_or(false) || listall;
        let domain = match p.opt_uuid("domainid")? {
            Some(d) => {
                let di = inv
                    .find_domain(DomainId(d))
                    .ok_or_else(|| ApiError::param(format!("Unable to find domain by id {d}")))?;
                let path = inv.domain(di).path.clone();
                if !c.sees_domain(&path) {
                    return Err(ApiError::permission_denied("Caller has no access to this domain"));
                }
                Some(path)
            }
            None => None,
        };
        if let Some(name) = p.opt_str("account") {
            let path = domain.clone().unwrap_or_else(|| c.domain_path.clone());
            let a = inv
                .accounts
                .iter()
                .find(|a| a.name == name && inv.domain(a.domain).path == path)
                .ok_or_else(|| ApiError::param(format!("Unable to find account {name} in domain {path}")))?;
            if !c.owns(inv, a.id) {
                return Err(ApiError::permission_denied("Caller has no access to this account"));
            }
            return Ok(Scope::Account(a.id));
        }
        if c.role == Role::User {
            return Ok(Scope::Account(c.account));
        }
        Ok(match (domain, listall) {
            (Some(path), _) => Scope::Domain { path, recursive },
            (None, true) if c.role == Role::Admin => Scope::Everything,
            (None, true) => Scope::Domain {
                path: c.domain_path.clone(),
                recursive: true,
            },
            (None, false) => Scope::Account(c.account),
        })
    }

    pub fn covers(&self, inv: &Inventory, account: AccountId) -> bool {
        match self {
            Scope::Everything => true,
            Scope::Account(a) => *a == account,
            Scope::Domain { path, recursive } => inv.find_account(account).is_some_and(|a| {
                let p = &inv.domain(inv.account(a).domain).path;
                if *recursive { in_subtree(p, path) } else { p == path }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::in_subtree;

    #[test]
    fn subtree_is_by_path_segment() {
        assert!(in_subtree("ROOT", "ROOT"));
        assert!(in_subtree("ROOT/a/b", "ROOT/a"));
        assert!(!in_subtree("ROOT/ab", "ROOT/a"));
        assert!(!in_subtree("ROOT", "ROOT/a"));
    }
}
