"""Layer 5, prices: price books, the pricer that finds the price in force, and prices learnt from a bill."""
