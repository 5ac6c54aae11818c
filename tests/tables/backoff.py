"""The backoff arguments the transfer-state tests pass to TransferState.fail."""

from typing import TypedDict


class Backoff(TypedDict):
    backoff_base: float
    backoff_cap: float


BACKOFF: Backoff = {"backoff_base": 2.0, "backoff_cap": 60.0}
