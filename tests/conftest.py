"""Shared test setup: traffic stays on 127.0.0.1 and credentials are explicit test keys."""
import os

# The credential chain reads these at import time; the Makefile and .ci/run set them too.
os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
for _v in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(_v, None)

TEST_AK = "test-ak"
TEST_SK = "test-secret"
