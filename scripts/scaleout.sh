#!/usr/bin/env bash
# Scale-out check (issue 16): INSTANCES `trailwatch run` on one SQS queue with their
# shared state in DynamoDB (moto), one killed with SIGKILL mid-run and restarted, over
# NOTIFICATIONS notifications in every shape; a webhook receiver counts what arrives.
# Prints, last: `instances N, notifications N, alerts N, lost N, duplicated N`; exit 0
# only with 0 lost and 0 duplicated.
#
#   scripts/scaleout.sh                     # 3 instances, 2,000 notifications
#   NOTIFICATIONS=200 scripts/scaleout.sh   # what make test runs
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/emulator-prelude.sh"
bin="${TRAILWATCH_BIN:-$root/target/debug/trailwatch}"
[[ -x "$bin" ]] || cargo build --quiet --bin trailwatch
exec localstack/.venv-moto/bin/python scripts/scaleout.py --trailwatch "$bin" \
    --receiver-python "$root/.venv-receiver/bin/python" \
    --instances "${INSTANCES:-3}" --notifications "${NOTIFICATIONS:-2000}" \
    --seed "${SEED:-1}"
