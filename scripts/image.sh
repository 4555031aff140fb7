#!/usr/bin/env bash
# Builds the kmesh-daemon container image on a machine without a Docker engine (issue 15):
#   - a minimal Debian bookworm root (debootstrap --variant=minbase with libbpf1, iproute2, ca-certificates; apt,
#     dpkg's perl, login and e2fsprogs purged; docs, locales, man pages, apt lists and the package cache removed,
#     each package's copyright kept), cached in
#     .cache/image/ by its recipe so a rebuild only redoes the app;
#   - node 20 (this machine's, stripped: Debian bookworm's nodejs is 18);
#   - the daemon with its production dependencies (pnpm deploy --prod; type declarations, source maps and
#     TypeScript sources dropped), the kmesh-cni binary in its bin/ for the node-mode installer;
#   - OCI annotations (title, version, revision, source, licences, created);
# then `buildah bud --isolation chroot` of a FROM-scratch Containerfile (no RUN step) and `buildah push` to
# an OCI archive. Prints the image size (compressed, as a registry stores it, and unpacked) and the build time.
#
# Usage: bash scripts/image.sh [--out DIR] [--tag NAME]   (run as root; installs debootstrap and buildah if missing)
# Output: DIR/kmesh-daemon-<version>.oci.tar (default DIR .cache/image) and the image in local container storage.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
started=$(date +%s%N)

OUT=.cache/image
VERSION=$(node -p "require('./apps/kmesh-daemon/package.json').version")
TAG="localhost/kmesh-ts/kmesh-daemon:$VERSION"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ms_since_start() { echo $(( ($(date +%s%N) - started) / 1000000 )); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
step() { printf '== image: %s (at %s s)\n' "$1" "$(ratio "$(ms_since_start)" 1000)"; }

# --- tools --------------------------------------------------------------------------------------------------------
missing=()
for tool in debootstrap buildah; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "image.sh: needs ${missing[*]} (apt-get install as root)" >&2; exit 1; fi
  step "apt-get install ${missing[*]}"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
NODE_BIN=$(readlink -f "$(command -v node)")
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
  { echo "image.sh: node >= 20.19 is needed for the image (found $(node --version))" >&2; exit 1; }

# --- the base root file system (cached by its recipe: this section) --------------------------------------------
SUITE=bookworm
MIRROR=${KMESH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=libbpf1,iproute2,ca-certificates
# Keyed by this section's own text: any change to the suite, the packages or the slimming builds a new base.
RECIPE=$(sed -n '/^# --- the base root file system/,/^# --- the build context/p' "$0" | sha256sum | cut -c1-12)
BASE="$OUT/base-$SUITE-$RECIPE.tar"
if [ ! -s "$BASE" ]; then
  step "debootstrap $SUITE ($PACKAGES) from $MIRROR"
  rootfs=$(mktemp -d /var/tmp/kmesh-image-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 ||
    { tail -20 "$OUT/debootstrap.log" >&2; echo "image.sh: debootstrap failed (log: $OUT/debootstrap.log)" >&2; exit 1; }
  # A runtime image needs no package manager, perl, login or file-system tools: purged (each package's shared
  # libraries that a remaining binary links against stay; arpd, the one user of libdb, goes with it).
  chroot "$rootfs" dpkg --purge --force-remove-essential --force-depends apt libapt-pkg6.0 gpgv e2fsprogs libext2fs2 \
    libss2 logsave perl-base debconf login passwd libsemanage2 libsemanage-common libsepol2 libgnutls30 libp11-kit0 \
    libtasn1-6 libnettle8 libhogweed6 libunistring2 libidn2-0 libdb5.3 >>"$OUT/debootstrap.log" 2>&1
  rm -f "$rootfs"/usr/sbin/arpd
  # A runtime image: no package cache, package lists, man pages, info, locales or docs (copyrights stay).
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/{man,info,locale,lintian,linda}
  find "$rootfs"/usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs"/usr/share/doc -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/var/tmp/*
  tar --numeric-owner -C "$rootfs" -cf "$BASE.part" . && mv "$BASE.part" "$BASE"
  rm -rf "$rootfs"; trap - EXIT
else
  step "base root file system from the cache ($(basename "$BASE"))"
fi

# --- the build context: base, node, the app ------------------------------------------------------------------------
ctx=$(mktemp -d /var/tmp/kmesh-image-ctx.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
step "build the workspace and deploy the daemon with its production dependencies"
pnpm exec turbo run build --filter=@kmesh-ts/kmesh-daemon... --output-logs=errors-only >/dev/null
pnpm --filter @kmesh-ts/kmesh-daemon --prod deploy "$ctx/app" >"$OUT/deploy.log" 2>&1 ||
  { tail -20 "$OUT/deploy.log" >&2; echo "image.sh: pnpm deploy failed" >&2; exit 1; }
# Only what runs: no type declarations, source maps, TypeScript sources or markdown in the image.
find "$ctx/app" -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.ts' \
  -o -name '*.md' -o -name '*.tsbuildinfo' \) -delete
rm -f "$ctx/app/pnpm-lock.yaml" "$ctx/app/pnpm-workspace.yaml"
test -x "$ctx/app/bin/kmesh-cni" || { echo "image.sh: the kmesh-cni binary is missing from the daemon's bin/" >&2; exit 1; }
if command -v strip >/dev/null; then strip -o "$ctx/node" "$NODE_BIN"; elif command -v llvm-strip >/dev/null; then
  llvm-strip -o "$ctx/node" "$NODE_BIN"; else cp "$NODE_BIN" "$ctx/node"; fi
cp "$BASE" "$ctx/base.tar"

REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cat >"$ctx/Containerfile" <<EOF
FROM scratch
ADD base.tar /
COPY node /usr/local/bin/node
COPY app /opt/kmesh-ts
ENV NODE_ENV=production PATH=/opt/kmesh-ts/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /opt/kmesh-ts
LABEL org.opencontainers.image.title="kmesh-ts daemon" \\
      org.opencontainers.image.description="kernel-native service-mesh data plane (node agent)" \\
      org.opencontainers.image.version="$VERSION" \\
      org.opencontainers.image.revision="$REVISION" \\
      org.opencontainers.image.source="https://github.com/kmesh-ts/kmesh-ts" \\
      org.opencontainers.image.licenses="Apache-2.0 AND (GPL-2.0-only OR BSD-2-Clause)" \\
      org.opencontainers.image.created="$CREATED"
ENTRYPOINT ["/usr/local/bin/node", "/opt/kmesh-ts/bin/kmesh-daemon.js"]
EOF

step "buildah bud $TAG"
buildah bud --quiet --isolation chroot --layers=false --format oci -f "$ctx/Containerfile" -t "$TAG" "$ctx" >/dev/null
ARCHIVE="$OUT/kmesh-daemon-$VERSION.oci.tar"
rm -f "$ARCHIVE"
buildah push --quiet "$TAG" "oci-archive:$ARCHIVE:$TAG" >/dev/null

# Unpacked: the base's files plus node and the app (what podman and docker report as the image's size).
unpacked=$(( $(stat -c %s "$ctx/base.tar") + $(du -sb "$ctx/node" "$ctx/app" | awk '{ s += $1 } END { print s }') ))
compressed=$(stat -c %s "$ARCHIVE")
printf 'image %s\n  archive %s\n  compressed %s MB (the OCI archive: what a registry stores and a node pulls)\n' \
  "$TAG" "${ARCHIVE#"$ROOT"/}" "$(ratio "$compressed" 1000000)"
printf '  unpacked %s MB\n  build time %s s\n' "$(ratio "$unpacked" 1000000)" "$(ratio "$(ms_since_start)" 1000)"
