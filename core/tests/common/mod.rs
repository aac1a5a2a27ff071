//! A small lab for core tests: 1 zone, 2 pods, clusters of hosts, NFS pools.
#![allow(dead_code)]

use stratus_core::Cloud;
use stratus_core::cloud::*;
use stratus_core::ids::*;
use stratus_core::inventory::*;
use stratus_core::units::GIB;

pub struct Lab {
    pub cloud: Cloud,
    pub zone: ZoneId,
    pub pods: Vec<PodId>,
    pub clusters: Vec<ClusterId>,
    pub hosts: Vec<HostId>,
    pub pools: Vec<PoolId>,
    pub small: ServiceOfferingId,
    pub big: ServiceOfferingId,
    pub template: TemplateId,
    pub account: AccountId,
}

/// `clusters` clusters of `hosts_per` hosts (4 cores × 2000 MHz, 16 GiB each),
/// first half of clusters in pod p1, rest in p2; one 1 TiB NFS pool per cluster.
pub fn lab(seed: u64, clusters: usize, hosts_per: usize) -> Lab {
    let mut c = Cloud::new(seed);
    let zone = c.add_zone(ZoneSpec::advanced("z1")).unwrap();
    let pods = vec![
        c.add_pod(PodSpec::numbered("p1", zone, 1)).unwrap(),
        c.add_pod(PodSpec::numbered("p2", zone, 2)).unwrap(),
    ];
    let mut cl_ids = Vec::new();
    let mut hosts = Vec::new();
    let mut pools = Vec::new();
    for ci in 0..clusters {
        let pod = pods[if ci < clusters.div_ceil(2) { 0 } else { 1 }];
        let cl = c.add_cluster(&format!("c{}", ci + 1), pod, Hypervisor::Kvm).unwrap();
        for hi in 0..hosts_per {
            hosts.push(
                c.add_host(HostSpec {
                    name: format!("h{}", ci * hosts_per + hi + 1),
                    cluster: cl,
                    cpu_cores: 4,
                    cpu_mhz: 2000,
                    memory_bytes: 16 * GIB,
                    tags: vec![],
                })
                .unwrap(),
            );
        }
        pools.push(
            c.add_pool(PoolSpec {
                name: format!("ps{}", ci + 1),
                zone,
                scope: PoolScopeSpec::Cluster(cl),
                pool_type: PoolType::NetworkFilesystem,
                capacity_bytes: 1024 * GIB,
                tags: vec![],
            })
            .unwrap(),
        );
        cl_ids.push(cl);
    }
    let small = c
        .add_service_offering(ServiceOfferingSpec::fixed("small", 1, 1000, 2048))
        .unwrap();
    let big = c
        .add_service_offering(ServiceOfferingSpec::fixed("big", 2, 2000, 8192))
        .unwrap();
    let template = c
        .add_template(TemplateSpec {
            name: "tiny-linux".into(),
            format: ImageFormat::Qcow2,
            size_bytes: 2 * GIB,
            os_type: "Other Linux (64-bit)".into(),
            hypervisor: Hypervisor::Kvm,
            is_iso: false,
            ready_in: vec![zone],
        })
        .unwrap();
    let account = c.add_account("alice", None, AccountType::User).unwrap();
    Lab {
        cloud: c,
        zone,
        pods,
        clusters: cl_ids,
        hosts,
        pools,
        small,
        big,
        template,
        account,
    }
}

impl Lab {
    pub fn deploy_spec(&self, name: &str, offering: ServiceOfferingId) -> DeploySpec {
        DeploySpec {
            name: name.to_string(),
            account: Some(self.account),
            zone: Some(self.zone),
            offering: Some(offering),
            template: Some(self.template),
            start: true,
            ..Default::default()
        }
    }

    pub fn deploy(&mut self, name: &str, offering: ServiceOfferingId) -> stratus_core::CoreResult<VmId> {
        let spec = self.deploy_spec(name, offering);
        self.cloud.deploy_vm(spec)
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.cloud
            .update_setting(name, stratus_core::settings::Scope::Global, value)
            .unwrap();
    }

    pub fn host_name(&self, id: HostId) -> String {
        let i = self.cloud.inv.find_host(id).unwrap();
        self.cloud.inv.host(i).name.clone()
    }
}
