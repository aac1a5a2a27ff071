//! The agent and the gateway over real TCP and TLS on 127.0.0.1: enrollment,
//! one-time tokens, refusals, malformed input, and a deploy end to end.

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;
use stratus_agent::{Agent, AgentError};
use stratus_core::controller::{Controller, JobStatus, Request};
use stratus_link::net::{LineReader, TokioConnector};
use stratus_link::tls;
use stratus_link::token::EnrollToken;
use stratus_runtime::hosts::{Gateway, GatewayConfig, SecretSource};
use stratus_wire::protocol::{AgentMsg, MAX_LINE_BYTES, ServerMsg, decode, encode};
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

/// Prints the gateway's log if the test fails.
struct Dump(Box<dyn Fn() -> String>);
impl Drop for Dump {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("gateway log:\n{}", (self.0)());
        }
    }
}

type TlsStream = stratus_link::tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

type Raw = (
    LineReader<tokio::io::ReadHalf<TlsStream>>,
    tokio::io::WriteHalf<TlsStream>,
);

/// A hand-driven TLS client that trusts the gateway's CA.
async fn raw(addr: &str, pin: [u8; 32]) -> Raw {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let s = tls::agent_connector(pin)
        .unwrap()
        .connect(tls::server_name(), tcp)
        .await
        .unwrap();
    let (r, w) = tokio::io::split(s);
    (LineReader::new(r), w)
}

async fn next(r: &mut Raw) -> ServerMsg {
    let line = tokio::time::timeout(Duration::from_secs(5), r.0.next_line())
        .await
        .expect("an answer in time")
        .unwrap()
        .expect("a line");
    decode(&line, 1).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_refusals_malformed_input_and_a_deploy_over_tcp() {
    let mut l = lab(1, 1, 3);
    l.cloud
        .update_setting("ping.interval", stratus_core::settings::Scope::Global, "1")
        .unwrap();
    let backend = world_of(&l.cloud, 1);
    let gw = Gateway::new(Controller::new(l.cloud.clone()), GatewayConfig::new()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let serving = gw.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    let pin = gw.ca_fingerprint();

    // Enrollment works; the agent keeps its credentials.
    let token = gw.issue_token(l.hosts[0]).unwrap();
    let disk = disks(1).remove(0);
    let agent = Agent::new(
        l.agent_config(0, &addr, token.clone(), 1),
        TokioConnector,
        backend.clone(),
        disk.clone(),
    );
    let stats = agent.stats.clone();
    let running = tokio::spawn(agent.run());
    wait_for("h1 to enroll", || {
        gw.connected() == vec![l.hosts[0]] && disk.lock().unwrap().is_some()
    })
    .await;
    let creds = disk.lock().unwrap().clone().expect("credentials after enrollment");
    assert_eq!(creds.host_id, l.hosts[0]);
    assert_eq!(creds.ca_fingerprint, tls::hex(&pin));
    assert_eq!(gw.facts(l.hosts[0]).unwrap().cpu_cores, 8);
    assert_eq!(stats.enrollments.load(std::sync::atomic::Ordering::Relaxed), 1);

    // The token is one-time.
    let again = Agent::new(
        l.agent_config(0, &addr, token, 2),
        TokioConnector,
        backend.clone(),
        disks(1).remove(0),
    );
    match again.run().await {
        Err(AgentError::Refused(m)) => assert!(m.contains("already used"), "{m}"),
        other => panic!("a reused token must be refused, got {other:?}"),
    }

    // A token the server never issued (right CA, unknown secret).
    let forged = EnrollToken {
        ca_fingerprint: pin,
        secret: SecretSource::os().secret(),
    };
    let bad = Agent::new(
        l.agent_config(1, &addr, forged.to_string(), 3),
        TokioConnector,
        backend.clone(),
        disks(1).remove(0),
    );
    match bad.run().await {
        Err(AgentError::Refused(m)) => assert!(m.contains("unknown enrollment token"), "{m}"),
        other => panic!("a forged token must be refused, got {other:?}"),
    }

    // A valid token for h2 used by an agent calling itself h3.
    let t2 = gw.issue_token(l.hosts[1]).unwrap();
    let liar = Agent::new(
        l.agent_config(2, &addr, t2.clone(), 4),
        TokioConnector,
        backend.clone(),
        disks(1).remove(0),
    );
    match liar.run().await {
        Err(AgentError::Refused(m)) => assert!(m.contains("issued for host h2"), "{m}"),
        other => panic!("a token for another host must be refused, got {other:?}"),
    }

    // A token pinning another CA: the TLS handshake fails, nothing is sent.
    let mut wrong = EnrollToken::parse(&t2).unwrap();
    wrong.ca_fingerprint[0] ^= 1;
    let mitm = Agent::new(
        l.agent_config(1, &addr, wrong.to_string(), 5),
        TokioConnector,
        backend.clone(),
        disks(1).remove(0),
    );
    match mitm.run().await {
        Err(AgentError::Tls(m)) => assert!(m.contains("pinned fingerprint"), "{m}"),
        other => panic!("a server with another CA must be refused, got {other:?}"),
    }
    assert!(matches!(
        Agent::new(
            l.agent_config(1, &addr, "stratus1.nope".into(), 6),
            TokioConnector,
            backend.clone(),
            disks(1).remove(0)
        )
        .run()
        .await,
        Err(AgentError::Config(_))
    ));

    // Malformed input before authentication: an error line, then the gateway
    // closes that connection and carries on.
    let mut r = raw(&addr, pin).await;
    r.1.write_all(b"this is not json\n").await.unwrap();
    match next(&mut r).await {
        ServerMsg::Error { message } => assert!(message.contains("malformed"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }
    let mut r = raw(&addr, pin).await;
    r.1.write_all(&encode(
        1,
        &AgentMsg::Heartbeat {
            host_id: l.hosts[0],
            seq: 1,
        },
    ))
    .await
    .unwrap();
    assert!(matches!(next(&mut r).await, ServerMsg::Error { .. }));
    let mut r = raw(&addr, pin).await;
    r.1.write_all(&vec![b'x'; MAX_LINE_BYTES + 2]).await.unwrap();
    match next(&mut r).await {
        ServerMsg::Error { message } => assert!(message.contains("too long"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }

    // After authentication a malformed line gets an error and the session goes on.
    let mut r = raw(&addr, pin).await;
    r.1.write_all(&encode(
        1,
        &AgentMsg::Enroll {
            token: t2,
            host_name: "h2".into(),
            facts: l.facts(1),
            versions: vec![1],
        },
    ))
    .await
    .unwrap();
    let h2 = match next(&mut r).await {
        ServerMsg::Enrolled { host_id, .. } => host_id,
        other => panic!("expected enrollment, got {other:?}"),
    };
    assert!(matches!(next(&mut r).await, ServerMsg::Resync { .. }));
    r.1.write_all(b"{\"v\":1,\"type\":\"reply\",\"req_id\":\"x\"}\n")
        .await
        .unwrap();
    assert!(matches!(next(&mut r).await, ServerMsg::Error { .. }));
    r.1.write_all(b"{\"v\":7,\"type\":\"heartbeat\"}\n").await.unwrap();
    match next(&mut r).await {
        ServerMsg::Error { message } => assert!(message.contains("version 7"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }
    r.1.write_all(&encode(1, &AgentMsg::Heartbeat { host_id: h2, seq: 9 }))
        .await
        .unwrap();
    assert_eq!(next(&mut r).await, ServerMsg::Pong { seq: 9 });
    assert_eq!(gw.stats().malformed, 4);
    drop(r);
    wait_for("h2's connection to close", || gw.connected() == vec![l.hosts[0]]).await;

    // End to end: a VM deployed through the gateway runs on h1's agent.
    // (Deploy ignores DeploySpec.host today, so: deploy stopped, then start on h1.)
    let Request::Deploy(mut spec) = l.deploy("vm1") else {
        unreachable!()
    };
    spec.start = false;
    let created = gw.submit(Request::Deploy(spec)).await.unwrap();
    let vm = gw.with_controller(|c| c.job(created).unwrap().vm.unwrap());
    let job = gw
        .submit(Request::Start {
            vm,
            host: Some(l.hosts[0]),
        })
        .await
        .unwrap();
    let g = gw.clone();
    let _dump = Dump(Box::new(move || g.log_tail().join("\n")));
    wait_for("the deploy", || {
        gw.with_controller(|c| c.job(job).is_some_and(|j| j.status != JobStatus::Pending))
    })
    .await;
    let j = gw.with_controller(|c| c.job(job).cloned()).unwrap();
    assert_eq!(j.status, JobStatus::Succeeded, "{:?}", j.error);
    assert_eq!(backend.world.lock().unwrap().running_copies.get(&vm), Some(&1));
    assert_eq!(
        check_invariants(&gw, &backend, &[created, job], true),
        Vec::<String>::new()
    );
    assert!(!running.is_finished(), "the enrolled agent keeps running");
    running.abort();
    let _ = Arc::strong_count(&backend);
}
