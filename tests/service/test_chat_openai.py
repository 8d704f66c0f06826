"""The OpenAI-compatible endpoint, driven by the official ``openai`` SDK."""

from __future__ import annotations

import json

import openai
import pytest

from .conftest import StackFactory

pytestmark = pytest.mark.slow


def test_openai_sdk_chat_stream_schema_and_errors(stack_factory: StackFactory) -> None:
    stack = stack_factory(workers=0)
    client = openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.admin_key,
                           max_retries=0)

    assert [m.id for m in client.models.list()] == ["smollm2-135m"]

    answer = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Say hello."}], max_tokens=12
    )
    assert answer.model == "smollm2-135m"
    assert answer.choices[0].message.content
    assert answer.usage is not None and 0 < answer.usage.completion_tokens <= 12

    raw = client.chat.completions.with_raw_response.create(
        model="smollm2-135m", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert raw.headers["x-modelyard-model"] == "smollm2-135m"
    assert raw.parse().model_extra["modelyard"]["cost_usd"] > 0

    pieces = []
    stream = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Count to five."}], max_tokens=16,
        stream=True, stream_options={"include_usage": True},
    )
    usage = None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        usage = getattr(chunk, "usage", None) or usage
    assert len(pieces) > 1 and "".join(pieces).strip()
    assert usage is not None and 0 < usage.completion_tokens <= 16

    schema = {"type": "object", "properties": {"colour": {"type": "string",
              "enum": ["red", "green", "blue"]}}, "required": ["colour"],
              "additionalProperties": False}
    shaped = client.chat.completions.create(
        model="auto", max_tokens=24,
        messages=[{"role": "user", "content": "Pick a colour of the sky as JSON."}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "pick", "schema": schema}},
    )
    assert json.loads(shaped.choices[0].message.content or "")["colour"] in {"red", "green",
                                                                             "blue"}

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-17", messages=[{"role": "user",
                                                                  "content": "x"}])
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="auto", messages=[])
    bad = openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key="my_nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])

    with stack.client() as http:
        usage_data = http.get("/v1/usage", params={"group_by": "product"}).json()
    assert usage_data["groups"][0]["key"] == "chat"
    assert usage_data["total"]["calls"] == 4
