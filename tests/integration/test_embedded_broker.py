"""Real workers on the embedded broker with odd entries in its queue folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from platform_core import stores
from tests.queue_folder import odd_entries
from tests.support import PlatformEnv, one_task_plugin, wait_until

QUEUE = "fsq"


@pytest.fixture
def fs_env(platform_env: PlatformEnv) -> PlatformEnv:
    platform_env.plugins.add(QUEUE, one_task_plugin(QUEUE, ""))
    return platform_env


def folders(env: PlatformEnv) -> tuple[Path, Path]:
    broker = env.home / "broker"
    return broker / "queue", broker / "quarantine"


def test_odd_entries_in_the_queue_folder_are_moved_aside_and_the_worker_goes_on(
        fs_env: PlatformEnv, tmp_path: Path) -> None:
    worker = fs_env.worker("--plugins", QUEUE)
    host = fs_env.host()
    queue, quarantine = folders(fs_env)
    odd = odd_entries(queue, QUEUE, tmp_path / "elsewhere")
    half = f"0_half.{QUEUE}.msg"
    (queue / half).write_bytes(b'{"body": "eyJh')  # what a writer killed mid-write leaves

    assert host.app.tasks[f"{QUEUE}.job"].delay().get(timeout=60) == 1

    wait_until(lambda: sorted(os.listdir(quarantine)) == sorted(odd)
               if quarantine.exists() else False, 30, "the odd entries to be moved aside")
    (letter,) = wait_until(stores.for_app(host.app).dead_letters.list, 30,
                           "the half-written file's dead letter")
    assert letter.queue == QUEUE
    assert letter.reason == "not a message envelope: JSONDecodeError while reading it as JSON"
    assert letter.message.raw
    assert host.app.tasks[f"{QUEUE}.job"].delay().get(timeout=60) == 1
    assert worker.alive()
    output = worker.output()
    for name, what in odd.items():
        assert f"moved {name} out of the folder of queue {QUEUE} ({queue}) to " \
               f"{quarantine / name}: it is {what}, not a message file" in output, output
    assert "never read through a link" not in output
    assert "Unrecoverable error" not in output and "Traceback" not in output, output[-3000:]


def _without_file_permission_override() -> list[str]:
    """A command prefix under which this process's user cannot read a mode-0 file.
    Root reads any file (CAP_DAC_OVERRIDE), so as root the worker runs without that
    capability; skips where it cannot be dropped."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("runs as root and setpriv (util-linux) is missing: root reads a mode-0 "
                    "file, so the worker needs setpriv to lose CAP_DAC_OVERRIDE")
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    probe = Path(os.getcwd()) / "probe"
    probe.write_text("x")
    probe.chmod(0)
    denied = subprocess.run([*prefix, "cat", str(probe)], capture_output=True)
    probe.unlink()
    if denied.returncode == 0 or b"Permission denied" not in denied.stderr:
        pytest.skip(f"cannot drop CAP_DAC_OVERRIDE here ({denied.stderr.decode().strip()})")
    return prefix


def test_a_message_file_the_worker_cannot_open_is_moved_aside_and_can_be_put_back(
        fs_env: PlatformEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = _without_file_permission_override()
    host = fs_env.host()
    queue, quarantine = folders(fs_env)
    waiting = host.app.tasks[f"{QUEUE}.job"].delay()  # no worker yet: its file waits
    (name,) = [n for n in os.listdir(queue) if n.endswith(f".{QUEUE}.msg")]
    (queue / name).chmod(0)
    monkeypatch.setattr(fs_env, "command", lambda *args: [
        *prefix, sys.executable, "-m", "platform_core", *args])
    worker = fs_env.worker("--plugins", QUEUE)

    worker.wait_for_log(f"moved {name} out of the folder of queue {QUEUE} ({queue}) to "
                        f"{quarantine / name}: it cannot be opened (PermissionError: "
                        "Permission denied); nothing was delivered from it. Fix: repair the "
                        "file (owner, mode, disk), then move it back to the queue folder")
    assert host.app.tasks[f"{QUEUE}.job"].delay().get(timeout=60) == 1
    assert waiting.state == "PENDING"

    (quarantine / name).chmod(0o644)  # the fix the log line gives
    os.rename(quarantine / name, queue / name)
    assert waiting.get(timeout=60) == 1
    assert worker.alive()
    assert "Traceback" not in worker.output()
