#!/usr/bin/env bash
# Times the seed's dynamic training loop (Linear(10, 10), SGD, a [10, 10] uniform batch,
# CyclicLR) in PyTorch eager, in Paddle dygraph and in this crate, in one run on this machine,
# one thread each, and prints a Markdown table of medians and ratios (bench/README.md).
#
#   bench/peers.sh [--rounds N] [--quick]
#
# Each round (5 by default) runs the three one after the other, so that a change of machine
# load reaches all three. Each times its loops inside the process (start-up and imports are
# not in the figures) over short blocks of about a millisecond, and the table takes the
# median over every block of every round: the time of an undisturbed step, even on a shared
# machine. --quick: a few blocks, to check that everything runs (the figures are then rough).
#
# The peers come from PyPI (torch==2.13.0, paddlepaddle==3.3.1) into a virtual environment
# made on first use (~5 GB, a few minutes; an interrupted install is redone) in
# ${CYCLIC_LR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cyclic-lr}/peers-venv.
# Exits 1 when a target of the table is missed, 2 on an error.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

die() {
    echo "peers: error: $*" >&2
    exit 2
}

rounds=5
quick=false
while [ $# -gt 0 ]; do
    case $1 in
    --rounds)
        [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--rounds needs a positive integer"
        rounds=$2
        shift 2
        ;;
    --quick)
        quick=true
        shift
        ;;
    -h | --help)
        sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done

requirements="torch==2.13.0 paddlepaddle==3.3.1"
cache=${CYCLIC_LR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cyclic-lr}
venv=$cache/peers-venv
python=$venv/bin/python

# The marker holds the requirements it was made for: a venv for other versions is redone too.
if [ "$(cat "$venv/.complete" 2>/dev/null)" != "$requirements" ] || [ ! -x "$python" ]; then
    python3 -m venv --help >/dev/null 2>&1 ||
        die "python3 with venv is needed to install the peers (Debian: apt-get install python3-venv)"
    echo "peers: installing $requirements from PyPI into $venv (~5 GB, a few minutes; once per machine)" >&2
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv" || die "python3 -m venv $venv failed"
    # shellcheck disable=SC2086 # one word per requirement
    "$python" -m pip install --quiet --no-input --disable-pip-version-check $requirements ||
        die "pip could not install $requirements (no network, or PyPI unreachable?); run bench/peers.sh again to retry"
    echo "$requirements" >"$venv/.complete"
fi

scripts/libtorch.sh >&2

# One thread each: read by OpenMP and MKL in all three when they load; each program also sets
# its framework's own intra-op thread count to 1.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 CPU_NUM=1

echo "peers: building the crate's side (cargo bench --bench peers --no-run)" >&2
cargo bench --quiet --bench peers --no-run >&2 || die "cargo could not build benches/peers.rs"

if $quick; then
    python_args=(--blocks 10 --block-steps 2 --scheduler-block-steps 100 --warm-up-steps 20)
    rust_args=(--blocks 20 --block-steps 5 --scheduler-block-steps 1000 --warm-up-steps 50)
else
    python_args=()
    rust_args=()
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
samples=$work/samples

# Runs one system's loop, keeping its `sample`/`version` lines and showing its stderr only
# when it fails (Paddle warns about ccache at import).
measure() {
    local name=$1
    shift
    if ! "$@" >"$work/out" 2>"$work/err"; then
        cat "$work/out" "$work/err" >&2
        die "$name failed"
    fi
    cat "$work/out" >>"$samples"
}

for round in $(seq "$rounds"); do
    echo "peers: round $round of $rounds: PyTorch, Paddle, cyclic-lr" >&2
    measure PyTorch "$python" bench/peers.py run torch "${python_args[@]}"
    measure Paddle "$python" bench/peers.py run paddle "${python_args[@]}"
    measure cyclic-lr cargo bench --quiet --bench peers -- --samples "${rust_args[@]}"
done

echo >&2
"$python" bench/peers.py table "$samples"
