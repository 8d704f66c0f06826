"""Built-in eval suites: quality is measured per task kind, never declared.

``yard models eval NAME`` runs them (``evaluate_model``) and stores one Score per (model, kind).
The data files live in ``data/`` (see its README for where they came from).
"""

from .metrics import METRICS, SCORERS, bootstrap_interval, wilson_interval
from .prompts import build_request
from .runner import (
    ItemResult,
    SuiteResult,
    evaluate_model,
    plan_suites,
    run_suite,
    score_item,
    speaks_chat,
    store_score,
)
from .suites import SUITE_KINDS, Suite, load_suite

__all__ = [
    "METRICS",
    "SCORERS",
    "SUITE_KINDS",
    "ItemResult",
    "Suite",
    "SuiteResult",
    "bootstrap_interval",
    "build_request",
    "evaluate_model",
    "load_suite",
    "plan_suites",
    "run_suite",
    "score_item",
    "speaks_chat",
    "store_score",
    "wilson_interval",
]
