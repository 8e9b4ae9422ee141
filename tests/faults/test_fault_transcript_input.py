"""Fault: hostile or broken transcript content, through the real `ccd import` and the live mirror.

A tool result's text comes from anywhere (an `ls`, a web page, a repository); only Claude Code's
own spill marker may make the importer read a file, and only inside that session's folder.
"""

import json
import os
import subprocess
import sys

from cc_capture import store
from conftest import wait_for

SECRET = "the private contents of a file outside every session"


def _session(root, sid, result_text):
    """A transcript whose one Bash call returned `result_text`."""
    session = root / f"{sid}.jsonl"
    rows = [
        {"type": "user", "sessionId": sid, "uuid": f"{sid}-u1", "message": {"role": "user", "content": "run it"}},
        {"type": "assistant", "sessionId": sid, "message": {"id": f"{sid}-m1", "content": [
            {"type": "tool_use", "id": f"toolu_{sid}", "name": "Bash", "input": {"command": "ls"}}]}},
        {"type": "user", "sessionId": sid, "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{sid}", "content": result_text}]}},
        {"type": "assistant", "sessionId": sid, "message": {"id": f"{sid}-m2", "content": [
            {"type": "text", "text": "Done."}]}},
    ]
    session.parent.mkdir(parents=True, exist_ok=True)
    session.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return session


def _marker(path):
    return (f"<persisted-output>\nOutput too large (53.6KB). Full output saved to: {path}\n\n"
            f"Preview (first 2KB):\nhead of it\n</persisted-output>")


def _ccd(*args):
    return subprocess.run([sys.executable, "-m", "cc_capture", *args], capture_output=True, text=True, timeout=120)


def _outputs(paths):
    db = store.connect(paths.db)
    try:
        return {r[0]: json.loads(r[1]) if r[1] else r[1] for r in db.execute("SELECT tool_use_id, output FROM tool_calls")}
    finally:
        db.conn.close()


def _hostile_sessions(projects, outside):
    """Tool results that name files a spill reading must never follow."""
    own = projects / "good" / "tool-results"
    own.mkdir(parents=True)
    (own / "toolu_good.txt").write_text("spilled output of the good session")
    link = projects / "symlink" / "tool-results" / "link.txt"  # inside tool-results, pointing out
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    other = projects / "other" / "tool-results"
    other.mkdir(parents=True)
    (other / "theirs.txt").write_text(SECRET)
    return {
        # an `ls` of a folder that happens to be called tool-results
        "ls": _session(projects, "ls", f"{own}/toolu_good.txt\n{outside}\n/x/tool-results/../../{outside}"),
        # a web page or README quoting the marker, not at the start of the result
        "quoted": _session(projects, "quoted", "The page said:\n" + _marker(outside)),
        # the real marker, but walking out with ..
        "dotdot": _session(projects, "dotdot", _marker(projects / "dotdot" / "tool-results" / ".." / ".." / "x")),
        # the real marker pointing at another session's spill
        "crossing": _session(projects, "crossing", _marker(other / "theirs.txt")),
        # the real marker, through a symlink that leaves the folder
        "symlink": _session(projects, "symlink", _marker(link)),
        # and the genuine case still works
        "good": _session(projects, "good", _marker(own / "toolu_good.txt")),
    }


def test_import_follows_only_claude_codes_marker_inside_the_session(paths, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET)
    projects = tmp_path / "projects" / "-w"
    sessions = _hostile_sessions(projects, outside)
    p = _ccd("import", str(tmp_path / "projects"), "--json", "--workers", "0")
    assert p.returncode == 0, p.stderr
    outputs = _outputs(paths)
    assert set(outputs) == {f"toolu_{sid}" for sid in sessions}
    assert outputs["toolu_good"] == "spilled output of the good session"
    for sid in ("ls", "quoted", "dotdot", "crossing", "symlink"):
        assert SECRET not in outputs[f"toolu_{sid}"], sid
        assert outputs[f"toolu_{sid}"].startswith(("/", "The page said", "<persisted-output>")), sid


def test_live_mirror_does_not_read_a_file_named_in_a_tool_result(paths, tmp_path):
    from cc_capture import daemon

    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET)
    projects = tmp_path / "projects"
    (paths.home / "config.toml").write_text(f"[capture]\ntranscript_roots = [{str(projects)!r}]\n")
    projects.mkdir()
    (projects / "-w" / "live" / "tool-results").mkdir(parents=True)  # Claude Code made it for a real spill
    (tmp_path / "tool-results").mkdir()  # any folder of that name, e.g. in a project
    daemon.start(paths)
    try:
        _session(projects / "-w", "live", _marker(projects / "-w" / "live" / "tool-results" / ".." / ".." / ".."
                                                  / "outside.txt"))
        _session(projects / "-w", "livels", f"total 1\n{tmp_path}/tool-results/../outside.txt")
        wait_for(lambda: len(_outputs(paths)) == 2, timeout=60, message="both sessions mirrored")
    finally:
        daemon.stop(paths)
    assert all(SECRET not in out for out in _outputs(paths).values())
    assert os.path.exists(outside)
