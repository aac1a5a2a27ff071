#!/usr/bin/env bash
# Fence device for the CI's libvirt hosts (issue 9, step 5): "powers off" one host's guests
# by killing (SIGKILL) every QEMU process that host's libvirtd started, found by the
# pidfiles in that libvirtd's state directory. Host A's is /run/libvirt/qemu; host B's
# (a second libvirtd with /run/libvirt bind-mounted from $KVM_DIR/hostb/run) is
# $KVM_DIR/hostb/run/qemu, so fencing one host never touches the other's guests.
# Works while that libvirtd is dead (the pidfiles stay). Exit 0 only when no QEMU
# process of that host is left: the proof a fence device must give.
#
# Usage: bash .ci/kvm-fence-qemu.sh PIDFILE_DIR
#   (as `stratus agent --fence-command`: '[ {host} = HOST_A_ID ] && bash .ci/kvm-fence-qemu.sh /run/libvirt/qemu')
set -euo pipefail
DIR=${1:?usage: kvm-fence-qemu.sh PIDFILE_DIR}
[ -d "$DIR" ] || {
  echo "kvm-fence-qemu: $DIR is not a directory" >&2
  exit 2
}

# A pid from a pidfile is only ours if it is still a QEMU process (pids are reused).
qemu_pids() {
  local f pid
  for f in "$DIR"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(tr -dc 0-9 <"$f")
    [ -n "$pid" ] || continue
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == *qemu* ]] && echo "$pid"
  done
  return 0
}

pids=$(qemu_pids)
for pid in $pids; do
  echo "kvm-fence-qemu: killing qemu $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" | grep -o 'guest=[^, ]*' || true))"
  kill -9 "$pid" 2>/dev/null || true
done
for _ in $(seq 1 100); do
  left=""
  for pid in $pids; do
    [ -e "/proc/$pid" ] && [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == *qemu* ]] && left="$left $pid"
  done
  [ -z "$left" ] && exit 0
  sleep 0.1
done
echo "kvm-fence-qemu: qemu still alive after 10 s:$left" >&2
exit 1
