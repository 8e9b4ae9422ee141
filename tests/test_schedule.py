"""The learning scheduler: the pure decision (fixed clocks), the machine probes (fake /sys trees and
a fake nvidia-smi), its record, and the daemon that starts a real pipeline process without
blocking capture."""

import json
import os
import signal
import re
import stat
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cc_capture.config import ConfigError, LearningSettings, Paths, load_settings
from cc_capture.scheduler import probes
from cc_capture.scheduler.decide import GB, Action, MachineState, StoreState, Window, decide

NOW = datetime(2026, 11, 29, 2, 30)  # inside the default window 01:00-06:00
T = NOW.timestamp()
READY_STORE = StoreState(new_traces=300, last_started_at=T - 72 * 3600, last_event_at=T - 24 * 3600)
READY_MACHINE = MachineState(gpu_free_bytes=20 * GB, on_battery=False, free_disk_bytes=100 * GB,
                             needed_disk_bytes=30 * GB)


def conditions(decision):
    return [r.condition for r in decision.reasons]


def test_everything_met_runs():
    d = decide(NOW, LearningSettings(), READY_STORE, READY_MACHINE)
    assert d.action is Action.RUN and conditions(d) == ["new_traces"]
    assert "300 new qualifying traces" in d.reasons[0].message


def test_disabled_waits_for_nothing_else():
    d = decide(NOW, LearningSettings(enabled=False), READY_STORE, READY_MACHINE)
    assert d.action is Action.WAIT and conditions(d) == ["enabled"]


@pytest.mark.parametrize("clock, inside", [("00:59", False), ("01:00", True), ("05:59", True), ("06:00", False),
                                           ("13:00", False)])
def test_window_same_day(clock, inside):
    h, m = map(int, clock.split(":"))
    d = decide(NOW.replace(hour=h, minute=m), LearningSettings(), READY_STORE, READY_MACHINE)
    assert (d.action is Action.RUN) == inside
    if not inside:
        assert conditions(d) == ["window"] and d.next_window_at.hour == 1


@pytest.mark.parametrize("clock, inside", [("22:59", False), ("23:00", True), ("23:59", True), ("00:00", True),
                                           ("03:59", True), ("04:00", False), ("12:00", False)])
def test_window_crossing_midnight(clock, inside):
    h, m = map(int, clock.split(":"))
    s = LearningSettings(window="23:00-04:00")
    d = decide(NOW.replace(hour=h, minute=m), s, READY_STORE, READY_MACHINE)
    assert (d.action is Action.RUN) == inside, d.reasons


def test_next_window_start_is_tonight_or_tomorrow():
    w = Window.parse("23:00-04:00")
    assert w.next_start(datetime(2026, 11, 29, 12, 0)) == datetime(2026, 11, 29, 23, 0)
    assert w.next_start(datetime(2026, 11, 29, 23, 30)) == datetime(2026, 11, 30, 23, 0)
    assert Window.parse("always").next_start(NOW) is None


def test_always_window():
    d = decide(NOW.replace(hour=14), LearningSettings(window="always"), READY_STORE, READY_MACHINE)
    assert d.action is Action.RUN


@pytest.mark.parametrize("window", ["1:00-06:00", "01:00", "25:00-03:00", "01:00-01:00", "never"])
def test_bad_window_is_a_clear_settings_error(window, paths, monkeypatch):
    monkeypatch.setenv("CC_CAPTURE_LEARNING__WINDOW", window)
    with pytest.raises(ConfigError, match="window"):
        load_settings(paths)


def test_settings_from_environment(paths, monkeypatch):
    monkeypatch.setenv("CC_CAPTURE_LEARNING__MIN_NEW_TRACES", "7")
    monkeypatch.setenv("CC_CAPTURE_LEARNING__ALLOW_CPU", "true")
    learning = load_settings(paths).learning
    assert learning.min_new_traces == 7 and learning.allow_cpu and learning.window == "01:00-06:00"


@pytest.mark.parametrize("value", ['["nice", "-n", "19", "ccd", "pipeline", "run"]', "nice -n 19 ccd pipeline run"])
def test_pipeline_command_from_environment(paths, monkeypatch, value):
    monkeypatch.setenv("CC_CAPTURE_LEARNING__PIPELINE_COMMAND", value)
    assert load_settings(paths).learning.pipeline_command == ["nice", "-n", "19", "ccd", "pipeline", "run"]
    monkeypatch.setenv("CC_CAPTURE_CAPTURE__EMAIL_ALLOW", '["example.com"]')  # every list setting, as in config.toml
    assert load_settings(paths).capture.email_allow == ["example.com"]


def test_new_traces_threshold_and_first_pipeline_threshold():
    few = StoreState(new_traces=199, last_started_at=T - 48 * 3600)
    d = decide(NOW, LearningSettings(), few, READY_MACHINE)
    assert conditions(d) == ["new_traces"] and d.reasons[0].message.startswith("1 more new qualifying")
    first = StoreState(new_traces=300)  # never a pipeline: min_first_traces (500) applies
    d = decide(NOW, LearningSettings(), first, READY_MACHINE)
    assert conditions(d) == ["new_traces"] and "200 more qualifying traces before the first" in d.reasons[0].message
    assert decide(NOW, LearningSettings(), StoreState(new_traces=500), READY_MACHINE).action is Action.RUN


def test_min_interval_since_last_start():
    recent = StoreState(new_traces=300, last_started_at=T - 19 * 3600)
    assert conditions(decide(NOW, LearningSettings(), recent, READY_MACHINE)) == ["interval"]
    assert decide(NOW, LearningSettings(min_interval_h=18), recent, READY_MACHINE).action is Action.RUN


def test_gpu_free_memory_unless_allow_cpu():
    small = MachineState(8 * GB, False, 100 * GB, 30 * GB)
    none = MachineState(None, False, 100 * GB, 30 * GB)
    d = decide(NOW, LearningSettings(), READY_STORE, small)
    assert conditions(d) == ["gpu"] and "8.0 GB GPU memory free" in d.reasons[0].message
    assert conditions(decide(NOW, LearningSettings(), READY_STORE, none)) == ["gpu"]
    assert decide(NOW, LearningSettings(min_gpu_free_gb=8), READY_STORE, small).action is Action.RUN
    assert decide(NOW, LearningSettings(allow_cpu=True), READY_STORE, none).action is Action.RUN


def test_user_idle():
    busy = StoreState(new_traces=300, last_started_at=T - 48 * 3600, last_event_at=T - 10 * 60)
    d = decide(NOW, LearningSettings(), busy, READY_MACHINE)
    assert conditions(d) == ["idle"] and "10 min ago" in d.reasons[0].message
    assert decide(NOW, LearningSettings(idle_min=5), busy, READY_MACHINE).action is Action.RUN


def test_battery_unless_allowed():
    battery = MachineState(20 * GB, True, 100 * GB, 30 * GB)
    assert conditions(decide(NOW, LearningSettings(), READY_STORE, battery)) == ["power"]
    assert decide(NOW, LearningSettings(allow_battery=True), READY_STORE, battery).action is Action.RUN


def test_free_disk():
    full = MachineState(20 * GB, False, 29 * GB, 30 * GB)
    assert conditions(decide(NOW, LearningSettings(), READY_STORE, full)) == ["disk"]


def test_running_pipeline_waits():
    running = StoreState(new_traces=300, last_started_at=T - 48 * 3600, running="pipeline x (pid 9)")
    assert conditions(decide(NOW, LearningSettings(), running, READY_MACHINE)) == ["running"]


def test_failure_is_retried_after_retry_after_h_or_on_new_data():
    failed = StoreState(new_traces=300, last_started_at=T - 48 * 3600, last_failed_at=T - 3600)
    assert conditions(decide(NOW, LearningSettings(), failed, READY_MACHINE)) == ["retry"]
    later = StoreState(new_traces=300, last_started_at=T - 48 * 3600, last_failed_at=T - 7 * 3600)
    assert decide(NOW, LearningSettings(), later, READY_MACHINE).action is Action.RUN
    new_data = StoreState(new_traces=300, last_started_at=T - 48 * 3600, last_failed_at=T - 3600,
                          traces_since_failure=1)
    assert decide(NOW, LearningSettings(), new_data, READY_MACHINE).action is Action.RUN


def test_every_unmet_condition_is_listed():
    store = StoreState(new_traces=3, last_started_at=T - 3600, last_failed_at=T - 60, last_event_at=T - 60,
                       running="pipeline p")
    machine = MachineState(1 * GB, True, 1 * GB, 30 * GB)
    d = decide(NOW, LearningSettings(window="03:00-04:00"), store, machine)
    assert d.action is Action.WAIT
    assert conditions(d) == ["window", "new_traces", "interval", "running", "retry", "gpu", "idle", "power", "disk"]


# ---------------------------------------------------------------- probes


def fake_supply(root, name, **files):
    d = root / name
    d.mkdir(parents=True)
    for key, value in files.items():
        (d / key).write_text(value + "\n")


def test_power_on_a_desktop_without_battery(tmp_path):
    fake_supply(tmp_path, "AC", type="Mains", online="1")
    assert probes.on_battery(tmp_path, platform="linux") is False
    assert probes.on_battery(tmp_path / "none", platform="linux") is False


def test_power_laptop_on_battery_and_on_mains(tmp_path):
    fake_supply(tmp_path, "AC", type="Mains", online="0")
    fake_supply(tmp_path, "BAT0", type="Battery", status="Discharging")
    fake_supply(tmp_path, "hidpp_battery_0", type="Battery", scope="Device", status="Discharging")  # a mouse
    assert probes.on_battery(tmp_path, platform="linux") is True
    (tmp_path / "AC" / "online").write_text("1\n")
    (tmp_path / "BAT0" / "status").write_text("Charging\n")
    assert probes.on_battery(tmp_path, platform="linux") is False


def test_power_with_only_a_mouse_battery_discharging(tmp_path):
    fake_supply(tmp_path, "hidpp_battery_0", type="Battery", scope="Device", status="Discharging")
    assert probes.on_battery(tmp_path, platform="linux") is False


def fake_tool(bin_dir, name, script):
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)


def test_power_on_macos_through_pmset(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "pmset", "echo \"Now drawing from 'Battery Power'\"\n"
                                "echo ' -InternalBattery-0 (id=1234)\t81%; discharging; 4:02 remaining'\n")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    assert probes.on_battery(platform="darwin") is True
    fake_tool(bin_dir, "pmset", "echo \"Now drawing from 'AC Power'\"\n")
    assert probes.on_battery(platform="darwin") is False


def test_gpu_free_memory_through_nvidia_smi(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "nvidia-smi", 'case "$*" in *memory.free*) printf "1024\\n20480\\n";; *) exit 9;; esac\n')
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(probes, "_nvml_free", lambda: None)  # this machine may have NVML; the fallback is tested
    assert probes.gpu_free_bytes() == 20480 << 20


def test_no_gpu_when_nvidia_smi_is_absent_or_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(probes, "_nvml_free", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert probes.gpu_free_bytes() is None
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "nvidia-smi", "echo 'NVIDIA-SMI has failed' >&2; exit 9\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert probes.gpu_free_bytes() is None


def test_disk_needed_from_the_base_model_size(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.safetensors").write_bytes(b"\0" * 4096)
    assert probes.model_bytes(str(model)) == 4096
    paths = Paths(tmp_path / "home").ensure()
    state = probes.machine_state(paths, LearningSettings(allow_cpu=True, min_free_disk_gb=0, disk_per_base_model=3),
                                 load_settings(paths).train.model_copy(update={"base_model": str(model)}))
    assert state.needed_disk_bytes == 3 * 4096 and state.gpu_free_bytes is None and state.free_disk_bytes > 0


# ---------------------------------------------------------------- the daemon's job, with real processes

from cc_capture import daemon, store  # noqa: E402
from cc_capture.scheduler.job import MISFIRE_GRACE_S, LearningScheduler  # noqa: E402
from conftest import emit, wait_for  # noqa: E402
from support import readme  # noqa: E402

READY_CONFIG = """
[learning]
window = "always"
allow_cpu = true
allow_battery = true
min_first_traces = 0
min_new_traces = 0
min_interval_h = 0
idle_min = 0
min_free_disk_gb = 0
disk_per_base_model = 0
check_interval_min = {interval}
pipeline_command = {command}
"""


def configure(paths, command, interval=0.02, extra=""):
    (paths.home / "config.toml").write_text(READY_CONFIG.format(interval=interval, command=json.dumps(command))
                                            + extra)


def rows(paths, sql, params=()):
    db = store.connect(paths.db)
    try:
        return [dict(r) for r in db.query(sql, params)]
    finally:
        db.conn.close()


def runs(paths):
    return rows(paths, "SELECT * FROM schedule_decisions WHERE action = 'run' ORDER BY id")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill(pid):
    if alive(pid):
        os.kill(pid, 9)


def test_job_is_coalesced_single_and_forgiving_of_a_down_daemon(paths):
    s = load_settings(paths)
    learning = LearningScheduler(paths, s)
    learning.start()
    try:
        job = learning.job
        assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time == MISFIRE_GRACE_S >= 3600
        # one job: every check_interval_min, and at the window's start (01:00)
        fires = [datetime(2026, 11, 30, 0, 31, 7).astimezone()]  # not on a quarter: 01:00 comes from the window
        while len(fires) < 8:  # the fire times one after another, as the scheduler follows them
            fires.append(job.trigger.get_next_fire_time(fires[-1], fires[-1] + timedelta(microseconds=1)))
        assert "01:00:00" in {f.strftime("%H:%M:%S") for f in fires}
        assert all(timedelta(0) < b - a <= timedelta(minutes=15) for a, b in zip(fires, fires[1:]))
        wait_for(lambda: rows(paths, "SELECT * FROM schedule_decisions"), message="the first check at start")
    finally:
        learning.shutdown()


def test_daemon_starts_the_pipeline_as_a_process_and_keeps_ingesting(paths):
    """A real process stands for the pipeline (it sleeps); hook events are ingested while it runs; a
    daemon restart adopts it instead of starting a second; a pipeline that died is recorded failed
    with its last log lines."""
    configure(paths, [sys.executable, "-c", "import time; print('step: sft', flush=True); time.sleep(120)"])
    daemon.start(paths)
    pid = None
    try:
        run = wait_for(lambda: [r for r in runs(paths) if r["pid"]], message="a pipeline started")[0]
        pid = run["pid"]
        n = 300
        for i in range(n):
            emit(paths, {"hook_event_name": "UserPromptSubmit", "session_id": "s", "prompt_id": f"p{i}",
                         "prompt": f"n={i}"})
        wait_for(lambda: rows(paths, "SELECT count(*) AS n FROM events")[0]["n"] == n, message="events ingested")
        assert alive(pid), "the pipeline ran all along"
        wait_for(lambda: rows(paths, "SELECT * FROM schedule_decisions WHERE id > ? AND action = 'wait'",
                              [run["id"]]), message="a later check")
        later = rows(paths, "SELECT * FROM schedule_decisions WHERE id > ?", [run["id"]])
        assert all(r["action"] == "wait" and "running" in r["reasons"] for r in later)
        assert os.getsid(pid) == pid, "the pipeline runs in its own session: a daemon stop does not stop it"

        daemon.stop(paths)
        assert alive(pid)
        daemon.start(paths)
        wait_for(lambda: "adopted the running pipeline (pid %d)" % pid in paths.daemon_log.read_text(),
                 message="adopted")
        assert len(runs(paths)) == 1, "no second pipeline while the first runs"
        daemon.stop(paths)

        kill(pid)
        wait_for(lambda: not alive(pid) or open(f"/proc/{pid}/stat").read().split()[2] == "Z", message="dead")
        configure(paths, [sys.executable, "-c", "import time; time.sleep(120)"], interval=60)
        last_id = rows(paths, "SELECT max(id) AS id FROM schedule_decisions")[0]["id"]
        daemon.start(paths)
        ended = wait_for(lambda: [r for r in runs(paths) if r["ended_at"]], message="the dead one recorded")[0]
        wait_for(lambda: rows(paths, "SELECT * FROM schedule_decisions WHERE id > ?", [last_id]),
                 message="the restarted daemon's first check")
        assert ended["exit_code"] is None and "step: sft" in ended["log_tail"]
        status = json.loads(subprocess.run([sys.executable, "-m", "cc_capture", "status", "--json"],
                                           capture_output=True, text=True, check=True).stdout)
        assert status["learning"]["last_pipeline"]["outcome"] == "failed"
        assert "failed" in " ".join(status["learning"]["waiting_for"])  # retry_after_h, no new data
    finally:
        daemon.stop(paths)
        if pid:
            kill(pid)
        for r in runs(paths):
            if r["pid"]:
                kill(r["pid"])


def test_failed_pipeline_is_recorded_and_not_retried_on_the_same_data(paths):
    configure(paths, [sys.executable, "-c", "import sys; print('no model to train', flush=True); sys.exit(3)"])
    daemon.start(paths)
    try:
        ended = wait_for(lambda: [r for r in runs(paths) if r["ended_at"]], message="the run ended")[0]
        assert ended["exit_code"] == 3 and "no model to train" in ended["log_tail"]
        after_end = "SELECT * FROM schedule_decisions WHERE at > ? ORDER BY id"
        wait_for(lambda: len(rows(paths, after_end, [ended["ended_at"]])) >= 3, message="checks after the failure")
        after = rows(paths, after_end, [ended["ended_at"]])
        assert all(r["action"] == "wait" and json.loads(r["reasons"])[0]["condition"] == "retry" for r in after)
        assert len(runs(paths)) == 1
        out = subprocess.run([sys.executable, "-m", "cc_capture", "schedule", "--json"], capture_output=True,
                             text=True, check=True).stdout
        decisions = json.loads(out)
        assert 1 < len(decisions) <= 20
        assert set(decisions[0]) == {"at", "decision", "reasons", "conditions", "next_check_at", "pid", "log_path",
                                     "ended_at", "exit_code"}
        assert decisions[-1]["decision"] == "run" or any(d["decision"] == "run" for d in decisions)
        human = subprocess.run([sys.executable, "-m", "cc_capture", "schedule"], capture_output=True, text=True,
                               check=True).stdout
        assert "wait" in human and "failed" in human
        shown = subprocess.run([sys.executable, "-m", "cc_capture", "pipeline", "log"], capture_output=True, text=True,
                               check=True).stdout
        assert "no model to train" in shown
    finally:
        daemon.stop(paths)
    log = paths.daemon_log.read_text()
    assert "pipeline (pid %d) failed (exit 3)" % ended["pid"] in log
    keys = [(r["action"], r["reasons"] and tuple(x["condition"] for x in json.loads(r["reasons"])))
            for r in rows(paths, "SELECT * FROM schedule_decisions ORDER BY id")]
    changes = 1 + sum(a != b for a, b in zip(keys, keys[1:]))
    assert log.count("learning: run:") + log.count("learning: wait:") == changes < len(keys), \
        "one log line per changed decision, not per check"
    assert "executed successfully" not in log and "Running job" not in log, "no APScheduler line per check"


def test_status_learning_keys_and_line(paths):
    (paths.home / "config.toml").write_text('[learning]\nwindow = "01:00-06:00"\n')
    s = load_settings(paths)
    LearningScheduler(paths, s).check()  # one real check (this machine: no data, likely no GPU)
    data = json.loads(subprocess.run([sys.executable, "-m", "cc_capture", "status", "--json"], capture_output=True,
                                     text=True, check=True).stdout)
    learning = data["learning"]
    assert set(learning) == {"enabled", "next_check_at", "decided_at", "decision", "waiting_for", "last_pipeline"}
    assert learning["enabled"] is True and learning["decision"] == "wait" and learning["last_pipeline"] is None
    assert any("500 more qualifying traces before the first pipeline" in r for r in learning["waiting_for"])
    assert learning["next_check_at"] is None  # the daemon is not running: nothing will check
    assert readme.keys("status", "learning") == set(learning)
    assert {"pipeline_id", "outcome", "model_version"} <= readme.keys("status", "learning", "last_pipeline")
    assert {"conditions", "exit_code", "log_path"} <= readme.keys("schedule")
    human = subprocess.run([sys.executable, "-m", "cc_capture", "status"], capture_output=True, text=True,
                           check=True).stdout
    assert "learning" in human and "daemon is not running" in human


def test_the_daemon_and_a_check_never_import_torch(paths):
    """The scheduler's whole check in a fresh interpreter; and the running daemon maps no torch library."""
    code = ("import sys; from cc_capture.config import Paths, load_settings; "
            "from cc_capture.scheduler.job import LearningScheduler; import cc_capture.daemon, cc_capture.status; "
            "p = Paths().ensure(); LearningScheduler(p, load_settings(p)).check(); "
            "heavy = [m for m in ('torch', 'transformers', 'trl', 'peft') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    daemon.start(paths)
    try:
        pid = daemon.info(paths).pid
        wait_for(lambda: rows(paths, "SELECT * FROM schedule_decisions"), message="a check")
        maps = open(f"/proc/{pid}/maps").read()
        assert "torch" not in maps and "transformers" not in maps
    finally:
        daemon.stop(paths)


def test_turned_off_the_daemon_records_it_once_and_starts_no_job(paths):
    (paths.home / "config.toml").write_text("[learning]\nenabled = false\n")
    daemon.start(paths)
    try:
        wait_for(lambda: rows(paths, "SELECT * FROM schedule_decisions"), message="the off decision")
        data = json.loads(subprocess.run([sys.executable, "-m", "cc_capture", "status", "--json"],
                                         capture_output=True, text=True, check=True).stdout)
        assert data["learning"]["enabled"] is False and data["learning"]["next_check_at"] is None
    finally:
        daemon.stop(paths)
    assert len(rows(paths, "SELECT * FROM schedule_decisions")) == 1
    learning = LearningScheduler(paths, load_settings(paths))
    learning.start()
    assert learning.scheduler is None and learning.job is None
    learning.shutdown()


def test_the_daemon_runs_the_real_pipeline_command(paths):
    """No pipeline_command: the daemon starts this cc-capture's `ccd pipeline run --json`; on an empty
    home it has nothing to learn from (skipped), exits 0, and both records say so."""
    (paths.home / "config.toml").write_text(READY_CONFIG.format(interval=60, command='""').replace(
        'pipeline_command = ""\n', ""))
    daemon.start(paths)
    try:
        run = wait_for(lambda: [r for r in runs(paths) if r["ended_at"]], timeout=120, message="the pipeline ran")[0]
    finally:
        daemon.stop(paths)
    assert run["exit_code"] == 0, run["log_tail"]
    assert json.loads(Path(run["log_path"]).read_text())["outcome"] == "skipped"
    data = json.loads(subprocess.run([sys.executable, "-m", "cc_capture", "status", "--json"], capture_output=True,
                                     text=True, check=True).stdout)
    assert data["learning"]["last_pipeline"]["outcome"] == "skipped"
    pipeline_id = data["learning"]["last_pipeline"]["pipeline_id"]
    for args in ([], [pipeline_id]):
        shown = subprocess.run([sys.executable, "-m", "cc_capture", "pipeline", "log", *args], capture_output=True,
                               text=True, check=True).stdout
        assert run["log_path"] in shown and f'"pipeline_id": "{pipeline_id}"' in shown and '"skipped"' in shown
    unknown = subprocess.run([sys.executable, "-m", "cc_capture", "pipeline", "log", "nope"], capture_output=True,
                             text=True)
    assert unknown.returncode == 1 and "no pipeline nope" in unknown.stderr


STEP_STANDS_FOR_TRAINING = """
import os, time
from cc_capture import store
from cc_capture.config import load_settings
from cc_capture.paths import Paths
from cc_capture.pipeline import run as pipeline

def step(name, *args):  # the real pipeline runner; a sleeping step stands for training
    if name == "dataset":
        return "a dataset"
    print("step", name, flush=True)
    time.sleep(float(os.environ.get("STEP_S", "120")))
    return "trained"

pipeline._step = step
paths = Paths()
pipeline.run(store.connect(paths.db), paths, load_settings(paths))
"""


@pytest.mark.parametrize("sigint_at_start", [signal.SIG_DFL, signal.SIG_IGN], ids=["default", "ignored"])
def test_pipeline_stop_interrupts_the_running_pipeline_and_the_next_run_resumes_it(paths, sigint_at_start):
    """Also a pipeline started with SIGINT ignored, as a background job of a script (or a daemon
    started from one) starts it: `ccd pipeline stop`'s SIGINT must still stop it."""
    from cc_capture import learning_state

    proc = subprocess.Popen([sys.executable, "-c", STEP_STANDS_FOR_TRAINING], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, sigint_at_start))
    try:
        assert proc.stdout.readline().strip() == "step sft"
        running = learning_state.holder(paths)
        assert running and running.pid == proc.pid
        assert learning_state.last_pipeline(store.connect(paths.db), paths)["outcome"] == "running"
        busy = subprocess.run([sys.executable, "-m", "cc_capture", "pipeline", "run"], capture_output=True, text=True)
        assert busy.returncode != 0 and f"pid {proc.pid}" in busy.stderr  # one pipeline at a time, by hand too
        out = subprocess.run([sys.executable, "-m", "cc_capture", "pipeline", "stop"], capture_output=True, text=True,
                             check=True).stdout
        assert f"Stopped pipeline {running.pipeline_id}" in out
        assert proc.wait(timeout=30) != 0
    finally:
        kill(proc.pid)
    row = rows(paths, "SELECT * FROM pipelines")[0]
    steps = {s["name"]: s["status"] for s in json.loads(row["steps"])}
    assert row["status"] == "interrupted" and steps == {"dataset": "done", "sft": "interrupted"}
    assert learning_state.holder(paths) is None
    again = subprocess.run([sys.executable, "-m", "cc_capture", "pipeline", "stop"], capture_output=True, text=True,
                           check=True).stdout
    assert "No pipeline is running" in again
    subprocess.run([sys.executable, "-c", STEP_STANDS_FOR_TRAINING], env=dict(os.environ, STEP_S="0"), check=True,
                   capture_output=True)
    (resumed,) = rows(paths, "SELECT * FROM pipelines")
    assert resumed["pipeline_id"] == row["pipeline_id"] and resumed["status"] == "finished"
    from cc_capture.pipeline.run import STEPS

    assert [(s["name"], s["status"]) for s in json.loads(resumed["steps"])] == [(name, "done") for name in STEPS]


# ---------------------------------------------------------------- crash safety (kill -9), with real processes

STEP_WAITS_FOR_RELEASE = """
import os, time
from pathlib import Path
from cc_capture import store
from cc_capture.config import load_settings
from cc_capture.paths import Paths
from cc_capture.pipeline import run as pipeline

paths = Paths()

def step(name, *args):  # the real pipeline runner; a step that waits for the test's word stands for training
    if name == "sft":  # with a worker process of its own, as training has
        import subprocess, sys
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        print("worker", worker.pid, flush=True)
    print("step", name, flush=True)
    while name == "sft" and not (paths.home / "release").exists():
        time.sleep(0.05)
    if name == "sft":
        worker.kill()
        worker.wait()
    return "done " + name

pipeline._step = step
pipeline.run(store.connect(paths.db), paths, load_settings(paths))
"""


def pipeline_row(paths):
    found = rows(paths, "SELECT * FROM pipelines ORDER BY started_at DESC LIMIT 1")
    return found[0] if found else None


def in_step(paths, name):
    """The pipeline process the daemon started is inside step `name` (it said so in its log)."""
    started = [r for r in runs(paths) if r["pid"] and not r["ended_at"]]
    return started and f"step {name}" in Path(started[-1]["log_path"]).read_text() and started[-1]


def test_processes_are_known_by_pid_and_start_time(paths):
    from cc_capture import learning_state, processes

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = processes.start_time(proc.pid)
        assert started and processes.running(proc.pid, started)
        assert not processes.running(proc.pid, started + "0"), "a reused pid is another process"
        now = __import__("time").time()
        db = store.connect(paths.db)
        for pipeline_id, pid, pid_start, beat in [("alive", proc.pid, started, now - 5),
                                                  ("reused", proc.pid, started + "0", now - 5),
                                                  ("frozen", proc.pid, started, now - learning_state.STALE_S - 1)]:
            with store.transaction(db) as conn:
                conn.execute("INSERT INTO pipelines (pipeline_id, status, started_at, pid, pid_start, heartbeat_at) "
                             "VALUES (?, 'running', ?, ?, ?, ?)", (pipeline_id, now - 60, pid, pid_start, beat))
        assert {r["pipeline_id"] for r in learning_state.dead_pipelines(db, paths)} == {"reused", "frozen"}
        assert set(learning_state.reap_dead(db, paths)) == {"reused", "frozen"}
        frozen = rows(paths, "SELECT * FROM pipelines WHERE pipeline_id = 'frozen'")[0]
        assert (frozen["status"], frozen["outcome"]) == ("died", "failed") and "heartbeat" in frozen["error"]
        assert rows(paths, "SELECT status FROM pipelines WHERE pipeline_id = 'alive'")[0]["status"] == "running"
    finally:
        proc.kill()
        proc.wait()
    processes.wait_exit(proc.pid, started, poll_s=0.05)  # returns: it is gone


def test_a_night_asleep_is_not_a_frozen_pipeline(paths):
    """A laptop suspended mid-pipeline: on waking, the heartbeat is hours old by the wall clock, but
    the machine slept through them. Time asleep (processes.suspended_s, the same in every process)
    is not counted; a heartbeat that stopped while the machine was awake still is. (A real suspend
    cannot be done here: the sleep clock's readings are given.)"""
    from cc_capture import learning_state, processes

    asleep_before = processes.suspended_s()
    assert asleep_before is not None and asleep_before >= 0  # Linux: BOOTTIME - MONOTONIC
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = processes.start_time(proc.pid)
        now = __import__("time").time()
        hours = 6 * 3600
        db = store.connect(paths.db)
        for pipeline_id, beat_suspended in [("slept", 100.0), ("frozen_awake", 100.0 + hours)]:
            with store.transaction(db) as conn:
                conn.execute("INSERT INTO pipelines (pipeline_id, status, started_at, pid, pid_start, heartbeat_at, "
                             "heartbeat_suspended_s) VALUES (?, 'running', ?, ?, ?, ?, ?)",
                             (pipeline_id, now - hours - 60, proc.pid, started, now - hours - 5, beat_suspended))
        dead = learning_state.dead_pipelines(db, paths, now=now, suspended_now=100.0 + hours)
        assert [r["pipeline_id"] for r in dead] == ["frozen_awake"]
    finally:
        proc.kill()
        proc.wait()


def test_the_pipeline_beats_while_it_runs(paths):
    from cc_capture.pipeline.heartbeat import heartbeat

    db = store.connect(paths.db)
    with store.transaction(db) as conn:
        conn.execute("INSERT INTO pipelines (pipeline_id, status, started_at, heartbeat_at) VALUES ('p', 'running', 0, 0)")
    with heartbeat(paths.db, "p", every_s=0.05):
        wait_for(lambda: rows(paths, "SELECT heartbeat_at FROM pipelines")[0]["heartbeat_at"] > 0, message="a beat")


def test_kill_9_of_the_pipeline_is_recorded_failed_and_a_later_cycle_resumes_it(paths):
    """The daemon's pipeline is killed mid-step: the daemon records the failure with the last log
    lines (the pipelines row and its own record) and waits (retry_after_h); a later cycle resumes
    the same pipeline from its last finished step and completes it."""
    command = [sys.executable, "-c", STEP_WAITS_FOR_RELEASE]
    configure(paths, command, extra="retry_after_h = 1\n")
    daemon.start(paths)
    try:
        run = wait_for(lambda: in_step(paths, "sft"), message="the pipeline in its sft step")
        first = pipeline_row(paths)
        assert first["pid"] == run["pid"] and first["pid_start"] and first["heartbeat_at"]
        worker = int(re.search(r"worker (\d+)", Path(run["log_path"]).read_text())[1])
        os.kill(run["pid"], 9)
        died = wait_for(lambda: (r := pipeline_row(paths))["status"] == "died" and r, message="marked failed")
        wait_for(lambda: not alive(worker) or open(f"/proc/{worker}/stat").read().split()[2] == "Z",
                 message="the worker the killed pipeline left behind ended")
        assert died["outcome"] == "failed" and f"pid {run['pid']}" in died["error"]
        assert "step sft" in died["error"] and run["log_path"] in died["error"]  # its last log lines
        steps = {s["name"]: s["status"] for s in json.loads(died["steps"])}
        assert steps == {"dataset": "done", "sft": "failed"}
        ended = wait_for(lambda: [r for r in runs(paths) if r["ended_at"]], message="the daemon's record")[0]
        assert ended["exit_code"] == -9 and "step sft" in ended["log_tail"]
        wait_for(lambda: rows(paths, "SELECT * FROM schedule_decisions WHERE id > ? AND reasons LIKE '%retry%'",
                              [run["id"]]), message="a check that waits for retry_after_h")
        status = json.loads(subprocess.run([sys.executable, "-m", "cc_capture", "status", "--json"],
                                           capture_output=True, text=True, check=True).stdout)
        assert status["learning"]["last_pipeline"]["outcome"] == "failed"
        assert len(runs(paths)) == 1
    finally:
        daemon.stop(paths)
    configure(paths, command, interval=60, extra="retry_after_h = 0\n")  # the next eligible window: one check
    (paths.home / "release").touch()
    daemon.start(paths)
    try:
        done = wait_for(lambda: (r := pipeline_row(paths))["status"] == "finished" and r, message="resumed, finished")
    finally:
        daemon.stop(paths)
        for r in runs(paths):
            kill(r["pid"])
    assert done["pipeline_id"] == first["pipeline_id"] and done["error"] is None
    steps = json.loads(done["steps"])
    assert [(s["name"], s["status"]) for s in steps][:2] == [("dataset", "done"), ("sft", "done")]
    assert steps[0]["started_at"] == json.loads(first["steps"])[0]["started_at"], "the dataset step was not run again"
    second = runs(paths)[1]
    assert "step sft" in Path(second["log_path"]).read_text() and "step dataset" not in Path(second["log_path"]).read_text()
    assert "died without recording its end: marked failed" in paths.daemon_log.read_text()


def test_kill_9_of_the_daemon_mid_pipeline_the_restarted_daemon_adopts_it(paths):
    configure(paths, [sys.executable, "-c", STEP_WAITS_FOR_RELEASE], interval=60)  # a check at each start
    daemon.start(paths)
    run = None
    try:
        run = wait_for(lambda: in_step(paths, "sft"), message="the pipeline in its sft step")
        os.kill(daemon.info(paths).pid, 9)
        wait_for(lambda: not daemon.info(paths).running, message="the daemon gone")
        assert alive(run["pid"]), "the pipeline outlives its daemon"
        last_id = rows(paths, "SELECT max(id) AS id FROM schedule_decisions")[0]["id"]
        daemon.start(paths)
        wait_for(lambda: "adopted the running pipeline (pid %d)" % run["pid"] in paths.daemon_log.read_text(),
                 message="adopted")
        later = wait_for(lambda: rows(paths, "SELECT * FROM schedule_decisions WHERE id > ?", [last_id]),
                         message="the restarted daemon's checks")
        assert all(r["action"] == "wait" and "running" in r["reasons"] for r in later)
        assert pipeline_row(paths)["status"] == "running"
        (paths.home / "release").touch()
        ended = wait_for(lambda: [r for r in runs(paths) if r["ended_at"]], message="the adopted one's end recorded")
        assert len(runs(paths)) == 1, "no second pipeline while the first ran"
        assert ended[0]["pid"] == run["pid"] and "step deploy" in ended[0]["log_tail"]
        assert pipeline_row(paths)["status"] == "finished"
        status = json.loads(subprocess.run([sys.executable, "-m", "cc_capture", "status", "--json"],
                                           capture_output=True, text=True, check=True).stdout)
        assert status["learning"]["last_pipeline"]["outcome"] == "finished"
    finally:
        daemon.stop(paths)
        if run:
            kill(run["pid"])


def test_the_pipeline_honours_include_synthetic_and_new_data_counts_from_its_dataset(paths, monkeypatch):
    """`[learning] include_synthetic` reaches the pipeline's dataset; min_new_traces counts the
    traces captured after the newest one the last pipeline's dataset held, so a later pipeline that
    built no dataset (skipped before it) does not reset the count."""
    pytest.importorskip("trl", reason="the training extra is not installed")
    from cc_capture.pipeline import run as pipeline
    from cc_capture.scheduler.state import store_state
    from conftest import ingest_all
    from test_training import LONG, session

    def captured(sid):
        session(paths, sid, f"List the Python files in package {sid} and count them",
                [[("Bash", {"command": f"ls {sid}"}, "a.py\nb.py", True)],
                 [("Read", {"file_path": f"{sid}/a.py"}, "def f(): pass", True)]], f"There are 2 files. {LONG}")
        ingest_all(paths)

    for k in range(8):
        captured(f"s{k}")
    db = store.connect(paths.db)
    db.execute("UPDATE traces SET synthetic = 1 WHERE session_id = 's0'")  # as a bootstrap trace is
    real_step = pipeline._step
    monkeypatch.setattr(pipeline, "_step", lambda name, *a: real_step(name, *a) if name == "dataset" else "stub")
    for include in (False, True):
        (paths.home / "config.toml").write_text(f"[datasets]\neval_percent = 30\n[learning]\n"
                                                f"include_synthetic = {str(include).lower()}\n")
        p = pipeline.run(db, paths, load_settings(paths))
        manifest = json.loads((Path(p.state["dataset"]) / "manifest.json").read_text())
        assert manifest["include_synthetic"] is include and manifest["traces"] == (8 if include else 7)
    learning = LearningSettings()
    assert p.state["captured_until"] == db.execute("SELECT max(ended_at) FROM traces").fetchone()[0]
    assert store_state(db, learning, None).new_traces == 0
    captured("s8")
    assert store_state(db, learning, None).new_traces == 1
    with store.transaction(db) as conn:  # a later pipeline that stopped before building a dataset
        conn.execute("INSERT INTO pipelines (pipeline_id, status, outcome, started_at, ended_at) "
                     "VALUES ('later', 'finished', 'skipped', ?, ?)", (datetime.now().timestamp(),) * 2)
    assert store_state(db, learning, None).new_traces == 1
