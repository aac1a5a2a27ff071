//! The what-if's N-1 and failures-tolerated answers agree with brute force:
//! each host (and each pair of hosts) actually crashed in the simulator, the
//! controller detecting, fencing and HA-restarting as in production, and the
//! HA VMs that are not running at the end counted.

use std::collections::BTreeSet;
use stratus_core::Cloud;
use stratus_core::ids::VmId;
use stratus_core::vm::{Charge, VmState};
use stratus_core::whatif::{self, Options, failures};
use stratus_sim::runner::{RunOptions, Runner};
use stratus_sim::scenario;
use stratus_sim::whatif_input::cloud_before_faults;

/// A one-zone lab: `hosts` = (count, cores, memory GiB) per cluster, HA VMs of
/// `ha_mem` MiB (count `ha`), plain VMs of 1 GiB (count `plain`).
struct Lab {
    clusters: Vec<Vec<(u32, u32)>>,
    ha: u32,
    ha_mem: u32,
    plain: u32,
    algorithm: &'static str,
    zone_pool: bool,
}

fn text(l: &Lab, faults: &[String], duration: &str) -> String {
    let mut s = format!(
        r#"
[scenario]
name = "whatif-bf"
seed = 7
duration = "{duration}"

[settings]
"vm.allocation.algorithm" = "{}"

[[zones]]
name = "z1"

[[zones.networks]]
name = "guest"
cidr = "10.1.0.0/22"

[[zones.pods]]
name = "p1"
gateway = "172.16.1.1"
netmask = "255.255.255.0"
start_ip = "172.16.1.10"
end_ip = "172.16.1.250"
"#,
        l.algorithm
    );
    if l.zone_pool {
        s.push_str("\n[[zones.pools]]\nname = \"zps\"\ncapacity_gib = 100000\n");
    }
    for (ci, hosts) in l.clusters.iter().enumerate() {
        s.push_str(&format!("\n[[zones.pods.clusters]]\nname = \"c{}\"\n", ci + 1));
        for (hi, (cores, mem)) in hosts.iter().enumerate() {
            s.push_str(&format!(
                "[[zones.pods.clusters.hosts]]\nprefix = \"c{}h{}-\"\ncount = 1\ncores = {cores}\nmhz = 2000\nmemory_gib = {mem}\n",
                ci + 1,
                hi + 1
            ));
        }
        if !l.zone_pool {
            s.push_str(&format!(
                "[[zones.pods.clusters.pools]]\nname = \"ps{}\"\ncapacity_gib = 20000\n",
                ci + 1
            ));
        }
    }
    s.push_str(&format!(
        r#"
[[offerings]]
name = "ha"
cpu = 1
mhz = 500
memory_mb = {}
ha = true

[[offerings]]
name = "plain"
cpu = 1
mhz = 500
memory_mb = 1024

[[templates]]
name = "t"
size_gib = 1

[[accounts]]
name = "a"

[[workload]]
account = "a"
offering = "ha"
template = "t"
network = "guest"
arrival = {{ kind = "burst", count = {}, at = "0s" }}
"#,
        l.ha_mem, l.ha
    ));
    if l.plain > 0 {
        s.push_str(&format!(
            "\n[[workload]]\naccount = \"a\"\noffering = \"plain\"\ntemplate = \"t\"\nnetwork = \"guest\"\narrival = {{ kind = \"burst\", count = {}, at = \"1s\" }}\n",
            l.plain
        ));
    }
    for f in faults {
        s.push_str(&format!(
            "\n[[faults.scheduled]]\nat = \"10m\"\nkind = \"host_crash\"\nhost = \"{f}\"\n"
        ));
    }
    s
}

fn before(l: &Lab) -> Cloud {
    let s = scenario::parse(&text(l, &[], "10m"), "bf.toml").unwrap_or_else(|e| panic!("{e}"));
    let built = scenario::build(&s).unwrap();
    cloud_before_faults(s, built.cloud)
}

/// Crashes `hosts` at 10 min in the simulator; the HA VMs that ran on them
/// and are not running 20 minutes later.
fn brute(l: &Lab, c0: &Cloud, hosts: &[String]) -> BTreeSet<VmId> {
    let s = scenario::parse(&text(l, hosts, "30m"), "bf.toml").unwrap_or_else(|e| panic!("{e}"));
    let built = scenario::build(&s).unwrap();
    let mut r = Runner::new(s, built.cloud, &RunOptions::default());
    r.run(&mut |_, _| {});
    let force = failures::force_ha(c0);
    let victims: Vec<VmId> = c0
        .vms()
        .filter(|(i, v)| {
            matches!(v.charge, Charge::Used { host } if hosts.contains(&c0.inv.host(host).name))
                && failures::ha_eligible(c0, &force, *i)
        })
        .map(|(_, v)| v.id)
        .collect();
    let end = r.engine.ctl.cloud();
    victims
        .into_iter()
        .filter(|id| end.vm(*id).is_none_or(|v| v.state != VmState::Running))
        .collect()
}

/// Returns (hosts whose failure leaves HA VMs down, tolerated per cluster).
fn check(l: &Lab) -> (usize, Vec<u32>) {
    let c0 = before(l);
    let names: Vec<String> = c0.inv.hosts.iter().map(|h| h.name.clone()).collect();
    assert!(names.len() <= 8);
    let mut c = c0.clone();
    let report = whatif::run(&mut c, &Options::new(), &mut |_, _, _| {}).unwrap();
    // N-1: the same VMs stay down, host by host.
    let mut single_ok = BTreeSet::new();
    for row in &report.n_minus_1 {
        let want = brute(l, &c0, std::slice::from_ref(&row.host));
        let got: BTreeSet<VmId> = row
            .not_restarted
            .iter()
            .map(|v| VmId(v.vmid.parse().unwrap()))
            .collect();
        assert_eq!(got, want, "N-1 for {}", row.host);
        for v in &row.not_restarted {
            assert!(
                v.explanation.contains(&v.vm) || !v.reason.is_empty(),
                "an explanation for {}",
                v.vm
            );
        }
        if want.is_empty() {
            single_ok.insert(row.host.clone());
        }
    }
    // Pairs: brute force per cluster, against the tolerance answer.
    for (ci, cl) in report.clusters.iter().enumerate() {
        let hosts: Vec<&String> = names
            .iter()
            .filter(|n| n.starts_with(&format!("c{}h", ci + 1)))
            .collect();
        let singles = hosts.iter().all(|h| single_ok.contains(*h));
        let mut pairs = true;
        if singles {
            'outer: for a in 0..hosts.len() {
                for b in a + 1..hosts.len() {
                    if !brute(l, &c0, &[hosts[a].clone(), hosts[b].clone()]).is_empty() {
                        pairs = false;
                        break 'outer;
                    }
                }
            }
        }
        let t = &cl.failures_tolerated;
        let brute_k = if !singles {
            0
        } else if !pairs {
            1
        } else {
            2
        };
        assert!(t.exact, "{}: small clusters get an exact answer: {t:?}", cl.name);
        assert_eq!(
            t.tolerated.min(2),
            brute_k,
            "{}: tolerated {t:?} vs brute force {brute_k}",
            cl.name
        );
    }
    let failing = report.n_minus_1.iter().filter(|r| !r.not_restarted.is_empty()).count();
    let tolerated = report.clusters.iter().map(|c| c.failures_tolerated.tolerated).collect();
    eprintln!("N-1 failing hosts {failing}, tolerated {tolerated:?}");
    (failing, tolerated)
}

#[test]
fn n1_and_tolerance_agree_with_brute_force_on_a_tight_cluster() {
    // 4 hosts of 16 GiB; 20 HA VMs of 2 GiB: a single failure is absorbed, not all pairs.
    let got = check(&Lab {
        clusters: vec![vec![(8, 16); 4]],
        ha: 20,
        ha_mem: 2048,
        plain: 0,
        algorithm: "firstfit",
        zone_pool: false,
    });
    assert_eq!(got, (0, vec![1]));
}

#[test]
fn n1_and_tolerance_agree_with_brute_force_when_one_host_cannot_be_covered() {
    // Uneven hosts, firstfit packs the big one: losing it leaves VMs down.
    let got = check(&Lab {
        clusters: vec![vec![(16, 32), (8, 8), (8, 8)]],
        ha: 14,
        ha_mem: 2048,
        plain: 2,
        algorithm: "firstfit",
        zone_pool: false,
    });
    assert_eq!(got, (1, vec![0]));
}

#[test]
fn n1_and_tolerance_agree_with_brute_force_on_two_clusters_and_a_zone_pool() {
    // HA VMs may restart in the other cluster (zone-wide storage).
    let got = check(&Lab {
        clusters: vec![vec![(8, 16); 3], vec![(8, 16); 3]],
        ha: 24,
        ha_mem: 2048,
        plain: 4,
        algorithm: "firstfitleastconsumed",
        zone_pool: true,
    });
    assert_eq!(got, (0, vec![2, 2]));
}

#[test]
fn n1_agrees_with_brute_force_with_the_random_allocator() {
    let got = check(&Lab {
        clusters: vec![vec![(8, 12); 5]],
        ha: 18,
        ha_mem: 2048,
        plain: 3,
        algorithm: "random",
        zone_pool: false,
    });
    assert_eq!(got, (0, vec![1]));
}
