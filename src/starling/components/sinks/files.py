"""``files``: each filter's matches as JSON lines and Avro files."""

from __future__ import annotations

from typing import IO, Any, ClassVar, Literal

import fastavro
from fastavro.write import Writer
from pydantic import Field

from starling.alert.export import OUTPUT_SCHEMA, json_bytes, output_record
from starling.core.component import Batch, ComponentConfig, RunContext, Sink


class FileSinkConfig(ComponentConfig):
    directory: str = Field("matches", description="folder for the files (relative to the output directory)")
    formats: tuple[Literal["jsonl", "avro"], ...] = Field(("jsonl", "avro"), min_length=1)
    filters: tuple[str, ...] | None = Field(None, description="filters whose matches to write (default: all)")
    include_cutouts: bool = False


class FileSink(Sink[FileSinkConfig]):
    """Writes each filter's matches to ``<filter>.jsonl`` and/or ``<filter>.avro`` (Starling's
    survey-neutral record, schema ``starling.v1.alert``)."""

    Config: ClassVar[type[ComponentConfig]] = FileSinkConfig

    def setup(self, context: RunContext) -> None:
        self.directory = context.output_dir / self.config.directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._schema = fastavro.parse_schema(OUTPUT_SCHEMA)
        self._json: dict[str, IO[bytes]] = {}
        self._avro: dict[str, tuple[IO[bytes], Writer]] = {}
        self.written: dict[str, int] = {}

    def _json_file(self, filter_name: str) -> IO[bytes]:
        if filter_name not in self._json:
            self._json[filter_name] = (self.directory / f"{filter_name}.jsonl").open("ab")
        return self._json[filter_name]

    def _avro_writer(self, filter_name: str) -> Writer:
        if filter_name not in self._avro:
            path = self.directory / f"{filter_name}.avro"
            # fastavro appends to an existing container (reusing its header and sync marker) when the
            # file is opened a+b and is not empty; a new file gets a header.
            handle = path.open("a+b")
            self._avro[filter_name] = (handle, Writer(handle, self._schema, codec="deflate"))
        return self._avro[filter_name][1]

    def write(self, batch: Batch) -> None:
        wanted = self.config.filters
        for filter_name, matched in batch.matches.items():
            if wanted is not None and filter_name not in wanted:
                continue
            for alert in matched:
                record = output_record(alert, filter_name, self.config.include_cutouts)
                if "jsonl" in self.config.formats:
                    self._json_file(filter_name).write(json_bytes(record) + b"\n")
                if "avro" in self.config.formats:
                    self._avro_writer(filter_name).write(record)
            self.written[filter_name] = self.written.get(filter_name, 0) + len(matched)

    def flush(self) -> None:
        for handle in self._json.values():
            handle.flush()
        for handle_bytes, writer in self._avro.values():
            writer.flush()
            handle_bytes.flush()

    def close(self) -> None:
        self.flush()
        for handle in self._json.values():
            handle.close()
        for handle_bytes, _ in self._avro.values():
            handle_bytes.close()

    def describe(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "matches_written": dict(self.written)}
