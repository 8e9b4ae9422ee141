"""What our hook costs Claude Code, against a `cat >/dev/null` sh hook and no hooks, in one run.

Two measurements, each interleaved so machine noise hits all variants alike:
  1. a real Claude Code session (pinned CLI, scripted API) with 20 tool calls, run R times per
     variant; added ms per hook call = (session time - no-hook session time) / hook calls;
  2. the hook process alone, as Claude Code spawns it (`sh -c COMMAND` with the payload on stdin).
Goal: ours at most 1.5x the `cat` floor.

    python benchmarks/hook_overhead.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.claude import claude_env, ensure_claude, run_claude  # noqa: E402
from support.scripted_api import Scenario, ScriptedAPI, text, tool  # noqa: E402

from cc_capture.config import Paths  # noqa: E402
from cc_capture.hooks_install import HOOK_EVENTS, install  # noqa: E402

N_CALLS = 20


def write_settings(home: Path, variant: str, cc_home: Path) -> None:
    settings = home / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    if settings.exists():
        settings.unlink()
    if variant == "ours":
        install(Paths(cc_home), settings)
    elif variant == "cat":
        floor = home / "cat-hook.sh"
        floor.write_text("#!/bin/sh\ncat >/dev/null\n")
        floor.chmod(0o755)
        hook = {"type": "command", "command": str(floor), "timeout": 30}
        settings.write_text(json.dumps({"hooks": {e: [{"hooks": [hook]}] for e in HOOK_EVENTS}}))


def session_benchmark(rounds: int) -> dict[str, float]:
    binary = ensure_claude()
    steps = [[text(f"step {i}"), tool("Bash", command="true", description=f"step {i}")] for i in range(N_CALLS)]
    steps.append([text("done")])
    times: dict[str, list[float]] = {"none": [], "cat": [], "ours": []}
    hook_calls = None
    with tempfile.TemporaryDirectory() as tmp, ScriptedAPI([Scenario("BENCH-MARKER", steps)]) as api:
        home, cc_home = Path(tmp) / "home", Path(tmp) / "cch"
        project = home / "project"
        project.mkdir(parents=True)
        env = claude_env(home, cc_home, api.url)
        for r in range(rounds + 1):  # round 0 warms caches and is not counted
            for variant in ("none", "cat", "ours"):
                write_settings(home, variant, cc_home)
                t0 = time.perf_counter()
                res = run_claude(binary, env, project, "BENCH-MARKER go", "--allowedTools", "Bash")
                elapsed = time.perf_counter() - t0
                assert res.returncode == 0, res.stderr
                if variant == "ours":
                    journal = list((cc_home / "journal").glob("*.ev"))
                    hook_calls = len(journal)
                    for f in journal:
                        f.unlink()
                if r:
                    times[variant].append(elapsed)
    med = {k: statistics.median(v) for k, v in times.items()}
    added_cat = (med["cat"] - med["none"]) / hook_calls * 1000
    added_ours = (med["ours"] - med["none"]) / hook_calls * 1000
    print(f"Claude Code session, {N_CALLS} tool calls, {hook_calls} hook calls, median of {rounds} rounds:")
    for k in ("none", "cat", "ours"):
        print(f"  {k:5s} {med[k] * 1000:8.0f} ms/session")
    print(f"  added per hook call: cat floor {added_cat:.2f} ms, ours {added_ours:.2f} ms, "
          f"ratio {added_ours / added_cat:.2f}x (goal <= 1.5x)")
    return {"added_cat_ms": added_cat, "added_ours_ms": added_ours}


def process_benchmark(n: int) -> None:
    payload = (REPO.parent / "shared" / "payloads" / "PostToolUse_Bash.json")
    data = payload.read_bytes() if payload.exists() else b'{"hook_event_name":"PostToolUse","tool_response":{"stdout":"hi"}}'
    with tempfile.TemporaryDirectory() as tmp:
        floor = Path(tmp) / "cat-hook.sh"
        floor.write_text("#!/bin/sh\ncat >/dev/null\n")
        floor.chmod(0o755)
        ours = f"{REPO / 'hooks' / 'emit.sh'} {tmp}/cch"
        variants = {"cat": str(floor), "ours": ours}
        times: dict[str, list[float]] = {k: [] for k in variants}
        for i in range(n):
            for name, command in variants.items():
                t0 = time.perf_counter()
                subprocess.run(["sh", "-c", command], input=data, check=True)
                times[name].append(time.perf_counter() - t0)
            if i % 200 == 199:
                for f in (Path(tmp) / "cch" / "journal").glob("*.ev"):
                    f.unlink()
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"hook process alone (sh -c COMMAND < {len(data)}-byte payload), median of {n}:")
    print(f"  cat floor {med['cat']:.2f} ms, ours {med['ours']:.2f} ms, ratio {med['ours'] / med['cat']:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--spawns", type=int, default=500)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    process_benchmark(args.spawns)
    session_benchmark(args.rounds)


if __name__ == "__main__":
    main()
