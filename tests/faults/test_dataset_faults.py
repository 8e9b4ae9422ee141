"""`ccd dataset build` faults (issue 17, item 13): without the training extra it says what to
install and leaves nothing behind; a build that fails half-way leaves no partial folder.
(tests/faults/test_installer.py runs the first on a real install without the extra.)"""

import json
import subprocess
import sys

import pytest

from conftest import ccd, ingest_all


@pytest.fixture
def qualifying(paths, shared):
    from conftest import SESSION_42067652, replay

    replay(paths, shared, SESSION_42067652)
    ingest_all(paths)
    ccd("rate", "up")
    return paths


def _ccd_where(prelude: str, *args: str) -> subprocess.CompletedProcess:
    """`ccd ARGS` in a real process whose interpreter first runs `prelude`."""
    code = f"import sys\n{prelude}\nfrom cc_capture.cli.main import app\nsys.argv = ['ccd', *sys.argv[1:]]\napp()\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


def test_without_the_training_extra_says_what_to_install(qualifying):
    # sys.modules[name] = None is how Python itself reports a module as not installed (ImportError).
    p = _ccd_where("sys.modules['datasets'] = None", "dataset", "build")
    assert p.returncode == 1 and "./install.sh --train" in p.stderr and "Traceback" not in p.stderr
    assert not (qualifying.home / "datasets").exists()


def test_a_build_that_fails_half_way_leaves_no_folder(qualifying):
    # The Hugging Face folder is written last; make that step fail as a full disk would.
    p = _ccd_where("import datasets\n"
                   "def full(*a, **k):\n    raise OSError(28, 'No space left on device')\n"
                   "datasets.DatasetDict.save_to_disk = full", "dataset", "build")
    assert p.returncode == 1 and "No space left on device" in p.stderr and "Traceback" not in p.stderr
    assert list((qualifying.home / "datasets").iterdir()) == []
    built = json.loads(ccd("dataset", "build", "--json").stdout)  # and a later build works
    assert [f.name for f in (qualifying.home / "datasets").iterdir()] == [built["path"].rsplit("/", 1)[-1]]
