"""Streaming multipart uploads: each file goes straight to a staging file while the request arrives, with
the format check on its first bytes and the size cap on the bytes that really arrive; a file over the cap
is cut off at once (its partial file removed, the rest of its bytes dropped), other files are kept.

FastAPI's UploadFile spools a whole file before the handler sees it, so this parses the raw request
stream itself (python-multipart's push parser)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header



def _sniff(head: bytes) -> str | None:
    """The container family the first bytes announce, or None when they announce no video container."""
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "mp4/mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "mkv/webm"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"FLV"):
        return "flv"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "wmv"
    return None


_SNIFF_BYTES = 12


@dataclass
class Part:
    """One file of the request, as it arrives."""

    filename: str
    extension: str
    staging: Path
    size: int = 0
    error: str | None = None
    head: bytes = b""
    out: BinaryIO | None = None
    done: bool = False


@dataclass
class UploadReceiver:
    """Feeds a multipart stream into staging files; `parts` is what arrived, each kept or with an error."""

    boundary: bytes
    staging_dir: Path
    max_size: int
    formats: tuple[str, ...]
    max_files: int
    parts: list[Part] = field(default_factory=list)
    _headers: dict = field(default_factory=dict)
    _field: bytes = b""
    _value: bytes = b""
    _current: Part | None = None

    def __post_init__(self):
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self.parser = MultipartParser(self.boundary, {
            "on_part_begin": self._begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._data,
            "on_part_end": self._end})

    @classmethod
    def for_request(cls, content_type: str, **kwargs) -> "UploadReceiver":
        kind, params = parse_options_header(content_type)
        if kind != b"multipart/form-data" or b"boundary" not in params:
            raise ValueError("expected multipart/form-data with files in the 'files' field")
        return cls(boundary=params[b"boundary"], **kwargs)

    def write(self, chunk: bytes) -> None:
        self.parser.write(chunk)

    def finish(self) -> None:
        self.parser.finalize()
        if self._current is not None and not self._current.done:  # the request ended inside a file
            self._fail(self._current, "the upload ended before the file was complete")

    def discard(self) -> None:
        """Remove every staging file of this request (an aborted request leaves nothing behind)."""
        for part in self.parts:
            self._close(part)
            part.staging.unlink(missing_ok=True)

    # --- parser callbacks ------------------------------------------------------------------------

    def _begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        raw = params.get(b"filename")
        if raw is None:  # a plain form field: ignored (nothing but files is expected)
            self._current = None
            return
        filename = Path(raw.decode("utf-8", "replace").replace("\\", "/")).name or "unnamed"
        extension = Path(filename).suffix.lower().lstrip(".")
        part = Part(filename=filename, extension=extension,
                    staging=self.staging_dir / f"{uuid.uuid4().hex}.part")
        self.parts.append(part)
        self._current = part
        if len([p for p in self.parts]) > self.max_files:
            part.error = f"more than {self.max_files} files in one request (AUTOCLIP_API_MAX_FILES)"
        elif extension not in self.formats:
            part.error = (f"unsupported format '.{extension}' (supported: {', '.join(self.formats)}; "
                          "see AUTOCLIP_SUPPORTED_FORMATS)")
        else:
            part.out = part.staging.open("wb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self._current
        if part is None:
            return
        length = end - start
        part.size += length
        if part.error:
            return  # counted, not stored
        if part.size > self.max_size:
            self._fail(part, f"is over the limit of {self.max_size} bytes (AUTOCLIP_MAX_VIDEO_SIZE); "
                       "the upload was cut off")
            return
        if len(part.head) < _SNIFF_BYTES:
            part.head += data[start:end][:_SNIFF_BYTES - len(part.head)]
            if len(part.head) >= _SNIFF_BYTES and _sniff(part.head) is None:
                self._fail(part, "does not start like a video file (no mp4, mov, mkv, webm, avi, flv or "
                           "wmv header)")
                return
        part.out.write(data[start:end])

    def _end(self) -> None:
        part = self._current
        self._current = None
        if part is None:
            return
        part.done = True
        self._close(part)
        if part.error:
            return
        if part.size == 0:
            self._fail(part, "is empty (0 bytes)")
        elif _sniff(part.head) is None:
            self._fail(part, "does not start like a video file")

    def _fail(self, part: Part, reason: str) -> None:
        part.error = reason
        self._close(part)
        part.staging.unlink(missing_ok=True)

    @staticmethod
    def _close(part: Part) -> None:
        if part.out is not None:
            part.out.close()
            part.out = None
