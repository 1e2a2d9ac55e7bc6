"""``synthetic``: a synthetic night of ZTF and Rubin alerts, made as it is read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field

from starling.core.component import ComponentConfig, RawMessage, Source
from starling.synthetic.generator import SyntheticConfig, SyntheticNight, SyntheticSurvey
from starling.synthetic.long_past import HistoryProfile


class SyntheticSourceConfig(ComponentConfig):
    alerts: int = Field(5000, ge=1)
    alerts_per_visit: int = Field(500, ge=1)
    objects: int | None = Field(None, ge=1, description="distinct objects per survey; default alerts/6")
    surveys: tuple[SyntheticSurvey, ...] = ("ztf", "rubin")
    seed: int = 42
    cutouts: bool = True
    history: HistoryProfile = Field(
        "short",
        description="short: a few earlier epochs; deep: as Rubin's deep fields (realistic sizes); wide",
    )


class SyntheticSource(Source[SyntheticSourceConfig]):
    """A synthetic night of ZTF and Rubin alerts in their real wire formats (nothing to download)."""

    Config: ClassVar[type[ComponentConfig]] = SyntheticSourceConfig

    def expected_count(self) -> int:
        return self.config.alerts

    def messages(self) -> Iterator[RawMessage]:
        night = SyntheticNight(SyntheticConfig(**self.config.model_dump()))
        for origin, payload in night:
            yield RawMessage(payload, origin)
