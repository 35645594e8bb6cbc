"""The plugin's own tests: tasks run in-process through the installed host."""

from __future__ import annotations

from pathlib import Path

from platform_hello.tasks import count, greet, sign_guestbook

from platform_sdk.testing import platform


def test_greet_uses_the_configured_greeting(tmp_path: Path) -> None:
    with platform("hello", home=tmp_path, settings={"hello": {"greeting": "Bonjour"}}):
        assert greet.delay("Ada").get() == {"greeting": "Bonjour, Ada!", "name": "Ada"}


def test_count_reports_every_step(tmp_path: Path) -> None:
    with platform("hello", home=tmp_path, settings={"hello": {"step_delay": 0}}):
        assert count.delay(3).get() == {"status": "completed", "counted": 3, "total": 3}


def test_guestbook_lives_in_the_plugin_data_dir(tmp_path: Path) -> None:
    with platform("hello", home=tmp_path):
        sign_guestbook.delay("Ada").get()
        signed = sign_guestbook.delay("Grace").get()
    assert signed["entries"] == 2
    assert (tmp_path / "plugins" / "hello" / "guestbook.txt").read_text() == "Ada\nGrace\n"
