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

# Second pass: the PostgreSQL tests again with tracking_events partitioned by month
# (TRACKING_TEST_PARTITION, docs/partitions.md): `-k postgres` picks every test run on
# PostgreSQL (the [postgresql] cases and the PostgreSQL-only modules), except the 7 cases
# of test_xapi_lrs and test_caliper_forwarding (2.5 of its 10 minutes: a real LRS and
# Caliper endpoint behind the same outbox and worker that test_forwarding_rq runs here).
# It runs after a whole run (no arguments) or with TRACKING_TEST_PARTITION_PASS=1 (then
# on the arguments given); TRACKING_TEST_PARTITION_PASS=0 leaves it out.
partition_pass=${TRACKING_TEST_PARTITION_PASS:-auto}
if [[ $partition_pass == 1 || ($partition_pass == auto && $# -eq 0) ]]; then
    selection=("$@")
    ((${#selection[@]})) || selection=(tests --ignore=tests/browser)
    keyword="postgres and not test_xapi_lrs and not test_caliper_forwarding"
    echo "test: pytest ${selection[*]} -k '$keyword' (TRACKING_TEST_PARTITION=month)"
    TRACKING_TEST_PARTITION=month .venv/bin/python -m pytest "${selection[@]}" -k "$keyword"
    rc=$?
    case $rc in
        0) ;;
        5) failed+=("partitioned PostgreSQL pass (no tests collected)") ;;
        *) failed+=("partitioned PostgreSQL pass (exit $rc)") ;;
    esac
fi

if ((${#failed[@]})); then
    echo "test: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "test: all passed"
