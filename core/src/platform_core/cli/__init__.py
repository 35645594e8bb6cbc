"""The ``platform`` command. Importing it loads neither Celery nor plugin code."""

from platform_core.cli.main import cli, main

__all__ = ["cli", "main"]
