"""Runs a product's graph for one job, durably: the checkpointer's thread id is the job id.

A redelivered job (worker killed, task re-queued) finds the job's checkpoint and resumes at the
last completed node, so finished nodes are neither re-run nor billed twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from modelyard_registry.replay import replay
from modelyard_registry.routing.cascade import CascadeResult
from modelyard_registry.runtimes import GenerationRequest
from modelyard_registry.taskspec import TaskSpec
from modelyard_registry.validators import Validator

from .checkpoints import checkpointer
from .contract import ModelCall, NodeContext, RunContext

if TYPE_CHECKING:
    from .contract import Product


def _model_call(ctx: RunContext) -> ModelCall:
    """Number the calls per node, so a re-run node asks for the same request ids in order.

    The cascade's answer for a request id that was already accepted (before the worker died) is
    reused from its ``Call`` row (``replay``): one accepted call per node, whatever happened.
    """
    counter: dict[str, int] = {}

    def call(spec: TaskSpec, request: GenerationRequest, validator: Validator | None = None, *,
             node: str) -> CascadeResult:
        counter[node] = counter.get(node, 0) + 1
        request_id = f"{ctx.job_id}:{node}:{counter[node]}"
        done = replay(ctx.cascade, spec, request, request_id=request_id)
        if done is not None:
            return done
        return ctx.cascade.run(
            spec,
            request,
            validator,
            request_id=request_id,
            job_id=ctx.job_id,
            team_id=ctx.team_id,
            node=node,
        )

    return call


def run_product(
    product: Product,
    input_data: dict[str, Any],
    ctx: RunContext,
    *,
    interrupt_before: Sequence[str] | None = None,
    interrupt_after: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Validate, run (or resume) the graph, and shape its final state as the product's output."""
    parsed = product.input_model.model_validate(input_data)
    settings = ctx.settings
    context = NodeContext(call=_model_call(ctx), emit=ctx.progress, options=ctx.options)
    config: RunnableConfig = {"configurable": {"thread_id": str(ctx.job_id)}}
    with checkpointer(settings) as saver:
        graph = product.build_graph().compile(checkpointer=saver)
        snapshot = graph.get_state(config)
        if snapshot.values and not snapshot.next:
            return product.output(dict(snapshot.values))  # finished before: nothing to redo
        start = None if snapshot.next else product.initial_state(parsed)
        if start is None:
            context.emit({"type": "resumed", "next": list(snapshot.next)})
        final = graph.invoke(start, config, context=context, interrupt_before=interrupt_before,
                             interrupt_after=interrupt_after)
        if (interrupt_before or interrupt_after) and graph.get_state(config).next:
            return {}
        return product.output(dict(final))
