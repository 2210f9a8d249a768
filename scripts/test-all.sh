#!/usr/bin/env bash
# The whole test suite, runnable on a fresh Debian machine (as root for the netns testbed):
# installs the system packages the tests need, then checks formatting and lints, builds, and runs
# unit tests, integration tests (network-namespace testbed), doc tests and the criterion benches
# in test mode.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: iproute2 and nftables build the testbed; the peer tools are measured beside
# probe in the benchmark runner and some integration tests; tcpdump captures the wire under
# the one-way delay checks (tests/a2a_wire.rs).
packages=(iproute2 nftables conntrack iperf3 sockperf irtt fping mtr-tiny traceroute scamper tcpdump)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "test-all: missing packages: ${missing[*]} (install them as root: apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  echo "test-all: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# As root nothing may be skipped for lack of privileges: the testbed tests must run.
if [[ $(id -u) -eq 0 ]]; then
  export PROBE_REQUIRE_ROOT_TESTS=1
elif [[ -n "${CI:-}" ]]; then
  echo "test-all: CI must run as root (the network-namespace tests need it)" >&2
  exit 1
fi

step() { printf '\n== %s ==\n' "$*"; }
step "format";  cargo fmt --all -- --check
step "clippy";  cargo clippy --workspace --all-targets -- -D warnings
step "build";   cargo build --workspace --all-targets
# One test at a time: the testbed tests check delays to a few hundred microseconds, and two
# of them sharing the 2 cores would measure each other's load.
step "tests, benches in test mode"; RUST_TEST_THREADS=1 cargo test --workspace --all-targets
step "doc tests"; cargo test --workspace --doc
echo
echo "test-all: all checks passed"
