"""Text embeddings by model name: the built-in offline embedders, or a registered remote model.

``POST /v1/embeddings`` is a thin skin over ``embed``.  Two built-in names are stable API:

- ``modelyard-embed``: the general-purpose embedder (WordLlama's static token table from its
  wheel when installed, else hashed n-grams); 256 dimensions with WordLlama.
- ``modelyard-route-embed``: the embedder the routing predictor compares requests with, so a
  client can see (or precompute) what routing sees.

Any catalogue entry with the ``embeddings`` capability on an OpenAI-compatible server is
forwarded there (``POST {base_url}/embeddings``) under its served name.  Local GGUF embedding
models are not served yet: the llama.cpp runners generate text only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlmodel import Session

from .catalog import Backend, Capability, find_model
from .egress import EgressPolicy, read_secret
from .errors import BackendError, BackendUnreachable, InvalidInput, NotFound
from .pricing import estimate_tokens
from .routing.embed import Embedder, default_embedder, semantic_embedder
from .settings import Settings

BUILTIN: dict[str, Callable[[], Embedder]] = {
    "modelyard-embed": semantic_embedder,
    "modelyard-route-embed": default_embedder,
}


@dataclass(frozen=True)
class Embeddings:
    model: str
    vectors: list[list[float]]
    prompt_tokens: int


def embed(session: Session, settings: Settings, model: str, texts: list[str]) -> Embeddings:
    """Embed ``texts`` with ``model``; unknown names are ``NotFound`` (field ``model``)."""
    if not texts:
        raise InvalidInput("input must hold at least one text", field="input")
    factory = BUILTIN.get(model)
    if factory is not None:
        matrix = factory().embed(texts)
        return Embeddings(model=model, vectors=[[float(x) for x in row] for row in matrix],
                          prompt_tokens=sum(estimate_tokens(t) for t in texts))
    entry = find_model(session, model)
    if entry is None:
        names = ", ".join(sorted(BUILTIN))
        raise NotFound(f"no embedding model {model!r}; built-in: {names}", field="model")
    if Capability.embeddings not in entry.capabilities:
        raise InvalidInput(f"model {model!r} does not serve embeddings (no 'embeddings' "
                           "capability)", field="model")
    if entry.backend != Backend.openai_compatible or not entry.base_url:
        raise InvalidInput(f"model {model!r}: only remote embedding models are served",
                           field="model")
    EgressPolicy(settings.egress_allow).check(entry.base_url, field="model")
    api_key = read_secret(entry.api_key_env, settings.secret_env_allow)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    try:
        response = httpx.post(f"{entry.base_url}/embeddings", headers=headers, timeout=timeout,
                              json={"model": entry.served_name, "input": texts,
                                    "encoding_format": "float"})
    except httpx.HTTPError as exc:
        raise BackendUnreachable(f"{model}: embeddings server unreachable "
                                 f"({type(exc).__name__})") from exc
    if response.status_code != 200:
        raise BackendError(f"{model}: embeddings server answered HTTP {response.status_code}")
    body = response.json()
    rows = sorted(body.get("data", []), key=lambda d: d.get("index", 0))
    usage = body.get("usage") or {}
    return Embeddings(model=model, vectors=[[float(x) for x in r["embedding"]] for r in rows],
                      prompt_tokens=int(usage.get("prompt_tokens") or
                                        sum(estimate_tokens(t) for t in texts)))


__all__ = ["BUILTIN", "Embeddings", "embed"]
