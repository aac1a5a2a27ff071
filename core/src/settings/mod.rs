//! A typed registry of global settings with CloudStack's names, defaults, scopes
//! and validation. Values can be overridden at the setting's scope (zone,
//! cluster, pool or account); lookups fall back to the global value.

mod registry;

pub use registry::{ALIASES, REGISTRY};

use crate::ids::{AccountId, ClusterId, PoolId, ZoneId};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Float {
        min: f64,
        max: f64,
    },
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    Enum(&'static [&'static str]),
    Text,
    /// Comma-separated IPv4 networks in CIDR form (may be empty).
    CidrList,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Float { min, max } => write!(f, "a number from {min} to {max}"),
            Kind::Int { min, max } => write!(f, "an integer from {min} to {max}"),
            Kind::Bool => f.write_str("true or false"),
            Kind::Enum(vals) => write!(f, "one of {}", vals.join(", ")),
            Kind::Text => f.write_str("any text"),
            Kind::CidrList => f.write_str("comma-separated IPv4 CIDRs such as 10.0.0.0/8,192.168.1.0/24"),
        }
    }
}

/// Where a setting may be overridden (besides globally).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScopeKind {
    Global,
    Zone,
    Cluster,
    Pool,
    Account,
}

impl ScopeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Global => "global",
            ScopeKind::Zone => "zone",
            ScopeKind::Cluster => "cluster",
            ScopeKind::Pool => "storagepool",
            ScopeKind::Account => "account",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct SettingDef {
    pub name: &'static str,
    pub category: &'static str,
    pub default: &'static str,
    pub kind: Kind,
    pub scope: ScopeKind,
    pub description: &'static str,
}

/// A concrete place a value is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    Global,
    Zone(ZoneId),
    Cluster(ClusterId),
    Pool(PoolId),
    Account(AccountId),
}

impl Scope {
    pub fn kind(&self) -> ScopeKind {
        match self {
            Scope::Global => ScopeKind::Global,
            Scope::Zone(_) => ScopeKind::Zone,
            Scope::Cluster(_) => ScopeKind::Cluster,
            Scope::Pool(_) => ScopeKind::Pool,
            Scope::Account(_) => ScopeKind::Account,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Float(f64),
    Int(i64),
    Bool(bool),
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Float(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Text(v) => f.write_str(v),
        }
    }
}

impl Value {
    pub fn as_f64(&self) -> f64 {
        match self {
            Value::Float(v) => *v,
            Value::Int(v) => *v as f64,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Text(_) => 0.0,
        }
    }
    pub fn as_i64(&self) -> i64 {
        match self {
            Value::Int(v) => *v,
            Value::Float(v) => *v as i64,
            Value::Bool(b) => i64::from(*b),
            Value::Text(_) => 0,
        }
    }
    pub fn as_bool(&self) -> bool {
        matches!(self, Value::Bool(true))
    }
    pub fn as_text(&self) -> String {
        self.to_string()
    }
}

#[derive(Clone, Debug, PartialEq, Error)]
pub enum SettingError {
    #[error("Unknown configuration setting '{name}'{}", suggestion.as_ref().map(|s| format!("; did you mean '{s}'?")).unwrap_or_default())]
    Unknown { name: String, suggestion: Option<String> },
    #[error("Invalid value '{value}' for setting '{name}': expected {expected}")]
    BadValue {
        name: String,
        value: String,
        expected: String,
    },
    #[error("Setting '{name}' cannot be set at {scope} scope; it can be set globally or per {allowed}")]
    BadScope {
        name: String,
        scope: &'static str,
        allowed: &'static str,
    },
}

pub fn lookup_def(name: &str) -> Option<&'static SettingDef> {
    let canonical = ALIASES
        .iter()
        .find(|(a, _)| *a == name)
        .map(|(_, c)| *c)
        .unwrap_or(name);
    REGISTRY.iter().find(|d| d.name == canonical)
}

/// Edit distance, for "did you mean" suggestions.
fn distance(a: &str, b: &str) -> usize {
    strsim::levenshtein(a, b)
}

/// Parses and validates `raw` for `def`.
pub fn parse_value(def: &SettingDef, raw: &str) -> Result<Value, SettingError> {
    let bad = || SettingError::BadValue {
        name: def.name.to_string(),
        value: raw.to_string(),
        expected: def.kind.to_string(),
    };
    let t = raw.trim();
    match def.kind {
        Kind::Float { min, max } => {
            let v: f64 = t.parse().map_err(|_| bad())?;
            if !v.is_finite() || v < min || v > max {
                return Err(bad());
            }
            Ok(Value::Float(v))
        }
        Kind::Int { min, max } => {
            let v: i64 = t.parse().map_err(|_| bad())?;
            if v < min || v > max {
                return Err(bad());
            }
            Ok(Value::Int(v))
        }
        Kind::Bool => match t.to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(bad()),
        },
        Kind::Enum(vals) => vals
            .iter()
            .find(|v| v.eq_ignore_ascii_case(t))
            .map(|v| Value::Text((*v).to_string()))
            .ok_or_else(bad),
        Kind::Text => Ok(Value::Text(t.to_string())),
        Kind::CidrList => {
            let items: Vec<&str> = t.split(',').map(str::trim).filter(|c| !c.is_empty()).collect();
            if items.iter().any(|c| crate::inventory::Cidr::parse(c).is_none()) {
                return Err(bad());
            }
            Ok(Value::Text(items.join(",")))
        }
    }
}

/// Current values: defaults, global overrides and scoped overrides.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    values: FxHashMap<(&'static str, Scope), Value>,
}

/// Overrides are stored as (name, scope, text), sorted, and re-validated
/// against the registry when read back.
impl Serialize for Settings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut rows: Vec<(&str, Scope, String)> = self
            .values
            .iter()
            .map(|((n, sc), v)| (*n, *sc, v.to_string()))
            .collect();
        rows.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        s.collect_seq(rows)
    }
}

impl<'de> Deserialize<'de> for Settings {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Settings, D::Error> {
        let rows: Vec<(String, Scope, String)> = Vec::deserialize(d)?;
        let mut out = Settings::new();
        for (name, scope, raw) in rows {
            out.set(&name, scope, &raw).map_err(serde::de::Error::custom)?;
        }
        Ok(out)
    }
}

impl Settings {
    pub fn new() -> Self {
        Settings::default()
    }

    /// Validates and stores a value. Nothing changes on error.
    pub fn set(&mut self, name: &str, scope: Scope, raw: &str) -> Result<&'static SettingDef, SettingError> {
        let def = lookup_def(name).ok_or_else(|| {
            let suggestion = REGISTRY
                .iter()
                .map(|d| (distance(name, d.name), d.name))
                .min()
                .filter(|(d, _)| *d <= 4)
                .map(|(_, n)| n.to_string());
            SettingError::Unknown {
                name: name.to_string(),
                suggestion,
            }
        })?;
        if scope.kind() != ScopeKind::Global && scope.kind() != def.scope {
            return Err(SettingError::BadScope {
                name: def.name.to_string(),
                scope: scope.kind().as_str(),
                allowed: def.scope.as_str(),
            });
        }
        let v = parse_value(def, raw)?;
        self.values.insert((def.name, scope), v);
        Ok(def)
    }

    /// Removes an override (the value falls back to the next level).
    pub fn reset(&mut self, name: &str, scope: Scope) -> Result<(), SettingError> {
        let def = lookup_def(name).ok_or_else(|| SettingError::Unknown {
            name: name.to_string(),
            suggestion: None,
        })?;
        self.values.remove(&(def.name, scope));
        Ok(())
    }

    /// The effective value at `scope` (the override there, else global, else default).
    pub fn get(&self, name: &str, scope: Scope) -> Value {
        let def = lookup_def(name).unwrap_or_else(|| panic!("setting {name} is not registered"));
        if scope != Scope::Global
            && let Some(v) = self.values.get(&(def.name, scope))
        {
            return v.clone();
        }
        if let Some(v) = self.values.get(&(def.name, Scope::Global)) {
            return v.clone();
        }
        parse_value(def, def.default).expect("registry defaults are valid")
    }

    /// Where the effective value at `scope` comes from: `"<kind> override"`,
    /// `"global"` or `"default"` (for explanations that name the setting).
    pub fn source(&self, name: &str, scope: Scope) -> String {
        let Some(def) = lookup_def(name) else {
            return "unknown".into();
        };
        if scope != Scope::Global && self.values.contains_key(&(def.name, scope)) {
            return format!("{} override", scope.kind().as_str());
        }
        if self.values.contains_key(&(def.name, Scope::Global)) {
            return "global".into();
        }
        "default".into()
    }

    pub fn f64(&self, name: &str, scope: Scope) -> f64 {
        self.get(name, scope).as_f64()
    }
    pub fn i64(&self, name: &str, scope: Scope) -> i64 {
        self.get(name, scope).as_i64()
    }
    pub fn bool(&self, name: &str, scope: Scope) -> bool {
        self.get(name, scope).as_bool()
    }
    pub fn text(&self, name: &str, scope: Scope) -> String {
        self.get(name, scope).as_text()
    }

    /// Every registered setting with its effective value at `scope` (listConfigurations).
    pub fn list(&self, scope: Scope) -> Vec<(&'static SettingDef, Value)> {
        REGISTRY
            .iter()
            .filter(|d| scope == Scope::Global || d.scope == scope.kind())
            .map(|d| (d, self.get(d.name, scope)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_cloudstack() {
        let s = Settings::new();
        assert_eq!(
            s.f64("cluster.cpu.allocated.capacity.disablethreshold", Scope::Global),
            0.85
        );
        assert_eq!(s.f64("storage.overprovisioning.factor", Scope::Global), 2.0);
        assert_eq!(s.i64("capacity.skipcounting.hours", Scope::Global), 3600);
        assert_eq!(s.text("vm.allocation.algorithm", Scope::Global), "random");
        assert_eq!(
            s.f64("cluster.memory.allocated.capacity.notificationthreshold", Scope::Global),
            0.75
        );
    }

    #[test]
    fn scoped_override_falls_back_to_global() {
        let mut s = Settings::new();
        let c = ClusterId(uuid::Uuid::from_u128(1));
        let other = ClusterId(uuid::Uuid::from_u128(2));
        s.set("cpu.overprovisioning.factor", Scope::Cluster(c), "4").unwrap();
        s.set("cpu.overprovisioning.factor", Scope::Global, "2").unwrap();
        assert_eq!(s.f64("cpu.overprovisioning.factor", Scope::Cluster(c)), 4.0);
        assert_eq!(s.f64("cpu.overprovisioning.factor", Scope::Cluster(other)), 2.0);
    }

    #[test]
    fn bad_values_name_the_setting_and_allowed_values() {
        let mut s = Settings::new();
        let e = s
            .set("cluster.cpu.allocated.capacity.disablethreshold", Scope::Global, "1.5")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid value '1.5' for setting 'cluster.cpu.allocated.capacity.disablethreshold': expected a number from 0 to 1"
        );
        let e = s.set("vm.allocation.algorithm", Scope::Global, "best").unwrap_err();
        assert!(e.to_string().contains("one of random, firstfit, userdispersing"), "{e}");
        let e = s.set("cluster.threshold.enabled", Scope::Global, "yes").unwrap_err();
        assert!(e.to_string().contains("true or false"));
        let e = s.set("vm.alocation.algorithm", Scope::Global, "random").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Unknown configuration setting 'vm.alocation.algorithm'; did you mean 'vm.allocation.algorithm'?"
        );
        let z = ZoneId(uuid::Uuid::from_u128(1));
        let e = s.set("cpu.overprovisioning.factor", Scope::Zone(z), "2").unwrap_err();
        assert!(matches!(e, SettingError::BadScope { allowed: "cluster", .. }));
        // Nothing changed.
        assert_eq!(s.text("vm.allocation.algorithm", Scope::Global), "random");
    }

    #[test]
    fn every_default_parses() {
        for d in REGISTRY {
            parse_value(d, d.default).unwrap_or_else(|e| panic!("{}: {e}", d.name));
        }
    }

    #[test]
    fn alias_spelling_is_accepted() {
        let mut s = Settings::new();
        s.set("capacity.skip.counting.hours", Scope::Global, "60").unwrap();
        assert_eq!(s.i64("capacity.skipcounting.hours", Scope::Global), 60);
    }
}
