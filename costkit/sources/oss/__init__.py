"""OSS object and bucket facts: the inventory."""
