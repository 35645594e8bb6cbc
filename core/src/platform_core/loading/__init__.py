"""Stage 1, load: find plugins by entry point, register their hooks, collect their items."""
