"""Savings advice (`costkit advise`): rules find waste in a priced month and ask the one engine to replay the
same tasks under a change (costkit.advise.run documents the flow)."""
