"""URL downloads against real HTTP(S) servers on 127.0.0.1: streaming, size cap, resume, redirects, the
address guard and error reasons.

Nothing may leave loopback: every test in this module runs with a resolver that answers only IP
literals and names a test maps itself (no DNS query is ever sent), and with a guard on
socket.connect that records every target and fails the test on any address outside 127.0.0.0/8.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from autoclip.config import get_settings
from autoclip.errors import InputError
from autoclip.sources.http import fetch_http
from tests import synth

ETAG = '"clip-v1"'
CREDENTIALS = ("user", "hunter2")
LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")


@dataclass
class Seen:
    path: str
    headers: dict[str, str]  # lower-case names


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, video: bytes, tls: ssl.SSLContext | None = None):
        super().__init__(("127.0.0.1", 0), Routes)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.video = video
        self.seen: list[Seen] = []
        self.hits: Counter[str] = Counter()
        self.stop = threading.Event()

    def server_bind(self):
        """Bind without HTTPServer's getfqdn(): a reverse lookup could query a DNS server."""
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    @property
    def base(self) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server_port}"

    def requests_for(self, path: str) -> list[Seen]:
        return [s for s in self.seen if urlsplit(s.path).path == path]


class Routes(BaseHTTPRequestHandler):
    """Each path is one behaviour a download can meet in the wild."""

    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        path = urlsplit(self.path).path
        self.server.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
        self.server.hits[path] += 1
        first = self.server.hits[path] == 1
        try:
            self.route(path, first)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading on purpose: that is what some tests check
        self.close_connection = True

    def route(self, path: str, first: bool):
        video, port = self.server.video, self.server.server_port
        redirects = {
            "/redirect/private": "http://10.1.2.3/clip.mp4",
            "/redirect/loopback2": f"http://127.0.0.2:{port}/clip.mp4",
            "/redirect/same": f"http://127.0.0.1:{port}/redirect/same2",
            "/redirect/same2": "/clip.mp4",
            "/redirect/loop": "/redirect/loop",
            "/redirect/ftp": "ftp://127.0.0.1/clip.mp4",
        }
        if path in redirects:
            self.reply(302 if path != "/redirect/same2" else 307, headers=[("Location", redirects[path])])
        elif path in ("/clip.mp4", "/download/12345") or (path.startswith("/busy/") and not first):
            self.serve(video)
        elif path == "/get":
            self.serve(video, content_type="application/octet-stream",
                       extra=[("Content-Disposition", "attachment; filename*=UTF-8''My%20Clip.mov")])
        elif path in ("/data", "/clip.xyz"):
            self.serve(video, content_type="application/octet-stream")
        elif path == "/missing.mp4":
            self.reply(404, b"<html><body>Not here</body></html>", [("Content-Type", "text/html")])
        elif path == "/page":
            self.reply(200, b"<!doctype html><html><body>A video player</body></html>",
                       [("Content-Type", "text/html; charset=utf-8")])
        elif path == "/disguised.mp4":
            self.reply(200, b"\n  <!DOCTYPE html><html><body>Log in first</body></html>",
                       [("Content-Type", "application/octet-stream")])
        elif path == "/liar.mp4":
            self.reply(200, bytes(200_000), [("Content-Type", "video/mp4")], length=10_000)
        elif path == "/unsized.mp4":
            self.reply(200, bytes(200_000), [("Content-Type", "video/mp4")], length=None)
        elif path == "/huge.mp4":
            self.reply(200, b"", [("Content-Type", "video/mp4")], length=10_000_000)
        elif path == "/stall.mp4":
            self.reply(200, bytes(1000), [("Content-Type", "video/mp4")], length=100_000)
            self.server.stop.wait(3)  # bounded: the handler ends by itself
        elif path == "/trickle.mp4":  # a byte every 0.2 s: never idle long enough to stall
            self.reply(200, b"", [("Content-Type", "video/mp4")], length=100_000)
            for _ in range(50):
                if self.server.stop.wait(0.2):
                    break
                self.wfile.write(b"\0")
                self.wfile.flush()
        elif path == "/keep-open.mp4":  # ignores "Connection: close": the body ends, the socket stays
            self.reply(200, video, [("Content-Type", "video/mp4")])
            self.server.stop.wait(3)
        elif path.startswith("/flaky/"):
            self.serve(video, cut=first)
        elif path == "/ignores-range.mp4":
            self.serve(video, cut=first, honour_range=False)
        elif path == "/no-resume.mp4":
            self.serve(video, cut=first, ranges=False)
        elif path == "/always-short.mp4":
            self.serve(video, cut=True, ranges=False)
        elif path.startswith("/busy/") or path == "/down.mp4":
            self.reply(503, b"busy", [("Content-Type", "text/plain")])
        elif path == "/auth.mp4":
            expected = "Basic " + base64.b64encode(":".join(CREDENTIALS).encode()).decode()
            if self.headers.get("Authorization") == expected:
                self.serve(video)
            else:
                self.reply(401, b"who are you?", [("Content-Type", "text/plain")])
        else:
            self.reply(404, b"no such route")

    def reply(self, status: int, body: bytes = b"", headers=(), length: int | None | bool = True):
        """`length`: True = the real length, an int = a claimed one, None = no Content-Length (close ends it)."""
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", str(len(body) if length is True else length))
        self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def serve(self, data: bytes, content_type="video/mp4", extra=(), ranges=True, honour_range=True, cut=False):
        """A file, with Range support when `ranges`; `cut` sends only half the body, then closes."""
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and ranges and honour_range:
            start = int(match.group(1))
        headers = [("Content-Type", content_type), ("ETag", ETAG), *extra]
        if ranges:
            headers.append(("Accept-Ranges", "bytes"))
        if start:
            headers.append(("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}"))
        body = data[start:]
        self.send_response(206 if start else 200)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if cut else body)


def _start(server: LoopbackServer):
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


def _stop(server: LoopbackServer, thread: threading.Thread):
    server.stop.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> bytes:
    path = synth.lavfi(tmp_path_factory.mktemp("http") / "clip.mp4", "testsrc2=s=320x180:r=25", 2,
                       audio="sine=f=440:d=2")
    return path.read_bytes()


@pytest.fixture(scope="module")
def server(video):
    srv = LoopbackServer(video)
    thread = _start(srv)
    yield srv
    _stop(srv, thread)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for videos.example (it is its own CA), made with the openssl CLI."""
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not found")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=videos.example",
                    "-addext", "subjectAltName=DNS:videos.example",
                    "-addext", "basicConstraints=critical,CA:TRUE"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def tls_server(video, tls_files):
    cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv = LoopbackServer(video, tls=context)
    thread = _start(srv)
    yield srv
    _stop(srv, thread)


class Resolver:
    """Stands in for DNS: IP literals resolve as usual (numerically), names only as a test maps them."""

    def __init__(self, real):
        self.real = real
        self.names: dict[str, list[list[str]]] = {}   # name -> successive answers (the last one repeats)
        self.calls: Counter[str] = Counter()

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.calls[name] += 1
        try:
            ipaddress.ip_address(name)
        except ValueError:
            answers = self.names.get(name.lower())
            if not answers:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (test resolver)") from None
            addresses = answers[min(self.calls[name] - 1, len(answers) - 1)]
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port)) for a in addresses]
        return self.real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)


@pytest.fixture(autouse=True)
def resolver(monkeypatch) -> Resolver:
    fake = Resolver(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture(autouse=True)
def connections(monkeypatch) -> list[tuple[str, int]]:
    """Every outgoing connect of the test; one outside 127.0.0.0/8 fails the test before it is sent."""
    targets: list[tuple[str, int]] = []
    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        if isinstance(address, tuple):
            targets.append((address[0], address[1]))
            target = ipaddress.ip_address(address[0].split("%")[0])
            if target.version != 4 or target not in LOOPBACK_V4:
                pytest.fail(f"the code tried to connect to {address[0]}: only 127.0.0.0/8 is allowed in tests")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    return targets


def configure(monkeypatch, **env):
    """Settings for a test: loopback allowed and quick retries unless the test says otherwise."""
    values = {"HTTP_ALLOW": "127.0.0.1:*", "RETRY_BASE_DELAY": "0.01", "RETRY_MAX_DELAY": "0.05",
              "RETRY_ATTEMPTS": "3", **env}
    for name, value in values.items():
        monkeypatch.setenv(f"AUTOCLIP_{name}", str(value))
    get_settings.cache_clear()
    return get_settings()


def refusal(url: str, folder: Path, settings) -> str:
    """The reason fetch_http gives for `url`, after checking the message names the URL."""
    with pytest.raises(InputError) as caught:
        fetch_http(url, folder, settings)
    assert caught.value.source == url
    assert str(caught.value).startswith(f"{url}: ")
    return caught.value.reason


def assert_nothing_left(folder: Path):
    assert not folder.exists() or list(folder.iterdir()) == []


# --- downloads that work ---------------------------------------------------------------------------


def test_downloads_a_video_byte_for_byte(server, video, tmp_path, monkeypatch, connections):
    path = fetch_http(f"{server.base}/clip.mp4", tmp_path / "in", configure(monkeypatch))
    assert path == tmp_path / "in" / "clip.mp4"
    assert path.read_bytes() == video
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]  # no .part left behind
    assert connections == [("127.0.0.1", server.server_port)]
    request = server.requests_for("/clip.mp4")[-1]
    assert "range" not in request.headers and request.headers["accept-encoding"] == "identity"


def test_a_server_that_keeps_the_connection_open_still_finishes(server, video, tmp_path, monkeypatch):
    started = time.monotonic()
    path = fetch_http(f"{server.base}/keep-open.mp4", tmp_path, configure(monkeypatch))
    assert path.read_bytes() == video
    assert time.monotonic() - started < 2.5  # a short grace read after the announced end, not the read timeout


def test_follows_redirects_on_the_same_allowed_server(server, video, tmp_path, monkeypatch):
    path = fetch_http(f"{server.base}/redirect/same", tmp_path, configure(monkeypatch))
    assert path.name == "clip.mp4" and path.read_bytes() == video  # named after where it landed


def test_no_extension_is_named_from_the_content_type(server, video, tmp_path, monkeypatch):
    path = fetch_http(f"{server.base}/download/12345", tmp_path, configure(monkeypatch))
    assert path.name == "12345.mp4" and path.read_bytes() == video


def test_content_disposition_names_the_file(server, video, tmp_path, monkeypatch):
    path = fetch_http(f"{server.base}/get?id=7", tmp_path, configure(monkeypatch))
    assert path.name == "My Clip.mov" and path.read_bytes() == video


def test_allow_list_takes_a_cidr(server, video, tmp_path, monkeypatch):
    path = fetch_http(f"{server.base}/clip.mp4", tmp_path, configure(monkeypatch, HTTP_ALLOW="127.0.0.0/8:*"))
    assert path.read_bytes() == video


def test_credentials_in_the_url_are_sent_but_never_shown(server, video, tmp_path, monkeypatch):
    settings = configure(monkeypatch)
    user, password = CREDENTIALS
    port = server.server_port
    path = fetch_http(f"http://{user}:{password}@127.0.0.1:{port}/auth.mp4", tmp_path, settings)
    assert path.read_bytes() == video

    with pytest.raises(InputError) as caught:
        fetch_http(f"http://{user}:wrong-{password}@127.0.0.1:{port}/auth.mp4", tmp_path / "x", settings)
    assert password not in str(caught.value) and caught.value.source == f"http://***@127.0.0.1:{port}/auth.mp4"
    assert caught.value.reason == "HTTP 401 Unauthorized"


# --- resuming and retries --------------------------------------------------------------------------


def test_cut_off_download_resumes_with_range(server, video, tmp_path, monkeypatch):
    path = fetch_http(f"{server.base}/flaky/resume.mp4", tmp_path, configure(monkeypatch))
    assert path.name == "resume.mp4" and path.read_bytes() == video
    first, second = server.requests_for("/flaky/resume.mp4")
    assert "range" not in first.headers
    offset = int(re.fullmatch(r"bytes=(\d+)-", second.headers["range"]).group(1))
    assert offset == len(video) // 2 > 0
    assert second.headers["if-range"] == ETAG  # a changed file would come back whole, not spliced


def test_a_200_to_a_range_request_starts_over(server, video, tmp_path, monkeypatch):
    path = fetch_http(f"{server.base}/ignores-range.mp4", tmp_path, configure(monkeypatch))
    assert path.read_bytes() == video
    assert "range" in server.requests_for("/ignores-range.mp4")[1].headers


def test_without_range_support_a_retry_starts_from_zero(server, video, tmp_path, monkeypatch):
    path = fetch_http(f"{server.base}/no-resume.mp4", tmp_path, configure(monkeypatch))
    assert path.read_bytes() == video
    assert all("range" not in s.headers for s in server.requests_for("/no-resume.mp4"))


def test_server_busy_is_retried(server, video, tmp_path, monkeypatch):
    assert fetch_http(f"{server.base}/busy/once.mp4", tmp_path, configure(monkeypatch)).read_bytes() == video
    assert server.hits["/busy/once.mp4"] == 2


def test_server_down_gives_up_after_the_retries(server, tmp_path, monkeypatch):
    url = f"{server.base}/down.mp4"
    reason = refusal(url, tmp_path, configure(monkeypatch, RETRY_ATTEMPTS=2))
    assert reason == "HTTP 503 Service Unavailable; gave up after 2 tries"
    assert server.hits["/down.mp4"] == 2


def test_a_body_that_always_ends_early(server, video, tmp_path, monkeypatch):
    url = f"{server.base}/always-short.mp4"
    reason = refusal(url, tmp_path, configure(monkeypatch, RETRY_ATTEMPTS=2))
    assert reason == (f"download ended early: got {len(video) // 2} of {len(video)} bytes; "
                      "gave up after 2 tries")
    assert_nothing_left(tmp_path)


def test_a_stalled_body_times_out(server, tmp_path, monkeypatch):
    url = f"{server.base}/stall.mp4"
    settings = configure(monkeypatch, HTTP_READ_TIMEOUT="0.5", RETRY_ATTEMPTS=2)
    started = time.monotonic()
    reason = refusal(url, tmp_path, settings)
    assert time.monotonic() - started < 4
    assert reason == "stalled: no data for 0.5 s (AUTOCLIP_HTTP_READ_TIMEOUT); gave up after 2 tries"
    assert_nothing_left(tmp_path)


def test_connection_refused_is_retried_then_reported(tmp_path, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again at once: nothing listens there
    url = f"http://127.0.0.1:{port}/clip.mp4"
    reason = refusal(url, tmp_path, configure(monkeypatch, RETRY_ATTEMPTS=2))
    assert reason.startswith(f"cannot connect to 127.0.0.1:{port} (") and reason.endswith("; gave up after 2 tries")


# --- what is not a video ---------------------------------------------------------------------------


def test_not_found_fails_at_once(server, tmp_path, monkeypatch):
    url = f"{server.base}/missing.mp4"
    assert refusal(url, tmp_path, configure(monkeypatch)) == "HTTP 404 Not Found"
    assert server.hits["/missing.mp4"] == 1


def test_a_web_page_is_refused(server, tmp_path, monkeypatch):
    url = f"{server.base}/page"
    assert refusal(url, tmp_path, configure(monkeypatch)) == "is a web page (text/html), not a video file"


def test_html_sent_as_a_binary_is_refused(server, tmp_path, monkeypatch):
    url = f"{server.base}/disguised.mp4"
    assert refusal(url, tmp_path, configure(monkeypatch)) == "is a web page (HTML content), not a video file"
    assert_nothing_left(tmp_path)


def test_format_unknown(server, tmp_path, monkeypatch):
    url = f"{server.base}/data"
    assert refusal(url, tmp_path, configure(monkeypatch)) == (
        "cannot tell the video format (no supported extension or video Content-Type)")


def test_unsupported_extension(server, tmp_path, monkeypatch):
    url = f"{server.base}/clip.xyz"
    reason = refusal(url, tmp_path, configure(monkeypatch))
    assert reason.startswith("unsupported format '.xyz' (supported: mp4, avi, mov")
    assert reason.endswith("see AUTOCLIP_SUPPORTED_FORMATS)")


# --- size cap --------------------------------------------------------------------------------------


def test_cap_applies_to_bytes_received_not_to_the_claim(server, tmp_path, monkeypatch):
    url = f"{server.base}/liar.mp4"  # claims 10,000 bytes, sends 200,000
    reason = refusal(url, tmp_path, configure(monkeypatch, MAX_VIDEO_SIZE="50KB"))
    assert reason == ("sent more than the limit of 48.8 KiB (AUTOCLIP_MAX_VIDEO_SIZE), "
                      "although it announced 9.8 KiB")
    assert_nothing_left(tmp_path)


def test_cap_applies_without_a_content_length(server, tmp_path, monkeypatch):
    url = f"{server.base}/unsized.mp4"
    reason = refusal(url, tmp_path, configure(monkeypatch, MAX_VIDEO_SIZE="50KB"))
    assert reason == "sent more than the limit of 48.8 KiB (AUTOCLIP_MAX_VIDEO_SIZE)"
    assert_nothing_left(tmp_path)


def test_more_bytes_than_announced_are_refused_under_the_cap(server, tmp_path, monkeypatch):
    url = f"{server.base}/liar.mp4"
    reason = refusal(url, tmp_path, configure(monkeypatch, MAX_VIDEO_SIZE="1MB"))
    assert reason == ("sent 200000 bytes, more than the 10000 it announced (Content-Length); "
                      "the download cannot be trusted")


def test_announced_size_over_the_cap_is_refused_up_front(server, tmp_path, monkeypatch):
    url = f"{server.base}/huge.mp4"
    reason = refusal(url, tmp_path, configure(monkeypatch, MAX_VIDEO_SIZE="50KB"))
    assert reason == "is 9.5 MiB, over the limit of 48.8 KiB (AUTOCLIP_MAX_VIDEO_SIZE)"
    assert_nothing_left(tmp_path)


# --- the address guard -----------------------------------------------------------------------------


def test_loopback_is_refused_unless_allowed(server, tmp_path, monkeypatch, connections):
    url = f"{server.base}/clip.mp4"
    reason = refusal(url, tmp_path, configure(monkeypatch, HTTP_ALLOW=""))
    assert reason == "127.0.0.1 is a loopback address (not allowed; see AUTOCLIP_HTTP_ALLOW)"
    assert connections == []


def test_redirect_to_a_private_address_is_refused_before_connecting(server, tmp_path, monkeypatch, connections):
    url = f"{server.base}/redirect/private"
    reason = refusal(url, tmp_path, configure(monkeypatch))
    assert reason == ("redirects to http://10.1.2.3/clip.mp4, a private address "
                      "(not allowed; see AUTOCLIP_HTTP_ALLOW)")
    assert connections == [("127.0.0.1", server.server_port)]  # the first hop only


def test_redirect_to_another_loopback_address_is_refused(server, tmp_path, monkeypatch, connections):
    url = f"{server.base}/redirect/loopback2"
    reason = refusal(url, tmp_path, configure(monkeypatch))
    assert reason == (f"redirects to http://127.0.0.2:{server.server_port}/clip.mp4, a loopback address "
                      "(not allowed; see AUTOCLIP_HTTP_ALLOW)")
    assert connections == [("127.0.0.1", server.server_port)]


def test_redirect_to_another_scheme_is_refused(server, tmp_path, monkeypatch):
    url = f"{server.base}/redirect/ftp"
    assert refusal(url, tmp_path, configure(monkeypatch)) == (
        "redirects to ftp://127.0.0.1/clip.mp4, which is not an http(s) URL")


def test_redirects_are_limited(server, tmp_path, monkeypatch):
    url = f"{server.base}/redirect/loop"
    before = server.hits["/redirect/loop"]
    reason = refusal(url, tmp_path, configure(monkeypatch, HTTP_MAX_REDIRECTS=3))
    assert reason == "too many redirects (more than 3; see AUTOCLIP_HTTP_MAX_REDIRECTS)"
    assert server.hits["/redirect/loop"] - before == 4


@pytest.mark.parametrize("host, named, kind", [
    ("169.254.169.254", "169.254.169.254", "a cloud metadata address"),
    ("[fd00:ec2::254]", "fd00:ec2::254", "a cloud metadata address"),
    ("100.100.100.200", "100.100.100.200", "a cloud metadata address"),
    ("100.64.3.4", "100.64.3.4", "a shared address (100.64.0.0/10)"),
    ("10.0.0.1", "10.0.0.1", "a private address"),
    ("192.168.1.20", "192.168.1.20", "a private address"),
    ("169.254.10.10", "169.254.10.10", "a link-local address"),
    ("0.0.0.0", "0.0.0.0", "an unspecified address"),
    ("224.0.0.1", "224.0.0.1", "a multicast address"),
    ("[::1]", "::1", "a loopback address"),
    ("[::ffff:10.0.0.1]", "10.0.0.1", "a private address"),  # IPv4-mapped: judged as the IPv4 address
])
def test_internal_addresses_are_refused(host, named, kind, tmp_path, monkeypatch, connections):
    url = f"http://{host}/clip.mp4"
    reason = refusal(url, tmp_path, configure(monkeypatch))
    assert reason == f"{named} is {kind} (not allowed; see AUTOCLIP_HTTP_ALLOW)"
    assert connections == []


def test_any_internal_answer_refuses_the_host(tmp_path, monkeypatch, resolver, connections):
    resolver.names["mixed.example"] = [["93.184.216.34", "10.0.0.7"]]
    url = "http://mixed.example/clip.mp4"
    reason = refusal(url, tmp_path, configure(monkeypatch))
    assert reason == "mixed.example resolves to 10.0.0.7, a private address (not allowed; see AUTOCLIP_HTTP_ALLOW)"
    assert connections == []


def test_connection_is_pinned_to_the_vetted_address(server, video, tmp_path, monkeypatch, resolver, connections):
    # First answer vetted (allow-listed by name); a later lookup would "rebind" elsewhere.
    resolver.names["videos.example"] = [["127.0.0.1"], ["127.0.0.2"]]
    port = server.server_port
    path = fetch_http(f"http://videos.example:{port}/clip.mp4", tmp_path,
                      configure(monkeypatch, HTTP_ALLOW="videos.example:*"))
    assert path.read_bytes() == video
    assert resolver.calls["videos.example"] == 1
    assert connections == [("127.0.0.1", port)]
    assert server.requests_for("/clip.mp4")[-1].headers["host"] == f"videos.example:{port}"


def test_unresolvable_host(tmp_path, monkeypatch, connections):
    url = "http://no-such-host.example/clip.mp4"
    reason = refusal(url, tmp_path, configure(monkeypatch))
    assert reason.startswith("the host no-such-host.example cannot be resolved")
    assert connections == []


@pytest.mark.parametrize("url, reason", [
    ("ftp://127.0.0.1/clip.mp4", "only http and https URLs can be downloaded (not ftp)"),
    ("file:///etc/passwd", "only http and https URLs can be downloaded (not file)"),
    ("http:///clip.mp4", "is not a valid URL (no host name)"),
])
def test_only_http_urls(url, reason, tmp_path, monkeypatch, connections):
    assert refusal(url, tmp_path, configure(monkeypatch)) == reason
    assert connections == []


# --- TLS -------------------------------------------------------------------------------------------


def test_https_verifies_the_original_host_name(tls_server, tls_files, video, tmp_path, monkeypatch, resolver,
                                               connections):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))  # trust our self-signed certificate
    resolver.names["videos.example"] = [["127.0.0.1"]]
    resolver.names["other.example"] = [["127.0.0.1"]]
    settings = configure(monkeypatch, HTTP_ALLOW="videos.example:*,other.example:*")
    port = tls_server.server_port

    path = fetch_http(f"https://videos.example:{port}/clip.mp4", tmp_path / "ok", settings)
    assert path.read_bytes() == video  # connected to the IP, verified the name
    assert tls_server.requests_for("/clip.mp4")[-1].headers["host"] == f"videos.example:{port}"

    connections.clear()
    url = f"https://other.example:{port}/clip.mp4"
    reason = refusal(url, tmp_path / "bad", settings)
    assert reason.startswith("TLS certificate of other.example is not valid (")
    assert "mismatch" in reason.lower()
    assert connections == [("127.0.0.1", port)]  # refused at once: a bad certificate is not retried


# --- the whole download's deadline, and allow-list ports (issue 9) -----------------------------------


def test_a_trickling_server_is_stopped_by_the_whole_download_deadline(server, tmp_path, monkeypatch):
    from autoclip.deadline import DeadlineExceeded

    settings = configure(monkeypatch, HTTP_READ_TIMEOUT="1", HTTP_DOWNLOAD_TIMEOUT="1.5")
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        fetch_http(f"{server.base}/trickle.mp4", tmp_path, settings)
    elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 3.5, elapsed  # the trickle alone would take 10 s; the idle timeout never fires
    assert str(caught.value).startswith(f"{server.base}/trickle.mp4: the download did not finish within 1.5 s")
    assert list(tmp_path.iterdir()) == []  # the partial file is gone


def test_the_run_deadline_cuts_a_download_short(server, tmp_path, monkeypatch):
    from autoclip.deadline import DeadlineExceeded, run_deadline

    settings = configure(monkeypatch, HTTP_READ_TIMEOUT="5")  # own limit: the default hour
    started = time.monotonic()
    with run_deadline(1.0), pytest.raises(DeadlineExceeded):
        fetch_http(f"{server.base}/trickle.mp4", tmp_path, settings)
    assert time.monotonic() - started < 3


def test_a_bare_allow_list_entry_opens_only_the_web_ports(server, tmp_path, monkeypatch):
    url = f"{server.base}/clip.mp4"
    port = server.server_port
    reason = refusal(url, tmp_path, configure(monkeypatch, HTTP_ALLOW="127.0.0.1"))
    assert reason == (f"127.0.0.1 is allowed (AUTOCLIP_HTTP_ALLOW) on port 80, 443 only, not {port} "
                      f"(add '127.0.0.1:{port}' to reach it)")
    reason = refusal(url, tmp_path, configure(monkeypatch, HTTP_ALLOW=f"127.0.0.1:{port + 1}"))
    assert f"on port {port + 1} only, not {port}" in reason


def test_an_allow_list_entry_with_the_port_lets_it_through(server, video, tmp_path, monkeypatch):
    port = server.server_port
    for entry in (f"127.0.0.1:{port}", f"127.0.0.0/8:{port}", "127.0.0.1:*"):
        path = fetch_http(f"{server.base}/clip.mp4", tmp_path / entry.replace("/", "_").replace("*", "all"),
                          configure(monkeypatch, HTTP_ALLOW=entry))
        assert path.read_bytes() == video


def test_an_allow_list_entry_with_a_bad_port_is_named(server, tmp_path, monkeypatch):
    with pytest.raises(InputError) as caught:
        fetch_http(f"{server.base}/clip.mp4", tmp_path, configure(monkeypatch, HTTP_ALLOW="127.0.0.1:http"))
    assert str(caught.value).startswith("127.0.0.1:http: is not a valid AUTOCLIP_HTTP_ALLOW entry")
