# Real KVM hosts through the API (issue 9): the KVM driver against libvirt A/B, OVS and
# NFS (drivers/tests/kvm_libvirt.rs), then the end-to-end story through the CloudStack
# API with two `stratus agent --libvirt` processes (tests/kvm_e2e.rs). Needs the services
# and STRATUS_TEST_* variables of .ci/setup.d/30-kvm.sh; both tests skip without them
# and fail under STRATUS_CI=1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo test --locked -p stratus-drivers --features kvm --test kvm_libvirt -- --nocapture
cargo test --locked --features kvm --test kvm_e2e -- --nocapture
