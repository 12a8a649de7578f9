"""Executors for many evaluations: local threads (default, in ``kernelarena.suite``) or a Ray cluster."""
