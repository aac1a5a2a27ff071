//! The durable gateway in one process, on a SQLite file and (when
//! `STRATUS_TEST_POSTGRES_URL` is set) on PostgreSQL: it is halted as a crash
//! would stop it, with jobs in flight, and reopened on the same Store. The
//! controller is recovered (snapshot + journal, checked by hash), the CA and
//! host secrets are kept (agents reconnect with `hello`, no token), every job
//! id that was returned ends, and the ledger matches the world.

mod common;

use common::*;
use std::time::Duration;
use stratus_agent::{Agent, AgentStats};
use stratus_core::controller::{Controller, JobId, JobStatus, Request};
use stratus_core::settings::Scope;
use stratus_core::vm::VmState;
use stratus_link::net::TokioConnector;
use stratus_runtime::hosts::{Clock, Gateway, GatewayConfig};

fn config(url: &str) -> GatewayConfig {
    GatewayConfig {
        store_url: Some(url.to_string()),
        snapshot_every: 40,
        clock: Clock::System,
        ..GatewayConfig::new()
    }
}

async fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    for _ in 0..secs * 50 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn serve(gw: &Gateway, addr: &str) {
    // The previous listener on this port is gone; rebinding may need a moment.
    let mut tries = 0;
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) if tries < 100 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot bind {addr}: {e}"),
        }
    };
    let gw = gw.clone();
    tokio::spawn(async move { gw.serve(listener).await });
}

fn status(gw: &Gateway, job: JobId) -> JobStatus {
    gw.with_controller(|c| c.job(job).map(|j| j.status))
        .expect("a returned job is known")
}

/// The story, on the Store at `url` (empty).
async fn crash_recover_and_reconnect(url: &str) {
    let mut l = lab(7, 1, 3);
    l.cloud.update_setting("ping.interval", Scope::Global, "1").unwrap();
    let backend = world_of(&l.cloud, 7);
    let cloud = l.cloud.clone();
    let gw = Gateway::open(move || Controller::new(cloud), config(url))
        .await
        .unwrap();
    let r = gw.recovery().unwrap();
    assert!(r.fresh && r.new_ca && r.seq == 0 && r.enrolled == 0, "{r:?}");
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    serve(&gw, &addr).await;

    let mut agents = Vec::new();
    let mut stats = Vec::new();
    for (i, disk) in disks(3).into_iter().enumerate() {
        let token = gw.issue_token_durable(l.hosts[i]).await.unwrap();
        let mut c = l.agent_config(i, &addr, token, i as u64);
        c.backoff_initial = Duration::from_millis(50);
        c.backoff_max = Duration::from_millis(300);
        let st = std::sync::Arc::new(AgentStats::default());
        stats.push(st.clone());
        let agent = Agent::new(c, TokioConnector, backend.clone(), disk).with_stats(st);
        agents.push(tokio::spawn(agent.run()));
    }
    wait_for("3 agents", 10, || gw.connected().len() == 3).await;

    // Work, then more work, and a crash while it is in flight.
    let mut jobs = Vec::new();
    for i in 0..9 {
        jobs.push(gw.submit(l.deploy(&format!("vm{i}"))).await.unwrap());
    }
    wait_for("the deploys", 20, || {
        jobs.iter().all(|j| status(&gw, *j) != JobStatus::Pending)
    })
    .await;
    let vms: Vec<_> = jobs
        .iter()
        .map(|j| gw.with_controller(|c| c.job(*j).unwrap().vm.unwrap()))
        .collect();
    for (i, vm) in vms.iter().enumerate() {
        let req = match i % 3 {
            0 => Request::Stop { vm: *vm, forced: false },
            1 => Request::Destroy { vm: *vm, expunge: true },
            _ => l.deploy(&format!("late{i}")),
        };
        jobs.push(gw.submit(req).await.unwrap());
    }
    let before = gw.durability();
    assert!(before.snapshots >= 1, "snapshots are taken: {before:?}");
    let fingerprint = gw.ca_fingerprint();
    gw.halt();
    let halted = gw.durability();
    eprintln!(
        "halted with {} inputs applied, {} durable",
        halted.applied, halted.durable
    );

    // Reopened on the same Store: no initial controller is needed.
    let gw = Gateway::open(|| panic!("a recovered store has its own state"), config(url))
        .await
        .unwrap();
    let r = gw.recovery().unwrap();
    assert!(!r.fresh && !r.new_ca && r.enrolled == 3, "{r:?}");
    assert!(
        r.seq >= halted.durable && r.seq <= halted.applied,
        "{r:?} vs {halted:?}"
    );
    assert!(r.snapshot_seq > 0, "recovery starts from a snapshot: {r:?}");
    assert_eq!(gw.ca_fingerprint(), fingerprint, "the CA is kept");
    serve(&gw, &addr).await;
    wait_for("the agents to say hello", 10, || gw.connected().len() == 3).await;
    assert_eq!(gw.stats().enrollments, 0, "nobody re-enrolls");
    assert!(
        stats
            .iter()
            .all(|s| s.enrollments.load(std::sync::atomic::Ordering::Relaxed) == 1)
    );

    // Jobs end; a VM whose start was in doubt is Unknown until its host's report.
    wait_for("every returned job to end and the VMs to settle", 20, || {
        jobs.iter().all(|j| status(&gw, *j) != JobStatus::Pending)
            && gw.with_controller(|c| c.in_flight() == 0 && c.cloud().vms().all(|(_, v)| v.state != VmState::Unknown))
    })
    .await;
    for j in &jobs {
        gw.with_controller(|c| {
            let job = c.job(*j).unwrap();
            assert!(job.status == JobStatus::Succeeded || job.error.is_some(), "{job:?}");
        });
    }
    let bad = check_invariants(&gw, &backend, &jobs, true);
    assert!(bad.is_empty(), "{bad:?}");
    let census = backend.world.lock().unwrap().census();
    gw.with_controller(|c| {
        let leaks = stratus_sim::census::leaks(&census, c.cloud());
        let missing = stratus_sim::census::missing(&census, c.cloud());
        assert!(leaks.is_empty() && missing.is_empty(), "{leaks:?} {missing:?}");
    });

    // A crash at a quiet moment: the recovered state is exactly the one that ran.
    wait_for("a quiet moment", 10, || {
        let d = gw.durability();
        d.applied == d.durable
    })
    .await;
    gw.halt();
    let (d, hash) = (gw.durability(), gw.with_controller(|c| c.state_hash()));
    let gw = Gateway::open(|| panic!("recovered"), config(url)).await.unwrap();
    let r = gw.recovery().unwrap();
    assert!(r.seq >= d.durable && r.seq <= d.applied, "{r:?} vs {d:?}");
    if r.seq == d.applied {
        assert_eq!(r.hash, hash, "recovered state differs from the one that crashed");
    }
    eprintln!("durability: {d:?}; recovery: {r:?}");
    for a in agents {
        a.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_gateway_recovers_after_a_crash_and_agents_reconnect_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gw.db").display());
    crash_recover_and_reconnect(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gateway_recovers_after_a_crash_and_agents_reconnect_without_tokens() {
    let Ok(base) = std::env::var("STRATUS_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("STRATUS_CI").is_none(),
            "STRATUS_CI is set but STRATUS_TEST_POSTGRES_URL is not"
        );
        eprintln!("postgres gateway test skipped: STRATUS_TEST_POSTGRES_URL unset");
        return;
    };
    let schema = format!(
        "t_gateway_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    crash_recover_and_reconnect(&url).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}
