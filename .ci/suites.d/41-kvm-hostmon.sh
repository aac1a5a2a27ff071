# The host monitor on real KVM hosts: `stratus hostmon` keeps a killed agent's lease fresh,
# so HA never restarts the VMs of a host whose guests still run; a killed monitor's lease is
# taken over by the agent (tests/kvm_hostmon.rs). Needs the services and STRATUS_TEST_*
# variables of .ci/setup.d/30-kvm.sh; skips without them, fails under STRATUS_CI=1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo test --locked --features kvm --test kvm_hostmon -- --nocapture
