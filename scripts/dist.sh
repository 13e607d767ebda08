#!/usr/bin/env bash
# `make dist`: the release binary and a Debian package, with SHA-256 sums,
# under target/dist/; then, as root on a Debian machine, the package checked
# by scripts/dist-check.sh (install, unit verified, --version, removal).
#
# cargo-deb is installed at a pinned version under dist/tools (git-ignored).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
CARGO_DEB_VERSION=3.8.0

if ! dist/tools/bin/cargo-deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
    echo "dist.sh: installing cargo-deb $CARGO_DEB_VERSION into dist/tools (a few minutes)" >&2
    cargo install --locked --quiet --root dist/tools cargo-deb --version "=$CARGO_DEB_VERSION"
fi
cargo build --release --locked
mkdir -p target/dist
rm -f target/dist/*.deb
sed 's#/usr/local/bin/trailwatch#/usr/bin/trailwatch#g' systemd/trailwatch.service \
    >target/dist/trailwatch.service
PATH="$root/dist/tools/bin:$PATH" cargo deb --no-build --output target/dist/
cp target/release/trailwatch target/dist/trailwatch
(cd target/dist && sha256sum trailwatch ./*.deb | sed 's# \./# #' >SHA256SUMS && cat SHA256SUMS)

if [ "$(id -u)" = 0 ] && command -v dpkg >/dev/null; then
    bash scripts/dist-check.sh target/dist/*.deb
else
    echo "dist.sh: not root (or no dpkg): the package was not installed to check it" >&2
fi
