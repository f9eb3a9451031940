"""Benchmarks behind `eft-eval bench ...` (one private module each, listed in `commands.py`).

No public Python API: each benchmark prints ratios measured in one run on tiny models.
"""

__all__: list[str] = []
