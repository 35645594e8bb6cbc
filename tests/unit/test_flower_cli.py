"""`platform flower` refuses unsafe or broken set-ups before anything starts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from platform_core.cli.flower import check_basic_auth, is_loopback
from platform_core.errors import PlatformError
from tests.support import PlatformEnv, output_of


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, output_of(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, output_of(result)
    return lines[0]


@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("127.1", True), ("0.0.0.0", False), ("::", False), ("", False),
    ("10.1.2.3", False), ("0", False), ("0x0", False),
])
def test_is_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_basic_auth_format() -> None:
    assert check_basic_auth("a:p1, b:p:2") == ["a:p1", "b:p:2"]
    for bad, problem in (("s3cret", "entry 1 has no `:`"),
                         ("a:p1,:secret", "entry 2 has an empty user name"),
                         ("admin:", "entry 1 (user `admin`) has an empty password"),
                         (" , ", "is empty")):
        with pytest.raises(PlatformError, match="USER:PASS") as raised:
            check_basic_auth(bad)
        assert problem in str(raised.value)
        assert "secret" not in str(raised.value).replace("s3cret", "")


def test_non_loopback_without_auth_is_refused(platform_env: PlatformEnv) -> None:
    for extra in ((), ("--no-auth",)):
        line = error_line(platform_env.run("flower", "--address", "0.0.0.0", *extra))
        assert line.startswith("Error: refusing to serve Flower on --address 0.0.0.0 "
                               "without authentication")
        assert line.endswith("set --basic-auth USER:PASS or PLATFORM_FLOWER_BASIC_AUTH, or "
                             "listen on loopback (--address 127.0.0.1)")


def test_a_name_is_judged_by_what_it_resolves_to(platform_env: PlatformEnv) -> None:
    # getaddrinfo reads "0" as 0.0.0.0, as Tornado's bind does
    line = error_line(platform_env.run("flower", "--address", "0", "--no-auth"))
    assert line.startswith("Error: refusing to serve Flower on --address 0 (0.0.0.0) without")
    line = error_line(platform_env.run("flower", "--address", "", "--no-auth"))
    assert line.startswith("Error: refusing to serve Flower on --address '' (")
    line = error_line(platform_env.run("flower", "--address", "no-such-host.invalid"))
    assert line.startswith("Error: --address no-such-host.invalid cannot be resolved")


PASSWORD = "hunter2-Zq9"
UNSAFE = "Error: refusing to serve Flower on --address 0.0.0.0 without authentication"


@pytest.mark.parametrize(("args", "env", "conf", "culprit"), [
    # the two set-ups of the report: an empty socket path or OAuth pattern is no protection
    (["--no-auth", "--unix-socket="], {}, "", "(--unix-socket is empty, so Flower listens on TCP)"),
    (["--auth="], {}, "", "(--auth is empty, which turns OAuth off)"),
    (["--unix_socket="], {}, "", "(--unix_socket is empty"),
    ([], {"FLOWER_AUTH": ""}, "", "(FLOWER_AUTH is empty, which turns OAuth off)"),
    (["--no-auth"], {"FLOWER_UNIX_SOCKET": ""}, "", "(FLOWER_UNIX_SOCKET is empty"),
    ([], {}, "basic_auth = []\nauth = ''\n", UNSAFE),
    (["--auth_provider=flower.views.auth.GithubLoginHandler", "--oauth2_key=k"], {}, "",
     "(--auth_provider does nothing without --auth; --oauth2_key does nothing without --auth)"),
    # Flower's spellings of platform flower's own options
    (["--no-auth", "-address=127.0.0.1"], {}, "", "give --address as platform flower's own option"),
    (["--no-auth", "--", "---port=1"], {}, "", "give --port as platform flower's own option"),
    # credentials that are no credentials
    ([], {"FLOWER_BASIC_AUTH": ""}, "", "FLOWER_BASIC_AUTH entry 1 is empty"),
    ([], {"FLOWER_BASIC_AUTH": "ops:"}, "", "FLOWER_BASIC_AUTH entry 1 (user `ops`) has an empty"),
    ([], {}, "basic_auth = ['ops:{PASSWORD}', ' x:y']\n", "entry 2 has spaces around it"),
    (["--auth=ops@example.com"], {}, "", "no login provider is set, so nobody could log in"),
    (["--auth=*@*.com"], {}, "", "is not an e-mail pattern Flower accepts"),
    (["--no-auth"], {"FLOWER_BASIC_AUTH": "ops:{PASSWORD}"}, "",
     "--no-auth and FLOWER_BASIC_AUTH contradict each other"),
    # broken inputs fail before anything starts, without quoting them
    ([], {}, "basic_auth = ['ops:{PASSWORD}'\n", "flowerconfig.py fails with SyntaxError (line 1)"),
    (["--conf=missing.py"], {}, "", "--conf missing.py: no such file"),
    (["--max_workers=many"], {}, "", "Flower cannot read its options"),
    ([], {"FLOWER_MAX_WORKERS": "many"}, "", "Flower cannot read its variables FLOWER_MAX_WORKERS"),
])
def test_every_way_around_authentication_is_refused(
        platform_env: PlatformEnv, args: list[str], env: dict[str, str], conf: str,
        culprit: str) -> None:
    """Flower's command line, FLOWER_* variables and flowerconfig.py (read from the current
    directory) are judged after Flower's own parsing, so each source is covered."""
    env = {k: v.format(PASSWORD=PASSWORD) for k, v in env.items()}
    if conf:
        (platform_env.home.parent / "flowerconfig.py").write_text(conf.format(PASSWORD=PASSWORD))
    result = subprocess.run(platform_env.command("flower", "--address", "0.0.0.0", *args),
                            env={**platform_env.environ, **env}, capture_output=True,
                            text=True, timeout=60, cwd=platform_env.home.parent)
    line = error_line(result)
    assert culprit in line
    assert PASSWORD not in line


def test_an_open_api_is_refused_even_on_loopback(platform_env: PlatformEnv) -> None:
    result = subprocess.run(platform_env.command("flower", "--no-auth"),
                            env={**platform_env.environ, "FLOWER_UNAUTHENTICATED_API": "yes"},
                            capture_output=True, text=True, timeout=60)
    assert error_line(result).startswith(
        "Error: FLOWER_UNAUTHENTICATED_API lets any web page opened in a browser")


def test_loopback_needs_auth_or_an_explicit_no_auth(platform_env: PlatformEnv) -> None:
    line = error_line(platform_env.run("flower"))
    assert line == (
        "Error: Flower needs authentication: set --basic-auth USER:PASS or "
        "PLATFORM_FLOWER_BASIC_AUTH, or pass --no-auth to serve it without on loopback "
        "address 127.0.0.1")


def test_bad_basic_auth_names_the_option_not_the_password(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_FLOWER_BASIC_AUTH="admin:")
    line = error_line(platform_env.run("flower"))
    assert line == ("Error: --basic-auth / PLATFORM_FLOWER_BASIC_AUTH entry 1 (user `admin`) "
                    "has an empty password; give USER:PASS, e.g. admin:s3cret (several: "
                    "a:p1,b:p2)")


def test_own_options_cannot_be_passed_through(platform_env: PlatformEnv) -> None:
    line = error_line(platform_env.run("flower", "--no-auth", "--basic_auth=a:b"))
    assert "give --basic-auth as platform flower's own option" in line


def test_no_auth_contradicts_basic_auth(platform_env: PlatformEnv) -> None:
    line = error_line(platform_env.run("flower", "--no-auth", "--basic-auth", "a:b"))
    assert "--no-auth and --basic-auth contradict each other" in line


def test_missing_flower_names_the_extra(platform_env: PlatformEnv) -> None:
    # Flower is installed here; a None entry in sys.modules is Python's own way of
    # making an import fail as if the package were absent.
    code = (
        "import sys\n"
        "sys.modules['flower'] = None\n"
        "from platform_core.cli import main\n"
        "main(['flower', '--no-auth'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=platform_env.environ,
                            capture_output=True, text=True, timeout=60)
    line = error_line(result)
    assert line.startswith("Error: Flower is not installed")
    assert line.endswith("install the extra: pip install 'platform-core[flower]'")
