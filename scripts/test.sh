#!/usr/bin/env bash
# `make test`: formatting, lints, the emulators, every test, the rules' own
# examples. Installs what the tests need (Python venvs for the conformance test
# and for LocalStack/moto) under the project, in git-ignored folders. The
# emulators are stopped at the end if this script started them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. scripts/datasets.sh

# Debian packages the tests drive: logrotate (the file sink's rotation test),
# Chromium and ChromeDriver (the console in a real browser), faketime (the chaos
# suite's clock steps).
need=()
[ -x /usr/sbin/logrotate ] || command -v logrotate >/dev/null || need+=(logrotate)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || need+=(faketime)
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q "${need[@]}" >/dev/null ||
            { apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; }
    else
        echo "test.sh: these Debian packages are needed: ${need[*]} (apt-get install ${need[*]})" >&2
        exit 2
    fi
fi
bash scripts/pyenv.sh
bash scripts/receiver-venv.sh
bash scripts/parliament-venv.sh
cargo fmt --all -- --check
cargo clippy --all-targets --features failpoints -- -D warnings

# Were the emulators already running (a developer's session)? Then leave them up.
started=1
if curl -fs -o /dev/null "http://127.0.0.1:${LOCALSTACK_PORT:-4566}/_localstack/health" &&
    curl -fs -o /dev/null "http://127.0.0.1:${MOTO_PORT:-5000}/moto-api/"; then
    started=0
fi
cleanup() {
    if [ "$started" = 1 ]; then localstack/down.sh || true; fi
}
trap cleanup EXIT
localstack/up.sh

# The failpoints feature adds the chaos suite's kill points (inert unless
# FAILPOINTS is set); one build serves the tests and the chaos run.
cargo test --all-targets --features failpoints
# Three instances on one SQS queue with their state shared in DynamoDB, one
# killed mid-run: nothing lost, nothing twice (the long run: scripts/scaleout.sh).
NOTIFICATIONS=200 TRAILWATCH_BIN="$root/target/debug/trailwatch" bash scripts/scaleout.sh
# The chaos suite's short seeded schedule (the long run: CHAOS_MINUTES=60).
CHAOS_MINUTES="${CHAOS_MINUTES:-4}" TRAILWATCH_BIN="$root/target/debug/trailwatch" bash scripts/chaos.sh
./target/debug/trailwatch rules test
bash systemd/check.sh target/debug/trailwatch
bash iam-policies/lint.sh "$root/.venv-parliament/bin/parliament"
