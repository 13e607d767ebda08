#!/usr/bin/env bash
# `make demo`: start the emulators (LocalStack for S3, moto for CloudTrail),
# seed them with a world built from ../shared/datasets (trails in two regions,
# an organisation trail, an inactive trail, digests), run `trailwatch once`
# with a file sink, and print the alerts as a table. The emulators keep
# running afterwards (localstack/down.sh stops them).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. scripts/datasets.sh

cargo build --quiet
localstack/up.sh
localstack/seed.sh

demo="$root/demo"
rm -rf "$demo/crawl" && mkdir -p "$demo/crawl"
cat >"$demo/crawl/trailwatch.toml" <<TOML
[state]
path = "state.db"
[aws]
region = "us-east-1"
endpoint_url = "http://127.0.0.1:4566"
cloudtrail_endpoint_url = "http://127.0.0.1:5000"
[discovery]
regions = ["us-east-1"]
[log]
level = "warn"
[[sinks]]
type = "file"
path = "alerts.jsonl"
TOML

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
./target/debug/trailwatch trails --config "$demo/crawl/trailwatch.toml"
echo
./target/debug/trailwatch once --config "$demo/crawl/trailwatch.toml"
echo
python3 - "$demo/crawl/alerts.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "informational": 4}
rows.sort(key=lambda a: (order.get(a["rule"]["severity"], 9), a["event"].get("time") or ""))
print(f"{'LEVEL':<9} {'RULE':<44} {'EVENT':<32} {'ACCOUNT':<12} {'REGION':<15} PRINCIPAL")
for a in rows:
    e = a["event"]
    if order.get(a["rule"]["severity"], 9) > 2:
        continue
    print(f"{a['rule']['severity']:<9} {a['rule']['id'][:44]:<44} {(e.get('name') or '-')[:32]:<32} "
          f"{e.get('account_id') or '-':<12} {e.get('region') or '-':<15} {(e.get('principal') or '-')[:60]}")
low = sum(1 for a in rows if order.get(a["rule"]["severity"], 9) > 2)
print(f"\n{len(rows)} alerts in {sys.argv[1]} ({low} low/informational not shown)")
PY
