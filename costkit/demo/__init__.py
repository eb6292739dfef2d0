"""The demo: a synthetic month collected, billed and audited against the local servers."""
