"""Rendering: Markdown/HTML displays, plots, templates, notebook export, report lint."""
