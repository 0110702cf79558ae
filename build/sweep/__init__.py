"""Build and measure several profiles and rank them by bytes on the device: records (pure data),
measurements against a real broker, runs and merging runners' results, and the command."""
