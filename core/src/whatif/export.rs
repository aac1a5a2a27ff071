//! The inventory export: the whole `Cloud` (inventory, settings, VMs, volumes,
//! capacity book) as JSON, what `stratus export --db URL` prints and the
//! `exportInventory` API command returns. `stratus whatif` reads it back.

use crate::cloud::Cloud;
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "stratus-inventory/1";

#[derive(Serialize)]
struct ExportRef<'a> {
    format: &'static str,
    cloud: &'a Cloud,
}

#[derive(Deserialize)]
struct ExportOwned {
    format: String,
    cloud: Cloud,
}

pub fn to_json(c: &Cloud) -> Result<String, String> {
    serde_json::to_string(&ExportRef {
        format: FORMAT,
        cloud: c,
    })
    .map_err(|e| e.to_string())
}

pub fn to_value(c: &Cloud) -> Result<serde_json::Value, String> {
    serde_json::to_value(ExportRef {
        format: FORMAT,
        cloud: c,
    })
    .map_err(|e| e.to_string())
}

/// Reads an export back; the ledger must audit clean (a hand-edited file that
/// breaks the capacity invariant is refused with what is wrong).
pub fn from_json(text: &str) -> Result<Cloud, String> {
    let e: ExportOwned = serde_json::from_str(text).map_err(|e| format!("not a Stratus inventory export: {e}"))?;
    if e.format != FORMAT {
        return Err(format!("inventory format '{}' is not '{FORMAT}'", e.format));
    }
    let mut cloud = e.cloud;
    cloud.refresh_policy();
    let audit = cloud.audit();
    if !audit.ok() {
        return Err(format!(
            "the inventory's ledger does not add up: {}",
            audit.violations.join("; ")
        ));
    }
    Ok(cloud)
}
