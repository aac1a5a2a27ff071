#!/usr/bin/env bash
# The fuzz canary: a fencing bypass planted behind a test-only cargo feature
# must be reported by the fuzzer within a few hundred seeds (and the same seed
# must be clean without it). Its own cargo invocation, so the feature never
# reaches the other tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo test -p stratus-sim --features canary-fencing-bypass --test fuzz_canary --locked
