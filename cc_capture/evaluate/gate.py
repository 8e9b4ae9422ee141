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


@dataclass(frozen=True)
class ShipDecision:
    ship: bool
    reasons: list[str]

    def as_json(self) -> dict:
        return asdict(self)


def decide_shipping(quantization: str, shipped: Summary, own: Summary, deployed: Summary | None,
                    deployed_version: int | None, max_quantization_loss: float,
                    settings: EvaluateSettings) -> ShipDecision:
    """Whether an exported GGUF may replace the deployed one, judged on the file itself ("evaluate
    what you ship"), all figures on the same eval items: its behavioural_similarity is at most
    `max_quantization_loss` below its own HF model's, and not below the deployed GGUF's, whose
    valid_call_rate it may not undercut by more than max_valid_call_drop. The HF gate already
    showed the model better than the champion beyond noise; this checks that quantizing kept it so."""
    ours, hf = shipped.metrics[COMPOSITE] or 0.0, own.metrics[COMPOSITE] or 0.0
    failures, passes = [], []
    line = f"{quantization} GGUF {COMPOSITE} {ours:.4f} vs its HF model's {hf:.4f} ({ours - hf:+.4f})"
    if hf - ours > max_quantization_loss:
        failures.append(f"{line}: loses more than [deploy] max_quantization_loss {max_quantization_loss}")
    else:
        passes.append(f"{line}: within [deploy] max_quantization_loss {max_quantization_loss}")
    if deployed is None:
        passes.append("nothing deployed to compare with" if deployed_version is None else
                      f"the deployed v{deployed_version}'s GGUF has no figures on these items: not compared")
    else:
        theirs = deployed.metrics[COMPOSITE] or 0.0
        line = f"{COMPOSITE} {ours:.4f} vs the deployed v{deployed_version}'s GGUF {theirs:.4f}"
        (failures if ours < theirs else passes).append(
            f"{line}: {'below' if ours < theirs else 'not below'} what is deployed")
        valid, valid_before = shipped.metrics["valid_call_rate"] or 0.0, deployed.metrics["valid_call_rate"] or 0.0
        vline = f"valid_call_rate {valid:.4f} vs the deployed GGUF's {valid_before:.4f}"
        if valid_before - valid > settings.max_valid_call_drop:
            failures.append(f"{vline}: drops by more than max_valid_call_drop {settings.max_valid_call_drop}")
        else:
            passes.append(f"{vline}: no drop beyond max_valid_call_drop {settings.max_valid_call_drop}")
    return ShipDecision(not failures, failures or passes)
