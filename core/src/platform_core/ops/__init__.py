"""Operate: what `platform doctor` and the queue views read from brokers, workers and stores."""
