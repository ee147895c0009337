"""Fixtures of the library tests."""

from __future__ import annotations

import pytest

from batch_assets.lib.engine import ChunkTransform


@pytest.fixture
def shared_queries(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many files each shared query of small files held (ChunkTransform.apply_files), in order."""
    sizes: list[int] = []
    apply_files = ChunkTransform.apply_files

    def counting(self: ChunkTransform, batches: list) -> list:
        sizes.append(len(batches))
        return apply_files(self, batches)

    monkeypatch.setattr(ChunkTransform, "apply_files", counting)
    return sizes
