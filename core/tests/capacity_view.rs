//! listCapacity rows and capacity alerts.

mod common;

use stratus_core::capacity::CapacityType;
use stratus_core::cloud::CapacityScope;
use stratus_core::units::GIB;

#[test]
fn list_capacity_rows_use_cloudstack_type_codes_and_sum_up() {
    let mut l = common::lab(5, 2, 2);
    l.cloud
        .add_image_store("sec1", Some(l.zone), "nfs://192.0.2.10/export/secondary", 500 * GIB)
        .unwrap();
    for i in 0..3 {
        l.deploy(&format!("v{i}"), l.big).unwrap();
    }
    let z = l.cloud.zone_idx(l.zone).unwrap();
    let rows = l.cloud.capacity(CapacityScope::Zone(z), None);
    let codes: Vec<u32> = rows.iter().map(|r| r.capacity_type).collect();
    assert_eq!(codes, vec![0, 1, 2, 3, 6, 9, 90]);
    let cpu = rows.iter().find(|r| r.capacity_type == 1).unwrap();
    assert_eq!(
        (cpu.capacitytotal, cpu.capacityused, cpu.percentused.as_str()),
        (32000, 12000, "37.50")
    );
    let mem = rows.iter().find(|r| r.capacity_type == 0).unwrap();
    assert_eq!((mem.capacitytotal, mem.capacityused), (64 * GIB, 24 * GIB));
    let alloc = rows.iter().find(|r| r.capacity_type == 3).unwrap();
    assert_eq!(
        (alloc.capacitytotal, alloc.capacityused),
        (2 * 2 * 1024 * GIB, 3 * 2 * GIB)
    );
    let sec = rows.iter().find(|r| r.capacity_type == 6).unwrap();
    assert_eq!((sec.capacitytotal, sec.capacityused), (500 * GIB, 2 * GIB));
    // Cluster rows sum to the zone row.
    let per_cluster: u64 = (0..2)
        .map(|c| {
            let ci = l.cloud.cluster_idx(l.clusters[c]).unwrap();
            l.cloud.capacity(CapacityScope::Cluster(ci), Some(CapacityType::Cpu))[0].capacityused
        })
        .sum();
    assert_eq!(per_cluster, cpu.capacityused);
    let json = serde_json::to_value(cpu).unwrap();
    assert_eq!(json["type"], 1);
    assert_eq!(json["percentused"], "37.50");
}

#[test]
fn notification_thresholds_raise_and_clear_alerts() {
    let mut l = common::lab(5, 1, 2);
    assert!(l.cloud.check_capacity_alerts().is_empty());
    // 3 bigs = 12000/16000 MHz = 0.75 CPU and 24/32 GiB = 0.75 memory: both cross 0.75.
    let ids: Vec<_> = (0..3).map(|i| l.deploy(&format!("v{i}"), l.big).unwrap()).collect();
    let raised = l.cloud.check_capacity_alerts();
    let kinds: Vec<(bool, u32)> = raised.iter().map(|a| (a.raised, a.alert_type)).collect();
    assert_eq!(kinds, vec![(true, 1), (true, 0)]);
    assert!(
        raised[0]
            .description
            .starts_with("Low available CPU in cluster c1 (pod p1, zone z1): 0.75 >= notificationthreshold 0.75"),
        "{}",
        raised[0].description
    );
    // Checking again raises nothing new.
    assert!(l.cloud.check_capacity_alerts().is_empty());
    assert_eq!(l.cloud.active_alerts().len(), 2);
    l.cloud.destroy_vm(ids[0], true).unwrap();
    let cleared = l.cloud.check_capacity_alerts();
    assert_eq!(cleared.iter().filter(|a| !a.raised).count(), 2);
    assert!(l.cloud.active_alerts().is_empty());
}
