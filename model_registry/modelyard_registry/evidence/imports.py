"""Store public outcome logs (parsed by ``routing.public_format``) as imported evidence.

Re-importing is idempotent: an item id already stored is replaced whole (its text, kind and every
model's outcome), so importing the same file twice, or a corrected one, leaves one copy.  Models
that are not in the catalogue are kept too: ``load_outcomes(include_external=True)`` hands them
to the replay, the live router never sees them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert
from sqlmodel import Session, col, select

from ..catalog import ModelEntry, utcnow
from ..routing.outcomes import Outcome
from .tables import ImportedItem, ImportedOutcome, bounded

CHUNK = 500
Progress = Callable[[int], None]  # outcomes written so far


@dataclass(frozen=True)
class ImportSummary:
    items: int
    outcomes: int
    models: list[str]
    external_models: list[str]


def import_outcomes(
    session: Session, outcomes: Sequence[Outcome], *, source: str = "",
    on_progress: Progress | None = None,
) -> ImportSummary:
    """Replace the stored items of ``outcomes`` by these, in one transaction (all or nothing)."""
    items: dict[str, Outcome] = {}
    rows: dict[tuple[str, str], Outcome] = {}
    for outcome in outcomes:
        items.setdefault(outcome.item_id, outcome)
        rows[(outcome.item_id, outcome.model)] = outcome  # a repeated line: the last one wins
    now = utcnow()
    ids = list(items)
    try:
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            session.execute(delete(ImportedOutcome).where(col(ImportedOutcome.item_id).in_(chunk)))
            session.execute(delete(ImportedItem).where(col(ImportedItem.item_id).in_(chunk)))
            session.execute(insert(ImportedItem), [
                {"item_id": i, "kind": items[i].kind, "text": bounded(items[i].text),
                 "source": source, "created_at": now}
                for i in chunk
            ])
        values = list(rows.values())
        for start in range(0, len(values), CHUNK):
            session.execute(insert(ImportedOutcome), [
                {"item_id": o.item_id, "model": o.model, "score": o.score,
                 "cost_usd": o.cost_usd, "created_at": now}
                for o in values[start:start + CHUNK]
            ])
            if on_progress is not None:
                on_progress(min(start + CHUNK, len(values)))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    models = sorted({o.model for o in values})
    known = set(session.exec(select(ModelEntry.name).where(col(ModelEntry.name).in_(models))))
    return ImportSummary(items=len(ids), outcomes=len(values), models=models,
                         external_models=[m for m in models if m not in known])
