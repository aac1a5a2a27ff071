//! Property: after any sequence of lifecycle operations, settings changes and
//! time passing, every counter equals the sum over its VMs and volumes, and every
//! aggregate equals the sum of its children.

mod common;

use proptest::prelude::*;
use stratus_core::cloud::{DiskOfferingSpec, ServiceOfferingSpec};
use stratus_core::ids::VmId;
use stratus_core::inventory::{AffinityKind, DiskSize, HostStatus, StorageType};
use stratus_core::settings::Scope;
use stratus_core::units::{GIB, Millis};

#[derive(Clone, Debug)]
enum Op {
    Deploy {
        offering: usize,
        start: bool,
        data: bool,
        anti: bool,
    },
    Start(usize),
    BeginStart(usize, bool),
    Stop(usize, bool),
    Migrate(usize, Option<usize>, bool),
    Destroy(usize, bool),
    Recover(usize),
    Expunge(usize),
    Scale(usize, usize),
    Advance(u64),
    CpuFactor(usize, u8),
    HostDown(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(offering, start, data, anti)| Op::Deploy { offering, start, data, anti }),
        2 => any::<usize>().prop_map(Op::Start),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(v, ok)| Op::BeginStart(v, ok)),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(v, f)| Op::Stop(v, f)),
        2 => (any::<usize>(), proptest::option::of(0..9usize), any::<bool>()).prop_map(|(v, h, ok)| Op::Migrate(v, h, ok)),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(v, e)| Op::Destroy(v, e)),
        1 => any::<usize>().prop_map(Op::Recover),
        1 => any::<usize>().prop_map(Op::Expunge),
        1 => (any::<usize>(), 0..4usize).prop_map(|(v, o)| Op::Scale(v, o)),
        2 => (0..5000u64).prop_map(Op::Advance),
        1 => (0..3usize, 1..4u8).prop_map(|(c, f)| Op::CpuFactor(c, f)),
        1 => (0..9usize, any::<bool>()).prop_map(|(h, up)| Op::HostDown(h, up)),
    ]
}

/// Everything a refused operation must leave untouched.
fn snapshot(c: &stratus_core::Cloud) -> String {
    let vms: Vec<String> = c
        .vms()
        .map(|(_, v)| format!("{}:{}:{:?}:{:?}", v.name, v.state, v.charge, v.size))
        .collect();
    let vols: Vec<String> = c
        .volumes()
        .map(|(_, v)| format!("{}:{}:{:?}", v.name, v.state, v.pool))
        .collect();
    format!(
        "{vms:?}{vols:?}{:?}{:?}{:?}",
        c.book.host, c.book.pool, c.book.host_guests
    )
}

fn pick(ids: &[VmId], i: usize) -> Option<VmId> {
    (!ids.is_empty()).then(|| ids[i % ids.len()])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn capacity_book_equals_sum_over_vms(ops in proptest::collection::vec(op(), 1..80)) {
        let mut l = common::lab(7, 3, 3);
        l.set("capacity.skipcounting.hours", "1800");
        let mut offerings = vec![l.small, l.big];
        offerings.push(l.cloud.add_service_offering(ServiceOfferingSpec::fixed("huge", 4, 2000, 14 * 1024)).unwrap());
        let mut local = ServiceOfferingSpec::fixed("local-small", 1, 500, 1024);
        local.storage_type = StorageType::Local;
        offerings.push(l.cloud.add_service_offering(local).unwrap());
        let data = l.cloud.add_disk_offering(DiskOfferingSpec {
            name: "data-20".into(), size: DiskSize::Fixed(20 * GIB), storage_tags: vec![], storage_type: StorageType::Shared,
        }).unwrap();
        let aa = l.cloud.add_affinity_group("spread", AffinityKind::HostAntiAffinity, l.account).unwrap();
        let mut ids: Vec<VmId> = Vec::new();
        let mut now = 0u64;
        for (n, op) in ops.into_iter().enumerate() {
            let before = snapshot(&l.cloud);
            let refused: bool = match op {
                Op::Deploy { offering, start, data: with_data, anti } => {
                    let mut spec = l.deploy_spec(&format!("vm-{n}"), offerings[offering]);
                    spec.start = start;
                    if with_data { spec.disk_offering = Some(data); }
                    if anti { spec.affinity_groups = vec![aa]; }
                    match l.cloud.deploy_vm(spec) { Ok(id) => { ids.push(id); false } Err(_) => true }
                }
                Op::Start(v) => pick(&ids, v).is_some_and(|id| l.cloud.start_vm(id, None).is_err()),
                Op::BeginStart(v, ok) => match pick(&ids, v) {
                    Some(id) => {
                        let i = l.cloud.vm_index(id).unwrap();
                        let r = l.cloud.begin_start(i, None);
                        if r.is_ok() { l.cloud.finish_start(i, ok); }
                        r.is_err()
                    }
                    None => false,
                },
                Op::Stop(v, forced) => pick(&ids, v).is_some_and(|id| l.cloud.stop_vm(id, forced).is_err()),
                Op::Migrate(v, h, ok) => match pick(&ids, v) {
                    Some(id) => {
                        let dest = h.map(|h| l.hosts[h]);
                        let r = l.cloud.begin_migration(id, dest);
                        if r.is_ok() { l.cloud.finish_migration(id, ok).unwrap(); }
                        r.is_err()
                    }
                    None => false,
                },
                Op::Destroy(v, expunge) => match pick(&ids, v) {
                    Some(id) => {
                        let r = l.cloud.destroy_vm(id, expunge);
                        if r.is_ok() && expunge { ids.retain(|x| *x != id); }
                        r.is_err()
                    }
                    None => false,
                },
                Op::Recover(v) => pick(&ids, v).is_some_and(|id| l.cloud.recover_vm(id).is_err()),
                Op::Expunge(v) => match pick(&ids, v) {
                    Some(id) => {
                        let r = l.cloud.expunge_vm(id);
                        if r.is_ok() { ids.retain(|x| *x != id); }
                        r.is_err()
                    }
                    None => false,
                },
                Op::Scale(v, o) => pick(&ids, v).is_some_and(|id| l.cloud.change_offering(id, offerings[o], None, None).is_err()),
                Op::Advance(s) => { now += s * 1000; l.cloud.advance_to(Millis(now)); false }
                Op::CpuFactor(c, f) => {
                    l.cloud.update_setting("cpu.overprovisioning.factor", Scope::Cluster(l.clusters[c]), &f.to_string()).unwrap();
                    false
                }
                Op::HostDown(h, up) => {
                    l.cloud.set_host_status(l.hosts[h], if up { HostStatus::Up } else { HostStatus::Down }).unwrap();
                    false
                }
            };
            if refused {
                prop_assert_eq!(&before, &snapshot(&l.cloud), "a refused operation changed something (op {})", n);
            }
            let report = l.cloud.audit();
            prop_assert!(report.ok(), "after op {}: {:?}", n, report.violations);
        }
        // Destroying and expunging everything returns every counter to zero.
        for id in ids.clone() {
            let _ = l.cloud.stop_vm(id, true);
            let _ = l.cloud.destroy_vm(id, true);
            let _ = l.cloud.expunge_vm(id);
        }
        prop_assert_eq!(l.cloud.vm_count(), 0);
        for h in &l.cloud.book.host {
            prop_assert_eq!((h.cpu.used, h.cpu.reserved, h.mem.used, h.mem.reserved), (0, 0, 0, 0));
        }
        prop_assert!(l.cloud.book.pool.iter().all(|p| p.allocated == 0 && p.used == 0));
        prop_assert!(l.cloud.book.host_guests.iter().all(|g| *g == 0));
    }
}
