"""The broker: its URL and options, whether it answers, and its queues read without consuming."""
