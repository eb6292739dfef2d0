"""The local BSS OpenAPI test server (kept in the package as costkit.testing.bss_server for the demo)."""
import sys

from costkit.testing.bss_server import *  # noqa: F401,F403
from costkit.testing.bss_server import BSSServer, bill_item, main, sample_items  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
