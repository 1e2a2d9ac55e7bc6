"""``dead-letters``: the original messages of a dead-letters file, to run them again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from starling.core.component import ComponentConfig, RawMessage, RunContext, Source
from starling.core.deadletter import read_dead_letters
from starling.errors import ConfigError


class DeadLettersConfig(ComponentConfig):
    path: Path = Field(description="a dead-letters.jsonl file")
    stages: tuple[str, ...] | None = Field(None, description="only the letters refused by these stages")


class DeadLettersSource(Source[DeadLettersConfig]):
    """Gives back the original messages of a dead-letters file, to run them again once the cause is
    fixed (``starling deadletters replay``). The file is read whole at setup, so a run that appends its
    own dead letters to the same folder cannot feed on them."""

    Config: ClassVar[type[ComponentConfig]] = DeadLettersConfig

    def setup(self, context: RunContext) -> None:
        if not self.config.path.is_file():
            raise ConfigError(f"no dead-letters file at {self.config.path}")
        wanted = self.config.stages
        self.letters = [
            RawMessage(letter.payload, f"replay:{letter.origin}")
            for letter in read_dead_letters(self.config.path)
            if wanted is None or letter.stage in wanted
        ]

    def expected_count(self) -> int | None:
        return len(self.letters) if hasattr(self, "letters") else None

    def messages(self) -> Iterator[RawMessage]:
        return iter(self.letters)
