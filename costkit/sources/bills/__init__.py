"""Bills: the console CSV, the BSS API, and the mapping of bill lines onto price-book items."""
