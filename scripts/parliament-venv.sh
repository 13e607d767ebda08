#!/usr/bin/env bash
# The venv for linting iam-policies/ with parliament: .venv-parliament,
# rebuilt only when iam-policies/requirements-lint.txt changes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-parliament"
req="$root/iam-policies/requirements-lint.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$venv/bin/parliament" --help >/dev/null 2>&1; then
    exit 0
fi
echo "parliament-venv.sh: building $venv" >&2
python3 -m venv --clear "$venv"
echo '*' >"$venv/.gitignore"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req"
echo "$want" >"$stamp"
