"""Fault: text that is not quite Unicode. A lone UTF-16 surrogate in a hook payload (JavaScript cuts
strings inside an emoji; JSON.parse accepts it) and one invalid UTF-8 byte in a transcript cost
that character, never the event, the call or the session."""

import json
import subprocess
import sys

from cc_capture import daemon
from conftest import db_rows, emit, wait_for


def _ccd(*args):
    return subprocess.run([sys.executable, "-m", "cc_capture", *args], capture_output=True, text=True, timeout=120)



def test_lone_surrogate_in_a_hook_payload_keeps_the_event_and_closes_the_call(paths):
    base = b'"session_id":"s","prompt_id":"p","tool_name":"Bash","tool_use_id":"toolu_emoji"'
    emit(paths, b'{"hook_event_name":"UserPromptSubmit","session_id":"s","prompt_id":"p","prompt":"cut \\ud83d"}')
    emit(paths, b'{"hook_event_name":"PreToolUse",' + base + b',"tool_input":{"command":"echo \\ud83d\\ude00"}}')
    emit(paths, b'{"hook_event_name":"PostToolUse",' + base
         + b',"tool_input":{"command":"echo"},"tool_response":{"stdout":"smile \\ud83d","stderr":""}}')
    p = _ccd("ingest")
    assert p.returncode == 0, p.stderr
    assert db_rows(paths, "SELECT count(*) FROM quarantine") == [(0,)]
    assert db_rows(paths, "SELECT count(*) FROM events") == [(3,)]
    ((status, output),) = db_rows(paths, "SELECT status, output FROM tool_calls")
    assert status == "ok" and json.loads(output)["stdout"] == "smile \ufffd"
    assert db_rows(paths, "SELECT prompt FROM traces") == [("cut \ufffd",)]


def _bad_byte_session(folder, sid):
    rows = [
        {"type": "user", "sessionId": sid, "uuid": f"{sid}-u1", "message": {"role": "user", "content": "first BAD"}},
        {"type": "assistant", "sessionId": sid, "message": {"id": f"{sid}-m1", "content": [
            {"type": "tool_use", "id": f"toolu_{sid}", "name": "Bash", "input": {"command": "cat BAD"}}]}},
        {"type": "user", "sessionId": sid, "toolUseResult": {"stdout": "BAD out", "stderr": ""},
         "message": {"role": "user", "content": [
             {"type": "tool_result", "tool_use_id": f"toolu_{sid}", "content": "BAD out"}]}},
        {"type": "assistant", "sessionId": sid, "message": {"id": f"{sid}-m2", "content": [
            {"type": "text", "text": "done"}]}},
        {"type": "user", "sessionId": sid, "uuid": f"{sid}-u2", "message": {"role": "user", "content": "second"}},
        {"type": "assistant", "sessionId": sid, "message": {"id": f"{sid}-m3", "content": [
            {"type": "text", "text": "fine"}]}},
    ]
    folder.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r) + "\n" for r in rows).encode().replace(b"BAD", b"caf\xe9")  # Latin-1, not UTF-8
    (folder / f"{sid}.jsonl").write_bytes(data)


def test_invalid_utf8_in_a_transcript_costs_only_the_byte(paths, tmp_path):
    _bad_byte_session(tmp_path / "projects" / "-w", "latin")
    p = _ccd("import", str(tmp_path / "projects"), "--json", "--workers", "0")
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    assert summary["failed"] == {} and summary["traces"] == 2
    assert db_rows(paths, "SELECT prompt FROM traces ORDER BY seq") == [("first caf\ufffd",), ("second",)]
    ((inp, out),) = db_rows(paths, "SELECT input, output FROM tool_calls")
    assert json.loads(inp)["command"] == "cat caf\ufffd" and json.loads(out)["stdout"] == "caf\ufffd out"


def test_live_mirror_imports_a_transcript_with_an_invalid_byte(paths, tmp_path):
    projects = tmp_path / "projects"
    projects.mkdir()
    (paths.home / "config.toml").write_text(f"[capture]\ntranscript_roots = [{str(projects)!r}]\n")
    daemon.start(paths)
    try:
        _bad_byte_session(projects / "-w", "mirrored")
        emit(paths, {"hook_event_name": "UserPromptSubmit", "session_id": "other", "prompt_id": "x", "prompt": "y"})
        wait_for(lambda: db_rows(paths, "SELECT count(*) FROM traces WHERE session_id = 'mirrored'") == [(2,)],
                 timeout=60, message="the session mirrored")
    finally:
        daemon.stop(paths)
    assert "Traceback" not in paths.daemon_log.read_text()
