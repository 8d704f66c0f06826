"""Routing evidence: every graded answer Modelyard keeps, and the one loader that reads it.

Sources: per-item eval outcomes (``yard models eval``), production calls graded by the cascade's
validator (with their request text, ``call_inputs``), feedback on requests and jobs
(``POST /v1/feedback``), imported public outcome logs (``yard route import``).  The predictor and
the replay read them only through ``load_outcomes``; the worker's retrain asks
``count_outcomes_since``.
"""

from .calls import evidence_text, record_call_input
from .evals import replace_eval_outcomes
from .feedback import (
    FeedbackIn,
    FeedbackPublic,
    Recorded,
    feedback_for_job,
    list_feedback,
    record_feedback,
)
from .imports import ImportSummary, import_outcomes
from .loader import WEIGHTS, count_outcomes_since, load_outcomes
from .tables import (
    MAX_TEXT_CHARS,
    CallInput,
    EvalOutcome,
    Feedback,
    ImportedItem,
    ImportedOutcome,
)

__all__ = [
    "MAX_TEXT_CHARS",
    "WEIGHTS",
    "CallInput",
    "EvalOutcome",
    "Feedback",
    "FeedbackIn",
    "FeedbackPublic",
    "ImportSummary",
    "ImportedItem",
    "ImportedOutcome",
    "Recorded",
    "count_outcomes_since",
    "evidence_text",
    "feedback_for_job",
    "import_outcomes",
    "list_feedback",
    "load_outcomes",
    "record_call_input",
    "record_feedback",
    "replace_eval_outcomes",
]
