"""Run, worker side: what a worker process adds to Celery to receive, run and finish tasks."""
