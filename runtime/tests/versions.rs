//! Protocol version negotiation over real TCP and TLS: the agent lists the
//! versions it speaks at enroll/hello, the server answers with the highest
//! common one (every later line carries it) or refuses, naming both sides'
//! versions, without using up the enrollment token.

mod common;

use common::*;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use stratus_agent::{Agent, AgentError};
use stratus_core::controller::Controller;
use stratus_link::net::{LineReader, TokioConnector};
use stratus_link::tls;
use stratus_runtime::hosts::{Gateway, GatewayConfig};
use stratus_wire::protocol::{AgentMsg, GREETING_VERSION, ServerMsg, decode, encode};
use tokio::io::AsyncWriteExt;

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    for _ in 0..500 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn serve(gw: &Gateway) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let serving = gw.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_and_the_server_agree_on_the_highest_common_version_or_part() {
    let l = lab(2, 1, 3);
    let backend = world_of(&l.cloud, 2);
    let gw = Gateway::new(Controller::new(l.cloud.clone()), GatewayConfig::new()).unwrap();
    let addr = serve(&gw).await;

    // Agreement: an agent that also speaks a (future) version 7 gets 1.
    let mut cfg = l.agent_config(0, &addr, gw.issue_token(l.hosts[0]).unwrap(), 1);
    cfg.versions = vec![1, 7];
    let agent = Agent::new(cfg, TokioConnector, backend.clone(), disks(1).remove(0));
    let stats = agent.stats.clone();
    let first = tokio::spawn(agent.run());
    wait_for("h1 to connect", || {
        gw.connected() == vec![l.hosts[0]] && stats.protocol_version.load(Relaxed) == 1
    })
    .await;

    // Refusal: an agent that speaks only version 9 is told both sides' versions.
    let token = gw.issue_token(l.hosts[1]).unwrap();
    let mut cfg = l.agent_config(1, &addr, token.clone(), 2);
    cfg.versions = vec![9];
    match Agent::new(cfg, TokioConnector, backend.clone(), disks(1).remove(0))
        .run()
        .await
    {
        Err(AgentError::Refused(m)) => assert_eq!(
            m,
            "no common protocol version: the agent speaks [9], this server speaks [1]"
        ),
        other => panic!("an agent with no common version must be refused, got {other:?}"),
    }
    assert_eq!(gw.stats().refused, 1);
    // The refusal did not use up the token: an agent that speaks 1 enrolls with it.
    let agent = Agent::new(
        l.agent_config(1, &addr, token, 3),
        TokioConnector,
        backend.clone(),
        disks(1).remove(0),
    );
    let second = tokio::spawn(agent.run());
    wait_for("h2 to connect", || gw.connected().len() == 2).await;
    first.abort();
    second.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_after_the_greeting_carries_the_agreed_version() {
    let l = lab(3, 1, 2);
    let mut config = GatewayConfig::new();
    config.versions = vec![1, 2]; // as if this server also spoke a version 2
    let gw = Gateway::new(Controller::new(l.cloud.clone()), config).unwrap();
    let addr = serve(&gw).await;
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let s = tls::agent_connector(gw.ca_fingerprint())
        .unwrap()
        .connect(tls::server_name(), tcp)
        .await
        .unwrap();
    let (r, mut w) = tokio::io::split(s);
    let mut r = LineReader::new(r);
    let mut next = async || {
        let line = tokio::time::timeout(Duration::from_secs(5), r.next_line())
            .await
            .expect("an answer in time")
            .unwrap()
            .expect("a line");
        String::from_utf8(line).unwrap()
    };
    let enroll = AgentMsg::Enroll {
        token: gw.issue_token(l.hosts[0]).unwrap(),
        host_name: "h1".into(),
        facts: l.facts(0),
        versions: vec![2, 3],
    };
    w.write_all(&encode(GREETING_VERSION, &enroll)).await.unwrap();
    let greeting = next().await;
    let host_id = match decode::<ServerMsg>(greeting.as_bytes(), GREETING_VERSION).unwrap() {
        ServerMsg::Enrolled { version, host_id, .. } => {
            assert_eq!(version, 2, "the highest common version");
            host_id
        }
        other => panic!("expected enrollment, got {other:?}"),
    };
    let resync = next().await;
    assert!(resync.starts_with("{\"v\":2,\"type\":\"resync\""), "{resync}");
    // A line in version 1 is now refused; one in version 2 is answered.
    w.write_all(&encode(1, &AgentMsg::Heartbeat { host_id, seq: 1 }))
        .await
        .unwrap();
    match decode::<ServerMsg>(next().await.as_bytes(), 2).unwrap() {
        ServerMsg::Error { message } => assert!(message.contains("version 1 (expected 2)"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }
    w.write_all(&encode(2, &AgentMsg::Heartbeat { host_id, seq: 2 }))
        .await
        .unwrap();
    assert_eq!(
        decode::<ServerMsg>(next().await.as_bytes(), 2).unwrap(),
        ServerMsg::Pong { seq: 2 }
    );
}
