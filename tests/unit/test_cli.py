"""The real ``platform`` command, run in subprocesses (no worker, no Redis)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import PlatformEnv, output_of

UNREACHABLE = "redis://127.0.0.1:1/0"


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``Error: ...`` line a failed command prints, checked to be alone."""
    assert result.returncode != 0, output_of(result)
    assert "Traceback" not in result.stdout + result.stderr, output_of(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, output_of(result)
    assert lines[0].startswith("Error: "), output_of(result)
    return lines[0]


@pytest.fixture
def wide(platform_env: PlatformEnv) -> PlatformEnv:
    """Rich tables as wide as they need to be, so cells are not wrapped."""
    return platform_env.set(COLUMNS="250")


# --- start-up cost ---------------------------------------------------------------------


def test_help_lists_every_command(platform_env: PlatformEnv) -> None:
    result = platform_env.run("--help")
    assert result.returncode == 0, output_of(result)
    assert result.stdout.startswith("Usage: platform [OPTIONS] COMMAND [ARGS]...")
    commands = result.stdout.split("Commands:", 1)[1]
    listed = [line.split()[0] for line in commands.strip().splitlines()]
    assert listed == ["api", "beat", "dlq", "doctor", "flower", "inspect", "new", "plugins", "queues",
                      "result", "send", "worker"]
    assert "--debug" in result.stdout


def test_help_imports_neither_celery_nor_plugins(
    platform_env: PlatformEnv, tmp_path: Path
) -> None:
    marker = tmp_path / "imported.marker"
    module = platform_env.plugins.add(
        "spy", f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n"
    )
    env = platform_env.environ
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "platform_core", "--help"],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 0, output_of(result)
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "platform_core.cli.main" in imported  # the measurement itself works
    roots = {name.split(".")[0] for name in imported}
    for heavy in ("celery", "kombu", "billiard", "platform_admin", "platform_quant",
                  module):
        assert heavy not in roots, f"--help imported {heavy}"
    assert "platform_core.host" not in imported
    assert not marker.exists()


def test_importing_the_cli_loads_no_celery(platform_env: PlatformEnv) -> None:
    code = (
        "import sys\n"
        "from platform_core.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print(sorted(m for m in ('celery', 'kombu', 'platform_admin', 'platform_quant', "
        "'platform_core.host') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=platform_env.environ,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, output_of(result)
    assert result.stdout.strip().splitlines()[-1] == "[]"


# --- plugins and queues ---------------------------------------------------------------


def test_plugins_list_json(platform_env: PlatformEnv) -> None:
    result = platform_env.run("plugins", "list", "--json")
    assert result.returncode == 0, output_of(result)
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"admin", "quant"} <= set(rows)
    admin, quant = rows["admin"], rows["quant"]
    assert admin["distribution"] == "platform-admin"
    assert quant["distribution"] == "platform-quant"
    assert admin["version"] == quant["version"] == "0.1.0"
    assert admin["module"] == "platform_admin.plugin"
    assert quant["module"] == "platform_quant.plugin"
    assert admin["hooks"] == ["beat_entries", "queues", "routes", "settings", "tasks"]
    assert quant["hooks"] == ["beat_entries", "queues", "routes", "settings", "tasks",
                              "worker_hints"]
    counts = ("tasks", "queues", "routes", "beat_entries")
    assert [admin[k] for k in counts] == [3, 3, 2, 2]
    assert [quant[k] for k in counts] == [3, 2, 3, 1]


def test_plugins_show_warns_about_a_misspelt_setting(platform_env: PlatformEnv) -> None:
    result = platform_env.set(PLATFORM_QUANT__PROCES_CHUNKS="20").run("plugins", "show", "quant")
    assert result.returncode == 0, output_of(result)
    assert result.stderr.splitlines() == [
        "Warning: PLATFORM_QUANT__PROCES_CHUNKS is ignored: plugin `quant` (platform-quant "
        "0.1.0) has no setting `proces_chunks` (its settings: database_url, process_chunks, "
        "process_points, process_step_delay, stock_list_path); did you mean "
        "PLATFORM_QUANT__PROCESS_CHUNKS?"]


def test_plugins_list_table(wide: PlatformEnv) -> None:
    result = wide.run("plugins", "list")
    assert result.returncode == 0, output_of(result)
    rows = [line for line in result.stdout.splitlines() if "platform-" in line]
    assert any("admin" in r and "platform-admin" in r and "0.1.0" in r for r in rows), result.stdout
    assert any("quant" in r and "worker hints" in r for r in rows), result.stdout


def test_plugins_list_honours_the_allowlist(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_PLUGINS="quant")
    result = platform_env.run("plugins", "list", "--json")
    assert result.returncode == 0, output_of(result)
    assert [row["name"] for row in json.loads(result.stdout)] == ["quant"]


def test_plugins_show_quant(platform_env: PlatformEnv) -> None:
    result = platform_env.run("plugins", "show", "quant")
    assert result.returncode == 0, output_of(result)
    out = result.stdout
    assert out.splitlines()[0] == "quant  platform-quant 0.1.0  (platform_quant.plugin)"
    for line in (
        "quant.sync_stock_list  (queue=quant.data, retry=network, idempotent)",
        "quant.process_data  (queue=quant.data, retry=default, bind, idempotent)",
        "quant.heavy_task  (queue=quant, retry=network, time_limit=3300, soft_time_limit=3000)",
        "quant  (routing key quant)",
        "quant.data  (routing key quant.data)",
        "quant.* → quant",
        "quant.sync_* → quant.data",
        "quant.process_data → quant.data",
        "quant.sync-stock-list-daily: quant.sync_stock_list crontab(0 2 * * *)",
        "max_memory_per_child=512000",
    ):
        assert f"  {line}\n" in out, f"{line!r} missing from:\n{out}"
    for heading in ("tasks", "queues", "routes", "beat entries", "worker hints",
                    "settings model"):
        assert f"\n{heading}\n" in out, out


RETRYING = """
from platform_sdk import Queue, RetryPolicy, hookimpl, task

FLAKY = RetryPolicy(name="retr.flaky", max_retries=4, backoff_base=3, backoff_cap=60,
                    jitter=False, retry_on=(ConnectionError, "socket.timeout"))

@task(name="retr.policy", queue="retr", retry=FLAKY)
def by_policy() -> None: ...

@task(name="retr.own", queue="retr", autoretry_for=(KeyError,), max_retries=2,
      retry_backoff=False, default_retry_delay=7, dont_autoretry_for=(LookupError,))
def by_celery_options() -> None: ...

@task(name="retr.plain", queue="retr")
def plain() -> None: ...

@hookimpl
def register_tasks(register):
    for t in (by_policy, by_celery_options, plain):
        register(t)

@hookimpl
def register_queues(register):
    register(Queue(name="retr"))

@hookimpl
def register_retry_policies(register):
    register(FLAKY)
"""


def test_plugins_show_says_how_each_task_retries(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("retr", RETRYING)
    platform_env.set(COLUMNS="400")  # one line per task's retry behaviour
    result = platform_env.run("plugins", "show", "retr")
    assert result.returncode == 0, output_of(result)
    lines = [line.strip() for line in result.stdout.splitlines()]
    def after(task: str) -> str:
        return lines[next(i for i, line in enumerate(lines) if line.startswith(task)) + 1]
    assert after("retr.policy  (queue=retr, retry=retr.flaky)") == (
        "retries on ConnectionError, TimeoutError: at most 4, after 3 s, doubling each time "
        "up to 60 s")
    assert after("retr.own  (queue=retr, retry=own Celery options)") == (
        "retries on KeyError: at most 2, after 7 s each time; never on LookupError")
    assert after("retr.plain  (queue=retr, retry=default)") == (
        "no automatic retry; an explicit self.retry() retries at most 3, after 2 s")


def test_plugins_show_admin_lists_its_items(platform_env: PlatformEnv) -> None:
    result = platform_env.run("plugins", "show", "admin")
    assert result.returncode == 0, output_of(result)
    for fragment in ("admin.print_hello  (queue=admin, retry=default)",
                     "admin.send_email  (queue=admin.email, retry=network)",
                     "admin.weekly_report  (queue=admin, retry=default)",
                     "default  (routing key default)", "admin.send_email → admin.email",
                     "admin.hello-every-30s: admin.print_hello every 30s",
                     "admin.weekly-report: admin.weekly_report crontab(0 8 * * 1)"):
        assert fragment in result.stdout, result.stdout


def test_plugins_show_unknown_plugin(platform_env: PlatformEnv) -> None:
    result = platform_env.run("plugins", "show", "nope")
    line = one_line_error(result)
    assert line.startswith("Error: plugin `nope` is not loaded (loaded: admin, ")
    assert line.endswith("check the name with `platform plugins list`")
    assert result.returncode == 2


def test_queues_shows_queues_routes_and_plugins(wide: PlatformEnv) -> None:
    result = wide.run("queues")
    assert result.returncode == 0, output_of(result)
    queues, routes = result.stdout.split("routes (most specific first)")
    routes, backlog = routes.split("backlog (filesystem; 0 worker(s) reporting; held delays "
                                   "due within 120 s count)")
    rows = {}
    for line in queues.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 4 and cells[0] != "queue":
            rows[cells[0]] = cells[1:]
    assert rows["default"] == ["default", "admin", ""]
    assert rows["admin"] == ["admin", "admin", "admin.print_hello, admin.weekly_report"]
    assert rows["admin.email"] == ["admin.email", "admin", "admin.send_email"]
    assert rows["quant"] == ["quant", "quant", "quant.heavy_task"]
    assert rows["quant.data"] == ["quant.data", "quant",
                                  "quant.sync_stock_list, quant.process_data"]
    route_rows = [[c.strip() for c in line.split("│")[1:-1]] for line in routes.splitlines()
                  if line.startswith("│") and "pattern" not in line]
    # Most specific first: exact names, then globs by literal length.
    assert route_rows == [
        ["quant.process_data", "quant.data", "quant"],
        ["admin.send_email", "admin.email", "admin"],
        ["quant.sync_*", "quant.data", "quant"],
        ["admin.*", "admin", "admin"],
        ["quant.*", "quant", "quant"],
    ]
    backlog_rows = [[c.strip() for c in line.split("│")[1:-1]] for line in backlog.splitlines()
                    if line.startswith("│")]
    assert backlog_rows == [[name, *["0"] * 6] for name in rows]


# --- send -----------------------------------------------------------------------------


def test_send_unknown_task(platform_env: PlatformEnv) -> None:
    line = one_line_error(platform_env.run("send", "nope.task"))
    assert line == (
        "Error: no enabled plugin provides task `nope.task`; see `platform plugins show NAME`"
    )


def test_send_misspelt_task_suggests_the_name(platform_env: PlatformEnv) -> None:
    line = one_line_error(platform_env.run("send", "admin.print_helo"))
    assert line == (
        "Error: no enabled plugin provides task `admin.print_helo`; did you mean "
        "admin.print_hello?"
    )


def test_send_task_of_a_plugin_outside_the_allowlist(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_PLUGINS="admin")
    line = one_line_error(platform_env.run("send", "quant.heavy_task"))
    assert "no enabled plugin provides task `quant.heavy_task`" in line


def test_send_invalid_json_args(platform_env: PlatformEnv) -> None:
    result = platform_env.run("send", "admin.print_hello", "--args", "[1,")
    assert result.returncode == 2, output_of(result)
    assert "Traceback" not in result.stderr
    assert ("Error: Invalid value for --args: is not valid JSON (Expecting value at column 4); "
            "e.g. --args '[1, 2]'") in result.stderr


def test_send_args_must_be_an_array(platform_env: PlatformEnv) -> None:
    result = platform_env.run("send", "admin.print_hello", "--args", '{"a":1}')
    assert result.returncode == 2, output_of(result)
    assert "Error: Invalid value for --args: must be a JSON array; e.g. --args '[1, 2]'" \
        in result.stderr


def test_send_kwargs_must_be_an_object(platform_env: PlatformEnv) -> None:
    result = platform_env.run("send", "admin.print_hello", "--kwargs", "[1]")
    assert result.returncode == 2, output_of(result)
    assert "Error: Invalid value for --kwargs: must be a JSON object" in result.stderr


def test_send_to_an_undeclared_queue(platform_env: PlatformEnv) -> None:
    line = one_line_error(platform_env.run("send", "admin.print_hello", "--queue", "nope"))
    assert line == "Error: --queue nope is declared by no enabled plugin; see `platform queues`"


def test_send_with_unreachable_broker(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_BROKER_URL=UNREACHABLE)
    line = one_line_error(platform_env.run("send", "admin.print_hello"))
    assert line.startswith(f"Error: cannot reach the broker at {UNREACHABLE} (")
    assert "PLATFORM_BROKER_URL" in line


def test_send_with_unreachable_broker_and_debug_shows_traceback(
    platform_env: PlatformEnv,
) -> None:
    platform_env.set(PLATFORM_BROKER_URL=UNREACHABLE)
    result = platform_env.run("--debug", "send", "admin.print_hello")
    assert result.returncode != 0, output_of(result)
    assert "Traceback (most recent call last)" in result.stderr
    assert "platform_core.errors.BrokerUnavailable: cannot reach the broker" in result.stderr


def test_debug_from_the_environment(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_DEBUG="1")
    result = platform_env.run("send", "nope.task")
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "platform_core.errors.UnknownTask" in result.stderr


def test_send_embedded_broker_prints_an_id(platform_env: PlatformEnv) -> None:
    """The default, server-less broker accepts the message; nothing consumes it."""
    result = platform_env.run("send", "admin.print_hello", "--countdown", "60")
    assert result.returncode == 0, output_of(result)
    task_id = result.stdout.strip()
    assert len(task_id) == 36 and task_id.count("-") == 4
    queued = list((platform_env.home / "broker" / "queue").iterdir())
    assert len(queued) == 1
    assert task_id in queued[0].read_text()


def test_result_of_an_unknown_id_is_pending(platform_env: PlatformEnv) -> None:
    result = platform_env.run("result", "00000000-0000-0000-0000-000000000000")
    assert result.returncode == 0, output_of(result)
    assert result.stdout.startswith("PENDING (unknown id, or not started yet")


# --- configuration errors, beat and worker --------------------------------------------


def test_configuration_error_lists_problems_without_traceback(platform_env: PlatformEnv) -> None:
    """A conflict between two plugins stops every command and names both."""
    platform_env.plugins.add("zeta", """
        from platform_sdk import Queue, hookimpl

        @hookimpl
        def register_queues(register):
            register(Queue(name="zeta"))
            register(Queue(name="default"))
    """)
    platform_env.set(PLATFORM_RETRY_POLICIES__NETWROK__MAX_RETRIES="1")
    result = platform_env.run("plugins", "list")
    assert result.returncode == 2, output_of(result)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "Error: the platform cannot start: 2 problems",
        "  - configuration overrides retry policy `netwrok`, which does not exist (known: "
        "default, network); fix the name under [retry_policies]",
        # plugins load in name order, so zeta comes after admin
        "  - plugin `zeta` (throwaway-zeta 0.0.1) declares queue `default`, already declared "
        "by plugin `admin` (platform-admin 0.1.0); rename one of them or disable one plugin",
    ]


def test_debug_shows_a_broken_plugins_whole_traceback(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("clash", "raise ImportError('broken plugin')\n")
    plain = platform_env.run("plugins", "list", "--json")
    debug = platform_env.run("--debug", "plugins", "list", "--json")
    assert plain.returncode == debug.returncode == 0, output_of(debug)
    (short,) = {r["name"]: r for r in json.loads(plain.stdout)}["clash"]["errors"]
    (full,) = {r["name"]: r for r in json.loads(debug.stdout)}["clash"]["errors"]
    assert "rerun with --debug" in short and "Traceback" not in short
    assert "Traceback (most recent call last):" in full and "rerun with --debug" not in full


def test_broken_plugin_is_listed_and_the_others_still_load(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("clash", "raise ImportError('broken plugin')\n")
    listed = platform_env.run("plugins", "list", "--json")
    assert listed.returncode == 0, output_of(listed)
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["clash"]["status"] == "broken"
    assert rows["clash"]["distribution"] == "throwaway-clash"
    assert rows["clash"]["version"] == "0.0.1"
    (error,) = rows["clash"]["errors"]
    assert error.startswith("plugin `clash` (throwaway-clash 0.0.1) failed to import ")
    assert "ImportError: broken plugin" in error
    assert "PLATFORM_DISABLED_PLUGINS=clash" in error
    assert [rows["clash"][k] for k in ("tasks", "queues", "routes", "beat_entries")] == [0] * 4
    assert rows["admin"]["status"] == rows["quant"]["status"] == "ok"
    assert rows["admin"]["errors"] == []
    assert listed.stderr == ""  # the listing says it; no log line besides
    platform_env.set(PLATFORM_DISABLED_PLUGINS="clash")
    fixed = platform_env.run("plugins", "list", "--json")
    assert fixed.returncode == 0, output_of(fixed)
    assert "clash" not in {row["name"] for row in json.loads(fixed.stdout)}
    assert fixed.stderr == ""


def test_plugins_list_table_shows_the_status(wide: PlatformEnv) -> None:
    wide.plugins.add("clash", "raise ImportError('broken plugin')\n")
    result = wide.run("plugins", "list")
    assert result.returncode == 0, output_of(result)
    rows = {cells[0]: cells for line in result.stdout.splitlines()
            if len(cells := [c.strip() for c in line.split("│")[1:-1]]) > 4}
    assert rows["clash"][1:4] == ["throwaway-clash", "0.0.1", "BROKEN"]
    assert rows["admin"][3] == rows["quant"][3] == "ok"
    assert "broken: plugin `clash` (throwaway-clash 0.0.1) failed to import" in result.stdout


def test_plugins_list_keeps_names_whole_in_80_columns(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("acme_billing_reports", """
        from platform_sdk import Queue, hookimpl

        @hookimpl
        def register_queues(register):
            register(Queue(name="acme_billing_reports"))
    """, distribution="acme-billing-reports-for-finance")
    platform_env.set(COLUMNS="80")
    result = platform_env.run("plugins", "list")
    assert result.returncode == 0, output_of(result)
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), result.stdout
    for name in ("acme_billing_reports", "acme-billing-reports-for-finance", "platform-admin",
                 "platform-quant", "0.0.1"):
        assert any(name in line for line in lines), (name, result.stdout)
    assert "…" not in result.stdout


def test_strict_setting_makes_a_broken_plugin_fatal(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("clash", "raise ImportError('broken plugin')\n")
    platform_env.set(PLATFORM_STRICT="1")
    line = one_line_error(platform_env.run("send", "admin.print_hello"))
    assert line.startswith("Error: the platform cannot start: plugin `clash` (throwaway-clash "
                           "0.0.1) failed to import ")
    # plugins list still shows what is broken instead of refusing
    listed = platform_env.run("plugins", "list", "--json")
    assert listed.returncode == 0, output_of(listed)


def test_show_a_broken_plugin(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("clash", "raise ImportError('broken plugin')\n")
    shown = platform_env.run("plugins", "show", "clash")
    assert shown.returncode == 2, output_of(shown)
    line = shown.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: plugin `clash` (throwaway-clash 0.0.1) is broken and was left "
                           "out: plugin `clash` (throwaway-clash 0.0.1) failed to import ")


def test_send_a_task_of_a_broken_plugin(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("clash", """
        from platform_sdk import Queue, hookimpl, task

        @task(name="clash.job", queue="clash")
        def job():
            return 1

        @hookimpl
        def register_tasks(register):
            register(job)

        @hookimpl
        def register_queues(register):
            register(Queue(name="clash"))
            raise RuntimeError("no queues today")
    """)
    sent = platform_env.run("send", "clash.job")
    assert sent.returncode == 2, output_of(sent)
    *logged, line = sent.stderr.strip().splitlines()
    assert logged == ["broken plugin left out: plugin `clash` (throwaway-clash 0.0.1) raised in "
                      "register_queues: RuntimeError: no queues today"]
    assert line == (
        "Error: task `clash.job` belongs to plugin `clash`, which is broken and was left out: "
        "plugin `clash` (throwaway-clash 0.0.1) raised in register_queues: RuntimeError: "
        "no queues today"
    )


def test_beat_with_plugins_needs_partial(platform_env: PlatformEnv) -> None:
    line = one_line_error(platform_env.run("beat", "--plugins", "quant"))
    assert "--partial" in line
    assert line.startswith("Error: platform beat runs every enabled plugin's entries")


def test_beat_with_partial_reaches_the_broker_check(platform_env: PlatformEnv) -> None:
    """With --partial the selection is accepted; only the (unreachable) broker stops it."""
    platform_env.set(PLATFORM_BROKER_URL=UNREACHABLE, COLUMNS="200")
    result = platform_env.run("beat", "--plugins", "quant", "--partial")
    assert result.returncode == 2, output_of(result)
    assert "quant.sync-stock-list-daily" in result.stdout
    assert "admin.hello-every-30s" not in result.stdout
    assert "cannot reach the broker" in result.stderr


def test_worker_with_an_undeclared_queue(platform_env: PlatformEnv) -> None:
    line = one_line_error(platform_env.run("worker", "-Q", "nope,admin.zz*"))
    assert line.startswith("Error: -Q names nope, admin.zz*, which no loaded plugin declares "
                           "(declared: ")
    assert "fix -Q (queue names, plugin names or globs like admin.*) or add the plugin with " \
        "--plugins" in line


def test_worker_queue_of_a_plugin_not_selected(platform_env: PlatformEnv) -> None:
    line = one_line_error(platform_env.run("worker", "--plugins", "quant", "-Q", "quant,admin.email"))
    assert line == (
        "Error: -Q names admin.email, which no loaded plugin declares (declared: quant, quant.data); "
        "fix -Q (queue names, plugin names or globs like admin.*) or add the plugin with --plugins"
    )


@pytest.mark.parametrize(("given", "resolved"), [
    # The guide's habit: a plugin's name means every queue it declares.
    ("admin,quant", "default, admin, admin.email, quant, quant.data"),
    ("admin.*", "admin.email"),
    ("quant.data,default", "quant.data, default"),
    ("q*,quant", "quant, quant.data"),
])
def test_worker_queues_by_plugin_name_or_glob(platform_env: PlatformEnv, given: str,
                                              resolved: str) -> None:
    platform_env.set(PLATFORM_BROKER_URL=UNREACHABLE, COLUMNS="250")
    result = platform_env.run("worker", "-Q", given)
    assert result.returncode == 2, output_of(result)
    row = next(line for line in result.stdout.splitlines() if "│ queues" in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells == ["queues", resolved, f"command line (-Q {given})"]


def test_worker_with_an_uninstalled_plugin(platform_env: PlatformEnv) -> None:
    result = platform_env.run("worker", "--plugins", "qunat")
    assert result.returncode == 2, output_of(result)
    assert "Traceback" not in result.stderr
    assert "plugin `qunat` was requested (--plugins / PLATFORM_PLUGINS) but is not installed" \
        in result.stderr


def test_worker_with_a_requested_but_disabled_plugin(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_DISABLED_PLUGINS="admin")
    line = one_line_error(platform_env.run("worker", "--plugins", "admin"))
    assert "admin" in line
    assert "PLATFORM_DISABLED_PLUGINS" in line


# --- broken plugins at start-up -------------------------------------------------------

BROKEN = "raise ImportError('broken plugin')\n"


@pytest.mark.parametrize("command", [["worker", "--strict"], ["beat", "--strict"],
                                     ["worker", "--plugins", "clash,admin"],
                                     ["beat", "--plugins", "clash", "--partial"]])
def test_strict_or_naming_a_broken_plugin_refuses_to_start(
    platform_env: PlatformEnv, command: list[str],
) -> None:
    platform_env.plugins.add("clash", BROKEN)
    platform_env.set(PLATFORM_BROKER_URL=UNREACHABLE)  # it must stop before the broker check
    line = one_line_error(platform_env.run(*command))
    assert line.startswith("Error: the platform cannot start: plugin `clash` (throwaway-clash "
                           "0.0.1) failed to import ")


def test_worker_table_shows_a_broken_plugin(wide: PlatformEnv) -> None:
    """Without --strict the worker gets as far as the broker check, the plugin marked."""
    wide.plugins.add("clash", BROKEN)
    wide.set(PLATFORM_BROKER_URL=UNREACHABLE)
    result = wide.run("worker")
    assert result.returncode == 2, output_of(result)
    row = next(line for line in result.stdout.splitlines() if "plugin clash" in line)
    assert "throwaway-clash 0.0.1" in row
    assert "BROKEN, left out" in row
    assert result.stderr.startswith("broken plugin left out: plugin `clash` (throwaway-clash "
                                    "0.0.1) failed to import ")
    assert "cannot reach the broker" in result.stderr


def test_worker_help_documents_strict(platform_env: PlatformEnv) -> None:
    for command in ("worker", "beat"):
        result = platform_env.run(command, "--help")
        assert result.returncode == 0, output_of(result)
        assert "--strict" in result.stdout
