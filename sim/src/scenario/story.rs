//! The parts of the scenario language that tell a story: fault selectors
//! (many hosts or pools at once) and triggers (a fault or an action started
//! by something that happens in the run, instead of at a hand-timed moment).

use super::model::{Action, Duration, Fault};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which hosts (for host faults) or pools (for storage outages) a fault hits
/// when it names no single `host` or `pool`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Select {
    /// Every host of this cluster (or its cluster-wide pools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Every host of this pod (or the pools of its clusters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Every host of this zone (or every shared pool of the zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Every host (or every shared pool) of the scenario.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// Every host that uses this primary storage pool (a cluster pool's
    /// cluster, a zone pool's zone, a local pool's host). Host faults only:
    /// a `storage_outage`'s `pool` is the pool that fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
}

impl Select {
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// How many selectors are given (at most one is allowed).
    pub fn count(&self) -> usize {
        usize::from(self.cluster.is_some())
            + usize::from(self.pod.is_some())
            + usize::from(self.zone.is_some())
            + usize::from(self.all)
            + usize::from(self.pool.is_some())
    }
}

const SELECT_KEYS: [&str; 4] = ["cluster", "pod", "zone", "all"];

/// Splits a fault's TOML table into its selector and the fault itself.
pub(crate) fn fault_from_table(mut table: toml::Table) -> Result<(Select, Fault), String> {
    let mut sel = toml::Table::new();
    for k in SELECT_KEYS {
        if let Some(v) = table.remove(k) {
            sel.insert(k.to_string(), v);
        }
    }
    // `pool` selects hosts, except in a storage outage, where it is the pool.
    let outage = table.get("kind").and_then(toml::Value::as_str) == Some("storage_outage");
    if !outage && let Some(v) = table.remove("pool") {
        sel.insert("pool".to_string(), v);
    }
    let select = Select::deserialize(toml::Value::Table(sel)).map_err(|e| e.message().to_string())?;
    let fault = Fault::deserialize(toml::Value::Table(table)).map_err(|e| e.message().to_string())?;
    Ok((select, fault))
}

/// A fault or an action that starts when something happens, after `delay`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Trigger {
    /// What starts it.
    pub when: When,
    /// How long after the moment it fires (default at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// Fire every time the moment comes again (default: only the first time).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeat: bool,
    /// The fault to inject (its fields and selector, no `at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<TriggeredFault>,
    /// The operator action to take (its fields, no `at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// A fault with its selector, as a trigger carries it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TriggeredFault {
    #[serde(flatten)]
    pub select: Select,
    #[serde(flatten)]
    pub fault: Fault,
}

/// The moment a trigger waits for. One of: a host reaching a state
/// (`host` + `state`, e.g. "Down"), a host reaching a resource state
/// (`host` + `resource_state`; "PrepareForMaintenance" is the moment its
/// evacuation starts), a job starting or ending (`job` = the API command,
/// e.g. "migrateVirtualMachine", `on` = "start" | "end" | "fail", optionally
/// for one `vm`), or a VM reaching a state (`vm` + `vm_state`, e.g. "Running").
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_state: Option<String>,
}

impl<'de> Deserialize<'de> for Trigger {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let take = |t: &mut toml::Table, k: &str| t.remove(k);
        let when = take(&mut table, "when").ok_or_else(|| D::Error::missing_field("when"))?;
        let when = When::deserialize(when).map_err(|e| D::Error::custom(e.message()))?;
        let delay = take(&mut table, "delay")
            .map(Duration::deserialize)
            .transpose()
            .map_err(|e| D::Error::custom(e.message()))?;
        let repeat = take(&mut table, "repeat")
            .map(bool::deserialize)
            .transpose()
            .map_err(|e| D::Error::custom(e.message()))?
            .unwrap_or(false);
        let fault = match take(&mut table, "fault") {
            Some(toml::Value::Table(t)) => {
                let (select, fault) = fault_from_table(t).map_err(D::Error::custom)?;
                Some(TriggeredFault { select, fault })
            }
            Some(_) => {
                return Err(D::Error::custom(
                    "fault: expected a table like { kind = \"host_crash\", host = \"kvm3\" }",
                ));
            }
            None => None,
        };
        let action = match take(&mut table, "action") {
            Some(toml::Value::Table(mut t)) => {
                if t.contains_key("at") {
                    return Err(D::Error::custom(
                        "action: a triggered action has no `at`; use the trigger's `delay`",
                    ));
                }
                // Actions carry their time; a triggered one happens when it fires.
                t.insert("at".into(), toml::Value::String("0s".into()));
                Some(Action::deserialize(toml::Value::Table(t)).map_err(|e| D::Error::custom(e.message()))?)
            }
            Some(_) => {
                return Err(D::Error::custom(
                    "action: expected a table like { kind = \"set_setting\", ... }",
                ));
            }
            None => None,
        };
        if let Some(k) = table.keys().next() {
            return Err(D::Error::unknown_field(
                k,
                &["when", "delay", "repeat", "fault", "action"],
            ));
        }
        Ok(Trigger {
            when,
            delay,
            repeat,
            fault,
            action,
        })
    }
}
