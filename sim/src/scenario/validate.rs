//! Semantic checks of a deserialized scenario: names, references, topology,
//! IP plans, settings and ranges. The first problem found is reported.

use super::locate::FieldPath;
use super::model::*;
use super::{HostNamer, Problem, local_pool_name};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use stratus_core::inventory::{
    Cidr, Hypervisor, HypervisorCapability, ImageFormat, NetworkType, PlannerKind, PoolType, StorageType,
};
use stratus_core::settings::{REGISTRY, ScopeKind, lookup_def, parse_value};

pub(crate) type R = Result<(), Problem>;

/// Names defined so far, per kind: in definition order, and where each was defined.
#[derive(Default)]
pub(crate) struct Defined {
    names: BTreeMap<&'static str, (Vec<String>, BTreeMap<String, FieldPath>)>,
}

impl Defined {
    fn add(&mut self, kind: &'static str, name: &str, at: &FieldPath) -> R {
        check_name(name, at)?;
        let (order, index) = self.names.entry(kind).or_default();
        if let Some(first) = index.get(name) {
            return Err(Problem::new(
                at,
                format!("duplicate {kind} name '{name}' (first defined at {first})"),
            ));
        }
        order.push(name.to_string());
        index.insert(name.to_string(), at.clone());
        Ok(())
    }

    /// A name defined by a mid-run action (e.g. an offering registered later).
    pub(crate) fn add_late(&mut self, kind: &'static str, name: &str, at: &FieldPath) -> R {
        self.add(kind, name, at)
    }

    /// Refuses `name` unless a `kind` of that name is defined.
    pub(crate) fn known(&self, kind: &'static str, name: &str, at: &FieldPath) -> R {
        let Some((order, index)) = self.names.get(kind) else {
            return Err(Problem::new(at, unknown(kind, name, &[])));
        };
        if index.contains_key(name) {
            return Ok(());
        }
        let list: Vec<&str> = order.iter().map(String::as_str).collect();
        Err(Problem::new(at, unknown(kind, name, &list)))
    }
}

/// "unknown offering 'mediun' (known: small, medium, large)"; long lists give
/// the closest name instead.
pub(crate) fn unknown(kind: &str, name: &str, known: &[&str]) -> String {
    if known.is_empty() {
        return format!("unknown {kind} '{name}' (none is defined)");
    }
    if known.len() <= 12 {
        return format!("unknown {kind} '{name}' (known: {})", known.join(", "));
    }
    let closest = known
        .iter()
        .min_by_key(|k| distance(name, k))
        .copied()
        .unwrap_or_default();
    format!(
        "unknown {kind} '{name}' (did you mean '{closest}'? {} are defined)",
        known.len()
    )
}

/// Edit distance, for "did you mean" suggestions.
fn distance(a: &str, b: &str) -> usize {
    strsim::levenshtein(a, b)
}

fn check_name(name: &str, at: &FieldPath) -> R {
    if name.trim().is_empty() {
        return Err(Problem::new(at, "names must not be empty"));
    }
    if name.chars().count() > 255 {
        return Err(Problem::new(at, "names must be at most 255 characters"));
    }
    Ok(())
}

fn positive<T: PartialOrd + Default + std::fmt::Display>(v: T, what: &str, at: &FieldPath) -> R {
    if v > T::default() {
        Ok(())
    } else {
        Err(Problem::new(at, format!("{what} must be positive, got {v}")))
    }
}

fn rate(v: f64, at: &FieldPath) -> R {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Problem::new(at, format!("must be a finite number >= 0, got {v}")))
    }
}

fn probability(v: f64, at: &FieldPath) -> R {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(Problem::new(at, format!("must be a probability from 0 to 1, got {v}")))
    }
}

fn nonzero(d: Duration, at: &FieldPath) -> R {
    if d.is_zero() {
        Err(Problem::new(at, "must be longer than 0s"))
    } else {
        Ok(())
    }
}

fn ip(text: &str, at: &FieldPath) -> Result<Ipv4Addr, Problem> {
    text.trim()
        .parse()
        .map_err(|_| Problem::new(at, format!("'{text}' is not an IPv4 address (like 192.0.2.10)")))
}

pub(crate) fn cidr(text: &str, at: &FieldPath) -> Result<Cidr, Problem> {
    Cidr::parse(text).ok_or_else(|| {
        Problem::new(
            at,
            format!("'{text}' is not a network in CIDR form (network address / prefix, like 10.1.0.0/16)"),
        )
    })
}

fn one_of<T>(parsed: Option<T>, what: &str, text: &str, known: &[&str], at: &FieldPath) -> Result<T, Problem> {
    parsed.ok_or_else(|| Problem::new(at, format!("unknown {what} '{text}' (known: {})", known.join(", "))))
}

pub(crate) fn hypervisor(text: &str, at: &FieldPath) -> Result<Hypervisor, Problem> {
    let known: Vec<&str> = Hypervisor::ALL.iter().map(|h| h.as_str()).collect();
    one_of(Hypervisor::parse(text), "hypervisor", text, &known, at)
}

pub(crate) fn pool_type(text: &str, at: &FieldPath) -> Result<PoolType, Problem> {
    let t = match text.to_ascii_lowercase().as_str() {
        "nfs" | "networkfilesystem" => Some(PoolType::NetworkFilesystem),
        "gluster" => Some(PoolType::Gluster),
        _ => None,
    };
    one_of(t, "shared storage type", text, &["nfs", "gluster"], at)
}

pub(crate) fn storage_type(text: &str, at: &FieldPath) -> Result<StorageType, Problem> {
    one_of(StorageType::parse(text), "storage type", text, &["shared", "local"], at)
}

pub(crate) fn planner(text: &str, at: &FieldPath) -> Result<PlannerKind, Problem> {
    let known: Vec<&str> = PlannerKind::ALL.iter().map(|p| p.as_str()).collect();
    one_of(PlannerKind::parse(text), "planner", text, &known, at)
}

pub(crate) fn image_format(text: &str, at: &FieldPath) -> Result<ImageFormat, Problem> {
    let known: Vec<&str> = ImageFormat::ALL.iter().map(|f| f.as_str()).collect();
    one_of(ImageFormat::parse(text), "template format", text, &known, at)
}

pub(crate) fn network_type(text: &str, at: &FieldPath) -> Result<NetworkType, Problem> {
    one_of(
        NetworkType::parse(text),
        "network type",
        text,
        &["Basic", "Advanced"],
        at,
    )
}

/// A setting as written: its dotted name, its value as text, its path.
pub(crate) struct SettingEntry {
    pub name: String,
    pub raw: String,
    pub path: FieldPath,
}

/// Flattens settings (unquoted dotted keys make nested tables), validating
/// names, values and, for `scope = Cluster`, that each is cluster-scoped.
pub(crate) fn settings(
    map: &BTreeMap<String, toml::Value>,
    base: &FieldPath,
    scope: ScopeKind,
) -> Result<Vec<SettingEntry>, Problem> {
    fn walk(map: &toml::Table, prefix: &str, base: &FieldPath, out: &mut Vec<(String, FieldPath, toml::Value)>) {
        for (k, v) in map {
            let (name, path) = (format!("{prefix}{k}"), base.key(k));
            match v {
                toml::Value::Table(t) => walk(t, &format!("{name}."), &path, out),
                _ => out.push((name, path, v.clone())),
            }
        }
    }
    let mut flat = Vec::new();
    let table: toml::Table = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    walk(&table, "", base, &mut flat);
    let mut out = Vec::with_capacity(flat.len());
    for (name, path, value) in flat {
        let raw = match &value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                let found = other.type_str();
                return Err(Problem::new(
                    &path,
                    format!("a setting value must be a string, number or boolean, not {found}"),
                ));
            }
        };
        let Some(def) = lookup_def(&name) else {
            let hint = REGISTRY
                .iter()
                .map(|d| (distance(&name, d.name), d.name))
                .min()
                .filter(|(d, _)| *d <= 4)
                .map(|(_, n)| format!("; did you mean '{n}'?"))
                .unwrap_or_default();
            return Err(Problem::new(&path, format!("unknown setting '{name}'{hint}")));
        };
        if scope == ScopeKind::Cluster && def.scope != ScopeKind::Cluster {
            return Err(Problem::new(
                &path,
                format!(
                    "setting '{}' cannot be set per cluster (its scope is {}); set it under [settings]",
                    def.name,
                    def.scope.as_str()
                ),
            ));
        }
        parse_value(def, &raw).map_err(|e| Problem::new(&path, e.to_string()))?;
        out.push(SettingEntry { name, raw, path });
    }
    Ok(out)
}

pub(crate) fn validate(s: &Scenario) -> R {
    let root = FieldPath::root();
    let meta = root.key("scenario");
    check_name(&s.scenario.name, &meta.key("name"))?;
    nonzero(s.scenario.duration, &meta.key("duration"))?;
    let end = s.scenario.duration;
    let in_run = |d: Duration, at: &FieldPath| -> R {
        if d > end {
            return Err(Problem::new(at, format!("{d} is after the end of the run ({end})")));
        }
        Ok(())
    };
    settings(&s.settings, &root.key("settings"), ScopeKind::Global)?;

    let mut def = Defined::default();
    for (i, a) in s.accounts.iter().enumerate() {
        let at = root.key("accounts").idx(i).key("name");
        if a.name == "admin" {
            return Err(Problem::new(
                &at,
                "account 'admin' is the built-in admin account; choose another name",
            ));
        }
        def.add("account", &a.name, &at)?;
    }
    for (i, o) in s.offerings.iter().enumerate() {
        let at = root.key("offerings").idx(i);
        def.add("offering", &o.name, &at.key("name"))?;
        positive(o.cpu, "cpu", &at.key("cpu"))?;
        positive(o.mhz, "mhz", &at.key("mhz"))?;
        positive(o.memory_mb, "memory_mb", &at.key("memory_mb"))?;
        storage_type(&o.storage, &at.key("storage"))?;
        if let Some(p) = &o.planner {
            planner(p, &at.key("planner"))?;
        }
    }
    if s.offerings.is_empty() {
        return Err(Problem::new(&root.key("offerings"), "at least one offering is needed"));
    }
    for (i, o) in s.disk_offerings.iter().enumerate() {
        let at = root.key("disk_offerings").idx(i);
        def.add("disk offering", &o.name, &at.key("name"))?;
        positive(o.size_gib, "size_gib", &at.key("size_gib"))?;
    }
    for (i, t) in s.templates.iter().enumerate() {
        let at = root.key("templates").idx(i);
        def.add("template", &t.name, &at.key("name"))?;
        positive(t.size_gib, "size_gib", &at.key("size_gib"))?;
        image_format(&t.format, &at.key("format"))?;
        hypervisor(&t.hypervisor, &at.key("hypervisor"))?;
    }

    // Topology. Names of zones, pods, clusters, hosts, pools, image stores and
    // networks are unique across the whole scenario (faults and expectations
    // refer to them by name alone).
    if s.zones.is_empty() {
        return Err(Problem::new(&root.key("zones"), "at least one zone is needed"));
    }
    let mut namer = HostNamer::default();
    let mut network_zone: BTreeMap<&str, &str> = BTreeMap::new();
    for (zi, z) in s.zones.iter().enumerate() {
        let zat = root.key("zones").idx(zi);
        def.add("zone", &z.name, &zat.key("name"))?;
        network_type(&z.network_type, &zat.key("network_type"))?;
        ip(&z.dns1, &zat.key("dns1"))?;
        ip(&z.internal_dns1, &zat.key("internal_dns1"))?;
        if let Some(c) = &z.guest_cidr {
            cidr(c, &zat.key("guest_cidr"))?;
        }
        for (i, st) in z.image_stores.iter().enumerate() {
            let at = zat.key("image_stores").idx(i);
            def.add("image store", &st.name, &at.key("name"))?;
            if st.url.trim().is_empty() {
                return Err(Problem::new(&at.key("url"), "must not be empty"));
            }
            positive(st.capacity_gib, "capacity_gib", &at.key("capacity_gib"))?;
        }
        for (i, p) in z.pools.iter().enumerate() {
            pool(&mut def, p, &zat.key("pools").idx(i))?;
        }
        if z.pods.is_empty() {
            return Err(Problem::new(
                &zat.key("pods"),
                format!("zone '{}' needs at least one pod", z.name),
            ));
        }
        for (pi, p) in z.pods.iter().enumerate() {
            let pat = zat.key("pods").idx(pi);
            def.add("pod", &p.name, &pat.key("name"))?;
            pod_ips(p, &pat)?;
            if p.clusters.is_empty() {
                return Err(Problem::new(
                    &pat.key("clusters"),
                    format!("pod '{}' needs at least one cluster", p.name),
                ));
            }
            for (ci, c) in p.clusters.iter().enumerate() {
                let cat = pat.key("clusters").idx(ci);
                def.add("cluster", &c.name, &cat.key("name"))?;
                let hv = hypervisor(&c.hypervisor, &cat.key("hypervisor"))?;
                settings(&c.settings, &cat.key("settings"), ScopeKind::Cluster)?;
                if c.hosts.is_empty() {
                    return Err(Problem::new(
                        &cat.key("hosts"),
                        format!("cluster '{}' needs at least one host group", c.name),
                    ));
                }
                let limit = HypervisorCapability::default_for(hv).max_hosts_per_cluster;
                let mut total = 0u64;
                for (gi, g) in c.hosts.iter().enumerate() {
                    let gat = cat.key("hosts").idx(gi);
                    if g.prefix.trim().is_empty() {
                        return Err(Problem::new(&gat.key("prefix"), "must not be empty"));
                    }
                    positive(g.count, "count", &gat.key("count"))?;
                    positive(g.cores, "cores", &gat.key("cores"))?;
                    positive(g.sockets, "sockets", &gat.key("sockets"))?;
                    positive(g.mhz, "mhz", &gat.key("mhz"))?;
                    positive(g.memory_gib, "memory_gib", &gat.key("memory_gib"))?;
                    total += u64::from(g.count);
                    if total > u64::from(limit) {
                        return Err(Problem::new(
                            &gat.key("count"),
                            format!(
                                "cluster '{}' would have {total} hosts; {hv} allows at most {limit} per cluster",
                                c.name
                            ),
                        ));
                    }
                    if g.local_storage_gib > 0 && !z.local_storage_enabled {
                        return Err(Problem::new(
                            &gat.key("local_storage_gib"),
                            format!("zone '{}' has local_storage_enabled = false", z.name),
                        ));
                    }
                    for name in namer.names(g) {
                        def.add("host", &name, &gat.key("prefix"))?;
                        if g.local_storage_gib > 0 {
                            def.add("pool", &local_pool_name(&name), &gat.key("local_storage_gib"))?;
                        }
                    }
                }
                for (i, p) in c.pools.iter().enumerate() {
                    pool(&mut def, p, &cat.key("pools").idx(i))?;
                }
            }
        }
        for (i, n) in z.networks.iter().enumerate() {
            let at = zat.key("networks").idx(i);
            def.add("network", &n.name, &at.key("name"))?;
            let c = cidr(&n.cidr, &at.key("cidr"))?;
            if c.host_count() < 2 {
                return Err(Problem::new(&at.key("cidr"), format!("{c} leaves no guest addresses")));
            }
            if let Some(a) = &n.account {
                def.known("account", a, &at.key("account"))?;
            }
            network_zone.insert(&n.name, &z.name);
        }
    }

    for (i, w) in s.workload.iter().enumerate() {
        let at = root.key("workload").idx(i);
        def.known("account", &w.account, &at.key("account"))?;
        if let Some(z) = &w.zone {
            def.known("zone", z, &at.key("zone"))?;
        }
        def.known("offering", &w.offering, &at.key("offering"))?;
        def.known("template", &w.template, &at.key("template"))?;
        if let Some(d) = &w.disk_offering {
            def.known("disk offering", d, &at.key("disk_offering"))?;
        }
        if let Some(n) = &w.network {
            def.known("network", n, &at.key("network"))?;
            let zone = s.workload_zone(w);
            if network_zone.get(n.as_str()) != Some(&zone) {
                return Err(Problem::new(
                    &at.key("network"),
                    format!("network '{n}' is not in zone '{zone}'"),
                ));
            }
        }
        let arr = at.key("arrival");
        match &w.arrival {
            Arrival::Burst { count, at: when } => {
                positive(*count, "count", &arr.key("count"))?;
                if let Some(d) = when {
                    in_run(*d, &arr.key("at"))?;
                }
            }
            Arrival::Ramp { count, over } => {
                positive(*count, "count", &arr.key("count"))?;
                nonzero(*over, &arr.key("over"))?;
                in_run(*over, &arr.key("over"))?;
            }
            Arrival::Poisson { per_hour, max } => {
                if !(per_hour.is_finite() && *per_hour > 0.0) {
                    return Err(Problem::new(
                        &arr.key("per_hour"),
                        format!("must be a positive number, got {per_hour}"),
                    ));
                }
                if let Some(m) = max {
                    positive(*m, "max", &arr.key("max"))?;
                }
            }
        }
        match &w.lifetime {
            Lifetime::Forever => {}
            Lifetime::Exponential { mean } => nonzero(*mean, &at.key("lifetime").key("mean"))?,
            Lifetime::Fixed { after } => nonzero(*after, &at.key("lifetime").key("after"))?,
        }
        if let Some(r) = &w.retry {
            positive(r.attempts, "attempts", &at.key("retry").key("attempts"))?;
            nonzero(r.after, &at.key("retry").key("after"))?;
        }
        let ops = at.key("ops_per_hour");
        rate(w.ops_per_hour.stop_start, &ops.key("stop_start"))?;
        rate(w.ops_per_hour.reboot, &ops.key("reboot"))?;
        rate(w.ops_per_hour.migrate, &ops.key("migrate"))?;
    }

    let faults = root.key("faults");
    for (i, f) in s.faults.scheduled.iter().enumerate() {
        let at = faults.key("scheduled").idx(i);
        in_run(f.at, &at.key("at"))?;
        fault(&def, &f.select, &f.fault, &at)?;
    }
    let r = &s.faults.random;
    let rat = faults.key("random");
    for (v, k) in [
        (r.host_crash_per_day, "host_crash_per_day"),
        (r.host_hang_per_day, "host_hang_per_day"),
        (r.partition_per_day, "partition_per_day"),
        (r.storage_outage_per_day, "storage_outage_per_day"),
        (r.migration_failure_per_day, "migration_failure_per_day"),
        (r.management_restart_per_day, "management_restart_per_day"),
    ] {
        rate(v, &rat.key(k))?;
    }
    probability(r.op_failure_rate, &rat.key("op_failure_rate"))?;
    if let Some(d) = r.outage {
        nonzero(d, &rat.key("outage"))?;
    }

    let l = s
        .latency
        .resolve()
        .map_err(|e| Problem::new(&root.key("latency").key("profile"), e))?;
    for ((lo, hi), k) in [
        (l.start, "start"),
        (l.stop, "stop"),
        (l.create_volume, "create_volume"),
        (l.copy_template, "copy_template"),
        (l.migrate, "migrate"),
        (l.other, "other"),
    ] {
        if lo > hi {
            return Err(Problem::new(
                &root.key("latency").key(k),
                format!("range [\"{lo}\", \"{hi}\"] is empty: the minimum is above the maximum"),
            ));
        }
    }

    super::validate_ha::validate_actions_and_expectations(s, &mut def, &root)?;
    for (i, e) in s.expect.iter().enumerate() {
        let at = root.key("expect").idx(i);
        if let Expectation::ClusterAllocatedBelow {
            cluster,
            resource,
            below,
        } = e
        {
            def.known("cluster", cluster, &at.key("cluster"))?;
            if resource != "cpu" && resource != "memory" {
                return Err(Problem::new(
                    &at.key("resource"),
                    format!("unknown resource '{resource}' (known: cpu, memory)"),
                ));
            }
            if !(*below > 0.0 && *below <= 1.0) {
                return Err(Problem::new(
                    &at.key("below"),
                    format!("must be a fraction in (0, 1], got {below}"),
                ));
            }
        }
    }
    Ok(())
}

/// A fault's own fields and its selector (scheduled or triggered).
pub(crate) fn fault(def: &Defined, select: &super::Select, f: &Fault, at: &FieldPath) -> R {
    let span = |d: Duration| nonzero(d, &at.key("for"));
    if select.count() > 1 {
        return Err(Problem::new(at, "give at most one of cluster, pod, zone, pool, all"));
    }
    if let Some(c) = &select.cluster {
        def.known("cluster", c, &at.key("cluster"))?;
    }
    if let Some(p) = &select.pod {
        def.known("pod", p, &at.key("pod"))?;
    }
    if let Some(z) = &select.zone {
        def.known("zone", z, &at.key("zone"))?;
    }
    if let Some(p) = &select.pool {
        def.known("pool", p, &at.key("pool"))?;
    }
    let one_host = |host: &str| -> R {
        match (host.is_empty(), select.is_empty()) {
            (true, true) => Err(Problem::new(
                &at.key("host"),
                "name a host, or select hosts with cluster, pod, zone, pool or all = true",
            )),
            (false, false) => Err(Problem::new(
                &at.key("host"),
                "give either host or a selector (cluster, pod, zone, pool, all), not both",
            )),
            (false, true) => def.known("host", host, &at.key("host")),
            (true, false) => Ok(()),
        }
    };
    let no_select = || -> R {
        if select.is_empty() {
            Ok(())
        } else {
            Err(Problem::new(
                at,
                "this fault kind takes no selector (cluster, pod, zone, pool, all)",
            ))
        }
    };
    match f {
        Fault::HostCrash { host, duration } => {
            one_host(host)?;
            duration.map(span).transpose()?;
        }
        Fault::HostHang { host, duration }
        | Fault::Partition { host, duration }
        | Fault::HostFreeze { host, duration }
        | Fault::AgentHang { host, duration }
        | Fault::LeaseStop { host, duration }
        | Fault::Isolation { host, duration }
        | Fault::AsymmetricPartition { host, duration } => {
            one_host(host)?;
            span(*duration)?;
        }
        Fault::StorageOutage { pool, duration } => {
            match (pool.is_empty(), select.is_empty()) {
                (true, true) => {
                    return Err(Problem::new(
                        &at.key("pool"),
                        "name a pool, or select pools with cluster, pod, zone or all = true",
                    ));
                }
                (false, false) => {
                    return Err(Problem::new(
                        &at.key("pool"),
                        "give either pool or a selector (cluster, pod, zone, all), not both",
                    ));
                }
                (false, true) => def.known("pool", pool, &at.key("pool"))?,
                (true, false) => {}
            }
            span(*duration)?;
        }
        Fault::MigrationFailure { count } => {
            no_select()?;
            positive(*count, "count", &at.key("count"))?
        }
        Fault::OpFailureRate { rate, duration } => {
            no_select()?;
            probability(*rate, &at.key("rate"))?;
            span(*duration)?;
        }
        Fault::ManagementRestart { downtime } => {
            no_select()?;
            nonzero(*downtime, &at.key("downtime"))?
        }
        Fault::VmCrash { host } | Fault::ClockSkew { host, .. } => one_host(host)?,
        Fault::LostReplies { rate, duration } => {
            no_select()?;
            probability(*rate, &at.key("rate"))?;
            span(*duration)?;
        }
        Fault::ManagementNetwork { duration } => {
            no_select()?;
            span(*duration)?;
        }
    }
    Ok(())
}

fn pool(def: &mut Defined, p: &PoolDef, at: &FieldPath) -> R {
    def.add("pool", &p.name, &at.key("name"))?;
    pool_type(&p.r#type, &at.key("type"))?;
    positive(p.capacity_gib, "capacity_gib", &at.key("capacity_gib"))
}

fn pod_ips(p: &PodDef, at: &FieldPath) -> R {
    let gateway = ip(&p.gateway, &at.key("gateway"))?;
    let netmask = ip(&p.netmask, &at.key("netmask"))?;
    let start = ip(&p.start_ip, &at.key("start_ip"))?;
    let end = ip(&p.end_ip, &at.key("end_ip"))?;
    let mask = u32::from(netmask);
    if mask.leading_ones() + mask.trailing_zeros() != 32 {
        return Err(Problem::new(
            &at.key("netmask"),
            format!("{netmask} is not a contiguous netmask"),
        ));
    }
    let net = u32::from(gateway) & mask;
    for (k, addr) in [("start_ip", start), ("end_ip", end)] {
        if u32::from(addr) & mask != net {
            return Err(Problem::new(
                &at.key(k),
                format!("{addr} is outside the pod subnet of gateway {gateway} / {netmask}"),
            ));
        }
    }
    if u32::from(start) > u32::from(end) {
        return Err(Problem::new(
            &at.key("end_ip"),
            format!("{end} is below start_ip {start}"),
        ));
    }
    Ok(())
}
