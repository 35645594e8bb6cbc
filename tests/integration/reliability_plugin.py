"""Source of the throwaway plugin the reliability tests install (tasks that crash, fail, wait)."""

SOURCE = '''
import os, signal, time
from pathlib import Path
from platform_sdk import Queue, RetryPolicy, Route, hookimpl, task

ONCE = RetryPolicy(name="once", max_retries=1, backoff_base=1, backoff_cap=1, jitter=False,
                   retry_on=(ConnectionError,))


def _note(log):
    path = Path(log)
    with path.open("a") as fh:
        fh.write(f"{os.getpid()} {time.time()}\\n")
    return len(path.read_text().splitlines())


def _healed(flag):
    return bool(flag) and Path(flag).exists()


@task(name="rel.crash", idempotent=True)
def crash(log, healed=""):
    """SIGKILLs its own pool process until the file ``healed`` exists."""
    _note(log)
    if not _healed(healed):
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


@task(name="rel.crash_plain")
def crash_plain(log):
    _note(log)
    os.kill(os.getpid(), signal.SIGKILL)


@task(name="rel.kill_worker", idempotent=True)
def kill_worker(log):
    """Kills the whole worker (its main process, then this pool process)."""
    _note(log)
    os.kill(os.getppid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


@task(name="rel.echo")
def echo(value):
    return value


@task(name="rel.flaky", retry=ONCE)
def flaky(log, healed=""):
    attempt = _note(log)
    if not _healed(healed):
        raise ConnectionError(f"refused {attempt}")
    return attempt


@task(name="rel.manual", bind=True, retry=ONCE)
def manual(self, log):
    _note(log)
    raise self.retry(exc=ValueError("bad input"), countdown=0)


@task(name="rel.later")
def later(log, label):
    _note(log)
    return label


@hookimpl
def register_tasks(register):
    for t in (crash, crash_plain, kill_worker, echo, flaky, manual, later):
        register(t)


@hookimpl
def register_queues(register):
    register(Queue(name="rel"))


@hookimpl
def register_routes(register):
    register(Route(pattern="rel.*", queue="rel"))


@hookimpl
def register_retry_policies(register):
    register(ONCE)
'''
