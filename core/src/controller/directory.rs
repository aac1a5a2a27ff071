//! What the API keeps beside the inventory: users and their keys, public IP
//! ranges and addresses, creation times, removed offerings and an audit trail
//! of operator actions. It lives in the controller so it is journaled,
//! snapshotted and recovered with everything else (one durability path).
//! Secrets are generated outside the core (OS randomness) and enter as inputs.

use crate::ids::*;
use crate::units::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($($name:ident),*) => {$(
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    )*};
}

uuid_id!(UserId, PublicIpId, VlanRangeId, AuditId);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub account: AccountId,
    pub username: String,
    /// PHC string (argon2id), computed by the API layer.
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub timezone: Option<String>,
    pub api_key: Option<String>,
    pub secret_key: Option<String>,
    pub enabled: bool,
    pub created: Millis,
}

/// A public IP range (createVlanIpRange).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VlanRange {
    pub id: VlanRangeId,
    pub zone: ZoneId,
    pub vlan: String,
    pub gateway: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
    pub created: Millis,
}

/// One public address; `account` is set while it is allocated.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublicIp {
    pub id: PublicIpId,
    pub range: VlanRangeId,
    pub zone: ZoneId,
    pub address: Ipv4Addr,
    pub account: Option<AccountId>,
    pub network: Option<NetworkId>,
    pub allocated: Option<Millis>,
}

/// An operator or user action that is not a job (listEvents).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: AuditId,
    /// CloudStack's event type, e.g. `ZONE.CREATE`, `USER.LOGIN`.
    pub kind: String,
    pub description: String,
    pub account: Option<AccountId>,
    pub user: Option<UserId>,
    pub at: Millis,
}

/// Bound on the audit trail kept in the state (oldest dropped first).
pub const AUDIT_KEEP: usize = 20_000;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Directory {
    pub users: Vec<User>,
    /// Creation time of inventory entities, by UUID.
    pub created: BTreeMap<Uuid, Millis>,
    /// displaytext of offerings, templates and networks, by UUID.
    pub display_text: BTreeMap<Uuid, String>,
    /// Deleted offerings (the inventory keeps dense indices; these are hidden and refused).
    pub removed: BTreeMap<Uuid, Millis>,
    pub ranges: Vec<VlanRange>,
    pub public_ips: Vec<PublicIp>,
    pub audit: std::collections::VecDeque<AuditEvent>,
}

impl Directory {
    pub fn user(&self, id: UserId) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }
    pub fn user_by_name(&self, account_domain: impl Fn(AccountId) -> bool, username: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.username == username && account_domain(u.account))
    }
    pub fn user_by_api_key(&self, key: &str) -> Option<&User> {
        self.users.iter().find(|u| u.api_key.as_deref() == Some(key))
    }
    pub fn is_removed(&self, id: Uuid) -> bool {
        self.removed.contains_key(&id)
    }
    pub fn created_at(&self, id: Uuid) -> Option<Millis> {
        self.created.get(&id).copied()
    }
    pub fn public_ip(&self, id: PublicIpId) -> Option<&PublicIp> {
        self.public_ips.iter().find(|p| p.id == id)
    }
}
