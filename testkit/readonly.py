"""A process run as the manifests and compose run it: on a read-only root filesystem (``readOnlyRootFilesystem: true``,
compose's ``read_only: true``), with a fresh ``/tmp`` (their ``emptyDir`` and ``tmpfs``) and the keyring directory the
only places it can write. No container engine: a user and mount namespace of its own (util-linux ``unshare``, as an
unprivileged user too) where ``/`` is remounted read-only, a tmpfs is mounted on ``/tmp``, and the keyring directory,
wherever it is (under ``/tmp`` too), is bound back writable. A process that writes anywhere else (bytecode beside
the code, a cache in ``$HOME``) fails there as it would in a pod."""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Sequence

# "cd" first: the directory stays reachable through /proc/self/cwd once the tmpfs hides its path. A working directory
# under /tmp (a checkout cloned there) is kept on /mnt meanwhile and bound back, read-only, over the fresh tmpfs.
_SCRIPT = """set -e
{stash}cd {keyring}
mount -o remount,bind,ro /
mount -t tmpfs -o size=64m,mode=1777 tmpfs /tmp
{restore}mkdir -p {keyring}
mount --no-canonicalize --bind /proc/self/cwd {keyring}
mount -o remount,bind,rw {keyring}
cd {cwd}
exec {command}
"""


def available() -> bool:
    return shutil.which("unshare") is not None


def read_only_root(command: Sequence[str], *, keyring: str, cwd: str) -> list[str]:
    """``command`` wrapped to run on a read-only root, ``/tmp`` and ``keyring`` writable (made if missing)."""
    if not available():
        raise RuntimeError("unshare (util-linux) is missing: the read-only root needs it")
    os.makedirs(keyring, exist_ok=True)
    here = shlex.quote(cwd)
    under_tmp = os.path.realpath(cwd).startswith("/tmp/")
    script = _SCRIPT.format(
        stash=f"mount --bind {here} /mnt\n" if under_tmp else "",
        restore=f"mkdir -p {here}\nmount --bind /mnt {here}\nmount -o remount,bind,ro {here}\n" if under_tmp else "",
        keyring=shlex.quote(keyring),
        cwd=here,
        command=" ".join(shlex.quote(c) for c in command),
    )
    return ["unshare", "--user", "--map-root-user", "--mount", "--", "sh", "-c", script]
