# shellcheck shell=bash
# Shared bootstrap for run_all.sh and run_tests.sh: sourced (not executed) from the repository root.
#
#   1. create .venv with `python3 -m venv` when it is missing;
#   2. install torch pinned to the CPU wheel (JETCLOUD_TORCH_SPEC, default torch==2.13.0) unless
#      `import torch` already works in the venv: a bare `torch` requirement pulls a multi-GB CUDA build;
#   3. `pip install -e ".[test,notebooks]"` (tests, Jupyter, papermill, ipywidgets), skipped when
#      .venv/.jetcloud-install-stamp holds the sha256 of pyproject.toml (plus the torch spec) from the last
#      successful install;
#   4. register the Jupyter kernel `jetcloud` inside the venv (papermill -k jetcloud).
#
# Afterwards PY is the venv's python, .venv/bin is first on PATH, MPLBACKEND=Agg, and JETCLOUD_DATA /
# JETCLOUD_BUILD / JETCLOUD_FIGURES, when set, are absolute (kernels run with cwd notebooks/).
#
# Environment knobs:
#   JETCLOUD_PYTHON        interpreter used to create .venv (default: python3)
#   JETCLOUD_TORCH_SPEC    pip requirement for torch (default: torch==2.13.0). For a CUDA build, install torch
#                          into .venv first from the cu12x index of the PyTorch install matrix, e.g.
#                          .venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128
#                          (step 2 keeps any torch that imports)
#   JETCLOUD_NO_BOOTSTRAP  1 = use .venv as it is, install nothing (fails if .venv is missing)
#   JETCLOUD_CALLER_PWD    directory relative JETCLOUD_* paths are resolved against (set by the callers)

JC_VENV="${JC_VENV:-.venv}"
JC_TORCH_SPEC="${JETCLOUD_TORCH_SPEC:-torch==2.13.0}"
JC_KERNEL_NAME="jetcloud"
JC_EXTRAS="test,notebooks"  # what run_tests.sh (test) and run_all.sh (notebooks) need
JC_STAMP="$JC_VENV/.jetcloud-install-stamp"

jc_log() { printf '[bootstrap] %s\n' "$*" >&2; }
jc_die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }

jc_absolutize_env() {
    # Relative JETCLOUD_* paths are taken relative to the caller's directory, then exported absolute.
    local base="${JETCLOUD_CALLER_PWD:-$PWD}" var value
    for var in JETCLOUD_DATA JETCLOUD_BUILD JETCLOUD_FIGURES; do
        value="${!var:-}"
        [[ -z "$value" ]] && continue
        [[ "$value" == "~"* ]] && value="$HOME${value:1}"
        [[ "$value" != /* ]] && value="$base/$value"
        export "$var=$value"
    done
}

jc_install_key() {
    "$PY" - "$JC_TORCH_SPEC" <<'EOF'
import hashlib, sys
digest = hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest()
print(f"pyproject.toml sha256={digest} torch={sys.argv[1]} python={sys.version.split()[0]}")
EOF
}

jc_kernel_ok() {
    # The kernel exists and its argv[0] is this venv's interpreter (a moved repo leaves a stale path).
    "$PY" - "$JC_KERNEL_NAME" <<'EOF'
import json, os, sys
path = os.path.join(sys.prefix, "share", "jupyter", "kernels", sys.argv[1], "kernel.json")
try:
    argv0 = json.load(open(path))["argv"][0]
except (OSError, ValueError, KeyError, IndexError):
    sys.exit(1)
sys.exit(0 if os.path.realpath(argv0) == os.path.realpath(sys.executable) else 1)
EOF
}

jc_bootstrap() {
    jc_absolutize_env
    export MPLBACKEND="${MPLBACKEND:-Agg}"
    export PYTHONNOUSERSITE=1
    PY="$PWD/$JC_VENV/bin/python"

    if [[ "${JETCLOUD_NO_BOOTSTRAP:-0}" == 1 ]]; then
        [[ -x "$PY" ]] || jc_die "JETCLOUD_NO_BOOTSTRAP=1 but $JC_VENV/bin/python does not exist"
    else
        if [[ ! -x "$PY" ]]; then
            local base_python="${JETCLOUD_PYTHON:-python3}"
            command -v "$base_python" >/dev/null || jc_die "$base_python not found (set JETCLOUD_PYTHON)"
            jc_log "creating $JC_VENV with $base_python ($("$base_python" --version 2>&1))"
            "$base_python" -m venv "$JC_VENV" || jc_die "python -m venv $JC_VENV failed"
            "$PY" -m pip install --quiet --upgrade pip || jc_log "pip upgrade failed; continuing with the bundled pip"
        fi

        if ! "$PY" -c "import torch" >/dev/null 2>&1; then
            jc_log "installing $JC_TORCH_SPEC (CPU wheel; an unpinned torch would pull a multi-GB CUDA build)"
            "$PY" -m pip install "$JC_TORCH_SPEC" || jc_die "pip install $JC_TORCH_SPEC failed"
        fi

        local key
        key="$(jc_install_key)"
        if [[ ! -f "$JC_STAMP" || "$(cat "$JC_STAMP")" != "$key" ]] || ! "$PY" -c "import jetcloud" >/dev/null 2>&1; then
            jc_log "pip install -e \".[$JC_EXTRAS]\" (first run or pyproject.toml changed; a fresh venv takes minutes)"
            "$PY" -m pip install --quiet -e ".[$JC_EXTRAS]" || jc_die "pip install -e \".[$JC_EXTRAS]\" failed"
            printf '%s\n' "$key" >"$JC_STAMP"
        fi

        if ! jc_kernel_ok; then
            jc_log "registering Jupyter kernel '$JC_KERNEL_NAME' in $JC_VENV"
            "$PY" -m ipykernel install --sys-prefix --name "$JC_KERNEL_NAME" \
                --display-name "Python (jetcloud)" >/dev/null || jc_die "ipykernel install failed"
        fi
    fi

    export VIRTUAL_ENV="$PWD/$JC_VENV"
    export PATH="$VIRTUAL_ENV/bin:$PATH"
    # This checkout's lib/ first: a venv shared with another checkout (a worktree, a copy) has its editable
    # install pointing there, and the notebooks' kernels inherit this variable.
    export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}"
}
