"""The `--endpoint` option of the Alibaba Cloud clients (IMM, BSS): a URL or a bare host name."""
from __future__ import annotations

from urllib.parse import urlsplit

from costkit.core.errors import BadInput

def parse_endpoint(endpoint: str | None, region: str) -> tuple[str, str]:
    """`http://host:port`, `https://host` or a bare host name (https); return (host[:port], protocol)."""
    if not endpoint:
        return f"imm.{region}.aliyuncs.com", "https"
    text = endpoint.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
                or parts.query or parts.username:
            raise BadInput(f"expected http://host[:port], https://host[:port] or a host name, got {endpoint!r}",
                           field="--endpoint")
        try:
            parts.port
        except ValueError:
            raise BadInput(f"bad port in {endpoint!r}", field="--endpoint") from None
        return parts.netloc, parts.scheme
    if not text or any(c in text for c in "/ ?#@"):
        raise BadInput(f"expected http://host[:port], https://host[:port] or a host name, got {endpoint!r}",
                       field="--endpoint")
    return text, "https"
