#!/usr/bin/env bash
# Stops everything .ci/kvm-setup.sh started, by pidfile: the template HTTP server,
# nfs-ganesha, rpcbind (if the setup started it), libvirt host B, libvirt host A
# (libvirtd, virtlogd), Open vSwitch; removes the tap devices the netdev datapath leaves
# behind. Domains still running on A or B are destroyed first (they would die with qemu's
# parent anyway, but leave their OVS ports behind). State (template, NFS directories,
# host B's config) stays in $STRATUS_CI_KVM_DIR; add --purge to delete it too.
set -uo pipefail
KVM_DIR="${STRATUS_CI_KVM_DIR:-/var/lib/stratus-ci/kvm}"
BRIDGE="${STRATUS_CI_KVM_BRIDGE:-br-stratus}"
RUN_DIR="$KVM_DIR/run"
HOSTB_URI="qemu+unix:///system?socket=$KVM_DIR/hostb/run/libvirt-sock"

# Send TERM to the pid in pidfile $1 and wait up to 10 s for it to exit.
stop_pidfile() {
  local pidfile=$1 pid
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "kvm-teardown: $pidfile ($pid) ignored TERM, killing" >&2
      kill -9 "$pid"
    fi
  fi
  rm -f "$pidfile"
}
destroy_all() {
  local uri=$1 dom
  virsh -c "$uri" version >/dev/null 2>&1 || return 0
  for dom in $(virsh -c "$uri" list --name 2>/dev/null); do
    virsh -q -c "$uri" destroy "$dom" >/dev/null
  done
}

destroy_all "$HOSTB_URI"
destroy_all qemu:///system
stop_pidfile "$RUN_DIR/http.pid"
stop_pidfile "$RUN_DIR/ganesha.pid"
stop_pidfile "$RUN_DIR/rpcbind.pid"
stop_pidfile "$KVM_DIR/hostb/libvirtd.pid"
stop_pidfile "$KVM_DIR/hostb/virtlogd.pid"
stop_pidfile /run/libvirtd.pid
stop_pidfile /run/virtlogd.pid
if /usr/share/openvswitch/scripts/ovs-ctl status >/dev/null 2>&1; then
  /usr/share/openvswitch/scripts/ovs-ctl stop >/dev/null
fi
# The userspace datapath's tap devices outlive ovs-vswitchd.
for dev in "$BRIDGE" ovs-netdev $(ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^vnet[0-9]+/ { print $2 }'); do
  ip link del "$dev" 2>/dev/null
done
if [ "${1:-}" = --purge ]; then
  rm -rf "$KVM_DIR"
fi
echo "kvm-teardown: stopped"
