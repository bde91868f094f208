from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.kit.loopback import Canary, start_canary


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    state = await start_canary()
    try:
        yield state
    finally:
        await state.close()
