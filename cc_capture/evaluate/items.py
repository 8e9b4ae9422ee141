"""The eval set: every assistant step of the held-out traces of a dataset, teacher-forced.

Only the dataset's eval split is read: real captured traces (synthetic ones never reach it) whose
session is not in the train split (checked again here) and was not spent for evaluation since the
dataset was built (a comparison made a training pair from it: `store.spent_sessions`). Each assistant message is an item: the
model sees the conversation before it exactly as Claude saw it (system prompt, tools, earlier
steps and tool results) and writes the next assistant turn. `max_items` caps the set: items are
taken round-robin over the traces (each trace's steps in a fixed, hashed order), so every trace
is represented before any gives a second step, and the same dataset and cap always give the same
items. The set is frozen by a hash of its items' trace ids and step positions, and saved
(`evalsets/<hash>.jsonl`) so a champion re-scored later sees exactly the same items.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


class EvalSetError(Exception):
    """No eval set can be made from the dataset; the message says why."""


@dataclass(frozen=True)
class EvalItem:
    item_id: str  # trace_id#part:message index
    trace_id: str
    session_id: str
    prompt: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    reference_text: str
    reference_calls: list[dict[str, Any]]

    @property
    def first_tool(self) -> str | None:
        return self.reference_calls[0]["name"] if self.reference_calls else None


@dataclass(frozen=True)
class EvalSet:
    hash: str
    items: list[EvalItem]

    @property
    def traces(self) -> int:
        return len({i.trace_id for i in self.items})

    def as_json(self) -> dict[str, Any]:
        return {"hash": self.hash, "traces": self.traces, "items": len(self.items)}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []


def items_of(row: dict[str, Any]) -> list[EvalItem]:
    """One item per assistant message of a dataset conversation."""
    tools = json.loads(row["tools"]) if isinstance(row["tools"], str) else row["tools"]
    out = []
    for i, m in enumerate(row["messages"]):
        if m["role"] != "assistant":
            continue
        calls = [{"name": tc["function"]["name"], "parameters": json.loads(tc["function"]["arguments"])
                  if isinstance(tc["function"]["arguments"], str) else tc["function"]["arguments"]}
                 for tc in m.get("tool_calls") or []]
        out.append(EvalItem(f"{row['trace_id']}#{row.get('part', 0)}:{i}", row["trace_id"], row["session_id"],
                            row["messages"][:i], tools, m.get("content") or "", calls))
    return out


def sample(items: list[EvalItem], max_items: int) -> list[EvalItem]:
    """At most `max_items`, stratified by trace: round-robin over traces in hashed order."""
    by_trace: dict[str, list[EvalItem]] = {}
    for item in items:
        by_trace.setdefault(item.trace_id, []).append(item)
    queues = [sorted(v, key=lambda i: _digest(i.item_id)) for _, v in sorted(by_trace.items(), key=lambda kv: _digest(kv[0]))]
    chosen: list[EvalItem] = []
    depth = 0
    while len(chosen) < max_items and any(depth < len(q) for q in queues):
        for q in queues:
            if depth < len(q) and len(chosen) < max_items:
                chosen.append(q[depth])
        depth += 1
    return sorted(chosen, key=lambda i: i.item_id)


def from_dataset(dataset_dir: Path, max_items: int, spent: frozenset[str] = frozenset()) -> EvalSet:
    """The eval set of an SFT dataset folder (`ccd dataset build`), less the `spent` sessions: a folder
    built before a session was spent still holds it in eval; the set (and its hash) leaves it out."""
    manifest = json.loads((dataset_dir / "manifest.json").read_text())
    if manifest.get("kind") != "sft":
        raise EvalSetError(f"{dataset_dir} is a {manifest.get('kind')} dataset; evaluation reads an SFT dataset's "
                           "eval split")
    train_sessions = {r["session_id"] for r in _read_jsonl(dataset_dir / "train.jsonl")}
    rows = [r for r in _read_jsonl(dataset_dir / "eval.jsonl")
            if not r.get("synthetic") and r["session_id"] not in train_sessions and r["session_id"] not in spent]
    items = sample([i for r in rows for i in items_of(r)], max_items)
    if not items:
        raise EvalSetError(f"the eval split of {dataset_dir} holds no real held-out trace: capture more sessions, "
                           "or raise [datasets] eval_percent")
    return EvalSet(_digest("\n".join(i.item_id for i in items)), items)


def save(evalset: EvalSet, folder: Path) -> Path:
    """Freeze the set on disk (0600) under its hash."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{evalset.hash}.jsonl"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(asdict(i), ensure_ascii=False) + "\n" for i in evalset.items)
    return path


def load(folder: Path, set_hash: str) -> EvalSet:
    rows = _read_jsonl(folder / f"{set_hash}.jsonl")
    if not rows:
        raise EvalSetError(f"eval set {set_hash[:12]} is not saved under {folder}")
    return EvalSet(set_hash, [EvalItem(**r) for r in rows])
