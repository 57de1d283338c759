"""SIGTERM and SIGINT during a run: roll it back at once, then raise :class:`RunInterrupted`."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from digit_recognizer.errors import RunInterrupted


class StopSignals:
    """Turns SIGTERM and SIGINT during a run into a rollback, then :class:`RunInterrupted`.

    systemd, Airflow's task timeout and Kubernetes send SIGTERM; Ctrl-C sends SIGINT. The
    rollback happens in the handler itself (Python runs it in the main thread between two
    bytecodes), so no ``except Exception`` on the way out (a log handler's, say) can swallow the
    stop; while it rolls back, a second signal is ignored. Outside the main thread nothing changes.
    """

    STOPPING = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, on_stop: Callable[[str], None]) -> None:
        self._on_stop = on_stop
        self._previous: dict[int, Any] = {}

    def trap(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._stop) for signum in self.STOPPING}

    def hold(self) -> None:
        """Ignore them for a moment (a commit, a rollback)."""
        for signum in self._previous:
            signal.signal(signum, signal.SIG_IGN)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _stop(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        self.hold()
        try:
            self._on_stop(f"interrupted by {name}")
        finally:
            self.restore()
        raise RunInterrupted(signum, name)
