"""auto-clip benchmarks: `python benchmarks/run.py [--quick]`."""
