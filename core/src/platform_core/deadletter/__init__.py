"""Dead letters, bounded redelivery and malformed-message handling for workers.

- :mod:`.consumer` (``worker_consumer``): messages Celery refuses become dead letters
  (the receive path, :mod:`platform_core.receive`, stops malformed ones before that).
- :mod:`.task`, :mod:`.request`, :mod:`.strategy`: bounded redelivery of lost tasks,
  dead letters for exhausted retries.
- :mod:`.letters`, :mod:`.message`, :mod:`.entry`: what is stored, and how.
"""
