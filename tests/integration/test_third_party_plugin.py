"""The plugin from docs/writing-plugins.md installs with pip and runs under `platform worker`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import PlatformEnv, output_of

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "platform-hello"


def pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_plugin_from_wheel(platform_env: PlatformEnv, redis_url: str,
                                   tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(EXAMPLE))
    (wheel,) = wheels.glob("platform_hello-*.whl")
    # Installed into the directory the test environment puts on PYTHONPATH, so the rest
    # of the suite never sees it.
    pip("install", "--quiet", "--no-deps", "--target", str(platform_env.plugins.site),
        str(wheel))
    platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_HELLO__GREETING="Bonjour")

    listed = platform_env.run("plugins", "list", "--json")
    assert listed.returncode == 0, output_of(listed)
    hello = next(p for p in json.loads(listed.stdout) if p["name"] == "hello")
    assert (hello["distribution"], hello["version"]) == ("platform-hello", "0.1.0")

    worker = platform_env.worker("--plugins", "hello")
    assert "hello, hello.slow" in worker.output()
    sent = platform_env.run("send", "hello.greet", "--args", '["Ada"]', "--wait",
                            "--timeout", "30")
    assert sent.returncode == 0, output_of(sent)
    assert json.loads(sent.stdout.split("SUCCESS", 1)[1]) == {
        "greeting": "Bonjour, Ada!", "name": "Ada"}

    counted = platform_env.run("send", "hello.count", "--kwargs", '{"total": 3}', "--wait",
                               "--timeout", "30")
    assert counted.returncode == 0, output_of(counted)
    assert '"counted": 3' in counted.stdout


def test_example_plugins_own_tests_pass_with_the_sdk_helpers(platform_env: PlatformEnv,
                                                             tmp_path: Path) -> None:
    """What a plugin author runs: the example's tests, against its installed wheel."""
    wheels = tmp_path / "wheels"
    pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(EXAMPLE))
    pip("install", "--quiet", "--no-deps", "--target", str(platform_env.plugins.site),
        *map(str, wheels.glob("platform_hello-*.whl")))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         str(EXAMPLE / "tests")],
        env=platform_env.environ, capture_output=True, text=True, timeout=300,
        cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
