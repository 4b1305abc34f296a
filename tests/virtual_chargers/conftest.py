"""Helpers for virtual-charger tests: run a coroutine with a hard timeout in a fresh event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest


@pytest.fixture
def arun() -> Callable[..., Any]:
    """Run ``coro`` to completion in a new loop, failing after ``timeout_s`` wall seconds."""

    def run(coro: Awaitable[Any], timeout_s: float = 60.0) -> Any:
        async def bounded() -> Any:
            return await asyncio.wait_for(coro, timeout_s)

        return asyncio.run(bounded())

    return run
