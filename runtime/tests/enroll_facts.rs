//! A host's capacity comes from the facts its agent reports at enrollment
//! (over real TCP and TLS), not from what `addHost` was told; the change is a
//! journaled input, so a restarted server keeps it.

mod common;

use common::*;
use std::time::Duration;
use stratus_agent::Agent;
use stratus_core::controller::Controller;
use stratus_core::units::GIB;
use stratus_link::net::TokioConnector;
use stratus_runtime::hosts::{Gateway, GatewayConfig};

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    for _ in 0..500 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// (cores, MHz per core, memory bytes, cluster CPU MHz total) of host `i` as the controller sees it.
fn size(gw: &Gateway, l: &Lab, i: usize) -> (u32, u32, u64, u64, u64) {
    gw.with_controller(|c| {
        let cloud = c.cloud();
        let h = cloud.inv.find_host(l.hosts[i]).unwrap();
        let host = cloud.inv.host(h);
        let cluster = host.cluster;
        (
            host.cpu_cores,
            host.cpu_mhz_per_core,
            host.memory_bytes,
            cloud.book.host[h.ix()].cores.total,
            cloud.book.cluster[cluster.ix()].cores.total,
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_facts_replace_the_added_size() {
    // Two hosts added as 8 cores x 2000 MHz, 32 GiB each.
    let l = lab(7, 1, 2);
    let backend = world_of(&l.cloud, 7);
    let gw = Gateway::new(Controller::new(l.cloud.clone()), GatewayConfig::new()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let serving = gw.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    assert_eq!(size(&gw, &l, 0), (8, 2000, 32 * GIB, 8, 16));

    // h1's agent reports what its hypervisor counts: 2 cores x 2400 MHz, 3 GiB.
    let mut config = l.agent_config(0, &addr, gw.issue_token(l.hosts[0]).unwrap(), 1);
    config.facts.cpu_cores = 2;
    config.facts.cpu_mhz = 2400;
    config.facts.memory_bytes = 3 * GIB;
    let disk = disks(1).remove(0);
    let agent = Agent::new(config, TokioConnector, backend.clone(), disk.clone());
    let running = tokio::spawn(agent.run());
    wait_for("h1's size from its facts", || size(&gw, &l, 0).0 == 2).await;
    assert_eq!(
        size(&gw, &l, 0),
        (2, 2400, 3 * GIB, 2, 10),
        "the host and its cluster's totals follow the facts"
    );
    assert_eq!(size(&gw, &l, 1), (8, 2000, 32 * GIB, 8, 10), "h2 is untouched");
    let audited = gw.with_controller(|c| {
        c.directory()
            .audit
            .iter()
            .any(|e| e.kind == "HOST.UPDATE" && e.description.contains(&l.hosts[0].to_string()))
    });
    assert!(audited, "the change is in the audit trail");

    // An agent that reports its inventory's own size changes nothing.
    let same = Agent::new(
        l.agent_config(1, &addr, gw.issue_token(l.hosts[1]).unwrap(), 2),
        TokioConnector,
        backend.clone(),
        disks(1).remove(0),
    );
    let running2 = tokio::spawn(same.run());
    wait_for("h2 to enroll", || gw.connected().len() == 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(size(&gw, &l, 1), (8, 2000, 32 * GIB, 8, 10));
    let updates = gw.with_controller(|c| c.directory().audit.iter().filter(|e| e.kind == "HOST.UPDATE").count());
    assert_eq!(updates, 1, "only h1's enrollment changed a size");
    running.abort();
    running2.abort();
}
