"""Remote sources: download an http(s) URL into the run's workspace.

A URL arrives from a user or a flow parameter, and the download runs on a worker inside someone's
network. So it must not become a way to reach internal services (SSRF: every address is vetted, the
connection is pinned to the vetted address, every redirect is re-checked), must not fill the disk or
hang (size cap on the bytes that actually arrive, connect and idle timeouts), should survive a flaky
link (retries through the one RetryPolicy, resuming with Range where the server allows), and must say
clearly why a link is unusable (InputError naming the URL, never its password).
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import logging
import posixpath
import re
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlsplit

from autoclip.config import Settings
from autoclip.deadline import DeadlineExceeded, limit
from autoclip.errors import InputError, ProviderError, TransientError
from autoclip.retry import RetryPolicy

__all__ = ["fetch_http", "redact_url"]

log = logging.getLogger("autoclip.sources.http")

VIDEO_TYPES = {
    "video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm", "video/x-matroska": "mkv",
    "video/x-msvideo": "avi", "video/x-flv": "flv", "video/x-ms-wmv": "wmv",
}
_WEB_PAGE_TYPES = {"text/html", "application/xhtml+xml"}
_TEXT_TYPES = {"application/json", "application/xml", "application/javascript"}
_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_METADATA_ADDRESSES = {ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")}
_SHARED_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT; some clouds put services here
_ALLOW_HINT = "(not allowed; see AUTOCLIP_HTTP_ALLOW)"
# Characters left as they are when a URL path or query is put on the request line; the rest is escaped.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


def fetch_http(url: str, folder: Path, settings: Settings) -> Path:
    """Download an http(s) URL into `folder`; return the local file (its name ends with a supported
    video extension). Raise InputError(url, reason) with a clear reason for anything unusable."""
    url = url.strip()
    shown = redact_url(url)
    budget = limit(settings.http_download_timeout, f"downloading {shown}")
    download = _Download(url, shown, Path(folder), settings, ends_at=time.monotonic() + budget)
    policy = RetryPolicy.from_settings(settings)
    try:
        path = policy.call(f"downloading {shown}", download.attempt)
    except ProviderError as exc:  # the policy gave up on a passing fault: report the fault itself
        download.discard()
        raise InputError(shown, f"{exc.__cause__ or exc}; gave up after {policy.attempts} tries") from exc
    except BaseException:
        download.discard()
        raise
    log.info("downloaded %s to %s (%d bytes)", shown, path, path.stat().st_size)
    return path


def redact_url(url: str) -> str:
    """The URL with any `user:password@` replaced by `***@`, fit for messages and logs."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", r"\1***@", url)


@dataclass(frozen=True)
class _Target:
    """One hop of a download: where to connect and what to ask for."""

    url: str
    scheme: str
    host: str          # ASCII (IDNA) host name or IP literal, as sent in the Host header and for SNI
    port: int
    request_path: str
    authorization: str | None

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


@dataclass
class _Download:
    """State that survives between retries: the chosen name, whether the server can resume, and how
    big the file is meant to be."""

    url: str
    shown: str
    folder: Path
    settings: Settings
    name: str | None = None
    can_resume: bool = False
    validator: str | None = None   # strong ETag or Last-Modified, sent as If-Range when resuming
    total: int | None = None       # the whole file's size, when the server said
    ends_at: float = float("inf")  # monotonic time the whole download (all tries) must end by

    def time_left(self) -> float:
        """Seconds left for the whole download; DeadlineExceeded naming the URL once none are."""
        left = self.ends_at - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(f"{self.shown}: the download did not finish within "
                                   f"{self.settings.http_download_timeout:g} s (AUTOCLIP_HTTP_DOWNLOAD_TIMEOUT, "
                                   "or the run's deadline)")
        return left

    @property
    def part(self) -> Path | None:
        return self.folder / f"{self.name}.part" if self.name else None

    def discard(self) -> None:
        """Remove the partial file: a failed download leaves nothing behind."""
        if self.part is not None:
            self.part.unlink(missing_ok=True)

    def attempt(self) -> Path:
        """One try: follow redirects, check the answer, stream the body into `.part`, then rename it."""
        self.time_left()
        offset = self._resume_offset()
        response, connection, landed = self._open(offset)
        try:
            offset = self._accept(response, offset, landed)
            self._receive(response, connection, offset)
        finally:
            response.close()
            connection.close()
        final = self.folder / self.name
        self.part.replace(final)
        return final

    # --- one try, step by step -------------------------------------------------------------------

    def _resume_offset(self) -> int:
        """Bytes already on disk worth keeping: only when the server said it can send the rest."""
        part = self.part
        if part is None or not part.exists():
            return 0
        if self.can_resume:
            return part.stat().st_size
        part.unlink()
        return 0

    def _restart(self) -> None:
        """Forget what was downloaded: the next try starts from the first byte."""
        self.can_resume = False
        self.discard()

    def _open(self, offset: int) -> tuple[http.client.HTTPResponse, _PinnedHTTPConnection, _Target]:
        """Send the request, following redirects by hand so every hop is vetted before connecting;
        return the answer, its connection and the hop that gave it."""
        origin = _parse_target(self.url, self.shown, redirected=False)
        current = origin
        for _ in range(self.settings.http_max_redirects + 1):
            self.time_left()
            addresses = _vet(current, self.shown, self.settings, redirected=current is not origin)
            connection = _connect(current, addresses, self.shown, self.settings)
            try:
                response = _request(connection, current, self._headers(current, offset),
                                    self.shown, self.settings)
            except BaseException:
                connection.close()
                raise
            if response.status not in _REDIRECTS:
                return response, connection, current
            location = (response.getheader("Location") or "").strip()
            response.close()
            connection.close()
            if not location:
                raise InputError(self.shown, f"HTTP {response.status} {response.reason} without a Location header")
            next_url = urljoin(current.url, location)
            log.debug("%s redirects to %s", redact_url(current.url), redact_url(next_url))
            current = _parse_target(next_url, self.shown, redirected=True, origin=origin)
        raise InputError(self.shown, f"too many redirects (more than {self.settings.http_max_redirects}; "
                         "see AUTOCLIP_HTTP_MAX_REDIRECTS)")

    def _headers(self, target: _Target, offset: int) -> dict[str, str]:
        headers = {"User-Agent": "auto-clip", "Accept": "*/*", "Accept-Encoding": "identity",
                   "Connection": "close"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if self.validator:
                headers["If-Range"] = self.validator  # a changed file comes back whole (200), not spliced
        if target.authorization:
            headers["Authorization"] = target.authorization
        return headers

    def _accept(self, response: http.client.HTTPResponse, offset: int, landed: _Target) -> int:
        """Check status and headers before any body is written; return the offset writing starts at."""
        status, reason = response.status, response.reason
        if status == 416 and offset:
            self._restart()
            raise TransientError("the server refused to resume the download (HTTP 416)")
        if status == 429 or status >= 500:
            raise TransientError(f"HTTP {status} {reason}")
        if status >= 400:
            raise InputError(self.shown, f"HTTP {status} {reason}")
        if status not in (200, 206) or (status == 206 and not offset):
            raise InputError(self.shown, f"unexpected HTTP {status} {reason} (expected the video file)")

        content_type = _content_type(response)
        if content_type in _WEB_PAGE_TYPES:
            raise InputError(self.shown, f"is a web page ({content_type}), not a video file")
        if content_type and (content_type.startswith("text/") or content_type in _TEXT_TYPES):
            raise InputError(self.shown, f"is a text document ({content_type}), not a video file")

        length = _content_length(response)
        if status == 206:
            first, total = _content_range(response)
            if first != offset:
                self._restart()
                raise TransientError(f"the server resumed at byte {first}, not {offset}")
            if total is None and length is not None:
                total = offset + length
            if self.total is not None and total is not None and total != self.total:
                self._restart()
                raise TransientError("the file changed on the server during the download")
        else:
            offset, total = 0, length  # a whole answer (also to a Range request): start over
        self.can_resume = status == 206 or (response.getheader("Accept-Ranges") or "").strip().lower() == "bytes"
        self.validator = _validator(response)
        self.total = total

        limit = self.settings.max_video_size
        if total is not None and total > limit:
            raise InputError(self.shown, f"is {_size_text(total)}, over the limit of {_size_text(limit)} "
                             "(AUTOCLIP_MAX_VIDEO_SIZE)")
        if self.name is None:
            self.name = _choose_name(urlsplit(landed.url).path, response.msg.get_filename(), content_type,
                                     self.settings.supported_formats, self.shown)
            self.folder.mkdir(parents=True, exist_ok=True)
        return offset

    def _receive(self, response: http.client.HTTPResponse, connection: _PinnedHTTPConnection,
                 offset: int) -> None:
        """Stream the body into `.part`, counting the bytes that really arrive.

        http.client would stop at Content-Length and hide anything beyond it; the length is dropped
        so a server that announces little and sends more is caught (we asked it to close after the
        body, so a short grace read after the announced end sees either the close or the extra).
        """
        end = self.total
        limit = self.settings.max_video_size
        read_timeout = self.settings.http_read_timeout
        if not response.chunked:
            response.length = None
        received, overflow = offset, False
        idle = read_timeout
        with self.part.open("ab" if offset else "wb") as out:
            while True:
                # a server that trickles a byte now and then never stalls: the whole download's
                # deadline is what stops it
                if connection.socket is not None:
                    connection.socket.settimeout(min(idle, self.time_left()))
                try:
                    chunk = response.read1(_CHUNK)
                except TimeoutError:
                    if end is not None and received >= end:
                        break  # all announced bytes arrived; the server just kept the connection open
                    self.time_left()
                    raise TransientError(f"stalled: no data for {read_timeout:g} s "
                                         "(AUTOCLIP_HTTP_READ_TIMEOUT)") from None
                except (OSError, http.client.HTTPException) as exc:
                    if end is not None and received >= end:
                        break
                    raise TransientError(f"connection lost after {received} bytes ({exc})") from None
                if not chunk:
                    break
                if received == 0 and _looks_like_html(chunk):
                    raise InputError(self.shown, "is a web page (HTML content), not a video file")
                received += len(chunk)
                if received > limit:
                    announced = f", although it announced {_size_text(end)}" if end is not None else ""
                    raise InputError(self.shown, f"sent more than the limit of {_size_text(limit)} "
                                     f"(AUTOCLIP_MAX_VIDEO_SIZE){announced}")
                if end is not None and received > end:
                    overflow = True  # keep counting (the cap above still applies) but store nothing more
                if not overflow:
                    out.write(chunk)
                if end is not None and received >= end:
                    idle = min(1.0, read_timeout)
        if overflow:
            raise InputError(self.shown, f"sent {received} bytes, more than the {end} it announced "
                             "(Content-Length); the download cannot be trusted")
        if end is not None and received < end:
            raise TransientError(f"download ended early: got {received} of {end} bytes")
        if received == 0:
            raise InputError(self.shown, "is empty (0 bytes)")


# --- URLs and the address guard -------------------------------------------------------------------


def _parse_target(url: str, shown: str, redirected: bool, origin: _Target | None = None) -> _Target:
    """Check a URL's form (scheme, host, port) and turn it into a hop."""
    where = f"redirects to {redact_url(url)}, which " if redirected else ""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InputError(shown, f"{where}is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        if redirected:
            raise InputError(shown, f"{where}is not an http(s) URL")
        raise InputError(shown, f"only http and https URLs can be downloaded (not {scheme or 'a bare path'})")
    host = parts.hostname or ""
    if not host:
        raise InputError(shown, f"{where}is not a valid URL (no host name)")
    if _ip_or_none(host) is None:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InputError(shown, f"{where}has an invalid host name") from None
    port = port or _DEFAULT_PORTS[scheme]
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_QUERY_SAFE)
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    elif origin is not None and origin.authorization and origin.origin == (scheme, host, port):
        authorization = origin.authorization  # same server as the original URL: keep its credentials
    return _Target(url, scheme, host, port, path, authorization)


def _vet(target: _Target, shown: str, settings: Settings, redirected: bool) -> list[str]:
    """Resolve once and refuse if ANY address is internal (unless allow-listed); return the addresses
    to connect to, so nothing resolves the name again between this check and the connection."""
    names, networks = _allow_list(settings.http_allow)
    literal = _ip_or_none(target.host)
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise TransientError(f"cannot resolve {target.host} right now ({exc})") from None
        where = f"redirects to {redact_url(target.url)}, but" if redirected else "the host"
        raise InputError(shown, f"{where} {target.host} cannot be resolved ({exc.strerror or exc})") from None
    addresses = list(dict.fromkeys(info[4][0].split("%")[0] for info in infos))
    if not addresses:
        raise InputError(shown, f"{target.host} resolves to no address")
    name = target.host.rstrip(".")
    if name in names and _opens(names[name], target.port):
        return addresses
    for address in addresses:
        ip = _unmapped(ipaddress.ip_address(address))
        kind = _forbidden_kind(ip)
        listed = [ports for net, ports in networks if ip.version == net.version and ip in net]
        if name in names:
            listed.append(names[name])
        if kind is None or any(_opens(ports, target.port) for ports in listed):
            continue
        if listed:  # allow-listed, but not on this port
            open_ports = sorted(set().union(*listed))
            raise InputError(shown, f"{target.host} is allowed (AUTOCLIP_HTTP_ALLOW) on port "
                             f"{', '.join(map(str, open_ports))} only, not {target.port} "
                             f"(add '{target.host}:{target.port}' to reach it)")
        if redirected and literal is not None:
            reason = f"redirects to {redact_url(target.url)}, {kind} {_ALLOW_HINT}"
        elif redirected:
            reason = f"redirects to {redact_url(target.url)}, whose host resolves to {ip}, {kind} {_ALLOW_HINT}"
        elif literal is not None:
            reason = f"{ip} is {kind} {_ALLOW_HINT}"
        else:
            reason = f"{target.host} resolves to {ip}, {kind} {_ALLOW_HINT}"
        raise InputError(shown, reason)
    return addresses


def _forbidden_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is off limits, or None for a public one."""
    if ip in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.version == 4 and ip in _SHARED_SPACE:
        return "a shared address (100.64.0.0/10)"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "a non-public address"
    return None


WEB_PORTS = frozenset({80, 443})


def _allow_list(entries: tuple[str, ...]) -> tuple[dict[str, frozenset | None], list]:
    """AUTOCLIP_HTTP_ALLOW as {host name: ports} and [(network, ports)]; ports None means every port.

    An entry may name a port (`host:8080`, `10.0.0.5:9000`, `[::1]:8080`, `10.0.0.0/8:9000`) or every
    port (`host:*`). An entry without a port opens only the web ports 80 and 443: allow-listing an
    internal address must not open every service it runs (a bare `127.0.0.1` used to reach the
    Prefect API, databases and admin consoles on the worker itself)."""
    names: dict[str, frozenset | None] = {}
    networks = []
    for entry in entries:
        host, ports = _split_port(entry.strip().lower())
        try:
            networks.append((ipaddress.ip_network(host.strip("[]"), strict=False), ports))
        except ValueError:
            name = host.rstrip(".")
            known = names.get(name, frozenset())
            names[name] = None if ports is None or known is None else known | ports
    return names, networks


def _split_port(entry: str) -> tuple[str, frozenset | None]:
    """'host:8080' -> ('host', {8080}); 'host:*' -> ('host', None); 'host' -> ('host', {80, 443})."""
    if entry.startswith("["):  # [v6] or [v6]:port
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:  # a name, an IPv4 address or network, or a bare IPv6 address or network
        host, port = entry, ""
    if port == "*":
        return host, None
    if not port:
        return host, WEB_PORTS
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(entry, "is not a valid AUTOCLIP_HTTP_ALLOW entry (use host, host:port or host:*)")
    return host, frozenset({int(port)})


def _opens(ports: frozenset | None, port: int) -> bool:
    return ports is None or port in ports


def _ip_or_none(host: str):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _unmapped(ip):
    """::ffff:10.0.0.1 is 10.0.0.1 to the network stack, so judge it as that."""
    return ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped else ip


# --- connections ----------------------------------------------------------------------------------


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Speaks to `host` (Host header) but connects only to the addresses vetted for it."""

    def __init__(self, host: str, port: int, addresses: list[str], connect_timeout: float, read_timeout: float):
        super().__init__(host, port, timeout=read_timeout)
        self.addresses = addresses
        self.connect_timeout = connect_timeout
        # http.client drops `sock` once a response takes the connection over; the body is still read
        # from this socket, and its timeout is tuned while reading.
        self.socket: socket.socket | None = None

    def _open_socket(self) -> socket.socket:
        last_error: OSError | None = None
        for address in self.addresses:
            try:
                return socket.create_connection((address, self.port), timeout=self.connect_timeout)
            except OSError as exc:
                last_error = exc
        raise last_error or OSError("no address to connect to")

    def connect(self) -> None:
        self.sock = self.socket = self._open_socket()
        self.sock.settimeout(self.timeout)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """TLS over the pinned socket; the certificate is checked against the original host name (SNI)."""

    default_port = 443

    def connect(self) -> None:
        raw = self._open_socket()
        try:
            self.sock = self.socket = ssl.create_default_context().wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise
        self.sock.settimeout(self.timeout)


def _connect(target: _Target, addresses: list[str], shown: str, settings: Settings) -> _PinnedHTTPConnection:
    kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = kind(target.host, target.port, addresses, settings.http_connect_timeout,
                      settings.http_read_timeout)
    where = f"{target.host}:{target.port}"
    try:
        connection.connect()
    except ssl.SSLCertVerificationError as exc:
        raise InputError(shown, f"TLS certificate of {target.host} is not valid "
                         f"({exc.verify_message or exc})") from None
    except ssl.SSLError as exc:
        raise InputError(shown, f"TLS handshake with {where} failed ({exc})") from None
    except TimeoutError:
        raise TransientError(f"cannot connect to {where} within {settings.http_connect_timeout:g} s "
                             "(AUTOCLIP_HTTP_CONNECT_TIMEOUT)") from None
    except OSError as exc:
        raise TransientError(f"cannot connect to {where} ({exc.strerror or exc})") from None
    return connection


def _request(connection: http.client.HTTPConnection, target: _Target, headers: dict[str, str], shown: str,
             settings: Settings) -> http.client.HTTPResponse:
    try:
        connection.request("GET", target.request_path, headers=headers)
        return connection.getresponse()
    except TimeoutError:
        raise TransientError(f"no answer from {target.host} within {settings.http_read_timeout:g} s "
                             "(AUTOCLIP_HTTP_READ_TIMEOUT)") from None
    except OSError as exc:  # includes RemoteDisconnected
        raise TransientError(f"connection to {target.host} lost ({exc})") from None
    except http.client.HTTPException as exc:
        raise InputError(shown, f"{target.host} did not answer with valid HTTP ({type(exc).__name__})") from None


# --- headers and names ----------------------------------------------------------------------------


def _content_type(response: http.client.HTTPResponse) -> str:
    """The media type without parameters, lower case; '' when the server sent none."""
    if not response.getheader("Content-Type"):
        return ""
    return response.msg.get_content_type()


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = (response.getheader("Content-Length") or "").strip()
    return int(value) if value.isdigit() else None


def _content_range(response: http.client.HTTPResponse) -> tuple[int, int | None]:
    """(first byte, total size or None) from `Content-Range: bytes first-last/total`."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", response.getheader("Content-Range") or "")
    if not match:
        raise TransientError("the server's partial answer has no usable Content-Range")
    total = match.group(2)
    return int(match.group(1)), int(total) if total.isdigit() else None


def _validator(response: http.client.HTTPResponse) -> str | None:
    """What If-Range may carry: a strong ETag, else Last-Modified."""
    etag = (response.getheader("ETag") or "").strip()
    if etag and not etag.startswith("W/"):
        return etag
    return (response.getheader("Last-Modified") or "").strip() or None


def _looks_like_html(head: bytes) -> bool:
    start = head[:256].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype", b"<html"))


def _choose_name(url_path: str, disposition: str | None, content_type: str, formats: tuple[str, ...],
                 shown: str) -> str:
    """The last segment of the URL that answered (after redirects) if it has a supported extension,
    else the Content-Disposition name, else a name whose extension comes from the Content-Type."""
    candidates = [_safe_name(unquote(posixpath.basename(url_path))), _safe_name(disposition or "")]
    for candidate in candidates:
        if _extension(candidate) in formats:
            return candidate
    type_extension = VIDEO_TYPES.get(content_type)
    stem = next((Path(c).stem if _extension(c) else c for c in candidates if c), "") or "download"
    if type_extension in formats:
        return f"{stem}.{type_extension}"
    odd = next((e for e in (type_extension, *map(_extension, reversed(candidates))) if e), None)
    if odd:
        raise InputError(shown, f"unsupported format '.{odd}' (supported: {', '.join(formats)}; "
                         "see AUTOCLIP_SUPPORTED_FORMATS)")
    raise InputError(shown, "cannot tell the video format (no supported extension or video Content-Type)")


def _extension(name: str) -> str:
    """The lower-case extension if it looks like one ('mp4', '3gp'), else ''."""
    suffix = Path(name).suffix.lower().lstrip(".")
    return suffix if re.fullmatch(r"(?=[a-z0-9]*[a-z])[a-z0-9]{1,5}", suffix) else ""


def _safe_name(raw: str) -> str:
    """A plain file name: no folders, no control or shell-special characters, no leading dot or dash."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^\w.\-+,() ]+", "_", name)
    name = re.sub(r"\s+", " ", name).strip(" ._-")
    if len(name) > 120:
        suffix = Path(name).suffix if _extension(name) else ""
        name = name[:120 - len(suffix)].rstrip(" ._-") + suffix
    return name


def _size_text(size: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def vet_url(url: str, settings: Settings) -> None:
    """Refuse a URL auto-clip is asked to send data to (a callback) when it points at an internal address,
    by the same rules as downloads (AUTOCLIP_HTTP_ALLOW lets named hosts through)."""
    shown = redact_url(url)
    _vet(_parse_target(url, shown, redirected=False), shown, settings, redirected=False)


def post_json(url: str, body: bytes, headers: dict[str, str], settings: Settings) -> str:
    """POST `body` (JSON) to `url` through the same guard as downloads: every hop's addresses vetted,
    the connection pinned to them, redirects followed by hand and re-checked (only 307/308, which keep
    the method and body). Returns 'HTTP <status>'; TransientError for 429, 5xx and network faults,
    ProviderError for other refusals, InputError for a URL the guard refuses."""
    from autoclip.errors import ProviderError

    shown = redact_url(url)
    origin = _parse_target(url, shown, redirected=False)
    current = origin
    headers = {"Content-Type": "application/json", "User-Agent": "auto-clip", **headers,
               "Content-Length": str(len(body)), "Connection": "close"}
    for _ in range(settings.http_max_redirects + 1):
        addresses = _vet(current, shown, settings, redirected=current is not origin)
        connection = _connect(current, addresses, shown, settings)
        try:
            sent = dict(headers)
            if current.authorization:
                sent["Authorization"] = current.authorization
            connection.request("POST", current.request_path, body=body, headers=sent)
            response = connection.getresponse()
            status, reason = response.status, response.reason
            location = (response.getheader("Location") or "").strip()
            response.read(64 * 1024)
        except TimeoutError:
            raise TransientError(f"no answer from {current.host} within {settings.http_read_timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransientError(f"connection to {current.host} lost ({exc})") from None
        finally:
            connection.close()
        if status in (307, 308) and location:
            current = _parse_target(urljoin(current.url, location), shown, redirected=True, origin=origin)
            continue
        if status == 429 or status >= 500:
            raise TransientError(f"HTTP {status} {reason}")
        if status >= 300:
            raise ProviderError(f"HTTP {status} {reason}")
        return f"HTTP {status}"
    raise ProviderError(f"too many redirects (more than {settings.http_max_redirects})")
