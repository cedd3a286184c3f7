"""Pure analysis over DataFrames (no I/O): onset, severity, templates, spikes, anomalies,
suspects, whys, timeline."""
