"""Jinja2 report templates and styles."""
