"""Synthetic traces for a cold start (`ccd bootstrap`): workflow templates made concrete with the
files of a project the user points at.

Every tool step really runs, read-only, against that project (Glob, Read, Grep and `wc -l` are
computed here), so listings, contents, matches and aggregates are true; nothing is written to the
project, and changes are only proposed in the answer. Traces are marked synthetic everywhere
(`traces.synthetic`, source `synthetic`, session ids `synthetic-...`): never used for evaluation,
and left out of training unless `--include-synthetic` is given.
"""

from __future__ import annotations

import csv
import io
import random
import re
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache", "dist", "build"}
DATA_EXT = {".csv", ".tsv", ".json", ".jsonl", ".log", ".txt", ".sql", ".yaml", ".yml", ".xml"}
TABLES = {".csv", ".tsv"}
CODE_EXT = {".py", ".js", ".ts", ".go", ".rs", ".java", ".rb", ".c", ".h", ".cpp", ".sh", ".kt", ".swift", ".php"}
MAX_FILE_BYTES = 1_000_000


class BootstrapError(Exception):
    """The project can't be used (missing, empty); the message says why."""


@dataclass
class Call:
    name: str
    input: dict
    output: str


@dataclass
class SyntheticTrace:
    workflow: str
    prompt: str
    steps: list[tuple[str, list[Call]]] = field(default_factory=list)  # (reasoning, calls of one message)
    answer: str = ""


class Project:
    """The read-only tools, over one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        if not self.root.is_dir():
            raise BootstrapError(f"{root} is not a folder")
        self.files = []
        for p in sorted(self.root.rglob("*")):
            if len(self.files) >= 5000:
                break
            if any(part in SKIP_DIRS or part.startswith(".") for part in p.relative_to(self.root).parts[:-1]):
                continue
            if p.is_file() and p.stat().st_size <= MAX_FILE_BYTES and self._is_text(p):
                self.files.append(p)
        if not self.files:
            raise BootstrapError(f"{root} holds no readable text files to build traces from")

    @staticmethod
    def _is_text(p: Path) -> bool:
        try:
            return b"\0" not in p.read_bytes()[:4096]
        except OSError:
            return False

    def rel(self, p: Path) -> str:
        return str(p.relative_to(self.root))

    def pick(self, rng: random.Random, *preferences: set[str]) -> Path:
        """A file of the first preferred kind the project has (any file if none)."""
        for exts in preferences:
            candidates = [p for p in self.files if p.suffix.lower() in exts]
            if candidates:
                return rng.choice(candidates)
        return rng.choice(self.files)

    def glob(self, pattern: str) -> Call:
        matches = [self.rel(p) for p in self.files if p.match(pattern)][:100]
        return Call("Glob", {"pattern": pattern}, "\n".join(matches) or "No files found")

    def read(self, p: Path, lines: int = 60) -> Call:
        text = p.read_text(errors="replace").splitlines()
        shown = "\n".join(f"{i + 1:>6}\t{line}" for i, line in enumerate(text[:lines]))
        return Call("Read", {"file_path": str(p)}, shown)

    def grep(self, pattern: str, path: Path | None = None) -> Call:
        rx = re.compile(pattern, re.IGNORECASE)
        hits = []
        for p in [path] if path else self.files:
            for i, line in enumerate(p.read_text(errors="replace").splitlines()):
                if rx.search(line):
                    hits.append(f"{self.rel(p)}:{i + 1}:{line.strip()[:160]}")
                    if len(hits) >= 50:
                        break
        args = {"pattern": pattern, "-i": True, "output_mode": "content"} | ({"path": str(path)} if path else {})
        return Call("Grep", args, "\n".join(hits) or "No matches found")

    def wc(self, p: Path) -> Call:
        n = len(p.read_text(errors="replace").splitlines())
        return Call("Bash", {"command": f"wc -l {self.rel(p)}", "description": "Count lines"}, f"{n} {self.rel(p)}")


def _rows(p: Path) -> list[list[str]]:
    text = p.read_text(errors="replace")
    dialect = "excel-tab" if p.suffix == ".tsv" else "excel"
    return [r for r in csv.reader(io.StringIO(text), dialect=dialect) if r][:5000]


def _numeric_columns(rows: list[list[str]]) -> dict[str, list[float]]:
    if len(rows) < 2:
        return {}
    out: dict[str, list[float]] = {}
    for j, name in enumerate(rows[0]):
        values = []
        for r in rows[1:]:
            try:
                values.append(float(r[j]))
            except (ValueError, IndexError):
                break
        else:
            if values:
                out[name] = values
    return out


def _data_summary(p: Path, project: Project) -> str:
    rows = _rows(p) if p.suffix.lower() in {".csv", ".tsv"} else []
    numeric = _numeric_columns(rows)
    if numeric:
        parts = [f"{name}: mean {statistics.fmean(v):.2f}, min {min(v):.2f}, max {max(v):.2f}"
                 for name, v in list(numeric.items())[:4]]
        return (f"`{project.rel(p)}` has {len(rows) - 1} records with columns {', '.join(rows[0][:8])}. "
                + "; ".join(parts) + ".")
    lines = p.read_text(errors="replace").splitlines()
    return f"`{project.rel(p)}` has {len(lines)} lines; the first reads: {lines[0][:120] if lines else '(empty)'}."


def _outliers(p: Path) -> str:
    rows = _rows(p) if p.suffix.lower() in {".csv", ".tsv"} else []
    found = []
    for name, values in _numeric_columns(rows).items():
        if len(values) >= 3 and statistics.pstdev(values) > 0:
            mean, sd = statistics.fmean(values), statistics.pstdev(values)
            idx = [i + 2 for i, v in enumerate(values) if abs(v - mean) > 2 * sd]
            if idx:
                found.append(f"{name} (rows {', '.join(map(str, idx[:5]))})")
    return ("Values more than two standard deviations from the mean: " + "; ".join(found) + ".") if found else \
        "No value lies more than two standard deviations from its column's mean."


def _aggregate(p: Path) -> str:
    rows = _rows(p) if p.suffix.lower() in {".csv", ".tsv"} else []
    if len(rows) < 2:
        return "There is no tabular data to aggregate in it."
    counts = Counter(r[0] for r in rows[1:] if r)
    top = ", ".join(f"{k}: {v}" for k, v in counts.most_common(5))
    return f"Grouped by {rows[0][0]}, the largest groups are {top} ({len(counts)} groups in all)."


def _defs(p: Path, project: Project) -> list[str]:
    return [l.split(":", 2)[2] for l in project.grep(r"^\s*(def|class|func|fn|function)\s", p).output.splitlines()
            if l.count(":") >= 2]


Builder = Callable[[Project, random.Random], SyntheticTrace]


def _data_workflow(name: str, prompt: str, look_for: str, advice: str, extra: Callable[[Path], str],
                   prefer: set[str] = TABLES) -> Builder:
    def build(project: Project, rng: random.Random) -> SyntheticTrace:
        data = project.pick(rng, prefer, DATA_EXT)
        t = SyntheticTrace(name, prompt.format(file=project.rel(data)))
        t.steps.append(("Let me find the data files first.", [project.glob(f"**/*{data.suffix or '*'}")]))
        t.steps.append(("I'll read the file and count its records at the same time.", [project.read(data), project.wc(data)]))
        t.steps.append((f"Now I search it for {look_for}.", [project.grep(look_for, data)]))
        matches = t.steps[-1][1][0].output
        n = 0 if matches.startswith("No matches") else len(matches.splitlines())
        t.answer = (f"{_data_summary(data, project)} {extra(data)} I found {n} lines matching `{look_for}`. "
                    f"{advice} I only read the data; nothing in the project was changed.")
        return t
    return build


def _code_workflow(name: str, prompt: str, advice: str) -> Builder:
    def build(project: Project, rng: random.Random) -> SyntheticTrace:
        code = project.pick(rng, CODE_EXT)
        t = SyntheticTrace(name, prompt.format(file=project.rel(code)))
        t.steps.append(("Let me read the file first.", [project.read(code, 120)]))
        defs = _defs(code, project)
        first = defs[0].split("(")[0].split()[-1] if defs else code.stem
        t.steps.append((f"Now I check where `{first}` is used across the project.", [project.grep(re.escape(first))]))
        uses = t.steps[-1][1][0].output
        n = 0 if uses.startswith("No matches") else len(uses.splitlines())
        t.answer = (f"`{project.rel(code)}` defines {len(defs)} functions or classes"
                    + (f", starting with {', '.join(d.strip()[:60] for d in defs[:3])}" if defs else "")
                    + f". `{first}` appears on {n} lines across the project. {advice} "
                    "I have not edited anything yet; say the word and I will make the change and run the tests.")
        return t
    return build


def _explore(project: Project, rng: random.Random) -> SyntheticTrace:
    t = SyntheticTrace("explore a codebase", "Give me an overview of this codebase")
    readme = next((p for p in project.files if p.name.lower().startswith("readme")), None)
    first = [project.glob("**/*")] + ([project.read(readme, 40)] if readme else [])
    t.steps.append(("I'll list the files and read the README in parallel.", first))
    t.steps.append(("Now the definitions, to see the main pieces.", [project.grep(r"^\s*(def|class|func|fn)\s")]))
    by_ext = Counter(p.suffix or "(none)" for p in project.files).most_common(5)
    top = sorted({project.rel(p).split("/")[0] for p in project.files})[:8]
    t.answer = (f"The project has {len(project.files)} text files, mostly "
                + ", ".join(f"{ext} ({n})" for ext, n in by_ext) + f". At the top level: {', '.join(top)}. "
                + ("The README describes it first; " if readme else "There is no README; ")
                + f"the definitions search found {len(t.steps[-1][1][0].output.splitlines())} definitions to start "
                "reading from. A good next step is to run the test suite to see what is covered.")
    return t


def _debug(project: Project, rng: random.Random) -> SyntheticTrace:
    tests = [p for p in project.files if p.name.startswith("test") or "/tests/" in f"/{project.rel(p)}"]
    target = rng.choice(tests) if tests else project.pick(rng, CODE_EXT)
    t = SyntheticTrace("debug a failing test", f"A test in {project.rel(target)} fails; find out why")
    t.steps.append(("Let me look for the test files first.", [project.glob("**/test*")]))
    t.steps.append(("Reading the failing test and its assertions.", [project.read(target, 80),
                                                                      project.grep(r"assert", target)]))
    asserts = t.steps[-1][1][1].output
    n = 0 if asserts.startswith("No matches") else len(asserts.splitlines())
    t.answer = (f"`{project.rel(target)}` holds {n} assertions. To find the failing one I would run it alone "
                f"(`pytest {project.rel(target)} -x -q`), read the first failure's traceback, and check the code "
                "it calls before changing anything; if the test's expectation is outdated, I would update the test, "
                "otherwise the code. I have not run or changed anything yet.")
    return t


WORKFLOWS: dict[str, Builder] = {
    "equipment analysis": _data_workflow("equipment analysis", "Analyse the equipment data in {file} and summarise "
                                         "each unit's state", r"status|state|unit|id",
                                         "Units whose readings sit at the extremes deserve a closer look first.",
                                         lambda p: ""),
    "anomaly detection": _data_workflow("anomaly detection", "Find anomalies in {file}", r"error|fail|nan|null|-1",
                                        "I would confirm each anomaly against its source before acting on it.",
                                        _outliers),
    "database schema": _data_workflow("database schema", "Explain the database schema behind {file}",
                                      r"create table|primary key|foreign key|references",
                                      "Tables linked by foreign keys should be migrated together.", lambda p: "",
                                      prefer={".sql"}),
    "maintenance analysis": _data_workflow("maintenance analysis", "Review the maintenance records in {file}",
                                           r"maint|repair|service|replace", "Recurring repairs of one part point "
                                           "to a root cause worth fixing.", lambda p: ""),
    "energy optimisation": _data_workflow("energy optimisation", "Suggest energy optimisations from {file}",
                                          r"kw|energy|power|load|usage", "Shifting the heaviest loads off-peak is "
                                          "usually the cheapest win.", _outliers),
    "real-time monitoring": _data_workflow("real-time monitoring", "Set up real-time monitoring for what {file} "
                                           "records", r"time|timestamp|date", "A check every minute on the newest "
                                           "records, alerting on values beyond two standard deviations, would cover "
                                           "it.", _outliers),
    "data aggregation": _data_workflow("data aggregation", "Aggregate {file} by its first column", r".",
                                       "The same grouping can be saved as a query for reuse.", _aggregate),
    "predictive maintenance": _data_workflow("predictive maintenance", "Which components in {file} are likely to "
                                             "fail next?", r"fail|fault|wear|vibration|temp",
                                             "Components trending towards their outliers are the first candidates.",
                                             _outliers),
    "refactor": _code_workflow("refactor", "Refactor {file} to remove duplication",
                               "Functions with the same shape are the first to merge; the tests must pass before "
                               "and after."),
    "debug a failing test": _debug,
    "explore a codebase": _explore,
}


def generate(project_dir: Path, n: int, seed: int = 0) -> list[SyntheticTrace]:
    """n synthetic traces, cycling through the workflows (deterministic for a seed)."""
    project = Project(project_dir)
    rng = random.Random(seed)
    names = list(WORKFLOWS)
    return [WORKFLOWS[names[i % len(names)]](project, rng) for i in range(n)]


def store_traces(conn, traces: list[SyntheticTrace], project_dir: Path) -> str:
    """Write synthetic traces as one synthetic session; returns its id."""
    import json

    from cc_capture import merge_policy
    from cc_capture.redact import redact_text, redact_value

    session_id = f"synthetic-{uuid.uuid4()}"
    now = time.time()
    merge_policy.synthetic_session(conn, session_id, str(project_dir), now)
    for seq, t in enumerate(traces, 1):
        trace_id = f"{session_id}:{seq}"
        merge_policy.synthetic_trace(conn, trace_id, session_id, seq, redact_text(t.prompt), redact_text(t.answer),
                                     len(t.steps), now)
        call_seq = 0
        for batch, (reasoning, calls) in enumerate(t.steps, 1):
            for i, c in enumerate(calls):
                call_seq += 1
                merge_policy.synthetic_call(
                    conn, f"toolu_synthetic_{uuid.uuid4().hex[:20]}", trace_id, session_id, call_seq, c.name,
                    json.dumps(redact_value(c.input)), json.dumps(redact_text(c.output)), batch, now,
                    redact_text(reasoning) if i == 0 else None)
    return session_id
