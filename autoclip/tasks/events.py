"""Progress events inside one process, for a live console: the flow and tasks `emit`, the CLI listens.

Prefect's logs and artifacts stay the record (in the UI); these events only drive what a person watching
the terminal sees, so a listener that fails never stops the run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

Listener = Callable[[str, dict], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


def listen(listener: Listener) -> Callable[[], None]:
    """Call `listener(kind, fields)` for every event; returns the function that stops it."""
    with _lock:
        _listeners.append(listener)

    def stop() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return stop


def emit(kind: str, **fields) -> None:
    """kind: 'stage' (percent, text), 'video' (name, ok), 'render' (percent)."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(kind, fields)
        except Exception:  # noqa: BLE001 - a console problem must not stop the run
            logging.getLogger("autoclip.console").debug("progress listener failed", exc_info=True)
