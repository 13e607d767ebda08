#!/usr/bin/env bash
# Checks systemd/trailwatch.service without a running systemd:
#   1. `systemd-analyze security --offline=true` on the unit as shipped: the
#      overall exposure must be at most 1.5 (MAX_EXPOSURE to override);
#   2. `systemd-analyze verify` on a copy whose ExecStartPre=/ExecStart= point at
#      BINARY (the unit as shipped names /usr/local/bin/trailwatch, which verify
#      requires to exist): it must print nothing at all (warnings count).
# Usage: systemd/check.sh [BINARY]   (default: target/debug/trailwatch)
# Exit: 0 both pass; 1 a check failed; 2 bad usage or missing tools.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
unit="$here/trailwatch.service"
bin=${1:-"$here/../target/debug/trailwatch"}
max=${MAX_EXPOSURE:-1.5}

command -v systemd-analyze >/dev/null || { echo "check.sh: systemd-analyze not found" >&2; exit 2; }
[[ -f $unit ]] || { echo "check.sh: $unit not found" >&2; exit 2; }
[[ -x $bin && -f $bin ]] || { echo "check.sh: binary '$bin' is not an executable file" >&2; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
case $bin in *[[:space:]#]*) echo "check.sh: binary path must not contain spaces or '#'" >&2; exit 2;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/trailwatch-unit.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
status=0

# --- 1. security rating of the unit as shipped ------------------------------
# (its exit status is not the verdict: the figure below is)
security=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1) || true
exposure=$(printf '%s\n' "$security" | sed -n 's/.*[Oo]verall exposure level for [^:]*: *\([0-9][0-9.]*\).*/\1/p' | tail -n1)
if [[ -z $exposure ]]; then
    printf '%s\n' "$security" >&2
    echo "check.sh: no exposure figure in the output of systemd-analyze security" >&2
    exit 1
fi
echo "exposure: $exposure (max $max)"
# Findings: the lines marked ✗ (or "-" in an ASCII locale) with a non-zero weight.
printf '%s\n' "$security" | grep -E '^(✗|-) ' | sed 's/^\(✗\|-\) /finding: /; s/  */ /g; s/^/  /' || true
if awk -v e="$exposure" -v m="$max" 'BEGIN { exit !(e > m) }'; then
    echo "FAIL: exposure $exposure is above $max" >&2
    status=1
fi

# --- 2. verify a copy that runs the given binary ----------------------------
sed "s#/usr/local/bin/trailwatch#$bin#g" "$unit" >"$tmp/trailwatch.service"
verify=$(cd "$tmp" && systemd-analyze verify --man=no --generators=no --recursive-errors=no \
    "$tmp/trailwatch.service" 2>&1) && rc=0 || rc=$?
if [[ -n $verify || $rc -ne 0 ]]; then
    printf '%s\n' "$verify" >&2
    echo "FAIL: systemd-analyze verify (exit $rc) is not clean" >&2
    status=1
else
    echo "verify: clean (ExecStart=$bin)"
fi

exit $status
