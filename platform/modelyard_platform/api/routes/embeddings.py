"""``POST /v1/embeddings``: OpenAI-compatible (``client.embeddings.create`` works).

A skin over ``modelyard_registry.embeddings.embed``: the built-in offline embedders under stable
names, or a registered remote embedding model.  ``encoding_format`` ``base64`` (the openai SDK's
default) packs each vector as little-endian float32, as OpenAI does.
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from modelyard_registry.embeddings import embed
from pydantic import BaseModel, ConfigDict, Field

from ..contract import errors
from ..deps import PrincipalDep, ServicesDep, SessionDep
from ..session_route import SessionRoute

router = APIRouter(route_class=SessionRoute, prefix="/v1", tags=["embeddings"])


class EmbeddingRequest(BaseModel):
    """The OpenAI fields Modelyard honours; token-id inputs are not accepted."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1, description="modelyard-embed, modelyard-route-embed, or a "
                       "registered model with the embeddings capability.")
    input: str | Annotated[list[str], Field(min_length=1, max_length=2048)] = Field(
        description="One text or a list of 1 to 2,048 texts.")
    encoding_format: Literal["float", "base64"] = "float"

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else self.input


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage


@router.post("/embeddings", response_model=EmbeddingResponse,
             responses=errors(404, 502, 503))
async def create_embeddings(body: EmbeddingRequest, services: ServicesDep, session: SessionDep,
                            _: PrincipalDep) -> EmbeddingResponse:
    texts = body.texts()
    result = await run_in_threadpool(embed, session, services.settings, body.model, texts)

    def encode(vector: list[float]) -> list[float] | str:
        if body.encoding_format == "float":
            return vector
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()

    return EmbeddingResponse(
        data=[EmbeddingData(index=i, embedding=encode(v)) for i, v in enumerate(result.vectors)],
        model=result.model,
        usage=EmbeddingUsage(prompt_tokens=result.prompt_tokens,
                             total_tokens=result.prompt_tokens),
    )
