"""Build the SFT (or DPO) dataset from the store: qualifying traces only, split by session,
de-duplicated, redaction checked again, written as JSONL and as a Hugging Face `datasets` folder
with a manifest (counts, token statistics, a hash of the trace ids, the extractor version)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from cc_capture import reads, records, store
from cc_capture.config import DatasetSettings, SystemPromptChoice
from cc_capture.paths import private_dir
from cc_capture.datasets import inference
from cc_capture.datasets.conversation import conversations, estimate_tokens
from cc_capture.datasets.preferences import compare_pair, rating_pairs, rebased, self_correction_pairs
from cc_capture.records import DatasetManifest, Inference, TokenStats, Trace
from cc_capture.redact import redact_value
from cc_capture.signals import EXTRACTOR_VERSION


MIN_CONVERSATION_TOKENS = 512  # below this, examples would be little more than the system prompt and tools


class DatasetError(Exception):
    """The dataset can't be built as asked; the message says why."""


@dataclass
class BuildResult:
    path: Path
    counts: dict[str, int]
    manifest: DatasetManifest


def split_of(session_id: str, eval_percent: int, spent: frozenset[str] = frozenset()) -> str:
    """Deterministic split by session: no session is in two splits. A session spent for evaluation
    (`store.spent_sessions`: a comparison made a preference pair from it) is in train for good."""
    if session_id in spent:
        return "train"
    digest = int(hashlib.sha256(session_id.encode()).hexdigest()[:8], 16)
    return "eval" if digest % 100 < eval_percent else "train"


def _qualifying(db: store.Database, include_synthetic: bool) -> list[Trace]:
    sql = ("SELECT t.trace_id FROM traces t JOIN signals s USING (trace_id) WHERE s.qualifies = 1"
           + ("" if include_synthetic else " AND t.synthetic = 0")
           + f" AND {store.NOT_LOCAL} ORDER BY t.started_at, t.seq")
    return reads.traces(db, [r[0] for r in db.execute(sql)])


def _compare_pairs(db: store.Database, max_tool_output_tokens: int, system_prompt: str) -> list[dict[str, Any]]:
    """The preference pairs `ccd compare` found (where the local model left Claude's path), rebuilt from
    the two stored traces. Making a pair spent its session for evaluation, so the pairs fall in the
    train split (`split_of`)."""
    pairs = []
    for compare_id, trace_id, local_id, step, worktree, root in db.execute(
            "SELECT i.compare_id, i.trace_id, i.local_trace_id, i.divergence, i.worktree, s.git_root "
            "FROM comparison_items i JOIN traces t USING (trace_id) JOIN sessions s ON s.session_id = t.session_id "
            "WHERE i.dpo_pair = 1 ORDER BY i.rowid").fetchall():
        claude, local = reads.trace(db, trace_id), reads.trace(db, local_id)
        if claude and local:
            pairs.append(compare_pair(claude, rebased(local, worktree, root), step, compare_id,
                                      max_tool_output_tokens, system_prompt))
    return pairs


def _redacted(t: Trace) -> Trace:
    """The trace with its stored texts redacted again: those an example is made of."""
    calls = [msgspec.structs.replace(c, input=redact_value(c.input), output=redact_value(c.output),
                                     error=redact_value(c.error), reasoning=redact_value(c.reasoning))
             for c in t.tool_calls]
    return msgspec.structs.replace(t, prompt=redact_value(t.prompt), final_response=redact_value(t.final_response),
                                   error=redact_value(t.error), tool_calls=calls)


def _recheck(values: list[Any]) -> tuple[list[Any], int]:
    """Redact again what was stored, value by value as ingest redacted it (the same function on the
    same values, never on their JSON-string form in an example: what these rules stored comes back
    unchanged; what older rules stored gets what newer ones catch); how many changed. Traces or
    preference pairs (dicts)."""
    clean = [_redacted(v) if isinstance(v, Trace) else redact_value(v) for v in values]
    return clean, sum(c != v for c, v in zip(clean, values))


def _dedup_key(example: dict[str, Any]) -> str:
    """Content identity of an example: its messages with tool-call ids replaced by their position
    (two captures of the same work differ only in ids)."""
    ids: dict[str, str] = {}

    def norm(msgs: list[dict]) -> list[dict]:
        out = []
        for m in msgs:
            m = dict(m)
            if m.get("tool_calls"):
                m["tool_calls"] = [dict(tc, id=ids.setdefault(tc["id"], str(len(ids)))) for tc in m["tool_calls"]]
            if m.get("tool_call_id"):
                m["tool_call_id"] = ids.setdefault(m["tool_call_id"], str(len(ids)))
            out.append(m)
        return out

    content = {k: norm(example[k]) for k in ("messages", "prompt", "chosen", "rejected") if k in example}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _write_private(path: Path, text: str) -> None:
    """A file only the user can read (0600), like everything cc-capture writes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    _write_private(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def build(db: store.Database, out_root: Path, settings: DatasetSettings, system_prompt: SystemPromptChoice,
          dpo: bool = False, include_synthetic: bool = False, extra_pairs: list[dict] | None = None) -> BuildResult:
    """`system_prompt`: `[local] system_prompt`, the choice the model runs with inside Claude Code; the
    rows carry that prompt and Claude Code's tool definitions from its latest calibration (or a
    fallback, said in the manifest). `extra_pairs`: preference pairs made elsewhere (divergences of a
    trained model from Claude). The folder appears whole or not at all: it is written under a
    temporary name and renamed last."""
    _require_training_extra()
    traces = _qualifying(db, include_synthetic)
    if not traces:
        raise DatasetError("no qualifying traces yet: `ccd stats` shows why traces are excluded")
    traces, redacted_again = _recheck(traces)
    view = inference.for_datasets(db, system_prompt, traces)
    tools = json.dumps(view.tools, ensure_ascii=False)
    # the tool definitions are in every example's prompt (an upper bound: the JSON, which the chat
    # template renders only in part): the conversation gets what they leave
    conversation_tokens = settings.max_tokens - estimate_tokens(tools)
    fixed = estimate_tokens(tools) + estimate_tokens(view.system_prompt)
    if settings.max_tokens - fixed < MIN_CONVERSATION_TOKENS:
        raise DatasetError(
            f"the system prompt ({view.choice.value}) and tool definitions take about {fixed} of [datasets] "
            f"max_tokens = {settings.max_tokens} tokens, leaving too little for a conversation: raise max_tokens "
            "(and [train] max_length), or use [local] system_prompt = \"compact\"")
    rows: dict[str, list[dict]] = {"train": [], "eval": []}
    spent = store.spent_sessions(db)
    seen: set[str] = set()
    duplicates = 0
    if dpo:
        candidates = [p for t in traces
                      for p in self_correction_pairs(t, settings.max_tool_output_tokens, view.system_prompt)]
        rated = {r[0]: r[1] for r in db.execute("SELECT trace_id, rating FROM feedback")}
        everything, changed = _recheck(reads.traces(db, list(rated)))
        redacted_again += changed
        # the local model's traces may be rejected, never chosen: only Claude's are examples to follow
        candidates += rating_pairs([t for t in everything if rated[t.trace_id] == "up" and t.origin == store.Origin.CLAUDE],
                                   [t for t in everything if rated[t.trace_id] == "down"],
                                   settings.max_tool_output_tokens, view.system_prompt)
        extra, changed = _recheck((extra_pairs or []) + _compare_pairs(db, settings.max_tool_output_tokens,
                                                                       view.system_prompt))
        candidates += extra
        redacted_again += changed
        examples = [(p["session_id"], dict(p, tools=tools)) for p in candidates]
    else:
        examples = []
        for t in traces:
            parts = conversations(t, settings.max_tool_output_tokens, conversation_tokens, view.system_prompt)
            for i, msgs in enumerate(parts):
                examples.append((t.session_id, {"messages": msgs, "tools": tools, "trace_id": t.trace_id,
                                                "session_id": t.session_id, "part": i, "parts": len(parts),
                                                "synthetic": t.synthetic}))
    for session_id, example in examples:
        key = _dedup_key(example)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        # synthetic traces are never used for evaluation
        split = "train" if example.get("synthetic") else split_of(session_id, settings.eval_percent, spent)
        rows[split].append(example)

    kind = "dpo" if dpo else "sft"
    trace_ids = sorted(t.trace_id for t in traces)
    ids_hash = hashlib.sha256("\n".join(trace_ids).encode()).hexdigest()
    token_counts = [sum(estimate_tokens(json.dumps(m, ensure_ascii=False))
                        for m in (r.get("messages") or r["prompt"] + r["chosen"])) for r in rows["train"] + rows["eval"]]
    manifest = DatasetManifest(
        kind=kind, created_at=store.iso(time.time()), extractor_version=EXTRACTOR_VERSION,
        counts={s: len(r) for s, r in rows.items()}, traces=len(traces), trace_ids_sha256=ids_hash,
        # the data snapshot: the newest capture time among the traces (what the scheduler counts new data from)
        captured_until=db.execute("SELECT max(coalesce(t.ended_at, t.started_at)) FROM traces t JOIN json_each(?) j "
                                  "ON j.value = t.trace_id", [json.dumps(trace_ids)]).fetchone()[0],
        sessions={s: len({r["session_id"] for r in items}) for s, items in rows.items()},
        duplicates_dropped=duplicates, redacted_again=redacted_again, include_synthetic=include_synthetic,
        origins=_origins(rows) if dpo else None,
        # what `ccd compare` gave: its pairs (by split), and the sessions it spent for evaluation among these
        compare_pairs={s: sum(r.get("origin") == "compare" for r in items) for s, items in rows.items()}
        if dpo else None,
        spent_sessions=len(spent & {t.session_id for t in traces}),
        tokens=TokenStats(total=sum(token_counts), max=max(token_counts, default=0),
                          mean=round(statistics.mean(token_counts), 1) if token_counts else 0,
                          estimate="characters / 4"),
        settings=settings.model_dump(), tools=[t["function"]["name"] for t in view.tools],
        inference=msgspec.convert(view.as_json(), Inference),
    )
    path = out_root / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{ids_hash[:8]}"
    private_dir(out_root)
    partial = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=out_root))  # 0700, renamed once complete
    try:
        for split, items in rows.items():
            _write_jsonl(partial / f"{split}.jsonl", items)
        _write_private(partial / "manifest.json", json.dumps(records.jsonable(manifest), indent=2))
        _save_hf(partial, rows)
        if path.exists():  # the same traces built again within the second
            shutil.rmtree(path)
        os.rename(partial, path)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return BuildResult(path, manifest.counts, manifest)


def _require_training_extra() -> None:
    """The `hf/` folder needs Hugging Face `datasets`, part of the training extra: say so before any work."""
    try:
        import datasets  # noqa: F401
    except ImportError as e:
        raise DatasetError(f"building a dataset needs the training extra ({e}): run `./install.sh --train` (or "
                           "`pip install 'cc-capture[train]' -c constraints/cpu.txt` in cc-capture's venv)") from None


def _origins(rows: dict[str, list[dict]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for items in rows.values():
        for r in items:
            out[r["origin"]] = out.get(r["origin"], 0) + 1
    return out


def _save_hf(path: Path, rows: dict[str, list[dict]]) -> None:
    """The same rows as a `datasets.DatasetDict` folder (`load_from_disk`), for trl. Every row gets every
    key any row has (null where it has none): `Dataset.from_list` keeps only the first row's keys, so a
    pair's `compare_id` or `run_id` after a pair without one would be lost."""
    from datasets import Dataset, DatasetDict

    keys = list(dict.fromkeys(k for items in rows.values() for r in items for k in r))
    DatasetDict({split: Dataset.from_list([{k: r.get(k) for k in keys} for r in items])
                 for split, items in rows.items() if items}).save_to_disk(str(path / "hf"))
