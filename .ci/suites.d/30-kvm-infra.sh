# The real KVM infrastructure proof (.ci/kvm-infra-test.sh): a guest from the template
# boots on host A from an NFS disk with an OVS VLAN-tagged NIC and keeps its heartbeat
# across a live migration to host B. Skips when .ci/setup.d/30-kvm.sh did not run,
# except under STRATUS_CI=1, where a missing service is a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${STRATUS_TEST_LIBVIRT_A:-}" ] && [ ! -f "${STRATUS_CI_KVM_DIR:-/var/lib/stratus-ci/kvm}/env.sh" ]; then
  if [ "${STRATUS_CI:-}" = 1 ]; then
    echo "kvm-infra: FAIL: STRATUS_CI=1 but the KVM services are not set up (.ci/setup.d/30-kvm.sh)" >&2
    exit 1
  fi
  echo "kvm-infra: skipped (no KVM services; run .ci/kvm-setup.sh)"
  exit 0
fi
bash .ci/kvm-infra-test.sh
