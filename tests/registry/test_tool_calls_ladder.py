"""The ladder rungs answer items of the ``tools`` suite with tool calls, not text.

Each rung writes its calls in its own frame although both templates teach ``<tool_call>`` tags:
the 0.5B the bare object, the 1.5B the object in a Markdown JSON fence.  A frame the runner did
not read as a call became a text answer, and the 1.5B rung scored 0.10 on calls that were right.
Needs the Qwen rungs (``ladder``).
"""

from __future__ import annotations

import pytest
from modelyard_registry import bundled
from modelyard_registry.evals import build_request, load_suite
from modelyard_registry.evals.runner import score_item
from modelyard_registry.runtimes import RuntimeFactory
from modelyard_registry.settings import Settings
from sqlmodel import Session

pytestmark = pytest.mark.ladder

ITEMS = ("tg001", "tg042", "tg097")  # get_order, cancel_order (an enum), find_customer


@pytest.mark.parametrize("name", ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
def test_each_rung_answers_call_items_with_calls(name: str, session: Session,
                                                 settings: Settings) -> None:
    entry, _ = bundled.pull(session, settings, name)
    assert "tools" in entry.capabilities
    items = [i for i in load_suite("tools").items if i["id"] in ITEMS]
    runtimes = RuntimeFactory(settings)
    try:
        runtime = runtimes.for_entry(entry)
        for item in items:
            done = runtime.generate(build_request("tools", item, chat=True))
            assert done.finish_reason == "tool_calls" and done.tool_calls, (item["id"], done.text)
            assert done.tool_calls[0].name == item["gold"]["name"], item["id"]
            if name == "qwen2.5-coder-1.5b":  # measured: right arguments on every call item
                assert score_item("tools", item, done).score == 1.0, (item["id"], done)
    finally:
        runtimes.close()
