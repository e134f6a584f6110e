#!/usr/bin/env bash
# Install exactly a lock file into a virtual environment (what `make install` runs):
#
#   scripts/install.sh [VENV] [LOCKFILE]          # defaults: .venv requirements/dev.txt
#
# 1. creates VENV if missing and brings pip to the locked version;
# 2. builds llama-cpp-python (when the lock pins it) from its sdist into a wheel directory
#    keyed by (version, CMAKE_ARGS, Python, platform), once, and installs that wheel;
# 3. installs every other pin of the lock with --no-deps, uninstalls what the lock does
#    not have, installs the project editable (--no-deps), and runs scripts/check_lock.py.
#
# llama.cpp is compiled with PORTABLE_CMAKE_ARGS unless CMAKE_ARGS is set (non-empty): its
# default, GGML_NATIVE=ON, compiles for the build machine's CPU, and on Sapphire Rapids the
# AVX-512/AMX kernels it then enables segfault. pip's own wheel cache is keyed by the sdist,
# not by CMAKE_ARGS, so it could hand back a wheel built with other flags: the build runs
# with --no-cache-dir and the wheel is looked up only in its own keyed directory under
# MEMORY_SERVICE_WHEEL_CACHE (default ~/.cache/memory-service/wheels).
set -euo pipefail

PORTABLE_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"

venv=${1:-.venv}
lock=${2:-requirements/dev.txt}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=$venv/bin/python

# The version the lock pins for a distribution (empty when it has none).
pin() { sed -n "s/^$1==\([^[:space:];#]*\).*/\1/p" "$lock" | head -n 1; }

test -f "$lock" || { echo "install: no lock file $lock (make lock writes it)" >&2; exit 1; }
test -x "$py" || python3 -m venv "$venv"

pip_version=$(pin pip)
if [ -n "$pip_version" ]; then
    "$py" -m pip install --quiet --no-deps "pip==$pip_version"
fi

llama_version=$(pin llama-cpp-python)
find_links=()
if [ -n "$llama_version" ]; then
    cmake_args=${CMAKE_ARGS:-$PORTABLE_CMAKE_ARGS}
    read -r python_tag platform < <("$py" -c 'import sys, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform())')
    flags=$(printf 'llama-cpp-python==%s\nCMAKE_ARGS=%s\npython=%s\nplatform=%s\n' \
        "$llama_version" "$cmake_args" "$python_tag" "$platform")
    key=$(printf '%s\n' "$flags" | "$py" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:12])')
    cache=${MEMORY_SERVICE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memory-service/wheels}
    wheel_dir=$cache/llama-cpp-python-$llama_version-$key
    wheel=$(find "$wheel_dir" -maxdepth 1 -name "llama_cpp_python-$llama_version-*.whl" 2>/dev/null | head -n 1 || true)
    if [ -z "$wheel" ]; then
        rm -rf "$wheel_dir"   # a directory without its wheel is of no use
        mkdir -p "$cache"
        tmp=$(mktemp -d "$cache/.build-XXXXXX")
        trap 'rm -rf "$tmp"' EXIT
        echo "install: compiling llama-cpp-python $llama_version (8-10 minutes on 2 cores) with CMAKE_ARGS=$cmake_args"
        CMAKE_ARGS=$cmake_args "$py" -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
            --wheel-dir "$tmp" "llama-cpp-python==$llama_version"
        printf '%s\n' "$flags" > "$tmp/BUILD-FLAGS"
        # Move into place in one step; another install that finished first wins.
        "$py" -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' "$tmp" "$wheel_dir" 2>/dev/null || rm -rf "$tmp"
        trap - EXIT
        wheel=$(find "$wheel_dir" -maxdepth 1 -name "llama_cpp_python-$llama_version-*.whl" | head -n 1)
    fi
    echo "install: llama-cpp-python from $wheel"
    # --force-reinstall: a llama-cpp-python of the same version built otherwise (pip's cache,
    # native flags) would count as already installed.
    "$py" -m pip install --quiet --no-deps --force-reinstall "$wheel"
    find_links=(--find-links "$wheel_dir")
fi

"$py" -m pip install --no-deps "${find_links[@]}" -r "$lock"

# Exactly the lock: remove what it does not pin (left from an older lock or installed by hand).
mapfile -t extra < <("$py" "$root/scripts/check_lock.py" --list-extra "$lock")
if [ "${#extra[@]}" -gt 0 ]; then
    echo "install: uninstalling what $lock does not pin: ${extra[*]}"
    "$py" -m pip uninstall --yes "${extra[@]}"
fi

# The project itself, editable, with no dependency of its own resolved. With setuptools in
# the lock, the locked setuptools builds it (no build environment fetched from the index).
isolation=()
if [ -n "$(pin setuptools)" ]; then
    isolation=(--no-build-isolation)
fi
"$py" -m pip install --quiet --no-deps "${isolation[@]}" -e "$root"

"$py" "$root/scripts/check_lock.py" "$lock"
