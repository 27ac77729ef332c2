"""Real local servers for the alert tests: an HTTP webhook receiver and a tiny SMTP server (with STARTTLS).

Both listen on 127.0.0.1 on a free port in a background thread and record what they receive. The SMTP
server speaks just enough of RFC 5321 for smtplib: EHLO/HELO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, RSET,
NOOP, QUIT.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import socketserver
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

# ------------------------------------------------------------------------------------------------ HTTP


@dataclass
class WebhookReceiver:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


class _WebhookHandler(BaseHTTPRequestHandler):
    server: _WebhookServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.receiver.requests.append(
            {
                "path": self.path,
                "content_type": self.headers.get("Content-Type"),
                "body": json.loads(body) if body else None,
            }
        )
        self.send_response(self.server.receiver.status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return


class _WebhookServer(ThreadingHTTPServer):
    receiver: WebhookReceiver


@pytest.fixture
def webhook_server() -> Iterator[WebhookReceiver]:
    server = _WebhookServer(("127.0.0.1", 0), _WebhookHandler)
    host, port = server.server_address[:2]
    server.receiver = WebhookReceiver(url=f"http://{host}:{port}/services/T000/B000/secret-token")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ------------------------------------------------------------------------------------------------ SMTP


@dataclass
class SmtpMessage:
    mail_from: str
    recipients: list[str]
    data: str
    tls: bool
    user: str | None


@dataclass
class SmtpServerInfo:
    host: str
    port: int
    messages: list[SmtpMessage]
    transcript: list[str]
    cert_file: Path | None
    user: str | None = None
    password: str | None = None


class _SmtpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    tls_context: ssl.SSLContext | None
    credentials: tuple[str, str] | None
    messages: list[SmtpMessage]
    transcript: list[str]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that aborts the TLS handshake (untrusted certificate) is expected in the tests
        self.transcript.append("error")


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: _SmtpServer

    def _send(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def _readline(self) -> str | None:
        raw = self.rfile.readline(65536)
        if not raw:
            return None
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    def handle(self) -> None:
        srv = self.server
        tls = False
        user: str | None = None
        mail_from: str | None = None
        recipients: list[str] = []
        self._send("220 127.0.0.1 tiny-smtp ready")
        while True:
            line = self._readline()
            if line is None:
                return
            verb = line.split(" ", 1)[0].upper()
            srv.transcript.append(f"{'tls' if tls else 'plain'}:{verb}")
            if verb in {"EHLO", "HELO"}:
                extensions = ["127.0.0.1"]
                if srv.tls_context is not None and not tls:
                    extensions.append("STARTTLS")
                if srv.credentials is not None:
                    extensions.append("AUTH PLAIN")
                extensions.append("8BITMIME")
                for ext in extensions[:-1]:
                    self._send(f"250-{ext}")
                self._send(f"250 {extensions[-1]}")
            elif verb == "STARTTLS" and srv.tls_context is not None and not tls:
                self._send("220 ready to start TLS")
                self.connection = srv.tls_context.wrap_socket(self.connection, server_side=True)
                self.rfile = self.connection.makefile("rb")
                self.wfile = self.connection.makefile("wb")
                tls, user, mail_from, recipients = True, None, None, []
            elif verb == "AUTH":
                parts = line.split(" ")
                if srv.credentials is None or len(parts) < 2 or parts[1].upper() != "PLAIN":
                    self._send("504 unsupported mechanism")
                    continue
                if len(parts) == 3:
                    token = parts[2]
                else:
                    self._send("334 ")
                    token = self._readline() or ""
                try:
                    _, name, password = base64.b64decode(token).decode().split("\0")
                except ValueError:
                    self._send("501 malformed")
                    continue
                if (name, password) == srv.credentials:
                    user = name
                    self._send("235 authenticated")
                else:
                    self._send("535 authentication failed")
            elif verb == "MAIL":
                if srv.credentials is not None and user is None:
                    self._send("530 authentication required")
                    continue
                mail_from = line.split(":", 1)[1].strip().split(" ")[0].strip("<>")
                recipients = []
                self._send("250 ok")
            elif verb == "RCPT":
                recipients.append(line.split(":", 1)[1].strip().strip("<>"))
                self._send("250 ok")
            elif verb == "DATA":
                self._send("354 end with <CRLF>.<CRLF>")
                lines: list[str] = []
                while True:
                    data_line = self._readline()
                    if data_line is None or data_line == ".":
                        break
                    lines.append(data_line[1:] if data_line.startswith("..") else data_line)
                srv.messages.append(
                    SmtpMessage(mail_from or "", list(recipients), "\n".join(lines), tls, user)
                )
                self._send("250 queued")
            elif verb in {"RSET", "NOOP"}:
                self._send("250 ok")
            elif verb == "QUIT":
                self._send("221 bye")
                return
            else:
                self._send("502 command not implemented")


def _start_smtp(
    tls_context: ssl.SSLContext | None, credentials: tuple[str, str] | None
) -> tuple[_SmtpServer, threading.Thread]:
    server = _SmtpServer(("127.0.0.1", 0), _SmtpHandler)
    server.tls_context = tls_context
    server.credentials = credentials
    server.messages = []
    server.transcript = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (made with cryptography, a dev dependency)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * 30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = folder / "cert.pem"
    key_file = folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def smtp_server() -> Iterator[SmtpServerInfo]:
    """Plain SMTP, no authentication."""
    server, thread = _start_smtp(None, None)
    host, port = server.server_address[:2]
    try:
        yield SmtpServerInfo(str(host), int(port), server.messages, server.transcript, None)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


SMTP_USER = "alerts@example.org"
SMTP_PASSWORD = "s3cret-Pa55word-do-not-log"


@pytest.fixture
def smtp_tls_server(tls_files: tuple[Path, Path]) -> Iterator[SmtpServerInfo]:
    """SMTP with STARTTLS and AUTH PLAIN (user SMTP_USER, password SMTP_PASSWORD)."""
    cert_file, key_file = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    server, thread = _start_smtp(context, (SMTP_USER, SMTP_PASSWORD))
    host, port = server.server_address[:2]
    try:
        yield SmtpServerInfo(
            str(host), int(port), server.messages, server.transcript, cert_file, SMTP_USER, SMTP_PASSWORD
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ------------------------------------------------------------------------------------------------ results


def _frame(n: int, seed: int, shift: float) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    y = 0.5 * x + rng.normal(size=n)
    score = 1 / (1 + np.exp(-(-1.0 + 0.8 * x)))
    return pd.DataFrame({"x": x, "y": y, "score": score, "label": rng.binomial(1, score)})


@pytest.fixture(scope="session")
def ok_result() -> Any:
    """A real MonitoringResult without drift."""
    from defectops.monitoring.monitor import monitor_window

    result = monitor_window(
        _frame(2000, 1, 0.0), _frame(500, 2, 0.0), now=dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
    )
    assert result.state == "ok"
    return result


@pytest.fixture(scope="session")
def drift_result() -> Any:
    """A real MonitoringResult with drift (x shifted by one standard deviation)."""
    from defectops.monitoring.monitor import monitor_window

    result = monitor_window(  # the previous check drifted too: sustained, an alarm
        _frame(2000, 1, 0.0),
        _frame(500, 3, 1.0),
        now=dt.datetime(2026, 11, 25, 13, tzinfo=dt.UTC),
        drift_history=[True],
    )
    assert result.state == "drift"
    return result
