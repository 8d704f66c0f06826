"""Greedy grammar-constrained sampling that asks the grammar about the best token first.

llama.cpp's grammar sampler, as llama-cpp-python chains it (penalties -> grammar -> greedy),
checks the *whole vocabulary* against the grammar at every step: it decodes each token's UTF-8
and walks the grammar's stacks with it.  With Qwen2.5's 151,936 tokens that costs about as much
as the 0.5B model's own decode step, so a JSON-constrained answer (extract, triage, tool calls)
ran at half the model's speed on every rung alike.

Under greedy decoding the answer is the highest-scoring token the grammar allows.  When the
highest-scoring token is allowed, checking that one token gives the same answer; only when the
grammar rejects it is the whole vocabulary checked.  So the output is token for token what the
stock chain samples (the same repeat penalty, applied the same way, and the same first-of-equals
tie break), at the cost of one grammar check per token in the common case.  llama.cpp's own
server samples grammars this way (``common_sampler_sample``: sample, then check).

Sampling with a temperature keeps llama-cpp-python's chain: there the allowed tokens' whole
distribution matters, not just the best one.
"""

from __future__ import annotations

import ctypes
import weakref
from collections import Counter, deque
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp.llama_grammar import LlamaGrammar


def _free(*samplers: Any) -> None:
    for sampler in samplers:
        llama_cpp.llama_sampler_free(sampler)


class CheckFirstGreedy:
    """A drop-in for llama-cpp-python's sampler chain (``sample(ctx, idx)``) at temperature 0.

    One instance serves one generation, as the chain it replaces: it holds the grammar's state
    and the repeat-penalty window of the tokens sampled so far.
    """

    def __init__(self, vocab: Any, grammar: LlamaGrammar, n_vocab: int, *,
                 penalty_last_n: int, penalty_repeat: float, penalty_freq: float = 0.0,
                 penalty_present: float = 0.0) -> None:
        self._grammar = llama_cpp.llama_sampler_init_grammar(
            vocab, grammar._grammar.encode(), grammar._root.encode())
        if not self._grammar:
            raise ValueError("the grammar could not be parsed")
        weakref.finalize(self, _free, self._grammar)
        self._n_vocab = n_vocab
        self._last_n = penalty_last_n
        self._repeat = penalty_repeat
        self._freq = penalty_freq
        self._present = penalty_present
        self._window: deque[int] = deque()
        self._counts: Counter[int] = Counter()
        self._one = (llama_cpp.llama_token_data * 1)()
        self._one_p = llama_cpp.llama_token_data_array(
            data=self._one, size=1, selected=-1, sorted=False)
        self._all: Any = None  # the whole-vocabulary array, made the first time it is needed
        self.full_checks = 0  # steps whose best token the grammar rejected (for benches, tests)
        self.steps = 0

    def sample(self, ctx: Any, idx: int) -> int:
        logits = np.ctypeslib.as_array(ctx.get_logits_ith(idx), shape=(self._n_vocab,))
        if self._counts:
            logits = self._penalised(logits)
        token = int(np.argmax(logits))
        self.steps += 1
        if not self._allows(token, float(logits[token])):
            self.full_checks += 1
            token = self._best_allowed(logits)
        llama_cpp.llama_sampler_accept(self._grammar, token)
        self._accept(token)
        return token

    def _penalised(self, logits: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """llama.cpp's penalties sampler, on the (at most ``last_n``) tokens in its window."""
        out = logits.copy()
        ids = np.fromiter(self._counts.keys(), dtype=np.int64, count=len(self._counts))
        counts = np.fromiter(self._counts.values(), dtype=np.float32, count=len(self._counts))
        values = out[ids]
        values = np.where(values <= 0, values * np.float32(self._repeat),
                          values / np.float32(self._repeat))
        out[ids] = values - (counts * np.float32(self._freq) + np.float32(self._present))
        return out

    def _accept(self, token: int) -> None:
        if self._last_n == 0:
            return
        self._counts[token] += 1
        if len(self._window) >= self._last_n:
            old = self._window.popleft()
            self._counts[old] -= 1
            if self._counts[old] == 0:
                del self._counts[old]
        self._window.append(token)

    def _allows(self, token: int, logit: float) -> bool:
        self._one[0].id = token  # type: ignore[assignment]  # ctypes converts the int
        self._one[0].logit = logit
        self._one_p.size, self._one_p.selected, self._one_p.sorted = 1, -1, False
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(self._one_p))
        return bool(np.isfinite(self._one[0].logit))

    def _best_allowed(self, logits: np.ndarray[Any, Any]) -> int:
        if self._all is None:
            data = (llama_cpp.llama_token_data * self._n_vocab)()
            view = np.ctypeslib.as_array(data)
            view["id"] = np.arange(self._n_vocab, dtype=np.int32)
            self._all = (data, view, llama_cpp.llama_token_data_array(
                data=data, size=self._n_vocab, selected=-1, sorted=False))
        _data, view, array = self._all
        view["logit"] = logits
        array.size, array.selected, array.sorted = self._n_vocab, -1, False
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(array))
        return int(np.argmax(view["logit"]))
