#!/usr/bin/env bash
# Create .venv with Python 3.12 and install bayesflux with its dev extras (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    local candidates=(python3.12)
    if command -v pyenv >/dev/null 2>&1; then
        candidates+=("$(pyenv root)/versions/3.12.1/bin/python")
        for v in "$(pyenv root)"/versions/3.12*/bin/python; do candidates+=("$v"); done
    fi
    candidates+=(/root/.pyenv/versions/3.12.1/bin/python python3)
    for py in "${candidates[@]}"; do
        if [ -x "$(command -v "$py" 2>/dev/null)" ] \
            && "$py" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else 1)' 2>/dev/null; then
            command -v "$py"
            return 0
        fi
    done
    return 1
}

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else 1)'; then
    PY=$(find_python) || { echo "bayesflux needs Python 3.12 (arviz 1.x requires it); none found on PATH or under pyenv" >&2; exit 1; }
    rm -rf .venv
    "$PY" -m venv .venv
fi
stamp=.venv/.bayesflux-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[dev,dask]"
    touch "$stamp"
fi
