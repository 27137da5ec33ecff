"""The six experiments, one module each; every ``run(ctx)`` returns a JSON-ready dict and draws its plots."""

__all__: list[str] = []
