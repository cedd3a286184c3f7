"""Core types every layer uses: Incident and Severity (model), the one exception tree (errors),
config, safe storage, named signals, redaction, text safety, notes schema and bundled resources.
Imports nothing else from incident_lib."""
