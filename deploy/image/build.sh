#!/usr/bin/env bash
# `make image`: builds deploy/Dockerfile into modelserve:<project version> with podman (or docker).
#   BASE_IMAGE=...        base for both stages (default python:3.11-slim when it can be had, else the
#                         Debian-package base from deploy/image/base.sh)
#   TORCH_INDEX_URL=...   passed to the build stage (default: empty when the host's pip configuration
#                         names an index or wheel folder, which then serves torch's CPU wheel)
#   TRAIN_SMALL=1         the build stage trains with `--small` (CI: minutes less; unset trains in full)
# pip inside the build resolves as on the host: host network, the host's pip configuration (merged
# into the image's /etc/pip.conf for the RUN steps only) and every local path it names, read-only.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/image/engine.sh
PYTHON=${PYTHON:-python3}
VERSION=$($PYTHON -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
IMAGE=${IMAGE:-modelserve:$VERSION}
started=$(date +%s)

has_image() { $ENGINE image inspect "$1" >/dev/null 2>&1; }
if [ -z "${BASE_IMAGE:-}" ]; then
  if has_image python:3.11-slim || $ENGINE pull -q docker.io/library/python:3.11-slim >/dev/null 2>&1; then
    BASE_IMAGE=python:3.11-slim
  else
    echo "no registry reachable for python:3.11-slim: building on a base made from Debian packages"
    # Named after base.sh's content: an edited script makes a new base, an unchanged one is reused.
    base_name=modelserve-base:bookworm-$(sha256sum deploy/image/base.sh | cut -c1-12)
    deploy/image/base.sh "$base_name"
    BASE_IMAGE=localhost/$base_name
  fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/modelserve-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
args=(--network host --build-arg "BASE_IMAGE=$BASE_IMAGE" -f deploy/Dockerfile -t "$IMAGE"
      --label "org.opencontainers.image.version=$VERSION")
mapfile -t pip_paths < <($PYTHON deploy/image/pipconf.py "$work/pip.conf")
if [ "$ENGINE" = podman ]; then
  # --format docker keeps the HEALTHCHECK (the OCI format has none); -v applies to RUN steps only.
  # --jobs 2: the runtime stage installs the `serve` extra while the build stage trains (they meet only
  # at COPY --from=build); BuildKit (docker) runs independent stages side by side by itself.
  args+=(--format docker --layers --jobs 2 "${PODMAN_ULIMITS[@]}" -v "$work/pip.conf:/etc/pip.conf:ro")
  for path in "${pip_paths[@]}"; do args+=(-v "$path:$path:ro"); done
elif [ ${#pip_paths[@]} -gt 0 ]; then
  echo "note: docker build cannot mount the host's pip paths (${pip_paths[*]}): pip uses its defaults" >&2
fi
if [ -z "${TORCH_INDEX_URL+set}" ] && [ "$ENGINE" = podman ] && grep -qE '^(index-url|extra-index-url|find-links) =' "$work/pip.conf"; then
  TORCH_INDEX_URL=
fi
[ -n "${TORCH_INDEX_URL+set}" ] && args+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
# TRAIN_SMALL=1: the build stage trains with the fast configuration (CI); unset trains in full.
[ -n "${TRAIN_SMALL:-}" ] && args+=(--build-arg "TRAIN_SMALL=$TRAIN_SMALL")

echo "$ENGINE build on $BASE_IMAGE -> $IMAGE"
# Each step's start, in seconds since the script began: where the build's time goes.
$ENGINE build "${args[@]}" . 2>&1 | while IFS= read -r line; do
  case $line in
    *"STEP "*) printf '[%4d s] %s\n' $(( $(date +%s) - started )) "$line" ;;
    *) printf '%s\n' "$line" ;;
  esac
done
size=$($ENGINE image inspect --format '{{.Size}}' "$IMAGE")
echo "built $IMAGE in $(( $(date +%s) - started )) s: $(( size / 1000000 )) MB"
