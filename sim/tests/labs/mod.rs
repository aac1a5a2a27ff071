//! The two-cluster HA lab the dangerous-fault and fuzz-canary tests share.

/// Two clusters of two 8-core hosts on one zone-wide pool (HA can restart a
/// VM in the other cluster), `vms` HA VMs packed on kvm1 and kvm2 by firstfit;
/// `settings` adds lines to `[settings]`.
pub fn two_clusters(name: &str, seed: u64, settings: &str, vms: u32) -> String {
    format!(
        r#"
[scenario]
name = "{name}"
seed = {seed}
duration = "1h"

[settings]
"vm.allocation.algorithm" = "firstfit"
{settings}
[[zones]]
name = "z1"

[[zones.networks]]
name = "guest"
cidr = "10.1.0.0/24"

[[zones.pools]]
name = "zone-ps"
capacity_gib = 4000

[[zones.pods]]
name = "p1"
gateway = "172.16.1.1"
netmask = "255.255.255.0"
start_ip = "172.16.1.10"
end_ip = "172.16.1.250"

[[zones.pods.clusters]]
name = "c1"
hosts = [{{ prefix = "kvm", count = 2, cores = 8, mhz = 2400, memory_gib = 32 }}]

[[zones.pods.clusters]]
name = "c2"
hosts = [{{ prefix = "spare", count = 2, cores = 8, mhz = 2400, memory_gib = 32 }}]

[[offerings]]
name = "web-ha"
cpu = 4
mhz = 1000
memory_mb = 8192
ha = true

[[templates]]
name = "tiny"
size_gib = 2

[[accounts]]
name = "alice"

[[workload]]
account = "alice"
offering = "web-ha"
template = "tiny"
network = "guest"
arrival = {{ kind = "burst", count = {vms}, at = "0s" }}
"#
    )
}
