"""The model catalogue: one row per model Modelyard may route to.

Facts about a local model (architecture, size, quantisation, context) are read from its GGUF
header when it is added, never typed by hand, so the router decides on what the file really is.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlparse

from pydantic import field_validator
from sqlalchemy import JSON, Column
from sqlmodel import Field, Session, SQLModel, col, select

from .errors import Conflict, InvalidInput, NotFound

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Backend(StrEnum):
    llama_cpp = "llama_cpp"
    openai_compatible = "openai_compatible"


class Capability(StrEnum):
    chat = "chat"
    json_schema = "json_schema"
    tools = "tools"
    completion = "completion"
    embeddings = "embeddings"  # serves POST /embeddings (never routed text generation)


class Health(StrEnum):
    unknown = "unknown"
    healthy = "healthy"
    unhealthy = "unhealthy"


def validate_slug(name: str) -> str:
    if not SLUG_RE.fullmatch(name):
        raise InvalidInput(
            f"invalid model name {name!r}: use 1-63 lowercase letters, digits, '.', '_' or '-',"
            " starting with a letter or digit",
            field="name",
        )
    return name


RESPONSE_FORMATS = ("json_schema", "json_object")


def validate_response_format(value: str) -> str:
    if value not in RESPONSE_FORMATS:
        raise InvalidInput(
            f"response format must be one of {', '.join(RESPONSE_FORMATS)}, got {value!r}",
            field="response_format",
        )
    return value


def validate_base_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidInput(f"endpoint must be an http(s) URL, got {url!r}", field="base_url")
    return url.rstrip("/")


class ModelBase(SQLModel):
    name: str = Field(index=True, unique=True, max_length=63)
    backend: Backend
    gguf_path: str | None = None
    sha256: str | None = Field(default=None, max_length=64)
    size_bytes: int | None = None
    base_url: str | None = None
    served_name: str | None = None
    api_key_env: str | None = Field(default=None, description="Env var holding the key.")
    response_format: str = Field(
        default="json_schema",
        description="How the server takes a JSON Schema: json_schema (OpenAI, vLLM) or "
        "json_object (llama-cpp-python server: {type: json_object, schema}).",
    )
    family: str | None = None
    parameters: int | None = None
    quantization: str | None = None
    context_length: int | None = None
    capabilities: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    endpoints: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"),
        description="Remote replicas serving the same model (base_url is the first); empty: "
        "base_url alone.")
    price_in: float = Field(default=0.0, ge=0, description="USD per million input tokens.")
    price_out: float = Field(default=0.0, ge=0, description="USD per million output tokens.")
    ram_bytes: int | None = Field(default=None, description="Estimated RAM when loaded.")
    enabled: bool = True

    @field_validator("capabilities")
    @classmethod
    def _known_capabilities(cls, value: list[str]) -> list[str]:
        allowed = {c.value for c in Capability}
        bad = [c for c in value if c not in allowed]
        if bad:
            raise ValueError(f"unknown capabilities {bad}; allowed: {sorted(allowed)}")
        return sorted(set(value))


class ModelEntry(ModelBase, table=True):
    __tablename__ = "models"

    id: int | None = Field(default=None, primary_key=True)
    health: Health = Health.unknown
    health_checked_at: datetime | None = None
    health_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ModelCreate(ModelBase):
    """What `add` accepts; the same shape the API's POST takes."""


class ModelUpdate(SQLModel):
    enabled: bool | None = None
    price_in: float | None = Field(default=None, ge=0)
    price_out: float | None = Field(default=None, ge=0)
    capabilities: list[str] | None = None
    api_key_env: str | None = None


class ModelPublic(SQLModel):
    """The stable public shape (`yard models list --json`, `GET /v1/models`)."""

    name: str
    backend: Backend
    family: str | None
    parameters: int | None
    quantization: str | None
    context_length: int | None
    capabilities: list[str]
    price_in: float
    price_out: float
    ram_bytes: int | None
    enabled: bool
    health: Health
    gguf_path: str | None
    sha256: str | None
    size_bytes: int | None
    base_url: str | None
    served_name: str | None
    endpoints: list[str] = Field(default_factory=list)
    api_key_env: str | None
    response_format: str
    created_at: datetime
    updated_at: datetime
    scores: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Measured on this machine by the evals (``scores_view.public_models`` fills them in):
    decode_tokens_per_s: float | None = None
    prompt_tokens_per_s: float | None = None
    price_out_derived: float | None = Field(
        default=None, description="Local models: USD per million output tokens on this machine "
        "(machine $/h at the measured decode speed, or the assumed one when unmeasured).")
    evaluation: str = Field(
        default="unmeasured", description="unmeasured | quick (N sampled items per kind, e.g. at "
        "pull time) | full (whole suites)")


def to_public(entry: ModelEntry, scores: dict[str, dict[str, Any]] | None = None) -> ModelPublic:
    data = entry.model_dump()
    data["scores"] = scores or {}
    return ModelPublic.model_validate(data)


def get_model(session: Session, name: str) -> ModelEntry:
    entry = session.exec(select(ModelEntry).where(ModelEntry.name == name)).first()
    if entry is None:
        raise NotFound(f"unknown model {name!r}", field="name")
    return entry


def find_model(session: Session, name: str) -> ModelEntry | None:
    return session.exec(select(ModelEntry).where(ModelEntry.name == name)).first()


def list_models(session: Session, *, enabled_only: bool = False) -> list[ModelEntry]:
    query = select(ModelEntry).order_by(col(ModelEntry.name))
    if enabled_only:
        query = query.where(col(ModelEntry.enabled).is_(True))
    return list(session.exec(query).all())


def add_model(session: Session, model_in: ModelCreate) -> ModelEntry:
    validate_slug(model_in.name)
    if model_in.backend == Backend.openai_compatible:
        if not model_in.base_url or not model_in.served_name:
            raise InvalidInput(
                "a remote model needs an endpoint and a served name", field="base_url"
            )
        validate_base_url(model_in.base_url)
    elif not model_in.gguf_path:
        raise InvalidInput("a llama_cpp model needs a GGUF path", field="gguf_path")
    if find_model(session, model_in.name) is not None:
        raise Conflict(f"a model named {model_in.name!r} already exists", field="name")
    entry = ModelEntry.model_validate(model_in)
    session.add(entry)
    session.commit()
    session.refresh(entry)
    return entry


def update_model(session: Session, name: str, update: ModelUpdate) -> ModelEntry:
    entry = get_model(session, name)
    changes = update.model_dump(exclude_unset=True)
    if "capabilities" in changes:
        changes["capabilities"] = ModelBase._known_capabilities(changes["capabilities"] or [])
    for key, value in changes.items():
        setattr(entry, key, value)
    entry.updated_at = utcnow()
    session.add(entry)
    session.commit()
    session.refresh(entry)
    return entry


def remove_model(session: Session, name: str) -> None:
    entry = get_model(session, name)
    session.delete(entry)
    session.commit()


def record_health(session: Session, name: str, healthy: bool, error: str | None = None) -> None:
    entry = get_model(session, name)
    entry.health = Health.healthy if healthy else Health.unhealthy
    entry.health_error = None if healthy else error
    entry.health_checked_at = utcnow()
    session.add(entry)
    session.commit()
