"""Request embeddings for the predictor: fast, offline, deterministic, no torch.

Routing embeds every request on the serving path, so an embedder must answer in about a
millisecond for a 500-token prompt on two cores. A transformer cannot (a 22M-parameter MiniLM over
500 tokens takes tens of milliseconds there), so the two embedders here are static:

- ``HashedNgramEmbedder``: word unigrams and bigrams hashed into a signed fixed-size vector. No
  weights, always available; the fallback, and the reference the learned ones must beat.
- ``StaticEmbedder``: a static token-embedding table (WordLlama ``l2_supercat``, 32k Llama-2
  tokens x 256, distilled from Llama-2-70B's input embeddings) that ships *inside* the
  ``wordllama`` wheel on PyPI: the tokenizer and the weights are read from the installed package,
  nothing is downloaded at run time. Average pooling over tokens, like model2vec.

``default_embedder()`` is the one routing trains with: the hashed one. Measured on public routing
data (5-fold cross-validation inside the training part, see ``docs/routing.md``) it predicted
per-request adequacy better than the static table (log-loss 0.569 vs 0.578, kNN at the same
settings). ``semantic_embedder()`` (static when installed) is the one to serve as a general
purpose embedding (``POST /v1/embeddings``). ``embedder_by_name`` rebuilds the one a saved
predictor was trained with (the name and version travel in its manifest, and a mismatch is an
error rather than silently wrong neighbours).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from itertools import pairwise
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput

Matrix = npt.NDArray[np.float32]

_WORD = re.compile(r"\w+|[^\w\s]")


@runtime_checkable
class Embedder(Protocol):
    """Texts in, one L2-normalised float32 row per text out."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Matrix: ...


def _normalise(rows: npt.NDArray[np.floating]) -> Matrix:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(rows / norms, dtype=np.float32)


class HashedNgramEmbedder:
    """Signed feature hashing of lower-cased word unigrams and bigrams, sub-linear counts.

    ``crc32`` rather than ``hash()``: Python salts ``hash`` per process, and a saved index must
    mean the same thing after a restart.
    """

    name = "hashed-ngram"
    version = "1"

    def __init__(self, dim: int = 1024) -> None:
        self.dim = dim
        self._slots: dict[str, tuple[int, float]] = {}

    def _slot(self, feature: str) -> tuple[int, float]:
        slot = self._slots.get(feature)
        if slot is None:
            h = zlib.crc32(feature.encode("utf-8"))
            slot = (h % self.dim, 1.0 if (h >> 31) & 1 else -1.0)
            if len(self._slots) < 200_000:
                self._slots[feature] = slot
        return slot

    def embed(self, texts: Sequence[str]) -> Matrix:
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            counts: dict[int, float] = {}
            features = words + [f"{a} {b}" for a, b in pairwise(words)]
            for feature in features:
                index, sign = self._slot(feature)
                counts[index] = counts.get(index, 0.0) + sign
            if counts:
                idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                val = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                out[row, idx] = np.sign(val) * np.log1p(np.abs(val))
        return _normalise(out)


class StaticEmbedder:
    """Mean of static token vectors from the ``wordllama`` wheel's bundled table (256 dims)."""

    name = "wordllama-l2-supercat-256"
    version = "1"
    dim = 256

    def __init__(self) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer

            package = resources.files("wordllama")
        except ImportError as exc:  # the optional ``models`` extra is not installed
            raise InvalidInput(
                "the static embedder needs the 'wordllama' package (pip install wordllama)",
                field="embedder",
            ) from exc
        with resources.as_file(package / "tokenizers" / "l2_supercat_tokenizer_config.json") as tp:
            self._tokenizer = Tokenizer.from_file(str(tp))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        with resources.as_file(package / "weights" / "l2_supercat_256.safetensors") as wp:
            table = load_file(str(wp))["embedding.weight"]
        self._table = np.ascontiguousarray(table, dtype=np.float32)

    def embed(self, texts: Sequence[str]) -> Matrix:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        for row, encoding in enumerate(
            self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        ):
            ids = encoding.ids
            if ids:
                out[row] = self._table[np.asarray(ids, dtype=np.int64)].mean(axis=0)
        return _normalise(out)


@lru_cache(maxsize=4)
def _static() -> StaticEmbedder:
    return StaticEmbedder()


def embedder_by_name(name: str, version: str | None = None) -> Embedder:
    """The embedder a manifest names; an unknown name or version is ``InvalidInput``."""
    embedder: Embedder
    if name == HashedNgramEmbedder.name:
        embedder = HashedNgramEmbedder()
    elif name == StaticEmbedder.name:
        embedder = _static()
    else:
        raise InvalidInput(f"unknown embedder '{name}'", field="embedder")
    if version is not None and version != embedder.version:
        raise InvalidInput(f"embedder '{name}' is version {embedder.version}, the index was built "
                           f"with {version}: retrain (yard route train)", field="embedder")
    return embedder


def default_embedder() -> Embedder:
    """The routing embedder: hashed n-grams (measured better than the static table for it)."""
    return HashedNgramEmbedder()


def semantic_embedder() -> Embedder:
    """The static embedder when ``wordllama`` is installed, else the hashed fallback."""
    try:
        return _static()
    except InvalidInput:
        return HashedNgramEmbedder()
