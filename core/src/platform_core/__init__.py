"""Platform core: the host that loads plugins and runs them on Celery."""
