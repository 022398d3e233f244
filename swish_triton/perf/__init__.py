"""Performance: perf_analyzer discovery, concurrency sweeps and their reports, Triton statistics, capacity planning."""
