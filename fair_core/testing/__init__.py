"""Test and benchmark helpers: stand-ins for real providers and models that run offline and fast."""
