#!/usr/bin/env python3
"""Stratus versus raw libvirt on the CI's KVM hosts (issue 9's "Measure"), in one run.

Stratus side, through the CloudStack API only (`stratus serve` plus two
`stratus agent --libvirt` for host A and host B, as tests/kvm_e2e.rs sets them up):
per round, deployVirtualMachine on A until the guest's marker is on its console,
migrateVirtualMachine A -> B (live), stopVirtualMachine forced=true on B (destroy), then
an untimed destroy + expunge. Raw side: `.ci/kvm-raw-bench.sh` (the same kind of domain
with virsh: define + start until the marker, `virsh migrate --live`, `virsh destroy`).
Prints per-operation medians, the Stratus/raw ratios (target <= 1.10) and the load
average, as JSON on stdout; progress on stderr.

Usage: python3 .ci/kvm-bench.py STRATUS_BINARY [ROUNDS]
  STRATUS_BINARY built with `--features kvm`; the services of .ci/kvm-setup.sh running
  (reads $STRATUS_CI_KVM_DIR/env.sh, default /var/lib/stratus-ci/kvm/env.sh).
Python standard library only.
"""

import base64
import hashlib
import hmac
import http.cookiejar
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

PASSWORD = "kvm-bench-admin-password-1"
HERE = os.path.dirname(os.path.abspath(__file__))


def load_env():
    path = os.path.join(os.environ.get("STRATUS_CI_KVM_DIR", "/var/lib/stratus-ci/kvm"), "env.sh")
    with open(path) as f:
        for line in f:
            m = re.match(r"export (\w+)='(.*)'$", line.strip())
            if m:
                os.environ.setdefault(m.group(1), m.group(2))


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"kvm-bench: {name} is not set (run .ci/kvm-setup.sh)")
    return value


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(text):
    print(f"[kvm-bench] {text}", file=sys.stderr, flush=True)


class Api:
    """Signed CloudStack GETs with keys from a session login."""

    def __init__(self, base):
        self.base = base
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        form = urllib.parse.urlencode(
            {"command": "login", "username": "admin", "password": PASSWORD, "domain": "/", "response": "json"}
        ).encode()
        login = json.load(opener.open(f"{base}/client/api", form))["loginresponse"]
        query = urllib.parse.urlencode(
            {
                "command": "registerUserKeys",
                "id": login["userid"],
                "sessionkey": login["sessionkey"],
                "response": "json",
            }
        )
        keys = json.load(opener.open(f"{base}/client/api?{query}"))["registeruserkeysresponse"]["userkeys"]
        self.key, self.secret = keys["apikey"], keys["secretkey"]

    def call(self, command, **params):
        params = {"command": command, "response": "json", "apikey": self.key, **params}
        enc = lambda v: urllib.parse.quote(str(v), safe="-._*")  # noqa: E731 (Java URLEncoder, %20)
        pairs = sorted((k, enc(v)) for k, v in params.items())
        canonical = "&".join(f"{k}={v}" for k, v in pairs)
        sig = base64.b64encode(hmac.new(self.secret.encode(), canonical.lower().encode(), hashlib.sha1).digest())
        url = f"{self.base}/client/api?{canonical}&signature={enc(sig.decode())}"
        try:
            body = json.load(urllib.request.urlopen(url, timeout=120))
        except urllib.error.HTTPError as e:
            sys.exit(f"kvm-bench: {command} failed: {e.code} {e.read().decode(errors='replace')}")
        return next(iter(body.values()))

    def job(self, command, **params):
        jobid = self.call(command, **params)["jobid"]
        while True:
            r = self.call("queryAsyncJobResult", jobid=jobid)
            if r["jobstatus"] == 1:
                return r["jobresult"]
            if r["jobstatus"] == 2:
                sys.exit(f"kvm-bench: {command} failed: {r}")
            time.sleep(0.05)


def start(args, err_path):
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(err_path, "w"))


def agent(binary, work, name, server, token, uri, pool, net, console_dir):
    nfs = env("STRATUS_TEST_NFS_SERVER")
    args = [
        binary, "agent", "--server", server, "--token", token, "--name", name, "--libvirt", uri,
        "--domain-type", env("STRATUS_TEST_LIBVIRT_DOMAIN_TYPE"),
        "--pool", f"{pool}=nfs://{nfs}{env('STRATUS_TEST_NFS_PRIMARY_EXPORT')}#{env('STRATUS_TEST_NFS_PRIMARY_DIR')}",
        "--secondary", f"nfs://{nfs}{env('STRATUS_TEST_NFS_SECONDARY_EXPORT')}",
        "--secondary-local", env("STRATUS_TEST_NFS_SECONDARY_DIR"),
        "--bridge", env("STRATUS_TEST_OVS_BRIDGE"), "--bridge-kind", "ovs-netdev",
        "--network-vlan", f"{net}=100", "--console-dir", console_dir,
        "--migration-uri", uri, "--migration-data-uri", env("STRATUS_TEST_MIGRATE_URI"),
        "--state", os.path.join(work, f"{name}.creds"),
    ]  # fmt: skip
    return start(args, os.path.join(work, f"{name}.err"))


def setup(api, binary, work, agent_port, console_dir):
    """The zone of tests/kvm_e2e.rs: one KVM cluster of hosts A and B, NFS storage, a guest network."""
    nfs = env("STRATUS_TEST_NFS_SERVER")
    secondary = f"nfs://{nfs}{env('STRATUS_TEST_NFS_SECONDARY_EXPORT')}"
    zone = api.call("createZone", name="bench-zone", networktype="Advanced", dns1="8.8.8.8",
                    internaldns1="10.0.0.2", guestcidraddress="10.231.0.0/16")["zone"]["id"]  # fmt: skip
    pod = api.call("createPod", name="bench-pod", zoneid=zone, gateway="172.16.40.1", netmask="255.255.255.0",
                   startip="172.16.40.10", endip="172.16.40.200")["pod"]["id"]  # fmt: skip
    cluster = api.call("addCluster", clustername="bench-cluster", clustertype="CloudManaged", hypervisor="KVM",
                       podid=pod, zoneid=zone)["cluster"][0]["id"]  # fmt: skip
    hosts, tokens = [], []
    for name in ["hosta", "hostb"]:
        h = api.call("addHost", hypervisor="KVM", url=f"kvm://{name}/cpucore=2&cpuspeed=2000&memory=4294967296",
                     username="root", password="unused", zoneid=zone, podid=pod, clusterid=cluster)["host"][0]  # fmt: skip
        hosts.append(h["id"])
        tokens.append(h["enrollmenttoken"])
    pool = api.call("createStoragePool", name="bench-nfs", url=f"nfs://{nfs}{env('STRATUS_TEST_NFS_PRIMARY_EXPORT')}",
                    zoneid=zone, podid=pod, clusterid=cluster)["storagepool"]["id"]  # fmt: skip
    api.call("addImageStore", provider="NFS", url=secondary, zoneid=zone)
    api.call("updateConfiguration", name="secstorage.allowed.internal.sites", value="127.0.0.1/32")
    offering = api.call("listNetworkOfferings")["networkoffering"][0]["id"]
    net = api.call("createNetwork", name="bench-guests", displaytext="guests", networkofferingid=offering,
                   zoneid=zone)["network"]["id"]  # fmt: skip
    server = f"127.0.0.1:{agent_port}"
    uris = [env("STRATUS_TEST_LIBVIRT_A"), env("STRATUS_TEST_LIBVIRT_B")]
    procs = [agent(binary, work, n, server, t, u, pool, net, console_dir)
             for n, t, u in zip(["hosta", "hostb"], tokens, uris)]  # fmt: skip
    until = time.time() + 60
    while True:
        listed = api.call("listHosts", zoneid=zone).get("host", [])
        if len(listed) == 2 and all(h["state"] == "Up" for h in listed):
            break
        if time.time() > until or any(p.poll() is not None for p in procs):
            sys.exit("kvm-bench: the two KVM hosts did not come Up (see the agents' logs in " + work + ")")
        time.sleep(0.2)
    ostype = api.call("listOsTypes", keyword="Linux")["ostype"][0]["id"]
    template = api.call("registerTemplate", name="bench-guest", displaytext="busybox guest",
                        url=env("STRATUS_TEST_TEMPLATE_URL"), checksum="{SHA-256}" + env("STRATUS_TEST_TEMPLATE_SHA256"),
                        format="QCOW2", hypervisor="KVM", ostypeid=ostype, zoneid=zone)["template"][0]["id"]  # fmt: skip
    until = time.time() + 120
    while not api.call("listTemplates", templatefilter="all", id=template, zoneid=zone).get("template", [{}])[0].get(
        "isready"
    ):
        if time.time() > until:
            sys.exit("kvm-bench: the template did not become Ready")
        time.sleep(0.2)
    so = api.call("createServiceOffering", name="bench-tiny", displaytext="1 vCPU, 128 MiB", cpunumber=1,
                  cpuspeed=500, memory=128)["serviceoffering"]["id"]  # fmt: skip
    return zone, hosts, net, template, so, procs


def wait_marker(path, since, limit=120):
    marker = env("STRATUS_TEST_GUEST_MARKER").encode()
    while True:
        try:
            with open(path, "rb") as f:
                if marker in f.read():
                    return
        except FileNotFoundError:
            pass
        if time.monotonic() - since > limit:
            sys.exit(f"kvm-bench: no marker in {path} within {limit} s")
        time.sleep(0.05)


def stratus_rounds(api, rounds, zone, hosts, net, template, so, console_dir):
    samples = {"deploy": [], "deploy_to_marker": [], "migrate_live": [], "stop_forced": []}
    for r in range(1, rounds + 1):
        name = f"bench-{os.getpid()}-{r}"
        t = time.monotonic()
        vm = api.job("deployVirtualMachine", zoneid=zone, serviceofferingid=so, templateid=template, networkids=net,
                     hostid=hosts[0], name=name)["virtualmachine"]  # fmt: skip
        samples["deploy"].append((time.monotonic() - t) * 1e3)
        wait_marker(os.path.join(console_dir, f"{vm['name']}.log"), t)
        samples["deploy_to_marker"].append((time.monotonic() - t) * 1e3)
        t = time.monotonic()
        api.job("migrateVirtualMachine", virtualmachineid=vm["id"], hostid=hosts[1])
        samples["migrate_live"].append((time.monotonic() - t) * 1e3)
        t = time.monotonic()
        api.job("stopVirtualMachine", id=vm["id"], forced="true")
        samples["stop_forced"].append((time.monotonic() - t) * 1e3)
        api.job("destroyVirtualMachine", id=vm["id"], expunge="true")
        log(f"stratus round {r}/{rounds}: " + ", ".join(f"{k} {v[-1]:.0f} ms" for k, v in samples.items()))
    return samples


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary, rounds = os.path.abspath(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 5
    load_env()
    load_before = os.getloadavg()
    procs, leftovers = [], []
    with tempfile.TemporaryDirectory(prefix="stratus-kvm-bench-") as work:
        console_dir = os.path.join(env("STRATUS_TEST_KVM_DIR"), f"bench-console-{os.getpid()}")
        os.makedirs(console_dir, exist_ok=True)
        try:
            port, agent_port = free_port(), free_port()
            nfs = env("STRATUS_TEST_NFS_SERVER")
            procs.append(start([binary, "serve", "--db", f"sqlite://{work}/bench.db", "--port", str(port),
                                "--admin-password", PASSWORD, "--agent-listen", f"127.0.0.1:{agent_port}",
                                "--secondary-mount",
                                f"nfs://{nfs}{env('STRATUS_TEST_NFS_SECONDARY_EXPORT')}={env('STRATUS_TEST_NFS_SECONDARY_DIR')}"],
                               os.path.join(work, "serve.err")))  # fmt: skip
            until = time.time() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.time() > until or procs[0].poll() is not None:
                        sys.exit("kvm-bench: stratus serve did not listen")
                    time.sleep(0.2)
            api = Api(f"http://127.0.0.1:{port}")
            zone, hosts, net, template, so, agents = setup(api, binary, work, agent_port, console_dir)
            procs += agents
            # What the agents leave on primary storage: their leases and the template's base copy.
            leftovers += [f"stratus-hb-{h}.lease" for h in hosts] + [f"tmpl-{template}.qcow2"]
            log(f"zone ready; {rounds} Stratus rounds")
            stratus = stratus_rounds(api, rounds, zone, hosts, net, template, so, console_dir)
        finally:
            for p in procs:
                p.kill()
                p.wait()
            subprocess.run(["rm", "-rf", console_dir])
            for name in leftovers:
                path = os.path.join(env("STRATUS_TEST_NFS_PRIMARY_DIR"), name)
                if os.path.exists(path):
                    os.remove(path)
    log(f"{rounds} raw rounds (.ci/kvm-raw-bench.sh)")
    raw = json.loads(subprocess.run(["bash", os.path.join(HERE, "kvm-raw-bench.sh"), str(rounds)], check=True,
                                    stdout=subprocess.PIPE).stdout)  # fmt: skip
    med = {k: round(statistics.median(v)) for k, v in stratus.items()}
    pairs = {"deploy": "define_start", "deploy_to_marker": "define_start_to_marker",
             "migrate_live": "migrate_live", "stop_forced": "destroy"}  # fmt: skip
    ratios = {k: round(med[k] / max(raw["median_ms"][r], 1), 2) for k, r in pairs.items()}
    print(json.dumps({
        "rounds": rounds,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "stratus_median_ms": med,
        "raw_median_ms": raw["median_ms"],
        "ratio_stratus_over_raw": ratios,
        "target_ratio": 1.10,
        "stratus_samples_ms": {k: [round(x) for x in v] for k, v in stratus.items()},
        "raw_samples_ms": raw["samples_ms"],
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
