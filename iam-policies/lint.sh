#!/usr/bin/env bash
# Lints the policy documents in this folder:
#   - each *.json parses as JSON;
#   - with the <PLACEHOLDERS> replaced by realistic values (none may be left),
#     `parliament` reports no finding on each.
# parliament audits identity policies only: a trust policy has Principal and no
# Resource (IAM forbids Resource there), so for assume-role-trust.json the
# statement is checked with the role's ARN as its Resource (what IAM evaluates
# it against); its action and condition keys are what parliament can check.
# Usage: iam-policies/lint.sh [PARLIAMENT]   (default: parliament on PATH)
#   e.g. python3 -m venv /tmp/p && /tmp/p/bin/pip install parliament
#        iam-policies/lint.sh /tmp/p/bin/parliament
# PARLIAMENT_ARGS (e.g. --include-community-auditors) is passed on.
# Exit: 0 clean; 1 a finding or an invalid document; 2 missing tools.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
parliament=${1:-parliament}
command -v "$parliament" >/dev/null || { echo "lint.sh: '$parliament' not found (pip install parliament)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "lint.sh: python3 not found" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/trailwatch-iam.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
status=0

for f in "$here"/*.json; do
    name=$(basename "$f")
    python3 - "$f" "$tmp/$name" <<'PY' || { status=1; continue; }
import json, re, sys
src, dst = sys.argv[1], sys.argv[2]
text = open(src).read()
try:
    json.loads(text)
except ValueError as e:
    sys.exit(f"{src}: not valid JSON: {e}")
values = {
    "ACCOUNT_ID": "111122223333",
    "ROLE_NAME": "trailwatch",
    "CALLER_ACCOUNT_ID": "444455556666",
    "MANAGEMENT_ACCOUNT_ID": "111111111111",
    "CALLER_ROLE_NAME": "trailwatch-host",
    "EXTERNAL_ID": "tw-7f3a9c2e51d84b06",
    "TRAIL_BUCKET": "acme-cloudtrail-logs",
    "PREFIX": "org",
    "REGION": "eu-west-1",
    "QUEUE_NAME": "trailwatch-notifications",
    "TABLE_PREFIX": "trailwatch",
    "KMS_KEY_ARN": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}
text = re.sub(r"<([A-Z_]+)>", lambda m: values.get(m.group(1), m.group(0)), text)
left = sorted(set(re.findall(r"<[A-Z_]+>", text)))
if left:
    sys.exit(f"{src}: no test value for {', '.join(left)}")
policy = json.loads(text)
statements = policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
for s in statements:
    if "Principal" in s and "Resource" not in s and "NotResource" not in s:
        s["Resource"] = "arn:aws:iam::%s:role/%s" % (values["ACCOUNT_ID"], values["ROLE_NAME"])
json.dump(policy, open(dst, "w"), indent=2)
PY
    # shellcheck disable=SC2086  # PARLIAMENT_ARGS is a list of flags
    out=$(cd "$tmp" && "$parliament" --files "$name" ${PARLIAMENT_ARGS:-} </dev/null 2>&1) && rc=0 || rc=$?
    if [[ -n $out || $rc -ne 0 ]]; then
        echo "$name: parliament (exit $rc):" >&2
        printf '%s\n' "$out" | sed 's/^/  /' >&2
        status=1
    else
        echo "$name: valid JSON; parliament: no finding"
    fi
done
exit $status
