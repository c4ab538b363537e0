"""A webhook receiver on loopback for the tests: a real HTTP server in a thread that checks
each request's Standard Webhooks signature and answers as scripted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def verify(secret: str, headers: Any, body: bytes, tolerance_s: int = 300) -> bool:
    """The README's verification example, verbatim: True when a v1 signature matches."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance_s:
        return False  # too old or too new: a replay
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    signatures = [s.partition(",")[2] for s in headers["webhook-signature"].split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, s) for s in signatures)


@dataclass
class Received:
    """One request as the receiver saw it, and what it answered."""

    headers: dict[str, str]
    body: bytes
    path: str
    answered: int | None  # None: no answer (yet, or it hung until the sender gave up)
    at: float  # time.time() when it answered (when it arrived, until then)

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """Answers with ``script`` in turn (an int: that status; "hang": sleep past the sender's
    timeout), then ``then``; keeps every request in ``received``."""

    script: list[int | str] = field(default_factory=list)
    then: int | str = 200
    hang_s: float = 2.0
    secrets: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    bad_signatures: int = 0
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: bytes) -> int | str:
        with self.lock:
            if self.secrets and not all(verify(s, headers, body) for s in self.secrets):
                self.bad_signatures += 1
            return self.script.pop(0) if self.script else self.then

    def delivered(self) -> list[Received]:
        """The requests answered 2xx."""
        return [r for r in self.received if r.answered is not None and 200 <= r.answered < 300]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            action = receiver.answer(headers, body)
            seen = Received(headers, body, self.path, None, time.time())
            receiver.received.append(seen)  # in the order the requests arrived
            if action == "hang":
                time.sleep(receiver.hang_s)
                return
            assert isinstance(action, int)
            self.send_response(action)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            seen.at, seen.answered = time.time(), action

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def receiving(receiver: Receiver, port: int = 0) -> Iterator[Receiver]:
    """Serve ``receiver`` on 127.0.0.1 (``port``, else a free one) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
