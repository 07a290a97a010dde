# Sourced by the deploy/image scripts: picks the container engine and, for podman, writes the engine
# configuration this machine needs to a private file (nothing under /etc is touched).
#   ENGINE          podman or docker (override with CONTAINER_ENGINE=...)
#   CONTAINERS_CONF exported for podman: runc as the runtime, ulimits within the host's hard limits
# A machine without a working engine fails here, loudly: the image tests must not pass without one.

_engine_works() {
  case "$1" in
    podman) command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1 ;;
    # A docker CLI without a daemon behind it (as on this machine) is no engine.
    docker) command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}

_hard_limit() {  # the host's hard limit, capped: 'unlimited' and huge values are not valid container limits
  local value
  value=$(ulimit -H "$1")
  if [ "$value" = unlimited ] || [ "$value" -gt 1048576 ]; then value=1048576; fi
  echo "$value"
}

_write_podman_conf() {
  local dir=${MODELSERVE_PODMAN_DIR:-${TMPDIR:-/tmp}/modelserve-podman}
  mkdir -p "$dir"
  local nofile nproc
  nofile=$(_hard_limit -n)
  nproc=$(_hard_limit -u)
  # Measured here: runc could set nproc 4096 but not 8192, though the shell's hard limit was 96364.
  [ "$nproc" -gt 4096 ] && nproc=4096
  # `podman build` (buildah) reads no default_ulimits: build.sh passes these as --ulimit.
  PODMAN_ULIMITS=(--ulimit "nofile=${nofile}:${nofile}" --ulimit "nproc=${nproc}:${nproc}")
  # crun, podman's default runtime, refuses hybrid cgroup layouts ("cgroups in hybrid mode not
  # supported"); runc runs there and everywhere else. The default container ulimits are higher than a
  # process without CAP_SYS_RESOURCE may set, so ask for the host's own hard limits instead.
  cat >"$dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]

[engine]
runtime = "runc"
CONF
  export CONTAINERS_CONF="$dir/containers.conf"
}

if [ -n "${CONTAINER_ENGINE:-}" ]; then
  ENGINE=$CONTAINER_ENGINE
  [ "$ENGINE" = podman ] && _write_podman_conf
  _engine_works "$ENGINE" || ENGINE=
else
  ENGINE=
  for candidate in podman docker; do
    if command -v "$candidate" >/dev/null 2>&1; then
      [ "$candidate" = podman ] && _write_podman_conf
      if _engine_works "$candidate"; then ENGINE=$candidate; break; fi
    fi
  done
fi
if [ -z "$ENGINE" ]; then
  echo "error: no working container engine (podman, or docker with a running daemon) on this machine;" >&2
  echo "       install podman with 'make container-tools' (Debian) or start docker" >&2
  exit 1
fi
[ "$ENGINE" = podman ] && [ -z "${CONTAINERS_CONF:-}" ] && _write_podman_conf
export ENGINE
