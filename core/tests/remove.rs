//! Hosts, clusters and pods leave the inventory (deleteHost, deleteCluster,
//! deletePod, the what-if `--remove-host`/`--remove-cluster`): refused with
//! the names of what still holds them, otherwise gone from every total, from
//! the allocator and from lookups, with indices elsewhere still valid; a
//! what-if fork puts a removal back exactly.

mod common;

use stratus_core::CoreError;
use stratus_core::inventory::HostStatus;
use stratus_core::vm::Charge;
use stratus_core::whatif::{self, Options, export};

fn host_of(lab: &common::Lab, vm: stratus_core::ids::VmId) -> stratus_core::ids::HostIdx {
    match lab.cloud.vm(vm).unwrap().charge {
        Charge::Used { host } => host,
        c => panic!("not running: {c:?}"),
    }
}

#[test]
fn a_host_with_a_vm_is_refused_by_name_and_nothing_changes() {
    let mut lab = common::lab(1, 1, 2);
    let vm = lab.deploy("web-1", lab.small).unwrap();
    let h = host_of(&lab, vm);
    let id = lab.cloud.inv.host(h).id;
    let before = export::to_json(&lab.cloud).unwrap();
    let e = lab.cloud.remove_host(id).unwrap_err();
    assert!(matches!(e, CoreError::Refused(_)), "{e:?}");
    assert_eq!(e.cloudstack_codes(), (530, 4250));
    let text = e.to_string();
    assert!(text.contains("web-1") && text.contains("VM(s) still on it"), "{text}");
    assert_eq!(export::to_json(&lab.cloud).unwrap(), before);
}

#[test]
fn an_empty_host_leaves_every_total_lookup_and_placement() {
    let mut lab = common::lab(2, 2, 2);
    let (h1, cl) = (lab.hosts[0], lab.cloud.cluster_idx(lab.clusters[0]).unwrap());
    let hi = lab.cloud.host_idx(h1).unwrap();
    let host_cpu = lab.cloud.book.host[hi.ix()].cpu.total;
    let zone_cpu = lab.cloud.book.zone[0].cpu.total;
    let cluster_cpu = lab.cloud.book.cluster[cl.ix()].cpu.total;
    // A stopped VM that last ran there keeps no pointer to it.
    let vm = lab.deploy("cold", lab.small).unwrap();
    let on = host_of(&lab, vm);
    lab.cloud.stop_vm(vm, false).unwrap();
    let on_id = lab.cloud.inv.host(on).id;
    lab.cloud.remove_host(on_id).unwrap();
    assert_eq!(lab.cloud.vm(vm).unwrap().last_host, None);
    assert_eq!(lab.cloud.vm(vm).unwrap().charge, Charge::None);
    if on_id != h1 {
        lab.cloud.remove_host(h1).unwrap();
    }
    assert!(lab.cloud.host_idx(h1).is_err(), "no longer found by id");
    assert_eq!(
        lab.cloud.inv.host(hi).status,
        HostStatus::Removed,
        "the slot stays (tombstone)"
    );
    assert_eq!(lab.cloud.book.host[hi.ix()].cpu.total, 0);
    assert!(lab.cloud.book.zone[0].cpu.total <= zone_cpu - host_cpu);
    assert!(lab.cloud.book.cluster[cl.ix()].cpu.total < cluster_cpu);
    assert!(lab.cloud.audit().ok(), "{:?}", lab.cloud.audit());
    assert!(lab.cloud.check_host_totals().is_empty());
    // The allocator never picks it: fill the zone and look.
    for n in 0..12 {
        if let Ok(v) = lab.deploy(&format!("fill-{n}"), lab.small) {
            assert_ne!(host_of(&lab, v), hi);
        }
    }
    // The name can be used again, in a fresh slot.
    let again = lab
        .cloud
        .add_host(stratus_core::cloud::HostSpec {
            name: lab.cloud.inv.host(hi).name.clone(),
            cluster: lab.clusters[0],
            cpu_cores: 4,
            cpu_mhz: 2000,
            memory_bytes: 16 << 30,
            tags: vec![],
        })
        .unwrap();
    assert_ne!(lab.cloud.host_idx(again).unwrap(), hi);
    assert!(lab.cloud.audit().ok());
}

#[test]
fn a_cluster_goes_only_when_empty_and_a_pod_only_without_clusters() {
    let mut lab = common::lab(3, 2, 2);
    let (c1, p1) = (lab.clusters[0], lab.pods[0]);
    let e = lab.cloud.remove_cluster(c1).unwrap_err().to_string();
    assert!(e.contains("still has 2 host(s): h1, h2"), "{e}");
    let e = lab.cloud.remove_pod(p1).unwrap_err().to_string();
    assert!(e.contains("still has 1 cluster(s): c1"), "{e}");
    for h in [lab.hosts[0], lab.hosts[1]] {
        lab.cloud.remove_host(h).unwrap();
    }
    let pool = lab.cloud.pool_idx(lab.pools[0]).unwrap();
    lab.cloud.remove_cluster(c1).unwrap();
    assert!(lab.cloud.cluster_idx(c1).is_err());
    assert!(lab.cloud.pool_idx(lab.pools[0]).is_err(), "its own pool went with it");
    assert_eq!(lab.cloud.book.pool[pool.ix()].raw_total, 0);
    lab.cloud.remove_pod(p1).unwrap();
    assert!(lab.cloud.pod_idx(p1).is_err());
    assert!(lab.cloud.audit().ok());
    // Placement still works in what is left.
    lab.deploy("after", lab.small).unwrap();
}

#[test]
fn a_fork_puts_a_removed_host_and_cluster_back_exactly() {
    let mut lab = common::lab(4, 2, 2);
    lab.deploy("a", lab.small).unwrap();
    let before = export::to_json(&lab.cloud).unwrap();
    let c2 = lab.cloud.cluster_idx(lab.clusters[1]).unwrap();
    let hosts: Vec<_> = lab.cloud.inv.cluster(c2).hosts.clone();
    {
        let mut f = lab.cloud.fork();
        for h in &hosts {
            let vms: Vec<_> = f.cloud().vms_on(*h).to_vec();
            for v in vms {
                f.set_vm(v, Charge::None, stratus_core::vm::VmState::Stopped, None);
            }
            f.remove_host(*h);
        }
        f.remove_cluster(c2);
        assert!(f.cloud().inv.find_cluster(lab.clusters[1]).is_none());
        assert_eq!(f.cloud().book.cluster[c2.ix()].cpu.total, 0);
    }
    assert_eq!(export::to_json(&lab.cloud).unwrap(), before);
}

#[test]
fn whatif_remove_host_migrates_everything_then_the_capacity_is_gone() {
    let mut lab = common::lab(5, 1, 3);
    let mut on_h1 = 0;
    for n in 0..6 {
        let v = lab.deploy(&format!("vm-{n}"), lab.small).unwrap();
        on_h1 += usize::from(lab.cloud.inv.host(host_of(&lab, v)).name == "h1");
    }
    assert!(on_h1 > 0, "the lab put something on h1");
    let mut opts = Options::new();
    opts.remove_hosts = vec!["h1".into()];
    let mut c = lab.cloud.clone();
    let r = whatif::run(&mut c, &opts, &mut |_, _, _| {}).unwrap();
    let plan = r.replacement.expect("a plan");
    assert_eq!(plan.removed_hosts, vec!["h1".to_string()]);
    assert_eq!(plan.moves.len(), on_h1);
    assert!(
        plan.moves
            .iter()
            .all(|m| m.kind == "migrate" && m.from == "h1" && m.to.as_deref() != Some("h1"))
    );
    assert_eq!(plan.placed, on_h1);
    assert_eq!(
        (plan.lost, plan.not_placed),
        (0, 0),
        "a removal loses nothing that fits"
    );
    assert_eq!(r.inventory.hosts, 2);
    assert_eq!(r.clusters[0].hosts, 2);
    assert!(r.n_minus_1.iter().all(|x| x.host != "h1"));
    assert!(c.audit().ok());
    // A failure of the same host is a different answer: HA only, the host still counted.
    let mut opts = Options::new();
    opts.fail_hosts = vec!["h1".into()];
    let mut c = lab.cloud.clone();
    let r = whatif::run(&mut c, &opts, &mut |_, _, _| {}).unwrap();
    assert_eq!(r.inventory.hosts, 3);
    // Unknown names are refused before anything runs.
    let mut opts = Options::new();
    opts.remove_clusters = vec!["nope".into()];
    assert!(whatif::validate(&lab.cloud, &opts).is_err());
}

/// The lab's volumes live on cluster-scope storage, so a VM of c1 cannot be
/// live-migrated into c2: the plan says so, VM by VM, and they are stopped.
#[test]
fn whatif_remove_cluster_says_which_vms_cannot_leave_it() {
    let mut lab = common::lab(6, 2, 2);
    for n in 0..4 {
        lab.deploy(&format!("vm-{n}"), lab.small).unwrap();
    }
    let mut opts = Options::new();
    opts.remove_clusters = vec!["c1".into()];
    let mut c = lab.cloud.clone();
    let r = whatif::run(&mut c, &opts, &mut |_, _, _| {}).unwrap();
    let plan = r.replacement.unwrap();
    assert_eq!(plan.removed_clusters, vec!["c1".to_string()]);
    assert_eq!(plan.removed_hosts, vec!["h1".to_string(), "h2".to_string()]);
    let in_c1 = lab
        .cloud
        .vms()
        .filter(|(_, v)| matches!(v.charge, Charge::Used { host } if lab.cloud.inv.host(host).cluster.ix() == 0))
        .count();
    assert!(in_c1 > 0);
    assert_eq!(plan.moves.len(), in_c1);
    assert_eq!(plan.not_placed, in_c1);
    assert!(
        plan.moves.iter().all(|m| m.to.is_none()
            && m.reason
                .as_deref()
                .is_some_and(|r| r.contains("would have to be stopped"))),
        "{plan:?}"
    );
    assert_eq!(r.clusters.len(), 1);
    assert_eq!(r.clusters[0].name, "c2");
    assert!(c.audit().ok(), "{:?}", c.audit());
}
