"""Credentials for every SDK costkit drives (IMM, BSS, OSS): the Alibaba Cloud default chain, or
explicit keys (tests, notebooks). Secrets are passed to the SDKs and never printed, logged or stored."""
from __future__ import annotations

from costkit.core.errors import RuntimeFailure, one_line


def static_keys(credentials) -> tuple[str, str, str | None]:
    """(access_key_id, access_key_secret, security_token or None) from a dict with those keys or a tuple
    (access_key_id, access_key_secret[, security_token])."""
    if isinstance(credentials, dict):
        return (credentials.get("access_key_id"), credentials.get("access_key_secret"),
                credentials.get("security_token"))
    ak, sk, *rest = credentials
    return ak, sk, (rest[0] if rest else None)


def default_chain():
    """The Alibaba Cloud default credential chain client; RuntimeFailure (exit 1) when it finds nothing."""
    from alibabacloud_credentials.client import Client as CredClient
    try:
        return CredClient()
    except Exception as e:  # the chain found nothing usable
        raise RuntimeFailure(f"no Alibaba Cloud credentials: {one_line(e, 200)}") from None


def tea_config_kwargs(credentials=None) -> dict:
    """Keyword arguments for `alibabacloud_tea_openapi.models.Config` (IMM, BSS): None for the default
    chain, a credentials client (has `get_credential`), or static keys (see `static_keys`)."""
    if credentials is None:
        return {"credential": default_chain()}
    if hasattr(credentials, "get_credential"):
        return {"credential": credentials}
    ak, sk, token = static_keys(credentials)
    kw = {"access_key_id": ak, "access_key_secret": sk}
    if token:
        kw["security_token"] = token
    return kw
