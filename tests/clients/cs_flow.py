"""The `cs` client (PyPI, library and CLI) against a running `stratus serve`.

Builds a zone the way deployDataCenter.py does, deploys as a user, runs the VM
through stop/start/migrate/maintenance/destroy, and checks the signature and
isolation cases. Exits non-zero on the first failure (an assertion).
Environment: STRATUS_URL (…/client/api), STRATUS_ADMIN_PASSWORD.
"""

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import urllib.error
import http.cookiejar

from cs import CloudStack, CloudStackApiException

URL = os.environ["STRATUS_URL"]
PASSWORD = os.environ["STRATUS_ADMIN_PASSWORD"]


def step(msg):
    print(f"-- {msg}", flush=True)


def session_keys(username, password, domain="/"):
    """Logs in with a session (POST) and registers API keys for that user."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    body = urllib.parse.urlencode(
        {"command": "login", "username": username, "password": password, "domain": domain, "response": "json"}
    ).encode()
    login = json.load(opener.open(URL, data=body))["loginresponse"]
    q = urllib.parse.urlencode(
        {"command": "registerUserKeys", "id": login["userid"], "sessionkey": login["sessionkey"], "response": "json"}
    )
    keys = json.load(opener.open(f"{URL}?{q}"))["registeruserkeysresponse"]["userkeys"]
    return keys["apikey"], keys["secretkey"]


def api(key, secret, **kw):
    return CloudStack(endpoint=URL, key=key, secret=secret, fetch_result=True, poll_interval=0.2, job_timeout=120, **kw)


def expect_error(code, fn, **params):
    try:
        fn(**params)
    except CloudStackApiException as e:
        got = e.error.get("errorcode") if isinstance(e.error, dict) else None
        assert got == code, f"expected {code}, got {e.error}"
        return e.error
    raise AssertionError(f"expected error {code}, call succeeded")


def signed_get(key, secret, params):
    """A hand-signed GET (Java URLEncoder rules): the HTTP status."""
    import base64, hashlib, hmac
    params = dict(params, apiKey=key, response="json")
    enc = lambda v: urllib.parse.quote(v, safe="*-._").replace("~", "%7E")
    text = "&".join(f"{k}={enc(params[k])}" for k in sorted(params)).lower()
    sig = base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()).decode()
    q = urllib.parse.urlencode(dict(params, signature=sig))
    try:
        return urllib.request.urlopen(f"{URL}?{q}").status
    except urllib.error.HTTPError as e:
        return e.code


def wait(cond, what, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


step("admin logs in (session) and registers API keys")
ak, asec = session_keys("admin", PASSWORD)
admin = api(ak, asec)

step("build a zone: zone, pod, Simulator cluster, 3 hosts, NFS pool, image store")
zone = admin.createZone(name="cs-zone", networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2",
                        guestcidraddress="10.10.0.0/16")["zone"]
pod = admin.createPod(name="cs-pod", zoneid=zone["id"], gateway="172.16.20.1", netmask="255.255.255.0",
                      startip="172.16.20.10", endip="172.16.20.200")["pod"]
cluster = admin.addCluster(clustername="cs-cluster", clustertype="CloudManaged", hypervisor="Simulator",
                           podid=pod["id"], zoneid=zone["id"])["cluster"][0]
hosts = []
for i in range(3):
    h = admin.addHost(hypervisor="Simulator", url=f"http://sim/cs/h{i}/cpucore=8&cpuspeed=2000",
                      username="root", password="unused", zoneid=zone["id"], podid=pod["id"],
                      clusterid=cluster["id"])["host"][0]
    hosts.append(h["id"])
admin.createStoragePool(name="cs-nfs", url="nfs://192.0.2.10/export/primary", zoneid=zone["id"],
                        podid=pod["id"], clusterid=cluster["id"])
admin.addImageStore(provider="NFS", url="nfs://192.0.2.11/export/secondary", zoneid=zone["id"])
wait(lambda: all(h["state"] == "Up" for h in admin.listHosts(zoneid=zone["id"])["host"]), "hosts Up")

step("offerings and a template")
so = admin.createServiceOffering(name="cs-small", displaytext="1 vCPU, 512 MiB", cpunumber=1, cpuspeed=1000,
                                 memory=512, offerha="true")["serviceoffering"]
ostype = admin.listOsTypes(keyword="Linux")["ostype"][0]
tmpl = admin.registerTemplate(name="cs-tiny", displaytext="tiny", url="http://example.org/tiny.qcow2",
                              format="QCOW2", hypervisor="Simulator", ostypeid=ostype["id"],
                              zoneid=zone["id"])["template"][0]
wait(lambda: admin.listTemplates(templatefilter="all", id=tmpl["id"], zoneid=zone["id"])["template"][0]["isready"],
     "template ready")

step("two tenants, each with its own keys")
for name in ("alice", "bob"):
    admin.createAccount(accounttype=0, username=name, password=f"{name}-pass-1", email=f"{name}@example.org",
                        firstname=name, lastname="Tenant", account=f"{name}-acct")
alice_keys = session_keys("alice", "alice-pass-1")
alice = api(*alice_keys)
bob = api(*session_keys("bob", "bob-pass-1"))

step("alice deploys a VM (async job, polled by cs)")
vm = alice.deployVirtualMachine(zoneid=zone["id"], serviceofferingid=so["id"], templateid=tmpl["id"],
                                name="alice-vm1")["virtualmachine"]
assert vm["state"] == "Running", vm
assert vm["account"] == "alice-acct"

step("bob cannot see or touch alice's VM")
assert bob.listVirtualMachines().get("virtualmachine", []) == []
assert bob.listVirtualMachines(id=vm["id"]).get("count", 0) == 0
expect_error(431, bob.stopVirtualMachine, id=vm["id"])

step("stop / start")
assert alice.stopVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Stopped"
assert alice.startVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Running"

step("admin migrates it to another host")
src = admin.listVirtualMachines(id=vm["id"], listall="true")["virtualmachine"][0]["hostid"]
dest = next(h for h in hosts if h != src)
moved = admin.migrateVirtualMachine(virtualmachineid=vm["id"], hostid=dest)["virtualmachine"]
assert moved["hostid"] == dest, moved

step("maintenance evacuates the host")
admin.prepareHostForMaintenance(id=dest)
wait(lambda: admin.listHosts(id=dest)["host"][0]["resourcestate"] == "Maintenance", "host in Maintenance")
now_on = admin.listVirtualMachines(id=vm["id"], listall="true")["virtualmachine"][0]
assert now_on["state"] == "Running" and now_on["hostid"] != dest, now_on
admin.cancelHostMaintenance(id=dest)
wait(lambda: admin.listHosts(id=dest)["host"][0]["resourcestate"] == "Enabled", "host Enabled")

step("HA: crash the host of an HA VM (configureSimulator); the VM restarts elsewhere")
ha = alice.deployVirtualMachine(zoneid=zone["id"], serviceofferingid=so["id"], templateid=tmpl["id"],
                                name="alice-ha")["virtualmachine"]
assert ha["haenable"], ha
lost = admin.listVirtualMachines(id=ha["id"], listall="true")["virtualmachine"][0]["hostid"]
admin.configureSimulator(fault="crash_host", hostid=lost)
wait(lambda: admin.listHosts(id=lost)["host"][0]["state"] == "Down", "the crashed host Down", timeout=90)
back = wait(lambda: next((v for v in admin.listVirtualMachines(id=ha["id"], listall="true")["virtualmachine"]
                          if v["state"] == "Running" and v.get("hostid") != lost), None),
            "the HA VM running on another host", timeout=90)
admin.configureSimulator(fault="recover_host", hostid=lost)
wait(lambda: admin.listHosts(id=lost)["host"][0]["state"] == "Up", "the host back Up", timeout=90)
alerts = admin.listAlerts().get("alert", [])
assert any(lost in a.get("description", "") or a.get("type") == 7 for a in alerts), alerts

step("signature cases")
expect_error(401, api(ak, "wrong-secret").listZones)
expired = signed_get(ak, asec, {"command": "listZones", "signatureVersion": "3",
                                "expires": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(time.time() - 60))})
assert expired == 401, expired
fresh = signed_get(ak, asec, {"command": "listZones", "signatureVersion": "3",
                              "expires": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(time.time() + 600))})
assert fresh == 200, fresh
expect_error(431, admin.createZone, name="missing-dns")
expect_error(401, admin.launchMissiles)

step("the cs CLI does the same")
env = dict(os.environ, CLOUDSTACK_ENDPOINT=URL, CLOUDSTACK_KEY=ak, CLOUDSTACK_SECRET=asec)
out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "cs"), "listZones", f"name={zone['name']}"],
                     env=env, capture_output=True, text=True, check=True).stdout
assert json.loads(out)["zone"][0]["id"] == zone["id"], out

step("destroy with expunge")
alice.destroyVirtualMachine(id=vm["id"])
assert alice.listVirtualMachines(id=vm["id"]).get("virtualmachine", [{}])[0].get("state") in ("Destroyed", None)
admin.expungeVirtualMachine(id=vm["id"])
assert admin.listVirtualMachines(id=vm["id"], listall="true").get("count", 0) == 0

if os.environ.get("STRATUS_KEYS_OUT"):
    with open(os.environ["STRATUS_KEYS_OUT"], "w") as f:
        json.dump({"key": alice_keys[0], "secret": alice_keys[1]}, f)
print("cs flow: OK")
