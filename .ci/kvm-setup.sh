#!/usr/bin/env bash
# Real KVM infrastructure for the CI on one machine (see ../shared/docs/real-infra.md and
# docs/install-kvm.md): installs and starts libvirt host A, a second libvirtd as host B,
# Open vSwitch (userspace datapath), nfs-ganesha exporting primary and secondary storage,
# and builds a tiny bootable guest template served over HTTP on loopback.
#
# Run directly (`bash .ci/kvm-setup.sh`) or through .ci/setup.d/30-kvm.sh, which sources
# the environment file this script writes. Idempotent: a second run only checks that every
# service answers (about a second). Fails loudly (non-zero exit, message on stderr).
# Needs root. Stop everything with .ci/kvm-teardown.sh.
#
# Environment written to $STRATUS_CI_KVM_DIR/env.sh (all exported):
#   STRATUS_TEST_LIBVIRT_A          libvirt URI of host A (qemu:///system)
#   STRATUS_TEST_LIBVIRT_B          libvirt URI of host B (qemu+unix:///system?socket=...)
#   STRATUS_TEST_LIBVIRT_DOMAIN_TYPE  domain type guests must use here: qemu (TCG; this
#                                   machine's KVM cannot boot a stock kernel, see real-infra.md)
#   STRATUS_TEST_MIGRATE_URI        migration data URI for live migration A<->B (tcp://127.0.0.1)
#   STRATUS_TEST_OVS_BRIDGE         OVS bridge (netdev datapath) for the guest physical network
#   STRATUS_TEST_NFS_SERVER         NFS server address (127.0.0.1, nfs-ganesha, v3 and v4)
#   STRATUS_TEST_NFS_PRIMARY_EXPORT    export path of primary storage (/primary)
#   STRATUS_TEST_NFS_SECONDARY_EXPORT  export path of secondary storage (/secondary)
#   STRATUS_TEST_NFS_PRIMARY_DIR    local directory behind the primary export
#   STRATUS_TEST_NFS_SECONDARY_DIR  local directory behind the secondary export
#   STRATUS_TEST_TEMPLATE_URL       http URL of the guest template (qcow2, boots from disk)
#   STRATUS_TEST_TEMPLATE_SHA256    its SHA-256 (hex)
#   STRATUS_TEST_TEMPLATE_MD5       its MD5 (hex)
#   STRATUS_TEST_TEMPLATE_FORMAT    QCOW2
#   STRATUS_TEST_TEMPLATE_PATH      local path of the same qcow2 file
#   STRATUS_TEST_GUEST_KERNEL       the guest kernel (for direct-kernel-boot domains)
#   STRATUS_TEST_GUEST_INITRD       the guest initramfs
#   STRATUS_TEST_GUEST_MARKER       line the guest prints on its serial console once booted
#   STRATUS_TEST_GUEST_HEARTBEAT    prefix of the guest's once-a-second console line,
#                                   followed by a counter, uptime=SECONDS and disks=vda,vdb,
#                                   (its virtio disks: a hot-plugged data volume shows up)
#   The guest powers off cleanly on an ACPI power-button press (virsh shutdown), printing
#   STRATUS-GUEST-POWEROFF; it has drivers for virtio-blk, virtio-net and e1000.
#   STRATUS_TEST_GUEST_NET_PREFIX   the guest puts eth0 on 10.231.<MAC byte 5>.<MAC byte 6>/16
#                                   (in decimal) if it has a NIC; this is the /16
#   STRATUS_TEST_KVM_DIR            state directory of all of the above
#
# Knobs (environment, optional): STRATUS_CI_KVM_DIR (default /var/lib/stratus-ci/kvm),
# STRATUS_CI_KVM_HTTP_PORT (default 18089), STRATUS_CI_KVM_BRIDGE (default br-stratus).
set -euo pipefail

KVM_DIR="${STRATUS_CI_KVM_DIR:-/var/lib/stratus-ci/kvm}"
HTTP_PORT="${STRATUS_CI_KVM_HTTP_PORT:-18089}"
BRIDGE="${STRATUS_CI_KVM_BRIDGE:-br-stratus}"
MARKER="STRATUS-GUEST-OK"
HEARTBEAT="STRATUS-HEARTBEAT"
HOSTB_DIR="$KVM_DIR/hostb"
HOSTB_UUID="11111111-2222-4333-8444-555555555555"
HOSTB_URI="qemu+unix:///system?socket=$HOSTB_DIR/run/libvirt-sock"
RUN_DIR="$KVM_DIR/run"
GUEST_DIR="$KVM_DIR/guest"
HTTP_DIR="$KVM_DIR/http"
NFS_DIR="$KVM_DIR/nfs"

t0=${EPOCHREALTIME/./}
step() {
  local tenths=$(((${EPOCHREALTIME/./} - t0) / 100000))
  printf '[kvm-setup %3d.%ds] %s\n' $((tenths / 10)) $((tenths % 10)) "$*"
}
die() {
  echo "kvm-setup: ERROR: $*" >&2
  exit 1
}
# True when the pid in pidfile $1 is alive.
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# Wait up to $1 seconds for command "${@:2}" to succeed.
wait_for() {
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"

# ---------------------------------------------------------------- packages
PACKAGES=(libvirt-daemon-system libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  libvirt-dev pkg-config qemu-system-x86 qemu-utils qemu-block-extra
  busybox-static cpio xz-utils syslinux syslinux-common mtools dosfstools
  openvswitch-switch nfs-ganesha nfs-ganesha-vfs libnfs-utils rpcbind
  iproute2 iputils-ping python3 curl)
installed_ok() {
  local status
  status=$(dpkg-query -W -f '${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null) || return 1
  [ "$(grep -c '^ii' <<<"$status")" = "${#PACKAGES[@]}" ] || return 1
  # qemu-img must come from the same QEMU build as qemu-system-x86 (see the pin below).
  [ "$(dpkg-query -W -f '${Version}' qemu-utils)" = "$(dpkg-query -W -f '${Version}' qemu-system-x86)" ]
}
if ! installed_ok; then
  step "installing packages"
  export DEBIAN_FRONTEND=noninteractive
  apt_get() { apt-get -o DPkg::Lock::Timeout=600 -y -qq "$@"; }
  apt_get update
  # The image may carry qemu-utils from bookworm-backports (qemu-img 10), which Breaks the
  # bookworm qemu-system-common; pin qemu-utils and qemu-block-extra to qemu-system-x86's
  # candidate, computed now because Debian's build suffix (+b2, +b3, ...) changes.
  qemu_version=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ { print $2 }')
  [ -n "$qemu_version" ] && [ "$qemu_version" != "(none)" ] ||
    die "no installable qemu-system-x86 candidate (apt-cache policy qemu-system-x86)"
  pinned=()
  for p in "${PACKAGES[@]}"; do
    case $p in
      qemu-utils | qemu-block-extra) pinned+=("$p=$qemu_version") ;;
      *) pinned+=("$p") ;;
    esac
  done
  apt_get install --no-install-recommends --allow-downgrades "${pinned[@]}" >/dev/null
  installed_ok || die "packages still missing after apt-get install: ${PACKAGES[*]}"
fi
step "packages present (qemu $(dpkg-query -W -f '${Version}' qemu-system-x86))"

mkdir -p "$RUN_DIR" "$GUEST_DIR" "$HTTP_DIR" "$NFS_DIR/primary" "$NFS_DIR/secondary"

# ---------------------------------------------------------------- libvirt host A
# No udev here: /dev/kvm is root:root 0600, and libvirt then re-probes QEMU on every call.
[ -e /dev/kvm ] && chgrp kvm /dev/kvm && chmod 660 /dev/kvm
mkdir -p /run/libvirt
if ! alive /run/virtlogd.pid; then
  /usr/sbin/virtlogd -d || die "virtlogd (host A) did not start"
fi
if ! alive /run/libvirtd.pid; then
  step "starting libvirtd (host A; the first start probes QEMU, 10-20 s)"
  # No -l: TCP would need TLS; the tests use the local unix socket.
  /usr/sbin/libvirtd -d || die "libvirtd (host A) did not start"
fi
wait_for 90 virsh -c qemu:///system version || die "libvirtd host A does not answer on qemu:///system"
step "libvirt host A answers"

# ---------------------------------------------------------------- libvirt host B
# A second libvirtd in its own mount+UTS namespace: its own config, sockets, state and
# host UUID, so libvirt accepts live migration between A and B on this one machine.
if ! alive "$HOSTB_DIR/libvirtd.pid"; then
  step "starting libvirtd host B"
  mkdir -p "$HOSTB_DIR"/{run,lib,cache,log}
  if [ ! -d "$HOSTB_DIR/etc" ]; then
    cp -a /etc/libvirt "$HOSTB_DIR/etc"
    sed -i '/^host_uuid/d' "$HOSTB_DIR/etc/libvirtd.conf"
    echo "host_uuid = \"$HOSTB_UUID\"" >>"$HOSTB_DIR/etc/libvirtd.conf"
    # Its own default network would fight host A's over virbr0; host B has none.
    rm -f "$HOSTB_DIR/etc/qemu/networks/autostart/"*.xml
  fi
  if [ ! -d "$HOSTB_DIR/lib/qemu" ]; then
    cp -a /var/lib/libvirt/. "$HOSTB_DIR/lib/"
    rm -rf "$HOSTB_DIR"/lib/qemu/domain-* "$HOSTB_DIR"/lib/qemu/save/*
  fi
  # Host A's QEMU capability cache spares host B its own 10-20 s probe.
  cp -a /var/cache/libvirt/. "$HOSTB_DIR/cache/" 2>/dev/null || true
  rm -f "$HOSTB_DIR/run/"*.pid "$HOSTB_DIR/run/"*sock*
  unshare --mount --uts --propagation private bash -euc '
    d=$1
    mount --bind "$d/etc" /etc/libvirt
    mount --bind "$d/run" /run/libvirt
    mount --bind "$d/lib" /var/lib/libvirt
    mount --bind "$d/cache" /var/cache/libvirt
    mount --bind "$d/log" /var/log/libvirt
    hostname hostb
    /usr/sbin/virtlogd -d -p "$d/virtlogd.pid"
    /usr/sbin/libvirtd -d -p "$d/libvirtd.pid"
  ' hostb "$HOSTB_DIR" || die "could not start host B's daemons"
fi
wait_for 90 virsh -c "$HOSTB_URI" version || die "libvirtd host B does not answer on $HOSTB_URI"
[[ "$(virsh -c "$HOSTB_URI" capabilities)" == *"<uuid>$HOSTB_UUID</uuid>"* ]] ||
  die "host B answers but does not report host UUID $HOSTB_UUID"
step "libvirt host B answers ($HOSTB_URI)"

# ---------------------------------------------------------------- Open vSwitch
# No kernel openvswitch module: the userspace (netdev) datapath carries the traffic.
if ! /usr/share/openvswitch/scripts/ovs-ctl status >/dev/null 2>&1; then
  step "starting Open vSwitch"
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >"$RUN_DIR/ovs-ctl.log" 2>&1 ||
    die "ovs-ctl start failed: $(tail -n 5 "$RUN_DIR/ovs-ctl.log")"
fi
ovs-vsctl --timeout=10 --may-exist add-br "$BRIDGE" -- set bridge "$BRIDGE" datapath_type=netdev ||
  die "could not create OVS bridge $BRIDGE"
ip link set "$BRIDGE" up
[ "$(ovs-vsctl get bridge "$BRIDGE" datapath_type)" = netdev ] ||
  die "OVS bridge $BRIDGE exists without datapath_type=netdev"
step "OVS bridge $BRIDGE up"

# ---------------------------------------------------------------- NFS (nfs-ganesha)
# The kernel has no NFS server or client: ganesha serves, libnfs (qemu nfs://, nfs-ls)
# reads. Exports /primary and /secondary are pseudo paths for both NFSv3 and NFSv4.
if ! pgrep -x rpcbind >/dev/null; then
  setsid rpcbind -f -w </dev/null >>"$RUN_DIR/rpcbind.log" 2>&1 &
  echo $! >"$RUN_DIR/rpcbind.pid"
  wait_for 10 rpcinfo -p 127.0.0.1 || die "rpcbind does not answer"
fi
cat >"$RUN_DIR/ganesha.conf.new" <<EOF
NFS_CORE_PARAM {
  Bind_addr = 127.0.0.1;
  Protocols = 3, 4;
  Mount_Path_Pseudo = true;
  Enable_NLM = false;
  Enable_RQUOTA = false;
}
NFSV4 { Grace_Period = 1; Lease_Lifetime = 10; Graceless = true; }
# Files also change behind ganesha (the management server writes template downloads into
# the directory behind /secondary): no attribute caching, directories revalidated.
MDCACHE { Use_Getattr_Directory_Invalidation = true; Dir_Chunk = 0; }
EXPORT_DEFAULTS { Access_Type = RW; Squash = No_Root_Squash; SecType = sys; Transports = TCP; }
EXPORT { Export_Id = 1; Path = "$NFS_DIR/primary"; Pseudo = "/primary"; Attr_Expiration_Time = 0; FSAL { Name = VFS; } }
EXPORT { Export_Id = 2; Path = "$NFS_DIR/secondary"; Pseudo = "/secondary"; Attr_Expiration_Time = 0; FSAL { Name = VFS; } }
EOF
if ! cmp -s "$RUN_DIR/ganesha.conf.new" "$RUN_DIR/ganesha.conf" || ! alive "$RUN_DIR/ganesha.pid"; then
  step "starting nfs-ganesha"
  if alive "$RUN_DIR/ganesha.pid"; then
    kill "$(cat "$RUN_DIR/ganesha.pid")"
    wait_for 10 bash -c "! kill -0 $(cat "$RUN_DIR/ganesha.pid")" || die "old ganesha did not stop"
  fi
  mv "$RUN_DIR/ganesha.conf.new" "$RUN_DIR/ganesha.conf"
  mkdir -p /var/run/ganesha /var/lib/nfs/ganesha
  ganesha.nfsd -f "$RUN_DIR/ganesha.conf" -L "$RUN_DIR/ganesha.log" -p "$RUN_DIR/ganesha.pid" -N NIV_EVENT ||
    die "ganesha.nfsd did not start (see $RUN_DIR/ganesha.log)"
fi
rm -f "$RUN_DIR/ganesha.conf.new"
wait_for 30 nfs-ls nfs://127.0.0.1/primary || die "NFS export /primary not readable (see $RUN_DIR/ganesha.log)"
wait_for 30 nfs-ls nfs://127.0.0.1/secondary || die "NFS export /secondary not readable"
step "NFS exports /primary and /secondary on 127.0.0.1"

# ---------------------------------------------------------------- guest template
# A tiny bootable disk: FAT filesystem with SYSLINUX in its boot sector, holding Debian's
# kernel and a busybox initramfs whose /init prints the marker and a heartbeat. Converted
# to qcow2, it is an ordinary template: a domain boots it from disk (no direct kernel boot).
TEMPLATE="$HTTP_DIR/stratus-guest.qcow2"
# Bump when the guest below changes, so existing machines rebuild it.
GUEST_RECIPE=6
# Kernel modules in the initramfs, in load order: ACPI power button (so `virsh shutdown`
# powers the guest off), virtio disk and NIC, e1000 NIC.
GUEST_MODULES=(drivers/input/evdev.ko drivers/acpi/button.ko
  drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko drivers/virtio/virtio_pci_legacy_dev.ko
  drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci.ko drivers/block/virtio_blk.ko
  net/core/failover.ko drivers/net/net_failover.ko drivers/net/virtio_net.ko
  drivers/net/ethernet/intel/e1000/e1000.ko)
if [ ! -s "$TEMPLATE" ] || [ ! -s "$GUEST_DIR/template.sha256" ] ||
  [ "$(cat "$GUEST_DIR/recipe" 2>/dev/null)" != "$GUEST_RECIPE" ]; then
  step "building the guest template"
  work=$(mktemp -d "$GUEST_DIR/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  [ -n "$kpkg" ] || die "cannot find the kernel package behind linux-image-amd64"
  kver=${kpkg#linux-image-}
  (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$kpkg") || die "apt-get download $kpkg failed"
  patterns=()
  for m in "${GUEST_MODULES[@]}"; do patterns+=("./lib/modules/$kver/kernel/$m*"); done
  dpkg-deb --fsys-tarfile "$work"/"$kpkg"_*.deb |
    tar -x -C "$work" "./boot/vmlinuz-$kver" --wildcards "${patterns[@]}"
  mkdir -p "$work/root"/{bin,dev,proc,sys,etc/acpi/button,etc/acpi/PWRF,lib/modules}
  cp /bin/busybox "$work/root/bin/busybox"
  : >"$work/root/lib/modules/order"
  for m in "${GUEST_MODULES[@]}"; do
    f=$(find "$work/lib/modules/$kver/kernel/$(dirname "$m")" -name "$(basename "$m")*" | head -n1)
    [ -n "$f" ] || die "module $m is not in $kpkg"
    case $f in
      *.xz) xz -dc "$f" >"$work/root/lib/modules/$(basename "$m")" ;;
      *) cp "$f" "$work/root/lib/modules/$(basename "$m")" ;;
    esac
    basename "$m" >>"$work/root/lib/modules/order"
  done
  # busybox acpid runs button/power (input events) or PWRF/00000080 (older event names).
  for h in button/power PWRF/00000080; do
    printf '#!/bin/sh\necho STRATUS-GUEST-POWEROFF >/dev/console\nsync\npoweroff -f\n' >"$work/root/etc/acpi/$h"
    chmod 755 "$work/root/etc/acpi/$h"
  done
  cat >"$work/root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "$MARKER uptime=\$(cut -d' ' -f1 /proc/uptime) kernel=\$(uname -r)"
for m in \$(cat /lib/modules/order); do insmod /lib/modules/\$m || echo "STRATUS-GUEST-MODULE-FAILED \$m"; done
# ACPI power button (virsh shutdown): a clean poweroff.
mkdir -p /var/log
acpid -f -c /etc/acpi -l /var/log/acpid.log &
# Network (optional): eth0 gets 10.231.<MAC byte 5>.<MAC byte 6>/16 so a test can ping it.
if [ -e /sys/class/net/eth0/address ]; then
  mac=\$(cat /sys/class/net/eth0/address)
  ip="10.231.\$((0x\$(echo \$mac | cut -d: -f5))).\$((0x\$(echo \$mac | cut -d: -f6)))"
  ip link set lo up
  ip link set eth0 up
  ip addr add "\$ip/16" dev eth0
  echo "STRATUS-GUEST-NET eth0 mac=\$mac ip=\$ip"
fi
n=0
while true; do
  n=\$((n + 1))
  echo "$HEARTBEAT \$n uptime=\$(cut -d' ' -f1 /proc/uptime) disks=\$(ls /sys/block | grep -v -e loop -e ram | tr '\\n' ',')"
  sleep 1
done
EOF
  chmod 755 "$work/root/init"
  (cd "$work/root" && find . | cpio -o -H newc --quiet | gzip -9) >"$work/initrd.gz"
  cp "$work/boot/vmlinuz-$kver" "$GUEST_DIR/vmlinuz"
  cp "$work/initrd.gz" "$GUEST_DIR/initrd.gz"
  cat >"$work/syslinux.cfg" <<EOF
SERIAL 0 115200
PROMPT 0
TIMEOUT 0
DEFAULT stratus
LABEL stratus
  KERNEL vmlinuz
  APPEND initrd=initrd.gz console=ttyS0,115200 panic=-1 quiet
EOF
  # FAT image sized to its content plus slack (KiB).
  size_kib=$(($(du -k -c "$GUEST_DIR/vmlinuz" "$GUEST_DIR/initrd.gz" | tail -n1 | cut -f1) + 4096))
  mkfs.vfat -C -n STRATUS "$work/disk.img" "$size_kib" >/dev/null
  mcopy -i "$work/disk.img" "$GUEST_DIR/vmlinuz" "$GUEST_DIR/initrd.gz" "$work/syslinux.cfg" ::/
  syslinux --install "$work/disk.img"
  qemu-img convert -f raw -O qcow2 "$work/disk.img" "$work/template.qcow2"
  (cd "$work" && sha256sum template.qcow2 | cut -d' ' -f1 >"$GUEST_DIR/template.sha256.new")
  (cd "$work" && md5sum template.qcow2 | cut -d' ' -f1 >"$GUEST_DIR/template.md5")
  echo "$kver" >"$GUEST_DIR/kernel-version"
  mv "$work/template.qcow2" "$TEMPLATE"
  mv "$GUEST_DIR/template.sha256.new" "$GUEST_DIR/template.sha256"
  echo "$GUEST_RECIPE" >"$GUEST_DIR/recipe"
  rm -rf "$work"
  trap - EXIT
fi
step "guest template ready ($(cat "$GUEST_DIR/kernel-version"), $(du -h "$TEMPLATE" | cut -f1))"

# ---------------------------------------------------------------- HTTP on loopback
TEMPLATE_URL="http://127.0.0.1:$HTTP_PORT/stratus-guest.qcow2"
if ! alive "$RUN_DIR/http.pid"; then
  setsid python3 -m http.server --bind 127.0.0.1 --directory "$HTTP_DIR" "$HTTP_PORT" \
    </dev/null >>"$RUN_DIR/http.log" 2>&1 &
  echo $! >"$RUN_DIR/http.pid"
fi
wait_for 15 curl -fsS -o /dev/null -r 0-0 "$TEMPLATE_URL" || die "template not served at $TEMPLATE_URL"
step "template served at $TEMPLATE_URL"

# ---------------------------------------------------------------- environment
cat >"$KVM_DIR/env.sh.new" <<EOF
# Written by .ci/kvm-setup.sh; source it.
export STRATUS_TEST_KVM_DIR='$KVM_DIR'
export STRATUS_TEST_LIBVIRT_A='qemu:///system'
export STRATUS_TEST_LIBVIRT_B='$HOSTB_URI'
export STRATUS_TEST_LIBVIRT_DOMAIN_TYPE='qemu'
export STRATUS_TEST_MIGRATE_URI='tcp://127.0.0.1'
export STRATUS_TEST_OVS_BRIDGE='$BRIDGE'
export STRATUS_TEST_NFS_SERVER='127.0.0.1'
export STRATUS_TEST_NFS_PRIMARY_EXPORT='/primary'
export STRATUS_TEST_NFS_SECONDARY_EXPORT='/secondary'
export STRATUS_TEST_NFS_PRIMARY_DIR='$NFS_DIR/primary'
export STRATUS_TEST_NFS_SECONDARY_DIR='$NFS_DIR/secondary'
export STRATUS_TEST_TEMPLATE_URL='$TEMPLATE_URL'
export STRATUS_TEST_TEMPLATE_PATH='$TEMPLATE'
export STRATUS_TEST_TEMPLATE_SHA256='$(cat "$GUEST_DIR/template.sha256")'
export STRATUS_TEST_TEMPLATE_MD5='$(cat "$GUEST_DIR/template.md5")'
export STRATUS_TEST_TEMPLATE_FORMAT='QCOW2'
export STRATUS_TEST_GUEST_KERNEL='$GUEST_DIR/vmlinuz'
export STRATUS_TEST_GUEST_INITRD='$GUEST_DIR/initrd.gz'
export STRATUS_TEST_GUEST_MARKER='$MARKER'
export STRATUS_TEST_GUEST_HEARTBEAT='$HEARTBEAT'
export STRATUS_TEST_GUEST_NET_PREFIX='10.231.0.0/16'
EOF
mv "$KVM_DIR/env.sh.new" "$KVM_DIR/env.sh"
step "done; environment in $KVM_DIR/env.sh"
