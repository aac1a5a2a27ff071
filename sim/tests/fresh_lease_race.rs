//! `no-down-with-fresh-lease` flags a host marked Down while it had been
//! renewing its lease for long enough that management's reads must have seen
//! it. A host that resumes renewing (powered back on after a crash, a lease
//! stop ending) in the same instant management reads its lease is judged on
//! that read; marking it Down then is right. Fuzz seeds 2675 of double-fault
//! and 4594 of storage-outage were that race (checker false alarms). The
//! planted "live partitioned host marked Down" bug is still caught by
//! `dangerous_faults.rs`.

use stratus_sim::fuzz;

fn violations(file: &str, seed: u64) -> Vec<String> {
    let text = std::fs::read_to_string(format!("../scenarios/{file}.toml")).unwrap();
    let base = stratus_sim::scenario::parse(&text, file).unwrap();
    fuzz::run_seed(&base, seed, file, &fuzz::memory_journal)
        .unwrap()
        .failure
        .map(|f| f.violations)
        .unwrap_or_default()
}

#[test]
fn a_host_back_from_a_crash_judged_on_a_read_just_before_its_first_renewal_is_no_violation() {
    assert_eq!(violations("double-fault", 2675), Vec::<String>::new());
}

#[test]
fn a_host_whose_lease_stop_ends_as_management_reads_is_no_violation() {
    assert_eq!(violations("storage-outage", 4594), Vec::<String>::new());
}
