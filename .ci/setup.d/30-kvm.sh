# Real KVM infrastructure (libvirt hosts A and B, Open vSwitch, nfs-ganesha, a guest
# template on loopback HTTP): .ci/kvm-setup.sh does the work and documents every
# STRATUS_TEST_* variable it exports; this file runs it and sources its environment.
# Stop it all with .ci/kvm-teardown.sh.
bash "$(dirname "${BASH_SOURCE[0]}")/../kvm-setup.sh"
# shellcheck disable=SC1091
source "${STRATUS_CI_KVM_DIR:-/var/lib/stratus-ci/kvm}/env.sh"
