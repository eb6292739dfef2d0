"""Layer 7, audit: the priced history reconciled against the bill, with every variance explained."""

_HOMES = {"build_audit": "costkit.audit.reconcile", "parse_tolerance": "costkit.audit.tolerance",
          "parse_floor": "costkit.audit.tolerance"}


def __getattr__(name):
    # Lazy, so that `import costkit.audit.<module>` does not load the whole audit.
    import importlib

    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    if name == "render_audit":
        # Compatibility path of the public `from costkit.audit import render_audit` (README): the renderer
        # lives in costkit.outputs.audit, a layer above; the package's own code imports it from there.
        return importlib.import_module("costkit.outputs.audit").render_audit
    raise AttributeError(name)
