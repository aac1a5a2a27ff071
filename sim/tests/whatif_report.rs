//! The what-if report: its JSON matches docs/whatif.schema.json, an export
//! reads back to the same answers, "fit now" equals filling the cloud with
//! real deploys, the growth projection equals running the workload forward
//! in the simulator at the same growth, and a failure's re-placement plan
//! is the one HA carries out.

use serde_json::Value;
use stratus_core::Cloud;
use stratus_core::cloud::DeploySpec;
use stratus_core::vm::VmState;
use stratus_core::whatif::{self, Options, export, growth};
use stratus_sim::runner::{RunOptions, Runner};
use stratus_sim::scenario;
use stratus_sim::whatif_input::cloud_before_faults;

fn lab(extra: &str, duration: &str, base: u32) -> String {
    format!(
        r#"
[scenario]
name = "whatif-lab"
seed = 5
duration = "{duration}"

[settings]
"vm.allocation.algorithm" = "firstfit"

[[zones]]
name = "z1"

[[zones.networks]]
name = "guest"
cidr = "10.2.0.0/20"

[[zones.pods]]
name = "p1"
gateway = "172.16.2.1"
netmask = "255.255.255.0"
start_ip = "172.16.2.10"
end_ip = "172.16.2.250"

[[zones.pods.clusters]]
name = "c1"
hosts = [{{ prefix = "a", count = 3, cores = 16, mhz = 2000, memory_gib = 32 }}]
pools = [{{ name = "ps1", capacity_gib = 50000 }}]

[[zones.pods.clusters]]
name = "c2"
hosts = [{{ prefix = "b", count = 2, cores = 16, mhz = 2000, memory_gib = 48 }}]
pools = [{{ name = "ps2", capacity_gib = 50000 }}]

[[offerings]]
name = "web"
cpu = 2
mhz = 1000
memory_mb = 4096
ha = true

[[offerings]]
name = "big"
cpu = 4
mhz = 2000
memory_mb = 16384

[[templates]]
name = "t"
size_gib = 2

[[accounts]]
name = "ops"

[[workload]]
account = "ops"
offering = "web"
template = "t"
network = "guest"
arrival = {{ kind = "burst", count = {base}, at = "0s" }}
{extra}
"#
    )
}

fn cloud(base: u32) -> Cloud {
    let s = scenario::parse(&lab("", "10m", base), "lab.toml").unwrap_or_else(|e| panic!("{e}"));
    let built = scenario::build(&s).unwrap();
    cloud_before_faults(s, built.cloud)
}

/// A small JSON Schema check: types, const, enum, required, no extra
/// properties, items, prefixItems, oneOf. Enough for our own schema.
fn validate(schema: &Value, v: &Value, path: &str) {
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let ok = one
            .iter()
            .any(|s| std::panic::catch_unwind(|| validate(s, v, path)).is_ok());
        assert!(ok, "{path}: matches no alternative");
        return;
    }
    if let Some(c) = schema.get("const") {
        assert_eq!(v, c, "{path}");
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        assert!(e.contains(v), "{path}: {v} not in {e:?}");
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_u64() || v.is_i64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        });
        assert!(ok, "{path}: {v} is not {types:?}");
    }
    if let (Some(props), Some(o)) = (schema.get("properties").and_then(Value::as_object), v.as_object()) {
        for r in schema["required"].as_array().unwrap() {
            assert!(o.contains_key(r.as_str().unwrap()), "{path}: missing {r}");
        }
        for (k, x) in o {
            let s = props.get(k).unwrap_or_else(|| panic!("{path}.{k}: not in the schema"));
            validate(s, x, &format!("{path}.{k}"));
        }
    }
    if let Some(a) = v.as_array() {
        if let Some(pre) = schema.get("prefixItems").and_then(Value::as_array) {
            assert_eq!(a.len(), pre.len(), "{path}");
            for (i, (s, x)) in pre.iter().zip(a).enumerate() {
                validate(s, x, &format!("{path}[{i}]"));
            }
        } else if let Some(items) = schema.get("items") {
            for (i, x) in a.iter().enumerate() {
                validate(items, x, &format!("{path}[{i}]"));
            }
        }
    }
}

#[test]
fn the_json_report_follows_the_documented_schema_and_an_export_reads_back() {
    let c0 = cloud(12);
    let mut opts = Options::new();
    opts.fail_hosts = vec!["a1".into()];
    opts.drain_hosts = vec!["b1".into()];
    opts.remove_hosts = vec!["a3".into()];
    opts.add_hosts = vec![whatif::AddHosts::parse("c2:2:16x2000/48G").unwrap()];
    opts.grow = Some((20.0, 6));
    opts.settings = vec![(
        "cluster.memory.allocated.capacity.disablethreshold".into(),
        "0.9".into(),
    )];
    let mut c = c0.clone();
    let report = whatif::run(&mut c, &opts, &mut |_, _, _| {}).unwrap();
    let json = serde_json::to_value(&report).unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/whatif.schema.json")).unwrap(),
    )
    .unwrap();
    validate(&schema, &json, "$");
    let plan = report.replacement.as_ref().unwrap();
    assert!(plan.moves.iter().any(|m| m.kind == "migrate" && m.from == "b1"));
    assert!(plan.moves.iter().any(|m| m.kind == "ha-restart" && m.from == "a1"));
    assert_eq!(plan.removed_hosts, vec!["a3".to_string()]);
    assert!(plan.moves.iter().all(|m| m.from != "a3" || m.kind == "migrate"));
    assert_eq!(report.inventory.hosts, 6, "two hosts added, one removed");
    assert!(report.growth.as_ref().unwrap().monthly.len() == 6);

    // Export and read back: the same answers.
    let text = export::to_json(&c0).unwrap();
    let back = export::from_json(&text).unwrap();
    let mut c = back;
    let again = whatif::run(&mut c, &opts, &mut |_, _, _| {}).unwrap();
    assert_eq!(again, report);
    // A what-if leaves the cloud it ran on as the hypotheticals made it, and
    // twice the same gives the same report (determinism, rollbacks exact).
    let mut c = c0.clone();
    let plain = whatif::run(&mut c, &Options::new(), &mut |_, _, _| {}).unwrap();
    assert!(c.audit().ok());
    let again = whatif::run(&mut c, &Options::new(), &mut |_, _, _| {}).unwrap();
    assert_eq!(plain, again);
    // Bad input is refused with a reason and changes nothing.
    let mut bad = Options::new();
    bad.fail_hosts = vec!["nope".into()];
    let mut c = c0.clone();
    assert!(whatif::run(&mut c, &bad, &mut |_, _, _| {}).is_err());
    let mut bad = Options::new();
    bad.settings = vec![("cpu.overprovisioning.factor".into(), "lots".into())];
    assert!(whatif::run(&mut c, &bad, &mut |_, _, _| {}).is_err());
    assert!(whatif::AddHosts::parse("c1:x:1").is_err());
}

#[test]
fn fit_now_equals_filling_the_cloud_with_real_deploys() {
    let c0 = cloud(10);
    fit_now_matches_deploys(&c0);
}

/// "How many more VMs fit" counts storage as the allocator does: c1's pool
/// holds fewer root disks (2 GiB each, overprovisioned x2 and cut at the
/// 0.85 allocated disable threshold) than its hosts hold VMs.
#[test]
fn fit_now_counts_primary_storage() {
    let text = lab("", "10m", 10).replacen("capacity_gib = 50000", "capacity_gib = 20", 1);
    let s = scenario::parse(&text, "lab.toml").unwrap_or_else(|e| panic!("{e}"));
    let built = scenario::build(&s).unwrap();
    let small = cloud_before_faults(s, built.cloud);
    let fits = fit_now_matches_deploys(&small);
    let roomy = fit_now_matches_deploys(&cloud(10));
    let c1 = |f: &[(String, Vec<u64>)], o: &str| f.iter().find(|x| x.0 == o).unwrap().1[0];
    assert!(
        c1(&fits, "web") < c1(&roomy, "web"),
        "storage did not bound c1: {fits:?} vs {roomy:?}"
    );
    assert!(c1(&fits, "big") <= c1(&roomy, "big"));
    // The pool is the bound: its allocation after filling passes no threshold.
    let mut c = small.clone();
    let report = whatif::run(&mut c, &Options::new(), &mut |_, _, _| {}).unwrap();
    let web = report.fit_now.iter().find(|f| f.offering == "web").unwrap();
    assert_eq!(web.per_cluster[0].fits, c1(&fits, "web"));
}

/// Fills a copy of the cloud with real deploys of each offering until the
/// allocator refuses; the count must equal the report's `fits`. Returns
/// (offering, per-cluster fits).
fn fit_now_matches_deploys(c0: &Cloud) -> Vec<(String, Vec<u64>)> {
    let mut c = c0.clone();
    let report = whatif::run(&mut c, &Options::new(), &mut |_, _, _| {}).unwrap();
    for fit in &report.fit_now {
        let mut c = c0.clone();
        let offering = c
            .inv
            .service_offerings
            .iter()
            .find(|o| o.name == fit.offering)
            .unwrap()
            .id;
        let template = c.inv.templates[0].id;
        let account = c.inv.accounts.iter().find(|a| a.name == "ops").unwrap().id;
        let zone = c.inv.zones[0].id;
        let mut n = 0;
        let last_refusal = loop {
            match c.deploy_vm(DeploySpec {
                account: Some(account),
                zone: Some(zone),
                offering: Some(offering),
                template: Some(template),
                start: true,
                ..Default::default()
            }) {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
            assert!(n < 100_000);
        };
        assert_eq!(
            n, fit.fits,
            "{}: {:?}; the last deploy: {last_refusal}",
            fit.offering, fit.per_cluster
        );
    }
    report
        .fit_now
        .iter()
        .map(|f| (f.offering.clone(), f.per_cluster.iter().map(|x| x.fits).collect()))
        .collect()
}

#[test]
fn growth_projection_equals_running_the_workload_forward_in_the_simulator() {
    let (base, pct, months) = (12u64, 25.0, 6u32);
    let c0 = cloud(base as u32);
    let mut c = c0.clone();
    let mut scratch = Default::default();
    let g = growth::project(&mut c, pct, months, &mut scratch, &mut |_, _| {});
    assert_eq!(g.start_vms, base);
    // The same growth as workload bursts, one "month" a minute after 10 min.
    let bursts = |upto: u32| {
        let mut extra = String::new();
        for m in 1..=upto {
            let n = growth::target(base, pct, m) - growth::target(base, pct, m - 1);
            extra.push_str(&format!(
                "\n[[workload]]\naccount = \"ops\"\noffering = \"web\"\ntemplate = \"t\"\nnetwork = \"guest\"\narrival = {{ kind = \"burst\", count = {n}, at = \"{}s\" }}\n",
                600 + 60 * m
            ));
        }
        extra
    };
    let mut failed_total = 0;
    for m in 1..=months {
        let s = scenario::parse(
            &lab(&bursts(m), &format!("{}s", 600 + 60 * m + 50), base as u32),
            "lab.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let built = scenario::build(&s).unwrap();
        let mut r = Runner::new(s, built.cloud, &RunOptions::default());
        r.run(&mut |_, _| {});
        let sim = r.engine.ctl.cloud();
        for (cl, cg) in g.clusters.iter().enumerate() {
            let agg = &sim.book.cluster[cl];
            let cpu = whatif::capacity::pct(agg.cpu.fraction_with(0));
            let mem = whatif::capacity::pct(agg.mem.fraction_with(0));
            assert_eq!(
                (cpu, mem),
                (cg.cpu_pct[m as usize], cg.memory_pct[m as usize]),
                "{} month {m}",
                cg.cluster
            );
        }
        let errors = sim.vms().filter(|(_, v)| v.state == VmState::Error).count() as u64;
        failed_total += g.monthly[m as usize - 1].failed;
        assert_eq!(errors, failed_total, "refused deploys by month {m}");
    }
    assert!(g.first_failure_month.is_some(), "this lab fills up: {:?}", g.monthly);
    let c1 = &g.clusters[0];
    assert!(c1.notify_month.is_some() && c1.notify_month <= c1.disable_month.or(Some(months)));
}
