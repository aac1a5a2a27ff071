# Real KVM: two guest networks get two VLAN tags on the OVS bridge (drivers/tests/kvm_vlans.rs),
# and `stratus bench kvm` runs end to end (one round each side, no HA step; the figures
# themselves live in BENCHMARKS.md, this only proves the command works). Skips like the
# other KVM suites when the services are absent (fails under STRATUS_CI=1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo test --locked -p stratus-drivers --features kvm --test kvm_vlans -- --nocapture
if [ -z "${STRATUS_TEST_LIBVIRT_A:-}" ]; then
  if [ "${STRATUS_CI:-}" = 1 ]; then
    echo "kvm-bench: FAIL: STRATUS_CI=1 but no KVM services (STRATUS_TEST_LIBVIRT_A)" >&2
    exit 1
  fi
  echo "kvm-bench: skipped (no KVM services; run .ci/kvm-setup.sh)"
  exit 0
fi
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
cargo run --locked --features kvm -- bench kvm --rounds 1 --json > "$out"
python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert set(r["ratio_stratus_over_raw"]) == {"deploy", "deploy_to_marker", "migrate_live", "stop_forced", "start"}, r
assert all(h["cpunumber"] > 0 for h in r["hosts"]), r["hosts"]
print("kvm-bench: ratios", r["ratio_stratus_over_raw"])
PY
