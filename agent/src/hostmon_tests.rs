//! The host monitor against the fake host, alone and beside the agent's lease
//! loop (which follows it and takes over while it is gone).

use super::*;
use crate::agent::fake::FakeHost;
use crate::agent::{Hooks, HostMonitorLink};
use stratus_wire::ids::VmId;
use stratus_wire::uuid::Uuid;
use tokio::task::JoinHandle;

const HOST: HostId = HostId(Uuid::from_u128(1));
const POOL: PoolId = PoolId(Uuid::from_u128(2));
const VM: VmId = VmId(Uuid::from_u128(3));
const S: Duration = Duration::from_secs(1);

fn run_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stratus-hostmon-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(dir: &Path) -> MonitorConfig {
    MonitorConfig {
        run_dir: dir.to_path_buf(),
        host: HOST,
        pools: vec![POOL],
        every: S,
        lease_timeout: 3 * S,
    }
}

/// A monitor (1 s rounds, 3 s timeout) until the returned sender fires or the task is aborted.
fn monitor(
    host: &Arc<FakeHost>,
    dir: &Path,
    hw: Option<HardwareWatchdog>,
) -> (Arc<MonitorStats>, JoinHandle<()>, tokio::sync::oneshot::Sender<()>) {
    let stats = Arc::new(MonitorStats::default());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_monitor(host.clone(), config(dir), hw, stats.clone(), async {
        let _ = rx.await;
    }));
    (stats, task, tx)
}

/// The agent's half: its lease loop beside the monitor (takeover after 3 s),
/// and a management server that answers every second while `answering`.
struct AgentSide {
    stats: Arc<AgentStats>,
    tasks: Vec<JoinHandle<()>>,
}

fn start_agent(host: &Arc<FakeHost>, dir: &Path, answering: Duration) -> AgentSide {
    let iso = Isolation::new(3 * S).with_contact_stamp(dir);
    let stats = Arc::new(AgentStats::default());
    let link = HostMonitorLink {
        run_dir: dir.to_path_buf(),
        takeover_after: 3 * S,
    };
    let lease = tokio::spawn(crate::agent::lease::lease_loop(
        host.clone(),
        HOST,
        vec![POOL],
        S,
        iso.clone(),
        stats.clone(),
        Arc::new(Hooks::default()),
        Some(link),
    ));
    let server_iso = iso.clone();
    let server = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        while start.elapsed() < answering {
            server_iso.contact(); // a pong
            tokio::time::sleep(S).await;
        }
    });
    AgentSide {
        stats,
        tasks: vec![lease, server],
    }
}

impl AgentSide {
    /// `kill -9` of the agent: its loops stop, its stamps stay as they were.
    fn kill(&self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

/// Sleeps in small steps, so the real-time file system keeps up with the paused clock.
async fn pass(d: Duration) {
    let until = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_agents_death_leaves_the_lease_renewed_and_the_vms_running() {
    let dir = run_dir("agent-death");
    let host = Arc::new(FakeHost::with_running(&[VM]));
    let (stats, task, _stop) = monitor(&host, &dir, None);
    let agent = start_agent(&host, &dir, Duration::from_secs(3600));
    pass(10 * S).await;
    assert!(
        stats.contacts.load(Relaxed) >= 5,
        "the agent's contacts reach the monitor"
    );
    let by_agent = host.heartbeats();
    agent.kill();
    let renewals = stats.renewals.load(Relaxed);
    pass(60 * S).await; // 20 lease timeouts with no word from management
    assert_eq!(
        host.running(),
        vec![VM],
        "the lease renews: not isolated, nothing stopped"
    );
    assert!(
        stats.renewals.load(Relaxed) >= renewals + 55,
        "the monitor kept renewing"
    );
    assert_eq!(stats.fence.self_fenced.load(Relaxed), 0);
    assert!(host.heartbeats() >= by_agent + 55);
    // The agent comes back: it follows the monitor, which still renews.
    let again = start_agent(&host, &dir, Duration::from_secs(3600));
    pass(10 * S).await;
    assert_eq!(host.running(), vec![VM]);
    assert_eq!(again.stats.self_fenced.load(Relaxed), 0);
    again.kill();
    task.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(start_paused = true)]
async fn with_a_live_monitor_only_the_monitor_writes_leases_and_the_agent_takes_over_while_it_is_gone() {
    let dir = run_dir("takeover");
    let host = Arc::new(FakeHost::with_running(&[VM]));
    let (stats, task, _stop) = monitor(&host, &dir, None);
    let agent = start_agent(&host, &dir, Duration::from_secs(3600));
    pass(20 * S).await;
    assert_eq!(
        host.heartbeats(),
        stats.renewals.load(Relaxed),
        "every renewal is the monitor's: the agent wrote none"
    );
    task.abort(); // kill -9 of the monitor
    let at_death = host.heartbeats();
    pass(2 * S).await;
    assert_eq!(host.heartbeats(), at_death, "the agent waits out the takeover bound");
    pass(20 * S).await;
    assert!(host.heartbeats() >= at_death + 15, "the agent renews the leases itself");
    assert_eq!(host.running(), vec![VM]);
    // The monitor restarts: the agent stops writing again.
    let (stats2, task2, _stop2) = monitor(&host, &dir, None);
    pass(3 * S).await;
    let (total, mine) = (host.heartbeats(), stats2.renewals.load(Relaxed));
    pass(10 * S).await;
    assert_eq!(
        host.heartbeats() - total,
        stats2.renewals.load(Relaxed) - mine,
        "only the monitor writes once it is back"
    );
    assert_eq!(agent.stats.self_fenced.load(Relaxed), 0);
    agent.kill();
    task2.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(start_paused = true)]
async fn isolated_the_monitor_stops_the_vms_and_keeps_stopping_them_until_a_sign_of_life() {
    let dir = run_dir("isolated");
    let host = Arc::new(FakeHost::with_running(&[VM]));
    let (stats, task, _stop) = monitor(&host, &dir, None);
    let agent = start_agent(&host, &dir, 5 * S); // management silent from 5 s on
    pass(5 * S).await;
    host.set_storage(false); // and the storage is lost too
    pass(S).await;
    assert_eq!(host.running(), vec![VM], "not before the lease timeout");
    pass(5 * S).await;
    assert!(host.running().is_empty(), "isolated: the VM was stopped");
    // Both guards run the same rule at the same moment: whichever lists the
    // domains first stops the VM (the other finds nothing running).
    let fences = || {
        (
            stats.fence.self_fenced.load(Relaxed),
            agent.stats.self_fenced.load(Relaxed),
        )
    };
    let (monitor_fenced, agent_fenced) = fences();
    assert!(monitor_fenced + agent_fenced >= 1, "a guard stopped it: {:?}", fences());
    host.start(VM); // something starts it again while still isolated
    pass(2 * S).await;
    assert!(host.running().is_empty(), "stopped again");
    host.set_storage(true); // a sign of life
    pass(2 * S).await;
    host.start(VM);
    pass(10 * S).await;
    assert_eq!(host.running(), vec![VM], "not isolated any more: nothing stopped");
    let (m, a) = fences();
    assert!(
        m <= 1 && a <= 1 && m + a >= 1,
        "once per isolation in each guard: {:?}",
        fences()
    );
    agent.kill();
    task.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_isolated_host_is_stopped_by_the_agent_too_while_the_monitor_lives() {
    // The monitor's stamp says it lives but renews nothing (storage lost):
    // the agent's watchdog, fed the monitor's renewals, reaches the same verdict.
    let dir = run_dir("second-guard");
    let host = Arc::new(FakeHost::with_running(&[VM]));
    host.set_storage(false);
    let writer_dir = dir.clone();
    let writer = tokio::spawn(async move {
        for seq in 1.. {
            let s = Stamp {
                pid: 1,
                seq,
                at_ms: stamp::wall_ms(),
                lease_renewed_ms: None,
                lease_renewals: 0,
            };
            stamp::write(&writer_dir.join(stamp::MONITOR_FILE), &s).unwrap();
            tokio::time::sleep(S).await;
        }
    });
    let agent = start_agent(&host, &dir, Duration::ZERO); // management never heard from
    pass(10 * S).await;
    assert!(host.running().is_empty(), "the agent's own watchdog stopped the VM");
    assert_eq!(agent.stats.self_fenced.load(Relaxed), 1);
    assert_eq!(host.heartbeats(), 0);
    agent.kill();
    writer.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_hardware_watchdog_is_petted_until_a_stuck_fence_and_disarmed_on_a_clean_stop() {
    let dir = run_dir("hw");
    let device = dir.join("watchdog"); // a plain file standing in for /dev/watchdog
    std::fs::write(&device, b"").unwrap();
    let host = Arc::new(FakeHost::with_running(&[VM]));
    let hw = HardwareWatchdog::open(&device).unwrap();
    let (stats, task, stop) = monitor(&host, &dir, Some(hw));
    pass(5 * S).await;
    let pets = stats.pets.load(Relaxed);
    assert!(pets >= 4, "petted every round: {pets}");
    assert_eq!(std::fs::read(&device).unwrap(), vec![0u8; pets as usize]);
    // Isolated (storage lost, management never heard from) and the VM cannot be stopped.
    host.set_stop_fails(true);
    host.set_storage(false);
    pass(10 * S).await;
    let stuck = stats.pets.load(Relaxed);
    pass(10 * S).await;
    assert_eq!(host.running(), vec![VM], "the hypervisor refuses to stop it");
    assert_eq!(
        stats.pets.load(Relaxed),
        stuck,
        "no more pets: the device resets the host"
    );
    host.set_stop_fails(false);
    pass(2 * S).await;
    assert!(host.running().is_empty());
    assert!(stats.pets.load(Relaxed) > stuck, "stopped: petting again");
    stop.send(()).unwrap();
    task.await.unwrap();
    let written = std::fs::read(&device).unwrap();
    assert_eq!(written.last(), Some(&b'V'), "the magic close on a deliberate stop");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_monitor_stamps_each_round_and_its_renewals() {
    let dir = run_dir("stamp");
    let host = Arc::new(FakeHost::with_running(&[VM]));
    let (_stats, task, _stop) = monitor(&host, &dir, None);
    pass(3 * S).await;
    let s = stamp::read(&dir.join(stamp::MONITOR_FILE)).expect("a stamp");
    assert_eq!(s.pid, std::process::id());
    assert!(s.seq >= 3 && s.lease_renewed_ms.is_some(), "{s:?}");
    host.set_storage(false);
    pass(3 * S).await;
    let t = stamp::read(&dir.join(stamp::MONITOR_FILE)).unwrap();
    assert!(t.seq > s.seq, "still stamping without storage");
    let u = {
        pass(2 * S).await;
        stamp::read(&dir.join(stamp::MONITOR_FILE)).unwrap()
    };
    assert_eq!(u.lease_renewed_ms, t.lease_renewed_ms, "no renewal without storage");
    task.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_host_id_comes_from_the_agents_credentials() {
    let dir = run_dir("creds");
    let path = dir.join("state.json");
    let waiting = tokio::spawn({
        let path = path.clone();
        async move { wait_for_host(&path, Duration::from_millis(20)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "no credentials yet: it waits");
    Credentials {
        host_id: HOST,
        secret: "s".into(),
        ca_fingerprint: "ab".repeat(32),
    }
    .save(&path)
    .unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), HOST);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_lost_link_while_the_monitor_renews_stops_nothing_in_either_process() {
    // The agent lives but management is silent from 2 s on: the agent's own
    // watchdog must count the monitor's renewals, or it would stop the VM.
    let dir = run_dir("lost-link");
    let host = Arc::new(FakeHost::with_running(&[VM]));
    let (stats, task, _stop) = monitor(&host, &dir, None);
    let agent = start_agent(&host, &dir, 2 * S);
    pass(60 * S).await;
    assert_eq!(host.running(), vec![VM]);
    assert_eq!(
        agent.stats.self_fenced.load(Relaxed),
        0,
        "the agent's watchdog saw the renewals"
    );
    assert_eq!(stats.fence.self_fenced.load(Relaxed), 0);
    assert_eq!(
        host.heartbeats(),
        stats.renewals.load(Relaxed),
        "only the monitor renewed"
    );
    agent.kill();
    task.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}
