"""install.sh on a fresh HOME: venv, `ccd`, hooks, service or background daemon; uninstall and purge."""

import json
import os
import plistlib
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, wait_for


def fake_systemctl(tmp_path, works: bool) -> Path:
    """A systemctl that records its calls and, like systemd, runs the user unit's ExecStart (with its
    Environment) on enable --now/start/restart and stops it on disable --now/stop; without a user
    session it fails like the real one."""
    fake = tmp_path / "fakebin"
    fake.mkdir()
    script = f"""#!{sys.executable}
import os, shlex, signal, subprocess, sys, time
from pathlib import Path
args = sys.argv[1:]
with open({str(tmp_path / "systemctl.calls")!r}, "a") as calls:
    calls.write(" ".join(args) + "\\n")
if not {works!r}:
    sys.exit(1)
unit = Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user" / "cc-capture.service"
pidfile = Path({str(tmp_path / "unit.pid")!r})

def stop():
    if pidfile.exists():
        pid = int(pidfile.read_text())
        pidfile.unlink()
        try:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        for _ in range(200):  # a detached child is not ours to wait for: watch it go
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)

def start():
    env, argv = dict(os.environ), None
    for line in unit.read_text().splitlines():
        if line.startswith("ExecStart="):
            argv = shlex.split(line[len("ExecStart="):])
        elif line.startswith("Environment="):
            name, _, value = shlex.split(line[len("Environment="):])[0].partition("=")
            env[name] = value
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    pidfile.write_text(str(proc.pid))

if ("enable" in args and "--now" in args) or "start" in args or "restart" in args:
    stop()
    start()
elif ("disable" in args and "--now" in args) or "stop" in args:
    stop()
"""
    (fake / "systemctl").write_text(script)
    (fake / "systemctl").chmod(0o755)
    return fake


def fresh_env(tmp_path, systemd_user: bool):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CC_CAPTURE_", "XDG_", "CLAUDE_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(tmp_path / "xdg-data"), XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
               PYTHON=sys.executable, PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache/pip")))
    env["PATH"] = f"{fake_systemctl(tmp_path, systemd_user)}:{env['PATH']}"
    return home, env


def sh(cmd, env, check=True):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if check and p.returncode:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def test_install_with_systemd_user_unit(tmp_path):
    home, env = fresh_env(tmp_path, systemd_user=True)
    calls = tmp_path / "systemctl.calls"
    out = sh(["sh", str(REPO / "install.sh")], env).stdout
    data = tmp_path / "xdg-data" / "cc-capture"
    unit = tmp_path / "xdg-config" / "systemd" / "user" / "cc-capture.service"
    ccd = data / "venv" / "bin" / "ccd"
    text = unit.read_text()
    assert f'ExecStart="{ccd}" daemon run' in text and f'Environment="CC_CAPTURE_HOME={data}"' in text
    assert "--user enable --now cc-capture.service" in calls.read_text()
    assert (home / ".local" / "bin" / "ccd").resolve() == ccd.resolve()
    settings = json.loads((home / ".claude" / "settings.json").read_text())
    assert "cc-capture-emit.sh" in settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    assert "/plugin marketplace add" in out and "traces" in out  # plugin hint, then `ccd status`
    status = json.loads(sh([str(ccd), "status", "--json"], env).stdout)
    assert status["daemon"]["running"] and status["daemon"]["ready"]  # the unit's daemon, waited for
    assert oct(data.stat().st_mode & 0o777) == "0o700"
    # The hook the installer registered journals into the same place the service reads.
    hook = settings["hooks"]["Stop"][0]["hooks"][0]["command"]
    subprocess.run(hook, shell=True, input=b'{"hook_event_name":"Stop","session_id":"s"}', env=env, check=True)
    wait_for(lambda: json.loads(sh([str(ccd), "status", "--json"], env).stdout)["counts"]["events"] == 1,
             message="the unit's daemon ingests the hook's event")
    sh([str(data / "venv" / "bin" / "python"), "-c", "import datasette"], env)  # `ccd browse` is installed by default
    sh(["sh", str(REPO / "install.sh"), "--uninstall"], env)
    assert not unit.exists() and "--user disable --now cc-capture.service" in calls.read_text()
    assert not (tmp_path / "unit.pid").exists()  # the unit's daemon was stopped
    assert "hooks" not in json.loads((home / ".claude" / "settings.json").read_text())


def test_install_without_systemd_runs_in_background_then_uninstall_and_purge(tmp_path):
    home, env = fresh_env(tmp_path, systemd_user=False)
    out = sh(["sh", str(REPO / "install.sh"), "--no-browse"], env).stdout
    assert "started in the background" in out and "daemon running" in out
    ccd = str(home / ".local" / "bin" / "ccd")
    browse = sh([ccd, "browse", "--no-open"], env, check=False)
    assert browse.returncode == 1 and "Datasette is not installed" in browse.stderr
    status = json.loads(sh([ccd, "status", "--json"], env).stdout)
    assert status["daemon"]["running"]
    data = Path(status["db_path"]).parent
    assert data == tmp_path / "xdg-data" / "cc-capture"
    again = sh(["sh", str(REPO / "install.sh")], env)  # idempotent
    assert "hooks already installed" in again.stdout
    sh([str(data / "venv" / "bin" / "python"), "-c", "import datasette"], env)  # without --no-browse: added
    assert json.loads(sh([ccd, "status", "--json"], env).stdout)["daemon"]["running"]

    sh(["sh", str(REPO / "install.sh"), "--uninstall"], env)
    assert not (home / ".local" / "bin" / "ccd").exists() and not (data / "venv").exists()
    assert (data / "cc-capture.db").exists()  # data kept
    assert not (data / "ccd.pid").exists()
    sh(["sh", str(REPO / "install.sh"), "--uninstall", "--purge"], env)
    assert not data.exists()


def test_bad_option_and_old_python_are_clear_errors(tmp_path):
    home, env = fresh_env(tmp_path, systemd_user=False)
    p = sh(["sh", str(REPO / "install.sh"), "--frobnicate"], env, check=False)
    assert p.returncode == 1 and "unknown option: --frobnicate" in p.stderr
    fake_py = tmp_path / "python2"
    fake_py.write_text("#!/bin/sh\ncase \"$1\" in --version) echo 'Python 3.8.10';; *) exit 1;; esac\n")
    fake_py.chmod(0o755)
    p = sh(["sh", str(REPO / "install.sh")], dict(env, PYTHON=str(fake_py)), check=False)
    assert p.returncode == 1 and "Python 3.8.10 is too old" in p.stderr


def test_service_templates_are_valid(tmp_path):
    plist = (REPO / "daemon" / "dev.cc-capture.ccd.plist").read_text()
    parsed = plistlib.loads(plist.replace("@CCD@", "/x/ccd").replace("@DATA@", "/x/data").encode())
    assert parsed["ProgramArguments"] == ["/x/ccd", "daemon", "run"]
    assert parsed["EnvironmentVariables"] == {"CC_CAPTURE_HOME": "/x/data"} and parsed["Umask"] == 0o077
    unit = (REPO / "daemon" / "cc-capture.service").read_text()
    assert "ExecStart=\"@CCD@\" daemon run" in unit and "[Install]" in unit and "WantedBy=default.target" in unit


@pytest.mark.training
@pytest.mark.timeout(900)  # installs torch, transformers, trl and peft into a fresh venv: 153 s idle, over 300 s on a loaded machine
def test_install_with_the_training_extra(tmp_path):
    """--train adds transformers + peft + trl >= 1.16 with the CPU torch pinned (constraints/cpu.txt)."""
    home, env = fresh_env(tmp_path, systemd_user=False)
    sh(["sh", str(REPO / "install.sh"), "--train"], env)
    venv_python = tmp_path / "xdg-data" / "cc-capture" / "venv" / "bin" / "python"
    versions = sh([str(venv_python), "-c", "import torch, trl, peft, transformers; "
                   "print(torch.__version__, trl.__version__)"], env).stdout.split()
    assert versions[0] == "2.13.0+cpu"
    assert tuple(int(x) for x in versions[1].split(".")[:2]) >= (1, 16)
    assert "--phase" in sh([str(home / ".local" / "bin" / "ccd"), "train", "--help"], env).stdout
    sh(["sh", str(REPO / "install.sh"), "--uninstall", "--purge"], env)
