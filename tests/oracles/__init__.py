"""Test oracles: executable references the production code is checked against - the NumPy
versions of the numba kernels (``*_numpy``), the exact per-trajectory shapely scorer and the
synthetic scoring scenes. Only tests and benchmarks import them."""
