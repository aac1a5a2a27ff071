//! The management server survives `kill -9` in the middle of its work.
//!
//! `stratus manage` runs on a SQLite file, the simulated datacenter in its own
//! process (`stratus agent --sim-world`, so it outlives the manager). Four
//! clients submit 1,000 jobs through the control socket — deploys, then a mix
//! of stops, starts and destroys — and the manager is killed with SIGKILL once
//! 400 were accepted, with jobs in flight, then restarted on the same database
//! while the clients keep going. In the end:
//! - every job id ever returned answers, and is Succeeded or Failed with a reason;
//! - capacity reconciles (`Cloud::audit` clean, addresses = VMs holding one) and
//!   the ledger hash is stable (twice over a quiet second, and again after a
//!   second `kill -9` when the ledger is rebuilt from the database here);
//! - nothing is orphaned: no domain, NIC port, volume or snapshot in the world
//!   that the ledger does not know, and nothing the ledger counts on missing.

mod support;

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stratus_core::cloud::DeploySpec;
use stratus_core::controller::journal::InputJournal;
use stratus_core::controller::{JobStatus, Request};
use stratus_core::ids::*;
use stratus_sim::agent_world::WorldStatus;
use support::*;

const JOBS: usize = 1000;
const KILL_AFTER: usize = 400;
const CLIENTS: usize = 4;
/// VMs each client keeps alive (it deploys a new one when one is destroyed).
const VMS_PER_CLIENT: usize = 30;

const SCENARIO: &str = r#"
[scenario]
name = "kill9"
seed = 9
duration = "1h"

[settings]
"expunge.interval" = 2

[[zones]]
name = "z1"
network_type = "Advanced"
guest_cidr = "10.9.0.0/16"

[[zones.image_stores]]
name = "secondary"
url = "nfs://192.0.2.9/secondary"
capacity_gib = 4096

[[zones.pods]]
name = "pod1"
gateway = "172.16.9.1"
netmask = "255.255.255.0"
start_ip = "172.16.9.10"
end_ip = "172.16.9.250"

[[zones.pods.clusters]]
name = "cluster1"
hypervisor = "KVM"

[[zones.pods.clusters.hosts]]
prefix = "kvm"
count = 4
cores = 64
mhz = 3000
memory_gib = 256

[[zones.pods.clusters.pools]]
name = "primary"
type = "nfs"
capacity_gib = 65536

[[offerings]]
name = "tiny"
cpu = 1
mhz = 500
memory_mb = 256

[[templates]]
name = "tiny-linux"
size_gib = 1
format = "QCOW2"
os_type = "Other Linux (64-bit)"
hypervisor = "KVM"

[[accounts]]
name = "durable"
"#;

struct Ids {
    account: AccountId,
    zone: ZoneId,
    offering: ServiceOfferingId,
    template: TemplateId,
}

/// Everything the clients share.
struct Shared {
    admin: String,
    ids: Ids,
    /// Job ids returned by the manager, in order.
    accepted: Mutex<Vec<String>>,
    count: AtomicUsize,
    /// Submissions under way or accepted (never more than `JOBS`).
    reserved: AtomicUsize,
    /// Answers lost to the crash (the request may or may not have been taken).
    lost: AtomicUsize,
    refused: AtomicUsize,
    done: AtomicBool,
}

#[derive(Default)]
struct Vm {
    id: Option<String>,
    /// The job working on it now (not yet seen terminal).
    job: Option<String>,
    state: String,
}

/// One client: keeps `VMS_PER_CLIENT` VMs and works them until enough jobs were accepted.
fn client(n: usize, sh: Arc<Shared>) {
    let mut rng = stratus_core::rng::DetRng::new(n as u64 + 1);
    let mut vms: Vec<Vm> = Vec::new();
    let mut made = 0;
    let mut admin: Option<Admin> = None;
    while !sh.done.load(Ordering::SeqCst) {
        let Some(a) = admin.as_mut() else {
            admin = Admin::connect(&sh.admin, Duration::from_secs(30));
            assert!(admin.is_some(), "client {n}: the manager did not come back");
            continue;
        };
        // Learn how the jobs in flight ended (one read for all of them).
        let watching: Vec<usize> = (0..vms.len()).filter(|i| vms[*i].job.is_some()).collect();
        let jobs: Vec<String> = watching.iter().map(|i| vms[*i].job.clone().unwrap()).collect();
        let mut broken = false;
        match a.job_statuses(&jobs) {
            Ok(list) => {
                for (i, s) in watching.into_iter().zip(list) {
                    assert!(s.get("error").is_none() || s.get("status").is_some(), "client {n}: {s}");
                    if s["status"] != "Pending" {
                        let vm = &mut vms[i];
                        vm.id = s["vm"].as_str().map(String::from).or(vm.id.take());
                        vm.state = s["vm_state"].as_str().unwrap_or("Expunged").to_string();
                        vm.job = None;
                    }
                }
            }
            Err(_) => broken = true,
        }
        // Expunged, or destroyed with the expunge retried by the manager itself.
        vms.retain(|v| !(v.job.is_none() && matches!(v.state.as_str(), "Expunged" | "Destroyed" | "Expunging")));
        if broken {
            admin = None;
            continue;
        }
        if sh.reserved.fetch_add(1, Ordering::SeqCst) >= JOBS {
            sh.reserved.fetch_sub(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        // One new job: a deploy while short of VMs, else an operation on an idle VM.
        let (slot, req) = if vms.len() < VMS_PER_CLIENT {
            made += 1;
            vms.push(Vm::default());
            let spec = DeploySpec {
                name: format!("c{n}-vm{made}"),
                account: Some(sh.ids.account),
                zone: Some(sh.ids.zone),
                offering: Some(sh.ids.offering),
                template: Some(sh.ids.template),
                start: true,
                ..Default::default()
            };
            (vms.len() - 1, Request::Deploy(spec))
        } else {
            let idle: Vec<usize> = (0..vms.len()).filter(|i| vms[*i].job.is_none()).collect();
            if idle.is_empty() {
                sh.reserved.fetch_sub(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            let i = idle[rng.below(idle.len())];
            let vm = VmId(vms[i].id.as_deref().unwrap().parse().unwrap());
            let r = rng.below(10);
            let req = match vms[i].state.as_str() {
                "Running" if r < 6 => Request::Stop { vm, forced: false },
                "Stopped" if r < 7 => Request::Start { vm, host: None },
                "Running" | "Stopped" | "Error" => Request::Destroy { vm, expunge: true },
                _ => {
                    sh.reserved.fetch_sub(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            (i, req)
        };
        match a.call(&json!({ "submit": req })) {
            Ok(v) if v.get("job").is_some() => {
                let job = v["job"].as_str().unwrap().to_string();
                vms[slot].job = Some(job.clone());
                sh.accepted.lock().unwrap().push(job);
                if sh.count.fetch_add(1, Ordering::SeqCst) + 1 >= JOBS {
                    sh.done.store(true, Ordering::SeqCst);
                }
            }
            Ok(_refused) => {
                sh.reserved.fetch_sub(1, Ordering::SeqCst);
                sh.refused.fetch_add(1, Ordering::Relaxed);
                if vms[slot].id.is_none() {
                    vms.pop();
                }
            }
            Err(_) => {
                // The answer was lost with the manager: that VM's fate is unknown.
                sh.reserved.fetch_sub(1, Ordering::SeqCst);
                sh.lost.fetch_add(1, Ordering::Relaxed);
                vms.swap_remove(slot);
                admin = None;
            }
        }
    }
}

fn manage(dir: &Path, db: &str, listen: &str, admin: &str, n: u32) -> Proc {
    let args: Vec<String> = [
        "manage",
        "--scenario",
        dir.join("kill9.toml").to_str().unwrap(),
        "--db",
        db,
        "--listen",
        listen,
        "--admin-listen",
        admin,
        "--token-file",
        dir.join("tokens.json").to_str().unwrap(),
        "--snapshot-every",
        "2000",
    ]
    .map(String::from)
    .to_vec();
    Proc::start(dir, &format!("manage-{n}"), &args)
}

fn world_status(dir: &Path) -> WorldStatus {
    let text = std::fs::read_to_string(dir.join("world.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_default()
}

fn count(v: &Value, key: &str) -> u64 {
    v[key]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
}

#[test]
fn kill_9_mid_flight_loses_no_job_and_orphans_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", tmp.path().join("stratus.db").display());
    kill9_story(tmp.path(), &db);
}

/// The same on PostgreSQL, when `STRATUS_TEST_POSTGRES_URL` is set (in a schema of its own).
#[test]
fn kill_9_mid_flight_on_postgres_loses_no_job_and_orphans_nothing() {
    support::with_postgres_schema("kill9", |db| {
        let tmp = tempfile::tempdir().unwrap();
        kill9_story(tmp.path(), db);
    });
}

fn kill9_story(dir: &Path, db: &str) {
    let started = Instant::now();
    std::fs::write(dir.join("kill9.toml"), SCENARIO).unwrap();
    let scenario = stratus_sim::scenario::parse(SCENARIO, "kill9.toml").unwrap();
    let names = stratus_sim::scenario::build(&scenario).unwrap().names;
    let ids = Ids {
        account: names.accounts["durable"],
        zone: names.zones["z1"],
        offering: names.offerings["tiny"],
        template: names.templates["tiny-linux"],
    };
    let (listen, admin) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );

    let mut ms = manage(dir, db, &listen, &admin, 1);
    wait_until("the token file", Duration::from_secs(20), || {
        dir.join("tokens.json").exists()
    });
    let world_args: Vec<String> = [
        "agent",
        "--sim-world",
        dir.join("kill9.toml").to_str().unwrap(),
        "--server",
        &listen,
        "--token-file",
        dir.join("tokens.json").to_str().unwrap(),
        "--status-file",
        dir.join("world.json").to_str().unwrap(),
        "--status-every-ms",
        "100",
        "--latency-ms",
        "5-60",
    ]
    .map(String::from)
    .to_vec();
    let mut world = Proc::start(dir, "world", &world_args);
    let mut a = Admin::connect(&admin, Duration::from_secs(20)).expect("the control socket");
    wait_until("4 agents to enroll", Duration::from_secs(20), || {
        a.summary().unwrap()["connected"] == 4
    });

    let sh = Arc::new(Shared {
        admin: admin.clone(),
        ids,
        accepted: Mutex::new(Vec::new()),
        count: AtomicUsize::new(0),
        reserved: AtomicUsize::new(0),
        lost: AtomicUsize::new(0),
        refused: AtomicUsize::new(0),
        done: AtomicBool::new(false),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let sh = sh.clone();
            std::thread::spawn(move || client(n, sh))
        })
        .collect();

    // kill -9 with jobs in flight, and restart on the same database.
    wait_until("400 accepted jobs", Duration::from_secs(40), || {
        sh.count.load(Ordering::SeqCst) >= KILL_AFTER
    });
    let before = a.summary();
    ms.kill9();
    let killed_at = Instant::now();
    let in_flight = before.map_or(0, |s| s["jobs"]["Pending"].as_u64().unwrap_or(0));
    let accepted_before_kill = sh.count.load(Ordering::SeqCst);
    let mut ms = manage(dir, db, &listen, &admin, 2);
    let mut a = Admin::connect(&admin, Duration::from_secs(20)).expect("the restarted control socket");
    let back = killed_at.elapsed();
    wait_until("the agents to come back", Duration::from_secs(20), || {
        a.summary().unwrap()["connected"] == 4
    });
    let reconnected = killed_at.elapsed();
    let log2 = ms.log();
    assert!(log2.contains("recovered state"), "the restart recovers:\n{log2}");
    assert!(log2.contains("4 hosts enrolled"), "no agent re-enrolls:\n{log2}");
    let tokens: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("tokens.json")).unwrap()).unwrap();
    assert_eq!(tokens["tokens"], json!({}), "no host needs a token after the restart");

    for c in clients {
        c.join().unwrap();
    }
    let accepted = sh.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), JOBS);
    assert_eq!(
        accepted.iter().collect::<BTreeSet<_>>().len(),
        JOBS,
        "job ids are unique"
    );

    // Every job ever returned answers and ends.
    let mut statuses: BTreeMap<String, Value> = BTreeMap::new();
    wait_until("every job to end", Duration::from_secs(60), || {
        let open: Vec<String> = accepted
            .iter()
            .filter(|id| statuses.get(*id).is_none_or(|s| s["status"] == "Pending"))
            .cloned()
            .collect();
        for (id, s) in open.iter().zip(a.job_statuses(&open).unwrap()) {
            assert!(
                s.get("status").is_some(),
                "a returned job id does not answer: {id}: {s}"
            );
            statuses.insert(id.clone(), s);
        }
        statuses.values().all(|s| s["status"] != "Pending")
    });
    let mut failed_reasons: BTreeMap<String, u32> = BTreeMap::new();
    for (id, s) in &statuses {
        match s["status"].as_str().unwrap() {
            "Succeeded" => {}
            "Failed" => {
                let why = s["error"]
                    .as_str()
                    .unwrap_or_else(|| panic!("job {id} failed without a reason: {s}"));
                *failed_reasons.entry(why.chars().take(60).collect()).or_insert(0) += 1;
            }
            other => panic!("job {id} is {other}"),
        }
    }

    // Quiet: nothing in flight, no VM between states, the world stops changing.
    wait_until("the cloud to settle", Duration::from_secs(30), || {
        let s = a.summary().unwrap();
        let vms = &s["vms"];
        let busy = ["Starting", "Stopping", "Migrating", "Destroyed", "Expunging", "Unknown"]
            .iter()
            .any(|st| vms[st].as_u64().unwrap_or(0) > 0);
        s["sagas_in_flight"] == 0 && s["jobs"]["Pending"].as_u64().unwrap_or(0) == 0 && !busy
    });
    let s1 = a.summary().unwrap();
    let w1 = world_status(dir);
    std::thread::sleep(Duration::from_millis(1000));
    let s2 = a.summary().unwrap();
    let w2 = world_status(dir);
    assert_eq!(s2["audit"], json!([]), "capacity reconciles: {}", s2["audit"]);
    assert_eq!(s2["addresses"], s2["vms_with_address"], "no address leaked: {s2}");
    assert_eq!(s1["ledger_hash"], s2["ledger_hash"], "the ledger is stable at rest");
    // Quiet: nothing changes the world (a late heartbeat may start a lease read).
    let changes = |w: &WorldStatus| w.census.calls - w.census.probes;
    assert_eq!(changes(&w1), changes(&w2), "the world is quiet");
    assert_eq!(w1.census.hosts, w2.census.hosts, "no domain or port moved at rest");
    ms.assert_alive();
    world.assert_alive();

    // Once more: kill -9 and rebuild the ledger from the database right here.
    ms.kill9();
    let (ctl, seq) = stratus_runtime::StoreJournal::open(db).unwrap().recover().unwrap();
    assert_eq!(
        json!(stratus_runtime::admin::ledger_hash(&ctl)),
        s2["ledger_hash"],
        "the recovered ledger is the one that was running"
    );
    assert!(ctl.cloud().audit().ok(), "{:?}", ctl.cloud().audit().violations);
    for id in &accepted {
        let job = ctl.job(stratus_core::controller::JobId(id.parse().unwrap()));
        let job = job.unwrap_or_else(|| panic!("job {id} is not in the recovered ledger"));
        assert_ne!(job.status, JobStatus::Pending, "job {id}");
        assert!(job.status == JobStatus::Succeeded || job.error.is_some(), "job {id}");
    }
    let census = world_status(dir).census;
    let leaks = stratus_sim::census::leaks(&census, ctl.cloud());
    let missing = stratus_sim::census::missing(&census, ctl.cloud());
    let ledger_view: Vec<String> = ctl
        .cloud()
        .vms()
        .filter(|(_, v)| leaks.iter().any(|l| l.contains(&v.id.to_string())))
        .map(|(_, v)| format!("{} {:?} {:?} host {:?}", v.id, v.state, v.charge, v.host))
        .collect();
    let leftovers: Vec<String> = ctl.leftovers().map(|l| format!("{l:?}")).collect();
    assert!(
        leaks.is_empty(),
        "orphans in the world: {leaks:#?}\nledger: {ledger_view:#?}\nleftovers: {leftovers:#?}"
    );
    assert!(
        missing.is_empty(),
        "the ledger counts on what the world lacks: {missing:#?}"
    );
    assert_eq!(census.duplicates, 0, "no VM ever ran twice");

    let vms = count(&s2, "vms");
    let recovered = log2.lines().find(|l| l.starts_with("recovered state")).unwrap_or("");
    eprintln!(
        "kill9: restart: {recovered}; write-ahead at the end: {}",
        s2["durability"]
    );
    eprintln!(
        "kill9 on {}: {JOBS} jobs ({} before the kill, {in_flight} pending at the kill), {} answers lost, {} refused; \
         manager back in {:.2} s, agents in {:.2} s; {} VMs at the end ({}); {} inputs recovered; \
         failed: {failed_reasons:?}; {:.1} s in all",
        db.split(':').next().unwrap_or("?"),
        accepted_before_kill,
        sh.lost.load(Ordering::Relaxed),
        sh.refused.load(Ordering::Relaxed),
        back.as_secs_f64(),
        reconnected.as_secs_f64(),
        vms,
        s2["vms"],
        seq,
        started.elapsed().as_secs_f64()
    );
    drop(world);
}
