"""Layer 8, outputs: renderers that take a finished model (text, JSON, CSV, FOCUS, HTML, charts)."""
