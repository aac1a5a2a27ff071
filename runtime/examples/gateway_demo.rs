//! A management gateway over a small lab (one cluster of three hosts, h1..h3),
//! kept in memory only, for trying `stratus agent --sim` by hand (`stratus
//! manage` is the durable server over a scenario):
//!
//! ```text
//! cargo run -p stratus-runtime --example gateway_demo -- 127.0.0.1:8250
//! stratus agent --sim --server 127.0.0.1:8250 --name h1 --token <printed token>
//! ```
//!
//! It prints one enrollment token per host, deploys a VM once h1 is
//! connected, and prints the hosts' states every few seconds.

use std::time::Duration;
use stratus_core::Cloud;
use stratus_core::cloud::*;
use stratus_core::controller::{Controller, Request};
use stratus_core::inventory::*;
use stratus_core::units::GIB;
use stratus_runtime::hosts::{Gateway, GatewayConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8250".into());
    let mut c = Cloud::new(1);
    let zone = c.add_zone(ZoneSpec::advanced("z1"))?;
    let pod = c.add_pod(PodSpec::numbered("p1", zone, 1))?;
    let cl = c.add_cluster("c1", pod, Hypervisor::Kvm)?;
    let mut hosts = Vec::new();
    for i in 1..=3 {
        hosts.push(c.add_host(HostSpec {
            name: format!("h{i}"),
            cluster: cl,
            cpu_cores: 8,
            cpu_mhz: 2000,
            memory_bytes: 32 * GIB,
            tags: vec![],
        })?);
    }
    c.add_pool(PoolSpec {
        name: "ps1".into(),
        zone,
        scope: PoolScopeSpec::Cluster(cl),
        pool_type: PoolType::NetworkFilesystem,
        capacity_bytes: 1024 * GIB,
        tags: vec![],
    })?;
    let offering = c.add_service_offering(ServiceOfferingSpec::fixed("small", 1, 1000, 1024))?;
    let template = c.add_template(TemplateSpec {
        name: "tiny".into(),
        format: ImageFormat::Qcow2,
        size_bytes: 2 * GIB,
        os_type: "Linux".into(),
        hypervisor: Hypervisor::Kvm,
        is_iso: false,
        ready_in: vec![zone],
    })?;
    let account = c.add_account("alice", None, AccountType::User)?;
    let gw = Gateway::new(Controller::new(c), GatewayConfig::new())?;
    for (i, h) in hosts.iter().enumerate() {
        println!("h{}: {}", i + 1, gw.issue_token(*h)?);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("listening on {addr}");
        let serving = gw.clone();
        tokio::spawn(async move { serving.serve(listener).await });
        let mut deployed = false;
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            if !deployed && gw.connected().contains(&hosts[0]) {
                deployed = true;
                let spec = DeploySpec {
                    name: "demo-vm".into(),
                    account: Some(account),
                    zone: Some(zone),
                    offering: Some(offering),
                    template: Some(template),
                    start: false,
                    ..Default::default()
                };
                let job = gw.submit(Request::Deploy(spec)).await;
                println!("deploy: {job:?}");
                if let Some(vm) = job
                    .ok()
                    .and_then(|j| gw.with_controller(|c| c.job(j).and_then(|j| j.vm)))
                {
                    let start = Request::Start {
                        vm,
                        host: Some(hosts[0]),
                    };
                    println!("start on h1: {:?}", gw.submit(start).await);
                }
            }
            gw.with_controller(|ctl| {
                let states: Vec<String> = ctl
                    .cloud()
                    .inv
                    .hosts
                    .iter()
                    .map(|h| format!("{} {}", h.name, h.status))
                    .collect();
                let vms: Vec<String> = ctl
                    .cloud()
                    .vms()
                    .map(|(_, v)| format!("{} {:?}", v.name, v.state))
                    .collect();
                println!("hosts: {}; vms: {}", states.join(", "), vms.join(", "));
            });
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    })?;
    Ok(())
}
