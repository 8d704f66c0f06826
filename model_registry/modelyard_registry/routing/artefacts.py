"""Trained predictors: files under ``$MODELYARD_HOME/routing/<version>/``, one row each.

The files are the predictor (``Predictor.save``); the ``routing_versions`` row says when it was
trained, on how much evidence, and how well it did on its dev split.  The newest row is the active
predictor: a retrain never edits a version, it adds one, so a process that loaded an older one
keeps a consistent artefact until it notices the newer row.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Column
from sqlmodel import Field, Session, SQLModel, col, select

from ..catalog import utcnow
from ..settings import Settings


class RoutingVersion(SQLModel, table=True):
    __tablename__ = "routing_versions"

    version: str = Field(primary_key=True, description="Directory name under home/routing.")
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
    path: str

    @classmethod
    def of(cls, row: RoutingVersion, settings: Settings) -> RoutingVersionPublic:
        return cls(**row.model_dump(), path=str(artefact_dir(settings, row.version)))


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


def record_version(session: Session, **fields: Any) -> RoutingVersion:
    row = RoutingVersion(**fields)
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


__all__ = ["RoutingVersion", "RoutingVersionPublic", "active_version", "artefact_dir",
           "list_versions", "record_version", "routing_home"]
