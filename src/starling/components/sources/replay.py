"""``replay``: alerts from files, directories of them, or tar archives of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from starling.components.sources.files import check_paths, count_messages, iter_messages
from starling.core.component import ComponentConfig, RawMessage, RunContext, Source


class ReplayConfig(ComponentConfig):
    paths: list[Path] = Field(min_length=1, description="files, directories or tar archives of alerts")
    repeat: int = Field(
        1, ge=1, le=100_000, description="replay them this many times (to measure on a few real samples)"
    )


class ReplaySource(Source[ReplayConfig]):
    """Replays alerts from ``.avro`` files, directories of them, or ``.tar``/``.tar.gz`` archives."""

    Config: ClassVar[type[ComponentConfig]] = ReplayConfig

    def setup(self, context: RunContext) -> None:
        check_paths(self.config.paths)

    def expected_count(self) -> int | None:
        count = count_messages(self.config.paths)
        return None if count is None else count * self.config.repeat

    def messages(self) -> Iterator[RawMessage]:
        for _ in range(self.config.repeat):
            yield from iter_messages(self.config.paths)
