"""Event loop benchmarks; run `python benchmarks/run.py --help` (see README.md here)."""
