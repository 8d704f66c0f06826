"""Schemathesis hooks for ``test_fuzz_api`` (loaded by the CLI through ``SCHEMATHESIS_HOOKS``).

- ``api_process_alive``: a check run after every case; it fails the case that left the API
  process (``MODELYARD_FUZZ_API_PID``) dead, so a crash is pinned to the request that caused it.
- ``before_call``: a generated chat request keeps its shape but asks for at most a few tokens,
  so each real SmolLM2 generation takes milliseconds (the token count is not what is fuzzed).
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis

MAX_TOKENS = 4


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@schemathesis.check
def api_process_alive(ctx: Any, response: Any, case: Any) -> bool | None:
    pid = int(os.environ["MODELYARD_FUZZ_API_PID"])
    if not _alive(pid):
        raise AssertionError(f"the API process {pid} died after this request")
    return None


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    body = case.body
    if case.operation.path != "/v1/chat/completions" or not isinstance(body, dict):
        return
    if "max_tokens" not in body and "max_completion_tokens" not in body:
        body["max_tokens"] = MAX_TOKENS  # the default, 256, would take seconds a case
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and MAX_TOKENS < value <= 8192:
            body[name] = MAX_TOKENS
