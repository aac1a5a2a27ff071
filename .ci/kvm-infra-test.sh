#!/usr/bin/env bash
# Proof that the KVM infrastructure from .ci/kvm-setup.sh works end to end, without
# Stratus: the guest template (fetched over HTTP, checksum verified) is copied to NFS
# primary storage, a qcow2 overlay on it is the root disk (qemu's own NFS client), the NIC
# is an OVS port tagged VLAN 100; the domain boots from that disk on host A and prints the
# marker; a peer on VLAN 100 pings it and a peer on VLAN 200 cannot; it live-migrates to
# host B and its heartbeat continues (no reboot) and it still answers; destroy leaves no
# domain, port or volume. Exit 0 only if every check passed.
#
# Needs the environment of .ci/kvm-setup.sh ($STRATUS_CI_KVM_DIR/env.sh is sourced if the
# variables are not set). Run: bash .ci/kvm-infra-test.sh
set -euo pipefail

if [ -z "${STRATUS_TEST_LIBVIRT_A:-}" ]; then
  # shellcheck disable=SC1091
  source "${STRATUS_CI_KVM_DIR:-/var/lib/stratus-ci/kvm}/env.sh"
fi
A=$STRATUS_TEST_LIBVIRT_A
B=$STRATUS_TEST_LIBVIRT_B
NFS=$STRATUS_TEST_NFS_SERVER
BR=$STRATUS_TEST_OVS_BRIDGE
NAME="stratus-infra-test-$$"
VOL_DIR="$STRATUS_TEST_NFS_PRIMARY_EXPORT/$NAME"
LOCAL_VOL_DIR="$STRATUS_TEST_NFS_PRIMARY_DIR/$NAME"
WORK="$STRATUS_TEST_KVM_DIR/test/$NAME"
CONSOLE="$WORK/console.log"
MAC="52:54:00:e7:01:0a" # the guest takes 10.231.1.10
GUEST_IP="10.231.1.10"
NS100="st100-$$"
NS200="st200-$$"
VLAN=100

t0=${EPOCHREALTIME/./}
log() {
  local ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
  printf '[kvm-infra-test %3d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*"
}
fail() {
  echo "kvm-infra-test: FAIL: $*" >&2
  [ -f "$CONSOLE" ] && { echo "--- console (last 10 lines)" >&2; tail -n 10 "$CONSOLE" >&2; }
  exit 1
}
cleanup() {
  set +e
  virsh -c "$B" destroy "$NAME" >/dev/null 2>&1
  virsh -c "$B" undefine "$NAME" >/dev/null 2>&1
  virsh -c "$A" destroy "$NAME" >/dev/null 2>&1
  virsh -c "$A" undefine "$NAME" >/dev/null 2>&1
  for ns in "$NS100" "$NS200"; do
    ovs-vsctl --if-exists del-port "$BR" "v$ns" 2>/dev/null
    ip link del "v$ns" 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$LOCAL_VOL_DIR" "$WORK"
}
trap cleanup EXIT
# Heartbeat counter in the newest console line that has one.
last_beat() { grep -a "$STRATUS_TEST_GUEST_HEARTBEAT" "$CONSOLE" 2>/dev/null | tail -n1 | awk '{ print $2 }'; }
wait_for() {
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

mkdir -p "$WORK"
chmod 755 "$WORK"

log "fetching the template over HTTP and checking its SHA-256 and MD5"
curl -fsS -o "$WORK/template.qcow2" "$STRATUS_TEST_TEMPLATE_URL" || fail "download $STRATUS_TEST_TEMPLATE_URL"
[ "$(sha256sum <"$WORK/template.qcow2" | cut -d' ' -f1)" = "$STRATUS_TEST_TEMPLATE_SHA256" ] || fail "SHA-256 mismatch"
[ "$(md5sum <"$WORK/template.qcow2" | cut -d' ' -f1)" = "$STRATUS_TEST_TEMPLATE_MD5" ] || fail "MD5 mismatch"

log "copying it to NFS primary storage and creating the root overlay (qemu-img over nfs://)"
# libnfs-utils here has no mkdir/rm: directories are made in the directory behind the export.
mkdir -p "$LOCAL_VOL_DIR"
BASE_URL="nfs://$NFS$VOL_DIR/base.qcow2"
ROOT_URL="nfs://$NFS$VOL_DIR/root.qcow2"
qemu-img convert -f qcow2 -O qcow2 "$WORK/template.qcow2" "$BASE_URL" || fail "qemu-img convert to $BASE_URL"
qemu-img create -q -f qcow2 -F qcow2 -b "$BASE_URL" "$ROOT_URL" || fail "qemu-img create overlay"
qemu-img info "$ROOT_URL" | grep "backing file: $BASE_URL" >/dev/null || fail "overlay has no backing file"
[ -f "$LOCAL_VOL_DIR/root.qcow2" ] || fail "overlay not in the directory behind the export"
nfs-ls "nfs://$NFS$VOL_DIR" | grep root.qcow2 >/dev/null || fail "nfs-ls does not list the overlay"

cat >"$WORK/domain.xml" <<EOF
<domain type='$STRATUS_TEST_LIBVIRT_DOMAIN_TYPE'>
  <name>$NAME</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='network' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source protocol='nfs' name='$VOL_DIR/root.qcow2'>
        <host name='$NFS'/>
        <identity user='root' group='root'/>
      </source>
      <backingStore type='network'>
        <format type='qcow2'/>
        <source protocol='nfs' name='$VOL_DIR/base.qcow2'>
          <host name='$NFS'/>
          <identity user='root' group='root'/>
        </source>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <mac address='$MAC'/>
      <source bridge='$BR'/>
      <virtualport type='openvswitch'/>
      <vlan><tag id='$VLAN'/></vlan>
      <model type='e1000'/>
    </interface>
    <serial type='pty'><log file='$CONSOLE' append='on'/></serial>
    <console type='pty'/>
  </devices>
</domain>
EOF

log "peers: network namespaces on VLAN 100 and VLAN 200 of $BR"
peer() { # peer NS TAG IP
  ip netns add "$1"
  ip link add "v$1" type veth peer name eth0 netns "$1"
  ip link set "v$1" up
  ovs-vsctl --timeout=10 add-port "$BR" "v$1" tag="$2"
  ip -n "$1" link set lo up
  ip -n "$1" link set eth0 up
  ip -n "$1" addr add "$3/16" dev eth0
}
peer "$NS100" 100 10.231.255.1 || fail "VLAN 100 peer"
peer "$NS200" 200 10.231.255.2 || fail "VLAN 200 peer"

log "define + start on host A (boots from the NFS disk, TCG)"
virsh -q -c "$A" define "$WORK/domain.xml" >/dev/null || fail "define"
start_t=${EPOCHREALTIME/./}
virsh -q -c "$A" start "$NAME" >/dev/null || fail "start"
wait_for 90 grep -aq "$STRATUS_TEST_GUEST_MARKER" "$CONSOLE" || fail "no $STRATUS_TEST_GUEST_MARKER on the console within 90 s"
boot_ms=$(((${EPOCHREALTIME/./} - start_t) / 1000))
log "marker seen $boot_ms ms after start: $(grep -a "$STRATUS_TEST_GUEST_MARKER" "$CONSOLE" | tr -d '\r')"
virsh -c "$A" dumpxml "$NAME" | grep "protocol='nfs'" >/dev/null || fail "live domain's disk is not on NFS"

port=$(virsh -c "$A" domiflist "$NAME" | awk -v mac="$MAC" '$5 == mac { print $1 }')
[ -n "$port" ] || fail "no interface with MAC $MAC"
[ "$(ovs-vsctl get port "$port" tag)" = "$VLAN" ] || fail "OVS port $port is not tagged $VLAN"
log "OVS port $port on $BR carries tag $VLAN"

wait_for 30 grep -aq STRATUS-GUEST-NET "$CONSOLE" || fail "guest did not configure eth0"
wait_for 30 ip netns exec "$NS100" ping -c1 -W1 "$GUEST_IP" || fail "VLAN 100 peer cannot ping the guest"
if ip netns exec "$NS200" ping -c2 -W1 "$GUEST_IP" >/dev/null 2>&1; then fail "VLAN 200 peer reached a VLAN 100 guest"; fi
log "VLAN 100 peer pings $GUEST_IP; VLAN 200 peer cannot"

wait_for 30 bash -c "[ \"\$(grep -a '$STRATUS_TEST_GUEST_HEARTBEAT' '$CONSOLE' | wc -l)\" -ge 3 ]" || fail "no heartbeat"
before=$(last_beat)
log "live migration A -> B (heartbeat at $before)"
mig_t=${EPOCHREALTIME/./}
virsh -c "$A" migrate --live --undefinesource --persistent "$NAME" "$B" "$STRATUS_TEST_MIGRATE_URI" ||
  fail "live migration to host B"
mig_ms=$(((${EPOCHREALTIME/./} - mig_t) / 1000))
[ "$(virsh -c "$B" domstate "$NAME")" = running ] || fail "domain not running on host B"
if virsh -c "$A" dominfo "$NAME" >/dev/null 2>&1; then fail "domain still defined on host A"; fi
wait_for 15 bash -c "[ \"\$(grep -a '$STRATUS_TEST_GUEST_HEARTBEAT' '$CONSOLE' | tail -n1 | awk '{print \$2}')\" -ge $((before + 3)) ]" ||
  fail "heartbeat did not continue on host B (last $(last_beat), before migration $before)"
[ "$(grep -ac "$STRATUS_TEST_GUEST_MARKER" "$CONSOLE")" = 1 ] || fail "the guest rebooted during migration"
port_b=$(virsh -c "$B" domiflist "$NAME" | awk -v mac="$MAC" '$5 == mac { print $1 }')
[ "$(ovs-vsctl get port "$port_b" tag)" = "$VLAN" ] || fail "port $port_b on host B is not tagged $VLAN"
wait_for 15 ip netns exec "$NS100" ping -c1 -W1 "$GUEST_IP" || fail "guest unreachable after migration"
log "migrated in $mig_ms ms; heartbeat $before -> $(last_beat) on host B, port $port_b tag $VLAN, still answers ping"

grep -a "$STRATUS_TEST_GUEST_HEARTBEAT" "$CONSOLE" | tail -n1 | grep "disks=vda," >/dev/null ||
  fail "the guest does not see its virtio disk vda"

log "virsh shutdown on host B (ACPI power button): the guest powers itself off"
virsh -q -c "$B" shutdown "$NAME" >/dev/null || fail "shutdown on B"
wait_for 60 bash -c "[ \"\$(virsh -c '$B' domstate '$NAME')\" = 'shut off' ]" || fail "guest ignored the ACPI shutdown for 60 s"
grep -a STRATUS-GUEST-POWEROFF "$CONSOLE" >/dev/null || fail "no STRATUS-GUEST-POWEROFF on the console"
log "undefine on host B; nothing may be left"
virsh -q -c "$B" undefine "$NAME" >/dev/null || fail "undefine on B"
if ovs-vsctl list-ports "$BR" | grep -x "$port_b" >/dev/null; then fail "port $port_b left on $BR"; fi
rm -r "$LOCAL_VOL_DIR"
if nfs-ls "nfs://$NFS$STRATUS_TEST_NFS_PRIMARY_EXPORT" | grep "$NAME" >/dev/null; then fail "volumes still visible over NFS"; fi
echo "{\"boot_to_marker_ms\": $boot_ms, \"live_migration_ms\": $mig_ms}"
log "PASS"
