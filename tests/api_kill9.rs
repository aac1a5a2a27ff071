//! `stratus serve` survives `kill -9` in the middle of 200 concurrent deploys
//! over HTTP.
//!
//! The server runs as a child process on a SQLite file (and PostgreSQL when
//! `STRATUS_TEST_POSTGRES_URL` is set); a zone is built over HTTP with signed
//! requests, then a user fires 200 `deployVirtualMachine` (and a few
//! `associateIpAddress`) at once. Once 50 job ids came back, with jobs still
//! pending, the server is killed with SIGKILL — its simulated hosts die with
//! it and come back from their state file — and restarted on the same
//! database and port. Then:
//! - every job id ever returned answers `queryAsyncJobResult` and ends
//!   (jobstatus 1 or 2, a failure with its code and text) within a bound;
//! - a VM whose deploy succeeded is Running, or Stopped when its hosts lost it
//!   (counted and printed), never anything else;
//! - nothing is orphaned: the controller's view over HTTP (listVirtualMachines,
//!   listVolumes, listPublicIpAddresses) and the simulated world (the fleet's
//!   state file, `<db>.simhosts.json`) agree both ways, and so does the ledger
//!   rebuilt from the database after a second `kill -9` (`sim::census`);
//! - capacity reconciles: listCapacity's allocated CPU and memory equal the sum
//!   over the VMs the `Charge` model counts (Running, plus Stopped ones still
//!   reserved on their last host), and `Cloud::audit` is clean.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stratus_core::controller::journal::InputJournal;
use stratus_core::vm::{Charge, VmState};
use stratus_sim::census::WorldCensus;
use support::cs::{Cs, session_keys};
use support::{Proc, free_port, wait_until};

const DEPLOYS: usize = 200;
const IPS: usize = 8;
const KILL_AFTER: usize = 50;
/// VMs already Running when the server is killed.
const RUNNING_AT_KILL: u64 = 30;
/// Deploys start this far apart.
const STAGGER: Duration = Duration::from_millis(3);
const PASSWORD: &str = "kill9-admin-password-1";
/// Five hosts of 8 × 2000 MHz and 16 GiB take 160 VMs of 500 MHz / 256 MiB:
/// some deploys fail for capacity, so failed jobs are in the story too.
const HOSTS: usize = 5;
const HOST_URL: &str = "cpucore=8&cpuspeed=2000&memory=17179869184";

fn serve(dir: &Path, db: &str, fleet: &Path, port: u16, n: u32) -> Proc {
    let args = [
        "serve",
        "--db",
        db,
        "--fleet-file",
        fleet.to_str().unwrap(),
        "--port",
        &port.to_string(),
        "--admin-password",
        PASSWORD,
        "--latency",
        "20-120",
    ]
    .map(String::from);
    let mut p = Proc::start(dir, &format!("serve-{n}"), &args);
    wait_until("the API to listen", Duration::from_secs(60), || {
        p.assert_alive();
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    p
}

/// What the simulated hosts hold, from the fleet's state file.
fn world(fleet: &Path) -> Option<WorldCensus> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(fleet).ok()?).ok()?;
    let w: stratus_sim::world::World = serde_json::from_value(v["world"].clone()).ok()?;
    Some(w.census())
}

struct Zone {
    zone: String,
    user: Cs,
    offering: String,
    template: String,
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
}

/// The zone `cs_flow.py` builds, over HTTP as the admin, and a user with keys.
fn build_zone(admin: &Cs) -> Zone {
    let zone = s(&admin.ok(&[
        ("command", "createZone"),
        ("name", "k9-zone"),
        ("networktype", "Advanced"),
        ("dns1", "8.8.8.8"),
        ("internaldns1", "10.0.0.2"),
        ("guestcidraddress", "10.20.0.0/16"),
    ])["zone"]["id"]);
    let pod = s(&admin.ok(&[
        ("command", "createPod"),
        ("name", "k9-pod"),
        ("zoneid", &zone),
        ("gateway", "172.16.30.1"),
        ("netmask", "255.255.255.0"),
        ("startip", "172.16.30.10"),
        ("endip", "172.16.30.200"),
    ])["pod"]["id"]);
    let cluster = s(&admin.ok(&[
        ("command", "addCluster"),
        ("clustername", "k9-cluster"),
        ("clustertype", "CloudManaged"),
        ("hypervisor", "Simulator"),
        ("podid", &pod),
        ("zoneid", &zone),
    ])["cluster"][0]["id"]);
    for i in 0..HOSTS {
        let url = format!("http://sim/k9/h{i}/{HOST_URL}");
        admin.ok(&[
            ("command", "addHost"),
            ("hypervisor", "Simulator"),
            ("url", &url),
            ("username", "root"),
            ("password", "unused"),
            ("zoneid", &zone),
            ("podid", &pod),
            ("clusterid", &cluster),
        ]);
    }
    admin.ok(&[
        ("command", "createStoragePool"),
        ("name", "k9-nfs"),
        ("url", "nfs://192.0.2.30/export/primary"),
        ("zoneid", &zone),
        ("podid", &pod),
        ("clusterid", &cluster),
    ]);
    admin.ok(&[
        ("command", "addImageStore"),
        ("provider", "NFS"),
        ("url", "nfs://192.0.2.31/export/secondary"),
        ("zoneid", &zone),
    ]);
    admin.ok(&[
        ("command", "createVlanIpRange"),
        ("zoneid", &zone),
        ("forvirtualnetwork", "true"),
        ("gateway", "198.51.100.1"),
        ("netmask", "255.255.255.0"),
        ("startip", "198.51.100.10"),
        ("endip", "198.51.100.40"),
    ]);
    wait_until("the hosts to be Up", Duration::from_secs(30), || {
        let hosts = admin.list(&[("command", "listHosts"), ("zoneid", &zone)], "host");
        hosts.len() == HOSTS && hosts.iter().all(|h| h["state"] == "Up")
    });
    let offering = s(&admin.ok(&[
        ("command", "createServiceOffering"),
        ("name", "k9-small"),
        ("displaytext", "1 vCPU, 256 MiB"),
        ("cpunumber", "1"),
        ("cpuspeed", "500"),
        ("memory", "256"),
    ])["serviceoffering"]["id"]);
    let ostype = s(&admin.list(&[("command", "listOsTypes"), ("keyword", "Linux")], "ostype")[0]["id"]);
    let template = s(&admin.ok(&[
        ("command", "registerTemplate"),
        ("name", "k9-tiny"),
        ("displaytext", "tiny"),
        ("url", "http://example.org/tiny.qcow2"),
        ("format", "QCOW2"),
        ("hypervisor", "Simulator"),
        ("ostypeid", &ostype),
        ("zoneid", &zone),
    ])["template"][0]["id"]);
    wait_until("the template to be ready", Duration::from_secs(30), || {
        let t = admin.list(
            &[
                ("command", "listTemplates"),
                ("templatefilter", "all"),
                ("id", &template),
                ("zoneid", &zone),
            ],
            "template",
        );
        t.first().is_some_and(|t| t["isready"] == true)
    });
    let account = admin.ok(&[
        ("command", "createAccount"),
        ("accounttype", "0"),
        ("username", "kim"),
        ("password", "kim-pass-1"),
        ("email", "kim@example.org"),
        ("firstname", "Kim"),
        ("lastname", "Nine"),
        ("account", "kim-acct"),
    ]);
    let uid = s(&account["account"]["user"][0]["id"]);
    let keys = admin.ok(&[("command", "registerUserKeys"), ("id", &uid)]);
    let user = Cs {
        addr: admin.addr.clone(),
        key: s(&keys["userkeys"]["apikey"]),
        secret: s(&keys["userkeys"]["secretkey"]),
    };
    Zone {
        zone,
        user,
        offering,
        template,
    }
}

/// One request of the storm and what came of it.
#[derive(Debug)]
enum Sent {
    /// Accepted: the entity's id and the job's.
    Job {
        name: String,
        id: String,
        job: String,
    },
    Refused(u16, Value),
    /// No answer: the server died with the request (it may have been taken).
    Lost,
    /// Not sent: the server was down (connection refused).
    Down,
}

#[test]
fn api_kill_9_mid_deploys_loses_no_job_and_orphans_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", tmp.path().join("api.db").display());
    story(tmp.path(), &db);
}

/// The same on PostgreSQL, when `STRATUS_TEST_POSTGRES_URL` is set (in a schema of its own).
#[test]
fn api_kill_9_mid_deploys_on_postgres() {
    support::with_postgres_schema("api_kill9", |db| {
        let tmp = tempfile::tempdir().unwrap();
        story(tmp.path(), db);
    });
}

fn story(dir: &Path, db: &str) {
    let started = Instant::now();
    let fleet: PathBuf = dir.join("fleet.simhosts.json");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = serve(dir, db, &fleet, port, 1);
    let admin = session_keys(&addr, "admin", PASSWORD);
    let z = build_zone(&admin);
    let built = started.elapsed();

    // The storm: every request on its own thread and connection, all at once.
    let accepted = Arc::new(AtomicUsize::new(0));
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let threads: Vec<_> = (0..IPS + DEPLOYS)
        .map(|i| {
            let (user, accepted, sent) = (z.user.clone(), accepted.clone(), sent.clone());
            let (zone, offering, template) = (z.zone.clone(), z.offering.clone(), z.template.clone());
            std::thread::spawn(move || {
                let (name, answer, key) = if i < IPS {
                    let params = [("command", "associateIpAddress"), ("zoneid", zone.as_str())];
                    (format!("ip-{i}"), user.call(&params), "associateipaddressresponse")
                } else {
                    // Spread over ~0.6 s, so some end before the kill and some after.
                    let d = i - IPS;
                    std::thread::sleep(STAGGER * d as u32);
                    let name = format!("k9-{d:03}");
                    let params = [
                        ("command", "deployVirtualMachine"),
                        ("zoneid", zone.as_str()),
                        ("serviceofferingid", offering.as_str()),
                        ("templateid", template.as_str()),
                        ("name", name.as_str()),
                    ];
                    let answer = user.call(&params);
                    (name, answer, "deployvirtualmachineresponse")
                };
                let outcome = match answer {
                    Ok((200, v)) => {
                        accepted.fetch_add(1, Ordering::SeqCst);
                        let r = &v[key];
                        Sent::Job {
                            name,
                            id: s(&r["id"]),
                            job: s(&r["jobid"]),
                        }
                    }
                    Ok((st, v)) => Sent::Refused(st, v),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Sent::Down,
                    Err(_) => Sent::Lost,
                };
                sent.lock().unwrap().push(outcome);
            })
        })
        .collect();

    // kill -9 once enough ids came back and some VMs already run.
    let storm = Instant::now();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < until, "timed out waiting for job ids and running VMs");
        if accepted.load(Ordering::SeqCst) >= KILL_AFTER {
            let ps = [("command", "listVirtualMachines"), ("state", "Running")];
            if z.user
                .call(&ps)
                .is_ok_and(|(_, v)| v["listvirtualmachinesresponse"]["count"].as_u64() >= Some(RUNNING_AT_KILL))
            {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill9();
    let killed_at = Instant::now();
    let accepted_at_kill = accepted.load(Ordering::SeqCst);
    // What the hosts come back with: their state file as the kill left it.
    let at_kill = world(&fleet).expect("the fleet's state file");
    for t in threads {
        t.join().unwrap();
    }
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    let jobs: Vec<(&str, &str, &str)> = sent
        .iter()
        .filter_map(|o| match o {
            Sent::Job { name, id, job } => Some((name.as_str(), id.as_str(), job.as_str())),
            _ => None,
        })
        .collect();
    let lost = sent.iter().filter(|o| matches!(o, Sent::Lost)).count();
    let down = sent.iter().filter(|o| matches!(o, Sent::Down)).count();
    for o in &sent {
        if let Sent::Refused(st, v) = o {
            panic!("a request was refused before the kill: {st} {v}");
        }
    }
    assert_eq!(jobs.len() + lost + down, DEPLOYS + IPS);

    // Restart on the same database and port.
    let mut server = serve(dir, db, &fleet, port, 2);
    let back = killed_at.elapsed();
    wait_until("the restart to say it recovered", Duration::from_secs(10), || {
        server.log().contains("(recovered)")
    });

    // Every job id ever returned answers, and ends.
    let mut status: BTreeMap<&str, Value> = BTreeMap::new();
    wait_until("every returned job to end", Duration::from_secs(45), || {
        for (_, _, job) in &jobs {
            if status.get(job).is_some_and(|r| r["jobstatus"] != 0) {
                continue;
            }
            let (st, v) = z
                .user
                .call(&[("command", "queryAsyncJobResult"), ("jobid", job)])
                .unwrap();
            let r = &v["queryasyncjobresultresponse"];
            assert!(
                st == 200 && r["jobstatus"].is_i64(),
                "job {job} does not answer: {st} {v}"
            );
            status.insert(job, r.clone());
        }
        status.values().all(|r| r["jobstatus"] != 0)
    });
    let ended = killed_at.elapsed();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    // Jobs the restart found in flight (returned before the kill, still running).
    let interrupted = status
        .values()
        .filter(|r| {
            r["jobresult"]["errortext"]
                .as_str()
                .is_some_and(|t| t.contains("restarted"))
        })
        .count();
    assert!(interrupted > 0, "no job was in flight at the kill");
    for (job, r) in &status {
        match r["jobstatus"].as_i64() {
            Some(1) => assert_eq!(r["jobresultcode"], 0, "job {job}: {r}"),
            Some(2) => {
                let code = r["jobresultcode"].as_i64().unwrap_or(0);
                let text = r["jobresult"]["errortext"].as_str().unwrap_or("");
                assert!(
                    code >= 400 && !text.is_empty(),
                    "job {job} failed without a reason: {r}"
                );
                let why: String = text.chars().take(48).collect();
                *failures.entry(format!("{code} {why}")).or_default() += 1;
            }
            _ => panic!("job {job}: {r}"),
        }
    }

    // At rest: no VM between states, and the world stops changing.
    let busy = ["Starting", "Stopping", "Migrating", "Expunging", "Unknown"];
    let all_vms = || {
        admin.list(
            &[("command", "listVirtualMachines"), ("listall", "true")],
            "virtualmachine",
        )
    };
    wait_until("the VMs to settle", Duration::from_secs(30), || {
        all_vms()
            .iter()
            .all(|v| !busy.contains(&v["state"].as_str().unwrap_or("")))
    });
    let mut last = world(&fleet);
    wait_until("the world to be quiet", Duration::from_secs(10), || {
        std::thread::sleep(Duration::from_millis(500));
        let now = world(&fleet);
        let same = now.as_ref().map(|w| (&w.hosts, &w.pools)) == last.as_ref().map(|w| (&w.hosts, &w.pools));
        last = now;
        same
    });
    let census = last.expect("the fleet's state file");
    let vms = all_vms();
    let volumes = admin.list(&[("command", "listVolumes"), ("listall", "true")], "volume");
    let ips = admin.list(
        &[
            ("command", "listPublicIpAddresses"),
            ("listall", "true"),
            ("allocatedonly", "true"),
        ],
        "publicipaddress",
    );
    let capacity = admin.list(&[("command", "listCapacity"), ("zoneid", &z.zone)], "capacity");
    server.assert_alive();

    // What the storm made, and how it ended.
    let by_id: BTreeMap<&str, &Value> = vms.iter().map(|v| (v["id"].as_str().unwrap(), v)).collect();
    let (mut stopped_by_hosts, mut in_doubt) = (0, 0);
    for (name, id, job) in &jobs {
        let r = &status[job];
        if !name.starts_with("k9-") {
            continue;
        }
        let state = by_id.get(id).map(|v| v["state"].as_str().unwrap_or(""));
        match (r["jobstatus"].as_i64(), state) {
            (Some(1), Some("Running")) => {}
            (Some(1), Some("Stopped")) => stopped_by_hosts += 1,
            (Some(2), Some("Error") | None) => {}
            // StartDomain was in flight at the kill: the job failed, the VM was
            // held Unknown and settled by its host's report (documented).
            (Some(2), Some("Running" | "Stopped"))
                if r["jobresult"]["errortext"]
                    .as_str()
                    .is_some_and(|t| t.contains("held as Unknown")) =>
            {
                in_doubt += 1
            }
            (st, state) => panic!("VM {name} ({id}): job status {st:?} but the VM is {state:?}: {r}"),
        }
    }
    // What ran when the server died runs still: the restart stops nothing.
    let ran: Vec<String> = at_kill
        .hosts
        .values()
        .flat_map(|h| h.domains.iter().filter(|(_, up)| **up).map(|(vm, _)| vm.0.to_string()))
        .collect();
    for id in &ran {
        let state = by_id.get(id.as_str()).map(|v| &v["state"]);
        assert!(
            state.is_some_and(|s| s == "Running"),
            "VM {id} ran at the kill, now {state:?}"
        );
    }
    let networks = z.user.list(&[("command", "listNetworks")], "network");
    assert_eq!(networks.len(), 1, "one default network for the account: {networks:#?}");
    let names: BTreeSet<String> = (0..DEPLOYS).map(|i| format!("k9-{i:03}")).collect();
    for v in &vms {
        assert!(
            names.contains(v["name"].as_str().unwrap_or("")),
            "a VM nobody asked for: {v}"
        );
    }
    let problems = compare(&vms, &volumes, &census);
    assert!(
        problems.is_empty(),
        "the controller and the world disagree: {problems:#?}"
    );
    check_ips(&ips, &jobs, &status, lost);

    // Rebuild the ledger from the database after a second kill -9.
    server.kill9();
    assert!(!server.log().contains("panicked"), "{}", server.log());
    let (ctl, seq) = stratus_runtime::StoreJournal::open(db).unwrap().recover().unwrap();
    let cloud = ctl.cloud();
    assert!(cloud.audit().ok(), "{:?}", cloud.audit().violations);
    for (_, _, job) in &jobs {
        let j = ctl.job(stratus_core::controller::JobId(job.parse().unwrap()));
        assert!(
            j.is_some_and(|j| j.status != stratus_core::controller::JobStatus::Pending),
            "job {job}"
        );
    }
    let leaks = stratus_sim::census::leaks(&census, cloud);
    let missing = stratus_sim::census::missing(&census, cloud);
    assert!(leaks.is_empty(), "orphans in the world: {leaks:#?}");
    assert!(
        missing.is_empty(),
        "the ledger counts on what the world lacks: {missing:#?}"
    );
    assert_eq!(census.duplicates, 0, "no VM ever ran twice");
    assert_eq!(cloud.vms().count(), vms.len(), "the API listed every VM of the ledger");

    // Capacity: listCapacity = Σ Running VMs + Σ Stopped VMs still reserved.
    let reserved: BTreeSet<String> = cloud
        .vms()
        .filter(|(_, v)| v.state == VmState::Stopped && matches!(v.charge, Charge::Reserved { .. }))
        .map(|(_, v)| v.id.0.to_string())
        .collect();
    let (mut mhz, mut mem) = (0i64, 0i64);
    for v in &vms {
        if v["state"] == "Running" || reserved.contains(v["id"].as_str().unwrap()) {
            mhz += v["cpunumber"].as_i64().unwrap() * v["cpuspeed"].as_i64().unwrap();
            mem += v["memory"].as_i64().unwrap() << 20;
        }
    }
    let row = |name: &str| {
        let r = capacity.iter().find(|r| r["name"] == name).unwrap();
        r["capacityused"].as_i64().unwrap()
    };
    assert_eq!(row("CPU"), mhz, "CPU allocated = Σ of the VMs that hold it");
    assert_eq!(row("MEMORY"), mem, "memory allocated = Σ of the VMs that hold it");

    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for v in &vms {
        *states.entry(v["state"].as_str().unwrap_or("?")).or_default() += 1;
    }
    eprintln!(
        "api kill9 on {}: zone built in {:.1} s; {} requests, {accepted_at_kill} job ids at the kill \
         ({interrupted} interrupted by it), {} ids in all, {lost} answers lost in flight, {down} not sent (server down); back in {:.2} s, \
         killed {:.2} s into the storm, every job ended {:.2} s after the kill; {} VMs ran at the kill; VMs {states:?} ({stopped_by_hosts} succeeded but \
         lost by their hosts, left Stopped; {in_doubt} settled from Unknown); {} Stopped VMs reserved; CPU {mhz} MHz, memory {} MiB \
         allocated; {} domains, {} volumes in the world; {seq} inputs recovered; failures {failures:?}; \
         {:.1} s in all",
        db.split(':').next().unwrap_or("?"),
        built.as_secs_f64(),
        DEPLOYS + IPS,
        jobs.len(),
        back.as_secs_f64(),
        (killed_at - storm).as_secs_f64(),
        ended.as_secs_f64(),
        ran.len(),
        reserved.len(),
        mem >> 20,
        census.hosts.values().map(|h| h.domains.len()).sum::<usize>(),
        census.pools.values().map(|p| p.volumes.len()).sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
}

/// The controller over HTTP against the world, both ways.
fn compare(vms: &[Value], volumes: &[Value], w: &WorldCensus) -> Vec<String> {
    let mut out = Vec::new();
    let vm = |id: &str| vms.iter().find(|v| v["id"] == id);
    let mac = |v: &Value| v["nic"][0]["macaddress"].as_str().unwrap_or("").to_string();
    // The world holds nothing the controller does not list there.
    for (hid, h) in &w.hosts {
        let hid = hid.0.to_string();
        for (id, running) in &h.domains {
            let v = vm(&id.0.to_string());
            if !(*running && v.is_some_and(|v| v["state"] == "Running" && v["hostid"] == hid.as_str())) {
                out.push(format!(
                    "domain {id} (running {running}) on {}: the API says {v:?}",
                    h.name
                ));
            }
        }
        for (id, m) in &h.ports {
            let v = vm(&id.0.to_string());
            if !v.is_some_and(|v| v["state"] == "Running" && v["hostid"] == hid.as_str() && mac(v) == m.to_string()) {
                out.push(format!("port {m} of {id} on {}: the API says {v:?}", h.name));
            }
        }
    }
    for (pid, p) in &w.pools {
        for id in &p.volumes {
            let listed = volumes
                .iter()
                .any(|v| v["id"] == id.0.to_string().as_str() && v["storageid"] == pid.0.to_string().as_str());
            if !listed {
                out.push(format!("volume {id} on {} is not listed there", p.name));
            }
        }
    }
    // What the controller runs is there: the domain, its port, its root volume.
    for v in vms.iter().filter(|v| v["state"] == "Running") {
        let (id, host) = (v["id"].as_str().unwrap(), v["hostid"].as_str().unwrap_or(""));
        let runs_on: Vec<&str> = w
            .hosts
            .iter()
            .filter(|(_, h)| h.domains.iter().any(|(d, up)| *up && d.0.to_string() == id))
            .map(|(_, h)| h.name.as_str())
            .collect();
        let on_host = w.hosts.iter().find(|(hid, _)| hid.0.to_string() == host);
        if runs_on.len() != 1 || on_host.is_none_or(|(_, h)| !h.domains.keys().any(|d| d.0.to_string() == id)) {
            out.push(format!("VM {} is Running on {host} but runs on {runs_on:?}", v["name"]));
        }
        if on_host.is_none_or(|(_, h)| {
            !h.ports
                .iter()
                .any(|(d, m)| d.0.to_string() == id && m.to_string() == mac(v))
        }) {
            out.push(format!("VM {} is Running without its port", v["name"]));
        }
        for vol in volumes.iter().filter(|x| x["virtualmachineid"] == id) {
            let on_pool = w.pools.iter().any(|(pid, p)| {
                vol["storageid"] == pid.0.to_string().as_str()
                    && p.volumes.iter().any(|x| vol["id"] == x.0.to_string().as_str())
            });
            if !on_pool {
                out.push(format!(
                    "volume {} of Running VM {} is not on its pool",
                    vol["id"], v["name"]
                ));
            }
        }
    }
    out
}

/// Public addresses: each one a job handed out is allocated, once; no more
/// are allocated than were asked for (answers lost to the kill included).
fn check_ips(ips: &[Value], jobs: &[(&str, &str, &str)], status: &BTreeMap<&str, Value>, lost: usize) {
    let listed: BTreeSet<&str> = ips.iter().filter_map(|i| i["id"].as_str()).collect();
    let addresses: BTreeSet<&str> = ips.iter().filter_map(|i| i["ipaddress"].as_str()).collect();
    assert_eq!(addresses.len(), ips.len(), "an address given twice: {ips:#?}");
    let mut asked = 0;
    for (name, id, job) in jobs {
        if !name.starts_with("ip-") {
            continue;
        }
        asked += 1;
        assert_eq!(status[job]["jobstatus"], 1, "{}", status[job]);
        assert!(
            listed.contains(id),
            "public IP {id} of a succeeded job is not allocated"
        );
    }
    assert!(
        ips.len() <= asked + lost,
        "{} addresses allocated for {asked} answered requests",
        ips.len()
    );
}
