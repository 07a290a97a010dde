"""`make soak`: the service under sustained mixed load with hot reloads (see bench/README.md, *Soak*)."""
