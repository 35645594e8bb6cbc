"""`platform flower` serves Flower for real, behind basic auth."""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import json
import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.support import PlatformEnv, Process, free_port, wait_until


def fetch(port: int, path: str = "/", auth: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""


def get(port: int, auth: str | None = None) -> int:
    return fetch(port, "/", auth)[0]


def serving(process: Process, port: int) -> None:
    def up() -> bool:
        if not process.alive():
            raise AssertionError(f"flower exited:\n{process.output()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    wait_until(up, 60, f"flower on port {port}")


def test_flower_requires_basic_auth(platform_env: PlatformEnv, redis_url: str) -> None:
    port = free_port()
    platform_env.set(PLATFORM_BROKER_URL=redis_url,
                     PLATFORM_FLOWER_BASIC_AUTH="ops:s3cret")
    flower = platform_env.spawn("flower", "--port", str(port), name="flower")
    serving(flower, port)
    assert get(port) == 401
    assert get(port, "ops:wrong") == 401
    assert get(port, "ops:s3cret") == 200
    assert "s3cret" not in flower.output()


def test_flower_follows_the_platform_workers_tasks(platform_env: PlatformEnv,
                                                  redis_url: str) -> None:
    """Flower turns task events on in the workers (no -E needed) and lists their tasks."""
    port = free_port()
    platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_FLOWER_BASIC_AUTH="ops:s3cret")
    platform_env.worker("--plugins", "admin")
    flower = platform_env.spawn("flower", "--port", str(port), name="flower")
    serving(flower, port)
    app = platform_env.host().app
    sent: list[str] = []

    def listed() -> bool:
        sent.append(app.tasks["admin.print_hello"].delay().id)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            status, body = fetch(port, "/api/tasks", "ops:s3cret")
            assert status == 200
            tasks = json.loads(body)
            if any(tasks.get(i, {}).get("state") == "SUCCESS" for i in sent):
                return True
            time.sleep(0.3)
        return False

    wait_until(listed, 90, "Flower to list a finished task")
    status, body = fetch(port, "/api/workers?refresh=1", "ops:s3cret")
    assert status == 200
    (worker,) = json.loads(body).values()
    assert "admin.print_hello" in worker["registered"]


def test_flower_without_auth_on_loopback(platform_env: PlatformEnv, redis_url: str) -> None:
    port = free_port()
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    flower = platform_env.spawn("flower", "--no-auth", "--port", str(port), name="flower")
    serving(flower, port)
    assert get(port) == 200


# --- nothing reaches Flower beyond loopback without credentials -------------------------

PASSWORD = "hunter2-Zq9"
PROVIDER = "flower.views.auth.GoogleAuth2LoginHandler"
PAGES = ("/", "/tasks", "/api/tasks", "/api/workers")


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    # /proc shows an IPv6 address as four 32-bit words, each in host (little-endian) order
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def listening(pid: int) -> list[tuple[str, int]]:
    """The TCP addresses process ``pid`` listens on, read from Linux's /proc."""
    inodes = set()
    with contextlib.suppress(OSError):  # the process has just exited
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                host, port = fields[1].split(":")
                found.append((_address(host), int(port, 16)))
    return sorted(found)


def status(address: str, port: int, path: str, auth: str | None = None) -> int:
    """The HTTP status of GET ``path``, redirects not followed."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(address, address)
    connection = http.client.HTTPConnection(target, port, timeout=10)
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    try:
        connection.request("GET", path, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def answers(address: str, port: int) -> bool:
    try:
        status(address, port, "/healthcheck")
    except OSError:
        return False
    return True


@dataclass
class Outcome:
    """What one `platform flower` did: refused (exit code and output) or listened."""

    returncode: int | None
    output: str
    addresses: list[tuple[str, int]]
    unix_socket: str | None


def run_flower(platform_env: PlatformEnv, args: list[str], env: dict[str, str],
               cwd: Path) -> tuple[Process, Outcome]:
    """Start `platform flower` and wait until it exits or serves, whichever comes first."""
    log = cwd / "flower.log"
    environ = {k: v for k, v in platform_env.environ.items() if not k.startswith("FLOWER_")}
    with log.open("wb") as fh:
        popen = subprocess.Popen(platform_env.command("flower", *args),
                                 env={**environ, **env}, stdout=fh, stderr=subprocess.STDOUT,
                                 start_new_session=True, cwd=cwd)
    process = Process(popen, log)
    platform_env.processes.append(process)
    sockets = [str(cwd / "flower.sock")]

    def settled() -> Outcome | None:
        if not process.alive():
            return Outcome(popen.returncode, process.output(), [], None)
        found = listening(popen.pid)
        if found and answers(*found[0]):  # serving: every socket Flower binds is bound
            return Outcome(None, process.output(), listening(popen.pid), None)
        for path in sockets:
            if os.path.exists(path) and "Visit me via unix socket" in process.output():
                return Outcome(None, process.output(), listening(popen.pid), path)
        return None

    outcome: Outcome = wait_until(settled, 60, "flower to exit or serve")
    return process, outcome


def is_loopback_address(address: str) -> bool:
    return ipaddress.ip_address(address).is_loopback


def assert_safe(outcome: Outcome) -> None:
    """Refused with one clear line, or listening on loopback / a unix socket only, or
    every page asks for credentials."""
    assert PASSWORD not in outcome.output
    if outcome.returncode is not None:
        assert outcome.returncode == 2, outcome.output
        assert "Visit me" not in outcome.output
        (line,) = outcome.output.strip().splitlines()
        # one line: what is wrong, naming the option, variable or file, and the fix
        assert line.startswith("Error: "), line
        assert re.search(r"--[a-z]|FLOWER_|\.py", line), line
        assert re.search(r"\b(set|fix|give|pick|unset|drop|use|pass)\b", line), line
        event("refused")
        return
    public = [(a, p) for a, p in outcome.addresses if not is_loopback_address(a)]
    event("public, asks for credentials" if public else
          "unix socket" if outcome.unix_socket else "loopback only")
    for address, port in public:
        for page in PAGES:
            code = status(address, port, page)
            assert code in (401, 302, 403), f"{page} on {address} answered {code} unasked"


def test_the_reported_set_ups_do_not_serve(platform_env: PlatformEnv, redis_url: str,
                                           tmp_path: Path) -> None:
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    for args in (["--address", "0.0.0.0", "--no-auth", "--unix-socket="],
                 ["--address", "0.0.0.0", "--auth="]):
        port = free_port()
        _, outcome = run_flower(platform_env, [*args, "--port", str(port)], {}, tmp_path)
        assert outcome.returncode == 2, outcome.output
        assert outcome.output.startswith("Error: refusing to serve Flower on --address 0.0.0.0")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_every_address_with_credentials_still_serves(platform_env: PlatformEnv,
                                                     redis_url: str, tmp_path: Path) -> None:
    """platform flower's basic auth, Flower's FLOWER_BASIC_AUTH and Flower's OAuth login all
    count as authentication on a public address."""
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    cases: list[tuple[list[str], dict[str, str], int]] = [
        ([], {"PLATFORM_FLOWER_BASIC_AUTH": f"ops:{PASSWORD}"}, 401),
        ([], {"FLOWER_BASIC_AUTH": f"ops:{PASSWORD}"}, 401),
        (["--auth=ops@example.com", f"--auth_provider={PROVIDER}"], {}, 302),
    ]
    for args, env, refused in cases:
        port = free_port()
        process, outcome = run_flower(
            platform_env, ["--address", "0.0.0.0", "--port", str(port), *args], env, tmp_path)
        assert outcome.returncode is None, outcome.output
        assert outcome.addresses == [("0.0.0.0", port)]
        for page in ("/", "/tasks"):
            assert status("0.0.0.0", port, page) == refused
            if refused == 401:
                assert status("0.0.0.0", port, page, "ops:wrong") == 401
                assert status("0.0.0.0", port, page, f"ops:{PASSWORD}") == 200
        assert PASSWORD not in process.output()
        process.stop()


def test_a_config_file_socket_needs_no_network_auth(platform_env: PlatformEnv,
                                                   redis_url: str) -> None:
    """flowerconfig.py in the current directory is read, as Flower reads it: a unix socket
    it sets is what Flower listens on, whatever --address says."""
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    with tempfile.TemporaryDirectory(prefix="fl") as folder:  # a socket path is short
        cwd = Path(folder)
        (cwd / "flowerconfig.py").write_text(f"unix_socket = {str(cwd / 'flower.sock')!r}\n")
        process, outcome = run_flower(
            platform_env, ["--address", "0.0.0.0", "--no-auth"], {}, cwd)
        assert outcome.unix_socket == str(cwd / "flower.sock"), outcome.output
        assert outcome.addresses == []
        process.stop()


ADDRESSES = ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2", "0.0.0.0", "::", "", "0"]
PASS_THROUGH = [
    "--unix-socket=", "--unix_socket={socket}", "--auth=", "--auth=ops@example.com",
    f"--auth_provider={PROVIDER}", "--oauth2_key=", "--oauth2_secret=",
    "--oauth2_redirect_uri=", "--basic_auth=ops:x", "-address=0.0.0.0", "--", "--xheaders=true",
    "--conf={folder}/other.py",
]
ENVIRONMENT = [
    ("FLOWER_BASIC_AUTH", ""), ("FLOWER_BASIC_AUTH", f"ops:{PASSWORD}"),
    ("FLOWER_BASIC_AUTH", "ops:"), ("FLOWER_AUTH", ""), ("FLOWER_AUTH", "ops@example.com"),
    ("FLOWER_AUTH_PROVIDER", PROVIDER), ("FLOWER_UNIX_SOCKET", ""),
    ("FLOWER_UNIX_SOCKET", "{socket}"), ("FLOWER_ADDRESS", "0.0.0.0"),
    ("FLOWER_UNAUTHENTICATED_API", "true"), ("FLOWER_OAUTH2_KEY", ""),
]
CONFIG = [
    "basic_auth = []", f"basic_auth = ['ops:{PASSWORD}']", "auth = ''",
    "auth = 'ops@example.com'", f"auth_provider = {PROVIDER!r}", "address = '0.0.0.0'",
    "unix_socket = ''", "unix_socket = {socket!r}",
]


# Ways to ask for credentials: (platform flower options, environment, flowerconfig.py lines)
CREDENTIALS: list[tuple[list[str], dict[str, str], list[str]]] = [
    ([], {}, []),
    ([f"--basic-auth=ops:{PASSWORD}"], {}, []),
    ([], {"PLATFORM_FLOWER_BASIC_AUTH": f"ops:{PASSWORD}"}, []),
    ([], {"FLOWER_BASIC_AUTH": f"ops:{PASSWORD}"}, []),
    ([], {}, [f"basic_auth = ['ops:{PASSWORD}']"]),
    (["--auth=ops@example.com", f"--auth_provider={PROVIDER}"], {}, []),
    ([], {"FLOWER_AUTH": "ops@example.com", "FLOWER_AUTH_PROVIDER": PROVIDER}, []),
    ([], {}, ["auth = 'ops@example.com'", f"auth_provider = {PROVIDER!r}"]),
]


@st.composite
def set_ups(draw: st.DrawFn) -> dict[str, Any]:
    """One of the ways to ask for credentials (or none), plus up to three options from
    any source that may undo, blank or contradict it."""
    args, env, config = draw(st.sampled_from(CREDENTIALS))
    args, env, config = list(args), dict(env), list(config)
    own_auth = draw(st.sampled_from([None, None, None, "ops:", "", " , "]))
    if own_auth is not None and draw(st.booleans()):
        env["PLATFORM_FLOWER_BASIC_AUTH"] = own_auth
    elif own_auth is not None:
        args.append(f"--basic-auth={own_auth}")
    extras = st.one_of(st.tuples(st.just("arg"), st.sampled_from(PASS_THROUGH)),
                       st.tuples(st.just("env"), st.sampled_from(ENVIRONMENT)),
                       st.tuples(st.just("config"), st.sampled_from(CONFIG)))
    for source, extra in draw(st.lists(extras, max_size=3)):
        if source == "arg":
            args.append(extra)
        elif source == "env":
            env.setdefault(*extra)
        else:
            config.append(extra)
    return {"address": draw(st.sampled_from(ADDRESSES)),
            "no_auth": draw(st.sampled_from([False, False, False, True])),
            "args": args, "env": env, "config": config}


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(set_up=set_ups())
def test_no_combination_serves_beyond_loopback_unasked(platform_env: PlatformEnv,
                                                       redis_url: str,
                                                       set_up: dict[str, Any]) -> None:
    """Whatever mix of platform flower's options, Flower's options (before or after `--`),
    FLOWER_* variables and flowerconfig.py: the command is refused, or Flower listens on
    loopback or a unix socket only, or every page asks for credentials."""
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    with tempfile.TemporaryDirectory(prefix="fl") as folder:
        cwd = Path(folder)
        fill = {"socket": str(cwd / "flower.sock"), "folder": folder}
        args = ["--address", set_up["address"], "--port", str(free_port())]
        env = {k: v.format(**fill) for k, v in set_up["env"].items()}
        if set_up["no_auth"]:
            args.append("--no-auth")
        args += [arg.format(**fill) for arg in set_up["args"]]
        config = "".join(line.format(**fill) + "\n" for line in set_up["config"])
        (cwd / "flowerconfig.py").write_text(config)
        (cwd / "other.py").write_text(config)
        process, outcome = run_flower(platform_env, args, env, cwd)
        try:
            assert_safe(outcome)
        finally:
            process.stop()
            platform_env.processes.remove(process)
