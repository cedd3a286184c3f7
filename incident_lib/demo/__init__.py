"""Synthetic telemetry: the demo incident (story, generator, logs) and the fault scenarios."""
