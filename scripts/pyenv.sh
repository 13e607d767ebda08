#!/usr/bin/env bash
# Create or refresh the Python virtualenv used by the Sigma conformance test
# (tests/conformance/sigma_duckdb.py): .venv-conformance at the repository root,
# with exactly the pins of tests/conformance/requirements.txt.
#
# Idempotent: the venv records the hash of the requirements it was built from in
# a stamp file; when that matches and its interpreter still imports the packages,
# nothing is done. Otherwise the venv is rebuilt from scratch (--clear), so no
# stale package survives a change of pins.
#
# Environment: PYTHON  base interpreter (default: python3; needs 3.10+, 3.11 tested)
# Afterwards run:  .venv-conformance/bin/python tests/conformance/sigma_duckdb.py ...
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-conformance"
req="$root/tests/conformance/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
    "$venv/bin/python" -c 'import sigma, sigma_backend_duckdb, duckdb' 2>/dev/null; then
    exit 0
fi

echo "pyenv.sh: building $venv from tests/conformance/requirements.txt" >&2
"$python" -m venv --clear "$venv"
# Keep the venv out of git without touching the repository's .gitignore.
echo '*' >"$venv/.gitignore"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req"
"$venv/bin/python" -c 'import sigma, sigma_backend_duckdb, duckdb'
echo "$want" >"$stamp"
