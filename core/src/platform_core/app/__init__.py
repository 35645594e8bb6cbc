"""Stage 3, build: the one Celery app, its configuration, and what producers run when they send."""
