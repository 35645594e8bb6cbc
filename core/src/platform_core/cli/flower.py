"""``platform flower``: Flower's web monitor on the platform's app, authenticated.

Flower reads its options from four places: its defaults, ``FLOWER_*`` variables,
a Python config file (``flowerconfig.py`` in the current directory, or ``--conf``)
and its command line, in that order, with its own spellings (``--unix_socket``,
``-unix-socket``, ...). Rather than recognise the options that matter one by one,
``platform flower`` runs Flower's own parsing on the exact command line Flower is
about to get, in the process that then runs Flower, and judges the outcome: where
Flower will listen (a unix socket, or every address ``--address`` resolves to)
and whether it will ask for credentials (basic-auth entries, or an ``--auth``
e-mail pattern with its login provider). Listening beyond loopback without
credentials is refused, whichever source asked for it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click

from platform_core.cli.common import load_host
from platform_core.errors import PlatformError
from platform_core.web.addresses import bound_addresses, is_loopback, strip_brackets

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}
AUTH_ENV = "PLATFORM_FLOWER_BASIC_AUTH"
# Flower options that platform flower sets itself.
OWN = {"address", "port", "basic_auth"}
DEFAULT = "Flower's default"
FIX = f"set --basic-auth USER:PASS or {AUTH_ENV}"
EXAMPLE_PROVIDER = "flower.views.auth.GoogleAuth2LoginHandler"


def _entry_problem(number: int, entry: str) -> str | None:
    user, sep, password = entry.partition(":")
    if not sep:
        return f"entry {number} has no `:`"
    if not user:
        return f"entry {number} has an empty user name"
    if not password:
        return f"entry {number} (user `{user}`) has an empty password"
    return None


def check_basic_auth(value: str) -> list[str]:
    """The USER:PASS entries of ``value``; the error never shows a password."""
    where = f"--basic-auth / {AUTH_ENV}"
    pairs = [p.strip() for p in value.split(",") if p.strip()]
    if not pairs:
        raise PlatformError(f"{where} is empty; give USER:PASS, e.g. admin:s3cret")
    for number, pair in enumerate(pairs, 1):
        problem = _entry_problem(number, pair)
        if problem:
            raise PlatformError(f"{where} {problem}; give USER:PASS, e.g. admin:s3cret "
                                "(several: a:p1,b:p2)")
    return pairs


def _check_entries(entries: Sequence[str], where: str) -> None:
    """Flower compares credentials with each entry exactly, as given."""
    for number, entry in enumerate(entries, 1):
        if not entry.strip():
            problem: str | None = f"entry {number} is empty"
        elif entry != entry.strip():
            problem = f"entry {number} has spaces around it (Flower compares them too)"
        else:
            problem = _entry_problem(number, entry)
        if problem:
            raise PlatformError(f"{where} {problem}; give USER:PASS entries, e.g. "
                                f"admin:s3cret, or use --basic-auth / {AUTH_ENV}")


def _option_names(args: Sequence[str]) -> dict[str, str]:
    """Flower option name -> the spelling given, for the args Flower takes as options."""
    from flower.command import is_flower_option

    names: dict[str, str] = {}
    for arg in args:
        if arg.startswith("-") and is_flower_option(arg):
            spelled = arg.partition("=")[0]
            names[spelled.lstrip("-").replace("-", "_")] = spelled
    return names


@dataclass(frozen=True)
class FlowerOptions:
    """Flower's options as Flower will see them, and where each one came from."""

    values: dict[str, Any]
    sources: dict[str, str]

    def source(self, name: str) -> str:
        return self.sources.get(name, DEFAULT)

    def given(self, name: str) -> bool:
        return name in self.sources


def resolve(args: Sequence[str], labels: dict[str, str] | None = None) -> FlowerOptions:
    """Flower's options after its own parsing of the environment, its config file and
    ``args``, the way Flower's command does it (parse callbacks left for Flower).

    ``labels`` names the source of options ``args`` carries for platform flower."""
    from flower.command import (
        ENV_VAR_PREFIX,
        apply_env_options,
        is_flower_envvar,
        is_flower_option,
    )
    from flower.options import DEFAULT_CONFIG_FILE
    from tornado.options import Error, options, parse_command_line, parse_config_file

    argv = ["flower", *(a for a in args if is_flower_option(a))]
    env_names = sorted(n for n in os.environ if is_flower_envvar(n))
    try:
        apply_env_options()
    except (ValueError, TypeError, KeyError) as exc:
        raise PlatformError(f"Flower cannot read its variables {', '.join(env_names)} "
                            f"({type(exc).__name__}: {exc}); fix or unset the one "
                            "that is wrong") from None
    try:
        parse_command_line(argv, final=False)
    except (Error, ValueError, TypeError) as exc:
        raise PlatformError(f"Flower cannot read its options ({exc}); fix the option "
                            "after `platform flower`") from None
    conf = os.path.abspath(options.conf)
    before_conf = options.as_dict()
    try:
        parse_config_file(conf, final=False)
    except FileNotFoundError:
        if options.conf != DEFAULT_CONFIG_FILE:
            raise PlatformError(f"--conf {options.conf}: no such file; fix the path or "
                                "drop --conf") from None
    except Exception as exc:  # noqa: BLE001 - the file is Python: any error is its own
        line = getattr(exc, "lineno", None)
        at = f" (line {line})" if line else ""
        hint = ("fix it" if options.conf != DEFAULT_CONFIG_FILE else
                f"fix it, or start platform flower in another directory (Flower reads "
                f"{DEFAULT_CONFIG_FILE} from the current one)")
        # The message is left out: it can quote the file's source, passwords included.
        raise PlatformError(f"Flower's config file {conf} fails with "
                            f"{type(exc).__name__}{at}; {hint}") from None
    after_conf = options.as_dict()
    parse_command_line(argv, final=False)
    values = options.as_dict()

    sources: dict[str, str] = {}
    for name in env_names:
        option = name[len(ENV_VAR_PREFIX):].lower().replace("-", "_")
        sources[option] = name
    for name, value in after_conf.items():
        if value != before_conf[name]:
            sources[name] = f"`{name}` in {conf}"
    sources.update(_option_names(args))
    sources.update(labels or {})
    return FlowerOptions(values, sources)


def flower_installed() -> None:
    try:
        import flower.command  # noqa: F401
    except ImportError as exc:
        raise PlatformError(
            f"Flower is not installed ({type(exc).__name__}: {exc}); install the extra: "
            "pip install 'platform-core[flower]'"
        ) from None


def _oauth_problem(found: FlowerOptions) -> str | None:
    from flower.utils.authentication import validate_auth_option

    pattern = str(found.values["auth"])
    if not validate_auth_option(pattern):
        return (f"{found.source('auth')} `{pattern}` is not an e-mail pattern Flower "
                "accepts (one `*`, never in the domain, or a|b|c); fix it")
    if not found.values["auth_provider"]:
        return (f"{found.source('auth')} turns on Flower's OAuth login, but no login "
                f"provider is set, so nobody could log in; set --auth_provider (e.g. "
                f"{EXAMPLE_PROVIDER}) with --oauth2_key, --oauth2_secret and "
                "--oauth2_redirect_uri, or use --basic-auth instead")
    return None


def _no_effect(found: FlowerOptions, basic: bool, oauth: bool) -> list[str]:
    """Options given that might look like they protect Flower, but do not."""
    notes = []
    if found.given("unix_socket") and not found.values["unix_socket"]:
        notes.append(f"{found.source('unix_socket')} is empty, so Flower listens on TCP")
    if found.given("auth") and not oauth:
        notes.append(f"{found.source('auth')} is empty, which turns OAuth off")
    if found.given("basic_auth") and not basic:
        notes.append(f"{found.source('basic_auth')} is empty, which turns basic auth off")
    if not oauth:
        notes += [f"{found.source(name)} does nothing without --auth"
                  for name in ("auth_provider", "oauth2_key", "oauth2_secret",
                               "oauth2_redirect_uri") if found.given(name)]
    return notes


def _open_api() -> str | None:
    from flower.utils import strtobool

    value = os.environ.get("FLOWER_UNAUTHENTICATED_API") or "false"
    try:
        return "FLOWER_UNAUTHENTICATED_API" if strtobool(value) else None
    except ValueError:
        return "FLOWER_UNAUTHENTICATED_API"


def check(found: FlowerOptions, address: str, no_auth: bool) -> None:
    """Refuse what would let anyone reach Flower without credentials."""
    values = found.values
    basic = list(values["basic_auth"] or [])
    oauth = bool(values["auth"])
    if basic:
        _check_entries(basic, found.source("basic_auth"))
    if oauth:
        problem = _oauth_problem(found)
        if problem:
            raise PlatformError(problem)
    authenticated = bool(basic) or oauth
    if no_auth and authenticated:
        turned_on = found.source("auth" if oauth else "basic_auth")
        raise PlatformError(f"--no-auth and {turned_on} contradict each other; pick one "
                            f"({turned_on} turns authentication on)")
    if authenticated:
        return
    socket_path = str(values["unix_socket"] or "")
    notes = _no_effect(found, bool(basic), oauth)
    because = f" ({'; '.join(notes)})" if notes else ""
    if not socket_path and not is_loopback(address):
        listens = ", ".join(bound_addresses(address))
        where = f"--address {address or repr('')}"
        if listens != address:
            where += f" ({listens})"
        raise PlatformError(
            f"refusing to serve Flower on {where} without authentication{because}: anyone "
            f"who reaches the port could revoke tasks and shut workers down; {FIX}, or "
            "listen on loopback (--address 127.0.0.1)"
        )
    opened = _open_api()
    if opened:
        raise PlatformError(
            f"{opened} lets any web page opened in a browser on this machine read and "
            f"control Flower when it has no authentication; unset it, or {FIX}"
        )
    if not no_auth:
        place = f"unix socket {socket_path}" if socket_path else f"loopback address {address}"
        raise PlatformError(
            f"Flower needs authentication{because}: {FIX}, "
            f"or pass --no-auth to serve it without on {place}"
        )


@click.command(context_settings=PASS_THROUGH)
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Address to listen on; other than loopback needs authentication.")
@click.option("--port", type=click.IntRange(1, 65535), default=5555, show_default=True)
@click.option("--basic-auth", envvar=AUTH_ENV, metavar="USER:PASS[,USER:PASS]",
              help=f"Users allowed in (or set {AUTH_ENV}, which keeps it out of `ps`).")
@click.option("--no-auth", is_flag=True,
              help="Serve without authentication; only on a loopback address.")
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
def flower(address: str, port: int, basic_auth: str | None, no_auth: bool,
           flower_args: tuple[str, ...]) -> None:
    """Start Flower, the web monitor, on the platform's app. Other Flower options pass
    through (e.g. --url-prefix=flower, --persistent=True); whatever they, FLOWER_*
    variables or a flowerconfig.py say, Flower never listens beyond loopback without
    authentication."""
    flower_installed()
    given = _option_names(flower_args)
    clash = sorted(n for n in given if n in OWN)
    if clash:
        names = ", ".join("--" + n.replace("_", "-") for n in clash)
        spelled = ", ".join(given[n] for n in clash)
        raise PlatformError(
            f"give {names} as platform flower's own option (spelled with dashes), not "
            f"as a Flower pass-through option ({spelled})"
        )
    if basic_auth is not None and no_auth:
        raise PlatformError("--no-auth and --basic-auth contradict each other; pick one")
    auth = check_basic_auth(basic_auth) if basic_auth is not None else []
    address = strip_brackets(address)
    args = [f"--address={address}", f"--port={port}"]
    if auth:
        args.append(f"--basic-auth={','.join(auth)}")
    args += flower_args
    labels = {}
    if auth:
        source = click.get_current_context().get_parameter_source("basic_auth")
        from_env = source is click.core.ParameterSource.ENVIRONMENT
        labels["basic_auth"] = AUTH_ENV if from_env else "--basic-auth"
    check(resolve(args, labels), address, no_auth)
    from platform_core.broker.config import check_broker

    host = load_host()
    check_broker(host.app)
    host.app.start(["flower", *args])


COMMANDS = [flower]
