# The web console. Its browser tests (tests/console_browser.rs: headless
# Chromium via chromedriver, set up by .ci/setup.d/20-chromium.sh) already ran
# with the workspace tests, failing there if Chromium is missing (STRATUS_CI=1).
# Here: a smoke run of its benchmark (the instances page over 1,000 VMs; the
# 10,000-VM figure in BENCHMARKS.md is a --release run).
set -euo pipefail
cargo run -q --locked -- bench console --vms 1000 --hosts 2 --iterations 5
