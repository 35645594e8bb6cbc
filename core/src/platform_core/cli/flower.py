"""``platform flower``: Flower's web monitor on the platform's app, authenticated."""

from __future__ import annotations

import ipaddress
import os
import socket

import click

from ..errors import PlatformError
from .common import load_host

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}
AUTH_ENV = "PLATFORM_FLOWER_BASIC_AUTH"
# Flower options that platform flower sets itself (Flower also accepts underscores).
OWN = {"address", "port", "basic-auth"}


def is_loopback(address: str) -> bool:
    """Whether every address ``address`` stands for is a loopback one ("" is all)."""
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(address, None)
    except socket.gaierror as exc:
        raise PlatformError(f"--address {address} cannot be resolved ({exc}); "
                            "give an IP address or a known host name") from None
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_basic_auth(value: str) -> list[str]:
    """The USER:PASS entries of ``value``; the error never shows a password."""
    where = f"--basic-auth / {AUTH_ENV}"
    pairs = [p.strip() for p in value.split(",") if p.strip()]
    if not pairs:
        raise PlatformError(f"{where} is empty; give USER:PASS, e.g. admin:s3cret")
    for number, pair in enumerate(pairs, 1):
        user, sep, password = pair.partition(":")
        if not sep:
            problem = f"entry {number} has no `:`"
        elif not user:
            problem = f"entry {number} has an empty user name"
        elif not password:
            problem = f"entry {number} (user `{user}`) has an empty password"
        else:
            continue
        raise PlatformError(f"{where} {problem}; give USER:PASS, e.g. admin:s3cret "
                            "(several: a:p1,b:p2)")
    return pairs


def _option_name(arg: str) -> str | None:
    if not arg.startswith("--"):
        return None
    return arg[2:].partition("=")[0].replace("_", "-")


def flower_installed() -> None:
    try:
        import flower.command  # noqa: F401
    except ImportError as exc:
        raise PlatformError(
            f"Flower is not installed ({type(exc).__name__}: {exc}); install the extra: "
            "pip install 'platform-core[flower]'"
        ) from None


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
    through (e.g. --url-prefix=flower, --persistent=True)."""
    names = {_option_name(a) for a in flower_args}
    clash = sorted(n for n in names if n in OWN)
    if clash:
        raise PlatformError(
            f"give {', '.join('--' + n for n in clash)} as platform flower's own option "
            "(spelled with dashes), not as a Flower pass-through option"
        )
    if basic_auth is not None and no_auth:
        raise PlatformError("--no-auth and --basic-auth contradict each other; pick one")
    auth = check_basic_auth(basic_auth) if basic_auth is not None else []
    # Flower's own authentication (OAuth with --auth, or its FLOWER_* variables) counts too.
    flower_auth = ("auth" in names or bool(os.environ.get("FLOWER_AUTH"))
                   or bool(os.environ.get("FLOWER_BASIC_AUTH")))
    local = "unix-socket" in names or is_loopback(address)
    if not (auth or flower_auth):
        if not local:
            raise PlatformError(
                f"refusing to serve Flower on {address or 'every address'} without "
                "authentication: anyone who reaches the port could revoke tasks and shut "
                f"workers down; set --basic-auth USER:PASS or {AUTH_ENV}"
            )
        if not no_auth:
            raise PlatformError(
                f"Flower needs authentication: set --basic-auth USER:PASS or {AUTH_ENV}, "
                f"or pass --no-auth to serve it without on loopback address {address}"
            )
    flower_installed()
    from ..brokers import check_broker

    host = load_host()
    check_broker(host.app)
    argv = ["flower", f"--address={address}", f"--port={port}"]
    if auth:
        argv.append(f"--basic-auth={','.join(auth)}")
    host.app.start([*argv, *flower_args])


COMMANDS = [flower]
