"""`ccd browse` in a real browser: a store filled by real Claude Code sessions (parallel calls, a
failing call, a subagent), served by `ccd browse`, loaded in headless Chromium; the page a person
sees is checked, and screenshots are kept in test-artifacts/ (git-ignored)."""

import os
import shutil
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from html.parser import HTMLParser

import pytest

from cc_capture import store
from conftest import REPO, ingest_all
from test_browse import counts, fill_registry, get, listening
from test_e2e_claude import _compare_scenario, claude_bin, run, the_trace, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.claude
pytest.importorskip("datasette", reason="the browse extra is not installed (tests/run.sh installs it)")

ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def chromium():
    """Debian's headless Chromium (tests/run.sh installs it when it can)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` (tests/run.sh does it when run as root)")
    return exe


def browser(chromium, tmp_path, url, *args):
    profile = tmp_path / "chromium-profile"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           f"--user-data-dir={profile}", "--window-size=1400,2200", "--hide-scrollbars", *args, url]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def screenshot(chromium, tmp_path, url, name):
    path = tmp_path / f"{name}.png"
    browser(chromium, tmp_path, url, f"--screenshot={path}")
    assert path.stat().st_size > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)
    return path


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children, self.text = tag, dict(attrs), parent, [], ""

    @property
    def classes(self):
        return (self.attrs.get("class") or "").split()

    def find(self, cls=None, **data):
        """Descendants with this class and these data-* attributes, in document order."""
        out = []
        for child in self.children:
            if (cls is None or cls in child.classes) and all(child.attrs.get(f"data-{k}") == v for k, v in data.items()):
                out.append(child)
            out.extend(child.find(cls, **data))
        return out

    def inside(self, cls):
        node = self.parent
        while node is not None:
            if cls in node.classes:
                return node
            node = node.parent
        return None


class Dom(HTMLParser):
    """The DOM Chromium dumped, as a tree of Nodes with the text under each."""

    VOID = {"meta", "link", "br", "img", "input", "hr", "source", "col", "area", "base", "wbr"}

    def __init__(self, html):
        super().__init__()
        self.root = self.node = Node("root", [], None)
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.node)
        self.node.children.append(node)
        if tag not in self.VOID:
            self.node = node

    def handle_endtag(self, tag):
        node = self.node
        while node.parent is not None and node.tag != tag:
            node = node.parent
        if node.parent is not None:
            self.node = node.parent

    def handle_data(self, data):
        node = self.node
        while node is not None:
            node.text += data
            node = node.parent


def test_a_trace_of_real_sessions_in_headless_chromium(claude_bin, world, chromium, tmp_path):  # noqa: F811
    home, project, paths = world
    run(claude_bin, world, _compare_scenario(project), "CMP-MARKER go", "--allowedTools", "Edit")
    ingest_all(paths)
    trace = the_trace(paths, "CMP-MARKER")
    before = counts(paths.db)
    env = dict(os.environ, CC_CAPTURE_HOME=str(paths.home), COLUMNS="200")
    proc = subprocess.Popen([sys.executable, "-m", "cc_capture", "browse", "--no-open"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        url = line[line.index("http://"):].split()[0]
        port = urllib.parse.urlsplit(url).port
        assert listening(port) == ["0100007F"]  # 127.0.0.1 only

        page = url + "-/trace/" + trace["trace_id"]
        dom = Dom(browser(chromium, tmp_path, page, "--dump-dom")).root
        main = dom.find("cc-layout")[0]
        steps = [s for s in main.find("cc-step") if s.inside("cc-subagent") is None]
        tools = [[c.attrs["data-tool"] for c in s.find("cc-call") if c.inside("cc-subagent") is None] for s in steps]
        assert tools == [["Bash"], ["Glob", "Grep"], ["Bash"], ["Edit"], ["Agent"]]  # the steps in order
        assert "2 calls in parallel" in steps[1].text and "cc-parallel" in steps[1].find("cc-calls")[0].classes
        assert [s.find("cc-reasoning")[0].text for s in steps] == [
            "Look first.", "Two searches.", "This fails.", "An edit that cannot apply.", "Delegate."]
        failed = steps[2].find("cc-call")[0]
        assert "cc-error" in failed.classes and failed.attrs["data-status"] == "error" and "Exit code 2" in failed.text
        assert "cc-error" in steps[3].find("cc-call")[0].classes  # the Edit that could not apply
        assert "cc-error" not in steps[0].find("cc-call")[0].classes
        agent_call = steps[4].find("cc-call", tool="Agent")[0]
        (subagent,) = agent_call.find("cc-subagent")  # nested under the call that started it
        (inner,) = subagent.find("cc-call")
        assert inner.attrs["data-tool"] == "Bash" and "echo sub" in inner.text and "sub done" in subagent.text
        answer = main.find("cc-answer")[-1]
        assert "All compared." in answer.text
        side = dom.find("cc-side")[0]
        assert "Training" in side.text and "workflow" in side.text

        listing = Dom(browser(chromium, tmp_path, url + "cc-capture/recent_traces", "--dump-dom")).root
        links = [a.attrs["href"] for a in listing.find() if a.tag == "a" and "/-/trace/" in a.attrs.get("href", "")]
        assert f"/-/trace/{trace['trace_id']}" in links
        models = Dom(browser(chromium, tmp_path, url + "-/models", "--dump-dom")).root
        assert "No models yet" in models.text
        db = store.connect(paths.db)  # a registry appears while the browser is open
        fill_registry(db, tmp_path)
        db.conn.close()
        models = Dom(browser(chromium, tmp_path, url + "-/models", "--dump-dom")).root
        points = [n.attrs["data-version"] for n in models.find() if n.tag == "circle" and "data-version" in n.attrs]
        assert points == ["1", "2", "3"]
        (champion,) = [r for r in models.find("cc-champion") if r.tag == "tr"]
        assert champion.attrs["data-version"] == "2" and "champion" in champion.text
        assert "behavioural_similarity 0.31 <= 0.58" in models.text

        for name, target in (("trace", page), ("recent-traces", url + "cc-capture/recent_traces"),
                             ("models", url + "-/models"), ("home", url)):
            screenshot(chromium, tmp_path, target, f"browse-{name}")

        status, body = get(url + "cc-capture.json?sql=" + urllib.parse.quote("UPDATE traces SET prompt = 'x'"))
        assert status == 400 and "Statement must be a SELECT" in body
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, proc.stderr.read()
    assert counts(paths.db) == before
