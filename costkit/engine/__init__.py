"""Layer 6, engine: the one pricing engine, for forecasts (scenarios) and for the stored history."""
