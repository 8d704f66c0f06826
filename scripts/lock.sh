#!/usr/bin/env bash
# Regenerates requirements.lock (and requirements.runtime.lock, its runtime subset for the image):
# every dependency (runtime, dev tools, bundled models) pinned with
# its sha256 hashes, for CPython 3.11 on linux x86_64.  Existing pins are kept unless you pass
# `--upgrade-package NAME` (or `--upgrade`); review the diff like code.  llama-cpp-python is left
# out: it is compiled from source (scripts/bootstrap.sh, infra/Dockerfile), pinned by version.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
[[ -x $UV ]] || .venv/bin/python -m pip install -q uv
"$UV" pip compile pyproject.toml --extra dev --extra models --generate-hashes \
  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
  --no-emit-package llama-cpp-python --custom-compile-command scripts/lock.sh \
  -o requirements.lock "$@"
# The image's lock: runtime dependencies only, at the same versions as requirements.lock.
"$UV" pip compile pyproject.toml --generate-hashes \
  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
  --no-emit-package llama-cpp-python --custom-compile-command scripts/lock.sh \
  -c requirements.lock --no-annotate -o requirements.runtime.lock
