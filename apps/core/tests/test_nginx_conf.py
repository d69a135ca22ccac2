"""deploy/nginx.conf (HTTP) and deploy/nginx-tls.conf (HTTPS) pass `nginx -t` as shipped, and the
errors nginx answers itself are the API's JSON. Runs the real nginx when it is installed
(scripts/debian_tools.py: `make test` installs nginx-light when it can); skipped otherwise,
naming the command, except on CI, where a missing nginx fails: .ci/run installs it.

The files are laid out as deploy/README.md tells an operator to: copied unmodified into
<nginx conf dir>/flashdeals/, with `include flashdeals/nginx.conf;` in the http {} block of a
main configuration written here (only its pid, log and temp paths are the test's own, so it runs
unprivileged). `nginx -t` reads and checks every file, certificates included, but binds no port.
The live part then moves the listen ports to free ones, points the upstream at a port nobody
listens on (the app is "down") and, for HTTPS, names a throwaway certificate."""

import http.client
import json
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from scripts import debian_tools

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
# What deploy/README.md says to copy to /etc/nginx/flashdeals/.
SITE_FILES = (
    "nginx.conf",
    "nginx-tls.conf",
    "nginx-server.conf",
    "nginx-json-errors.conf",
    "nginx-upstream.conf",
)
SHIPPED_CERT = "/etc/ssl/flashdeals/fullchain.pem"
SHIPPED_KEY = "/etc/ssl/flashdeals/privkey.pem"
NGINX = debian_tools.find("nginx")
OPENSSL = debian_tools.find("openssl")


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    debian_tools.require("nginx")  # skips naming the command (fails on CI) when missing
    debian_tools.require("openssl")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _layout(tmp: Path, *, site: str, edits: dict[str, list[tuple[str, str]]] | None = None) -> Path:
    """An nginx prefix at `tmp`: deploy's site files in tmp/flashdeals/ (changed only by `edits`,
    file name -> [(old, new)], each of which must occur), and a main nginx.conf whose http {}
    block includes flashdeals/<site>. Returns the main configuration's path."""
    conf_dir = tmp / "flashdeals"
    conf_dir.mkdir()
    for name in SITE_FILES:
        text = (DEPLOY / name).read_text()
        for old, new in (edits or {}).get(name, []):
            assert old in text, f"{old!r} not in deploy/{name}"
            text = text.replace(old, new)
        (conf_dir / name).write_text(text)
    temp_paths = " ".join(
        f"{name}_temp_path {tmp / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = tmp / "nginx.conf"
    main.write_text(
        f"pid {tmp / 'nginx.pid'}; error_log {tmp / 'error.log'};\n"
        f"events {{}}\nhttp {{ access_log off; {temp_paths} include flashdeals/{site}; }}\n"
    )
    return main


def _nginx_t(main: Path) -> subprocess.CompletedProcess[str]:
    assert NGINX
    return subprocess.run(
        [
            NGINX,
            "-t",
            "-p",
            str(main.parent),
            "-c",
            str(main),
            "-e",
            str(main.parent / "error.log"),
        ],
        capture_output=True,
        text=True,
    )


def _warnings(output: str) -> list[str]:
    # nginx 1.25.1+ deprecates `listen ... http2` (nginx-tls.conf says why it stays).
    return [
        line
        for line in output.splitlines()
        if "[warn]" in line and 'the "listen ... http2" directive is deprecated' not in line
    ]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("cert")
    assert OPENSSL
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=localhost", "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return tmp / "cert.pem", tmp / "key.pem"


# --- nginx -t ------------------------------------------------------------------------------------


def test_the_http_site_passes_nginx_t_unmodified(tmp_path):
    check = _nginx_t(_layout(tmp_path, site="nginx.conf"))

    assert check.returncode == 0, check.stderr
    assert "test is successful" in check.stderr
    assert _warnings(check.stderr) == []
    for name in SITE_FILES:  # what nginx read is what ships
        assert (tmp_path / "flashdeals" / name).read_bytes() == (DEPLOY / name).read_bytes()


def test_the_tls_site_passes_nginx_t_with_a_certificate_in_place(tmp_path, certificate):
    cert, key = certificate
    edits = {"nginx-tls.conf": [(SHIPPED_CERT, str(cert)), (SHIPPED_KEY, str(key))]}

    check = _nginx_t(_layout(tmp_path, site="nginx-tls.conf", edits=edits))

    assert check.returncode == 0, check.stderr
    assert _warnings(check.stderr) == []


@pytest.mark.skipif(Path(SHIPPED_CERT).exists(), reason=f"{SHIPPED_CERT} exists on this machine")
def test_negative_control_nginx_t_fails_the_tls_site_without_its_certificate(tmp_path):
    """nginx -t does load certificates: the reason the TLS site is not the default (the HTTP one
    must pass as shipped), and proof that the checks above can fail."""
    check = _nginx_t(_layout(tmp_path, site="nginx-tls.conf"))

    assert check.returncode != 0
    assert f'cannot load certificate "{SHIPPED_CERT}"' in check.stderr


def test_the_compose_upstream_is_the_bare_metal_one_with_web_as_the_server():
    """docker-compose.yml mounts nginx-upstream-compose.conf in place of nginx-upstream.conf: the
    same upstream name and keep-alive pool; only where gunicorn is differs."""

    def directives(name: str) -> list[str]:
        text = re.sub(r"#[^\n]*", "", (DEPLOY / name).read_text())
        return [" ".join(d.split()) for d in re.split(r"[;{}]", text) if d.strip()]

    bare, compose = directives("nginx-upstream.conf"), directives("nginx-upstream-compose.conf")

    assert bare == ["upstream flashdeals_web", "server 127.0.0.1:8000", "keepalive 64"]
    assert compose == [
        "resolver 127.0.0.11 valid=10s ipv6=off",
        "upstream flashdeals_web",
        "zone flashdeals_web 64k",
        "server web:8000 resolve",
        "keepalive 64",
    ]


def test_the_body_limit_is_the_apps():
    text = (DEPLOY / "nginx-server.conf").read_text()
    found = re.search(r"^client_max_body_size (\d+)k;$", text, re.MULTILINE)

    assert found
    assert int(found.group(1)) * 1024 == settings.DATA_UPLOAD_MAX_MEMORY_SIZE


# --- a live nginx: the JSON errors ---------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    scheme: str  # what the JSON checks talk to
    port: int
    redirect_port: int | None = None  # the TLS site's plain-HTTP listener


@pytest.fixture(scope="module", params=["nginx.conf", "nginx-tls.conf"])
def nginx(request, tmp_path_factory, certificate) -> Iterator[Site]:
    """Each site under a real nginx on free ports, its upstream on a port nobody listens on."""
    tmp = tmp_path_factory.mktemp("nginx")
    http_port, https_port, dead = _free_port(), _free_port(), _free_port()
    cert, key = certificate
    upstream = [("server 127.0.0.1:8000;", f"server 127.0.0.1:{dead};")]
    if request.param == "nginx.conf":
        edits = {"nginx.conf": [("listen 80;", f"listen 127.0.0.1:{http_port};")]}
        site = Site("http", http_port)
    else:
        edits = {
            "nginx-tls.conf": [
                ("listen 80;", f"listen 127.0.0.1:{http_port};"),
                ("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl"),
                (SHIPPED_CERT, str(cert)),
                (SHIPPED_KEY, str(key)),
            ]
        }
        site = Site("https", https_port, redirect_port=http_port)
    main = _layout(tmp, site=request.param, edits={**edits, "nginx-upstream.conf": upstream})
    assert _nginx_t(main).returncode == 0
    assert NGINX
    process = subprocess.Popen(
        [NGINX, "-p", str(tmp), "-c", str(main), "-e", str(tmp / "error.log"),
         "-g", "daemon off; master_process off;"],
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", site.port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "nginx did not start"
            time.sleep(0.05)
    yield site
    process.terminate()
    process.wait(10)


def _connection(site: Site) -> http.client.HTTPConnection:
    if site.scheme == "https":
        context = ssl._create_unverified_context()  # the throwaway certificate
        return http.client.HTTPSConnection("127.0.0.1", site.port, context=context, timeout=10)
    return http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)


def _request(site: Site, method: str, path: str, body: bytes | None = None, headers=None):
    conn = _connection(site)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.getheader("Content-Type"), response.read()


def _assert_json_error(answer, status: int, code: str) -> None:
    got_status, content_type, body = answer
    assert got_status == status, body
    assert content_type == "application/json"
    parsed = json.loads(body)
    assert set(parsed) == {"error", "message", "details"}
    assert (parsed["error"], parsed["details"]) == (code, None)


def test_a_body_over_the_limit_is_a_json_413(nginx):
    answer = _request(
        nginx, "POST", "/orders", b"x" * (300 * 1024), {"Content-Type": "application/json"}
    )
    _assert_json_error(answer, 413, "PAYLOAD_TOO_LARGE")


def test_a_request_line_over_the_buffers_is_a_json_414(nginx):
    _assert_json_error(_request(nginx, "GET", "/products?" + "a" * 7000), 414, "BAD_REQUEST")


def test_a_header_over_the_buffers_is_a_json_400(nginx):
    answer = _request(nginx, "GET", "/health", headers={"X-Big": "b" * 7000})
    _assert_json_error(answer, 400, "BAD_REQUEST")


def test_the_app_down_is_a_json_502_with_retry_after(nginx):
    _assert_json_error(_request(nginx, "GET", "/health"), 502, "SERVICE_UNAVAILABLE")


def test_a_malformed_request_is_a_json_400(nginx):
    raw = socket.create_connection(("127.0.0.1", nginx.port), timeout=10)
    if nginx.scheme == "https":
        raw = ssl._create_unverified_context().wrap_socket(raw)
    with raw:
        raw.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n")
        data = b""
        while chunk := raw.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 400 Bad Request"
    assert b"Content-Type: application/json" in head
    assert b"Server: nginx\r\n" in head + b"\r\n"  # server_tokens off: no version
    assert json.loads(body)["error"] == "BAD_REQUEST"


@pytest.mark.parametrize("nginx", ["nginx-tls.conf"], indirect=True)
def test_the_tls_site_redirects_plain_http_to_https(nginx):
    assert nginx.redirect_port is not None
    conn = http.client.HTTPConnection("127.0.0.1", nginx.redirect_port, timeout=10)
    conn.request("GET", "/products?page=2", headers={"Host": "shop.example"})
    response = conn.getresponse()

    assert response.status == 301
    assert response.getheader("Location") == "https://shop.example/products?page=2"
