"""The broker: its URL and options, whether it answers, its queues read without consuming,
and the embedded result store."""
