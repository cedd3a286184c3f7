"""Executing an investigation: alerts and flags -> Incident, the papermill runner with its own
status file, replay from recorded evidence, export archives."""
