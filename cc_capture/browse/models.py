"""The models page: every model version's `behavioural_similarity` over time as a chart (the
champion marked), with its per-metric scores and the reasons for each promotion or rejection.
The registry itself belongs to `cc_capture.evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from cc_capture import store
from cc_capture.evaluate import registry as model_registry


@dataclass
class Version:
    """One model version as the page shows it."""

    version: int
    status: str
    base_model: str
    created_at: float
    behavioural_similarity: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # {at, status, reasons}

    @property
    def created(self) -> str | None:
        return store.iso(self.created_at)


@dataclass
class Registry:
    versions: list[Version]

    @property
    def champion(self) -> Version | None:
        return next((v for v in self.versions if v.status == "champion"), None)

    @property
    def metric_names(self) -> list[str]:
        return list(dict.fromkeys(name for v in self.versions for name in v.metrics))


def registry(db: store.Database) -> Registry:
    """The registry as the models page shows it, read through `cc_capture.evaluate.registry`."""
    versions = []
    for model in model_registry.listing(db):
        detail = model_registry.as_json(db, model, detail=True)
        scores = detail["scores"]
        latest = model_registry.cached(db, model.sha256, scores[-1]["eval_set_hash"]) if scores else None
        versions.append(Version(model.version, model.status.value, model.base_model, model.created_at,
                                detail[model_registry.COMPOSITE], latest.summary.metrics if latest else {},
                                detail["events"]))
    return Registry(versions)


def chart_svg(reg: Registry, width: int = 720, height: int = 280) -> str:
    """`behavioural_similarity` of each scored version, in the order they were made (each dated),
    as inline SVG (no script, nothing fetched): a line through the versions, the champion ringed
    and labelled. Versions are spaced evenly: two made minutes apart stay readable."""
    points = sorted((v for v in reg.versions if v.behavioural_similarity is not None), key=lambda v: v.created_at)
    if not points:
        return ""
    left, right, top, bottom = 56, 40, 24, 48
    step = (width - left - right) / max(len(points) - 1, 1)

    def xy(i: int, v: Version) -> tuple[float, float]:
        x = left + i * step if len(points) > 1 else (left + width - right) / 2
        return round(x, 1), round(top + (1 - v.behavioural_similarity) * (height - top - bottom), 1)

    parts = [f'<svg class="cc-chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>behavioural_similarity by model version</title>']
    for tick in (0, 0.25, 0.5, 0.75, 1):
        y = round(top + (1 - tick) * (height - top - bottom), 1)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y}" y2="{y}" stroke="#eee"/>'
                     f'<text x="{left - 8}" y="{y + 4}" font-size="11" text-anchor="end" fill="#777">{tick:g}</text>')
    xys = [xy(i, v) for i, v in enumerate(points)]
    parts.append('<polyline fill="none" stroke="#4a7ab8" stroke-width="2" points="'
                 + " ".join(f"{x},{y}" for x, y in xys) + '"/>')
    for (x, y), v in zip(xys, points):
        colour = {"champion": "#2f8a3e", "rejected": "#b0281a"}.get(v.status, "#4a7ab8")
        parts.append(f'<circle cx="{x}" cy="{y}" r="5" fill="{colour}" data-version="{v.version}">'
                     f'<title>v{v.version} {escape(v.status)}: {v.behavioural_similarity:.3f}</title></circle>'
                     f'<text x="{x}" y="{height - bottom + 18}" font-size="11" text-anchor="middle">v{v.version}</text>'
                     f'<text x="{x}" y="{height - bottom + 32}" font-size="10" text-anchor="middle" fill="#777">'
                     f'{(v.created or "")[:10]}</text>')
        if v.status == "champion":
            parts.append(f'<circle cx="{x}" cy="{y}" r="9" fill="none" stroke="#2f8a3e" stroke-width="2"/>'
                         f'<text x="{x}" y="{y - 13}" font-size="11" text-anchor="middle" fill="#2f8a3e">champion</text>')
    parts.append("</svg>")
    return "".join(parts)
