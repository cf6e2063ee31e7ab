#!/usr/bin/env bash
# The test command: bootstrap .venv when needed, then ruff and pytest on the unit tests (tests/), then nbval over the
# numbered notebooks (notebooks/NN_*.ipynb, in file order, on their smoke defaults, with the venv's kernel).
set -euo pipefail
export JETCLOUD_CALLER_PWD="${JETCLOUD_CALLER_PWD:-$PWD}"
cd "$(dirname "${BASH_SOURCE[0]}")"
export LC_ALL=C

usage() {
    cat <<'EOF'
usage: ./run_tests.sh [--unit | --nbval] [pytest args ...]

  (no option)  ruff and unit tests (tests/), then nbval over notebooks/NN_*.ipynb
  --unit       ruff and unit tests only
  --nbval      notebooks only
  -h, --help   this message
Other arguments are passed to pytest in each step, e.g. ./run_tests.sh --unit -x -k manifest
or ./run_tests.sh --unit tests/test_foundations.py.
EOF
}

run_unit=1
run_nbval=1
args=()
for arg in "$@"; do
    case "$arg" in
        --unit) run_nbval=0 ;;
        --nbval) run_unit=0 ;;
        -h | --help) usage; exit 0 ;;
        *) args+=("$arg") ;;
    esac
done
if ((run_unit == 0 && run_nbval == 0)); then
    echo "run_tests.sh: --unit and --nbval exclude each other" >&2; usage >&2; exit 2
fi

# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
jc_bootstrap

shopt -s nullglob
notebooks=(notebooks/[0-9][0-9]_*.ipynb)  # numbered only: _template.ipynb is never executed
shopt -u nullglob
if ((run_nbval)) && ((${#notebooks[@]} == 0)); then
    echo "==> nbval: no numbered notebooks (notebooks/NN_*.ipynb) yet; skipping"
    run_nbval=0
fi
# (pytest's own summary line is the last thing printed on success, for tools that read it)

status=0
if ((run_unit)); then
    echo "==> ruff (lint and format)"
    ruff check --quiet lib tests benchmarks scripts notebooks && ruff format --check --quiet lib tests benchmarks scripts notebooks || {
        echo "run_tests.sh: ruff found problems (fix with: .venv/bin/ruff check --fix lib tests benchmarks scripts notebooks && .venv/bin/ruff format lib tests benchmarks scripts notebooks)" >&2
        exit 1
    }
    # the book test opens the rendered notebooks in headless Chromium (Debian's package; skipped when absent)
    scripts/install_chromium.sh >/dev/null 2>&1 || echo "run_tests.sh: no Chromium could be installed; the book's browser test is skipped" >&2
    echo "==> unit tests"
    python -m pytest -p no:cacheprovider ${args[@]+"${args[@]}"} || status=$?
    if ((status != 0)); then
        echo "run_tests.sh: unit tests failed (exit $status)" >&2
        exit "$status"
    fi
fi

if ((run_nbval)); then
    echo "==> nbval over ${#notebooks[@]} notebook(s), smoke defaults: ${notebooks[*]}"
    # Serial on purpose: notebook NN reads what the earlier ones wrote.
    python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout="${JETCLOUD_CELL_TIMEOUT:-1800}" \
        --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider \
        ${args[@]+"${args[@]}"} "${notebooks[@]}" || status=$?
    if ((status != 0)); then
        echo "run_tests.sh: nbval failed (exit $status)" >&2
        exit "$status"
    fi
fi
