"""Layer 4, model: the usage model (what one splice consumes), scenarios and settings."""
