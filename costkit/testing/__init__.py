"""Test and demo support shipped with the package (a local IMM server on 127.0.0.1)."""
