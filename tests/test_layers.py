"""Dependencies point one way (docs/ARCHITECTURE.md): a module imports its own package, the layers
below its own, and, in the two layers whose parts build on one another, its neighbours. Imports
inside functions count too: a lazy import of a higher layer is still a dependency on it."""

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "cc_capture"

# Top to bottom. A part of cc_capture that is in no layer fails the test: say where it belongs.
LAYERS = [
    ("cli", {"cli", "__main__"}),
    ("daemon", {"daemon", "scheduler", "status", "doctor"}),  # status: what `ccd status` gathers, the
    # scheduler's state included; doctor: the checks of `ccd doctor`, over status's pieces
    ("pipeline", {"pipeline"}),
    ("learning", {"train", "evaluate", "export", "deploy", "compare", "calibrate", "browse"}),
    ("datasets", {"datasets"}),
    ("signals", {"signals"}),
    ("readers", {"ingest", "transcripts"}),
    ("ground", {"store", "records", "reads", "redact", "journal", "config", "paths", "homelock", "health",
                "claude_format", "fields", "gitinfo", "hooks_install", "logfiles", "workers", "learning_state",
                "processes", "merge_policy", "loopback", "__init__"}),
]
NEIGHBOURS_MAY_IMPORT = {"cli", "daemon", "learning", "ground"}  # the daemon runs the scheduler; config uses paths
LAYER_OF = {part: i for i, (_, parts) in enumerate(LAYERS) for part in parts}


def part_of(module: str) -> str:
    """`cc_capture.ingest.assemble` → `ingest`; `cc_capture` itself → `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> set[str]:
    """cc_capture modules this file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("cc_capture")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("cc_capture"):
            if node.module == "cc_capture":  # from cc_capture import store, daemon as d
                found |= {f"cc_capture.{a.name}" for a in node.names}
            else:
                found.add(node.module)
    return found


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        here = part_of(module)
        assert here in LAYER_OF, f"{path}: cc_capture.{here} is in no layer; add it to LAYERS"
        for target in imports(path):
            there = part_of(target)
            assert there in LAYER_OF, f"{path} imports {target}: cc_capture.{there} is in no layer; add it to LAYERS"
            if there == here:
                continue
            mine, theirs = LAYER_OF[here], LAYER_OF[there]
            if theirs > mine or (theirs == mine and LAYERS[mine][0] in NEIGHBOURS_MAY_IMPORT):
                continue
            found.append(f"{module} ({LAYERS[mine][0]}) imports {target} ({LAYERS[theirs][0]})")
    return found


def test_no_layer_imports_one_above_it():
    assert violations() == []


def test_the_check_sees_upward_and_sideways_imports(tmp_path, monkeypatch):
    """The check itself: a lower layer importing a higher one, lazily, and ingest ↔ transcripts."""
    fake = tmp_path / "cc_capture"
    for name, text in {"store.py": "def f():\n    from cc_capture.daemon import Daemon\n",
                       "daemon.py": "from cc_capture import store\n",
                       "ingest/a.py": "from cc_capture.transcripts import importer\n",
                       "transcripts/importer.py": "import cc_capture.store\n"}.items():
        (fake / name).parent.mkdir(parents=True, exist_ok=True)
        (fake / name).write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert sorted(violations()) == ["cc_capture.ingest.a (readers) imports cc_capture.transcripts (readers)",
                                    "cc_capture.store (ground) imports cc_capture.daemon (daemon)"]
