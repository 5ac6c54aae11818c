"""The optional token of the views: ``Authorization: Bearer <token>``, or ``?token=<token>`` for a browser."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

BEARER = "bearer "


def presented_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    authorization = headers.get("Authorization", "")
    if authorization[: len(BEARER)].lower() == BEARER:
        return authorization[len(BEARER) :].strip()
    return query.get("token")


def auth_headers(token: str) -> dict[str, str]:
    """What a client of the views (another worker, a command) sends to pass the guard."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def authorized(required_token: str, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
    """Whether a request may see the views; every request may when no token is configured."""
    if not required_token:
        return True
    presented = presented_token(headers, query)
    return presented is not None and hmac.compare_digest(presented.encode(), required_token.encode())
