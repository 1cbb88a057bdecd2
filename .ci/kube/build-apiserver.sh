#!/usr/bin/env bash
# Build a real kube-apiserver from Debian's own `kubernetes` source package (bookworm: 1.20.2)
# and cache it, keyed by the source package version. Also installs etcd-server, which the
# test helper (tests/support/kube_cluster.py) runs beside it.
#
# Usage:  bash .ci/kube/build-apiserver.sh        # prints the binary's path as the LAST stdout line
#
# Environment:
#   CANARY_KUBE_CACHE       cache/work dir (default /var/cache/canary-tui/kube), outside the checkout
#   CANARY_KUBE_KEEP_BUILD  1 = keep the source/build tree after a successful build (default: removed)
#
# Idempotent: a second run finds $CANARY_KUBE_CACHE/kube-apiserver-<version> and returns in seconds.
# The first run takes about 6-8 minutes on 2 cores. Build noise goes to $CACHE/build-<version>.log;
# its tail is printed on failure. Needs root (apt-get) unless everything is already in place.
set -euo pipefail

CACHE="${CANARY_KUBE_CACHE:-/var/cache/canary-tui/kube}"
SRC_LIST=/etc/apt/sources.list.d/canary-tui-deb-src.sources
PKGS=(golang-go etcd-server dpkg-dev golang-github-modern-go-reflect2-dev rsync make jq
      bash-completion gcc libc6-dev xz-utils ca-certificates)
REFLECT2_DEB=/usr/share/gocode/src/github.com/modern-go/reflect2

log() { printf '[build-apiserver] %s\n' "$*" >&2; }
LOG=""
die() {
  log "ERROR: $*"
  if [[ -n "$LOG" && -s "$LOG" ]]; then log "last lines of $LOG:"; tail -n 60 "$LOG" >&2 || true; fi
  exit 1
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else die "need root for: $*"; fi
}

mkdir -p "$CACHE"
# Serialise concurrent callers (e.g. parallel test sessions) on one cache.
exec 9>"$CACHE/.lock"
flock 9

src_version() {
  apt-cache showsrc kubernetes 2>/dev/null | awk '/^Version:/ {print $2}' | sort -V | tail -n1 || true
}

# --- 1. deb-src entry beside the existing Debian source list ------------------------------------
ensure_deb_src() {
  if [[ -f "$SRC_LIST" ]]; then return 1; fi
  # Already enabled by someone else (deb822 "Types: deb deb-src" or a one-line deb-src)?
  if grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
     && [[ -n "$(src_version)" ]]; then
    return 1
  fi
  local tmp
  tmp=$(mktemp)
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    # deb822: copy each stanza (same mirror, same suites), Types: deb -> deb-src.
    sed -E 's/^Types:.*$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$tmp"
  elif grep -qsE '^deb ' /etc/apt/sources.list; then
    grep -E '^deb ' /etc/apt/sources.list | grep -E 'debian' | sed -E 's/^deb /deb-src /' >"$tmp"
    SRC_LIST=/etc/apt/sources.list.d/canary-tui-deb-src.list
  else
    rm -f "$tmp"; die "no Debian apt source found to derive a deb-src entry from"
  fi
  log "adding deb-src entry: $SRC_LIST"
  as_root install -m 0644 "$tmp" "$SRC_LIST"
  rm -f "$tmp"
  return 0
}

APT_UPDATED=0
apt_update() {
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    as_root apt-get update -qq >&2
    APT_UPDATED=1
  fi
}

if ensure_deb_src; then apt_update; fi

# --- 2. build/run dependencies ------------------------------------------------------------------
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if ((${#missing[@]})); then
  apt_update
  log "apt-get install ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
fi

# --- 3. which version? --------------------------------------------------------------------------
VERSION=$(src_version)
if [[ -z "$VERSION" ]]; then apt_update; VERSION=$(src_version); fi
[[ -n "$VERSION" ]] || die "apt-cache showsrc kubernetes found nothing (deb-src missing?)"

BIN="$CACHE/kube-apiserver-$VERSION"
if [[ -x "$BIN" ]] && "$BIN" --version >/dev/null 2>&1; then
  log "cached: $BIN ($("$BIN" --version))"
  echo "$BIN"
  exit 0
fi

# --- 4. fetch + build ---------------------------------------------------------------------------
WORK="$CACHE/build-$VERSION"
LOG="$CACHE/build-$VERSION.log"
: >"$LOG"
trap 'die "build step failed (line $LINENO)"' ERR

log "fetching source of kubernetes $VERSION into $WORK"
rm -rf "$WORK"
mkdir -p "$WORK"
(cd "$WORK" && apt-get source -qq "kubernetes=$VERSION") >>"$LOG" 2>&1
SRC=$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
[[ -n "$SRC" && -d "$SRC/vendor" ]] || die "unexpected source layout in $WORK"

# Vendored modern-go/reflect2 1.0.1 built with Go >= 1.18 crashes the server (unsafe map
# iteration) on the first custom-resource create; Debian's 1.0.2 is the fixed release.
[[ -d "$REFLECT2_DEB" ]] || die "$REFLECT2_DEB missing (golang-github-modern-go-reflect2-dev)"
log "replacing vendor/github.com/modern-go/reflect2 with Debian's $(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)"
rsync -a --delete --exclude=go.mod "$REFLECT2_DEB/" "$SRC/vendor/github.com/modern-go/reflect2/"

# The tree's own build: `make all WHAT=...` first runs `generated_files` (deepcopy, defaulters,
# conversions, OpenAPI definitions in pkg/generated/openapi), then hack/make-rules/build.sh,
# which sets GO111MODULE=off and a private GOPATH under _output/ (GOPATH mode, vendor/ only,
# no network). This is what debian/rules does for kubectl.
log "building cmd/kube-apiserver (about 6-8 min on 2 cores; log: $LOG)"
start=$(date +%s)
(
  cd "$SRC"
  unset GOFLAGS GOPATH GOBIN GOROOT GO111MODULE
  export HOME="$WORK/home" CGO_ENABLED=0 GOPROXY=off GOTOOLCHAIN=local
  mkdir -p "$HOME"
  nice -n 10 make all WHAT=cmd/kube-apiserver
) >>"$LOG" 2>&1
elapsed=$(($(date +%s) - start))
log "build took ${elapsed}s"
echo "build seconds: $elapsed" >>"$LOG"

OUT="$SRC/_output/bin/kube-apiserver"
[[ -x "$OUT" ]] || OUT=$(find "$SRC/_output" -type f -name kube-apiserver -perm -u+x | head -n1)
[[ -n "$OUT" && -x "$OUT" ]] || die "kube-apiserver binary not found under $SRC/_output"
"$OUT" --version >>"$LOG" 2>&1

install -m 0755 "$OUT" "$BIN.tmp.$$"
mv -f "$BIN.tmp.$$" "$BIN"
trap - ERR

if [[ "${CANARY_KUBE_KEEP_BUILD:-0}" != 1 ]]; then
  rm -rf "$WORK"
fi
log "built: $BIN ($("$BIN" --version))"
echo "$BIN"
