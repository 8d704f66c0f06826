"""Per-request adequacy: each candidate's probability of an adequate answer to this request.

The evidence is a bag of ``Outcome`` rows (model, kind, request text, score). Requests are
embedded once; within a kind the embeddings are centred on the kind's mean and re-normalised,
because requests of one kind share most of their text (a system prompt, few-shot examples) and
the shared part would otherwise make every request each other's nearest neighbour.

Two estimators sit behind one interface, chosen by ``method``:

- ``knn`` (the default, and the one kept on the public benchmark; see ``docs/routing.md``):
  a similarity-weighted success rate over the ``k`` nearest evaluated items of the same kind,
  shrunk toward the model's per-kind mean with a prior worth some outcomes, so thin evidence
  falls back to the per-kind score smoothly. With ``adapt`` that weight is chosen per kind by
  leave-one-out log-loss on the kind's own items: text that does not predict the grades leaves
  the per-kind mean in charge. Its ``evidence`` is the sum of the
  neighbour weights, its ``neighbours`` the items that carried it.
- ``logistic``: one L2-regularised logistic regression per model over the centred embedding
  plus a per-kind intercept (fitted by Newton's method; a handful of iterations on ~260 columns).

The shrunk success rate is a probability by construction (a posterior mean under a prior worth
``prior_strength`` outcomes); ``calibrate=True`` adds an isotonic map fitted on out-of-fold
predictions inside the training outcomes. On public data that map made both the log-loss and the
routing worse in cross-validation (it is pooled over models and flattens their differences), so
it is off by default; replay reports the expected calibration error either way.

Everything saves as numpy arrays plus a JSON manifest (no pickle), and ``load_predictor``
refuses a manifest of another version or an embedder that is not the one it was trained with.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from .embed import Embedder, embedder_by_name
from .outcomes import Neighbour, Outcome, Prediction

FORMAT_VERSION = 1
Method = Literal["knn", "logistic"]
F = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Hyper:
    """The predictor's knobs.

    The defaults were chosen by 5-fold cross-validation inside the RouterBench training part
    (log-loss, and routing quality at cost ratios 0.08 / 0.15 / 0.30).
    """

    method: Method = "knn"
    k: int = 80
    temperature: float = 0.05
    prior_strength: float = 16.0
    l2: float = 3.0
    components: int = 64
    dims: int = 0
    adapt: bool = True
    centre: bool = True
    calibrate: bool = False
    folds: int = 5
    neighbours_shown: int = 3

    def to_json(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


@dataclass
class _Kind:
    """The evidence of one kind: items x models, centred unit embeddings, per-model priors."""

    centre: F  # (d,)
    z: F32  # (n, d) centred, normalised item embeddings (float32: the serving-path matvec)
    item_ids: list[str]
    texts: list[str]
    y: F  # (n, m) weighted mean score per item and model (0 where none)
    w: F  # (n, m) total outcome weight per item and model (0 where none)
    prior: F  # (m,) per-kind mean score; nan where the model has no outcome of this kind
    coef: F | None = None  # (m, d + 1) logistic weights and intercept
    basis: F | None = None  # (embedding dim, dims): projection onto the top principal directions
    strength: float | None = None  # this kind's prior strength, when chosen from its evidence

    def project(self, e: F, centre: bool) -> F:
        """Embedding rows -> this kind's space: centred, projected, unit length."""
        z = _unit(e - self.centre) if centre else e
        return _unit(z @ self.basis) if self.basis is not None else z


def _unit(rows: F) -> F:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return np.asarray(rows / np.where(norms == 0, 1.0, norms), dtype=np.float64)


def _fit_logistic(x: F, y: F, w: F, l2: float, iters: int = 12) -> F:
    """Weighted L2 logistic regression (intercept unpenalised) by Newton's method."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 1e-6
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(xb @ beta)))
        grad = xb.T @ (w * (p - y)) + penalty * beta
        hess = (xb * (w * p * (1 - p))[:, None]).T @ xb + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.abs(step).max()) < 1e-6:
            break
    return beta


def _principal(z: F, r: int) -> F:
    """The top ``r`` right singular vectors of ``z`` (d, r), via the small n x n Gram matrix."""
    values, vectors = np.linalg.eigh(z @ z.T)
    keep = np.argsort(-values)[:r]
    keep = keep[values[keep] > 1e-9]
    return np.asarray((z.T @ vectors[:, keep]) / np.sqrt(values[keep]), dtype=np.float64)


STRENGTHS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 256.0, 1e6)


def _choose_strength(ev: _Kind, h: Hyper, sample: int = 1000) -> float:
    """The prior strength with the best leave-one-out log-loss over this kind's own items.

    Empirical Bayes per kind: where the request text predicts the grades (code tasks, distinct
    request types) the neighbours get more say; where it does not (a binary-choice benchmark
    whose items all look alike) the estimate stays at the per-kind mean.
    """
    n = ev.z.shape[0]
    if n < 10:
        return h.prior_strength
    queries = np.random.default_rng(0).permutation(n)[: min(n, sample)]
    sims = np.einsum("qd,nd->qn", ev.z[queries], ev.z).astype(np.float64)
    sims[np.arange(len(queries)), queries] = -np.inf  # leave the item itself out
    k = min(h.k, n - 1)
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    top_sims = np.take_along_axis(sims, top, axis=1)
    weights = np.exp((top_sims - top_sims.max(axis=1, keepdims=True)) / h.temperature)
    sim_w = weights[:, :, None] * ev.w[top]  # (q, k, m)
    evidence = sim_w.sum(axis=1)
    hits = (sim_w * ev.y[top]).sum(axis=1)
    prior = np.nan_to_num(ev.prior, nan=0.5)[None, :]
    truth, mass = ev.y[queries], ev.w[queries]
    best, best_loss = h.prior_strength, math.inf
    for a in STRENGTHS:
        p = np.clip((hits + a * prior) / (evidence + a), 1e-4, 1 - 1e-4)
        loss = -float((mass * (truth * np.log(p) + (1 - truth) * np.log(1 - p))).sum())
        if loss < best_loss - 1e-9:
            best, best_loss = a, loss
    return best


def _isotonic(x: F, y: F, w: F) -> tuple[F, F]:
    """Pool-adjacent-violators: knots (x, y) of a non-decreasing fit, interpolated linearly."""
    order = np.argsort(x, kind="mergesort")
    xs, ys, ws = x[order], y[order], w[order]
    blocks: list[list[float]] = []  # [sum_wy, sum_w, x_lo, x_hi]
    for xi, yi, wi in zip(xs, ys, ws, strict=True):
        blocks.append([wi * yi, wi, xi, xi])
        while len(blocks) > 1 and (blocks[-2][0] / blocks[-2][1]
                                   >= blocks[-1][0] / blocks[-1][1]):
            last = blocks.pop()
            blocks[-1][0] += last[0]
            blocks[-1][1] += last[1]
            blocks[-1][3] = last[3]
    knots_x: list[float] = []
    knots_y: list[float] = []
    for sum_wy, sum_w, lo, hi in blocks:
        value = sum_wy / sum_w
        knots_x += [lo, hi] if hi > lo else [lo]
        knots_y += [value, value] if hi > lo else [value]
    return np.asarray(knots_x), np.asarray(knots_y)


class Predictor:
    """Predicts per-request adequacy for the models it has evidence (or a prior) for."""

    def __init__(self, *, embedder: Embedder, hyper: Hyper, models: list[str],
                 kinds: dict[str, _Kind], priors: dict[tuple[str, str], float],
                 calibration: tuple[F, F] | None) -> None:
        self.embedder = embedder
        self.hyper = hyper
        self.models = models
        self._index = {m: i for i, m in enumerate(models)}
        self._kinds = kinds
        self._priors = priors
        self._calibration = calibration

    @property
    def kinds(self) -> list[str]:
        """Kinds with per-request evidence (for the others the per-kind score decides)."""
        return sorted(self._kinds)

    def calibrated(self, raw: F) -> F:
        if self._calibration is None:
            return raw
        kx, ky = self._calibration
        return np.asarray(np.interp(raw, kx, ky), dtype=np.float64)

    def _raw(self, kind: _Kind, z: F) -> tuple[F, F, npt.NDArray[np.int64], F]:
        """Raw p and evidence for every model (m,), plus the top items and their similarities."""
        h = self.hyper
        # einsum, not BLAS: one request is one small matvec, and waking BLAS threads between
        # requests costs ~10 ms on a busy 2-core machine (measured in bench/router_latency.py)
        sims = np.einsum("ij,j->i", kind.z, z.astype(np.float32)).astype(np.float64)
        k = min(h.k, sims.shape[0])
        top = np.argpartition(-sims, k - 1)[:k] if k < sims.shape[0] else np.arange(k)
        top = top[np.argsort(-sims[top])]
        prior = np.nan_to_num(kind.prior, nan=0.5)
        if h.method == "logistic" and kind.coef is not None:
            logits = kind.coef[:, :-1] @ z + kind.coef[:, -1]
            p = 1.0 / (1.0 + np.exp(-logits))
            evidence = kind.w.sum(axis=0)
        else:
            sim_w = np.exp((sims[top] - sims[top[0]]) / h.temperature)[:, None] * kind.w[top]
            evidence = sim_w.sum(axis=0)
            a = h.prior_strength if kind.strength is None else kind.strength
            p = ((sim_w * kind.y[top]).sum(axis=0) + a * prior) / (evidence + a)
        return p, evidence, top, sims[top]

    def _embed(self, kind: _Kind, texts: Sequence[str]) -> F:
        return kind.project(self.embedder.embed(texts).astype(np.float64), self.hyper.centre)

    def predict_many(self, kind: str, texts: Sequence[str]) -> F:
        """Calibrated p for every text x every model of ``self.models`` (nan: no evidence)."""
        out = np.full((len(texts), len(self.models)), np.nan)
        ev = self._kinds.get(kind)
        if ev is None:
            return out
        z = self._embed(ev, texts)
        has = ~np.isnan(ev.prior)
        for row in range(len(texts)):
            p, _, _, _ = self._raw(ev, z[row])
            out[row, has] = self.calibrated(p[has])
        return out

    def predict(self, kind: str, text: str, models: Sequence[str]) -> dict[str, Prediction]:
        """Each known model's prediction; a model with only a per-kind prior gets evidence 0."""
        ev = self._kinds.get(kind)
        result: dict[str, Prediction] = {}
        if ev is not None:
            z = self._embed(ev, [text])[0]
            p, evidence, top, top_sims = self._raw(ev, z)
            pc = self.calibrated(p)
        for name in models:
            prior = self._priors.get((name, kind))
            j = self._index.get(name)
            if ev is None or j is None or math.isnan(ev.prior[j]):
                if prior is not None:
                    result[name] = Prediction(model=name, p=prior, evidence=0.0, prior=prior)
                continue
            shown: list[Neighbour] = []
            for i, s in zip(top.tolist(), top_sims.tolist(), strict=True):
                if len(shown) == self.hyper.neighbours_shown:
                    break
                if ev.w[i, j] > 0:
                    shown.append(Neighbour(item_id=ev.item_ids[i], text=ev.texts[i],
                                           similarity=s, score=float(ev.y[i, j])))
            result[name] = Prediction(model=name, p=float(pc[j]), evidence=float(evidence[j]),
                                      prior=float(ev.prior[j]), neighbours=tuple(shown))
        return result

    def to_parts(self) -> SavedPredictor:
        """The predictor as JSON + an ``.npz`` (no pickle): what a file or a database row keeps."""
        arrays: dict[str, F] = {}
        kinds_meta = []
        items: list[dict[str, str]] = []
        for n, (name, ev) in enumerate(sorted(self._kinds.items())):
            kinds_meta.append({"kind": name, "items": len(ev.item_ids), "strength": ev.strength})
            for key in ("centre", "z", "y", "w", "prior"):
                arrays[f"{n}_{key}"] = getattr(ev, key)
            for key in ("coef", "basis"):
                if getattr(ev, key) is not None:
                    arrays[f"{n}_{key}"] = getattr(ev, key)
            items += [{"kind": name, "item_id": item_id, "text": text}
                      for item_id, text in zip(ev.item_ids, ev.texts, strict=True)]
        if self._calibration is not None:
            arrays["calibration_x"], arrays["calibration_y"] = self._calibration
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)  # type: ignore[arg-type]
        manifest: dict[str, object] = {
            "format_version": FORMAT_VERSION,
            "embedder": {"name": self.embedder.name, "version": self.embedder.version},
            "hyper": self.hyper.to_json(),
            "models": self.models,
            "kinds": kinds_meta,
            "priors": [{"model": m, "kind": k, "score": s} for (m, k), s in self._priors.items()],
        }
        return SavedPredictor(manifest=manifest, arrays=buffer.getvalue(), items=items)

    def save(self, directory: Path) -> None:
        """``manifest.json`` + ``arrays.npz`` + ``items.jsonl`` (texts for the neighbours)."""
        parts = self.to_parts()
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "arrays.npz").write_bytes(parts.arrays)
        with (directory / "items.jsonl").open("w", encoding="utf-8") as out:
            for row in parts.items:
                out.write(json.dumps(row) + "\n")
        (directory / "manifest.json").write_text(json.dumps(parts.manifest, indent=1))


@dataclass(frozen=True)
class SavedPredictor:
    """A predictor at rest: the manifest, the arrays as ``.npz`` bytes, the neighbours' texts."""

    manifest: Mapping[str, object]
    arrays: bytes
    items: Sequence[Mapping[str, str]]


def load_predictor(directory: Path) -> Predictor:
    """Rebuild a predictor saved under ``directory``; see ``predictor_from_parts``."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        arrays = (directory / "arrays.npz").read_bytes()
        rows = [json.loads(line) for line in
                (directory / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{directory}: not a saved predictor ({exc})",
                           field="predictor") from exc
    return predictor_from_parts(SavedPredictor(manifest, arrays, rows), where=str(directory))


def predictor_from_parts(saved: SavedPredictor, *, where: str = "predictor") -> Predictor:
    """Rebuild a saved predictor; another format version or embedder is ``InvalidInput``."""
    manifest: dict[str, Any] = dict(saved.manifest)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise InvalidInput(f"{where}: predictor format {manifest.get('format_version')}, "
                           f"expected {FORMAT_VERSION}: retrain", field="predictor")
    try:
        data = np.load(io.BytesIO(saved.arrays), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{where}: not a saved predictor ({exc})", field="predictor") from exc
    embedder = embedder_by_name(manifest["embedder"]["name"], manifest["embedder"]["version"])
    texts: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in saved.items:
        texts[row["kind"]].append((row["item_id"], row["text"]))
    kinds: dict[str, _Kind] = {}
    for n, meta in enumerate(manifest["kinds"]):
        name = meta["kind"]
        kinds[name] = _Kind(
            centre=data[f"{n}_centre"], z=data[f"{n}_z"], y=data[f"{n}_y"], w=data[f"{n}_w"],
            prior=data[f"{n}_prior"], coef=data.get(f"{n}_coef"), basis=data.get(f"{n}_basis"),
            item_ids=[i for i, _ in texts[name]], texts=[t for _, t in texts[name]],
            strength=meta.get("strength"))
    calibration = ((data["calibration_x"], data["calibration_y"])
                   if "calibration_x" in data else None)
    return Predictor(embedder=embedder, hyper=Hyper(**manifest["hyper"]),
                     models=list(manifest["models"]), kinds=kinds,
                     priors={(p["model"], p["kind"]): float(p["score"])
                             for p in manifest["priors"]},
                     calibration=calibration)


def _fold_of(item_id: str, folds: int) -> int:
    return int(hashlib.sha256(item_id.encode()).hexdigest(), 16) % folds


def _build(outcomes: Sequence[Outcome], embeddings: Mapping[tuple[str, str], F], models: list[str],
           hyper: Hyper) -> dict[str, _Kind]:
    index = {m: i for i, m in enumerate(models)}
    by_kind: dict[str, dict[str, int]] = defaultdict(dict)
    texts: dict[tuple[str, str], str] = {}
    for o in outcomes:
        by_kind[o.kind].setdefault(o.item_id, len(by_kind[o.kind]))
        texts[(o.kind, o.item_id)] = o.text
    kinds: dict[str, _Kind] = {}
    for kind, items in by_kind.items():
        ids = list(items)
        e = np.stack([embeddings[(kind, i)] for i in ids]).astype(np.float64)
        centre = e.mean(axis=0) if hyper.centre else np.zeros(e.shape[1])
        z = _unit(e - centre) if hyper.centre else e
        basis = None
        if 0 < hyper.dims < z.shape[1]:
            basis = _principal(z, hyper.dims)
            z = _unit(z @ basis)
        kinds[kind] = _Kind(centre=centre, z=z.astype(np.float32), basis=basis, item_ids=ids,
                            texts=[texts[(kind, i)] for i in ids],
                            y=np.zeros((len(ids), len(models))),
                            w=np.zeros((len(ids), len(models))),
                            prior=np.full(len(models), np.nan))
    for o in outcomes:
        ev = kinds[o.kind]
        i, j = by_kind[o.kind][o.item_id], index[o.model]
        ev.y[i, j] += o.weight * o.score
        ev.w[i, j] += o.weight
    for ev in kinds.values():
        total = ev.w.sum(axis=0)
        has = total > 0
        ev.prior[has] = (ev.y.sum(axis=0)[has]) / total[has]
        ev.y = np.divide(ev.y, ev.w, out=np.zeros_like(ev.y), where=ev.w > 0)
        if hyper.method == "knn" and hyper.adapt:
            ev.strength = _choose_strength(ev, hyper)
        if hyper.method == "logistic":
            # Fit in the kind's top principal directions (few items, many dimensions), then map
            # the weights back so prediction is one dot product in the embedding space.
            z64 = ev.z.astype(np.float64)
            basis = _principal(z64, hyper.components)
            x = z64 @ basis
            coef = np.zeros((len(models), z64.shape[1] + 1))
            for col in np.flatnonzero(has).tolist():
                rows = ev.w[:, col] > 0
                beta = _fit_logistic(x[rows], ev.y[rows, col], ev.w[rows, col], hyper.l2)
                coef[col, :-1], coef[col, -1] = basis @ beta[:-1], beta[-1]
            ev.coef = coef
    return kinds


def fit_predictor(outcomes: Sequence[Outcome], embedder: Embedder, *,
                  priors: Mapping[tuple[str, str], float] | None = None,
                  **hyper: object) -> Predictor:
    """Fit on ``outcomes``; ``priors`` ((model, kind) -> per-kind score) cover models without any.

    With ``calibrate`` on, the isotonic map is fitted on out-of-fold predictions (items split by
    a hash of their id into ``folds``), then the final model is refitted on everything.
    """
    if not outcomes:
        raise InvalidInput("no outcomes to learn from", field="outcomes")
    try:
        h = Hyper(**hyper)  # type: ignore[arg-type]
    except TypeError as exc:
        raise InvalidInput(f"unknown predictor setting: {exc}", field="hyper") from exc
    models = sorted({o.model for o in outcomes})
    keys = sorted({(o.kind, o.item_id) for o in outcomes})
    text_of = {(o.kind, o.item_id): o.text for o in outcomes}
    matrix = embedder.embed([text_of[k] for k in keys]).astype(np.float64)
    embeddings = {k: matrix[n] for n, k in enumerate(keys)}
    kinds = _build(outcomes, embeddings, models, h)
    all_priors = dict(priors or {})
    for name, ev in kinds.items():
        for j, m in enumerate(models):
            if not math.isnan(ev.prior[j]):
                all_priors.setdefault((m, name), float(ev.prior[j]))
    calibration = None
    if h.calibrate and h.folds > 1:
        raw, truth, weight = _out_of_fold(outcomes, embeddings, models, h, embedder)
        if raw.size >= 20:
            calibration = _isotonic(raw, truth, weight)
    return Predictor(embedder=embedder, hyper=h, models=models, kinds=kinds,
                     priors=all_priors, calibration=calibration)


def _out_of_fold(outcomes: Sequence[Outcome], embeddings: Mapping[tuple[str, str], F],
                 models: list[str], h: Hyper, embedder: Embedder) -> tuple[F, F, F]:
    raw: list[float] = []
    truth: list[float] = []
    weight: list[float] = []
    index = {m: i for i, m in enumerate(models)}
    uncal = Hyper(**{**h.to_json(), "calibrate": False})  # type: ignore[arg-type]
    for fold in range(h.folds):
        train = [o for o in outcomes if _fold_of(o.item_id, h.folds) != fold]
        held = [o for o in outcomes if _fold_of(o.item_id, h.folds) == fold]
        if not train or not held:
            continue
        part = Predictor(embedder=embedder, hyper=uncal, models=models,
                         kinds=_build(train, embeddings, models, uncal), priors={},
                         calibration=None)
        cache: dict[tuple[str, str], F] = {}
        for o in held:
            ev = part._kinds.get(o.kind)
            if ev is None or math.isnan(ev.prior[index[o.model]]):
                continue
            key = (o.kind, o.item_id)
            if key not in cache:
                cache[key] = part._raw(ev, ev.project(embeddings[key][None, :], h.centre)[0])[0]
            raw.append(float(cache[key][index[o.model]]))
            truth.append(o.score)
            weight.append(o.weight)
    return np.asarray(raw), np.asarray(truth), np.asarray(weight)
