#!/usr/bin/env bash
# `make bench`: everything issue 7's report needs, set up from a fresh clone.
#
#  1. a release build; pigz (Debian's package, when missing and we are root);
#     the rsigma CLI 0.23.0 into bench/tools (cargo install --locked); the
#     conformance venv (pySigma, its DuckDB backend, duckdb) by scripts/pyenv.sh;
#  2. scripts/bench.py: corpus, (a)-(d) side by side, the match checks, the
#     memory checks, the ratio table (bench/report.md);
#     scripts/burst_bench.py: the sparse, dense and burst profiles, CPU per
#     event as one window fills (bench/burst.md, appended to the report);
#  3. the crawler's throughput against LocalStack (scripts/crawl_bench.py,
#     with the activity index on and off), latency from upload to webhook,
#     console and `trailwatch alerts` (scripts/latency.py, then again while
#     1 M expired rows are purged), the lookup store at 10 M alerts and 50 M
#     activity rows (benches/store.rs; about 30 GB under bench/, built once),
#     and `scan s3://` against `aws s3 sync` + a local scan
#     (scripts/s3_scan_bench.py), appended to the report.
#
# Environment: BENCH_SIZE (1GB), BENCH_BIG (10GB; 0 skips), RUNS (3),
# CRAWL_OBJECTS (2000), CRAWL_CONCURRENCY (1,4,16,64), ACTIVITY_RUNS (3),
# STORE_ALERTS (10000000), STORE_ACTIVITY (50000000), TRAILWATCH_DATASETS.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mkdir -p bench

cargo build --release --quiet
if ! command -v pigz >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -q pigz >/dev/null
    else
        echo "bench.sh: pigz is needed (apt-get install pigz)" >&2
        exit 2
    fi
fi
if [ ! -x bench/tools/bin/rsigma ] || ! bench/tools/bin/rsigma --version | grep -q '0\.23\.0'; then
    echo "bench.sh: installing rsigma 0.23.0 into bench/tools (several minutes)" >&2
    cargo install --quiet --root bench/tools rsigma --version =0.23.0 --locked
fi
bash scripts/pyenv.sh

status=0
python3 scripts/bench.py || status=$?
# Bursty traffic: the three corpus profiles and CPU per event as a window fills.
python3 scripts/burst_bench.py || status=$?
cat bench/burst.md >>bench/report.md

localstack/up.sh
{
    echo
    echo "## Crawler throughput: \`once\` against LocalStack"
    echo
    echo '```'
    localstack/.venv-moto/bin/python scripts/crawl_bench.py \
        --objects "${CRAWL_OBJECTS:-2000}" --concurrency "${CRAWL_CONCURRENCY:-1,4,16,64}" \
        --activity-runs "${ACTIVITY_RUNS:-3}"
    echo '```'
} | tee -a bench/report.md
# From an object landing to its alert at a webhook, on the console and in
# `trailwatch alerts`; then the same while the daemon purges 1 M expired rows.
bash scripts/receiver-venv.sh
{
    echo
    echo "## Latency, and a purge of 1 M rows while crawling"
    echo
    echo '```'
    localstack/.venv-moto/bin/python scripts/latency.py --objects 60 --spread 90 \
        --binary target/release/trailwatch
    localstack/.venv-moto/bin/python scripts/latency.py --objects 60 --spread 90 \
        --binary target/release/trailwatch --prefill-expired 1000000
    echo '```'
} | tee -a bench/report.md || status=$?
# The lookup store at 10 M alerts and 50 M activity rows (built once, reused).
{
    echo
    echo "## The lookup store at scale: \`cargo bench --bench store\`"
    echo
    cargo bench --bench store -- --alerts "${STORE_ALERTS:-10000000}" \
        --activity "${STORE_ACTIVITY:-50000000}" --path bench/store.db
} | tee -a bench/report.md || status=$?
# Scale-out: 1, 2 and 3 instances on one SQS queue with shared state in
# DynamoDB, requests per 1,000 objects against polling with 10/100/1,000 cursors;
# then the long scale-out run (2,000 notifications, one instance killed).
{
    echo
    echo "## Scale-out (SQS, DynamoDB)"
    echo
    localstack/.venv-moto/bin/python scripts/scaleout_bench.py \
        --trailwatch target/release/trailwatch --receiver-python .venv-receiver/bin/python \
        --objects "${SCALEOUT_OBJECTS:-600}"
    echo
    TRAILWATCH_BIN="$root/target/release/trailwatch" bash scripts/scaleout.sh 2>/dev/null | tail -1
} | tee -a bench/report.md || status=$?
# Hunting straight from S3 against `aws s3 sync` then a local scan.
localstack/.venv-moto/bin/python scripts/s3_scan_bench.py --objects "${CRAWL_OBJECTS:-2000}" ||
    status=$?
cat bench/s3_scan.md >>bench/report.md
exit "$status"
