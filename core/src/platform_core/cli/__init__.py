"""The ``platform`` command. Importing it loads neither Celery nor plugin code."""

from .main import cli, main

__all__ = ["cli", "main"]
