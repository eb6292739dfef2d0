"""Advice rules, one module each. The contract: a module has `NAME` (a short id), `TITLE` and
`find(ctx) -> list[Proposal]`; it reads the month's priced context (costkit.advise.context.AdviseContext)
and returns zero or more proposals (costkit.advise.whatif.Proposal), each with the what-if it wants the
engine to price. A rule never prices the month itself, and adding one touches neither the engine nor the
other rules: list it in costkit.advise.run.RULES."""
