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


class ReplaySource(Source[ReplayConfig]):
    """Replays alerts from ``.avro`` files, directories of them, or ``.tar``/``.tar.gz`` archives."""

    Config: ClassVar[type[ComponentConfig]] = ReplayConfig

    def setup(self, context: RunContext) -> None:
        check_paths(self.config.paths)

    def expected_count(self) -> int | None:
        return count_messages(self.config.paths)

    def messages(self) -> Iterator[RawMessage]:
        return iter_messages(self.config.paths)
