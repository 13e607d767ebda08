#!/usr/bin/env bash
# Create or refresh the Python virtualenv used by the test receiver
# (tests/support/receiver.py, the stand-in for Datadog's Events API and for
# webhook receivers): .venv-receiver at the repository root, with exactly the pins
# of tests/support/requirements-receiver.txt.
#
# Idempotent: the venv records the hash of the requirements it was built from in
# a stamp file; when that matches and its interpreter still imports the packages,
# nothing is done. Otherwise the venv is rebuilt from scratch (--clear), so no
# stale package survives a change of pins.
#
# Environment: PYTHON  base interpreter (default: python3; needs 3.10+, 3.11 tested)
# Afterwards run:  .venv-receiver/bin/python tests/support/receiver.py --self-test
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-receiver"
req="$root/tests/support/requirements-receiver.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"
probe='from datadog_api_client.v1.model.event_create_request import EventCreateRequest'

want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
    "$venv/bin/python" -c "$probe" 2>/dev/null; then
    exit 0
fi

echo "receiver-venv.sh: building $venv from tests/support/requirements-receiver.txt" >&2
"$python" -m venv --clear "$venv"
# Keep the venv out of git without touching the repository's .gitignore.
echo '*' >"$venv/.gitignore"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req"
"$venv/bin/python" -c "$probe"
echo "$want" >"$stamp"
