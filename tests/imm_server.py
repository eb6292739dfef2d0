"""The local IMM test server (kept in the package as costkit.testing.imm_server so the demo can use it)."""
import sys

from costkit.testing.imm_server import *  # noqa: F401,F403
from costkit.testing.imm_server import (Fault, IMMServer, make_task, main, spread_tasks,  # noqa: F401
                                        synthetic_month_tasks)

if __name__ == "__main__":
    sys.exit(main())
