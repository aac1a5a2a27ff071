//! Scenario files: a simulated datacenter, its workload, faults and
//! expectations, in TOML (format documented in `scenarios/README.md`).
//!
//! [`load`] / [`parse`] read and validate a file completely before anything
//! runs: every error names the file, line, column and field at fault, e.g.
//! `scenarios/x.toml:12:1: workload[0].offering: unknown offering 'mediun'
//! (known: small, medium, large)`. [`build`] turns a valid scenario into a
//! `stratus_core::Cloud` and the name → ID maps the engine needs.

pub mod advice;
mod build;
mod duration;
mod epoch;
mod fault_model;
mod locate;
pub mod model;
pub mod profile;
pub mod story;
mod validate;
mod validate_ha;

pub use build::{Built, NameMaps, build};
pub use duration::DURATION_PATTERN;
pub use epoch::EPOCH_PATTERN;
pub use locate::{FieldPath, Seg};
pub use model::*;
pub use story::{Select, Trigger, TriggeredFault, When};

use locate::Doc;
use std::fmt;
use std::path::Path;

/// A refused scenario: where (file, line, column, field) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file as given to [`load`] / [`parse`] (empty for [`build`] errors).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    /// The field at fault, like `workload[0].offering` (empty if none).
    pub field: String,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut place = self.file.clone();
        if let Some(line) = self.line {
            place.push_str(&format!(":{line}"));
            if let Some(col) = self.column {
                place.push_str(&format!(":{col}"));
            }
        }
        if !place.is_empty() {
            write!(f, "{place}: ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// A semantic problem at a field, before it is located in a file.
#[derive(Clone, Debug)]
pub(crate) struct Problem {
    pub path: FieldPath,
    pub message: String,
}

impl Problem {
    pub fn new(path: &FieldPath, message: impl Into<String>) -> Problem {
        Problem {
            path: path.clone(),
            message: message.into(),
        }
    }

    /// Without a file: for [`build`], which only has the typed scenario.
    fn unlocated(self) -> ScenarioError {
        ScenarioError {
            file: String::new(),
            line: None,
            column: None,
            field: self.path.to_string(),
            message: self.message,
        }
    }

    fn locate(self, doc: &Doc<'_>, file: &str) -> ScenarioError {
        let (line, column) = doc.offset_of(&self.path).map(|o| doc.line_col(o)).unzip();
        ScenarioError {
            file: file.to_string(),
            line,
            column,
            field: self.path.to_string(),
            message: self.message,
        }
    }
}

/// Reads and validates the scenario at `path` (errors name the path as given).
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let (file, text) = read(path)?;
    parse(&text, &file)
}

/// Parses and validates scenario text; `file_name` is used in errors.
pub fn parse(text: &str, file_name: &str) -> Result<Scenario, ScenarioError> {
    // The span tree is only needed to locate an error.
    let scenario: Scenario = toml::from_str(text).map_err(|e| toml_error(&Doc::new(text), file_name, &e))?;
    validate::validate(&scenario).map_err(|p| p.locate(&Doc::new(text), file_name))?;
    Ok(scenario)
}

/// Loads, validates and builds `path`; build errors are located in the file too.
pub fn load_and_build(path: &Path) -> Result<(Scenario, Built), ScenarioError> {
    load_and_build_seeded(path, None)
}

/// Like [`load_and_build`], with `seed` (when given) replacing the file's
/// seed everywhere the file's seed is used: the datacenter's build and the run.
pub fn load_and_build_seeded(path: &Path, seed: Option<u64>) -> Result<(Scenario, Built), ScenarioError> {
    let (file, text) = read(path)?;
    let mut scenario = parse(&text, &file)?;
    if let Some(seed) = seed {
        scenario.scenario.seed = seed;
    }
    let built = build::build_inner(&scenario).map_err(|p| p.locate(&Doc::new(&text), &file))?;
    Ok((scenario, built))
}

fn read(path: &Path) -> Result<(String, String), ScenarioError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((file, text)),
        Err(e) => Err(ScenarioError {
            file,
            line: None,
            column: None,
            field: String::new(),
            message: format!("cannot read the scenario: {e}"),
        }),
    }
}

fn toml_error(doc: &Doc<'_>, file: &str, e: &toml::de::Error) -> ScenarioError {
    let message = e.message().trim().to_string();
    let Some(span) = e.span() else {
        return ScenarioError {
            file: file.to_string(),
            line: None,
            column: None,
            field: String::new(),
            message,
        };
    };
    // Errors about the document itself (a missing top-level field) come with
    // the empty span at its start.
    let mut path = if span.is_empty() && span.start == 0 {
        FieldPath::root()
    } else {
        doc.path_at(span.start)
    };
    let mut offset = span.start;
    if let Some((p, o)) = doc.refine(&path, &message) {
        (path, offset) = (p, o);
    }
    let (line, column) = doc.line_col(offset);
    ScenarioError {
        file: file.to_string(),
        line: Some(line),
        column: Some(column),
        field: path.to_string(),
        message,
    }
}

/// JSON schema of the scenario format (draft 2020-12), generated from
/// [`model`]. `scenarios/scenario.schema.json` holds a copy.
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Scenario);
    schema.insert("title".into(), "Stratus scenario".into());
    let mut value = schema.to_value();
    // `at` plus one fault's fields and nothing else (the flattened enum's
    // variants cannot say so themselves).
    if let Some(fault) = value
        .pointer_mut("/$defs/ScheduledFault")
        .and_then(|v| v.as_object_mut())
    {
        fault.insert("unevaluatedProperties".into(), false.into());
    }
    value
}

impl Scenario {
    /// The zone a workload deploys to: its `zone`, else the first zone.
    pub fn workload_zone<'a>(&'a self, w: &'a WorkloadDef) -> &'a str {
        w.zone
            .as_deref()
            .or_else(|| self.zones.first().map(|z| z.name.as_str()))
            .unwrap_or("")
    }

    /// Every host name with its zone, pod and cluster names, in file order.
    pub fn host_names(&self) -> Vec<(String, &str, &str, &str)> {
        let mut namer = HostNamer::default();
        let mut out = Vec::new();
        for z in &self.zones {
            for p in &z.pods {
                for c in &p.clusters {
                    for g in &c.hosts {
                        for name in namer.names(g) {
                            out.push((name, z.name.as_str(), p.name.as_str(), c.name.as_str()));
                        }
                    }
                }
            }
        }
        out
    }
}

/// Names hosts `<prefix><n>`, numbering on across groups that share a prefix.
#[derive(Debug, Default)]
pub(crate) struct HostNamer(std::collections::BTreeMap<String, u64>);

impl HostNamer {
    pub fn names(&mut self, g: &HostGroupDef) -> Vec<String> {
        let next = self.0.entry(g.prefix.clone()).or_insert(0);
        let first = *next + 1;
        *next += u64::from(g.count);
        (first..=*next).map(|n| format!("{}{n}", g.prefix)).collect()
    }
}

/// The name of a host-local pool of `host`.
pub fn local_pool_name(host: &str) -> String {
    format!("{host}-local")
}

/// `build(s)` with errors that name the field but not the file.
pub(crate) fn unlocated(p: Problem) -> ScenarioError {
    p.unlocated()
}

/// A scenario item as an operator reads it, from its serialized form:
/// `host_never host=kvm1 state=Down` (never Rust's Debug text).
pub fn describe(item: &impl serde::Serialize) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(item) else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(serde_json::Value::String(k)) = map.get("kind") {
        parts.push(k.clone());
    }
    for (k, v) in &map {
        if k == "kind" {
            continue;
        }
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        parts.push(format!("{k}={text}"));
    }
    parts.join(" ")
}
