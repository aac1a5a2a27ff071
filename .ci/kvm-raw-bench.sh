#!/usr/bin/env bash
# Raw libvirt baseline for the KVM benchmarks: the same kind of domain Stratus deploys
# (qcow2 overlay on the template, on NFS primary storage through qemu's NFS client; one
# e1000 NIC on the OVS bridge, VLAN-tagged; boots from disk; TCG), driven with virsh
# only. Per round: `virsh define` + `virsh start` until the guest's marker is on the
# console, `virsh migrate --live` A -> B, `virsh destroy` (stop) on B. Prints the
# medians (and every sample) as JSON on stdout, so Stratus/raw ratios can be computed.
#
# Usage: bash .ci/kvm-raw-bench.sh [ROUNDS]   (default 5; needs .ci/kvm-setup.sh's services)
set -euo pipefail
ROUNDS=${1:-5}
if [ -z "${STRATUS_TEST_LIBVIRT_A:-}" ]; then
  # shellcheck disable=SC1091
  source "${STRATUS_CI_KVM_DIR:-/var/lib/stratus-ci/kvm}/env.sh"
fi
A=$STRATUS_TEST_LIBVIRT_A
B=$STRATUS_TEST_LIBVIRT_B
NFS=$STRATUS_TEST_NFS_SERVER
NAME="stratus-raw-bench-$$"
VOL_DIR="$STRATUS_TEST_NFS_PRIMARY_EXPORT/$NAME"
LOCAL_VOL_DIR="$STRATUS_TEST_NFS_PRIMARY_DIR/$NAME"
WORK="$STRATUS_TEST_KVM_DIR/test/$NAME"
CONSOLE="$WORK/console.log"

cleanup() {
  set +e
  for uri in "$B" "$A"; do
    virsh -c "$uri" destroy "$NAME" >/dev/null 2>&1
    virsh -c "$uri" undefine "$NAME" >/dev/null 2>&1
  done
  rm -rf "$LOCAL_VOL_DIR" "$WORK"
}
trap cleanup EXIT
now_us() { echo "${EPOCHREALTIME/./}"; }
ms_since() { echo $((($(now_us) - $1) / 1000)); }
median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
json_list() { echo "[$(echo "$*" | xargs | tr ' ' ',')]"; }

mkdir -p "$WORK" "$LOCAL_VOL_DIR"
chmod 755 "$WORK"
BASE_URL="nfs://$NFS$VOL_DIR/base.qcow2"
ROOT_URL="nfs://$NFS$VOL_DIR/root.qcow2"
qemu-img convert -f qcow2 -O qcow2 "$STRATUS_TEST_TEMPLATE_PATH" "$BASE_URL"
cat >"$WORK/domain.xml" <<EOF
<domain type='$STRATUS_TEST_LIBVIRT_DOMAIN_TYPE'>
  <name>$NAME</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/><apic/></features>
  <devices>
    <disk type='network' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source protocol='nfs' name='$VOL_DIR/root.qcow2'><host name='$NFS'/><identity user='root' group='root'/></source>
      <backingStore type='network'>
        <format type='qcow2'/>
        <source protocol='nfs' name='$VOL_DIR/base.qcow2'><host name='$NFS'/><identity user='root' group='root'/></source>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <source bridge='$STRATUS_TEST_OVS_BRIDGE'/>
      <virtualport type='openvswitch'/>
      <vlan><tag id='100'/></vlan>
      <model type='e1000'/>
    </interface>
    <serial type='pty'><log file='$CONSOLE' append='off'/></serial>
    <console type='pty'/>
  </devices>
</domain>
EOF

define_start=() to_marker=() migrate=() destroy=()
for round in $(seq 1 "$ROUNDS"); do
  rm -f "$CONSOLE"
  qemu-img create -q -f qcow2 -F qcow2 -b "$BASE_URL" "$ROOT_URL"
  t=$(now_us)
  virsh -q -c "$A" define "$WORK/domain.xml" >/dev/null
  virsh -q -c "$A" start "$NAME" >/dev/null
  define_start+=("$(ms_since "$t")")
  until grep -aq "$STRATUS_TEST_GUEST_MARKER" "$CONSOLE" 2>/dev/null; do
    [ "$(ms_since "$t")" -lt 120000 ] || { echo "round $round: no marker within 120 s" >&2; exit 1; }
    sleep 0.05
  done
  to_marker+=("$(ms_since "$t")")
  t=$(now_us)
  virsh -q -c "$A" migrate --live --undefinesource --persistent "$NAME" "$B" "$STRATUS_TEST_MIGRATE_URI"
  migrate+=("$(ms_since "$t")")
  t=$(now_us)
  virsh -q -c "$B" destroy "$NAME" >/dev/null
  destroy+=("$(ms_since "$t")")
  virsh -q -c "$B" undefine "$NAME" >/dev/null
  echo "round $round/$ROUNDS: define+start ${define_start[-1]} ms, to marker ${to_marker[-1]} ms, migrate ${migrate[-1]} ms, destroy ${destroy[-1]} ms" >&2
done

cat <<EOF
{"rounds": $ROUNDS, "load_average_1m": $(cut -d' ' -f1 /proc/loadavg),
 "median_ms": {"define_start": $(echo "${define_start[*]}" | median), "define_start_to_marker": $(echo "${to_marker[*]}" | median), "migrate_live": $(echo "${migrate[*]}" | median), "destroy": $(echo "${destroy[*]}" | median)},
 "samples_ms": {"define_start": $(json_list "${define_start[*]}"), "define_start_to_marker": $(json_list "${to_marker[*]}"), "migrate_live": $(json_list "${migrate[*]}"), "destroy": $(json_list "${destroy[*]}")}}
EOF
