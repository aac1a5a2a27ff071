//! The controller's input journal on the durable Store: a simulated run writes
//! its inputs and snapshots to a real SQLite file (and PostgreSQL when
//! `STRATUS_TEST_POSTGRES_URL` is set, as `.ci/run` does); a fresh process-level
//! open of the same database recovers a controller whose state hash equals the
//! live one, also when the newest snapshot is damaged.

use stratus_core::controller::journal::InputJournal;
use stratus_runtime::{Store, StoreJournal};
use stratus_sim::runner::{RunOptions, Runner};

const LAB: &str = r#"
[scenario]
name = "journal-lab"
seed = 9
duration = "30m"

[[zones]]
name = "z1"

[[zones.networks]]
name = "guest"
cidr = "10.1.0.0/24"

[[zones.pods]]
name = "p1"
gateway = "172.16.1.1"
netmask = "255.255.255.0"
start_ip = "172.16.1.10"
end_ip = "172.16.1.250"

[[zones.pods.clusters]]
name = "c1"
hosts = [{ prefix = "kvm", count = 3, cores = 8, mhz = 2400, memory_gib = 32 }]
pools = [{ name = "ps1", capacity_gib = 2000 }]

[[offerings]]
name = "small"
cpu = 1
mhz = 1000
memory_mb = 1024
ha = true

[[templates]]
name = "tiny"
size_gib = 2

[[accounts]]
name = "alice"

[[workload]]
account = "alice"
offering = "small"
template = "tiny"
network = "guest"
arrival = { kind = "poisson", per_hour = 120 }
lifetime = { kind = "exponential", mean = "10m" }

[[faults.scheduled]]
at = "8m"
kind = "host_crash"
host = "kvm2"

[[faults.scheduled]]
at = "15m"
kind = "management_restart"
downtime = "20s"
"#;

/// Runs the lab journaling to `url`; returns the live controller's hash.
fn run_lab(url: &str) -> String {
    let s = stratus_sim::scenario::parse(LAB, "journal-lab.toml").unwrap();
    let built = stratus_sim::scenario::build(&s).unwrap();
    let mut r = Runner::new(s, built.cloud, &RunOptions::default());
    r.engine.snapshot_every = 300;
    r.engine
        .attach_journal(Box::new(StoreJournal::open(url).unwrap()))
        .unwrap();
    r.run(&mut |_, _| {});
    assert!(r.engine.violations.is_empty(), "{:?}", r.engine.violations);
    assert_eq!(
        r.engine.recoveries, 1,
        "the management restart recovered from the store"
    );
    // Make the tail durable, as a clean shutdown would.
    r.engine.crash_management(r.engine.now + 1);
    r.engine.ctl.state_hash()
}

fn recovered_hash(url: &str) -> (String, u64) {
    let mut j = StoreJournal::open(url).unwrap();
    let (ctl, seq) = j.recover().unwrap();
    (ctl.state_hash(), seq)
}

fn damage_newest_snapshot(url: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open(url).await.unwrap();
        let q = "UPDATE snapshots SET payload = $1 WHERE seq = (SELECT max(seq) FROM snapshots)";
        match &store {
            Store::Sqlite(p) => sqlx::query(q).bind(vec![0u8; 8]).execute(p).await.map(|_| ()),
            Store::Postgres(p) => sqlx::query(q).bind(vec![0u8; 8]).execute(p).await.map(|_| ()),
        }
        .unwrap();
        store.close().await;
    });
}

fn check(url: &str) {
    let live = run_lab(url);
    let (hash, seq) = recovered_hash(url);
    assert!(seq > 500, "journal length {seq}");
    assert_eq!(hash, live, "recovery from {url} rebuilds the exact state");
    damage_newest_snapshot(url);
    let (hash, _) = recovered_hash(url);
    assert_eq!(hash, live, "a damaged newest snapshot falls back to the older one");
}

#[test]
fn recovery_from_a_sqlite_file_rebuilds_the_exact_state() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/stratus.db", dir.path().display());
    check(&url);
}

#[test]
fn recovery_from_postgresql_rebuilds_the_exact_state() {
    let Ok(base) = std::env::var("STRATUS_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("STRATUS_CI").is_none(),
            "STRATUS_CI is set but STRATUS_TEST_POSTGRES_URL is not"
        );
        eprintln!("postgres journal test skipped: STRATUS_TEST_POSTGRES_URL unset");
        return;
    };
    let schema = format!(
        "journal_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admin = rt.block_on(sqlx::PgPool::connect(&base)).unwrap();
    let ddl = |sql: String| {
        rt.block_on(sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin))
            .unwrap()
    };
    ddl(format!("CREATE SCHEMA \"{schema}\""));
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    check(&url);
    ddl(format!("DROP SCHEMA \"{schema}\" CASCADE"));
}
