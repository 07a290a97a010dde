"""Other model servers, run on the same model and the same request bodies as the service (bench.mlserver)."""
