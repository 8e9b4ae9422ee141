"""The running pipeline's heartbeat: a thread that stamps its `pipelines` row every HEARTBEAT_S.

The daemon (and `ccd status`) take a row left `running` whose process is gone, or whose heartbeat
is older than STALE_S (time the machine spent asleep not counted), for a dead pipeline
(cc_capture.learning_state). The thread has its own
connection and writes one small row; a write that fails (the database busy for longer than its
timeout) is tried again at the next beat, far inside STALE_S.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from cc_capture import store
from cc_capture.learning_state import HEARTBEAT_S
from cc_capture.processes import suspended_s

log = logging.getLogger("ccd.pipeline")


def beat(db: store.Database, pipeline_id: str) -> None:
    with store.transaction(db) as conn:
        conn.execute("UPDATE pipelines SET heartbeat_at = ?, heartbeat_suspended_s = ? WHERE pipeline_id = ?",
                     (time.time(), suspended_s(), pipeline_id))


@contextmanager
def heartbeat(db_path: Path, pipeline_id: str, every_s: float = HEARTBEAT_S) -> Iterator[None]:
    stop = threading.Event()

    def loop() -> None:
        db = store.connect(db_path, migrate=False)
        try:
            while not stop.wait(every_s):
                try:
                    beat(db, pipeline_id)
                except Exception as e:  # the next beat tries again
                    log.warning("pipeline heartbeat not written: %s", e)
        finally:
            db.conn.close()

    thread = threading.Thread(target=loop, name="pipeline-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
