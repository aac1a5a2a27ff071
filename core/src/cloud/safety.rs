//! Safety invariants over the ledger alone, each named and each the one
//! implementation of its rule: the simulator checks them after every event,
//! and the code that maintains the state uses the same functions
//! ([`host_totals`], [`crate::allocator::hard_constraints`]).

use super::Cloud;
use super::policy::{ClusterPolicy, Policy};
use crate::inventory::Host;
use crate::vm::{Charge, VmState, VolumeState};

/// A host's compute totals after overprovisioning: (CPU MHz, memory bytes).
pub fn host_totals(host: &Host, pol: &ClusterPolicy) -> (u64, u64) {
    (
        (host.cpu_mhz_total() as f64 * pol.cpu_factor).floor() as u64,
        (host.memory_bytes as f64 * pol.mem_factor).floor() as u64,
    )
}

/// Whether a VM in `state` may hold `charge` (the capacity rule in `vm`:
/// Used while starting, running or stopping; Migrating while migrating;
/// a reservation only while stopped; nothing once destroyed, nothing or its
/// old host in Error).
pub fn charge_fits_state(state: VmState, charge: Charge) -> bool {
    match state {
        VmState::Starting | VmState::Running | VmState::Stopping => {
            matches!(charge, Charge::Used { .. } | Charge::Migrating { .. })
        }
        VmState::Migrating => matches!(charge, Charge::Migrating { .. } | Charge::Used { .. }),
        VmState::Stopped | VmState::Shutdown => matches!(charge, Charge::None | Charge::Reserved { .. }),
        VmState::Destroyed | VmState::Expunging => charge == Charge::None,
        // A failed operation holds nothing; an HA VM left in Error on a host
        // that cannot be proven fenced keeps its charge there (it may still run).
        VmState::Error => matches!(charge, Charge::None | Charge::Used { .. }),
        // Not known whether it runs: it keeps what it held until a host reports.
        VmState::Unknown => !matches!(charge, Charge::Reserved { .. }),
    }
}

/// The names of the ledger invariants, as they appear in violations.
pub const CHARGE_MATCHES_STATE: &str = "charge-matches-state";
pub const HOST_TOTALS_MATCH_SETTINGS: &str = "host-totals-match-settings";
pub const PLACEMENT_HARD_CONSTRAINTS: &str = "placement-hard-constraints";
pub const VM_VOLUMES_LIVE: &str = "vm-volumes-live";

impl Cloud {
    /// Every VM's charge matches its state.
    pub fn check_charge_matches_state(&self) -> Vec<String> {
        self.vms()
            .filter(|(_, vm)| !charge_fits_state(vm.state, vm.charge))
            .map(|(_, vm)| {
                format!(
                    "[{CHARGE_MATCHES_STATE}] VM {} is {} but charged {:?}",
                    vm.name, vm.state, vm.charge
                )
            })
            .collect()
    }

    /// Every host's totals equal its configured resources times the
    /// overprovisioning factors its cluster's settings give now (resolved
    /// afresh, not from the policy cache).
    pub fn check_host_totals(&self) -> Vec<String> {
        let mut out = Vec::new();
        let pols: Vec<ClusterPolicy> = (0..self.inv.clusters.len())
            .map(|c| Policy::cluster(&self.settings, &self.inv, c))
            .collect();
        for (hx, host) in self.inv.live_hosts() {
            let h = hx.ix();
            let (cpu, mem) = host_totals(host, &pols[host.cluster.ix()]);
            let b = &self.book.host[h];
            if (b.cpu.total, b.mem.total, b.cores.total) != (cpu, mem, u64::from(host.cpu_cores)) {
                out.push(format!(
                    "[{HOST_TOTALS_MATCH_SETTINGS}] host {}: book totals cpu {} MHz, memory {} B, {} cores; settings give {cpu}, {mem}, {}",
                    host.name, b.cpu.total, b.mem.total, b.cores.total, host.cpu_cores
                ));
            }
        }
        out
    }

    /// Every running VM satisfies the hard constraints it was placed under,
    /// on the host it runs on.
    pub fn check_running_placement(&self) -> Vec<String> {
        self.vms()
            .filter(|(_, vm)| vm.state == VmState::Running)
            .filter_map(|(i, vm)| {
                let Charge::Used { host } = vm.charge else { return None };
                let reject = crate::allocator::hard_constraints(self, &self.request_for(i), host)?;
                Some(format!(
                    "[{PLACEMENT_HARD_CONSTRAINTS}] VM {} runs on {} against a hard constraint: {reject:?}",
                    vm.name,
                    self.inv.host(host).name
                ))
            })
            .collect()
    }

    /// Every volume a VM (not destroyed) references is live: in the ledger,
    /// neither destroyed nor expunged, and attached back to that VM.
    pub fn check_vm_volumes_live(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, vm) in self.vms() {
            if matches!(vm.state, VmState::Destroyed | VmState::Expunging) {
                continue;
            }
            for v in &vm.volumes {
                let problem = match self.volumes.get(v.0) {
                    None => "is gone from the ledger".to_string(),
                    Some(vol) if matches!(vol.state, VolumeState::Destroy | VolumeState::Expunged) => {
                        format!("{} is {}", vol.name, vol.state)
                    }
                    Some(vol) if vol.vm != Some(i) => format!("{} is attached to {:?}, not to it", vol.name, vol.vm),
                    Some(_) => continue,
                };
                out.push(format!(
                    "[{VM_VOLUMES_LIVE}] VM {} ({}) references volume #{}, which {problem}",
                    vm.name, vm.state, v.0
                ));
            }
        }
        out
    }

    /// All ledger safety invariants.
    pub fn check_safety(&self) -> Vec<String> {
        let mut v = self.check_charge_matches_state();
        v.extend(self.check_host_totals());
        v.extend(self.check_running_placement());
        v.extend(self.check_vm_volumes_live());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::*;
    use crate::inventory::*;
    use crate::units::GIB;

    /// One host, one pool, one running VM.
    fn one_vm() -> (Cloud, crate::ids::VmIdx) {
        let mut c = Cloud::new(1);
        let zone = c.add_zone(ZoneSpec::advanced("z1")).unwrap();
        let pod = c.add_pod(PodSpec::numbered("p1", zone, 1)).unwrap();
        let cl = c.add_cluster("c1", pod, Hypervisor::Kvm).unwrap();
        let spec = |name: &str| HostSpec {
            name: name.into(),
            cluster: cl,
            cpu_cores: 4,
            cpu_mhz: 2000,
            memory_bytes: 16 * GIB,
            tags: vec![],
        };
        c.add_host(spec("h1")).unwrap();
        c.add_pool(PoolSpec {
            name: "ps1".into(),
            zone,
            scope: PoolScopeSpec::Cluster(cl),
            pool_type: PoolType::NetworkFilesystem,
            capacity_bytes: 1024 * GIB,
            tags: vec![],
        })
        .unwrap();
        let offering = c
            .add_service_offering(ServiceOfferingSpec::fixed("small", 1, 1000, 2048))
            .unwrap();
        let template = c
            .add_template(TemplateSpec {
                name: "t".into(),
                format: ImageFormat::Qcow2,
                size_bytes: 2 * GIB,
                os_type: "Other Linux (64-bit)".into(),
                hypervisor: Hypervisor::Kvm,
                is_iso: false,
                ready_in: vec![zone],
            })
            .unwrap();
        let account = c.add_account("alice", None, AccountType::User).unwrap();
        let vm = c
            .deploy_vm(DeploySpec {
                name: "vm1".into(),
                account: Some(account),
                zone: Some(zone),
                offering: Some(offering),
                template: Some(template),
                start: true,
                ..Default::default()
            })
            .unwrap();
        let i = c.vm_index(vm).unwrap();
        (c, i)
    }

    #[test]
    fn a_clean_ledger_passes_every_safety_check() {
        let (c, i) = one_vm();
        assert_eq!(c.vm_at(i).state, VmState::Running);
        assert_eq!(c.check_safety(), Vec::<String>::new());
    }

    #[test]
    fn a_running_vm_charged_nothing_is_reported() {
        let (mut c, i) = one_vm();
        // Planted: the charge dropped while the VM still runs (book kept consistent).
        c.set_charge(i, Charge::None);
        let v = c.check_charge_matches_state();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].starts_with("[charge-matches-state] VM vm1 is Running"), "{v:?}");
        assert!(c.audit().ok(), "the book audit alone does not see it");
    }

    #[test]
    fn an_error_vm_holding_a_reservation_is_reported() {
        let (mut c, i) = one_vm();
        let h = crate::ids::HostIdx(0);
        c.set_charge(
            i,
            Charge::Reserved {
                host: h,
                until: crate::units::Millis(u64::MAX),
            },
        );
        c.vms.get_mut(i.0).unwrap().state = VmState::Error;
        let v = c.check_charge_matches_state();
        assert!(
            v.iter().any(|m| m.contains("VM vm1 is Error but charged Reserved")),
            "{v:?}"
        );
    }

    #[test]
    fn a_destroyed_vm_still_charged_is_reported() {
        let (mut c, i) = one_vm();
        c.vms.get_mut(i.0).unwrap().state = VmState::Destroyed;
        let v = c.check_charge_matches_state();
        assert!(
            v.iter().any(|m| m.contains("VM vm1 is Destroyed but charged Used")),
            "{v:?}"
        );
    }

    #[test]
    fn host_totals_that_ignore_the_overprovisioning_factor_are_reported() {
        let (mut c, _) = one_vm();
        c.update_setting("cpu.overprovisioning.factor", crate::settings::Scope::Global, "2")
            .unwrap();
        assert_eq!(c.check_host_totals(), Vec::<String>::new());
        // Planted: the total left at the raw MHz.
        c.book.host[0].cpu.total = 8000;
        let v = c.check_host_totals();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].contains("[host-totals-match-settings] host h1") && v[0].contains("16000"),
            "{v:?}"
        );
    }

    #[test]
    fn a_running_vm_on_a_host_without_its_tag_is_reported() {
        let (mut c, i) = one_vm();
        // Planted: the VM now needs a tag its host does not have.
        c.vms.get_mut(i.0).unwrap().host_tags = c.inv.tags.set(&["ssd".to_string()]);
        let v = c.check_running_placement();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("[placement-hard-constraints] VM vm1 runs on h1") && v[0].contains("HostTags"));
    }

    #[test]
    fn a_vm_referencing_a_destroyed_or_missing_volume_is_reported() {
        let (mut c, i) = one_vm();
        assert_eq!(c.check_vm_volumes_live(), Vec::<String>::new());
        let root = c.vm_at(i).volumes[0];
        // Planted: the root volume destroyed under a running VM.
        c.volumes.get_mut(root.0).unwrap().state = VolumeState::Destroy;
        let v = c.check_vm_volumes_live();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].starts_with("[vm-volumes-live] VM vm1 (Running) references volume"),
            "{v:?}"
        );
        assert!(v[0].ends_with("is Destroy"), "{v:?}");
        // Planted: a reference to a volume the ledger no longer holds.
        c.volumes.get_mut(root.0).unwrap().state = VolumeState::Ready;
        c.vms.get_mut(i.0).unwrap().volumes.push(crate::ids::VolumeIdx(999));
        let v = c.check_vm_volumes_live();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].ends_with("which is gone from the ledger"), "{v:?}");
        // A destroyed VM's references are not checked (its volumes go with it).
        c.set_charge(i, Charge::None);
        c.vms.get_mut(i.0).unwrap().state = VmState::Destroyed;
        assert_eq!(c.check_vm_volumes_live(), Vec::<String>::new());
    }

    #[test]
    fn a_volume_attached_to_another_vm_is_reported() {
        let (mut c, i) = one_vm();
        let root = c.vm_at(i).volumes[0];
        c.volumes.get_mut(root.0).unwrap().vm = None;
        let v = c.check_safety();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].contains("[vm-volumes-live]") && v[0].contains("is attached to None"),
            "{v:?}"
        );
    }
}
