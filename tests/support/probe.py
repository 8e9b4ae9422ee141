"""Looks inside a worker process, run there as a task (this module imports nothing that would
change the answer)."""

import sys


def loaded(*names: str) -> list[str]:
    """Which of these top-level modules this process has imported."""
    return [name for name in names if name in sys.modules]


def frozen() -> int:
    """How many objects this process has moved out of the garbage collector's reach (gc.freeze)."""
    import gc

    return gc.get_freeze_count()
