#!/usr/bin/env bash
# Seed the running emulators (localstack/up.sh) with the test world; see seed.py.
# Runs seed.py with the moto venv's interpreter (it carries the pinned boto3), with
# the endpoints and dummy credentials of env.sh. Arguments go to seed.py
# (--datasets DIR, --manifest FILE, --seed S, --now RFC3339).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="$here/.venv-moto/bin/python"
[[ -x "$py" ]] || { echo "seed.sh: $py missing: run localstack/up.sh first" >&2; exit 1; }
# shellcheck source=env.sh
. "$here/env.sh"
exec "$py" "$here/seed.py" "$@"
