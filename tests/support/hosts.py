"""Worker "hosts" for the multi-host drill: network namespaces, veth links and a delaying TCP proxy.

``WorkerHost`` is a network namespace joined to this one (the services'
"host": PostgreSQL, the broker and the SMTP server all answer on 127.0.0.1
here) by a veth pair with addresses of the drill's own (``10.77.N.0/30``,
never routed anywhere). A ``ServiceProxy`` listens on this side's address of
the link for each service port and relays to 127.0.0.1, so a worker in the
namespace reaches the services at ``10.77.N.1`` and nowhere else.

``cut`` takes the link down (both ends lose carrier: packets in flight are
lost, connections stall without a reset, as with a pulled cable); ``restore``
brings it back. The kernel here has no ``sch_netem`` (``tc qdisc ... netem``
says "Specified qdisc kind is unknown"), so latency is the proxy's: with
``delay_s`` it holds every chunk a host sends for that long before passing
it on, in order (a one-way delay on the host's outgoing traffic, as netem
on its interface would add). The proxy binds its upstream connections to a
source address of the host's own on loopback (``127.0.0.N+2``) for the broker's
port when it is RabbitMQ's (PostgreSQL trusts 127.0.0.1 only, and Redis's
protected mode refuses any other source), which is how RabbitMQ's listings
tell the hosts' connections apart; on Redis the hosts' heartbeats do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator


def ip(*args: str) -> None:
    """``ip ARGS``, failing loudly."""
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class ServiceProxy:
    """Relays ``listen_host:port`` to ``127.0.0.1:port`` for each port, on an event loop thread of its own."""

    def __init__(
        self, listen_host: str, ports: list[int], tagged: tuple[int, str], delay_s: float = 0.0
    ) -> None:
        self.listen_host, self.ports, self.delay_s = listen_host, ports, delay_s
        self.tagged_port, self.source_host = tagged
        self.loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, name="drill-proxy", daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(timeout=10)

    async def _listen(self) -> None:
        for port in self.ports:
            server = await asyncio.start_server(
                lambda r, w, p=port: self._relay(r, w, p), self.listen_host, port, reuse_address=True
            )
            self._servers.append(server)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
        try:
            source = self.source_host if port == self.tagged_port else "127.0.0.1"
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer, self.delay_s),
            self._pipe(up_reader, writer, 0.0),
            return_exceptions=True,
        )
        self._writers.difference_update((writer, up_writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
        chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await chunks.get()
                if not chunk:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while chunk := await reader.read(65_536):
                chunks.put_nowait((time.monotonic() + delay_s, chunk))
                if sender.done():
                    break
        except OSError:
            pass
        finally:
            chunks.put_nowait((0.0, b""))
            with contextlib.suppress(Exception):
                await sender
            writer.close()

    def stop(self) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()
            for writer in list(self._writers):
                writer.close()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class WorkerHost:
    """A network namespace with a veth link to this one; ``services`` is the address it reaches them at."""

    def __init__(self, index: int, subnet: int) -> None:
        tag = f"{os.getpid() % 100_000}{index}"
        self.namespace = f"bi-drill-{tag}"
        self.outside, self.inside = f"bid{tag}o", f"bid{tag}i"  # at most 15 characters
        base = index * 4
        self.services = f"10.77.{subnet}.{base + 1}"
        self.address = f"10.77.{subnet}.{base + 2}"
        self.source = f"127.0.0.{index + 2}"

    def create(self) -> None:
        ip("netns", "add", self.namespace)
        ip("link", "add", self.outside, "type", "veth", "peer", "name", self.inside)
        ip("link", "set", self.inside, "netns", self.namespace)
        ip("addr", "add", f"{self.services}/30", "dev", self.outside)
        ip("link", "set", self.outside, "up")
        ip("netns", "exec", self.namespace, "ip", "addr", "add", f"{self.address}/30", "dev", self.inside)
        ip("netns", "exec", self.namespace, "ip", "link", "set", self.inside, "up")
        ip("netns", "exec", self.namespace, "ip", "link", "set", "lo", "up")

    def cut(self) -> None:
        """Take the link down: the host can reach nothing, and nothing reaches it."""
        ip("link", "set", self.outside, "down")

    def restore(self) -> None:
        ip("link", "set", self.outside, "up")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("link", "del", self.outside)  # deletes its peer too
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("netns", "del", self.namespace)


@contextlib.contextmanager
def worker_hosts(
    count: int, ports: list[int], broker_port: int, delays_s: list[float]
) -> Iterator[list[WorkerHost]]:
    """``count`` worker hosts, each with a proxy to the services (host i's outgoing traffic delayed
    by ``delays_s[i]``), made here and removed on the way out."""
    subnet = 1 + os.getpid() % 250
    hosts = [WorkerHost(i, subnet) for i in range(count)]
    proxies: list[ServiceProxy] = []
    try:
        for host, delay_s in zip(hosts, delays_s, strict=True):
            host.create()
            proxy = ServiceProxy(host.services, ports, (broker_port, host.source), delay_s)
            proxy.start()
            proxies.append(proxy)
        yield hosts
    finally:
        for proxy in proxies:
            proxy.stop()
        for host in hosts:
            host.remove()
