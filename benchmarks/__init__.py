"""Scripts that measure speed and accuracy and write benchmarks/results/."""
