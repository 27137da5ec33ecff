"""Provider tests: offline, through the official SDK clients with fake transports (provider_fakes.py).

Adapters that make calls get their own breaker registry, clock and sleep (provider_fakes.resilience),
so breaker state never leaks between tests; factory tests only construct adapters (no calls).
"""
