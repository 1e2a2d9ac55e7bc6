"""Built-in sources: replay of files, and a synthetic night."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from starling.components.inputs import check_paths, count_messages, iter_messages
from starling.runtime.component import ComponentConfig, RawMessage, RunContext, Source
from starling.synthetic.generator import SyntheticConfig, SyntheticNight, SyntheticSurvey


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


class SyntheticSourceConfig(ComponentConfig):
    alerts: int = Field(5000, ge=1)
    alerts_per_visit: int = Field(500, ge=1)
    objects: int | None = Field(None, ge=1, description="distinct objects per survey; default alerts/6")
    surveys: tuple[SyntheticSurvey, ...] = ("ztf", "rubin")
    seed: int = 42
    cutouts: bool = True


class SyntheticSource(Source[SyntheticSourceConfig]):
    """A synthetic night of ZTF and Rubin alerts in their real wire formats (nothing to download)."""

    Config: ClassVar[type[ComponentConfig]] = SyntheticSourceConfig

    def expected_count(self) -> int:
        return self.config.alerts

    def messages(self) -> Iterator[RawMessage]:
        night = SyntheticNight(SyntheticConfig(**self.config.model_dump()))
        for origin, payload in night:
            yield RawMessage(payload, origin)


class DeadLettersConfig(ComponentConfig):
    path: Path = Field(description="a dead-letters.jsonl file")
    stages: tuple[str, ...] | None = Field(None, description="only the letters refused by these stages")


class DeadLettersSource(Source[DeadLettersConfig]):
    """Gives back the original messages of a dead-letters file, to run them again once the cause is
    fixed (``starling deadletters replay``). The file is read whole at setup, so a run that appends its
    own dead letters to the same folder cannot feed on them."""

    Config: ClassVar[type[ComponentConfig]] = DeadLettersConfig

    def setup(self, context: RunContext) -> None:
        from starling.errors import ConfigError
        from starling.runtime.deadletter import read_dead_letters

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
