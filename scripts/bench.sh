#!/usr/bin/env bash
# Throughput and peak memory of `trailwatch scan` over a generated corpus:
# `make bench` (BENCH_TARGET decompressed bytes, default 500MB).
#
# The corpus is laid out as CloudTrail writes it, from ../shared/datasets records
# with fresh event ids (scripts/sample_tree.py, seed 1), under bench/ (git-ignored).
# Rules: the built-in pack plus the 57 SigmaHQ CloudTrail rules. Reported: records/s,
# wall and CPU time and peak RSS of scan with all cores and with one thread, beside
# `gzip -dc` of the same objects (the decompression floor), each the median of RUNS.
set -euo pipefail
target="${1:-500MB}"
runs="${RUNS:-3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
datasets="${TRAILWATCH_DATASETS:-${DATASETS:-../shared/datasets}}"
corpus="bench/corpus-$target"

cargo build --release --quiet
bin="$root/target/release/trailwatch"
if [ ! -d "$corpus/AWSLogs" ]; then
    mkdir -p bench
    python3 scripts/sample_tree.py --datasets "$datasets" --out "$corpus" --force \
        --target-bytes "$target" --date 2026-11-21 --seed 1
fi
mapfile -t objects < <(find "$corpus" -name '*.json.gz' -path '*/CloudTrail/*' | sort)
compressed=$(cat "${objects[@]}" | wc -c)
decompressed=$(for f in "${objects[@]}"; do gzip -dc "$f"; done | wc -c)
echo "corpus: ${#objects[@]} objects, $compressed bytes gzipped, $decompressed bytes decompressed"

# Runs a command RUNS times; prints the median wall, CPU and peak RSS.
measure() {
    local label="$1"; shift
    for _ in $(seq "$runs"); do
        /usr/bin/time -o /tmp/bench-time -f '%e %U %S %M' "$@" >/dev/null 2>/tmp/bench-stderr
        cat /tmp/bench-time
    done | sort -n | awk -v label="$label" -v runs="$runs" '
        { wall[NR]=$1; cpu[NR]=$2+$3; rss[NR]=$4 }
        END { m=int((runs+1)/2); printf "%-28s wall %6.2fs  cpu %6.2fs  peak RSS %7.1f MB\n", label, wall[m], cpu[m], rss[m]/1024 }'
}

gunzip_all() { for f in "$@"; do gzip -dc "$f"; done; }
export -f gunzip_all

measure "gzip -dc (floor, 1 core)" bash -c 'gunzip_all "$@"' _ "${objects[@]}"
measure "scan (all cores)" "$bin" scan --format jsonl --rules "$datasets/sigma-cloudtrail" "$corpus"
grep -o 'scanned.*' /tmp/bench-stderr
measure "scan (1 thread)" "$bin" scan --format jsonl --threads 1 --rules "$datasets/sigma-cloudtrail" "$corpus"
grep -o 'scanned.*' /tmp/bench-stderr
