"""Example Platform plugin: greetings, a counter that reports progress, a guestbook."""
