#!/usr/bin/env bash
# Chaos suite (issue 17): `trailwatch run` under a seeded schedule of faults
# (kill -9, kill points inside a commit and between an answer and its commit,
# SIGTERM, SIGHUP storms with a broken config and rule, the receiver down / 429 /
# 500 / slow / closing, S3 and CloudTrail failing through fault proxies) while a
# world keeps writing objects; a checker compares what each sink received with
# what `trailwatch scan` finds in the same objects. Prints, last:
# `faults N, runs N, alerts expected N, delivered N, lost N, duplicated N`; exit 0
# only with 0 lost and 0 duplicated (and no secret in any log or file).
#
#   scripts/chaos.sh                        # 4 minutes (what make test runs)
#   CHAOS_MINUTES=60 scripts/chaos.sh       # the long run
#   SEED=7 CHAOS_KEEP=1 scripts/chaos.sh    # another schedule; keep the logs
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/emulator-prelude.sh"
bin="${TRAILWATCH_BIN:-$root/target/debug/trailwatch}"
if [[ -z "${TRAILWATCH_BIN:-}" ]]; then
    # The kill points exist only in a failpoints build (never a release one).
    cargo build --quiet --features failpoints --bin trailwatch
fi
exec localstack/.venv-moto/bin/python scripts/chaos.py --trailwatch "$bin" \
    --receiver-python "$root/.venv-receiver/bin/python" \
    --minutes "${CHAOS_MINUTES:-4}" --seed "${SEED:-1}"
