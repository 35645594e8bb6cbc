"""Dead letters, bounded redelivery and malformed-message handling for workers.

- :mod:`.consumer` (``worker_consumer``): malformed messages become dead letters.
- :mod:`.envelopes` (``amqp_cls``): unreadable queue items reach that consumer.
- :mod:`.task`, :mod:`.request`, :mod:`.strategy`: bounded redelivery of lost tasks,
  dead letters for exhausted retries.
- :mod:`.letters`, :mod:`.message`, :mod:`.entry`: what is stored, and how.
"""
