"""`ccd bootstrap`: synthetic traces over a real project, concrete, marked, qualifying, kept apart."""

import json

import pytest

from cc_capture import store
from cc_capture.datasets.bootstrap import WORKFLOWS, BootstrapError, generate
from conftest import ccd, trace_json


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "plant"
    (root / "data").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "tests").mkdir()
    rows = ["unit,temp,vibration,status"] + [f"pump{i % 4},{60 + i % 5},{0.2 + (i % 3) / 10},ok" for i in range(40)]
    rows.append("pump9,140,3.5,fail")
    (root / "data" / "sensors.csv").write_text("\n".join(rows) + "\n")
    (root / "schema.sql").write_text("CREATE TABLE units (id INTEGER PRIMARY KEY, name TEXT);\n")
    (root / "src" / "monitor.py").write_text("def read_sensor(unit):\n    return 1\n\n\nclass Alarm:\n    pass\n")
    (root / "tests" / "test_monitor.py").write_text("from src.monitor import read_sensor\n\n"
                                                   "def test_read():\n    assert read_sensor('p') == 1\n")
    (root / "README.md").write_text("# Plant monitor\nReads sensors and raises alarms.\n")
    (root / "image.bin").write_bytes(b"\0\1\2")
    return root


def test_every_workflow_is_concrete_and_true(project):
    traces = generate(project, len(WORKFLOWS))
    assert {t.workflow for t in traces} == set(WORKFLOWS) and len(WORKFLOWS) == 11
    for t in traces:
        assert t.steps and t.answer and len(t.answer.split()) > 15
        for _, calls in t.steps:
            for c in calls:
                assert c.output and "image.bin" not in c.output  # binary files are never read
    by = {t.workflow: t for t in generate(project, 200)}
    assert "pump9" in by["anomaly detection"].answer or "rows 42" in by["anomaly detection"].answer
    reads = [c for _, calls in by["explore a codebase"].steps for c in calls if c.name == "Read"]
    assert "Plant monitor" in reads[0].output  # real file content, read-only
    assert generate(project, 5, seed=3)[4].prompt == generate(project, 5, seed=3)[4].prompt  # deterministic


def test_errors_are_clear(tmp_path):
    with pytest.raises(BootstrapError, match="is not a folder"):
        generate(tmp_path / "missing", 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BootstrapError, match="no readable text files"):
        generate(tmp_path / "empty", 3)


def test_ccd_bootstrap_stores_marked_synthetic_traces(paths, project):
    out = json.loads(ccd("bootstrap", "--traces", "22", "--project", str(project), "--json").stdout)
    assert out["created"] == 22 and set(out["workflows"]) == set(WORKFLOWS) and out["qualifying"] == 22
    db = store.connect(paths.db)
    assert db.execute("SELECT count(*), sum(synthetic), min(source) FROM traces").fetchone() == (22, 22, "synthetic")
    t = trace_json(db, f"{out['session_id']}:1")
    assert t["synthetic"] and t["qualifies"] and t["session_id"].startswith("synthetic-")
    assert t["tool_calls"][0]["reasoning"] and t["signals"]["used_rag"]
    assert not any(project.glob("*.orig"))
    bad = ccd("bootstrap", "--traces", "3", "--project", str(project / "nope"), check=False)
    assert bad.returncode == 1 and "is not a folder" in bad.stderr


def test_synthetic_traces_train_only_when_asked_and_never_evaluate(paths, project):
    pytest.importorskip("datasets")
    ccd("bootstrap", "--traces", "11", "--project", str(project))
    refused = ccd("dataset", "build", "--json", check=False)
    assert refused.returncode == 1 and "no qualifying traces" in refused.stderr
    out = json.loads(ccd("dataset", "build", "--include-synthetic", "--json").stdout)
    assert out["counts"] == {"train": 11, "eval": 0}
    from pathlib import Path

    rows = [json.loads(l) for l in (Path(out["path"]) / "train.jsonl").read_text().splitlines()]
    assert all(r["synthetic"] for r in rows)
