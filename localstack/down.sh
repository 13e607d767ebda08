#!/usr/bin/env bash
# Stop the emulators that localstack/up.sh started, and nothing else.
#
# For each pid file in localstack/run/ (localstack.pid, moto.pid) whose process is
# still the one up.sh started (the pid file also records the process start time, so a
# reused pid is never touched), it sends SIGTERM to that process, to every process
# in its process group (up.sh starts each server in a session of its own) and to
# all its descendants; waits up to DOWN_TIMEOUT seconds (default 20), then sends
# SIGKILL to whatever is left. Stale pid files are removed. Idempotent: with
# nothing running it says so and exits 0.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
run="$here/run"
timeout="${DOWN_TIMEOUT:-20}"

log() { echo "down.sh: $*" >&2; }

proc_start() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

# The pids of ROOT's process group and of all its descendants (ROOT included).
family() {
    local root="$1"
    ps -e -o pid=,ppid=,pgid= | awk -v root="$root" '
        { pid[NR] = $1; ppid[$1] = $2; pgid[$1] = $3 }
        END {
            for (i = 1; i <= NR; i++) {
                p = pid[i]
                if (pgid[p] == root) { print p; continue }
                for (q = p; q != "" && q > 1; q = ppid[q])
                    if (q == root) { print p; break }
            }
        }'
}

stopped=0
for name in localstack moto; do
    f="$run/$name.pid"
    [[ -f "$f" ]] || continue
    read -r pid start <"$f" || true
    if [[ -z "${pid:-}" || -z "${start:-}" || "$(proc_start "$pid")" != "$start" ]]; then
        log "$name: not running (removing stale $f)"
        rm -f "$f"
        continue
    fi
    mapfile -t pids < <(family "$pid")
    log "$name: stopping pid $pid (${#pids[@]} process(es): ${pids[*]})"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    deadline=$((SECONDS + timeout))
    while :; do
        left=()
        for p in "${pids[@]}"; do
            [[ -d /proc/$p ]] && [[ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]] && left+=("$p")
        done
        ((${#left[@]} == 0)) && break
        if ((SECONDS >= deadline)); then
            log "$name: still running after ${timeout}s, sending SIGKILL to ${left[*]}"
            kill -KILL "${left[@]}" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "$f"
    stopped=$((stopped + 1))
done

if ((stopped == 0)); then
    log "nothing to stop"
else
    log "stopped $stopped emulator(s)"
fi
