"""pytest-benchmark micro-benchmarks of uvcffi's hot paths; see README.md here."""
