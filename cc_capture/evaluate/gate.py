"""The champion/challenger decision: a challenger replaces the champion only when it is better by
more than noise and no worse where it matters. Pure: the figures in, a decision with its reasons out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cc_capture.config import EvaluateSettings
from cc_capture.evaluate.metrics import COMPOSITE
from cc_capture.evaluate.scoring import Summary


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str]
    difference: float
    p_value: float
    interval: list[float]  # 95% paired-bootstrap interval of the difference

    def as_json(self) -> dict:
        return asdict(self)


def decide(challenger: Summary, champion: Summary, difference: float, p_value: float, interval: list[float],
           settings: EvaluateSettings) -> Decision:
    """Promote only if behavioural similarity is higher with p <= max_p (paired bootstrap over
    traces), valid_call_rate drops by at most max_valid_call_drop, and the score reaches min_score."""
    ours, theirs = challenger.metrics[COMPOSITE] or 0.0, champion.metrics[COMPOSITE] or 0.0
    failures, passes = [], []
    line = (f"{COMPOSITE} {ours:.4f} vs {theirs:.4f} ({difference:+.4f}, 95% interval "
            f"[{interval[0]:+.4f}, {interval[1]:+.4f}], p = {p_value:.4f})")
    if difference <= 0:
        failures.append(f"{line}: not higher than the champion")
    elif p_value > settings.max_p:
        failures.append(f"{line}: higher, but not beyond noise (p > max_p {settings.max_p})")
    else:
        passes.append(f"{line}: higher beyond noise (p <= max_p {settings.max_p})")
    valid, valid_before = challenger.metrics["valid_call_rate"] or 0.0, champion.metrics["valid_call_rate"] or 0.0
    drop = valid_before - valid
    vline = f"valid_call_rate {valid:.4f} vs {valid_before:.4f}"
    if drop > settings.max_valid_call_drop:
        failures.append(f"{vline}: drops by {drop:.4f} > max_valid_call_drop {settings.max_valid_call_drop}")
    else:
        passes.append(f"{vline}: no drop beyond max_valid_call_drop {settings.max_valid_call_drop}")
    if ours < settings.min_score:
        failures.append(f"{COMPOSITE} {ours:.4f} is below min_score {settings.min_score}")
    else:
        passes.append(f"{COMPOSITE} {ours:.4f} reaches min_score {settings.min_score}")
    return Decision(not failures, failures or passes, difference, p_value, interval)
