"""Modelyard's model registry: the catalogue and everything that decides or runs a model call."""

from .catalog import Backend, Capability, Health, ModelCreate, ModelEntry, ModelPublic, ModelUpdate
from .errors import (
    BackendError,
    BackendTimeout,
    BackendUnreachable,
    CapabilityMissing,
    Conflict,
    InvalidInput,
    InvalidModelFile,
    ModelTooLarge,
    ModelyardError,
    NoAdequateModel,
    NotFound,
)
from .runtimes import Completion, GenerationRequest, RuntimeFactory, StreamEvent
from .settings import Settings, get_settings

__all__ = [
    "Backend",
    "BackendError",
    "BackendTimeout",
    "BackendUnreachable",
    "Capability",
    "CapabilityMissing",
    "Completion",
    "Conflict",
    "GenerationRequest",
    "Health",
    "InvalidInput",
    "InvalidModelFile",
    "ModelCreate",
    "ModelEntry",
    "ModelPublic",
    "ModelTooLarge",
    "ModelUpdate",
    "ModelyardError",
    "NoAdequateModel",
    "NotFound",
    "RuntimeFactory",
    "Settings",
    "StreamEvent",
    "get_settings",
]
