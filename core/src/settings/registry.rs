//! The global settings Stratus knows, with CloudStack's names, defaults and scopes.

use super::{Kind, ScopeKind, SettingDef};

use Kind::*;
use ScopeKind::*;

const ALGORITHMS: &[&str] = &[
    "random",
    "firstfit",
    "userdispersing",
    "userconcentratedpod_random",
    "userconcentratedpod_firstfit",
    "firstfitleastconsumed",
];
const PLANNERS: &[&str] = &["FirstFitPlanner", "UserDispersingPlanner", "UserConcentratedPodPlanner"];
const ORDER_TYPES: &[&str] = &["CPU", "RAM", "COMBINED"];

const fn def(name: &'static str, category: &'static str, default: &'static str, kind: Kind, scope: ScopeKind, description: &'static str) -> SettingDef {
    SettingDef { name, category, default, kind, scope, description }
}

pub const REGISTRY: &[SettingDef] = &[
    // Capacity and overprovisioning.
    def("cpu.overprovisioning.factor", "Advanced", "1.0", Float { min: 0.1, max: 100.0 }, Cluster,
        "Usable CPU MHz of a host = cores x speed x this factor"),
    def("mem.overprovisioning.factor", "Advanced", "1.0", Float { min: 0.1, max: 100.0 }, Cluster,
        "Usable memory of a host = physical memory x this factor"),
    def("storage.overprovisioning.factor", "Storage", "2", Float { min: 0.1, max: 100.0 }, Pool,
        "Allocatable size of a thin-provisioned (NFS, Gluster) pool = size x this factor"),
    def("cluster.cpu.allocated.capacity.disablethreshold", "Alert", "0.85", Float { min: 0.0, max: 1.0 }, Cluster,
        "Planners skip a cluster whose allocated CPU, with the request, would exceed this fraction"),
    def("cluster.memory.allocated.capacity.disablethreshold", "Alert", "0.85", Float { min: 0.0, max: 1.0 }, Cluster,
        "Planners skip a cluster whose allocated memory, with the request, would exceed this fraction"),
    def("cluster.threshold.enabled", "Advanced", "true", Bool, Zone,
        "Apply the cluster disable thresholds"),
    def("pool.storage.capacity.disablethreshold", "Alert", "0.85", Float { min: 0.0, max: 1.0 }, Zone,
        "A pool whose used fraction exceeds this is not chosen"),
    def("pool.storage.allocated.capacity.disablethreshold", "Alert", "0.85", Float { min: 0.0, max: 1.0 }, Zone,
        "A pool whose allocated fraction (with overprovisioning and the request) would exceed this is not chosen"),
    def("cluster.cpu.allocated.capacity.notificationthreshold", "Alert", "0.75", Float { min: 0.0, max: 1.0 }, Cluster,
        "Raise an alert when a cluster's allocated CPU crosses this fraction"),
    def("cluster.memory.allocated.capacity.notificationthreshold", "Alert", "0.75", Float { min: 0.0, max: 1.0 }, Cluster,
        "Raise an alert when a cluster's allocated memory crosses this fraction"),
    def("cluster.storage.capacity.notificationthreshold", "Alert", "0.75", Float { min: 0.0, max: 1.0 }, Cluster,
        "Raise an alert when a shared pool's used fraction crosses this"),
    def("cluster.storage.allocated.capacity.notificationthreshold", "Alert", "0.75", Float { min: 0.0, max: 1.0 }, Cluster,
        "Raise an alert when a shared pool's allocated fraction crosses this"),
    def("cluster.localStorage.capacity.notificationthreshold", "Alert", "0.75", Float { min: 0.0, max: 1.0 }, Cluster,
        "Raise an alert when a host-local pool's used fraction crosses this"),
    def("zone.secstorage.capacity.notificationthreshold", "Alert", "0.75", Float { min: 0.0, max: 1.0 }, Global,
        "Raise an alert when a zone's secondary storage used fraction crosses this"),
    def("secondary.storage.capacity.threshold", "Advanced", "0.90", Float { min: 0.0, max: 1.0 }, Global,
        "An image store above this used fraction is considered full"),
    def("capacity.skipcounting.hours", "Advanced", "3600", Int { min: 0, max: 31_536_000 }, Cluster,
        "Seconds (despite the name) a stopped VM keeps its CPU and memory reserved on its last host"),
    def("capacity.check.period", "Advanced", "300000", Int { min: 1000, max: 86_400_000 }, Global,
        "Milliseconds between capacity threshold checks"),
    // Allocation.
    def("vm.allocation.algorithm", "Advanced", "random", Enum(ALGORITHMS), Global,
        "Host ordering inside a cluster"),
    def("vm.deployment.planner", "Advanced", "FirstFitPlanner", Enum(PLANNERS), Global,
        "Deployment planner used when the offering does not name one"),
    def("host.capacityType.to.order.clusters", "Advanced", "CPU", Enum(ORDER_TYPES), Global,
        "Capacity used to order clusters: CPU, RAM or COMBINED"),
    def("host.capacityType.to.order.clusters.cputomemoryweight", "Advanced", "0.5", Float { min: 0.0, max: 1.0 }, Global,
        "Weight of CPU against memory when ordering clusters by COMBINED capacity"),
    def("apply.allocation.algorithm.to.pods", "Advanced", "false", Bool, Global,
        "Also order pods by capacity before their clusters"),
    def("vm.user.dispersion.weight", "Advanced", "1", Float { min: 0.0, max: 1.0 }, Global,
        "Weight of account dispersion against capacity in UserDispersingPlanner"),
    def("ha.tag", "Advanced", "", Text, Global,
        "Hosts with this host tag only take VMs restarted by HA"),
    // HA and host management.
    def("ha.workers", "Advanced", "5", Int { min: 1, max: 1000 }, Cluster, "HA worker threads"),
    def("force.ha", "Advanced", "false", Bool, Cluster, "Restart VMs after a host failure even if their offering is not HA"),
    def("investigate.retry.interval", "Advanced", "60", Int { min: 1, max: 86_400 }, Global,
        "Seconds between investigations of a disconnected host"),
    def("migrate.retry.interval", "Advanced", "120", Int { min: 1, max: 86_400 }, Global,
        "Seconds between migration retries during maintenance"),
    def("restart.retry.interval", "Advanced", "600", Int { min: 1, max: 86_400 }, Global,
        "Seconds between HA restart retries"),
    def("stop.retry.interval", "Advanced", "600", Int { min: 1, max: 86_400 }, Global, "Seconds between stop retries"),
    def("max.retries", "Advanced", "5", Int { min: 0, max: 1000 }, Global, "HA restart attempts"),
    def("ping.interval", "Advanced", "60", Int { min: 1, max: 3600 }, Global, "Seconds between host agent pings"),
    def("ping.timeout", "Advanced", "2.5", Float { min: 1.0, max: 100.0 }, Global,
        "Multiplier of ping.interval after which a silent host is late"),
    def("expunge.delay", "Advanced", "86400", Int { min: 0, max: 31_536_000 }, Global,
        "Seconds a destroyed VM stays recoverable before it is expunged"),
    def("expunge.interval", "Advanced", "86400", Int { min: 1, max: 31_536_000 }, Global,
        "Seconds between expunge sweeps"),
    def("expunge.workers", "Advanced", "1", Int { min: 1, max: 1000 }, Global, "Expunge worker threads"),
    def("allow.user.expunge.recover.vm", "Advanced", "false", Bool, Account,
        "Whether users of the account may expunge and recover their own VMs"),
    def("default.page.size", "Advanced", "500", Int { min: 1, max: 100_000 }, Global, "Default page size of list APIs"),
];

/// Names accepted as aliases (spelling used in Stratus' own docs) for CloudStack's names.
pub const ALIASES: &[(&str, &str)] = &[("capacity.skip.counting.hours", "capacity.skipcounting.hours")];
