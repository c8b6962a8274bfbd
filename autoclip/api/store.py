"""What the service remembers: API keys (only their SHA-256), and which key owns which video and task.

SQLite in AUTOCLIP_API_DATA_DIR: one small file, safe across the CLI and the server process. Keys are 32
random bytes, so a plain SHA-256 is enough (no password stretching needed for high-entropy secrets).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

KEY_PREFIX = "ack_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT UNIQUE NOT NULL,
                                 created REAL NOT NULL, revoked REAL);
CREATE TABLE IF NOT EXISTS videos (id TEXT PRIMARY KEY, key_id TEXT NOT NULL, uri TEXT NOT NULL,
                                   name TEXT NOT NULL, size INTEGER NOT NULL, duration REAL NOT NULL,
                                   codec TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, key_id TEXT NOT NULL, flow_run_id TEXT NOT NULL,
                                  output TEXT NOT NULL, video_ids TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_by_key ON tasks (key_id, created);
"""


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    created: float
    revoked: float | None


@dataclass(frozen=True)
class Video:
    id: str
    key_id: str
    uri: str
    name: str
    size: int
    duration: float
    codec: str
    created: float


@dataclass(frozen=True)
class Task:
    id: str
    key_id: str
    flow_run_id: str
    output: str
    video_ids: str
    created: float


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Store:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir).expanduser()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "api.sqlite3"
        with closing(self._connect()) as db, db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def _one(self, sql: str, args: tuple) -> sqlite3.Row | None:
        with closing(self._connect()) as db:
            return db.execute(sql, args).fetchone()

    def _write(self, sql: str, args: tuple) -> int:
        with closing(self._connect()) as db, db:
            return db.execute(sql, args).rowcount

    # keys
    def create_key(self, name: str) -> tuple[ApiKey, str]:
        """A new key; the secret is returned once and never stored."""
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(id=uuid.uuid4().hex[:12], name=name, created=time.time(), revoked=None)
        self._write("INSERT INTO keys VALUES (?, ?, ?, ?, NULL)", (key.id, name, _digest(secret), key.created))
        return key, secret

    def keys(self) -> list[ApiKey]:
        with closing(self._connect()) as db:
            return [ApiKey(r["id"], r["name"], r["created"], r["revoked"])
                    for r in db.execute("SELECT * FROM keys ORDER BY created")]

    def revoke(self, key_id: str) -> bool:
        return self._write("UPDATE keys SET revoked = ? WHERE id = ? AND revoked IS NULL",
                           (time.time(), key_id)) == 1

    def authenticate(self, secret: str) -> ApiKey | None:
        row = self._one("SELECT * FROM keys WHERE hash = ? AND revoked IS NULL", (_digest(secret),))
        return ApiKey(row["id"], row["name"], row["created"], row["revoked"]) if row else None

    # videos
    def add_video(self, video: Video) -> None:
        self._write("INSERT INTO videos VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (video.id, video.key_id, video.uri, video.name, video.size, video.duration, video.codec,
                     video.created))

    def video(self, key_id: str, video_id: str) -> Video | None:
        row = self._one("SELECT * FROM videos WHERE id = ? AND key_id = ?", (video_id, key_id))
        return Video(**dict(row)) if row else None

    # tasks
    def add_task(self, task: Task) -> None:
        self._write("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?)",
                    (task.id, task.key_id, task.flow_run_id, task.output, task.video_ids, task.created))

    def task(self, key_id: str, task_id: str) -> Task | None:
        row = self._one("SELECT * FROM tasks WHERE id = ? AND key_id = ?", (task_id, key_id))
        return Task(**dict(row)) if row else None

    def task_by_id(self, task_id: str) -> Task | None:
        """For signed download links, which carry no key."""
        row = self._one("SELECT * FROM tasks WHERE id = ?", (task_id,))
        return Task(**dict(row)) if row else None

    def tasks(self, key_id: str, offset: int, limit: int) -> tuple[list[Task], int]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM tasks WHERE key_id = ? ORDER BY created DESC LIMIT ? OFFSET ?",
                              (key_id, limit, offset)).fetchall()
            total = db.execute("SELECT COUNT(*) FROM tasks WHERE key_id = ?", (key_id,)).fetchone()[0]
        return [Task(**dict(r)) for r in rows], total

    def signing_key(self) -> bytes:
        """The server's secret for download links (created once, 0600)."""
        path = self.data_dir / "download-signing.key"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_bytes(secrets.token_bytes(32))
        return path.read_bytes()
