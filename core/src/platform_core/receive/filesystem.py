"""The embedded broker's transport (kombu's ``filesystem://``), guarded.

One file per message in the queue folder, named ``<ms>_<uuid>.<queue>.msg``. kombu
writes a message file in place, so a consumer polling at the wrong moment takes an
empty or half-written file; here messages are written atomically: to
``.<name>.part`` in the same folder (a name no reader takes), flushed to disk, then
renamed to ``<name>``.

The worker connects through
:class:`~platform_core.deadletter.envelopes.GuardedConnection`, which picks
:class:`GuardedFilesystemTransport` for ``filesystem://`` URLs. Import this module
through that one (the app's ``amqp_cls``); it builds on its message and delivery guards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from queue import Empty
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

from ..deadletter.envelopes import GuardedMessage, _DeliverGuard, envelope_problem, unreadable

#: Ending of a message file still being written (after a leading dot); no reader takes it.
PARTIAL = ".part"

_WRITE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def write_atomically(path: str, data: bytes) -> None:
    """Create ``path`` holding ``data``; a reader sees it whole or not at all."""
    folder, name = os.path.split(path)
    partial = os.path.join(folder, f".{name}{PARTIAL}")
    fd = os.open(partial, _WRITE, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


def _error(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc.strerror or exc}"


class GuardedFilesystemChannel(filesystem.Channel):
    Message = GuardedMessage

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """kombu's ``_put`` (same file name), written atomically. (kombu's own classes
        disagree on the name of the second argument, hence the ignore.)"""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        try:
            write_atomically(path, str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise ChannelError(
                f"cannot write a message file for queue {queue!r} in {self.data_folder_out!r} "
                f"({_error(exc)}); check that the folder exists and that this process may "
                "write to it"
            ) from exc

    def _get(self, queue: str, timeout: Any = None) -> Any:
        """kombu's ``_get``, except that the file is read under a shared lock (the
        writer holds an exclusive one while writing) and a file that is not a JSON
        envelope is delivered as unreadable instead of raising."""
        suffix = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != suffix:
                continue
            folder = self.processed_folder if self.store_processed else tempfile.gettempdir()
            try:
                shutil.move(os.path.join(self.data_folder_in, name), folder)
            except OSError:
                continue  # another consumer took it
            path = os.path.join(folder, name)
            try:
                with open(path, "rb") as fh:
                    filesystem.lock(fh, filesystem.LOCK_SH)
                    try:
                        payload = fh.read()
                    finally:
                        filesystem.unlock(fh)
                if not self.store_processed:
                    os.remove(path)
            except OSError as exc:
                raise ChannelError(f"Cannot read file {path!r} from queue.") from exc
            try:
                parsed = loads(bytes_to_str(payload))
            except ValueError as exc:
                return unreadable(payload, queue, f"not a message envelope: {exc}")
            problem = envelope_problem(parsed)
            return parsed if problem is None else unreadable(payload, queue, problem)
        raise Empty()


class GuardedFilesystemTransport(_DeliverGuard, filesystem.Transport):
    Channel = GuardedFilesystemChannel
