"""A pool child that finished a task's body defers termination until its result is stored.

Each case runs in its own Python process (signals and handlers are per process), which
plays the pool child: it marks itself as one the way ``worker_process_init`` does.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import os, signal, sys
    from platform_core.worker import finishing

    finishing._on_child_start()
    {body}
""")


def _run(body: str) -> subprocess.CompletedProcess[str]:
    code = CHILD.format(body=textwrap.dedent(body))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)


def test_termination_during_the_hold_happens_at_release() -> None:
    done = _run("""
        finishing.hold()
        os.kill(os.getpid(), signal.SIGTERM)
        print("result stored", flush=True)
        finishing.release()
        print("still alive", flush=True)
    """)
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert done.stdout.splitlines() == ["result stored"]


def test_a_soft_time_limit_during_the_hold_is_dropped() -> None:
    done = _run("""
        def soft(signum, frame):
            raise RuntimeError("soft limit raised in the result store")
        signal.signal(signal.SIGUSR1, soft)
        finishing.hold()
        os.kill(os.getpid(), signal.SIGUSR1)
        finishing.release()
        print("stored", flush=True)
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
        except RuntimeError as exc:
            print("restored:", exc, flush=True)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["stored", "restored: soft limit raised in the result store"]


def test_without_a_termination_request_release_only_restores_the_handlers() -> None:
    done = _run("""
        before = signal.getsignal(signal.SIGTERM)
        finishing.hold()
        assert signal.getsignal(signal.SIGTERM) is not before
        finishing.release()
        assert signal.getsignal(signal.SIGTERM) is before
        finishing.release()  # a second postrun is harmless
        print("ok", flush=True)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_outside_a_pool_child_nothing_is_deferred() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent("""
            import os, signal
            from platform_core.worker import finishing
            finishing.hold()
            os.kill(os.getpid(), signal.SIGTERM)
            print("not reached", flush=True)
        """)],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == -signal.SIGTERM
    assert "not reached" not in done.stdout
