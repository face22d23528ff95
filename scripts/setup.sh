#!/usr/bin/env bash
# Bring this checkout up to what `make test` / `make demo` need. Idempotent and
# quick (well under a second) when everything is already in place.
#
#   bash scripts/setup.sh              # dev: .venv with '.[dev]', npm deps, Debian packages for tests
#   bash scripts/setup.sh --demo       # demo: .venv with '.' only, npm deps, no Debian packages
#   bash scripts/setup.sh --no-system  # dev Python + npm deps, but no Debian packages (used by `make lint`)
#
# See docs/development.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=dev
system=1
for arg in "$@"; do
    case "$arg" in
        --demo) mode=demo; system=0 ;;
        --no-system) system=0 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "setup: unknown option: $arg" >&2; exit 2 ;;
    esac
done

say() { echo "setup: $*"; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

# --- Python virtualenv ---------------------------------------------------------
PYTHON=${PYTHON:-python3}
if ! .venv/bin/python -c '' 2>/dev/null; then
    command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found; Python >= 3.11 is required"
    say "creating .venv with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv --clear .venv || die "'$PYTHON -m venv .venv' failed"
fi

# Reinstall only when pyproject.toml changed since the last install (or the venv is new).
# A dev install also satisfies --demo; a demo install does not satisfy dev.
stamp=.venv/.flask-tracking-install
want_hash=$(sha256sum pyproject.toml | cut -d' ' -f1)
have_hash='' have_mode=''
[[ -f $stamp ]] && read -r have_hash have_mode <"$stamp" || true
if [[ $have_hash != "$want_hash" || ( $have_mode != dev && $have_mode != "$mode" ) ]]; then
    if [[ $mode == dev ]]; then spec='.[dev]'; else spec='.'; fi
    say "pip install -e '$spec' (pyproject.toml changed or first install)"
    start=$SECONDS
    if ! .venv/bin/python -m pip install --disable-pip-version-check -e "$spec" \
            >.venv/pip-install.log 2>&1; then
        tail -n 40 .venv/pip-install.log >&2
        die "pip install -e '$spec' failed (full log: .venv/pip-install.log)"
    fi
    say "pip install done in $((SECONDS - start))s"
    echo "$want_hash $mode" >"$stamp"
fi

# --- npm -----------------------------------------------------------------------
if [[ -f package.json ]]; then
    command -v npm >/dev/null || die "package.json exists but npm is not installed (Node.js 20 + npm needed)"
    npm_stamp=node_modules/.flask-tracking-install
    npm_hash=$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [[ ! -f $npm_stamp || $(cat "$npm_stamp") != "$npm_hash" ]]; then
        if [[ -f package-lock.json ]]; then
            say "npm ci"
            npm ci --omit=optional --no-audit --no-fund --loglevel=error || die "npm ci failed"
        else
            say "npm install (no package-lock.json)"
            npm install --no-audit --no-fund --loglevel=error || die "npm install failed"
        fi
        # npm install may have written a lock file: hash what is there now.
        cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1 >"$npm_stamp"
    fi
fi

[[ $system == 1 ]] || exit 0

# --- Debian packages the tests and benchmarks need -------------------------------
have_initdb() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null
}
missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
have_initdb || missing+=(postgresql)
command -v wrk >/dev/null || missing+=(wrk)

if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        die "missing Debian packages: ${missing[*]}; run as root (or with passwordless sudo), or install them:
    sudo apt-get install --no-install-recommends ${missing[*]}"
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
    start=$SECONDS
    say "installing Debian packages: ${missing[*]} (apt-get update first)"
    "${apt[@]}" update -qq >/dev/null || die "apt-get update failed"
    "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/tmp/flask-tracking-apt.log 2>&1 \
        || { tail -n 30 /tmp/flask-tracking-apt.log >&2; die "apt-get install ${missing[*]} failed (log: /tmp/flask-tracking-apt.log)"; }
    say "installed ${missing[*]} in $((SECONDS - start))s"

    [[ -x /usr/bin/chromium ]] || die "chromium was installed but /usr/bin/chromium is missing"
    command -v redis-server >/dev/null || die "redis-server is still not on PATH after install"
    have_initdb || die "no initdb under /usr/lib/postgresql/*/bin after installing postgresql"
    command -v wrk >/dev/null || die "wrk is still not on PATH after install"
fi
