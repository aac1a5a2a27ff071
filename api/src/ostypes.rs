//! Guest OS types (listOsTypes). Templates name their OS by description; the
//! ids are derived from the description so they are stable across restarts.

use uuid::Uuid;

/// (description, category).
pub const OS_TYPES: &[(&str, &str)] = &[
    ("CentOS 5.6 (64-bit)", "CentOS"),
    ("CentOS 7", "CentOS"),
    ("Rocky Linux 9", "CentOS"),
    ("Debian GNU/Linux 12 (64-bit)", "Debian"),
    ("Ubuntu 22.04 LTS", "Ubuntu"),
    ("Ubuntu 24.04 LTS", "Ubuntu"),
    ("Other Linux (64-bit)", "Other"),
    ("Other PV (64-bit)", "Other"),
    ("Windows Server 2022 (64-bit)", "Windows"),
    ("Other (64-bit)", "Other"),
];

/// FNV-1a over the text, spread into a UUID (version/variant bits set like v4's layout).
pub fn id_of(description: &str) -> Uuid {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in description.as_bytes() {
        h ^= u128::from(*b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    let mut bytes = h.to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

pub fn category_id(category: &str) -> Uuid {
    id_of(&format!("category:{category}"))
}

/// The description of a known id, or of a template's own OS text.
pub fn by_id(id: Uuid) -> Option<&'static str> {
    OS_TYPES.iter().map(|(d, _)| *d).find(|d| id_of(d) == id)
}
