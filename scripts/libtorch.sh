#!/usr/bin/env bash
# Makes libtorch 2.13.0 (the version tch 0.26 is built against) available to cargo.
#
# - With LIBTORCH_USE_PYTORCH set, torch-sys asks that Python's torch: nothing to do.
# - With LIBTORCH set, checks that it holds a libtorch and leaves it alone.
# - Otherwise installs the `torch==2.13.0` wheel from PyPI (libtorch plus the CUDA runtime
#   libraries its RPATH points at; ~4.7 GB) into a cache folder shared by every clone,
#   and links it as `.libtorch` in the repository, where `.cargo/config.toml` points
#   LIBTORCH. A finished install is reused; an unfinished one is removed and redone.
#
# Environment: CYCLIC_LR_CACHE (default: ${XDG_CACHE_HOME:-$HOME/.cache}/cyclic-lr).
set -euo pipefail

version=2.13.0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() {
    echo "libtorch: error: $*" >&2
    exit 1
}

# A libtorch folder has the shared libraries and the C++ headers torch-sys compiles against.
holds_libtorch() {
    [ -f "$1/lib/libtorch_cpu.so" ] && [ -f "$1/include/torch/csrc/api/include/torch/torch.h" ]
}

if [ -n "${LIBTORCH_USE_PYTORCH:-}" ]; then
    echo "libtorch: LIBTORCH_USE_PYTORCH is set: torch-sys uses the torch of your python"
    exit 0
fi

if [ -n "${LIBTORCH:-}" ]; then
    holds_libtorch "$LIBTORCH" || die "LIBTORCH=$LIBTORCH holds no libtorch (no lib/libtorch_cpu.so or include/torch).
Point LIBTORCH at a libtorch $version folder, or unset it and run scripts/libtorch.sh to install one."
    echo "libtorch: using LIBTORCH=$LIBTORCH"
    exit 0
fi

cache=${CYCLIC_LR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cyclic-lr}
dest=$cache/torch-$version

if ! { [ -f "$dest/.complete" ] && holds_libtorch "$dest/torch"; }; then
    python3 -m pip --version >/dev/null 2>&1 ||
        die "python3 with pip is needed to fetch torch==$version from PyPI (Debian: apt-get install python3-pip).
Or set LIBTORCH to a libtorch $version folder."
    mkdir -p "$cache"
    rm -rf "$dest" "$dest".partial.*
    partial=$dest.partial.$$
    echo "libtorch: installing torch==$version from PyPI into $dest (~4.7 GB, a minute or two; once per machine)"
    python3 -m pip install --quiet --no-input --disable-pip-version-check --root-user-action=ignore --target "$partial" "torch==$version" ||
        { rm -rf "$partial"; die "pip could not install torch==$version (no network, or PyPI unreachable?).
Run scripts/libtorch.sh again once PyPI is reachable, or set LIBTORCH to a libtorch $version folder."; }
    holds_libtorch "$partial/torch" || { rm -rf "$partial"; die "the torch==$version wheel has no libtorch in $partial/torch"; }
    touch "$partial/.complete"
    # Another run may have finished first: keep whichever landed.
    mv -T "$partial" "$dest" 2>/dev/null || rm -rf "$partial"
fi

ln -sfn "$dest" "$root/.libtorch"
echo "libtorch: $dest/torch"
