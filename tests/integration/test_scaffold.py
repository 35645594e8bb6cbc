"""``platform new``: the project it writes installs, passes its own tests (which start a
real worker), and is listed by ``platform plugins list``; bad names are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import PlatformEnv, output_of


def test_a_new_plugin_installs_and_passes_its_own_tests(platform_env: PlatformEnv,
                                                        tmp_path: Path) -> None:
    made = platform_env.run("new", "acme_billing", "--path", str(tmp_path / "acme"))
    assert made.returncode == 0, output_of(made)
    assert made.stdout.startswith(f"wrote 8 files in {tmp_path / 'acme'}/")
    project = tmp_path / "acme"
    site = tmp_path / "site"
    # installed as pip installs it (a wheel built from the project), into a folder of its
    # own so the test environment is left as it was
    built = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
         str(project)], capture_output=True, text=True, timeout=600, check=False)
    assert built.returncode == 0, output_of(built)
    env = {**platform_env.environ,
           "PYTHONPATH": os.pathsep.join([str(site), platform_env.environ["PYTHONPATH"]])}

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert tests.returncode == 0, output_of(tests)
    assert "3 passed" in tests.stdout, tests.stdout

    listed = subprocess.run([*platform_env.command("plugins", "list", "--json")], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert listed.returncode == 0, output_of(listed)
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "acme_billing")
    assert (row["status"], row["distribution"], row["tasks"], row["queues"],
            row["beat_entries"]) == ("ok", "acme-billing", 1, 1, 1)

    typed = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports",
         str(project / "src")], capture_output=True, text=True, timeout=300, check=False,
        env=env)
    assert typed.returncode == 0, output_of(typed)


@pytest.mark.parametrize("name", ["1acme", "Acme", "acme-billing", "class", "a" * 41, ""])
def test_a_bad_name_is_refused_and_nothing_is_written(platform_env: PlatformEnv,
                                                      tmp_path: Path, name: str) -> None:
    result = platform_env.run("new", name, "--path", str(tmp_path / "out"))
    assert result.returncode == 2
    assert f"`{name}` cannot name a plugin: use 1 to 40 lower-case letters" in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_existing_folder_is_left_alone(platform_env: PlatformEnv, tmp_path: Path) -> None:
    (tmp_path / "acme").mkdir()
    result = platform_env.run("new", "acme", "--path", str(tmp_path / "acme"))
    assert result.returncode == 2 and "already exists" in result.stderr
    assert list((tmp_path / "acme").iterdir()) == []
