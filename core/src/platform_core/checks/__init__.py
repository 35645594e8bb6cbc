"""Stage 2, check: every start-up rule, run on the collected plugins before anything is built."""
