//! Properties of the allocator on random datacenter states:
//! a chosen host satisfies every hard constraint (checked independently here),
//! `explain` agrees with `place`, and a refusal accounts for every host.

mod common;

use proptest::prelude::*;
use stratus_core::allocator::Verdict;
use stratus_core::cloud::ServiceOfferingSpec;
use stratus_core::inventory::*;

fn algorithm() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("random"),
        Just("firstfit"),
        Just("userdispersing"),
        Just("userconcentratedpod_random"),
        Just("userconcentratedpod_firstfit"),
        Just("firstfitleastconsumed")
    ]
}

fn planner() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("FirstFitPlanner"),
        Just("UserDispersingPlanner"),
        Just("UserConcentratedPodPlanner")
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn placements_respect_constraints_and_refusals_cover_every_host(
        seed in 0u64..1000,
        algo in algorithm(),
        plan in planner(),
        preload in proptest::collection::vec((0..12usize, 0..3usize), 0..40),
        down in proptest::collection::vec(0..12usize, 0..4),
        tagged in proptest::collection::vec(0..12usize, 0..4),
        want_tag in any::<bool>(),
        size in 0..3usize,
    ) {
        let mut l = common::lab(seed, 4, 3);
        l.set("vm.allocation.algorithm", algo);
        l.set("vm.deployment.planner", plan);
        let mut gpu = ServiceOfferingSpec::fixed("gpu", 2, 1500, 4096);
        gpu.host_tags = vec!["gpu".into()];
        let offerings = [l.small, l.big, l.cloud.add_service_offering(gpu).unwrap()];
        for (n, (h, o)) in preload.iter().enumerate() {
            let mut s = l.deploy_spec(&format!("pre-{n}"), offerings[*o % 2]);
            s.host = Some(l.hosts[*h]);
            let _ = l.cloud.deploy_vm(s);
        }
        for h in &tagged {
            let hi = l.cloud.host_idx(l.hosts[*h]).unwrap();
            let t = l.cloud.inv.tags.intern("gpu");
            let mut tags: Vec<TagId> = l.cloud.inv.host(hi).tags.iter().collect();
            tags.push(t);
            l.cloud.inv.host_mut(hi).tags = TagSet::new(tags);
        }
        for h in &down {
            l.cloud.set_host_status(l.hosts[*h], HostStatus::Down).unwrap();
        }
        let offering = if want_tag { offerings[2] } else { offerings[size % 2] };
        let spec = l.deploy_spec("probe", offering);
        let probe = l.cloud.deploy_vm(DeployProbe::stopped(spec)).unwrap();
        let vi = l.cloud.vm_index(probe).unwrap();
        let req = l.cloud.request_for(vi);
        let explained = l.cloud.explain(&req);
        match l.cloud.place(&req) {
            Ok(p) => {
                prop_assert!(explained.placed);
                prop_assert_eq!(explained.hostid, Some(l.cloud.inv.host(p.host).id));
                let host = l.cloud.inv.host(p.host);
                prop_assert_eq!(host.status, HostStatus::Up);
                prop_assert_eq!(host.resource_state, ResourceState::Enabled);
                prop_assert!(host.tags.contains_all(&req.host_tags));
                let fp = req.size.footprint();
                let book = &l.cloud.book.host[p.host.ix()];
                prop_assert!(book.cpu.allocated() + fp.cpu_mhz <= book.cpu.total);
                prop_assert!(book.mem.allocated() + fp.mem_bytes <= book.mem.total);
                let cl = &l.cloud.book.cluster[host.cluster.ix()];
                prop_assert!(cl.cpu.fraction_with(fp.cpu_mhz) <= 0.85 + 1e-9);
                prop_assert!(cl.mem.fraction_with(fp.mem_bytes) <= 0.85 + 1e-9);
            }
            Err(x) => {
                prop_assert!(!explained.placed);
                // Every host of the zone is accounted for: rejected itself, or its
                // cluster or pod rejected as a whole.
                for (hi, host) in l.cloud.inv.hosts.iter().enumerate() {
                    let cl = l.cloud.inv.cluster(host.cluster);
                    let pod = l.cloud.inv.pod(host.pod);
                    let pod_line = x.zone.children.iter().find(|p| p.id == pod.id.to_string());
                    prop_assert!(pod_line.is_some(), "pod {} missing from {}", pod.name, x.to_text());
                    let pod_line = pod_line.unwrap();
                    if pod_line.verdict == Verdict::Rejected { continue; }
                    let cl_line = pod_line.children.iter().find(|c| c.id == cl.id.to_string());
                    prop_assert!(cl_line.is_some(), "cluster {} missing from {}", cl.name, x.to_text());
                    let cl_line = cl_line.unwrap();
                    prop_assert_eq!(cl_line.verdict, Verdict::Rejected);
                    if cl_line.code != Some("no_host") { continue; }
                    let h_line = cl_line.children.iter().find(|c| c.kind == "host" && c.id == host.id.to_string());
                    prop_assert!(h_line.is_some_and(|h| h.verdict == Verdict::Rejected), "host #{} not explained in {}", hi, x.to_text());
                }
            }
        }
    }
}

/// Deploys without starting, so the probe VM exists but holds no capacity.
struct DeployProbe;
impl DeployProbe {
    fn stopped(mut s: stratus_core::cloud::DeploySpec) -> stratus_core::cloud::DeploySpec {
        s.start = false;
        s
    }
}
