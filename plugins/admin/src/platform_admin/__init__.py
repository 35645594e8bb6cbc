"""Bundled plugin: housekeeping tasks, e-mail and the weekly report."""
