"""Dead letters: turning what cannot be processed into a stored record, and why.

- :mod:`.letters`: capturing a message (however malformed) and storing it, never raising;
- :mod:`.redelivery`: counting deliveries and naming how a worker was lost.

The worker's classes that decide *when* a message becomes a dead letter live in
:mod:`platform_core.worker`; the records themselves in :mod:`platform_core.stores`.
"""
