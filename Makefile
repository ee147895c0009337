# Benchmarks (outside pytest; figures are printed, never asserted). docs/performance.md has the figures.
.PHONY: bench bench-full

# The CI-sized subset: a few minutes on 2 cores.
bench:
	uv run python -m benchmarks --quick

# The figures of docs/performance.md: about an hour (scale 1.0 end to end: see docs/performance.md).
bench-full:
	uv run python -m benchmarks
