"""The scheduled sources' servers for the tests: asyncssh's SFTP server and an HTTPS server, on loopback.

Each runs on a thread of its own (its own event loop, or ``http.server``), so
a test can block on ``wait_until`` while a worker subprocess fetches from it.
``SftpServer`` serves a temporary folder to one user, by password or by key,
with a host key made by asyncssh for the test; ``stop`` and ``start`` again
on the same port are a server going down and coming back. ``HttpsServer``
serves files with a certificate from the session's test CA
(``tests.support.environment.TEST_CA``), optionally wanting a header.
Importing this module reads no settings and starts nothing.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import ssl
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import asyncssh

from tests.support.services import free_port

USER = "hr-export"
PASSWORD = "correct horse battery staple"


class _Login(asyncssh.SSHServer):
    def __init__(self, password: str) -> None:
        self._password = password

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == USER and password == self._password


class SftpServer:
    """asyncssh's SFTP server on 127.0.0.1, chrooted in ``root``, for USER by PASSWORD or ``client_key``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.password = PASSWORD
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._listener: Any = None

    @property
    def fingerprint(self) -> str:
        """The host key's SHA256 fingerprint, as a source pins it."""
        return str(self.host_key.get_fingerprint("sha256"))

    def private_key_text(self) -> str:
        """The client's private key, as ``--key FILE`` holds it."""
        return bytes(self.client_key.export_private_key()).decode("ascii")

    def url(self, path: str) -> str:
        """The source URL of ``path`` on this server."""
        return f"sftp://{USER}@127.0.0.1:{self.port}/{path}"

    def _run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=10)

    def start(self) -> None:
        """Listen (again) on the server's port."""

        async def listen() -> Any:
            return await asyncssh.listen(
                "127.0.0.1",
                self.port,
                server_host_keys=[self.host_key],
                server_factory=lambda: _Login(self.password),
                authorized_client_keys=asyncssh.import_authorized_keys(
                    bytes(self.client_key.export_public_key()).decode("ascii")
                ),
                sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(self.root).encode()),
                allow_scp=False,
            )

        self._listener = self._run(listen())

    def stop(self) -> None:
        """Stop listening (the server is down)."""
        if self._listener is not None:
            listener, self._listener = self._listener, None

            async def close() -> None:
                listener.close()
                await listener.wait_closed()

            self._run(close())

    def close(self) -> None:
        """Stop and end the server's thread."""
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def drop(self, name: str, content: str | bytes, *, age_s: float = 0) -> Path:
        """Put a file on the server, as the HR system's nightly export does (``age_s``: that old)."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        if age_s:
            moment = time.time() - age_s
            os.utime(path, (moment, moment))
        return path


class HttpsServer:
    """An HTTPS server on 127.0.0.1 with a certificate of the test CA, serving ``files`` by path.

    ``header`` (name, value): a request without it is answered 401. ``hits``
    counts the requests per path.
    """

    def __init__(self, ca: Any, header: tuple[str, str] | None = None) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}
        self.header = header
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if server.header and self.headers.get(server.header[0]) != server.header[1]:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = server.files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("content-type", "text/csv")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        """The source URL of ``path``."""
        return f"https://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)
