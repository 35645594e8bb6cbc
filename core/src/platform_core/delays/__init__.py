"""Long delays held outside the broker: :mod:`.hold` (producers), :mod:`.release` (workers)."""
