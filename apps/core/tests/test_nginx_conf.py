"""deploy/nginx.conf is valid, and the errors nginx answers itself are the contract's JSON
(issue 15, Deliver 2). Runs the real nginx on free ports when it is installed
(`apt-get install nginx-light`); skipped otherwise."""

import http.client
import json
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = pytest.mark.skipif(
    not (NGINX and shutil.which("openssl")), reason="nginx or openssl not installed"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    """deploy/nginx.conf under a real nginx: its ports moved to free ones, a throwaway
    certificate, and an upstream that nobody listens on (so the app is "down")."""
    tmp = tmp_path_factory.mktemp("nginx")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=localhost", "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    http_port, https_port, dead = _free_port(), _free_port(), _free_port()
    site = (ROOT / "deploy/nginx.conf").read_text()
    for old, new in [
        ("/etc/ssl/flashdeals/fullchain.pem", str(tmp / "cert.pem")),
        ("/etc/ssl/flashdeals/privkey.pem", str(tmp / "key.pem")),
        (
            "/etc/nginx/flashdeals/nginx-json-errors.conf",
            str(ROOT / "deploy/nginx-json-errors.conf"),
        ),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl"),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{dead};"),
    ]:
        assert old in site, old
        site = site.replace(old, new)
    (tmp / "site.conf").write_text(site)
    temp_paths = " ".join(
        f"{name}_temp_path {tmp / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp / "nginx.conf").write_text(
        f"daemon off; master_process off; pid {tmp / 'nginx.pid'}; error_log {tmp / 'error.log'};\n"
        f"events {{}}\nhttp {{ access_log off; {temp_paths} include {tmp / 'site.conf'}; }}\n"
    )
    check = subprocess.run(
        [NGINX, "-t", "-p", str(tmp), "-c", str(tmp / "nginx.conf")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf")])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", https_port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "nginx did not start"
            time.sleep(0.05)
    yield https_port
    process.terminate()
    process.wait(10)


def _request(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    context = ssl._create_unverified_context()  # the throwaway certificate
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
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
    context = ssl._create_unverified_context()
    raw = socket.create_connection(("127.0.0.1", nginx), timeout=10)
    with context.wrap_socket(raw) as tls:
        tls.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n")
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 400 Bad Request"
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["error"] == "BAD_REQUEST"
