#!/usr/bin/env bash
# Run the whole test suite: the JavaScript tests (npm test) when package.json exists,
# then pytest. Extra arguments go to pytest:  bash scripts/test.sh tests/test_services.py -x
# Expects scripts/setup.sh to have run (`make test` does both).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

[[ -x .venv/bin/python ]] || { echo "test: .venv is missing; run 'bash scripts/setup.sh' first" >&2; exit 1; }

if [[ ${CI:-} == true ]]; then
    # Report every skipped test (and failures, errors, xfails) in the closing summary.
    # ('-rs' alone would replace the '-ra' from pyproject.toml and drop the FAILED lines.)
    export PYTEST_ADDOPTS="${PYTEST_ADDOPTS:+$PYTEST_ADDOPTS }-ra"
fi

failed=()

if [[ -f package.json ]]; then
    echo "test: npm test"
    npm test || failed+=("npm test (exit $?)")
else
    echo "test: no package.json, skipping npm test"
fi

echo "test: pytest $*"
.venv/bin/python -m pytest "$@"
rc=$?
case $rc in
    0) ;;
    5) echo "test: ERROR: pytest collected no tests (exit 5); check the paths/-k given: $*" >&2
       failed+=("pytest (no tests collected)") ;;
    *) failed+=("pytest (exit $rc)") ;;
esac

if ((${#failed[@]})); then
    echo "test: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "test: all passed"
