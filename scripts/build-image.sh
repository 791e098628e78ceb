#!/usr/bin/env bash
# Builds jangar's container images without Docker, as OCI image archives that `ctr images import` takes:
#   local.jangar.dev/jangar:<hash>      deploy/Dockerfile's image: Debian bookworm's Python 3.11 with the project
#                                       installed in a venv at /opt/jangar (mmdebstrap + pip in a chroot + umoci)
#   local.jangar.dev/test-agent:<hash>  busybox-static and /usr/local/bin/fake-agent, a program with known
#                                       outcomes for tests against a real node (see fake_agent below)
#   local.jangar.dev/pause:1            the pod sandbox image, from a pause binary built by another script
#                                       (~/.cache/jangar/k8s-assets/*/bin/pause or $JANGAR_PAUSE_BIN); skipped
#                                       with a message when there is none
# <hash> is a content hash of the inputs (this script, pyproject.toml, README.md, jangar/, the Debian package
# list; busybox for the test agent), so an unchanged tree reuses the archive cached in ~/.cache/jangar/images/
# (or $JANGAR_IMAGE_CACHE). The newest $JANGAR_IMAGE_KEEP (3) archives of each image are kept, and the Debian
# base rootfs is cached as a tarball keyed by its package list, so a source change only redoes pip and umoci.
# Every step prints its duration on stderr. The jangar image needs root (mmdebstrap, chroot, mount), network
# access to Debian's mirror and PyPI, mmdebstrap and umoci; the others need umoci and busybox-static.
#
# Usage: scripts/build-image.sh [--jangar] [--test-agent] [--pause] [--curl] [--all]
#                               [--print-path] [--no-build] [--force] [--import SOCKET] [--print-config]
#   (no image flag: --jangar)
#   --print-path    print each image's archive path on stdout instead of its reference
#   --no-build      only print the references (or paths) the current inputs give; build nothing
#   --force         rebuild even when the archive is cached
#   --import SOCK   import each archive into containerd at SOCK, namespace k8s.io:
#                   ctr --address SOCK -n k8s.io images import --base-name local.jangar.dev/NAME ARCHIVE
#                   (an image already there under the same content-hash reference is not imported again;
#                   the pause image is also labelled io.cri-containerd.pinned=pinned so image GC keeps it)
#   --print-config  print the jangar image's config (venv, sources, user, entrypoint, cmd, env, ports, labels,
#                   account) as key=value lines and exit: tests/unit/images/test_image_parity.py compares it
#                   with deploy/Dockerfile
# stdout: one line per image, its reference (or archive path).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
self="$here/$(basename "${BASH_SOURCE[0]}")"

REGISTRY=local.jangar.dev
CACHE="${JANGAR_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jangar/images}"
SUITE=bookworm
MIRROR="${JANGAR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${JANGAR_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# Debian 12's python3 is 3.11, as deploy/Dockerfile's python:3.11-slim. libstdc++6: grpcio needs it.
# passwd: groupadd/useradd, as the Dockerfile.
PACKAGES=(python3 python3-venv libstdc++6 ca-certificates passwd)
# Docs, man pages and translations are not installed (copyright files are).
MMDEBSTRAP_OPTS=(--variant=minbase --aptopt='Acquire::Retries "3"' --aptopt='APT::Sandbox::User "root"'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright')
# Host CA bundle for pip in the chroot (egress may go through a TLS-inspecting proxy); build time only.
HOST_CA="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"

# --- the jangar image's config: kept in step with deploy/Dockerfile (tests/unit/images/) -----------------
J_UID=10001
J_GID=10001
J_NAME=jangar
J_HOME=/home/jangar
J_SHELL=/usr/sbin/nologin
J_VENV=/opt/jangar
J_ENTRYPOINT=(jangar)
J_CMD=(serve)
J_PORTS=(8080 50051)
jangar_env() { # $1 = version, $2 = build sha
  printf '%s\n' \
    "PATH=$J_VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "LANG=C.UTF-8" \
    "PYTHONDONTWRITEBYTECODE=1" \
    "PYTHONUNBUFFERED=1" \
    "JANGAR_VERSION=$1" \
    "JANGAR_BUILD_SHA=$2"
}
jangar_labels() { # $1 = version, $2 = revision
  printf '%s\n' \
    "org.opencontainers.image.title=jangar" \
    "org.opencontainers.image.description=Agents control plane for Kubernetes" \
    "org.opencontainers.image.source=https://github.com/proompteng/jangar" \
    "org.opencontainers.image.version=$1" \
    "org.opencontainers.image.revision=$2" \
    "org.opencontainers.image.licenses=Apache-2.0"
}

# --- options -------------------------------------------------------------------------------------------
want=()
print_path=0
no_build=0
force=0
sock=""
print_config=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --jangar) want+=(jangar) ;;
    --test-agent) want+=(test-agent) ;;
    --pause) want+=(pause) ;;
    --curl) want+=(curl) ;;
    --all) want+=(jangar test-agent pause curl) ;;
    --print-path) print_path=1 ;;
    --no-build) no_build=1 ;;
    --force) force=1 ;;
    --import)
      [[ $# -ge 2 ]] || { echo "--import needs a containerd socket" >&2; exit 2; }
      sock="$2"; shift ;;
    --import=*) sock="${1#--import=}" ;;
    --print-config) print_config=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ ${#want[@]} -gt 0 ]] || want=(jangar)

# --- helpers -------------------------------------------------------------------------------------------
step_name=""
step_start=""
step() { step_name="$1"; step_start=$EPOCHREALTIME; echo ">>> $step_name" >&2; }
done_step() { echo "<<< $step_name: $(elapsed "$step_start")s" >&2; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || { echo "build-image: '$t' is missing (apt-get install -y mmdebstrap umoci busybox-static)" >&2; exit 1; }
  done
}
sha() { sha256sum | cut -c1-12; }
# The project files the jangar image is built from (what deploy/Dockerfile COPYs), relative to the repo.
jangar_inputs() {
  (cd "$repo" && { printf '%s\n' pyproject.toml README.md
    find jangar -type f ! -path '*/__pycache__/*' ! -name '*.pyc' | LC_ALL=C sort; })
}
jangar_tag() {
  {
    sha256sum "$self" | cut -d' ' -f1
    echo "$SUITE ${PACKAGES[*]}"
    (cd "$repo" && jangar_inputs | while read -r f; do sha256sum "$f"; done)
  } | sha
}
base_key() { echo "$SUITE ${PACKAGES[*]} ${MMDEBSTRAP_OPTS[*]} $MIRROR $SECURITY_MIRROR" | sha; }
project_version() { sed -n 's/^version[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$repo/pyproject.toml" | head -n1; }
busybox_bin() { command -v busybox 2>/dev/null || true; }
test_agent_tag() {
  local bb; bb="$(busybox_bin)"
  { sha256sum "$self" | cut -d' ' -f1; if [[ -n "$bb" ]]; then sha256sum "$bb" | cut -d' ' -f1; fi; } | sha
}
pause_bin() {
  if [[ -n "${JANGAR_PAUSE_BIN:-}" ]]; then echo "$JANGAR_PAUSE_BIN"; return; fi
  local f
  for f in "${XDG_CACHE_HOME:-$HOME/.cache}"/jangar/k8s-assets/*/bin/pause; do
    if [[ -x "$f" ]]; then echo "$f"; return; fi
  done
}
pause_key() { { sha256sum "$self" | cut -d' ' -f1; sha256sum "$1" | cut -d' ' -f1; } | sha; }

unpack=(umoci unpack)
repack=(umoci repack)
if [[ $EUID -ne 0 ]]; then unpack+=(--rootless); repack+=(--rootless); fi

W=""
mounted=()
cleanup() {
  local i
  for (( i=${#mounted[@]}-1; i>=0; i-- )); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  mounted=()
  if [[ -n "$W" && -d "$W" ]]; then rm -rf --one-file-system "$W"; fi
}
trap cleanup EXIT
# A fresh work dir in the cache (same filesystem, so the archive is moved into place atomically) and an
# empty single-tag OCI layout unpacked to $W/bundle (rootfs: $W/bundle/rootfs).
begin() { # $1 = tag
  W="$(mktemp -d "$CACHE/.build.XXXXXX")"
  umoci init --layout "$W/oci"
  umoci new --image "$W/oci:$1"
  "${unpack[@]}" --image "$W/oci:$1" "$W/bundle" >/dev/null
}
# umoci config writes a new manifest: every repack must come before it (the bundle's cache points to the old one).
finish() { # $1 = tag, $2 = archive, then umoci config args
  local tag="$1" archive="$2"; shift 2
  "${repack[@]}" --image "$W/oci:$tag" --history.created_by "scripts/build-image.sh" "$W/bundle"
  umoci config --image "$W/oci:$tag" --os linux --architecture amd64 --author "scripts/build-image.sh" "$@"
  umoci gc --layout "$W/oci"
  tar -C "$W/oci" -cf "$W/image.oci.tar" .
  mv "$W/image.oci.tar" "$archive"
  rm -rf "$W"; W=""
}
# Keep the newest $JANGAR_IMAGE_KEEP (default 3) archives of one image: every source change makes a new one.
prune() { # $1 = archive prefix (jangar, test-agent, pause)
  local keep="${JANGAR_IMAGE_KEEP:-3}" old
  find "$CACHE" -maxdepth 1 -name "$1-*.oci.tar" -printf '%T@ %p\n' | sort -rn | tail -n +"$((keep + 1))" \
    | cut -d' ' -f2- | while read -r old; do echo "removing an old archive: $old" >&2; rm -f "$old"; done
}
report() { # $1 = ref, $2 = archive
  if [[ $print_path -eq 1 ]]; then echo "$2"; else echo "$1"; fi
}
# Import an archive into containerd (namespace k8s.io) unless the reference is already there.
import() { # $1 = name, $2 = ref, $3 = archive, $4 = always (1: import even when present)
  [[ -n "$sock" ]] || return 0
  need ctr
  local ctr=(ctr --address "$sock" -n k8s.io)
  if [[ "${4:-0}" != 1 ]] && "${ctr[@]}" images ls -q | grep -qxF "$2"; then
    echo "$2 already in containerd ($sock)" >&2
    return 0
  fi
  step "import $2"
  "${ctr[@]}" images import --base-name "$REGISTRY/$1" "$3" >&2
  done_step
}
locked() { # $1 = name: serialise builds of one image (two runs at once build it once)
  exec {lockfd}>"$CACHE/.lock-$1"
  flock "$lockfd"
}
debian_rootfs() { # $1 = output tarball, then the packages: a Debian $SUITE rootfs (mmdebstrap, our options)
  local out="$1"; shift
  mmdebstrap "${MMDEBSTRAP_OPTS[@]}" --include="$(IFS=,; echo "$*")" "$SUITE" "$out" \
    "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY_MIRROR $SUITE-security main" \
    2> >(grep -v '^I: ' >&2 || true)
}
mount_into() { # $1 = source, $2 = target, extra mount args...
  local src="$1" dst="$2"; shift 2
  mount "$@" "$src" "$dst"
  mounted+=("$dst")
}

# --- the jangar image ----------------------------------------------------------------------------------
build_jangar() {
  local tag version ref archive r total
  tag="$(jangar_tag)"
  version="$(project_version)"
  ref="$REGISTRY/jangar:$tag"
  archive="$CACHE/jangar-$tag.oci.tar"
  if [[ $no_build -eq 0 ]]; then
    locked jangar
    if [[ -f "$archive" && $force -eq 0 ]]; then
      echo "jangar image cached: $archive ($(du -h "$archive" | cut -f1))" >&2
    else
      [[ $EUID -eq 0 ]] || { echo "build-image: the jangar image needs root (mmdebstrap, chroot, mount)" >&2; exit 1; }
      need mmdebstrap umoci chroot
      total=$EPOCHREALTIME
      step "empty OCI image (umoci)"
      begin "$tag"
      r="$W/bundle/rootfs"
      done_step

      # The Debian base (mmdebstrap) is cached as a rootfs tarball keyed by the suite, the packages and the
      # options, so a change to the project's sources only redoes pip and umoci. --force refreshes it too.
      local base
      base="$CACHE/base-$SUITE-$(base_key).tar"
      if [[ ! -f "$base" || $force -eq 1 ]]; then
        step "Debian $SUITE base rootfs (mmdebstrap ${MMDEBSTRAP_OPTS[*]}: ${PACKAGES[*]})"
        debian_rootfs "$W/base.tar" "${PACKAGES[@]}"
        mv "$W/base.tar" "$base"
        done_step
      else
        echo "Debian base rootfs cached: $base" >&2
      fi
      step "unpack the base rootfs"
      tar -C "$r" --numeric-owner -xpf "$base"
      done_step

      step "venv $J_VENV + pip install of a wheel built from the working tree (chroot)"
      mkdir -p "$r/tmp/src"
      (cd "$repo" && jangar_inputs | tar -cf - -T -) | tar -C "$r/tmp/src" -xf -
      cp "$HOST_CA" "$r/tmp/host-ca.pem"
      rm -f "$r/etc/resolv.conf"
      cp -L /etc/resolv.conf "$r/etc/resolv.conf"
      mount_into proc "$r/proc" -t proc
      mount_into /dev "$r/dev" --bind
      # A clean environment: only what pip needs (the host's PIP_* settings, e.g. find-links, stay outside).
      local in=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 PIP_CERT=/tmp/host-ca.pem
                PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 PIP_ROOT_USER_ACTION=ignore
                ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy}
                ${no_proxy:+no_proxy=$no_proxy} chroot "$r")
      "${in[@]}" python3 -m venv "$J_VENV"
      "${in[@]}" "$J_VENV/bin/pip" install -q --upgrade pip
      "${in[@]}" "$J_VENV/bin/pip" wheel -q --no-deps -w /tmp/dist /tmp/src
      "${in[@]}" sh -c "$J_VENV/bin/pip install -q /tmp/dist/jangar-*.whl"
      "${in[@]}" groupadd --gid "$J_GID" "$J_NAME"
      "${in[@]}" useradd --uid "$J_UID" --gid "$J_GID" --home-dir "$J_HOME" --create-home --shell "$J_SHELL" "$J_NAME"
      "${in[@]}" "$J_VENV/bin/jangar" --help >/dev/null
      umount "$r/dev" && umount "$r/proc"
      mounted=()
      # The runtime provides these (mmdebstrap copies the host's).
      rm -f "$r/etc/resolv.conf" "$r/etc/hostname"
      rm -rf "$r/tmp/src" "$r/tmp/dist" "$r/tmp/host-ca.pem" "$r/root/.cache" "$r"/var/log/apt/* "$r"/var/cache/ldconfig/aux-cache
      find "$r/tmp" -mindepth 1 -delete
      done_step

      step "layer + config (umoci repack, umoci config) + archive"
      local cfg=() line
      cfg+=(--config.user "$J_UID:$J_GID" --config.workingdir "$J_HOME")
      cfg+=(--config.entrypoint "${J_ENTRYPOINT[@]}" --config.cmd "${J_CMD[@]}")
      for line in "${J_PORTS[@]}"; do cfg+=(--config.exposedports "$line/tcp"); done
      while read -r line; do cfg+=(--config.env "$line"); done < <(jangar_env "$version" "$tag")
      while read -r line; do cfg+=(--config.label "$line"); done < <(jangar_labels "$version" "$tag")
      mkdir -p "$CACHE"
      finish "$tag" "$archive" "${cfg[@]}"
      done_step
      echo "jangar image built in $(elapsed "$total")s: $archive ($(du -h "$archive" | cut -f1))" >&2
      prune jangar
    fi
    import jangar "$ref" "$archive"
  fi
  report "$ref" "$archive"
}

# --- the test agent image ------------------------------------------------------------------------------
# /usr/local/bin/fake-agent: the mode is the first argument, else $FAKE_AGENT_MODE, else succeed.
fake_agent() {
  cat <<'SH'
#!/bin/sh
# fake-agent: known behaviours for tests (local.jangar.dev/test-agent, built by scripts/build-image.sh).
#   succeed [TEXT]   print "fake-agent: succeed" (and TEXT) on stdout, exit 0
#   fail [N]         print "fake-agent: fail N" on stderr, exit N (default 1)
#   sleep S          print "fake-agent: sleep S", sleep S seconds, print "fake-agent: slept S", exit 0;
#                    SIGTERM/SIGINT: print "fake-agent: terminated" on stderr, exit 143
#   oom [MB]         allocate memory until killed (run it under a memory limit!); with MB, allocate MB
#                    megabytes at once, then print "fake-agent: survived MB" and exit 0 if not killed
#   env              print the environment (sorted), exit 0
#   cat FILE...      print the files, exit with cat's status
#   ls DIR...        list the directories (ls -la), exit with ls's status
#   write FILE TEXT  write TEXT to FILE (checks a writable mount), print "fake-agent: wrote FILE", exit 0
#   id               print the uid, gid and groups, exit 0
#   report JSON      write JSON to the termination message (/dev/termination-log), print it, exit 0
mode="${1:-${FAKE_AGENT_MODE:-succeed}}"
[ $# -gt 0 ] && shift
case "$mode" in
  succeed) echo "fake-agent: succeed"; [ $# -gt 0 ] && echo "$*"; exit 0 ;;
  fail) n="${1:-1}"; echo "fake-agent: fail $n" >&2; exit "$n" ;;
  sleep)
    # One-second steps, not `sleep S & wait`: under load the background form once missed a SIGTERM until
    # the sleep ended (a signal racing ash's `wait`); here the trap runs within a second of it, always.
    s="${1:-3600}"
    trap 'echo "fake-agent: terminated" >&2; exit 143' TERM INT
    echo "fake-agent: sleep $s"
    i=0
    while [ "$i" -lt "$s" ]; do sleep 1; i=$((i + 1)); done
    echo "fake-agent: slept $s"; exit 0 ;;
  oom)
    echo "fake-agent: oom ${1:-unbounded}"
    if [ -z "${1:-}" ]; then exec tail /dev/zero >/dev/null; fi
    head -c "${1}m" /dev/zero | tail >/dev/null
    echo "fake-agent: survived $1"; exit 0 ;;
  env) env | sort; exit 0 ;;
  cat) exec cat "$@" ;;
  ls) exec ls -la "$@" ;;
  write) printf '%s\n' "$2" > "$1" && echo "fake-agent: wrote $1"; exit $? ;;
  id) id; exit 0 ;;
  report) printf '%s' "$1" > /dev/termination-log && echo "fake-agent: reported $1"; exit $? ;;
  *) echo "fake-agent: unknown mode '$mode'" >&2; exit 64 ;;
esac
SH
}

# /usr/local/bin/agent-runner: a stand-in for the reference's agent image (its sample AgentProvider runs
# /usr/local/bin/agent-runner, which reads the run's specs and runs codex). This one reads the same files,
# says what it would do, and reports outputs in the termination message, so the seed's sample AgentRun
# runs unedited in a real container where the real image cannot be pulled.
stand_in_agent_runner() {
  cat <<'SH'
#!/bin/sh
# agent-runner (jangar stand-in, local.jangar.dev/test-agent): no model is called.
set -eu
spec="${AGENT_RUNNER_SPEC_PATH:-/workspace/agent-runner.json}"
run="${AGENT_RUN_SPEC:-/workspace/run.json}"
[ -r "$spec" ] || { echo "agent-runner: cannot read $spec" >&2; exit 66; }
[ -r "$run" ] || { echo "agent-runner: cannot read $run" >&2; exit 66; }
stage="$(sed -n 's/^ *"stage": *"\([^"]*\)".*/\1/p' "$run" | head -n1)"
echo "agent-runner: provider ${AGENT_PROVIDER:-?}, stage ${stage:-none}"
if [ -r /workspace/implementation.txt ]; then
  echo "agent-runner: implementation: $(head -c 200 /workspace/implementation.txt | tr '\n' ' ')"
fi
mkdir -p /workspace/.agent
echo "agent-runner stand-in ran stage ${stage:-none}" > /workspace/.agent/agent.log
printf '{"outputs":{"stage":"%s","standIn":true}}' "${stage:-none}" > /dev/termination-log 2>/dev/null || true
echo "agent-runner: done"
SH
}

build_test_agent() {
  local tag ref archive r bb app total
  tag="$(test_agent_tag)"
  ref="$REGISTRY/test-agent:$tag"
  archive="$CACHE/test-agent-$tag.oci.tar"
  if [[ $no_build -eq 0 ]]; then
    locked test-agent
    if [[ -f "$archive" && $force -eq 0 ]]; then
      echo "test-agent image cached: $archive ($(du -h "$archive" | cut -f1))" >&2
    else
      need umoci busybox
      bb="$(busybox_bin)"
      total=$EPOCHREALTIME
      step "test-agent rootfs (busybox-static + fake-agent)"
      begin "$tag"
      r="$W/bundle/rootfs"
      mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,proc,sys,dev,root,workspace} "$r/tmp" "$r/home/agent"
      chmod 1777 "$r/tmp"
      cp "$bb" "$r/bin/busybox"
      for app in $("$bb" --list-full); do
        [[ -e "$r/$app" ]] || ln -s /bin/busybox "$r/$app"
      done
      printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'agent:x:1000:1000:agent:/home/agent:/bin/sh' \
        'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' > "$r/etc/passwd"
      printf '%s\n' 'root:x:0:' 'agent:x:1000:' 'nogroup:x:65534:' > "$r/etc/group"
      chown 1000:1000 "$r/home/agent"
      fake_agent > "$r/usr/local/bin/fake-agent"
      stand_in_agent_runner > "$r/usr/local/bin/agent-runner"
      chmod 0755 "$r/usr/local/bin/fake-agent" "$r/usr/local/bin/agent-runner"
      done_step
      step "layer + config + archive"
      mkdir -p "$CACHE"
      finish "$tag" "$archive" --config.entrypoint /usr/local/bin/fake-agent --config.cmd succeed \
        --config.env "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" --config.workingdir / \
        --config.label "org.opencontainers.image.title=jangar-test-agent" \
        --config.label "org.opencontainers.image.revision=$tag"
      done_step
      echo "test-agent image built in $(elapsed "$total")s: $archive ($(du -h "$archive" | cut -f1))" >&2
      prune test-agent
    fi
    import test-agent "$ref" "$archive"
  fi
  report "$ref" "$archive"
}

# --- a curl image (the chart's `helm test` pod runs curl) ----------------------------------------------
CURL_PACKAGES=(curl ca-certificates)
curl_tag() { { sha256sum "$self" | cut -d' ' -f1; echo "$SUITE ${CURL_PACKAGES[*]} ${MMDEBSTRAP_OPTS[*]}"; } | sha; }
build_curl() {
  local tag ref archive r total
  tag="$(curl_tag)"
  ref="$REGISTRY/curl:$tag"
  archive="$CACHE/curl-$tag.oci.tar"
  if [[ $no_build -eq 0 ]]; then
    locked curl
    if [[ -f "$archive" && $force -eq 0 ]]; then
      echo "curl image cached: $archive ($(du -h "$archive" | cut -f1))" >&2
    else
      [[ $EUID -eq 0 ]] || { echo "build-image: the curl image needs root (mmdebstrap)" >&2; exit 1; }
      need mmdebstrap umoci
      total=$EPOCHREALTIME
      begin "$tag"
      r="$W/bundle/rootfs"
      step "Debian $SUITE rootfs (mmdebstrap: ${CURL_PACKAGES[*]})"
      debian_rootfs "$W/base.tar" "${CURL_PACKAGES[@]}"
      tar -C "$r" --numeric-owner -xpf "$W/base.tar"
      rm -f "$W/base.tar" "$r/etc/resolv.conf" "$r/etc/hostname"
      rm -rf "$r"/var/log/apt/* "$r"/var/cache/apt/* "$r"/var/lib/apt/lists/*
      done_step
      step "layer + config + archive"
      mkdir -p "$CACHE"
      finish "$tag" "$archive" --config.entrypoint curl --config.user 100:101 \
        --config.label "org.opencontainers.image.title=jangar-curl" --config.label "org.opencontainers.image.revision=$tag"
      done_step
      echo "curl image built in $(elapsed "$total")s: $archive ($(du -h "$archive" | cut -f1))" >&2
      prune curl
    fi
    import curl "$ref" "$archive"
  fi
  report "$ref" "$archive"
}

# --- the pause image -----------------------------------------------------------------------------------
build_pause() {
  local bin key ref archive r
  bin="$(pause_bin)"
  if [[ -z "$bin" || ! -x "$bin" ]]; then
    echo "pause image skipped: no pause binary (~/.cache/jangar/k8s-assets/*/bin/pause or \$JANGAR_PAUSE_BIN)" >&2
    return 0
  fi
  key="$(pause_key "$bin")"
  ref="$REGISTRY/pause:1"
  archive="$CACHE/pause-$key.oci.tar"
  if [[ $no_build -eq 0 ]]; then
    locked pause
    if [[ -f "$archive" && $force -eq 0 ]]; then
      echo "pause image cached: $archive" >&2
    else
      need umoci
      step "pause image ($bin)"
      begin 1
      r="$W/bundle/rootfs"
      install -m 0755 "$bin" "$r/pause"
      mkdir -p "$CACHE"
      finish 1 "$archive" --config.entrypoint /pause --config.user 65535:65535 \
        --config.label "org.opencontainers.image.title=pause" --config.label "org.opencontainers.image.revision=$key"
      done_step
      prune pause
    fi
    # Always imported (the tag is fixed), then pinned so the kubelet's image GC never removes the sandbox image.
    import pause "$ref" "$archive" 1
    if [[ -n "$sock" ]]; then
      ctr --address "$sock" -n k8s.io images label "$ref" io.cri-containerd.pinned=pinned >/dev/null
    fi
  fi
  report "$ref" "$archive"
}

if [[ $print_config -eq 1 ]]; then
  tag="$(jangar_tag)"
  version="$(project_version)"
  echo "venv=$J_VENV"
  jangar_inputs | cut -d/ -f1 | uniq | sed 's/^/source=/'
  echo "user=$J_UID:$J_GID"
  echo "account=$J_NAME:$J_UID:$J_GID:$J_HOME:$J_SHELL"
  echo "workdir=$J_HOME"
  echo "entrypoint=${J_ENTRYPOINT[*]}"
  echo "cmd=${J_CMD[*]}"
  for p in "${J_PORTS[@]}"; do echo "port=$p"; done
  jangar_env "$version" "$tag" | sed 's/^/env=/'
  jangar_labels "$version" "$tag" | sed 's/^/label=/'
  exit 0
fi

mkdir -p "$CACHE"
declare -A done_images=()
for image in "${want[@]}"; do
  [[ -z "${done_images[$image]:-}" ]] || continue
  done_images[$image]=1
  case "$image" in
    jangar) build_jangar ;;
    test-agent) build_test_agent ;;
    pause) build_pause ;;
    curl) build_curl ;;
  esac
done
