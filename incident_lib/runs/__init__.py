"""A run folder (runs/<id>/): incident.json, evidence, findings, status; opening one by id."""
