//! The web console in a real browser (headless Chromium through chromedriver
//! and fantoccini) against `stratus serve --demo` in this process: log in,
//! the zone wizard (a wrong field shows its error beside it and creates
//! nothing; then the zone is built on the simulator), deploy a VM and watch
//! its job, read a refusal's explanation, put the VM's host into maintenance
//! after reading the evacuation plan and watch the VM move, and check that a
//! user of one account never sees another's resources. Every page visited is
//! saved as a PNG under target/console-screenshots/ for a person to look at.
//!
//! Needs `chromium` and `chromedriver` (STRATUS_TEST_CHROMEDRIVER /
//! STRATUS_TEST_CHROMIUM, set by .ci/setup.d/20-chromium.sh); skipped without
//! them, a failure when STRATUS_CI is set.

mod support;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use stratus::serve::{Running, ServeOptions, start};
use support::{Proc, free_port};

const ADMIN_PW: &str = "console-admin-pw";

fn browser() -> Option<(String, String)> {
    let find = |var: &str, name: &str| {
        std::env::var(var).ok().or_else(|| {
            let p = PathBuf::from("/usr/bin").join(name);
            p.exists().then(|| p.display().to_string())
        })
    };
    match (
        find("STRATUS_TEST_CHROMEDRIVER", "chromedriver"),
        find("STRATUS_TEST_CHROMIUM", "chromium"),
    ) {
        (Some(d), Some(c)) => Some((d, c)),
        _ if std::env::var_os("STRATUS_CI").is_some() => {
            panic!("STRATUS_CI is set but chromium/chromedriver are missing (.ci/setup.d/20-chromium.sh)")
        }
        _ => {
            eprintln!("console browser tests skipped: no chromium/chromedriver");
            None
        }
    }
}

fn shots_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../console-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Ui {
    c: Client,
    base: String,
    story: &'static str,
    n: u32,
    _driver: Proc,
}

impl Ui {
    async fn open(story: &'static str, base: String, dir: &std::path::Path) -> Option<Ui> {
        let (driver, chromium) = browser()?;
        // This story's screenshots from an earlier run would mislead.
        for e in std::fs::read_dir(shots_dir()).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with(&format!("{story}-")) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let port = free_port();
        let proc = Proc::start_program(dir, "chromedriver", &driver, &[format!("--port={port}")]);
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"]
            }
        });
        let caps = caps.as_object().unwrap().clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        let c = loop {
            let conn = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(conn)
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!("chromedriver did not start: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        c.set_window_size(1280, 800).await.unwrap();
        Some(Ui {
            c,
            base,
            story,
            n: 0,
            _driver: proc,
        })
    }

    async fn go(&mut self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    /// Saves the page as `<story>-NN-<name>.png`.
    async fn shot(&mut self, name: &str) {
        self.n += 1;
        let png = self.c.screenshot().await.unwrap();
        let path = shots_dir().join(format!("{}-{:02}-{name}.png", self.story, self.n));
        std::fs::write(&path, png).unwrap();
    }

    async fn fill(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    async fn select(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        e.select_by_value(value).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Waits (up to 10 s) for an element: the previous click may still be loading.
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    async fn click_button(&self, label: &str) {
        let xp = format!("//button[normalize-space(.)='{label}'] | //a[normalize-space(.)='{label}']");
        self.c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(&xp))
            .await
            .unwrap_or_else(|_| panic!("no button {label}"))
            .click()
            .await
            .unwrap();
    }

    /// The text of an element, waiting (up to 10 s) for a page still loading.
    async fn text_of(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(e) = self.c.find(Locator::Css(css)).await
                && let Ok(t) = e.text().await
            {
                return t;
            }
            assert!(Instant::now() < deadline, "no {css} on {}", self.url().await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn body(&self) -> String {
        self.text_of("body").await
    }

    /// Waits until the page's text contains `what` (reloading with `reload`).
    async fn wait_text(&self, what: &str, secs: u64, reload: bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let b = self.body().await;
            if b.contains(what) {
                return b;
            }
            assert!(Instant::now() < deadline, "page never showed {what:?}; it shows:\n{b}");
            tokio::time::sleep(Duration::from_millis(300)).await;
            if reload {
                self.c.refresh().await.unwrap();
            }
        }
    }

    async fn login(&mut self, user: &str, pw: &str) {
        self.go("/client/login").await;
        self.fill("#username", user).await;
        self.fill("#password", pw).await;
        self.click("form button[type=submit]").await;
    }

    async fn logout(&self) {
        self.click_button("Log out").await;
    }

    /// Waits until the browser is on a URL ending with `suffix`.
    async fn wait_url(&self, suffix: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let u = self.url().await;
            if u.contains(suffix) {
                return;
            }
            assert!(Instant::now() < deadline, "never reached {suffix}; at {u}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until an element's text contains `want`.
    async fn wait_el_text(&self, css: &str, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let t = self.text_of(css).await;
            if t.contains(want) {
                return t;
            }
            assert!(Instant::now() < deadline, "{css} never showed {want:?}: {t:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn url(&self) -> String {
        self.c.current_url().await.unwrap().to_string()
    }
}

async fn server(dir: &std::path::Path) -> Running {
    let o = ServeOptions {
        db: format!("sqlite://{}", dir.join("console.db").display()),
        http: "127.0.0.1:0".parse().unwrap(),
        demo: true,
        admin_password: Some(ADMIN_PW.into()),
        seed: 7,
        fleet_file: Some(dir.join("fleet.json")),
        latency_ms: (5, 20),
        snapshot_every: 10_000,
        ..ServeOptions::default()
    };
    start(o).await.unwrap()
}

fn zone_count(r: &Running) -> usize {
    r.api.read(|c| c.cloud().inv.zones.len())
}

fn vm_host(r: &Running, name: &str) -> Option<(String, String, String)> {
    r.api.read(|c| {
        let cloud = c.cloud();
        let (_, v) = cloud.vms().find(|(_, v)| v.name == name)?;
        let host = v.host.map(|h| cloud.inv.host(h).id.0.to_string()).unwrap_or_default();
        Some((v.id.0.to_string(), host, format!("{:?}", v.state)))
    })
}

fn host_state(r: &Running, id: &str) -> String {
    r.api.read(|c| {
        let inv = &c.cloud().inv;
        let h = inv.hosts.iter().find(|h| h.id.0.to_string() == id).unwrap();
        h.resource_state.to_string()
    })
}

fn wizard_values() -> Vec<(&'static str, &'static str)> {
    vec![
        ("zone_name", "wiz-zone"),
        ("dns1", "8.8.8.8"),
        ("internaldns1", "10.0.0.2"),
        ("guestcidraddress", "10.2.0.0/16"),
        ("pod_name", "wiz-pod"),
        ("gateway", "192.168.50.1"),
        ("netmask", "255.0.255.0"), // wrong: not contiguous
        ("startip", "192.168.50.10"),
        ("endip", "192.168.50.200"),
        ("cluster_name", "wiz-cluster"),
        (
            "host_urls",
            "http://sim/wiz/h1/cpucore=8&cpuspeed=2400 http://sim/wiz/h2/cpucore=8&cpuspeed=2400",
        ),
        ("host_username", "root"),
        ("host_password", "secret"),
        ("pool_name", "wiz-primary"),
        ("pool_url", "nfs://10.0.0.5/export/wiz-primary"),
        ("store_name", "wiz-secondary"),
        ("store_url", "nfs://10.0.0.5/export/wiz-secondary"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_runs_the_wizard_deploys_reads_a_refusal_and_evacuates_a_host() {
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path()).await;
    let base = format!("http://{}", running.http);
    let Some(mut ui) = Ui::open("operator", base, dir.path()).await else {
        return;
    };

    // Log in: no default password; a wrong one shows CloudStack's refusal.
    ui.login("admin", "not-the-password").await;
    ui.wait_text("Failed to authenticate", 20, false).await;
    ui.shot("login-refused").await;
    ui.login("admin", ADMIN_PW).await;
    ui.wait_url("/client/dashboard").await;
    let b = ui.wait_text("Recent events", 20, false).await;
    for want in [
        "Zone lab-z1",
        "CPU (allocated MHz)",
        "notify at 75%",
        "disable at 85%",
        "Public IP addresses",
        "Infrastructure",
        "Global settings",
    ] {
        assert!(b.contains(want), "dashboard lacks {want}: {b}");
    }
    ui.shot("dashboard").await;

    // The wizard: one wrong field → its error beside it, nothing created.
    let zones_before = zone_count(&running);
    ui.go("/client/wizard").await;
    for (k, v) in wizard_values() {
        ui.fill(&format!("#wizard-{k}"), v).await;
    }
    ui.click_button("Create the zone").await;
    ui.wait_text("nothing was created", 20, false).await;
    let err = ui.wait_el_text("#wizard-netmask-error", "not a netmask").await;
    assert!(err.contains("255.0.255.0"), "netmask error: {err:?}");
    assert_eq!(
        ui.text_of("#wizard-gateway-error").await,
        "",
        "only the wrong field is marked"
    );
    assert!(ui.body().await.contains("nothing was created"));
    ui.shot("wizard-field-error").await;
    assert_eq!(zone_count(&running), zones_before, "a refused wizard created a zone");
    // A missing field too.
    ui.fill("#wizard-netmask", "255.255.255.0").await;
    ui.fill("#wizard-pod_name", "").await;
    ui.click_button("Create the zone").await;
    ui.wait_el_text("#wizard-pod_name-error", "is required").await;
    assert_eq!(ui.text_of("#wizard-netmask-error").await, "");
    assert_eq!(zone_count(&running), zones_before);
    // Fixed: the zone is built on the simulator.
    ui.fill("#wizard-pod_name", "wiz-pod").await;
    ui.click_button("Create the zone").await;
    ui.wait_text("Zone wiz-zone is ready.", 60, false).await;
    ui.shot("wizard-done").await;
    assert_eq!(zone_count(&running), zones_before + 1);
    ui.click_button("Open the zone").await;
    let b = ui.wait_text("wiz-primary", 20, false).await;
    assert!(b.contains("wiz-pod") && b.contains("wiz-secondary"), "{b}");
    ui.shot("zone").await;

    // Deploy a VM into the demo zone; the job page follows the job (htmx).
    let (zone, small, template) = running.api.read(|c| {
        let inv = &c.cloud().inv;
        let so = inv.service_offerings.iter().find(|o| o.name == "small").unwrap();
        (
            inv.zones[0].id.0.to_string(),
            so.id.0.to_string(),
            inv.templates[0].id.0.to_string(),
        )
    });
    ui.go("/client/instances/deploy").await;
    ui.fill("#deploy-name", "web-1").await;
    ui.select("#deploy-zoneid", &zone).await;
    ui.select("#deploy-serviceofferingid", &small).await;
    ui.select("#deploy-templateid", &template).await;
    ui.shot("deploy-form").await;
    ui.click_button("Deploy").await;
    ui.wait_url("/client/jobs/").await;
    ui.wait_text("Succeeded", 60, false).await;
    ui.shot("deploy-job-done").await;
    let (vm_id, host1, st) = vm_host(&running, "web-1").unwrap();
    assert_eq!(st, "Running");
    ui.go("/client/instances").await;
    assert!(ui.body().await.contains("web-1"));
    ui.shot("instances").await;

    // A refusal's explanation: an offering no host can hold.
    ui.go("/client/offerings").await;
    ui.fill("#offering-name", "huge").await;
    ui.fill("#offering-cpunumber", "64").await;
    ui.fill("#offering-cpuspeed", "4000").await;
    ui.fill("#offering-memory", "1048576").await;
    ui.click_button("Add offering").await;
    ui.wait_text("huge", 20, false).await;
    let huge = running.api.read(|c| {
        c.cloud()
            .inv
            .service_offerings
            .iter()
            .find(|o| o.name == "huge")
            .unwrap()
            .id
            .0
            .to_string()
    });
    ui.go("/client/instances/deploy").await;
    ui.fill("#deploy-name", "too-big").await;
    ui.select("#deploy-zoneid", &zone).await;
    ui.select("#deploy-serviceofferingid", &huge).await;
    ui.select("#deploy-templateid", &template).await;
    ui.click_button("Deploy").await;
    let b = ui
        .wait_text("Unable to find a suitable deployment destination", 60, false)
        .await;
    assert!(b.contains("Failed") || b.contains("error 533"), "{b}");
    ui.shot("refusal-explained").await;

    // The migration candidates with the allocator's reasons.
    ui.go(&format!("/client/vm/{vm_id}/migrate")).await;
    let b = ui.body().await;
    assert!(b.contains("Candidate hosts") && b.contains("Suitable"), "{b}");
    ui.shot("migrate-candidates").await;

    // Maintenance: the plan first, then confirm; the VM moves off the host.
    ui.go(&format!("/client/hosts/{host1}")).await;
    let b = ui.body().await;
    assert!(b.contains("Evidence behind the status") && b.contains("web-1"), "{b}");
    ui.shot("host").await;
    ui.click_button("Prepare for maintenance…").await;
    let b = ui.wait_text("Evacuation plan", 20, false).await;
    assert!(b.contains("Evacuation plan") && b.contains("web-1"), "{b}");
    ui.shot("maintenance-plan").await;
    ui.click_button("Confirm: prepare for maintenance").await;
    ui.wait_text("Succeeded", 60, false).await;
    ui.shot("maintenance-job").await;
    ui.go(&format!("/client/vm/{vm_id}")).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, h, st) = vm_host(&running, "web-1").unwrap();
        if h != host1 && st == "Running" {
            break;
        }
        assert!(Instant::now() < deadline, "web-1 never left its host ({st})");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ui.go(&format!("/client/vm/{vm_id}")).await;
    let b = ui.body().await;
    assert!(b.contains("Running"), "{b}");
    ui.shot("vm-moved").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while host_state(&running, &host1) != "Maintenance" {
        assert!(Instant::now() < deadline, "the host never reached Maintenance");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ui.go(&format!("/client/hosts/{host1}")).await;
    ui.wait_text("Resource state\nMaintenance", 20, true).await;
    assert!(ui.body().await.contains("No instances run here."));
    ui.shot("host-in-maintenance").await;
    // Now the old host is a candidate no more, and the page says why.
    ui.go(&format!("/client/vm/{vm_id}/migrate")).await;
    let b = ui.wait_text("Not suitable", 20, false).await;
    assert!(b.contains("resource state Maintenance"), "{b}");
    ui.shot("migrate-refusal-reason").await;

    // Destroy and recover, as the admin sees destroyed instances.
    ui.go(&format!("/client/vm/{vm_id}")).await;
    ui.click_button("Destroy").await;
    ui.wait_url("/client/jobs/").await;
    ui.wait_text("Succeeded", 60, false).await;
    ui.go(&format!("/client/vm/{vm_id}")).await;
    ui.wait_text("State\nDestroyed", 20, false).await;
    ui.click_button("Recover").await;
    ui.wait_text("State\nStopped", 20, false).await;
    ui.shot("vm-recovered").await;

    // Register a template by URL: listed, with its readiness.
    ui.go("/client/templates").await;
    ui.fill("#register-name", "debian-12").await;
    ui.fill("#register-url", "http://images.example.org/debian-12.qcow2")
        .await;
    ui.click_button("Register").await;
    let b = ui.wait_text("debian-12", 20, false).await;
    assert!(b.contains("Ready") || b.contains("Not ready"), "{b}");
    ui.shot("templates").await;
    // A setting changed at cluster scope; a bad value is refused with the reason.
    let cluster = running.api.read(|c| c.cloud().inv.clusters[0].id.0.to_string());
    ui.go(&format!(
        "/client/settings?scope=cluster&scopeid={cluster}&keyword=cpu.allocated.capacity.disablethreshold"
    ))
    .await;
    ui.fill("#setting-0", "0.9").await;
    ui.click_button("Save").await;
    ui.wait_text("is now 0.9", 20, false).await;
    ui.fill("#setting-0", "lots").await;
    ui.click_button("Save").await;
    let b = ui.wait_text("error 431", 20, false).await;
    assert!(b.contains("cluster.cpu.allocated.capacity.disablethreshold"), "{b}");
    ui.shot("settings-refused").await;

    // What-if: the form when the server has runWhatIf, else an honest notice.
    ui.go("/client/whatif").await;
    let b = ui.wait_text("What-if", 20, false).await;
    if stratus_api::registry::commands().contains_key("runWhatIf") {
        assert!(b.contains("Run what-if"), "{b}");
        // Fail the host web-1 now runs on: the report comes back as a page.
        let (_, now_on, _) = vm_host(&running, "web-1").unwrap();
        ui.fill("#whatif-failhostids", &now_on).await;
        ui.shot("whatif-form").await;
        ui.click_button("Run what-if").await;
        ui.wait_url("/client/jobs/").await;
        ui.wait_text("Open the report", 120, false).await;
        ui.click_button("Open the report").await;
        ui.wait_url("/client/whatif/report/").await;
        ui.wait_text("What-if report", 20, false).await;
        // The server's own report (the page `stratus whatif --format html`
        // writes) in a frame: its tables and plots are drawn.
        ui.c.enter_frame(0).await.unwrap();
        let report = ui.body().await;
        let plots = ui.c.find_all(Locator::Css("svg")).await.unwrap().len();
        ui.c.enter_parent_frame().await.unwrap();
        assert!(
            report.contains("N-1") && report.lines().count() > 10,
            "an empty report: {report}"
        );
        assert!(plots >= 1, "no plot in the report");
    } else {
        assert!(b.contains("What-if is not available on this server"), "{b}");
    }
    ui.shot("whatif").await;

    // Events and settings pages read through the API.
    ui.go("/client/events").await;
    ui.shot("events").await;
    ui.go("/client/settings?keyword=capacity").await;
    assert!(
        ui.body()
            .await
            .contains("cluster.cpu.allocated.capacity.disablethreshold")
    );
    ui.shot("settings").await;
    // Usable on a phone.
    ui.c.set_window_size(390, 844).await.unwrap();
    ui.go("/client/instances").await;
    ui.shot("phone-instances").await;
    ui.c.clone().close().await.unwrap();
    running.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_never_sees_another_accounts_resources() {
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path()).await;
    let base = format!("http://{}", running.http);
    let Some(mut ui) = Ui::open("tenants", base, dir.path()).await else {
        return;
    };
    ui.login("admin", ADMIN_PW).await;
    for (user, account) in [("alice", "acme"), ("bob", "globex")] {
        ui.go("/client/accounts").await;
        ui.fill("#account-username", user).await;
        ui.fill("#account-password", "tenant-password").await;
        ui.fill("#account-email", &format!("{user}@example.com")).await;
        ui.fill("#account-firstname", user).await;
        ui.fill("#account-lastname", "Tenant").await;
        ui.fill("#account-account", account).await;
        ui.select("#account-roletype", "User").await;
        ui.click_button("Add account").await;
        ui.wait_text(account, 20, false).await;
    }
    ui.shot("accounts").await;
    ui.logout().await;

    // alice deploys.
    ui.login("alice", "tenant-password").await;
    ui.wait_url("/client/instances").await;
    let b = ui.wait_text("Deploy an instance", 20, false).await;
    assert!(
        !b.contains("Infrastructure") && !b.contains("Global settings"),
        "user nav: {b}"
    );
    ui.go("/client/instances/deploy").await;
    ui.fill("#deploy-name", "alice-vm").await;
    ui.click_button("Deploy").await;
    ui.wait_text("Succeeded", 60, false).await;
    ui.go("/client/instances").await;
    assert!(ui.body().await.contains("alice-vm"));
    ui.shot("alice-instances").await;
    let (alice_vm, _, _) = vm_host(&running, "alice-vm").unwrap();
    // Her instance's life cycle from its page: stop, start, destroy, recover.
    for (button, state) in [("Stop", "Stopped"), ("Start", "Running"), ("Destroy", "Destroyed")] {
        ui.go(&format!("/client/vm/{alice_vm}")).await;
        ui.click_button(button).await;
        ui.wait_url("/client/jobs/").await;
        ui.wait_text("Succeeded", 60, false).await;
        assert_eq!(vm_host(&running, "alice-vm").unwrap().2, state, "after {button}");
    }
    // A user does not see destroyed instances (allow.user.view.destroyed.vm, as CloudStack).
    ui.go(&format!("/client/vm/{alice_vm}")).await;
    ui.wait_text("Unable to find virtual machine", 20, false).await;
    ui.shot("alice-destroyed").await;
    // Her own API keys, the secret shown once.
    ui.go("/client/accounts").await;
    ui.click_button("Generate new keys").await;
    let b = ui.wait_text("Secret key", 20, false).await;
    assert!(!b.contains("bob"), "{b}");
    ui.shot("alice-keys").await;
    ui.logout().await;

    // bob sees none of it, not even by id, and no admin pages.
    ui.login("bob", "tenant-password").await;
    ui.wait_url("/client/instances").await;
    let b = ui.wait_text("No instances match.", 20, false).await;
    assert!(!b.contains("alice-vm"), "bob sees alice's VM: {b}");
    assert!(b.contains("No instances match."), "{b}");
    ui.shot("bob-instances").await;
    ui.go(&format!("/client/vm/{alice_vm}")).await;
    let b = ui.body().await;
    assert!(b.contains("Unable to find virtual machine"), "{b}");
    assert!(!b.contains("alice-vm"));
    ui.shot("bob-alice-vm-by-id").await;
    ui.go("/client/hosts").await;
    let b = ui.body().await;
    assert!(b.contains("is not available for user"), "{b}");
    ui.shot("bob-hosts-refused").await;
    ui.go("/client/events").await;
    assert!(!ui.body().await.contains("alice"), "bob reads alice's events");
    ui.c.clone().close().await.unwrap();
    running.stop();
}
