//! Setup of `stratus bench api`: the inventory, the tenant and its keys,
//! built through the signed API as an operator and a tenant would.

use crate::bench_api_http::{Conn, Keys};
use anyhow::Context;
use serde_json::Value;
use std::time::{Duration, Instant};
use stratus::serve::Running;

/// Hosts per Simulator cluster (CloudStack allows 128).
const HOSTS_PER_CLUSTER: u16 = 100;

/// Ids the requests use.
#[derive(Debug)]
pub struct Ids {
    pub zone: String,
    pub offering: String,
    pub template: String,
    /// The tenant's /16 network (startvm=true: addresses for every VM).
    pub network: String,
    pub pagesize: String,
    /// VMs the list phases must see.
    pub vms: usize,
    /// Hosts × `maxguestslimit` of the Simulator hypervisor.
    pub guest_capacity: u64,
}

/// The inventory, the tenant and its keys, all through the API.
pub async fn setup(running: &Running, hosts: u16, pagesize: usize, vms: usize) -> anyhow::Result<(Keys, Ids)> {
    let (key, secret) = stratus_api::bootstrap::ensure_keys(&running.api, running.admin.id())
        .await
        .map_err(|e| anyhow::anyhow!("admin keys: {}", e.text))?;
    let admin = Keys { key, secret };
    let mut c = Conn::new(running.http);
    let id = |v: &Value, path: &[&str]| -> anyhow::Result<String> {
        let mut x = v;
        for p in path {
            x = match p.parse::<usize>() {
                Ok(i) => &x[i],
                Err(_) => &x[*p],
            };
        }
        x.as_str()
            .map(str::to_string)
            .with_context(|| format!("no {} in {v}", path.join(".")))
    };
    let v = c
        .call(
            &admin,
            &[
                ("command", "createZone"),
                ("name", "bench-zone"),
                ("networktype", "Advanced"),
                ("dns1", "8.8.8.8"),
                ("internaldns1", "10.0.0.2"),
                ("guestcidraddress", "10.1.0.0/16"),
            ],
        )
        .await?;
    let zone = id(&v, &["createzoneresponse", "zone", "id"])?;
    let v = c
        .call(
            &admin,
            &[
                ("command", "createPod"),
                ("name", "bench-pod"),
                ("zoneid", &zone),
                ("gateway", "172.16.0.1"),
                ("netmask", "255.255.0.0"),
                ("startip", "172.16.0.10"),
                ("endip", "172.16.255.200"),
            ],
        )
        .await?;
    let pod = id(&v, &["createpodresponse", "pod", "id"])?;
    c.call(
        &admin,
        &[
            ("command", "addImageStore"),
            ("provider", "NFS"),
            ("url", "nfs://192.0.2.11/export/secondary"),
            ("zoneid", &zone),
        ],
    )
    .await?;
    // Clusters of up to HOSTS_PER_CLUSTER hosts, each with its own NFS pool.
    let mut cluster = String::new();
    for h in 1..=hosts {
        let k = (h - 1) / HOSTS_PER_CLUSTER + 1;
        if (h - 1) % HOSTS_PER_CLUSTER == 0 {
            let name = format!("bench-cluster-{k}");
            let params = [
                ("command", "addCluster"),
                ("clustername", name.as_str()),
                ("clustertype", "CloudManaged"),
                ("hypervisor", "Simulator"),
                ("podid", &pod),
                ("zoneid", &zone),
            ];
            let v = c.call(&admin, &params).await?;
            cluster = id(&v, &["addclusterresponse", "cluster", "0", "id"])?;
            let (name, url) = (format!("bench-nfs-{k}"), format!("nfs://192.0.2.10/export/primary{k}"));
            let capacity = (1u64 << 50).to_string();
            let params = [
                ("command", "createStoragePool"),
                ("name", name.as_str()),
                ("url", url.as_str()),
                ("zoneid", &zone),
                ("podid", &pod),
                ("clusterid", &cluster),
                ("capacitybytes", &capacity),
            ];
            c.call(&admin, &params).await?;
        }
        let url = format!("http://sim/bench/h{h}/cpucore=64&memory={}", 512u64 << 30);
        let params = [
            ("command", "addHost"),
            ("hypervisor", "Simulator"),
            ("url", &url),
            ("username", "root"),
            ("password", "unused"),
            ("zoneid", &zone),
            ("podid", &pod),
            ("clusterid", &cluster),
        ];
        c.call(&admin, &params).await?;
    }
    let v = c
        .call(
            &admin,
            &[
                ("command", "createServiceOffering"),
                ("name", "bench-tiny"),
                ("displaytext", "1 vCPU, 256 MB"),
                ("cpunumber", "1"),
                ("cpuspeed", "500"),
                ("memory", "256"),
            ],
        )
        .await?;
    let offering = id(&v, &["createserviceofferingresponse", "serviceoffering", "id"])?;
    let v = c
        .call(&admin, &[("command", "listOsTypes"), ("keyword", "Linux")])
        .await?;
    let os = id(&v, &["listostypesresponse", "ostype", "0", "id"])?;
    let v = c
        .call(
            &admin,
            &[
                ("command", "registerTemplate"),
                ("name", "bench-tpl"),
                ("displaytext", "bench"),
                ("url", "http://example.org/bench.qcow2"),
                ("format", "QCOW2"),
                ("hypervisor", "Simulator"),
                ("ostypeid", &os),
                ("zoneid", &zone),
            ],
        )
        .await?;
    let template = id(&v, &["registertemplateresponse", "template", "0", "id"])?;
    let v = c
        .call(
            &admin,
            &[
                ("command", "createAccount"),
                ("accounttype", "0"),
                ("username", "bench"),
                ("password", "bench-password-1"),
                ("email", "bench@example.org"),
                ("firstname", "Bench"),
                ("lastname", "Tenant"),
                ("account", "bench"),
            ],
        )
        .await?;
    let user = id(&v, &["createaccountresponse", "account", "user", "0", "id"])?;
    let v = c
        .call(&admin, &[("command", "registerUserKeys"), ("id", &user)])
        .await?;
    let tenant = Keys {
        key: id(&v, &["registeruserkeysresponse", "userkeys", "apikey"])?,
        secret: id(&v, &["registeruserkeysresponse", "userkeys", "secretkey"])?,
    };
    let v = c.call(&tenant, &[("command", "listNetworkOfferings")]).await?;
    let offering_id = id(&v, &["listnetworkofferingsresponse", "networkoffering", "0", "id"])?;
    let v = c
        .call(
            &tenant,
            &[
                ("command", "createNetwork"),
                ("name", "bench-net"),
                ("networkofferingid", &offering_id),
                ("zoneid", &zone),
                ("gateway", "10.200.0.1"),
                ("netmask", "255.255.0.0"),
            ],
        )
        .await?;
    let network = id(&v, &["createnetworkresponse", "network", "id"])?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = c.call(&admin, &[("command", "listHosts"), ("zoneid", &zone)]).await?;
        let up = v["listhostsresponse"]["host"]
            .as_array()
            .map_or(0, |hs| hs.iter().filter(|h| h["state"] == "Up").count());
        if up == usize::from(hosts) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {up} of {hosts} simulated hosts came Up in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let v = c
        .call(
            &admin,
            &[("command", "listHypervisorCapabilities"), ("hypervisor", "Simulator")],
        )
        .await?;
    let max_guests = v["listhypervisorcapabilitiesresponse"]["hypervisorCapabilities"][0]["maxguestslimit"]
        .as_u64()
        .with_context(|| format!("no maxguestslimit in {v}"))?;
    let ids = Ids {
        zone,
        offering,
        template,
        network,
        pagesize: pagesize.to_string(),
        vms,
        guest_capacity: u64::from(hosts) * max_guests,
    };
    Ok((tenant, ids))
}
