"""The per-kind score the router judges adequacy on: the measured mean, discounted for few items.

A mean over 3 eval items is mostly luck: SmolLM2-135M answers the first listed label, the first 3
classify items happened to favour that, and a 3/3 (1.00) beat two Qwen models measured at 2/3, so
every triage ticket went to the model that calls 20 tickets in 30 ``billing``.  Routing on the
*lower end of the 95% Wilson interval* of the mean over the ``n`` items measured makes a score
earn its place with evidence: 3/3 counts as 0.44, 10/10 as 0.72, 120/150 as 0.73 (the mean 0.80
barely moves once a full suite ran).  The same interval is stored beside accuracy-type Scores
(``Score.ci_low``), so what the router judged is what ``yard models list`` shows as the low end.

For graded kinds (extract, summarize: per-item scores in [0, 1]) the Wilson bound over ``mean x n``
"successes" is conservative: a [0, 1] variable with mean p has variance at most p (1 - p).  The
stored bootstrap interval is not used there, because it collapses to a point when every item
scored the same (3 items all 1.0 give [1.0, 1.0]).
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # two-sided 95% (evals.metrics.Z95; not imported: no cycle via evals)


def routed_score(value: float, n: int, z: float = Z95) -> float:
    """Lower end of the Wilson interval of mean ``value`` over ``n`` items; 0 when ``n < 1``.

    Pure and monotone: more items at the same mean, or a higher mean at the same ``n``, never
    lower it; it is always <= ``value`` and tends to ``value`` as ``n`` grows.
    """
    if n < 1:
        return 0.0
    p = min(1.0, max(0.0, value))
    zz = z * z
    denom = 1 + zz / n
    centre = (p + zz / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + zz / (4 * n * n)) / denom
    return min(p, max(0.0, centre - half))


__all__ = ["Z95", "routed_score"]
