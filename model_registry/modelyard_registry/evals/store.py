"""Operators' own eval suites in the database: items and metric config, versioned by content.

``yard evals add`` and ``POST /v1/evals`` both go through ``add_suite``: every item is checked
before anything is written, and a bad one is an ``InvalidInput`` naming its line (file) or index
(API) and field.  Adding a suite under a name that exists replaces it when the content differs
(a new version, so its new Scores never mix with the old ones) and changes nothing when not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy import JSON, Column
from sqlmodel import Field as TableField
from sqlmodel import Session, SQLModel, col, select

from ..catalog import Backend, Capability, find_model, utcnow
from ..errors import InvalidInput, NotFound
from ..taskspec import KIND_RE, TaskKind, check_kind_name
from .custom import (
    ConfigError,
    Grader,
    ItemError,
    Metric,
    SuiteConfig,
    check_config,
    parse_item,
)
from .metrics import METRICS
from .suites import SUITE_KINDS, Suite, load_suite

Added = Literal["created", "replaced", "unchanged"]
Locate = Callable[[int, str], tuple[str, str]]  # (index, field) -> (message prefix, field path)


class EvalSuiteRow(SQLModel, table=True):
    """One custom suite; ``items`` are stored as given, checked against ``metric`` on the way in."""

    __tablename__ = "eval_suites"

    id: int | None = TableField(default=None, primary_key=True)
    name: str = TableField(index=True, unique=True, max_length=63)
    kind: str = TableField(index=True)
    metric: str
    config: dict[str, Any] = TableField(default_factory=dict,
                                        sa_column=Column(JSON, nullable=False))
    items: list[dict[str, Any]] = TableField(default_factory=list,
                                             sa_column=Column(JSON, nullable=False))
    version: str
    created_at: datetime = TableField(default_factory=utcnow)
    updated_at: datetime = TableField(default_factory=utcnow)


class SuiteCreate(BaseModel):
    """The body of ``POST /v1/evals`` (the CLI builds the same from its flags and file)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str
    metric: Metric
    config: SuiteConfig = Field(default_factory=SuiteConfig)
    items: list[JsonValue] = Field(min_length=1, max_length=10_000)


class SuitePublic(BaseModel):
    """A suite as ``GET /v1/evals`` and ``yard evals list --json`` show it."""

    name: str
    kind: str
    metric: str
    version: str
    n_items: int
    builtin: bool
    judge_model: str | None = None
    labels: list[str] | None = None
    updated_at: datetime | None = None


def api_locate(index: int, field: str) -> tuple[str, str]:
    return f"items.{index}.{field}", f"items.{index}.{field}"


def add_suite(session: Session, suite_in: SuiteCreate, *, locate: Locate = api_locate
              ) -> tuple[SuitePublic, Added]:
    """Check everything, then insert or replace; returns the suite and what happened."""
    if not KIND_RE.fullmatch(suite_in.name):
        raise InvalidInput(f"invalid suite name {suite_in.name!r}: use 2-40 lowercase letters, "
                           "digits, '_' or '-', starting with a letter", field="name")
    if suite_in.name in SUITE_KINDS or suite_in.name == TaskKind.chat:
        raise InvalidInput(f"{suite_in.name!r} is a built-in suite; pick another name",
                           field="name")
    kind = str(check_kind_name(suite_in.kind))
    try:
        check_config(suite_in.metric, suite_in.config)
    except ConfigError as exc:
        raise InvalidInput(exc.message, field=exc.field) from None
    judge = suite_in.config.judge_model
    if judge is not None:
        entry = find_model(session, judge)
        if entry is None:
            raise InvalidInput(f"judge model {judge!r} is not in the catalogue",
                               field="judge_model")
        if entry.backend == Backend.llama_cpp and Capability.chat not in entry.capabilities:
            raise InvalidInput(f"judge model {judge!r} cannot chat (no chat template)",
                               field="judge_model")
    items: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(suite_in.items):
        try:
            item = parse_item(raw, suite_in.metric, suite_in.config)
        except ItemError as exc:
            prefix, field = locate(index, exc.field)
            raise InvalidInput(f"{prefix}: {exc.message}", field=field) from None
        if item.id in seen:
            prefix, field = locate(index, "id")
            raise InvalidInput(f"{prefix}: duplicate id {item.id!r}", field=field)
        seen[item.id] = index
        items.append(item.model_dump(mode="json"))
    config = suite_in.config.model_dump(mode="json", exclude_defaults=True)
    digest = hashlib.sha256(json.dumps(
        {"kind": kind, "metric": suite_in.metric.value, "config": config, "items": items},
        sort_keys=True, ensure_ascii=False,
    ).encode()).hexdigest()[:12]
    version = f"{suite_in.name}-{digest}"
    row = _find(session, suite_in.name)
    added: Added = "created" if row is None else "replaced"
    if row is None:
        row = EvalSuiteRow(name=suite_in.name, kind=kind, metric=suite_in.metric.value,
                           config=config, items=items, version=version)
    elif row.version != version:
        row.kind, row.metric, row.config, row.items = kind, suite_in.metric.value, config, items
        row.version, row.updated_at = version, utcnow()
    else:
        return _public(row), "unchanged"
    session.add(row)
    session.commit()
    session.refresh(row)
    return _public(row), added


def read_items_file(path: Path) -> tuple[list[JsonValue], Locate]:
    """The items of a JSONL file, and a locator that names a line of it in errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read ({exc})", field="file") from None
    items: list[JsonValue] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path.name} line {number}: not JSON ({exc.msg})",
                               field=f"line {number}") from None
        lines.append(number)
    if not items:
        raise InvalidInput(f"{path.name}: no items", field="file")

    def locate(index: int, field: str) -> tuple[str, str]:
        return f"{path.name} line {lines[index]}: field '{field}'", field

    return items, locate


def list_suites(session: Session) -> list[SuitePublic]:
    """Built-in suites first (by kind), then the operator's own (by name)."""
    suites = [
        SuitePublic(name=kind, kind=kind, metric=METRICS[kind], version=s.version,
                    n_items=len(s.items), builtin=True)
        for kind in SUITE_KINDS
        for s in [load_suite(kind)]
    ]
    rows = session.exec(select(EvalSuiteRow).order_by(col(EvalSuiteRow.name)))
    return suites + [_public(row) for row in rows]


def find_custom_suite(session: Session, name: str) -> Suite | None:
    row = _find(session, name)
    if row is None:
        return None
    config = SuiteConfig.model_validate(row.config)
    return Suite(kind=row.kind, version=row.version, items=tuple(row.items), name=row.name,
                 grader=Grader(Metric(row.metric), config))


def get_custom_suite(session: Session, name: str) -> Suite:
    suite = find_custom_suite(session, name)
    if suite is None:
        raise NotFound(f"no eval suite {name!r}", field="suite")
    return suite


def _find(session: Session, name: str) -> EvalSuiteRow | None:
    return session.exec(select(EvalSuiteRow).where(col(EvalSuiteRow.name) == name)).first()


def _public(row: EvalSuiteRow) -> SuitePublic:
    config = SuiteConfig.model_validate(row.config)
    return SuitePublic(name=row.name, kind=row.kind, metric=row.metric, version=row.version,
                       n_items=len(row.items), builtin=False, judge_model=config.judge_model,
                       labels=config.labels, updated_at=row.updated_at)
