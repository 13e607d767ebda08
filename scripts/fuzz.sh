#!/usr/bin/env bash
# Time-boxed fuzzing of the decoder: `make fuzz` (FUZZ_SECONDS, default 120).
# Installs cargo-fuzz if missing. This toolchain is stable, so RUSTC_BOOTSTRAP
# lets cargo-fuzz pass the sanitizer flags it needs.
# A crash lands in fuzz/artifacts/decode/: fix it, then copy the input into
# fuzz/regressions/decode/ so that `make test` replays it for good.
set -euo pipefail
seconds="${1:-120}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

# Seed corpus: the regression inputs and a few real detonation files.
corpus="fuzz/corpus/decode"
mkdir -p "$corpus"
for f in fuzz/regressions/decode/*; do
    [ -f "$f" ] && [ "$(basename "$f")" != README.md ] && cp "$f" "$corpus/"
done
datasets="${TRAILWATCH_DATASETS:-${DATASETS:-../shared/datasets}}"
if [ -d "$datasets/stratus-detonations" ]; then
    for f in "$datasets"/stratus-detonations/aws.defense-evasion.*.json; do
        cp "$f" "$corpus/$(basename "$f")"
        gzip -c "$f" >"$corpus/$(basename "$f").gz"
    done
fi

RUSTC_BOOTSTRAP=1 cargo fuzz run decode "$corpus" -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048
