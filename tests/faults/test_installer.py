"""Faults met through install.sh on a real install (issue 17, items 9, 13 and 14): a data folder
whose path holds a `"` and a space, the dataset command and `ccd doctor` without the training
extra, and `--uninstall --purge` with an unparseable settings.json."""

import json
import shutil
import subprocess

import pytest

from conftest import wait_for
from test_install import REPO, fake_systemctl, fresh_env, sh

pytestmark = pytest.mark.timeout(1200)  # a real pip install into a fresh venv, on a busy machine


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """install.sh (no extras, no systemd) into a data folder named `data "quoted" dir`."""
    tmp = tmp_path_factory.mktemp("install")
    home, env = fresh_env(tmp, systemd_user=False)
    data = tmp / 'data "quoted" dir'
    env["CC_CAPTURE_HOME"] = str(data)
    out = sh(["sh", str(REPO / "install.sh")], env).stdout
    assert "daemon running" in out
    yield home, env, data, tmp
    sh(["sh", str(REPO / "install.sh"), "--uninstall", "--purge"], env, check=False)


def test_install_into_a_path_with_a_quote_captures(installed):
    home, env, data, _ = installed
    ccd = str(home / ".local" / "bin" / "ccd")
    assert json.loads(sh([ccd, "status", "--json"], env).stdout)["db_path"] == str(data / "cc-capture.db")
    settings = json.loads((home / ".claude" / "settings.json").read_text())
    hook = settings["hooks"]["Stop"][0]["hooks"][0]["command"]
    subprocess.run(hook, shell=True, input=b'{"hook_event_name":"Stop","session_id":"q"}', env=env, check=True)
    wait_for(lambda: json.loads(sh([ccd, "status", "--json"], env).stdout)["counts"]["events"] == 1,
             message="the daemon ingests the hook's event")


def test_systemd_unit_for_a_path_with_a_quote(installed, tmp_path):
    home, env, data, tmp = installed
    env = dict(env, PATH=f"{fake_systemctl(tmp_path, works=True)}:{env['PATH']}")
    sh(["sh", str(REPO / "install.sh")], env)
    unit = tmp / "xdg-config" / "systemd" / "user" / "cc-capture.service"
    text = unit.read_text()
    escaped = str(data).replace('"', '\\"')
    assert f'ExecStart=/usr/bin/env "{escaped}/venv/bin/ccd" daemon run' in text
    assert f'Environment="CC_CAPTURE_HOME={escaped}"' in text
    if shutil.which("systemd-analyze"):  # systemd's own parser accepts it
        p = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr


def test_dataset_build_without_the_training_extra_says_what_to_install(installed):
    home, env, data, _ = installed
    p = sh([str(home / ".local" / "bin" / "ccd"), "dataset", "build"], env, check=False)
    assert p.returncode == 1 and "./install.sh --train" in p.stderr and "Traceback" not in p.stderr
    assert not (data / "datasets").exists() or not list((data / "datasets").iterdir())


def test_doctor_without_the_training_extra(installed):
    home, env, data, _ = installed
    ccd = str(home / ".local" / "bin" / "ccd")
    checks = {c["name"]: c for c in json.loads(sh([ccd, "doctor", "--json"], env, check=False).stdout)["checks"]}
    assert checks["training_stack"]["status"] == "ok" and "torch" in checks["training_stack"]["details"]["missing"]
    (data / "config.toml").write_text("[learning]\nenabled = true\n")
    p = sh([ccd, "doctor", "--json"], env, check=False)
    checks = {c["name"]: c for c in json.loads(p.stdout)["checks"]}
    assert p.returncode == 1 and checks["training_stack"]["status"] == "fail"
    assert "./install.sh --train" in checks["training_stack"]["action"]
    (data / "config.toml").unlink()


def test_uninstall_purge_with_unparseable_settings_removes_nothing(installed):
    home, env, data, _ = installed
    settings = home / ".claude" / "settings.json"
    good = settings.read_text()
    settings.write_text(good[:-20])  # cut short by an editor crash
    p = sh(["sh", str(REPO / "install.sh"), "--uninstall", "--purge"], env, check=False)
    assert p.returncode == 1 and "nothing was removed" in p.stderr
    assert (data / "hooks" / "cc-capture-emit.sh").exists() and (data / "venv" / "bin" / "ccd").exists()
    assert (data / "cc-capture.db").exists() and (home / ".local" / "bin" / "ccd").exists()
    settings.write_text(good)
    sh(["sh", str(REPO / "install.sh"), "--uninstall", "--purge"], env)
    assert not data.exists() and "cc-capture-emit.sh" not in settings.read_text()
