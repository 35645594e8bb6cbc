"""The embedded broker's transport (kombu's ``filesystem://``), guarded.

One file per message in the queue folder. The worker connects through
:class:`~platform_core.deadletter.envelopes.GuardedConnection`, which picks
:class:`GuardedFilesystemTransport` for ``filesystem://`` URLs. Import this module
through that one (the app's ``amqp_cls``); it builds on its message and delivery guards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from queue import Empty
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

from ..deadletter.envelopes import GuardedMessage, _DeliverGuard, envelope_problem, unreadable


class GuardedFilesystemChannel(filesystem.Channel):
    Message = GuardedMessage

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
