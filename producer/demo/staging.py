"""A reachable copy of the embedded PostgreSQL's binaries, for root in a private directory.

As root, the embedded PostgreSQL runs as ``nobody``, which cannot enter a
clone in a 0700 directory (``mktemp -d``, ``/root``) to run the binaries of
the pgserver wheel installed there. So :func:`staged_install` copies what
``nobody`` runs into the services' scratch directory (hard links where the
filesystem allows, which costs tens of milliseconds), and the scratch
directory goes with the demo.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

# What ``nobody`` runs of pgserver's install (relative to ``pginstall``): the server
# and initdb, the server's loadable modules and its share files. initdb links the
# wheel's libpq through the RPATH ``$ORIGIN/../../../pgserver.libs``, so the copy
# keeps the wheel's layout and takes that folder too.
_STAGED_PARTS = ("bin/initdb", "bin/postgres", "lib/postgresql", "share/postgresql")
_WHEEL_LIBS = "pgserver.libs"


def staged_install(install: Path, stage: Path) -> Path:
    """Copy what ``nobody`` runs of ``install`` under ``stage``, keeping the wheel's layout.

    Returns the copy's ``bin``. Every folder of the copy is 0755 and every file
    world-readable, whatever the umask the package was installed with.
    """
    pginstall = stage / "pgserver" / "pginstall"
    parts = [(install / part, pginstall / part) for part in _STAGED_PARTS]
    wheel_libs = install.parent.parent / _WHEEL_LIBS
    if wheel_libs.is_dir():
        parts.append((wheel_libs, stage / _WHEEL_LIBS))
    for source, target in parts:
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, copy_function=_link_or_copy)
        else:
            _link_or_copy(source, target)
    for folder, _subfolders, _files in os.walk(stage):
        os.chmod(folder, 0o755)
    return pginstall / "bin"


def _link_or_copy(source: str | Path, target: str | Path) -> None:
    # A hard link shares the file's mode: link only a file others may already read
    # (and run, if it is a program), so the package's own files are never changed.
    mode = os.stat(source).st_mode
    program = bool(mode & stat.S_IXUSR)
    if mode & stat.S_IROTH and (mode & stat.S_IXOTH or not program):
        try:
            os.link(source, target)
            return
        except OSError:  # another filesystem, or links refused: copy
            pass
    shutil.copyfile(source, target)
    os.chmod(target, 0o755 if program else 0o644)
