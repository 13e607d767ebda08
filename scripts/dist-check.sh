#!/usr/bin/env bash
# Checks a trailwatch Debian package on this machine (as root): it installs
# with `dpkg -i`; `systemd-analyze verify` accepts the installed unit; the
# installed binary runs `--version` and links only libc, libm and libgcc_s;
# the config is a conffile; `dpkg --purge` removes every file it installed.
# Usage: scripts/dist-check.sh PACKAGE.deb
set -euo pipefail
deb=${1:?usage: dist-check.sh PACKAGE.deb}
fail() { echo "dist-check: $*" >&2; exit 1; }

if dpkg -s trailwatch >/dev/null 2>&1; then
    fail "trailwatch is installed already: remove it first (dpkg --purge trailwatch)"
fi
dpkg -i "$deb" >/dev/null
trap 'dpkg --purge trailwatch >/dev/null 2>&1 || true' EXIT

version=$(/usr/bin/trailwatch --version)
echo "installed: $version"
[[ $version == trailwatch\ *\(commit\ *,\ rule\ pack\ *\) ]] || fail "unexpected --version: $version"

out=$(systemd-analyze verify /lib/systemd/system/trailwatch.service 2>&1) || fail "verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"
echo "systemd-analyze verify: clean"

libs=$(ldd /usr/bin/trailwatch | awk '{print $1}' | sed 's/\.so.*//' | sort -u | tr '\n' ' ')
for lib in $libs; do
    case $lib in
        libc | libm | libgcc_s | linux-vdso | /lib64/ld-linux-x86-64 | /lib/ld-linux-aarch64) ;;
        *) fail "links $lib (only libc, libm and libgcc_s are expected): $libs" ;;
    esac
done
echo "links: $libs"

dpkg-query -W -f='${Conffiles}\n' trailwatch | grep -q '/etc/trailwatch/trailwatch.toml' ||
    fail "the config is not a conffile"
files=$(dpkg -L trailwatch | while read -r f; do [ -f "$f" ] && echo "$f"; done)

dpkg --purge trailwatch >/dev/null
trap - EXIT
left=""
for f in $files; do [ -e "$f" ] && left="$left $f"; done
[ -z "$left" ] || fail "left after purge:$left"
echo "removed cleanly: $(echo "$files" | wc -l) files"
