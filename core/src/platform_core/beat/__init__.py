"""Run, beat side: the scheduler that sends only while it holds the beat lock, and the locks."""
