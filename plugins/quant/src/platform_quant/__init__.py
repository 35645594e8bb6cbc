"""Bundled plugin: stock list sync, data processing and heavy computations."""
