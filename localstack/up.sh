#!/usr/bin/env bash
# Start the AWS emulators that trailwatch's tests run against, on loopback:
#
#   LocalStack (host mode, no Docker)  S3, SQS, STS   http://127.0.0.1:4566
#   moto's server                      CloudTrail     http://127.0.0.1:5000
#
# Idempotent. First installs what is missing into two virtual environments under
# localstack/ (git-ignored; a stamp file records the pins each was built from):
#
#   .venv-localstack  localstack-core[runtime]==4.9.2, dependencies resolved as of
#                     2025-10-20 (uv --exclude-newer), Python 3.11
#   .venv-moto        moto[server]==5.2.5 + boto3==1.43.123, dependencies resolved
#                     as of 2026-11-01, Python 3.11; the seed and the fault proxy's
#                     hand checks use this interpreter
#
# Then starts both servers detached (own session each), writes their pid files in
# localstack/run/, and waits until they answer. When both already run (pid alive and
# answering) it does nothing. localstack/down.sh stops them; localstack/env.sh
# points the AWS SDKs at them.
#
# Usage: localstack/up.sh [--install-only]
# Environment:
#   PYTHON311        base interpreter for the venvs (default: python3.11, needs 3.11)
#   LOCALSTACK_PORT  default 4566        MOTO_PORT  default 5000
#   UP_TIMEOUT       seconds to wait for both servers to answer (default 120)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
run="$here/run"

# ---- pins (keep in step with README.md and docker-compose.yml) ----------------
UV_PIN="uv==0.13.9"
LOCALSTACK_PIN="localstack-core[runtime]==4.9.2"
LOCALSTACK_EXCLUDE_NEWER="2025-10-20"
MOTO_PINS=("moto[server]==5.2.5" "boto3==1.43.123")
MOTO_EXCLUDE_NEWER="2026-11-01"

ls_venv="$here/.venv-localstack"
moto_venv="$here/.venv-moto"
ls_port="${LOCALSTACK_PORT:-4566}"
moto_port="${MOTO_PORT:-5000}"
timeout="${UP_TIMEOUT:-120}"

log() { echo "up.sh: $*" >&2; }
die() { echo "up.sh: error: $*" >&2; exit 1; }

install_only=0
case "${1:-}" in
    "") ;;
    --install-only) install_only=1 ;;
    -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (usage: up.sh [--install-only])" ;;
esac

mkdir -p "$run"

# uv does not read pip's configuration: hand it a package index set for pip.
if [[ -z "${UV_INDEX_URL:-}" && -n "${PIP_INDEX_URL:-}" ]]; then
    export UV_INDEX_URL="$PIP_INDEX_URL"
fi

# ---- install ----------------------------------------------------------------------
base_python() {
    local py="${PYTHON311:-}"
    if [[ -z "$py" ]]; then
        for cand in python3.11 /usr/bin/python3.11 /usr/local/bin/python3.11; do
            if command -v "$cand" >/dev/null 2>&1 &&
                "$cand" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
                py="$cand"
                break
            fi
        done
    fi
    [[ -n "$py" ]] || die "Python 3.11 not found (LocalStack 4.9.2's pinned dependencies need 3.11; set PYTHON311=/path/to/python3.11)"
    "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
        die "$py is not Python 3.11 (PYTHON311)"
    echo "$py"
}

# ensure_venv DIR IMPORT_CHECK EXCLUDE_NEWER PKG...
ensure_venv() {
    local venv="$1" check="$2" exclude="$3"
    shift 3
    local want stamp="$venv/.trailwatch-stamp"
    want="$UV_PIN exclude-newer=$exclude $*"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
        "$venv/bin/python" -c "$check" 2>/dev/null; then
        return 0
    fi
    local py t0
    py="$(base_python)"
    t0=$SECONDS
    log "installing into ${venv#"$here"/}: $*  (dependencies as of $exclude)"
    rm -f "$stamp"
    "$py" -m venv --clear "$venv"
    echo '*' >"$venv/.gitignore"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "$UV_PIN"
    "$venv/bin/uv" pip install --quiet --python "$venv/bin/python" \
        --exclude-newer "$exclude" "$@"
    "$venv/bin/python" -c "$check" || die "installed ${venv#"$here"/} but '$check' fails"
    echo "$want" >"$stamp"
    log "installed ${venv#"$here"/} in $((SECONDS - t0))s"
}

# The checks only look the packages up (importing moto and boto3 takes a second).
has() { echo "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in '$*'.split()))"; }
ensure_venv "$ls_venv" "$(has localstack.runtime.main localstack.services.s3 rolo)" \
    "$LOCALSTACK_EXCLUDE_NEWER" "$LOCALSTACK_PIN"
ensure_venv "$moto_venv" "$(has moto.server moto.cloudtrail flask boto3)" \
    "$MOTO_EXCLUDE_NEWER" "${MOTO_PINS[@]}"

[[ $install_only == 1 ]] && exit 0

# ---- processes --------------------------------------------------------------------
# A pid file holds "PID STARTTIME" (field 22 of /proc/PID/stat), so that a pid reused
# by an unrelated process after a reboot or crash is never taken for ours.
proc_start() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

# alive NAME: our process NAME (per its pid file) is running
alive() {
    local f="$run/$1.pid" pid start
    [[ -f "$f" ]] || return 1
    read -r pid start <"$f" || return 1
    [[ -n "$pid" && -n "$start" && "$(proc_start "$pid")" == "$start" ]]
}

probe_py="$moto_venv/bin/python"

localstack_ready() {
    "$probe_py" - "$ls_port" <<'EOF' 2>/dev/null
import json, sys, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/_localstack/health"
with urllib.request.urlopen(url, timeout=2) as r:
    services = json.load(r).get("services", {})
sys.exit(0 if services.get("s3") in ("available", "running") else 1)
EOF
}

moto_ready() {
    "$probe_py" - "$moto_port" <<'EOF' 2>/dev/null
import sys, urllib.request
req = urllib.request.Request(
    f"http://127.0.0.1:{sys.argv[1]}/",
    data=b"{}",
    method="POST",
    headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.DescribeTrails",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/cloudtrail/aws4_request, SignedHeaders=host, Signature=0",
    },
)
with urllib.request.urlopen(req, timeout=2) as r:
    sys.exit(0 if b"trailList" in r.read() else 1)
EOF
}

port_busy() {
    "$probe_py" -c 'import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}

start_localstack() {
    local data="$run/localstack"
    mkdir -p "$data/fs"
    # The log is kept from the previous run, once.
    [[ -f "$run/localstack.log" ]] && mv -f "$run/localstack.log" "$run/localstack.log.1"
    (
        cd "$data"
        exec env \
            GATEWAY_LISTEN="127.0.0.1:$ls_port" \
            LOCALSTACK_HOST="localhost.localstack.cloud:$ls_port" \
            SERVICES=s3,sqs,sts,sns,events \
            EAGER_SERVICE_LOADING=1 \
            PERSISTENCE=0 \
            OVERRIDE_IN_DOCKER=0 \
            FILESYSTEM_ROOT="$data/fs" \
            DNS_ADDRESS=0 \
            SKIP_SSL_CERT_DOWNLOAD=1 \
            DISABLE_EVENTS=1 \
            LOCALSTACK_CLI=0 \
            setsid "$ls_venv/bin/python" -m localstack.runtime.main
    ) </dev/null >"$run/localstack.log" 2>&1 &
    local pid=$!
    sleep 0.2
    echo "$pid $(proc_start "$pid")" >"$run/localstack.pid"
}

start_moto() {
    [[ -f "$run/moto.log" ]] && mv -f "$run/moto.log" "$run/moto.log.1"
    (
        cd "$run"
        exec env MOTO_ACCOUNT_ID=111111111111 setsid "$moto_venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port"
    ) </dev/null >"$run/moto.log" 2>&1 &
    local pid=$!
    sleep 0.2
    echo "$pid $(proc_start "$pid")" >"$run/moto.pid"
}

t0=$EPOCHREALTIME
started=()

if alive localstack; then
    :
else
    rm -f "$run/localstack.pid"
    port_busy "$ls_port" &&
        die "port 127.0.0.1:$ls_port is in use by a process up.sh did not start (stop it, or set LOCALSTACK_PORT)"
    log "starting LocalStack on 127.0.0.1:$ls_port (log: $run/localstack.log)"
    start_localstack
    started+=(localstack)
fi

if alive moto; then
    :
else
    rm -f "$run/moto.pid"
    port_busy "$moto_port" &&
        die "port 127.0.0.1:$moto_port is in use by a process up.sh did not start (stop it, or set MOTO_PORT)"
    log "starting moto_server on 127.0.0.1:$moto_port (log: $run/moto.log)"
    start_moto
    started+=(moto)
fi

ls_ok=0
moto_ok=0
deadline=$((SECONDS + timeout))
while :; do
    [[ $ls_ok == 1 ]] || { localstack_ready && ls_ok=1; } || true
    [[ $moto_ok == 1 ]] || { moto_ready && moto_ok=1; } || true
    [[ $ls_ok == 1 && $moto_ok == 1 ]] && break
    if ! alive localstack; then
        tail -n 30 "$run/localstack.log" >&2 || true
        die "LocalStack exited during startup; see $run/localstack.log"
    fi
    if ! alive moto; then
        tail -n 30 "$run/moto.log" >&2 || true
        die "moto_server exited during startup; see $run/moto.log"
    fi
    if ((SECONDS >= deadline)); then
        [[ $ls_ok == 1 ]] || log "LocalStack did not report s3 available on 127.0.0.1:$ls_port; see $run/localstack.log"
        [[ $moto_ok == 1 ]] || log "moto_server did not answer DescribeTrails on 127.0.0.1:$moto_port; see $run/moto.log"
        die "emulators not ready after ${timeout}s (they are left running for inspection; localstack/down.sh stops them)"
    fi
    sleep 0.25
done

if ((${#started[@]} == 0)); then
    log "already running (LocalStack pid $(cut -d' ' -f1 "$run/localstack.pid"), moto pid $(cut -d' ' -f1 "$run/moto.pid"))"
else
    elapsed="$("$probe_py" -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$t0" "$EPOCHREALTIME")"
    log "ready in ${elapsed}s: LocalStack http://127.0.0.1:$ls_port, moto http://127.0.0.1:$moto_port (started: ${started[*]})"
fi
