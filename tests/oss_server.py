"""The local OSS test server (kept in the package as costkit.testing.oss_server so the demo can use it)."""
import sys

from costkit.testing.oss_server import (OSSBucket, OSSObject, OSSServer, http_date, list_time,  # noqa: F401
                                        main)

if __name__ == "__main__":
    sys.exit(main())
