"""Fault: a huge pasted prompt in a transcript (a 120 MB line). Imported, it is cut as live capture
cuts an oversized event, without ever holding the whole line: memory stays flat."""

import json
import sys

from cc_capture import store
from cc_capture.claude_format import DEFAULT_MAX_OUTPUT_CHARS, shorten_strings
from cc_capture.transcripts.reader import lines_between
from support.faults import run_measuring_peak_rss

PROMPT_BYTES = 120 << 20


def _write_session(path):
    words = b"the quick brown fox jumps over a lazy dog "
    head = json.dumps({"type": "user", "sessionId": "huge", "uuid": "u1",
                       "message": {"role": "user", "content": "@@"}}).encode().split(b"@@")
    with open(path, "wb") as fh:
        fh.write(head[0])
        for _ in range(PROMPT_BYTES // len(words)):
            fh.write(words)
        fh.write(head[1] + b"\n")
        for row in ({"type": "assistant", "sessionId": "huge", "message": {"id": "m1", "content": [
                        {"type": "text", "text": "That is a lot of foxes."}]}},
                    {"type": "user", "sessionId": "huge", "uuid": "u2", "message": {"role": "user", "content": "thanks"}},
                    {"type": "assistant", "sessionId": "huge", "message": {"id": "m2", "content": [
                        {"type": "text", "text": "You are welcome."}]}}):
            fh.write(json.dumps(row).encode() + b"\n")
    return (PROMPT_BYTES // len(words)) * words.decode()


def test_a_huge_prompt_line_is_cut_as_live_capture_cuts_it_in_flat_memory(paths, tmp_path):
    session = tmp_path / "projects" / "-w" / "huge.jsonl"
    session.parent.mkdir(parents=True)
    prompt = _write_session(session)
    code, out, err, peak_mb = run_measuring_peak_rss(
        [sys.executable, "-m", "cc_capture", "import", str(session.parent), "--json", "--workers", "0"])
    print(f"importing a {PROMPT_BYTES >> 20} MB line: peak RSS {peak_mb:.0f} MB")
    assert code == 0, err
    assert json.loads(out)["traces"] == 2
    assert peak_mb < 400, peak_mb  # it took about 10x the line's size before
    db = store.connect(paths.db)
    try:
        stored = db.execute("SELECT prompt FROM traces WHERE trace_id = 'u1'").fetchone()[0]
        live = shorten_strings({"prompt": prompt}, DEFAULT_MAX_OUTPUT_CHARS)["prompt"]  # what live capture stores
        assert stored == live and len(stored) < DEFAULT_MAX_OUTPUT_CHARS + 100
        assert db.execute("SELECT final_response FROM traces WHERE trace_id = 'u2'").fetchone()[0] == "You are welcome."
    finally:
        db.conn.close()
    assert paths.db.stat().st_size < 20 << 20


def test_reader_offsets_stay_exact_around_a_long_line(tmp_path):
    """Resuming from any returned offset reads the rest exactly once, the long line included."""
    path = tmp_path / "t.jsonl"
    lines = [b'{"a":1}', json.dumps({"s": "x\\\"y" * (3 << 20)}).encode(), b'{"b":2}', b'{"c":3}']
    path.write_bytes(b"\n".join(lines) + b"\n")
    got = list(lines_between(path, 0, path.stat().st_size, max_string_bytes=100))
    assert [json.loads(g)["a" if i == 0 else list(json.loads(g))[0]] for i, (g, _) in enumerate(got)][0] == 1
    assert [o for _, o in got] == [sum(len(x) + 1 for x in lines[: i + 1]) for i in range(4)]
    cut = json.loads(got[1][0])["s"]
    assert cut.startswith("x\\\"y") and "truncated" in cut and len(cut) < 200
    assert [g for g, _ in got[2:]] == lines[2:]
    resumed = list(lines_between(path, got[1][1], path.stat().st_size))
    assert [g for g, _ in resumed] == lines[2:]
