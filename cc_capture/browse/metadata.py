"""Datasette metadata for the store: titles, the description of every table and column (from
`cc_capture.fields`, the source of the `--json` documentation too), facets, and the canned
queries that answer what people ask of their traces and models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cc_capture import fields, reads, store
from cc_capture.compare.scores import SCORES
from cc_capture.evaluate.metrics import COMPOSITE, METRICS

TRACE_PAGE = "/-/trace/"
MODELS_PAGE = "/-/models"

_LATEST = "ORDER BY t.started_at DESC, t.seq DESC LIMIT 200"


@dataclass(frozen=True)
class Query:
    title: str
    description: str
    sql: str


# Canned queries by name; every row with a trace_id links to that trace's page.
QUERIES: dict[str, Query] = {
    "recent_traces": Query(
        "Recent traces",
        "The latest 200 traces: prompt, the main agent's tools in order, status, and whether they qualify "
        "for training (empty until their signals are computed).",
        f"SELECT {reads.TRACE_COLUMNS} FROM traces t {_LATEST}",
    ),
    "search": Query(
        "Search prompts and answers",
        "Full-text search over prompts and final answers: every word must appear.",
        f"""SELECT {reads.TRACE_COLUMNS}, snippet(traces_fts, -1, '[', ']', '…', 12) AS snippet
        FROM traces_fts JOIN traces t ON t.rowid = traces_fts.rowid
        WHERE traces_fts MATCH fts_query(:q) ORDER BY rank LIMIT 200""",
    ),
    "failing_calls": Query(
        "Failing tool calls",
        "Tool calls that failed, newest first, with the error and the prompt they served.",
        """SELECT c.trace_id, c.started_at, c.name, c.status, c.error, c.input, t.prompt
        FROM tool_calls c JOIN traces t ON t.trace_id = c.trace_id
        WHERE c.is_error = 1 ORDER BY c.started_at DESC LIMIT 200""",
    ),
    "tools": Query(
        "Tools",
        "Each tool: how often it was called, how often it failed, its mean and longest duration.",
        """SELECT name, count(*) AS calls, sum(is_error) AS failed, count(DISTINCT trace_id) AS traces,
               round(avg(duration_ms)) AS mean_ms, max(duration_ms) AS max_ms
        FROM tool_calls GROUP BY name ORDER BY calls DESC""",
    ),
    "traces_by_tool": Query(
        "Traces by tool",
        "The traces that used a tool (Bash, Read, Edit, Agent, ...), with how often and how often it failed.",
        """SELECT t.trace_id, t.started_at, t.status, count(*) AS calls, sum(c.is_error) AS failed, t.prompt
        FROM tool_calls c JOIN traces t ON t.trace_id = c.trace_id WHERE c.name = :tool
        GROUP BY t.trace_id ORDER BY t.started_at DESC LIMIT 200""",
    ),
    "slowest_calls": Query(
        "Slowest tool calls",
        "The 100 longest tool calls.",
        """SELECT c.trace_id, c.name, c.duration_ms, c.started_at, c.status, c.input
        FROM tool_calls c WHERE c.duration_ms IS NOT NULL ORDER BY c.duration_ms DESC LIMIT 100""",
    ),
    "self_corrections": Query(
        "Self-corrections",
        "Where the agent corrected itself: what triggered it (a failed call, its own words) and what changed.",
        """SELECT g.trace_id, json_extract(j.value, '$.trigger') AS trigger, json_extract(j.value, '$.change') AS change,
               t.prompt
        FROM signals g JOIN traces t ON t.trace_id = g.trace_id, json_each(g.signals, '$.self_corrections') j
        ORDER BY t.started_at DESC LIMIT 200""",
    ),
    "gate_reasons": Query(
        "Gate reasons",
        "How many traces each quality-gate reason applies to (a trace can have several).",
        store.GATE_REASON_COUNTS,
    ),
    "excluded_traces": Query(
        "Traces kept out of training",
        "Traces the quality gates excluded, with their reasons.",
        f"""SELECT t.trace_id, t.started_at, t.status, g.gate_reasons, t.prompt
        FROM signals g JOIN traces t ON t.trace_id = g.trace_id WHERE g.qualifies = 0 {_LATEST}""",
    ),
    "deployments": Query(
        "Deployments",
        "Every deploy and rollback in Ollama, failed ones included: which version, the tag and alias, the fault.",
        """SELECT id, action, model_version, tag, alias, status, fault, error, reason, previous_version, quantization,
               started_at, ended_at
        FROM deployments ORDER BY id DESC""",
    ),
    "schedule_decisions": Query(
        "Scheduler decisions",
        "Every check of the learning scheduler: whether it ran the pipeline or waited, and why; a run's outcome.",
        """SELECT id, at, action, reasons, next_check_at, ended_at, exit_code, log_path
        FROM schedule_decisions ORDER BY id DESC""",
    ),
    "models": Query(
        "Model registry",
        "Every model version: status, base model, the runs it came from, its latest behavioural similarity and "
        "the reasons for its last change of status. The models page charts them.",
        f"""SELECT m.version, m.status, m.base_model, m.runs, m.created_at,
               (SELECT json_extract(e.metrics, '$.{COMPOSITE}') FROM evaluations e WHERE e.model_sha256 = m.sha256
                ORDER BY e.created_at DESC LIMIT 1) AS {COMPOSITE},
               (SELECT v.reasons FROM model_events v WHERE v.version = m.version ORDER BY v.id DESC LIMIT 1) AS reasons
        FROM models m ORDER BY m.version DESC""",
    ),
    "evaluations": Query(
        "Evaluations",
        "Every evaluation: the model version, the eval set, how many items and traces, and each metric.",
        f"""SELECT m.version, e.eval_set_hash, e.created_at, e.items, e.traces,
               {", ".join(f"json_extract(e.metrics, '$.{name}') AS {name}" for name in (COMPOSITE, *METRICS))}
        FROM evaluations e LEFT JOIN models m ON m.sha256 = e.model_sha256 ORDER BY e.created_at DESC""",
    ),
    "model_decisions": Query(
        "Model decisions",
        "Every change of a model's status and every gate decision, with its reasons and figures.",
        """SELECT version, at, status, reasons, figures FROM model_events ORDER BY id DESC""",
    ),
    "pipelines": Query(
        "Learning pipelines",
        "Each pipeline run: its outcome, the model it produced, its steps and timings.",
        """SELECT pipeline_id, status, outcome, model_version, started_at, ended_at, steps, error
        FROM pipelines ORDER BY started_at DESC""",
    ),
    "comparisons": Query(
        "Comparisons with Claude",
        "`ccd compare`: each held-out prompt the local model replayed inside Claude Code, Claude's trace and "
        "the local one, how the local run ended, the pair's scores and where it left Claude's path.",
        f"""SELECT c.compare_id, c.model, c.started_at, i.trace_id, i.local_trace_id, i.status,
               {", ".join(f"json_extract(i.scores, '$.{name}') AS {name}" for name in SCORES)},
               i.divergence, i.dpo_pair
        FROM comparison_items i JOIN comparisons c ON c.compare_id = i.compare_id
        ORDER BY c.started_at DESC, i.rowid""",
    ),
    "training_runs": Query(
        "Training runs",
        "Every training run: phase, backend, status, losses and speed, the dataset it used, why it failed.",
        """SELECT run_id, phase, status, backend, created_at, ended_at,
               json_extract(metrics, '$.train_loss') AS train_loss, json_extract(metrics, '$.first_loss') AS first_loss,
               json_extract(metrics, '$.tokens_per_s') AS tokens_per_s, dataset_path, error
        FROM runs ORDER BY created_at DESC""",
    ),
}

# Facets people filter by, per table.
FACETS = {"traces": ["status", "source"], "tool_calls": ["name", "status", "is_error"],
          "subagents": ["agent_type", "background"], "runs": ["phase", "status"],
          "deployments": ["action", "status", "fault"], "sessions": ["origin", "git_state"],
          "comparison_items": ["status", "dpo_pair"]}
SORT_DESC = {"traces": "started_at", "tool_calls": "started_at", "runs": "created_at", "events": "id"}


def database_name(db_path: Path) -> str:
    """The name Datasette gives a database file (its stem)."""
    return db_path.stem


def _description_html(name: str) -> str:
    """The home page's text: where to start, and a link to every canned query."""
    links = ", ".join(f'<a href="/{name}/{q}">{query.title.lower()}</a>' for q, query in QUERIES.items())
    return (f'<p>Your captured Claude Code sessions, read-only. Start with <a href="/{name}/recent_traces">recent '
            f'traces</a> (a trace id opens that trace as a tree), or the <a href="{MODELS_PAGE}">models</a>.</p>'
            f"<p>Questions answered: {links}.</p>")


def build_metadata(db_path: Path) -> dict[str, Any]:
    """Datasette's metadata for the store at `db_path`."""
    tables: dict[str, Any] = {}
    for table, doc in fields.TABLES.items():
        entry: dict[str, Any] = {"description": doc.description, "columns": doc.columns}
        if doc.hidden:
            entry["hidden"] = True
        if table in FACETS:
            entry["facets"] = FACETS[table]
        if table in SORT_DESC:
            entry["sort_desc"] = SORT_DESC[table]
        tables[table] = entry
    queries = {name: {"title": q.title, "description": q.description, "sql": q.sql.strip(), "hide_sql": True}
               for name, q in QUERIES.items()}
    name = database_name(db_path)
    return {
        "title": "cc-capture",
        "description_html": _description_html(name),
        "about": "cc-capture: your Claude Code traces, on this machine only",
        "databases": {name: {"tables": tables, "queries": queries}},
    }
