"""From generated steps to figures: each item scored (metrics.py), the figures with 95% bootstrap
intervals, a per-tool breakdown, and the paired bootstrap that tells a real improvement from noise.

Steps of one trace are not independent (a model that misreads a task misreads all its steps), so
every bootstrap resamples whole traces with replacement, never single steps. Pure Python and
seeded: the same scores always give the same intervals and p-value.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Sequence

from cc_capture.evaluate.items import EvalItem
from cc_capture.evaluate.metrics import COMPOSITE, METRICS, composite, parse_output, step_metrics


@dataclass(frozen=True)
class ItemScore:
    item_id: str
    trace_id: str
    tool: str | None  # Claude's first tool at this step (None: Claude answered)
    values: dict[str, float | None]
    problem: str | None = None  # why the output is not a valid step


@dataclass
class Summary:
    metrics: dict[str, float | None]
    counts: dict[str, int]
    intervals: dict[str, list[float] | None]
    per_tool: dict[str, dict[str, Any]] = field(default_factory=dict)


def score_items(items: Sequence[EvalItem], completions: Sequence[str]) -> list[ItemScore]:
    out = []
    for item, completion in zip(items, completions, strict=True):
        output = parse_output(completion, item.tools)
        out.append(ItemScore(item.item_id, item.trace_id, item.first_tool,
                             step_metrics(output, item.reference_text, item.reference_calls), output.problem))
    return out


Totals = dict[str, list[float]]  # metric -> [sum, count]


def _totals(scores: Sequence[ItemScore]) -> Totals:
    totals = {m: [0.0, 0.0] for m in METRICS}
    for s in scores:
        for m in METRICS:
            v = s.values.get(m)
            if v is not None:
                totals[m][0] += v
                totals[m][1] += 1
    return totals


def _figures(totals: Totals, weights: dict[str, float]) -> dict[str, float | None]:
    figures: dict[str, float | None] = {m: (s / n if n else None) for m, (s, n) in totals.items()}
    figures[COMPOSITE] = composite(figures, weights)
    return figures


def _by_trace(scores: Sequence[ItemScore]) -> dict[str, Totals]:
    groups: dict[str, list[ItemScore]] = {}
    for s in scores:
        groups.setdefault(s.trace_id, []).append(s)
    return {t: _totals(g) for t, g in sorted(groups.items())}


def _resample(groups: list[Totals], rng: random.Random) -> Totals:
    totals = {m: [0.0, 0.0] for m in METRICS}
    for g in rng.choices(groups, k=len(groups)):
        for m in METRICS:
            totals[m][0] += g[m][0]
            totals[m][1] += g[m][1]
    return totals


def _percentiles(values: list[float]) -> list[float] | None:
    if not values:
        return None
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
    return [round(pick(0.025), 4), round(pick(0.975), 4)]


def mean_interval(values: Sequence[float], samples: int = 1000, seed: int = 0) -> list[float] | None:
    """A 95% bootstrap interval of the mean of independent values (e.g. one per trace), seeded."""
    if not values:
        return None
    rng = random.Random(seed)
    return _percentiles([sum(draw) / len(draw) for draw in (rng.choices(values, k=len(values))
                                                             for _ in range(samples))])


def summarise(scores: Sequence[ItemScore], weights: dict[str, float], samples: int = 1000, seed: int = 0) -> Summary:
    """The figures, their 95% bootstrap intervals (resampled by trace), counts and per-tool figures."""
    totals = _totals(scores)
    metrics = _figures(totals, weights)
    groups = list(_by_trace(scores).values())
    rng = random.Random(seed)
    draws: dict[str, list[float]] = {m: [] for m in (*METRICS, COMPOSITE)}
    for _ in range(samples if groups else 0):
        for m, v in _figures(_resample(groups, rng), weights).items():
            if v is not None:
                draws[m].append(v)
    per_tool: dict[str, dict[str, Any]] = {}
    for tool in sorted({s.tool for s in scores if s.tool}):
        t = _totals([s for s in scores if s.tool == tool])
        per_tool[tool] = {"items": int(t["tool_accuracy"][1]),
                          "tool_accuracy": _round(t["tool_accuracy"][0] / t["tool_accuracy"][1]),
                          "argument_match": _round(t["argument_match"][0] / t["argument_match"][1])
                          if t["argument_match"][1] else None}
    counts = {m: int(n) for m, (_, n) in totals.items()} | {COMPOSITE: len(scores)}
    return Summary({m: _round(v) for m, v in metrics.items()}, counts,
                   {m: _percentiles(d) if metrics[m] is not None else None for m, d in draws.items()}, per_tool)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def paired_difference(challenger: Sequence[ItemScore], champion: Sequence[ItemScore], weights: dict[str, float],
                      samples: int = 1000, seed: int = 0) -> tuple[float, float, list[float]]:
    """(difference of behavioural similarity, one-sided p-value, 95% interval of the difference):
    both models' scores on the same items, the same traces drawn for both in each resample; p is
    the share of resamples where the challenger is not better."""
    ours, theirs = _by_trace(challenger), _by_trace(champion)
    if set(ours) != set(theirs):
        raise ValueError("the two evaluations are not on the same items")
    observed = (_figures(_totals(challenger), weights)[COMPOSITE] or 0.0) - (
        _figures(_totals(champion), weights)[COMPOSITE] or 0.0)
    traces = list(ours)
    rng = random.Random(seed)
    diffs = []
    for _ in range(samples):
        picks = rng.choices(traces, k=len(traces))
        a, b = {m: [0.0, 0.0] for m in METRICS}, {m: [0.0, 0.0] for m in METRICS}
        for t in picks:
            for m in METRICS:
                for acc, src in ((a, ours[t]), (b, theirs[t])):
                    acc[m][0] += src[m][0]
                    acc[m][1] += src[m][1]
        diffs.append((_figures(a, weights)[COMPOSITE] or 0.0) - (_figures(b, weights)[COMPOSITE] or 0.0))
    p = sum(d <= 0 for d in diffs) / len(diffs) if diffs else 1.0
    return round(observed, 4), round(p, 4), _percentiles(diffs) or [observed, observed]
