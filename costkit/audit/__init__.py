"""Layer 7, audit: the priced history reconciled against the bill, with every variance explained."""


def __getattr__(name):
    # Lazy, so that `import costkit.audit.<module>` does not load the whole audit.
    if name in ("build_audit", "render_audit", "parse_tolerance", "parse_floor"):
        from costkit.audit import reconcile

        return getattr(reconcile, name)
    raise AttributeError(name)
