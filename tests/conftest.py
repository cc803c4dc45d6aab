"""Suite-wide fixtures: what a test module leaves on the machine's services is removed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import delete_created_vhosts


@pytest.fixture(autouse=True, scope="module")
def _delete_module_vhosts() -> Iterator[None]:
    yield
    delete_created_vhosts()
