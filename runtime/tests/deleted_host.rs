//! deleteHost on a durable gateway: the host's agent loses its credentials
//! (the secret it says `hello` with, and any unused enrollment token, in
//! memory and in the Store), its connection is dropped, it cannot come back,
//! and a restart on the same Store still knows neither the host nor its
//! secret. A delete refused by the controller changes nothing.

mod common;

use common::*;
use std::time::Duration;
use stratus_agent::{Agent, AgentError};
use stratus_core::controller::admin::AdminChange;
use stratus_core::controller::{Controller, Input, Reply};
use stratus_core::settings::Scope;
use stratus_link::net::TokioConnector;
use stratus_runtime::hosts::{Clock, Gateway, GatewayConfig};

fn config(url: &str) -> GatewayConfig {
    GatewayConfig {
        store_url: Some(url.to_string()),
        clock: Clock::System,
        ..GatewayConfig::new()
    }
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    for _ in 0..500 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn delete(gw: &Gateway, host: stratus_core::ids::HostId, forced: bool) -> Result<(), String> {
    let input = Input::Admin {
        change: AdminChange::DeleteHost { host, forced },
        by: None,
    };
    match gw.input(input).await.unwrap() {
        Reply::Created(r) => r.map(drop).map_err(|e| e.to_string()),
        other => panic!("unexpected reply {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_hosts_agent_cannot_reconnect_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gw.db").display());
    let mut l = lab(3, 1, 2);
    l.cloud.update_setting("ping.interval", Scope::Global, "1").unwrap();
    let backend = world_of(&l.cloud, 3);
    let cloud = l.cloud.clone();
    let gw = Gateway::open(move || Controller::new(cloud), config(&url))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let serving = gw.clone();
    tokio::spawn(async move { serving.serve(listener).await });

    let h1 = l.hosts[0];
    let token = gw.issue_token_durable(h1).await.unwrap();
    let spare = gw.issue_token_durable(h1).await.unwrap();
    let disk = disks(1).remove(0);
    let mut c = l.agent_config(0, &addr, token, 1);
    c.backoff_initial = Duration::from_millis(50);
    c.backoff_max = Duration::from_millis(200);
    let running = tokio::spawn(Agent::new(c, TokioConnector, backend.clone(), disk.clone()).run());
    wait_for("h1 to enroll", || {
        gw.connected() == vec![h1] && disk.lock().unwrap().is_some()
    })
    .await;

    // Not in maintenance and not forced: refused, nothing changes.
    let e = delete(&gw, h1, false).await.unwrap_err();
    assert!(e.contains("not in maintenance mode"), "{e}");
    assert!(gw.with_controller(|c| c.cloud().inv.find_host(h1).is_some()));
    assert_eq!(gw.connected(), vec![h1]);

    delete(&gw, h1, true).await.unwrap();
    gw.forget_host(h1).await.unwrap();
    assert!(!gw.enrolled().contains(&h1));
    // The running agent is cut off and its hello is refused: it gives up.
    let end = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the agent stops")
        .unwrap();
    match end {
        Err(AgentError::Refused(m)) => assert!(m.contains("unknown host or wrong secret"), "{m}"),
        other => panic!("a deleted host's hello must be refused, got {other:?}"),
    }
    assert!(gw.connected().is_empty());
    // Its unused token is gone too.
    let again = Agent::new(
        l.agent_config(0, &addr, spare.clone(), 2),
        TokioConnector,
        backend.clone(),
        disks(1).remove(0),
    );
    match again.run().await {
        Err(AgentError::Refused(m)) => assert!(m.contains("unknown enrollment token"), "{m}"),
        other => panic!("a deleted host's token must be refused, got {other:?}"),
    }

    // A restart on the same Store: the host and its credentials stay gone.
    gw.halt();
    drop(gw);
    let cloud = l.cloud.clone();
    let gw = Gateway::open(move || Controller::new(cloud), config(&url))
        .await
        .unwrap();
    assert!(gw.with_controller(|c| c.cloud().inv.find_host(h1).is_none()));
    assert!(gw.with_controller(|c| c.cloud().audit().ok()));
    assert!(!gw.enrolled().contains(&h1), "{:?}", gw.enrolled());
    assert!(gw.with_controller(|c| c.cloud().inv.find_host(l.hosts[1]).is_some()));
}
