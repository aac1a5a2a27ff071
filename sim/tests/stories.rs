//! The operations-guide stories shipped as scenario files, and the scenario
//! language that tells them: timeline expectations with the moment they
//! first failed, fault selectors, triggers, mid-run settings, sockets,
//! series and the HTML report, and the warnings of `--strict`.

use std::path::Path;
use stratus_sim::report::RunReport;
use stratus_sim::runner::{RunOptions, Runner};
use stratus_sim::scenario;

fn run_text(text: &str) -> (RunReport, Runner) {
    let s = scenario::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let built = scenario::build(&s).unwrap();
    let name = s.scenario.name.clone();
    let opts = RunOptions {
        keep_log: true,
        ..Default::default()
    };
    let mut r = Runner::new(s, built.cloud, &opts);
    r.run(&mut |_, _| {});
    (RunReport::build(&r, &name, 1, 0.0), r)
}

fn run_file(name: &str) -> (RunReport, Runner) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(name);
    run_text(&std::fs::read_to_string(path).unwrap())
}

fn log(r: &Runner) -> &[String] {
    r.engine.keep_log.as_deref().unwrap_or(&[])
}

#[test]
fn rolling_maintenance_with_a_crash_triggered_by_the_evacuation() {
    let (report, r) = run_file("story-rolling-under-faults.toml");
    assert!(report.passed(), "{}", report.to_text());
    // The crash came from the trigger, 5 s after c1-h2's plan, not a timer.
    let plan = log(&r)
        .iter()
        .find(|l| l.contains("\"maintenance.plan\"") && l.contains("\"c1-h2\""))
        .expect("c1-h2 was planned");
    let crash = log(&r)
        .iter()
        .find(|l| l.contains("\"fault\"") && l.contains("\"c1-h3\""))
        .expect("c1-h3 crashed");
    let t = |l: &str| -> u64 {
        serde_json::from_str::<serde_json::Value>(l).unwrap()["t"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(t(crash), t(plan) + 5_000, "{plan}\n{crash}");
    assert!(report.ha.restarted > 0);
    // c1-h3 was Down at its turn: skipped with the reason, never "evacuated".
    assert!(
        log(&r)
            .iter()
            .any(|l| l.contains("\"c1-h3\"") && l.contains("skipped: host is Down")),
        "no skip line"
    );
    assert!(
        log(&r)
            .iter()
            .any(|l| l.contains("done; skipped (not Up at their turn): c1-h3"))
    );
    assert!(
        !log(&r)
            .iter()
            .any(|l| l.contains("\"host.resourcestate\",\"subject\":\"c1-h3\"") && l.contains("evacuated"))
    );
    // 2 sockets x 10 cores per host.
    assert_eq!(r.engine.ctl.cloud().inv.hosts[0].cpu_cores, 20);
}

#[test]
fn rolling_maintenance_can_wait_for_a_down_host() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/story-rolling-under-faults.toml");
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("post_hook = \"30s\"", "post_hook = \"30s\"\ndown_hosts = \"wait\"");
    let (_, r) = run_text(&text);
    let waited = log(&r)
        .iter()
        .position(|l| l.contains("\"c1-h3\"") && l.contains("waiting: host is Down"))
        .expect("the roll waited for c1-h3");
    let evacuated = log(&r)
        .iter()
        .position(|l| l.contains("\"c1-h3\"") && l.contains("PrepareForMaintenance -> Maintenance: evacuated"))
        .expect("c1-h3 had its turn once Up");
    assert!(evacuated > waited);
    assert!(log(&r).iter().any(|l| l.contains("\"detail\":\"done\"")));
}

#[test]
fn mass_link_loss_takes_no_host_down_and_restarts_nothing() {
    let (report, r) = run_file("story-mass-link-loss.toml");
    assert!(report.passed(), "{}", report.to_text());
    // Every host did lose its link: the per-minute series saw them not Up.
    let worst = r
        .series
        .samples
        .iter()
        .map(|s| s.hosts.get("Up").copied().unwrap_or(0))
        .min()
        .unwrap();
    assert!(worst < 12, "no host ever left Up");
    assert!(r.series.samples.iter().all(|s| !s.hosts.contains_key("Down")));
}

#[test]
fn the_85_percent_story_is_fixed_by_a_mid_run_setting() {
    let (report, r) = run_file("story-85-percent.toml");
    assert!(report.passed(), "{}", report.to_text());
    let refusal = &report.failures[0].first_detail;
    assert!(
        refusal.contains(
            "cpu 68000 MHz of 80000 MHz allocated + 4000 MHz for this VM = 0.9000 of capacity, over cluster.cpu.allocated.capacity.disablethreshold 0.85 (default)"
        ),
        "{refusal}"
    );
    // 17 VMs (0.85) before the change at 2 h, 19 (0.95) after it.
    let at = |t_s: u64| {
        r.series
            .samples
            .iter()
            .find(|s| s.t_s == t_s)
            .map(|s| s.clusters[0].cpu_allocated_mhz)
            .unwrap()
    };
    assert_eq!(at(7_140), 68_000);
    assert_eq!(at(14_400), 76_000);
    assert_eq!(report.clusters[0].cpu_peak, 0.95);
    assert_eq!(report.clusters[0].cpu_allocated_mhz, 76_000);
}

fn base() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/story-mass-link-loss.toml"))
        .unwrap()
}

#[test]
fn timeline_expectations_report_the_moment_they_first_failed() {
    // A hang of all hosts of cl1 at 10m: hosts go Down; the peak limit is
    // already broken by the burst at 0.
    let text = base().replace(
        "[[faults.scheduled]]\nat = \"20m\"\nkind = \"management_network\"\nfor = \"90s\"",
        "[[faults.scheduled]]\nat = \"10m\"\nkind = \"host_hang\"\ncluster = \"cl1\"\nfor = \"5m\"\n\n[[expect]]\nkind = \"peak_allocated_at_most\"\ncluster = \"cl1\"\nresource = \"cpu\"\nmax = 0.2",
    );
    let (report, _) = run_text(&text);
    let never_down = report
        .expectations
        .iter()
        .find(|x| x.expectation == "host_never state=Down")
        .unwrap();
    assert!(!never_down.ok);
    let t = never_down.failed_at_s.unwrap();
    assert!((600.0..700.0).contains(&t), "{never_down:?}");
    assert!(never_down.detail.contains("first failed at"), "{}", never_down.detail);
    assert!(never_down.detail.contains("-> Down"), "{}", never_down.detail);
    let peak = report
        .expectations
        .iter()
        .find(|x| x.expectation.starts_with("peak_allocated_at_most"))
        .unwrap();
    assert!(!peak.ok && peak.failed_at_s.unwrap() < 60.0, "{peak:?}");
    // Every host of the cluster was hit, by one fault line.
    assert!(report.ha.detection_s.is_some());

    // Readable names, never Rust's Debug text.
    for x in &report.expectations {
        assert!(
            !x.expectation.contains('{') && !x.expectation.contains("Duration"),
            "{}",
            x.expectation
        );
    }
    let max_ha = report
        .expectations
        .iter()
        .find(|x| x.expectation == "max_ha_restarts max=0")
        .unwrap();
    assert!(!max_ha.ok, "{max_ha:?}");
    let first_restart = max_ha.failed_at_s.unwrap();
    assert!(first_restart > t, "restarts follow the hang: {max_ha:?}");
    assert!(max_ha.detail.contains("restart 1 came at"), "{}", max_ha.detail);
}

#[test]
fn new_fields_are_validated_with_their_place() {
    let bad = |from: &str, to: &str| {
        scenario::parse(&base().replace(from, to), "b.toml")
            .unwrap_err()
            .to_string()
    };
    let e = bad(
        "kind = \"management_network\"",
        "kind = \"partition\"\ncluster = \"nope\"",
    );
    assert!(
        e.contains("faults.scheduled[0].cluster") && e.contains("unknown cluster 'nope'"),
        "{e}"
    );
    let e = bad("kind = \"management_network\"", "kind = \"partition\"");
    assert!(e.contains("name a host, or select hosts"), "{e}");
    let e = bad("for = \"90s\"", "for = \"1h30\"");
    assert!(e.contains("invalid duration '1h30'"), "{e}");
    let e = bad(
        "[[expect]]\nkind = \"all_vms_running\"",
        "[[triggers]]\nwhen = { host = \"kvm1\", state = \"Sideways\" }\nfault = { kind = \"host_crash\", host = \"kvm2\" }\n\n[[expect]]\nkind = \"all_vms_running\"",
    );
    assert!(
        e.contains("triggers[0].when.state") && e.contains("unknown host state 'Sideways'"),
        "{e}"
    );
    let e = bad(
        "[[expect]]\nkind = \"all_vms_running\"",
        "[[actions]]\nat = \"1m\"\nkind = \"set_setting\"\nname = \"cpu.overprovisioning.factr\"\nvalue = 2\n\n[[expect]]\nkind = \"all_vms_running\"",
    );
    assert!(e.contains("did you mean 'cpu.overprovisioning.factor'"), "{e}");
    // Compound durations and sockets parse.
    let ok = base()
        .replace("for = \"90s\"", "for = \"1m30s\"")
        .replace("count = 12\n", "count = 12\nsockets = 2\n");
    let s = scenario::parse(&ok, "ok.toml").unwrap();
    assert_eq!(s.zones[0].pods[0].clusters[0].hosts[0].sockets, 2);
}

#[test]
fn offerings_that_fit_nothing_are_warned_about() {
    let text = base()
        .replace(
            "[[templates]]",
            "[[offerings]]\nname = \"giant\"\ncpu = 64\nmhz = 2000\nmemory_mb = 524288\n\n[[offerings]]\nname = \"local\"\ncpu = 1\nmhz = 1000\nmemory_mb = 1024\nstorage = \"local\"\n\n[[templates]]",
        );
    let s = scenario::parse(&text, "w.toml").unwrap();
    let w = scenario::advice::warnings(&s);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].contains("offerings[1] (giant): fits no host of zone z1: needs 64 vCPUs, the largest host has 16 cores"),
        "{w:?}"
    );
    assert!(
        w[0].contains("needs 512 GiB of memory, the largest host has 128 GiB"),
        "{w:?}"
    );
    assert!(
        w[1].contains("offerings[2] (local)") && w[1].contains("no host of the zone has any"),
        "{w:?}"
    );
    assert!(scenario::advice::warnings(&scenario::parse(&base(), "ok.toml").unwrap()).is_empty());
}

#[test]
fn series_and_html_report_show_how_allocation_moved() {
    let (report, r) = run_file("story-85-percent.toml");
    let csv = r.series.to_csv();
    let header = csv.lines().next().unwrap();
    assert!(
        header.starts_with("t_s,cl1.cpu_allocated_mhz,cl1.cpu_total_mhz,cl1.cpu_fraction"),
        "{header}"
    );
    assert!(
        header.contains("vms.Running") && header.contains("hosts.Up"),
        "{header}"
    );
    assert_eq!(csv.lines().count(), 1 + 241, "a sample per minute of 4 h, plus t=0");
    let first = r.series.to_json_lines().lines().next().unwrap().to_string();
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["clusters"]["cl1"]["cpu_total_mhz"], 80_000);
    let html = stratus_sim::html::render(&report, &r);
    assert!(html.starts_with("<!doctype html>") && html.contains("<svg"));
    assert!(
        html.contains("cluster.cpu.allocated.capacity.disablethreshold"),
        "threshold drawn"
    );
    assert!(html.contains("85% → 95%"), "the threshold's move is drawn");
    assert!(
        !html.contains("http://")
            || html.matches("http://").count() == html.matches("http://www.w3.org/2000/svg").count()
    );
    assert!(html.contains("deployVirtualMachine"));
}

#[test]
fn the_event_log_names_a_vm_the_same_way_when_its_job_starts_and_ends() {
    // Fixed lifetimes: destroy jobs end after the expunge removed the record.
    let text = base().replace(
        "arrival = { kind = \"burst\", count = 48 }",
        "arrival = { kind = \"burst\", count = 4 }\nlifetime = { kind = \"fixed\", after = \"10m\" }",
    );
    let (_, r) = run_text(&text);
    let jobs: Vec<serde_json::Value> = log(&r)
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "job.done" && v["detail"] == "destroyVirtualMachine")
        .collect();
    assert_eq!(jobs.len(), 4);
    for j in jobs {
        let who = j["subject"].as_str().unwrap();
        assert!(who.starts_with("web-w1-"), "job.done names {who}");
    }
}

#[test]
fn mid_run_actions_change_the_cloud() {
    let text = base()
        .replace(
            "arrival = { kind = \"burst\", count = 48 }",
            "arrival = { kind = \"burst\", count = 4, at = \"10m\" }\n\n[[workload]]\naccount = \"web\"\noffering = \"web-ha\"\ntemplate = \"linux\"\narrival = { kind = \"burst\", count = 2, at = \"25m\" }",
        )
        .replace(
            "[[faults.scheduled]]\nat = \"20m\"\nkind = \"management_network\"\nfor = \"90s\"",
            "[[actions]]\nat = \"5m\"\nkind = \"disable_cluster\"\ncluster = \"cl1\"\n\n[[actions]]\nat = \"20m\"\nkind = \"enable_cluster\"\ncluster = \"cl1\"\n\n[[actions]]\nat = \"21m\"\nkind = \"disable_host\"\nhost = \"kvm1\"\n\n[[actions]]\nat = \"30m\"\nkind = \"add_hosts\"\ncluster = \"cl1\"\nprefix = \"kvm\"\ncount = 2\nsockets = 2\ncores = 8\nmhz = 2600\nmemory_gib = 192\n\n[[actions]]\nat = \"40m\"\nkind = \"register_offering\"\nname = \"late\"\ncpu = 4\nmhz = 2000\nmemory_mb = 8192",
        )
        .replace("[[expect]]\nkind = \"all_vms_running\"\n", "");
    let (report, r) = run_text(&text);
    assert!(report.invariant_violations.is_empty(), "{}", report.to_text());
    let deploys = report
        .failures
        .iter()
        .find(|f| f.command == "deployVirtualMachine")
        .expect("refused");
    assert_eq!(deploys.count, 4, "the 4 VMs of 10m met a disabled cluster");
    assert!(
        deploys.first_detail.contains("cluster cl1: allocation state Disabled"),
        "{}",
        deploys.first_detail
    );
    let c = r.engine.ctl.cloud();
    // The 2 VMs of 25m ran, not on the disabled host.
    let running: Vec<_> = c.vms().filter(|(_, v)| v.state.as_str() == "Running").collect();
    assert_eq!(running.len(), 2);
    assert!(
        running
            .iter()
            .all(|(_, v)| v.host.is_some_and(|h| c.inv.host(h).name != "kvm1"))
    );
    let new: Vec<_> = c
        .inv
        .hosts
        .iter()
        .filter(|h| h.name == "kvm13" || h.name == "kvm14")
        .collect();
    assert_eq!(new.len(), 2);
    assert!(
        new.iter().all(|h| h.cpu_cores == 16 && h.status.as_str() == "Up"),
        "new hosts joined"
    );
    assert!(c.inv.service_offerings.iter().any(|o| o.name == "late"));
}

#[test]
fn the_workload_retries_failed_deploys_per_its_policy() {
    // Every driver call fails for the first 5 minutes; deploys retry every 10 m.
    let text = base()
        .replace(
            "arrival = { kind = \"burst\", count = 48 }",
            "arrival = { kind = \"burst\", count = 3 }\nretry = { attempts = 2, after = \"10m\" }",
        )
        .replace(
            "kind = \"management_network\"\nfor = \"90s\"",
            "kind = \"op_failure_rate\"\nrate = 1.0\nfor = \"5m\"",
        )
        .replace("at = \"20m\"", "at = \"0s\"");
    let (report, r) = run_text(&text);
    assert!(report.passed(), "{}", report.to_text());
    let retries = log(&r).iter().filter(|l| l.contains("workload.retry")).count();
    assert_eq!(retries, 3, "one retry per failed deploy");
    assert_eq!(report.vms_by_state.get("Running"), Some(&3));
    assert_eq!(report.vms_by_state.get("Error"), Some(&3));
}
