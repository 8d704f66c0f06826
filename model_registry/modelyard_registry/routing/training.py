"""`yard route train` and the worker's retrain: evidence -> predictor -> a new active version.

All stored evidence (``evidence.load_outcomes``) trains one predictor over the default embedder,
with the measured per-kind Scores as priors for models that have no per-item evidence.  Before
that, the same settings are fitted on four fifths of the requests (split by a hash of the item id,
so a request's outcomes for every model fall on one side) and scored on the rest: the Brier score
and the expected calibration error of the version's row say how far to trust it.

The artefact goes into the database with its version row, in one transaction
(``artefacts.record_version``), so a reader that sees the row always finds the whole predictor,
on whichever machine it runs.  ``export`` also writes it as files (``Predictor.save``).
"""

from __future__ import annotations

import shutil
import zlib
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlmodel import Session, select

from ..errors import InvalidInput
from ..evidence.loader import count_outcomes_since, load_outcomes
from ..scores import Score, current_scores
from ..settings import Settings
from .artefacts import RoutingVersion, active_version, record_version
from .embed import Embedder, default_embedder
from .outcomes import Outcome
from .predictor import Predictor, fit_predictor
from .tuning import curve_rows, served_curve

DEV_FOLDS = 5  # one request in five is held out for the dev figures
ECE_BINS = 10


def score_priors(session: Session) -> dict[tuple[str, str], float]:
    """(model, kind) -> the current measured Score's mean: the fallback for models without items.

    The current row is the router's (``current_scores``).
    """
    rows = session.exec(select(Score)).all()
    return {key: s.value for key, s in current_scores(rows).items()}


def is_dev(item_id: str) -> bool:
    return zlib.crc32(item_id.encode()) % DEV_FOLDS == 0


def dev_metrics(predictor: Predictor, dev: Sequence[Outcome]) -> dict[str, float]:
    """Brier score and expected calibration error of ``predictor`` on held-out outcomes."""
    col_of = {m: j for j, m in enumerate(predictor.models)}
    ps: list[float] = []
    ys: list[float] = []
    ws: list[float] = []
    by_kind: dict[str, list[Outcome]] = {}
    for o in dev:
        by_kind.setdefault(o.kind, []).append(o)
    for kind, rows in by_kind.items():
        texts = sorted({o.text for o in rows})
        row_of = {t: i for i, t in enumerate(texts)}
        p = predictor.predict_many(kind, texts)
        for o in rows:
            j = col_of.get(o.model)
            if j is None or np.isnan(p[row_of[o.text], j]):
                continue
            ps.append(float(p[row_of[o.text], j]))
            ys.append(o.score)
            ws.append(o.weight)
    if not ps:
        return {"n_dev": 0.0}
    pa, ya, wa = np.array(ps), np.array(ys), np.array(ws)
    brier = float(np.average((pa - ya) ** 2, weights=wa))
    bins = np.minimum((pa * ECE_BINS).astype(int), ECE_BINS - 1)
    ece = 0.0
    for b in range(ECE_BINS):
        mask = bins == b
        if mask.any():
            share = wa[mask].sum() / wa.sum()
            ece += share * abs(float(np.average(pa[mask] - ya[mask], weights=wa[mask])))
    return {"n_dev": float(len(ps)), "brier": round(brier, 4), "ece": round(ece, 4)}


def train(
    session: Session,
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    export: Path | None = None,
    budget_curve: bool = True,
    **hyper: object,
) -> RoutingVersion:
    """Train on every stored outcome and make the result the active version.

    ``export`` also saves the predictor's files in that folder (written aside, renamed into
    place).  ``budget_curve`` also measures the version's cost/quality curve by cross-validation
    (five more fits; ``tuning.served_curve``), which is what serves a ``max_cost_ratio``.
    Raises ``InvalidInput`` (field ``evidence``) when there is nothing to learn from.
    """
    started = datetime.now(UTC)
    outcomes = load_outcomes(session)
    if not outcomes:
        raise InvalidInput("no routing evidence yet: run `yard models eval MODEL` or import "
                           "outcomes (`yard route import`) first", field="evidence")
    embedder = embedder or default_embedder()
    priors = score_priors(session)
    train_part = [o for o in outcomes if not is_dev(o.item_id)]
    dev_part = [o for o in outcomes if is_dev(o.item_id)]
    metrics: dict[str, float] = {"n_dev": 0.0}
    if train_part and dev_part:
        metrics = dev_metrics(fit_predictor(train_part, embedder, priors=priors, **hyper),
                              dev_part)
    predictor = fit_predictor(outcomes, embedder, priors=priors, **hyper)
    curve = curve_rows(served_curve(outcomes, embedder, hyper)) if budget_curve else []
    version = started.strftime("%Y%m%dT%H%M%S%fZ")
    if export is not None:
        staging = export.with_name(f".{export.name}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        predictor.save(staging)
        shutil.rmtree(export, ignore_errors=True)
        staging.rename(export)
    return record_version(
        session, predictor, version=version, created_at=started, method=predictor.hyper.method,
        embedder=f"{embedder.name}@{embedder.version}", outcomes=len(outcomes),
        items=len({(o.kind, o.item_id) for o in outcomes}), models=list(predictor.models),
        kinds=list(predictor.kinds),
        sources=dict(Counter(str(o.source) for o in outcomes)), metrics=metrics,
        budget_curve=curve,
    )


def new_evidence(session: Session) -> int:
    """Outcomes stored since the active version was trained (all of them if none was)."""
    active = active_version(session)
    since = active.created_at if active is not None else datetime(1970, 1, 1, tzinfo=UTC)
    return count_outcomes_since(session, since)


def retrain_if_due(session: Session, settings: Settings) -> RoutingVersion | None:
    """Train a new version when ``route_retrain_min_new`` outcomes arrived since the active one.

    0 turns automatic retraining off.  Returns the new version, or None when none was due.
    """
    threshold = settings.route_retrain_min_new
    if threshold <= 0 or new_evidence(session) < threshold:
        return None
    return train(session, settings)


__all__ = ["dev_metrics", "new_evidence", "retrain_if_due", "score_priors", "train"]
