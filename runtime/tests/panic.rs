//! A panic while the controller handles one input (`Input::PanicForTest`,
//! core feature `test-panic`: the input is applied, then handling panics)
//! does not take the gateway down: the caller gets an internal error, the
//! controller is rebuilt without the input (then `Input::Restart`, as after a
//! crash), the input is never journaled, and the gateway keeps answering.
//!
//! No agent connects, and `ping.interval` is an hour: every call fails at once
//! as unroutable and no timer fires, so the gateway is quiet between requests
//! and its state can be compared exactly.

mod common;

use common::*;
use std::time::Duration;
use stratus_core::CoreError;
use stratus_core::controller::{Controller, Input, JobStatus, Reply, Request};
use stratus_core::settings::Scope;
use stratus_runtime::hosts::{Clock, Gateway, GatewayConfig};
use stratus_runtime::store::Store;
use tokio::sync::oneshot;

fn quiet_lab() -> Lab {
    let mut l = lab(11, 1, 3);
    l.cloud.update_setting("ping.interval", Scope::Global, "3600").unwrap();
    l
}

fn durable(url: &str, snapshot_every: u64) -> GatewayConfig {
    GatewayConfig {
        store_url: Some(url.to_string()),
        snapshot_every,
        clock: Clock::System,
        ..GatewayConfig::new()
    }
}

async fn serve(gw: &Gateway) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = gw.clone();
    tokio::spawn(async move { gw.serve(listener).await });
}

/// Every input applied is durable, and no job is pending.
async fn wait_quiet(gw: &Gateway) {
    for _ in 0..500 {
        let d = gw.durability();
        let pending = gw.with_controller(|c| c.jobs().iter().any(|j| j.status == JobStatus::Pending));
        if d.applied == d.durable && !pending {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the gateway did not settle: {:?}", gw.durability());
}

fn poison(l: &Lab) -> Input {
    let request = l.deploy("poison");
    Input::PanicForTest {
        inner: Box::new(Input::Request { request }),
    }
}

fn assert_internal(reply: Reply) {
    match reply {
        Reply::Job(Err(CoreError::Internal(why))) => assert!(why.contains("test-panic"), "{why}"),
        other => panic!("the poison input's caller gets an internal error, got {other:?}"),
    }
}

fn has_vm(gw: &Gateway, name: &str) -> bool {
    gw.with_controller(|c| c.cloud().vms().any(|(_, v)| v.name == name))
}

/// What the journal holds, decoded.
async fn journal(url: &str) -> Vec<Input> {
    let store = Store::open(url).await.unwrap();
    let entries = store.journal_after(0).await.unwrap();
    store.close().await;
    entries.iter().map(|e| Input::from_bytes(&e.payload).unwrap()).collect()
}

fn deploy_names(inputs: &[Input]) -> Vec<String> {
    inputs
        .iter()
        .filter_map(|i| match i {
            Input::Request {
                request: Request::Deploy(spec),
            } => Some(spec.name.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_gateway_survives_a_panic_and_equals_a_controller_that_never_saw_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gw.db").display());
    let l = quiet_lab();
    let cloud = l.cloud.clone();
    let gw = Gateway::open(move || Controller::new(cloud), durable(&url, 10_000))
        .await
        .unwrap();
    serve(&gw).await;
    for i in 0..5 {
        gw.submit(l.deploy(&format!("a{i}"))).await.unwrap();
    }
    wait_quiet(&gw).await;
    let before = gw.with_controller(|c| c.clone());

    assert_internal(gw.input(poison(&l)).await.unwrap());
    wait_quiet(&gw).await;
    let (after, now) = gw.with_controller(|c| (c.state_hash(), c.now()));
    let mut expected = before.clone();
    expected.handle(now, Input::Restart);
    assert_eq!(
        after,
        expected.state_hash(),
        "rebuilt = never saw the poison input, then Restart"
    );
    assert!(!has_vm(&gw, "poison"));
    let tail = gw.log_tail();
    assert!(
        tail.iter()
            .any(|l| l.contains("gateway.input.panicked") && l.contains("test-panic")),
        "the panic is in the event log"
    );

    // It keeps answering.
    let mut later = Vec::new();
    for i in 0..3 {
        later.push(gw.submit(l.deploy(&format!("b{i}"))).await.unwrap());
    }
    wait_quiet(&gw).await;
    assert!(later.iter().all(|j| gw.with_controller(|c| c.job(*j).is_some())));
    gw.halt();
    let final_hash = gw.with_controller(|c| c.state_hash());

    let inputs = journal(&url).await;
    assert!(
        inputs.iter().all(|i| i.name() != "panic_for_test"),
        "the poison input is not journaled"
    );
    assert_eq!(deploy_names(&inputs), ["a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2"]);
    let restarts = inputs.iter().filter(|i| matches!(i, Input::Restart)).count();
    assert_eq!(restarts, 1, "the rebuild's Restart is journaled");

    let gw = Gateway::open(|| panic!("recovered"), durable(&url, 10_000))
        .await
        .unwrap();
    assert_eq!(
        gw.recovery().unwrap().hash,
        final_hash,
        "the Store recovers the same state"
    );
}

/// Many inputs in flight (some durable, some in the writer's batch, some not
/// yet taken) and snapshots every few inputs: the rebuild starts from the
/// newest snapshot's bytes and replays them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_rebuild_replays_inputs_in_flight_and_after_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gw.db").display());
    let l = quiet_lab();
    let cloud = l.cloud.clone();
    let gw = Gateway::open(move || Controller::new(cloud), durable(&url, 7))
        .await
        .unwrap();
    serve(&gw).await;
    let submit = |name: String| {
        gw.input(Input::Request {
            request: l.deploy(&name),
        })
    };
    let mut names = Vec::new();
    for i in 0..20 {
        names.push(format!("s{i}"));
        assert!(matches!(submit(format!("s{i}")).await.unwrap(), Reply::Job(Ok(_))));
    }
    for _ in 0..500 {
        if gw.durability().snapshots >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut replies: Vec<oneshot::Receiver<Reply>> = Vec::new();
    for i in 0..20 {
        names.push(format!("a{i}"));
        replies.push(submit(format!("a{i}")));
    }
    let poisoned = gw.input(poison(&l));
    for i in 0..40 {
        names.push(format!("b{i}"));
        replies.push(submit(format!("b{i}")));
    }
    assert_internal(poisoned.await.unwrap());
    for rx in replies {
        assert!(matches!(rx.await.unwrap(), Reply::Job(Ok(_))));
    }
    wait_quiet(&gw).await;
    assert!(gw.durability().snapshots >= 1, "{:?}", gw.durability());
    assert!(!has_vm(&gw, "poison"));
    let line = gw
        .log_tail()
        .into_iter()
        .find(|l| l.contains("gateway.input.panicked"))
        .expect("the panic is logged");
    let base: u64 = line
        .split("from input ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(base > 0, "the rebuild starts from a snapshot: {line}");
    let inputs = journal(&url).await;
    gw.halt();
    let final_hash = gw.with_controller(|c| c.state_hash());
    // Every good input once, in order (the journal is truncated behind the
    // older snapshot kept; the recovered hash below covers the rest).
    let vms: Vec<String> = gw.with_controller(|c| c.cloud().vms().map(|(_, v)| v.name.clone()).collect());
    assert_eq!(vms, names);
    let journaled = deploy_names(&inputs);
    assert!(!journaled.is_empty() && names.ends_with(&journaled), "{journaled:?}");
    assert!(inputs.iter().all(|i| i.name() != "panic_for_test"));
    let gw = Gateway::open(|| panic!("recovered"), durable(&url, 7)).await.unwrap();
    assert_eq!(gw.recovery().unwrap().hash, final_hash);
}

/// Without a Store the rebuild starts from an in-memory clone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_without_a_store_survives_a_panic_exactly() {
    let l = quiet_lab();
    let config = GatewayConfig {
        snapshot_every: 4,
        ..GatewayConfig::new()
    };
    let gw = Gateway::new(Controller::new(l.cloud.clone()), config).unwrap();
    serve(&gw).await;
    for i in 0..10 {
        gw.submit(l.deploy(&format!("a{i}"))).await.unwrap();
    }
    let before = gw.with_controller(|c| c.clone());
    assert_internal(gw.input(poison(&l)).await.unwrap());
    let (after, now) = gw.with_controller(|c| (c.state_hash(), c.now()));
    let mut expected = before;
    expected.handle(now, Input::Restart);
    assert_eq!(after, expected.state_hash());
    for i in 0..3 {
        gw.submit(l.deploy(&format!("b{i}"))).await.unwrap();
    }
    assert_eq!(gw.with_controller(|c| c.jobs().len()), 13);
    let audit = gw.with_controller(|c| c.cloud().audit());
    assert!(audit.ok(), "{:?}", audit.violations);
}
