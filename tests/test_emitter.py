"""The hook emitter: POSIX sh, silent, always exit 0, one complete record per payload."""

import json
import os
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor


from cc_capture import journal
from cc_capture.hooks_install import HOOK_EVENTS
from conftest import EMITTER, REPO, emit


def test_writes_one_complete_private_record(paths):
    payload = b'{"hook_event_name":"Stop","session_id":"s1"}'
    r = emit(paths, payload)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    files = journal.list_files(paths.journal)
    assert len(files) == 1
    rec = journal.read(paths.journal, files[0], 1 << 20)
    assert rec.complete and rec.payload == payload
    assert stat.S_IMODE(os.stat(paths.journal / files[0].name).st_mode) == 0o600


def test_creates_private_journal_dir_from_env(tmp_path):
    home = tmp_path / "fresh"
    env = dict(os.environ, CC_CAPTURE_HOME=str(home))
    r = subprocess.run(["/bin/sh", str(EMITTER)], input=b"{}", env=env, capture_output=True)
    assert r.returncode == 0 and r.stdout == b""
    assert stat.S_IMODE(os.stat(home / "journal").st_mode) == 0o700
    assert len(list((home / "journal").glob("*.ev"))) == 1


def test_default_location_is_xdg_data_home(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CC_CAPTURE_HOME"}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "xdg"))
    subprocess.run(["/bin/sh", str(EMITTER)], input=b"{}", env=env, check=True)
    assert len(list((tmp_path / "xdg" / "cc-capture" / "journal").glob("*.ev"))) == 1


def test_unwritable_journal_exits_0_silently_and_logs_reason(tmp_path):
    home = tmp_path / "h"
    home.mkdir()
    (home / "journal").write_text("a file where the journal folder should be")
    big = b'{"x":"' + b"y" * 1_000_000 + b'"}'  # more than a pipe buffer: stdin must be drained
    r = subprocess.run(["/bin/sh", str(EMITTER), str(home)], input=big, capture_output=True, timeout=30)
    assert (r.returncode, r.stdout) == (0, b"")
    log = (home / "hook-errors.log").read_text()
    assert "cannot create a journal record" in log or "cannot create journal directory" in log


def test_concurrent_emitters_never_share_a_record(paths):
    payloads = [json.dumps({"hook_event_name": "PreToolUse", "n": i, "pad": "x" * (i * 997 % 200_000)}) for i in range(200)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda p: emit(paths, p), payloads))
    assert all(r.returncode == 0 and r.stdout == b"" for r in results)
    files = journal.list_files(paths.journal)
    assert len(files) == 200
    got = sorted(json.loads(journal.read(paths.journal, f, 1 << 30).payload)["n"] for f in files)
    assert got == list(range(200))


def test_reuses_no_existing_record_name(paths):
    """A record left by an earlier process with the same pid is never overwritten (set -C)."""
    emit(paths, b'{"first":1}')
    (name,) = [f.name for f in journal.list_files(paths.journal)]
    # Occupy every name this shell could pick for the next few pids.
    pid = int(name.split("-")[0])
    for p in range(pid, pid + 50):
        for n in range(3):
            target = paths.journal / f"{p}-{n}.ev"
            if not target.exists():
                target.write_bytes(b"occupied")
    emit(paths, b'{"second":2}')
    payloads = [journal.read(paths.journal, f, 1 << 20).payload for f in journal.list_files(paths.journal)]
    assert b'{"first":1}' in payloads and b'{"second":2}' in payloads


def test_is_posix_sh_with_no_tool_but_cat():
    text = EMITTER.read_text()
    assert text.startswith("#!/bin/sh\n")
    for bashism in ("[[", "function ", "$RANDOM", "local ", "source ", "echo -e", "<<<", "&>"):
        assert bashism not in text, bashism
    # dash -n parses it as POSIX sh; bash --posix too.
    subprocess.run(["dash", "-n", str(EMITTER)], check=True)
    subprocess.run(["bash", "--posix", "-n", str(EMITTER)], check=True)
    body = [l.split("#")[0] for l in text.splitlines()]
    commands = {"cat", "mkdir", "printf", "exit", "set", "umask"}
    assert "date" not in " ".join(body) and "mktemp" not in " ".join(body) and "python" not in " ".join(body)
    assert all(c in text for c in commands)


def test_plugin_registers_every_event_synchronously():
    hooks = json.loads((REPO / "hooks" / "hooks.json").read_text())["hooks"]
    assert tuple(hooks) == HOOK_EVENTS
    for event, groups in hooks.items():
        (group,) = groups
        (hook,) = group["hooks"]
        assert hook["type"] == "command" and "async" not in hook
        assert hook["command"] == '"${CLAUDE_PLUGIN_ROOT}/hooks/emit.sh"'
    manifest = json.loads((REPO / ".claude-plugin" / "plugin.json").read_text())
    market = json.loads((REPO / ".claude-plugin" / "marketplace.json").read_text())
    assert manifest["name"] == "cc-capture"
    assert market["plugins"][0]["source"] == "./" and market["plugins"][0]["name"] == manifest["name"]
    assert os.access(EMITTER, os.X_OK)
