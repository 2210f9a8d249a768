#!/usr/bin/env bash
# Builds the probe container image `localhost/probe:latest` with podman from a locally built
# static binary (the runtime stage of deploy/Dockerfile; no registry needed), installing podman
# and runc when missing. Prints the image size.
#
# Environment: PROBE_IMAGE (default localhost/probe:latest); PROBE_STATIC_TARGET_DIR (cargo
# target directory of the static build, default target/static, kept apart so the static
# RUSTFLAGS do not invalidate the normal build); PROBE_BINARY (use this static binary instead
# of building one); PROBE_IMAGE_MAX_BYTES (the size the image must stay under, as podman reports
# it; default 15000000, the target of the container issue).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
image=${PROBE_IMAGE:-localhost/probe:latest}
triple=x86_64-unknown-linux-gnu

if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "build-image: podman and runc are missing (as root: apt-get install -y podman runc)" >&2
    exit 1
  fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends podman runc
fi
# runc and ulimits within this machine's limits (see the file).
export CONTAINERS_CONF=${CONTAINERS_CONF:-$root/deploy/containers.conf}

binary=${PROBE_BINARY:-}
if [[ -z $binary ]]; then
  target_dir=${PROBE_STATIC_TARGET_DIR:-$root/target/static}
  # Under `cargo test` (tests/containers.rs calls this script) cargo hands the test its package's
  # CARGO_MANIFEST_DIR, CARGO_PKG_* and LD_LIBRARY_PATH. Build scripts watch some of them (ring's
  # watches CARGO_MANIFEST_DIR), so with them set the build below would differ from the one
  # scripts/test-all.sh made a step earlier and start again from ring up (minutes of every CI run).
  while read -r var; do unset "$var"; done < <(compgen -e | grep -E \
    '^(CARGO_(PKG_|MANIFEST_|CRATE_NAME|BIN_NAME|PRIMARY_PACKAGE|TARGET_TMPDIR)|LD_LIBRARY_PATH$)')
  # glibc, statically linked: the image has no libc. probe resolves names with hickory (no NSS).
  # Packed relative relocations (DT_RELR, glibc 2.36+): the static PIE's ~35,000 relocations in
  # 8 bytes each instead of 24 (0.8 MB less), still loaded at a random address.
  RUSTFLAGS="-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs" \
    cargo build --locked --profile container \
    -p probe-cli --target "$triple" --target-dir "$target_dir"
  binary=$target_dir/$triple/container/probe
fi
if ldd "$binary" 2>&1 | grep -q "=>"; then
  echo "build-image: $binary is dynamically linked; the image needs a static binary" >&2
  exit 1
fi

# The image is built again only when what goes into it changed (the container tests call this
# script after scripts/test-all.sh did): its label holds a digest of the binary, the Dockerfile
# and the root files.
inputs=$(sha256sum "$binary" deploy/Dockerfile deploy/rootfs/etc/* | cut -d' ' -f1 | sha256sum | cut -d' ' -f1)
built=$(podman image inspect --format '{{index .Labels "probe.inputs"}}' "$image" 2>/dev/null || true)
if [[ $built == "$inputs" ]]; then
  echo "build-image: $image is up to date"
else
  context=$(mktemp -d)
  trap 'rm -rf "$context"' EXIT
  cp "$binary" "$context/probe"
  cp -r deploy/rootfs/etc "$context/etc"
  mkdir -p "$context/var/lib/probe" "$context/var/log/probe"
  # Docker format: the OCI image format has no HEALTHCHECK.
  podman build --format docker --build-arg PROBE_BINARY=prebuilt --target runtime \
    --label "probe.inputs=$inputs" -f deploy/Dockerfile -t "$image" "$context"
fi
size=$(podman image inspect --format '{{.Size}}' "$image")
max=${PROBE_IMAGE_MAX_BYTES:-15000000}
echo "build-image: $image: $size bytes ($((size / 1024)) KiB; limit $max bytes)"
if ((size > max)); then
  echo "build-image: $image is $size bytes, over its $max-byte limit by $((size - max)) bytes." >&2
  echo "build-image: see what grew with cargo bloat (README, \"Image size\"): a new dependency," \
    "a default feature, or code of probe's own; trim it rather than raise the limit." >&2
  exit 1
fi
