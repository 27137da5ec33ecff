"""Provider tests: offline, through the official SDK clients with fake transports (provider_fakes.py).

Every test builds its own breaker registry, clock and sleep (provider_fakes.resilience), so no state
leaks between tests; the process-wide DEFAULT_BREAKERS is never touched here.
"""
