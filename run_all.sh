#!/usr/bin/env bash
# Run every numbered notebook (notebooks/NN_*.ipynb) in order with papermill for one profile.
# Executed copies go to build/<profile>/executed/; notebooks/ is never written to.
set -euo pipefail
export JETCLOUD_CALLER_PWD="${JETCLOUD_CALLER_PWD:-$PWD}"
cd "$(dirname "${BASH_SOURCE[0]}")"
export LC_ALL=C  # glob order 00, 01, ... regardless of the locale

usage() {
    cat <<'EOF'
usage: ./run_all.sh [--profile smoke|demo|full] [--only NN [NN ...]] [--from NN] [--dry-run] [-h]

Bootstraps .venv when needed (see scripts/bootstrap.sh), then executes notebooks/NN_*.ipynb in order
with papermill (kernel 'jetcloud', cwd notebooks/, -p profile <profile>, plus
-f notebooks/params/<profile>/<stem>.yaml when that file exists). A params file with several YAML
documents (separated by ---) runs the notebook once per document, e.g. once per model; the executed
copies and logs are then named <stem>@<model>.

  --profile P    smoke (the notebooks' own defaults, minutes), demo (default, ~30 min), full (hours, GPU)
  --only NN ...  run only these notebook numbers, e.g. --only 00 02
  --from NN      run notebook NN and every later one
  --dry-run, -n  print the papermill commands, run nothing (no bootstrap)
  -h, --help     this message

Outputs: executed notebooks in build/<profile>/executed/, logs in build/<profile>/logs/,
metrics in build/<profile>/metrics/, figures in figures/<profile>/ (JETCLOUD_BUILD / JETCLOUD_FIGURES
move build/ and figures/). Last step: an offline HTML book of every executed notebook of the profile,
build/<profile>/book/index.html (python -m jetcloud.book; also after a failure, to show the error).
Stops at the first failing notebook, naming it and the cell's error.
Environment: JETCLOUD_CELL_TIMEOUT (seconds per cell, default none), see also scripts/bootstrap.sh.
EOF
}

bad_usage() { printf 'run_all.sh: %s\n\n' "$1" >&2; usage >&2; exit 2; }

profile=demo
only=()
from=""
dry_run=0
while (($#)); do
    case "$1" in
        --profile)
            (($# >= 2)) || bad_usage "--profile needs a value"
            profile="$2"; shift 2 ;;
        --profile=*) profile="${1#*=}"; shift ;;
        --only)
            shift
            [[ $# -gt 0 && "$1" =~ ^[0-9]{2}$ ]] || bad_usage "--only needs one or more two-digit numbers"
            while [[ $# -gt 0 && "$1" =~ ^[0-9]{2}$ ]]; do only+=("$1"); shift; done ;;
        --only=*) only+=("${1#*=}"); shift ;;
        --from)
            (($# >= 2)) || bad_usage "--from needs a value"
            from="$2"; shift 2 ;;
        --from=*) from="${1#*=}"; shift ;;
        -n | --dry-run) dry_run=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) bad_usage "unknown option or argument: $1" ;;
    esac
done

case "$profile" in smoke | demo | full) ;; *) bad_usage "unknown profile '$profile' (smoke, demo or full)" ;; esac
[[ -z "$from" || "$from" =~ ^[0-9]{2}$ ]] || bad_usage "--from expects a two-digit number, got '$from'"
for n in ${only[@]+"${only[@]}"}; do
    [[ "$n" =~ ^[0-9]{2}$ ]] || bad_usage "--only expects two-digit numbers, got '$n'"
done

# ---- select notebooks -------------------------------------------------------------------------------
shopt -s nullglob
all=(notebooks/[0-9][0-9]_*.ipynb)
shopt -u nullglob
selected=()
for nb in ${all[@]+"${all[@]}"}; do
    num="$(basename "$nb")"; num="${num:0:2}"
    if ((${#only[@]})); then
        keep=0
        for n in "${only[@]}"; do [[ "$n" == "$num" ]] && keep=1; done
        ((keep)) || continue
    fi
    if [[ -n "$from" && "$num" < "$from" ]]; then continue; fi
    selected+=("$nb")
done
for n in ${only[@]+"${only[@]}"}; do
    found=0
    for nb in ${all[@]+"${all[@]}"}; do [[ "$(basename "$nb")" == "$n"_* ]] && found=1; done
    ((found)) || bad_usage "--only $n: no notebooks/${n}_*.ipynb"
done
if [[ -n "$from" ]] && ((${#all[@]})) && ((${#selected[@]} == 0)); then
    bad_usage "--from $from: no notebook numbered $from or later"
fi

# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh  # defines functions only
jc_absolutize_env            # relative JETCLOUD_* paths: relative to the caller's directory
build_root="${JETCLOUD_BUILD:-build}"
figures_root="${JETCLOUD_FIGURES:-figures}"
executed_dir="$build_root/$profile/executed"
logs_dir="$build_root/$profile/logs"

runs_of() {  # runs_of NOTEBOOK -> fills `run_labels` and `run_params` (one entry per run of the notebook)
    # notebooks/params/<profile>/<stem>.yaml holds one YAML document (one run) or several separated by
    # `---` (one run each, e.g. one per model; scripts/split_params.py); no file: one run on the defaults.
    local nb="$1" stem params listing label file
    stem="$(basename "$nb" .ipynb)"
    params="notebooks/params/$profile/$stem.yaml"
    run_labels=(); run_params=()
    if [[ ! -f "$params" ]]; then run_labels=(""); run_params=(""); return 0; fi
    listing="$("${PY:-python3}" scripts/split_params.py "$params" "$build_root/$profile/params")" \
        || { echo "run_all.sh: invalid parameter file $params (see the error above)" >&2; exit 1; }
    while IFS='|' read -r label file; do run_labels+=("$label"); run_params+=("$file"); done <<<"$listing"
}

papermill_cmd() {  # papermill_cmd NOTEBOOK OUTPUT PARAMS_FILE -> fills the array `cmd`
    local nb="$1" out="$2" params="$3"
    cmd=(python -m papermill "$nb" "$out" -k jetcloud --cwd notebooks --log-output --no-progress-bar
        -p profile "$profile")
    [[ -n "$params" ]] && cmd+=(-f "$params")
    [[ -n "${JETCLOUD_CELL_TIMEOUT:-}" ]] && cmd+=(--execution-timeout "$JETCLOUD_CELL_TIMEOUT")
    return 0
}

book_cmd() {  # -> fills the array `cmd` with the book build (jetcloud.book), the last step
    cmd=(python -m jetcloud.book --profile "$profile")
}

build_book() {  # build_book -> 0 when build/<profile>/book was (re)built
    book_cmd
    echo
    echo "==> book -> $build_root/$profile/book/index.html"
    printf '    %q' "${cmd[@]}"; echo
    "${cmd[@]}"
}

if ((dry_run)); then
    ((${#selected[@]})) || echo "run_all.sh: no numbered notebooks selected in notebooks/"
    [[ -x .venv/bin/python ]] && PY=.venv/bin/python
    for nb in ${selected[@]+"${selected[@]}"}; do
        runs_of "$nb"
        for i in "${!run_labels[@]}"; do
            label="${run_labels[$i]}"
            papermill_cmd "$nb" "$executed_dir/$(basename "$nb" .ipynb)${label:+@$label}.ipynb" "${run_params[$i]}"
            printf '%q ' "${cmd[@]}"; echo
        done
    done
    book_cmd; printf '%q ' "${cmd[@]}"; echo
    exit 0
fi

jc_bootstrap

# ---- run ----------------------------------------------------------------------------------------------
names=(); secs=(); states=()
print_table() {
    local i
    echo
    printf '%-40s %9s  %s\n' "notebook (profile $profile)" "seconds" "status"
    printf '%-40s %9s  %s\n' "----------------------------------------" "---------" "--------"
    for i in "${!names[@]}"; do printf '%-40s %9s  %s\n' "${names[$i]}" "${secs[$i]}" "${states[$i]}"; done
    ((${#names[@]})) || printf '%-40s %9s  %s\n' "(none)" "-" "-"
    echo
    local nfig=0 nmet=0
    [[ -d "$figures_root/$profile" ]] && nfig="$(find "$figures_root/$profile" -maxdepth 1 -type f | wc -l)"
    [[ -d "$build_root/$profile/metrics" ]] && nmet="$(find "$build_root/$profile/metrics" -maxdepth 1 -name '*.json' | wc -l)"
    nfig="${nfig//[[:space:]]/}"; nmet="${nmet//[[:space:]]/}"
    echo "executed notebooks: $executed_dir/"
    echo "figures:            $figures_root/$profile/ ($nfig files)"
    echo "metrics:            $build_root/$profile/metrics/ ($nmet JSON files)"
    echo "logs:               $logs_dir/"
}

cell_error() {  # first error output of an executed notebook: "In [N] (cell i ...): ename: evalue"
    python - "$1" <<'EOF'
import json, sys
try:
    nb = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit(0)
for index, cell in enumerate(nb.get("cells", [])):
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error" and out.get("ename"):
            count = cell.get("execution_count")
            print(f"In [{count}] (cell {index} of the executed copy): {out['ename']}: {out.get('evalue', '')}")
            sys.exit(0)
EOF
}

if ((${#selected[@]} == 0)); then
    echo "run_all.sh: no numbered notebooks (notebooks/NN_*.ipynb) to run; nothing to do."
    print_table
    exit 0
fi

mkdir -p "$executed_dir" "$logs_dir"
echo "run_all.sh: profile $profile, ${#selected[@]} notebook(s): ${selected[*]}"
failed=""
for nb in "${selected[@]}"; do
    runs_of "$nb"
    for i in "${!run_labels[@]}"; do
        label="${run_labels[$i]}"
        stem="$(basename "$nb" .ipynb)${label:+@$label}"  # one executed copy and log per run
        out="$executed_dir/$stem.ipynb"
        log="$logs_dir/$stem.log"
        papermill_cmd "$nb" "$out" "${run_params[$i]}"
        echo
        echo "==> $nb${label:+ (run $label)} -> $out"
        printf '    %q' "${cmd[@]}"; echo
        rm -f "$out"
        start="$(date +%s)"
        if "${cmd[@]}" 2>&1 | tee "$log"; then status=ok; else status=FAILED; fi
        names+=("$stem"); secs+=("$(($(date +%s) - start))"); states+=("$status")
        if [[ "$status" != ok ]]; then failed="$stem"; break 2; fi
    done
done

if [[ -n "$failed" ]]; then
    for nb in "${selected[@]}"; do
        stem="$(basename "$nb" .ipynb)"
        [[ " ${names[*]} " == *" $stem"[@\ ]* ]] || { names+=("$stem"); secs+=("-"); states+=("not run"); }
    done
    stem="$failed"
    err="$(cell_error "$executed_dir/$stem.ipynb")"
    if [[ -z "$err" ]]; then  # no executed copy (e.g. kernel failed to start): last error line of the log
        err="$(grep -E 'Error|Exception' "$logs_dir/$stem.log" | tail -n 1 || true)"
    fi
    build_book || echo "run_all.sh: the book build failed too (see above)" >&2
    print_table
    echo
    failed_nb="notebooks/${failed%%@*}.ipynb"
    [[ "$failed" == *@* ]] && failed_nb+=" (run ${failed#*@})"
    echo "FAILED: $failed_nb"
    echo "  error:         ${err:-unknown (see the log)}"
    echo "  executed copy: $executed_dir/$stem.ipynb"
    echo "  log:           $logs_dir/$stem.log"
    exit 1
fi

if ! build_book; then
    print_table
    echo
    echo "FAILED: book build (the ${#selected[@]} notebook(s) passed): ${cmd[*]}"
    exit 1
fi
print_table
echo "book:               $build_root/$profile/book/index.html"
echo
echo "run_all.sh: all ${#selected[@]} notebook(s) passed (profile $profile)."
