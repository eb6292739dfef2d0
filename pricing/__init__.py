"""Bundled price books (YAML); see README.md in this folder."""
