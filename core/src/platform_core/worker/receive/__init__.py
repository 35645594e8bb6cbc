"""The worker's receive path: every delivered message, from the broker to Celery."""
