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
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("", False), ("10.1.2.3", False),
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
        assert line.startswith("Error: refusing to serve Flower on 0.0.0.0 without "
                               "authentication")
        assert "--basic-auth USER:PASS or PLATFORM_FLOWER_BASIC_AUTH" in line


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
