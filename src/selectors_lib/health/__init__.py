"""Replica health: hysteresis, panic, probes and the scheduler that runs them."""
