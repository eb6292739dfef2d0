"""Layer 2, sources: reading the outside world (IMM task records, OSS object facts, bills) into plain records."""
