"""`ccd calibrate` against the real, pinned Claude Code CLI: what it sends a model (system prompt,
tool definitions, token counts) is recorded per version, and a dataset built afterwards trains the
local model on exactly that; before a calibration the dataset says it fell back."""

import json
from pathlib import Path

import pytest

from cc_capture import store
from cc_capture.config import GateSettings
from cc_capture.signals.runner import compute_pending
from cc_capture.transcripts.bulk import import_paths
from conftest import ccd, relocated_home, shared_dir
from support.claude import CLAUDE_CODE_VERSION, ensure_claude
from support.scripted_api import Scenario, ScriptedAPI, text
from test_local import TAG, ccd_local, deployed

MARKER = "LOCAL-7f3a"

pytestmark = pytest.mark.claude
pytest.importorskip("datasets", reason="the training extra is not installed (pip install -e '.[train]')")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Real Claude Code transcripts imported, every trace qualifying (permissive gates)."""
    with relocated_home(tmp_path_factory.mktemp("calibrate") / "cch") as paths:
        db = store.connect(paths.db)
        import_paths(db, [shared_dir() / "transcripts" / "cc-2.1.328"])
        compute_pending(db, GateSettings(min_answer_words=0, exclude_statuses=[], require_final_answer=False,
                                         min_prompt_chars=0, ambiguous_prompts=[]))
        yield paths


@pytest.fixture(scope="module")
def uncalibrated_dataset(world):
    return ccd("dataset", "build")


@pytest.fixture(scope="module")
def calibration(world, uncalibrated_dataset):
    return json.loads(ccd("calibrate", "--claude", str(ensure_claude()), "--json").stdout)


def test_calibrate_records_claude_codes_tools_prompt_and_tokens(world, calibration):
    assert calibration["claude_version"] == CLAUDE_CODE_VERSION and calibration["chosen"] == "compact"
    by_choice = {c["system_prompt"]: c for c in calibration["calibrations"]}
    assert set(by_choice) == {"claude_code", "compact"}
    for c in by_choice.values():
        schemas = {t["name"]: t["input_schema"] for t in c["tools"]}
        assert {"Read", "Bash", "Grep"} <= set(schemas)
        assert schemas["Read"]["properties"]["file_path"]["type"] == "string" and "file_path" in schemas["Read"]["required"]
        assert "command" in schemas["Bash"]["required"] and "pattern" in schemas["Grep"]["properties"]
        t = c["tokens"]
        assert t["counter"] == "estimate:characters/4" and "neither a folder nor in the Hugging Face cache" in t["note"]
        assert t["tools"] == sum(t["per_tool"].values()) > 0 and t["total"] == t["system"] + t["tools"]
    # Claude Code's own system prompt is long; the compact one replaces it (--system-prompt)
    assert by_choice["claude_code"]["tokens"]["system"] > 10 * by_choice["compact"]["tokens"]["system"]
    assert "--system-prompt" in by_choice["compact"]["arguments"]
    assert "--system-prompt" not in by_choice["claude_code"]["arguments"]
    rows = store.calibrations(store.connect(world.db))
    assert {(r["claude_version"], r["system_prompt"]) for r in rows} == {(CLAUDE_CODE_VERSION, "claude_code"),
                                                                         (CLAUDE_CODE_VERSION, "compact")}
    compact = next(r for r in rows if r["system_prompt"] == "compact")
    fixture = json.loads((Path(__file__).parent / "fixtures" / "claude_code_2.1.328_request.json").read_text())
    assert {k: compact[k] for k in ("system", "tools", "arguments")} == {k: fixture[k] for k in ("system", "tools",
                                                                                                 "arguments")}
    assert compact["system"][-1]["text"].startswith("You are a coding agent")
    assert not any("billing-header" in b["text"] for r in rows for b in r["system"])  # no per-prompt fingerprint
    table = ccd("calibrate", "--claude", str(ensure_claude())).stdout
    assert "compact (chosen)" in table and "estimate:characters/4" in table


def test_dataset_before_calibration_says_it_fell_back(uncalibrated_dataset):
    assert "no calibration" in uncalibrated_dataset.stdout and "ccd calibrate" in uncalibrated_dataset.stdout


def test_dataset_after_calibration_carries_claude_codes_schemas(world, calibration):
    from cc_capture.datasets.inference import function_tools, system_text

    built = json.loads(ccd("dataset", "build", "--json").stdout)
    assert built["manifest"]["inference"] == {"system_prompt": "compact", "source": "calibration",
                                              "claude_version": CLAUDE_CODE_VERSION,
                                              "system_prompt_chars": built["manifest"]["inference"]["system_prompt_chars"]}
    recorded = store.calibrations(store.connect(world.db), "compact")[0]
    rows = [json.loads(line) for split in ("train", "eval")
            for line in (Path(built["path"]) / f"{split}.jsonl").read_text().splitlines()]
    assert rows
    for row in rows:
        assert json.loads(row["tools"]) == function_tools(recorded["tools"])
        assert row["messages"][0] == {"role": "system", "content": system_text(recorded["system"]),
                                      "tool_calls": None, "name": None, "tool_call_id": None}
    grep = next(t["function"] for t in json.loads(rows[0]["tools"]) if t["function"]["name"] == "Grep")
    assert grep["parameters"]["properties"]["output_mode"]["type"] == "string"  # Claude Code's, not inferred


def test_calibrate_json_keys_are_documented(calibration):
    from support import readme

    assert set(calibration) == readme.keys("calibrate")


def test_claude_codes_own_prompt_does_not_fit_the_default_length(world, calibration, monkeypatch):
    """With [local] system_prompt = "claude_code", Claude Code's prompt and tools leave no room at the
    default max_tokens: the build says so, and what to change, instead of writing truncated examples."""
    monkeypatch.setenv("CC_CAPTURE_LOCAL__SYSTEM_PROMPT", "claude_code")
    refused = ccd("dataset", "build", check=False)
    assert refused.returncode == 1 and "[datasets] max_tokens = 4096" in refused.stderr
    assert 'system_prompt = "compact"' in refused.stderr


def test_ccd_local_sends_the_model_what_calibrate_recorded(world, calibration, tmp_path):
    """The real Claude Code started by `ccd local` (here with `-p`, passed through) on the deployed
    model, a scripted stand-in for Ollama: it sends the system prompt and tools `ccd calibrate`
    recorded, so what a dataset trains the model with is what it gets (an interactive session differs
    in its first system line, README says)."""
    db = store.connect(world.db)
    deployed(db)
    recorded = store.calibrations(db, "compact")[0]
    with ScriptedAPI([Scenario(MARKER, [[text("Local model here.")]])], ollama_models=[TAG]) as ollama:
        done = ccd_local(world, tmp_path, ollama.url, "-p", f"{MARKER} say hello", "--output-format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == "Local model here."
    assert f"Claude Code on {TAG}" in done.stderr and "system_prompt = compact" in done.stderr
    first = ollama.first_with_tools()
    assert first["model"] == TAG
    assert first["system"] == recorded["system"] and first["tools"] == recorded["tools"]
    assert {t["name"] for t in first["tools"]} >= {"Read", "Grep", "Glob", "Bash", "Edit", "Write"}
    (session,) = db.execute("SELECT session_id, model FROM local_sessions").fetchall()
    assert session[1] == TAG
