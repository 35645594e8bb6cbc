"""Entries of the embedded broker's queue folder that are not message files."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def odd_entries(folder: Path, queue: str, elsewhere: Path) -> dict[str, str]:
    """Entries named like message files of ``queue`` that are not message files, by name,
    with what the log says they are. Named to sort before any real message."""
    elsewhere.mkdir(exist_ok=True)
    entries = {"0_dir": "a directory", "0_fifo": "a FIFO (named pipe)",
               "0_socket": "a socket", "0_link": "a symbolic link to a FIFO (named pipe)",
               "0_dangling": "a symbolic link that leads nowhere",
               "0_secret": "a symbolic link to a regular file"}
    names = {f"{key}.{queue}.msg": what for key, what in entries.items()}
    (folder / f"0_dir.{queue}.msg").mkdir()
    os.mkfifo(folder / f"0_fifo.{queue}.msg")
    os.mkfifo(elsewhere / "pipe")
    os.symlink(elsewhere / "pipe", folder / f"0_link.{queue}.msg")
    os.symlink(elsewhere / "missing", folder / f"0_dangling.{queue}.msg")
    (elsewhere / "secret").write_text("never read through a link")
    os.symlink(elsewhere / "secret", folder / f"0_secret.{queue}.msg")
    bind_socket(folder, f"0_socket.{queue}.msg")
    return names


def bind_socket(folder: Path, name: str) -> None:
    """A Unix socket file ``folder/name`` (bound relative to the folder: socket paths are
    limited to about 100 bytes)."""
    here = os.getcwd()
    sock = socket.socket(socket.AF_UNIX)
    try:
        os.chdir(folder)
        sock.bind(name)
    finally:
        os.chdir(here)
        sock.close()  # the file stays
