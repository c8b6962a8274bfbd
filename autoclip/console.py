"""What a person at the terminal sees during `autoclip run`: a live progress display (stages, each
video's analysis, the render's percent) instead of Prefect's log lines, one line per error, and the
details (Prefect's logs, tracebacks) in a log file. Prefect's logs still reach the API (the UI)."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.text import Text

from autoclip.tasks import events

LOGS_KEPT = 20


def open_log_file(folder: Path) -> Path:
    """A new log file for this run under `folder` (the newest LOGS_KEPT are kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in sorted(folder.glob("run-*.log"), key=lambda p: p.stat().st_mtime)[:-LOGS_KEPT]:
        old.unlink(missing_ok=True)
    return folder / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


def route_logs(log_file: Path, verbose: bool) -> logging.Handler:
    """Prefect's and auto-clip's log records go to `log_file`; on the terminal only with `verbose`.
    Prefect's API handler (the UI) is left as it is."""
    from prefect.logging.handlers import PrefectConsoleHandler

    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
    for logger in loggers:
        for h in getattr(logger, "handlers", []):
            if isinstance(h, PrefectConsoleHandler) and not verbose:
                h.setLevel(logging.CRITICAL + 1)
    for name in ("prefect", "autoclip"):
        logging.getLogger(name).addHandler(handler)
    logging.getLogger("autoclip").setLevel(logging.INFO)
    return handler


class LiveProgress:
    """A rich live display fed by `autoclip.tasks.events`: the overall stage and percent, one line per
    analysed video, the render's percent. Remembers the stage an error happened in."""

    def __init__(self, console: Console, enabled: bool = True):
        self.console = console
        self.enabled = enabled
        self.stage = "preflight"
        self.workspace: str | None = None
        self.videos: list[Text] = []
        self.bars = Progress(TextColumn("{task.description:<10}"), BarColumn(), TaskProgressColumn(),
                             TextColumn("{task.fields[note]}"), console=console, transient=False)
        self.overall = self.bars.add_task("run", total=100, note="starting")
        self.render = None
        self.live = Live(self._view(), console=console, refresh_per_second=8, transient=False) if enabled else None

    def _view(self):
        return Group(self.bars, *self.videos[-12:])

    def __enter__(self):
        self.stop = events.listen(self.on_event)
        if self.live:
            self.live.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        if self.live:
            self.live.update(self._view())
            self.live.stop()
            if not self.console.is_terminal:
                self.console.print()  # rich leaves the last line of a non-terminal display open

    def on_event(self, kind: str, fields: dict) -> None:
        if kind == "begin":
            self.stage = fields["stage"]
        elif kind == "workspace":
            self.workspace = fields["path"]
        elif kind == "stage":
            self.bars.update(self.overall, completed=fields["percent"], note=fields["text"])
        elif kind == "video":
            mark = "[green]ok[/]" if fields["ok"] else "[yellow]left out[/]"
            self.videos.append(Text.from_markup(f"  analysed {fields['name']}: {mark}"))
        elif kind == "render":
            if self.render is None:
                self.render = self.bars.add_task("render", total=100, note="")
            self.bars.update(self.render, completed=fields["percent"])
        if self.live:
            self.live.update(self._view())


_WATCHER = """
import os, signal, sys, time
server, parent = int(sys.argv[1]), os.getppid()
while os.getppid() == parent:
    time.sleep(0.5)
try:
    os.kill(server, signal.SIGTERM)
    time.sleep(5)
    os.kill(server, signal.SIGKILL)
except ProcessLookupError:
    pass
"""


def start_temporary_server() -> int | None:
    """Without PREFECT_API_URL a run uses a temporary Prefect server. Start it now (the run would start
    the same one on its first API call) together with a small watcher that stops it once this process is
    gone, however it ends (a `kill -9` skips every exit handler). Returns the server's PID, or None when a
    server is configured."""
    import subprocess
    import sys

    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return None
    check_prefect_database()
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    pid = server.server_process.pid
    subprocess.Popen([sys.executable, "-c", _WATCHER, str(pid)], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return pid


def check_prefect_database() -> None:
    """A temporary server cannot start on a SQLite database that a newer Prefect has migrated (its schema
    revision is unknown here): it would time out after a page of migration errors. Say so, naming the file
    and the ways out, before starting it."""
    import re
    import sqlite3

    import prefect
    import prefect.server.database as database
    from prefect.settings import get_current_settings

    from autoclip.errors import EnvironmentFault

    url = get_current_settings().server.database.connection_url
    url = url.get_secret_value() if hasattr(url, "get_secret_value") else str(url or "")
    if not url.startswith("sqlite") or ":///" not in url:
        return
    path = Path(url.split(":///", 1)[1])
    if not path.is_file():
        return
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return  # a new or foreign file: the server says what is wrong with it
    versions = Path(database.__file__).parent / "_migrations" / "versions" / "sqlite"
    known = {m.group(1) for f in versions.glob("*.py")
             for m in [re.search(r'^revision\s*=\s*["\']([0-9a-f]+)', f.read_text(), re.M)] if m}
    if row and known and row[0] not in known:
        raise EnvironmentFault(
            f"the Prefect database {path} was last used by a newer Prefect (schema {row[0]}, unknown to the "
            f"Prefect {prefect.__version__} installed here): install that Prefect again, or start a new "
            f"database by setting PREFECT_HOME to another folder or moving {path} away")


def stop_temporary_servers() -> None:
    """The temporary Prefect server a run started (no PREFECT_API_URL) goes with the run, even when the
    process is about to leave without running its exit handlers."""
    try:
        from prefect.server.api.server import SubprocessASGIServer
    except ImportError:  # pragma: no cover
        return
    for server in list(SubprocessASGIServer._instances.values()):
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - stopping is best effort on the way out
            pass


def signal_name(exc: BaseException) -> str | None:
    """The signal behind an interruption (SIGINT, SIGTERM), None for any other exception."""
    if isinstance(exc, KeyboardInterrupt):
        return "SIGINT"
    number = getattr(exc, "signal", None)
    if number is not None and type(exc).__name__ == "TerminationSignal":
        return signal.Signals(number).name
    return None
