"""``platform api``: the HTTP task API, served by uvicorn."""

from __future__ import annotations

import copy

import click

from platform_core.cli.common import load_host
from platform_core.errors import PlatformError


@click.command()
@click.option("--host", "address", default="127.0.0.1", show_default=True,
              help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--plugins", help="Comma-separated plugins whose tasks to offer (default: all "
                                "enabled).")
@click.option("--no-auth", is_flag=True,
              help="Serve without API keys; refused unless the address is loopback.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def api(address: str, port: int, plugins: str | None, no_auth: bool, log_level: str) -> None:
    """Serve the task API: submit tasks, read their state, follow their progress (SSE).

    Every request needs a key of PLATFORM_API_KEYS (`Authorization: Bearer KEY` or
    `X-API-Key: KEY`), unless --no-auth on a loopback address. The live page is at /,
    the OpenAPI schema at /openapi.json and /docs. Needs `pip install 'platform-core[web]'`.
    """
    try:
        import uvicorn
    except ImportError:
        raise PlatformError("platform api needs FastAPI and uvicorn: "
                            "pip install 'platform-core[web]'") from None
    from platform_core.web.server import check_address, create_app

    check_address(address, no_auth=no_auth)
    host = load_host(plugins)
    app = create_app(host, auth=not no_auth)
    # uvicorn's access log prints query strings; the API's own line names the route only
    logging_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    logging_config["loggers"]["platform.api"] = {"handlers": ["default"], "level": "INFO",
                                                 "propagate": False}
    config = uvicorn.Config(app, host=address.strip("[]"), port=port, log_level=log_level,
                            log_config=logging_config, access_log=False, server_header=False,
                            proxy_headers=False)
    auth = "no authentication (loopback only)" if no_auth else "API keys required"
    click.echo(f"Task API of {len(host.plugins)} plugin(s) on http://{address}:{port}/ ({auth}); "
               "/docs for the schema", err=True)
    uvicorn.Server(config).run()


COMMANDS = [api]
