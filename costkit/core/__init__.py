"""Layer 1, core: money, time, YAML and errors. Imports nothing else of costkit."""
