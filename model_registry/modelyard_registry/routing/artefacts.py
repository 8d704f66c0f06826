"""Trained predictors, versioned in the database: one ``routing_versions`` row + its artefact.

The ``routing_versions`` row says when a version was trained, on how much evidence and how well it
did on its dev split; its ``routing_artefacts`` row holds the predictor itself (the JSON manifest,
the arrays as ``.npz`` bytes loaded with ``allow_pickle=False``, the neighbours' texts as JSON), so
API processes and workers on different machines share it through the database they already
share: no volume to mount.  Both rows are written in one transaction, so a reader that sees a
version always finds its artefact.  The newest row is the active predictor: a retrain never edits
a version, it adds one, so a process that loaded an older one keeps a consistent artefact until
it notices the newer row.

Versions trained before the artefact table existed (migration 0009) kept their files under
``$MODELYARD_HOME/routing/<version>/``; ``load_version`` still reads those, and
``yard route train --export DIR`` writes the same files for inspection or backup.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Column, ForeignKey, LargeBinary, String, text
from sqlmodel import Field, Session, SQLModel, col, select

from ..catalog import utcnow
from ..settings import Settings
from .predictor import Predictor, SavedPredictor, load_predictor, predictor_from_parts


class RoutingVersion(SQLModel, table=True):
    __tablename__ = "routing_versions"

    version: str = Field(primary_key=True, description="UTC training time, e.g. 20261125T1200Z.")
    created_at: datetime = Field(default_factory=utcnow, index=True)
    method: str = Field(description="The predictor's estimator (knn | logistic).")
    embedder: str = Field(description="Embedder name and version the index was built with.")
    outcomes: int = Field(description="Evidence rows trained on.")
    items: int = Field(description="Distinct requests among them.")
    models: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    kinds: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sources: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False),
                                    description="Outcomes per evidence source.")
    metrics: dict[str, float] = Field(default_factory=dict,
                                      sa_column=Column(JSON, nullable=False),
                                      description="Dev-split figures: brier, ece, n.")
    budget_curve: list[dict[str, float]] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default=text("'[]'")),
        description="Cross-validated {lam, cost_ratio, quality_ratio} points: how a cost budget "
        "(max_cost_ratio) is served. Empty: trained on too little evidence.")


class RoutingArtefact(SQLModel, table=True):
    """The trained predictor of one version (no pickle: JSON and ``.npz`` bytes)."""

    __tablename__ = "routing_artefacts"

    version: str = Field(sa_column=Column(
        String, ForeignKey("routing_versions.version", ondelete="CASCADE"), primary_key=True))
    created_at: datetime = Field(default_factory=utcnow)
    format_version: int = Field(description="Predictor format; another one is refused.")
    manifest: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    arrays: bytes = Field(sa_column=Column(LargeBinary, nullable=False),
                          description="numpy .npz, read with allow_pickle=False.")
    items: list[dict[str, str]] = Field(default_factory=list,
                                        sa_column=Column(JSON, nullable=False),
                                        description="kind, item_id, text of each indexed item.")
    size_bytes: int = Field(description="Bytes of arrays + items, for `yard route train`.")


class RoutingVersionPublic(BaseModel):
    """A trained version as `yard route train --json` and the API show it."""

    version: str
    created_at: datetime
    method: str
    embedder: str
    outcomes: int
    items: int
    models: list[str]
    kinds: list[str]
    sources: dict[str, int]
    metrics: dict[str, float]
    budget_curve: list[dict[str, float]] = []
    stored: str = "database"
    artefact_bytes: int | None = None
    path: str | None = None  # the exported files, when asked for (``--export``)

    @classmethod
    def of(cls, row: RoutingVersion, *, artefact_bytes: int | None = None,
           path: str | None = None) -> RoutingVersionPublic:
        return cls(**row.model_dump(), artefact_bytes=artefact_bytes, path=path)


def routing_home(settings: Settings) -> Path:
    return settings.home_dir / "routing"


def artefact_dir(settings: Settings, version: str) -> Path:
    return routing_home(settings) / version


def active_version(session: Session) -> RoutingVersion | None:
    """The newest trained version (one indexed query)."""
    query = select(RoutingVersion).order_by(col(RoutingVersion.created_at).desc(),
                                            col(RoutingVersion.version).desc()).limit(1)
    return session.exec(query).first()


def list_versions(session: Session, limit: int = 20) -> list[RoutingVersion]:
    query = select(RoutingVersion).order_by(col(RoutingVersion.created_at).desc()).limit(limit)
    return list(session.exec(query).all())


def record_version(session: Session, predictor: Predictor | None = None,
                   **fields: Any) -> RoutingVersion:
    """Add a version row and, given ``predictor``, its artefact, committed together."""
    row = RoutingVersion(**fields)
    session.add(row)
    if predictor is not None:
        parts = predictor.to_parts()
        session.flush()  # the version row first: the artefact's foreign key points at it
        session.add(RoutingArtefact(
            version=row.version, created_at=row.created_at,
            format_version=int(str(parts.manifest["format_version"])),
            manifest=dict(parts.manifest), arrays=parts.arrays,
            items=[dict(i) for i in parts.items],
            size_bytes=len(parts.arrays) + sum(len(i["text"]) for i in parts.items)))
    session.commit()
    session.refresh(row)
    return row


def artefact_size(session: Session, version: str) -> int | None:
    """The stored artefact's size in bytes, None when the version has none in the database."""
    query = select(RoutingArtefact.size_bytes).where(RoutingArtefact.version == version)
    return session.exec(query).first()


def load_version(session: Session, settings: Settings, version: str) -> Predictor:
    """The predictor of ``version``: from the database, or a pre-0009 version's files.

    Raises ``InvalidInput`` (field ``predictor``) when neither holds a loadable predictor.
    """
    row = session.get(RoutingArtefact, version)
    if row is None:
        return load_predictor(artefact_dir(settings, version))
    saved = SavedPredictor(manifest=row.manifest, arrays=row.arrays, items=row.items)
    return predictor_from_parts(saved, where=f"routing version {version}")


__all__ = ["RoutingArtefact", "RoutingVersion", "RoutingVersionPublic", "active_version",
           "artefact_dir", "artefact_size", "list_versions", "load_version", "record_version",
           "routing_home"]
