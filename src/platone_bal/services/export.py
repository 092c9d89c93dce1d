"""`bal export`: a producer's readings (optionally one device, a window of measurement
time) written to a file for other platforms: JSON-LD (SAREF/SARGON, `domain/semantic`),
CSV or Parquet, a page of the store at a time, so a year of a meter never sits in
memory. Each reading keeps its place in the log and its proof's URL, so what leaves the
BAL can still be checked against it. The file appears whole (written aside, then
renamed) or not at all.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from platone_bal.domain.semantic import CONTEXT, measurement
from platone_bal.ports import ReadingQuery, ReadingStore, StoredReading


class Format(StrEnum):
    JSONLD = "jsonld"
    CSV = "csv"
    PARQUET = "parquet"


PAGE = 5000
COLUMNS = (
    "id", "log", "index", "producer", "owner", "device", "time", "measurand", "value",
    "unit", "attrs", "format", "received", "message", "proof",
)  # fmt: skip
"""The flat formats' columns: the reading as the API gives it, and its proof's URL."""


def pages(store: ReadingStore, query: ReadingQuery) -> Iterator[list[StoredReading]]:
    """The query's readings, a page at a time, by id (keyset: no page is read twice)."""
    after = query.after
    while True:
        page = store.readings(replace(query, after=after, limit=PAGE, newest_first=False))
        if not page:
            return
        yield page
        after = page[-1].id


def export_readings(
    store: ReadingStore,
    query: ReadingQuery,
    format: Format,
    out: Path,
    base_url: str,
    progress: Callable[[int], None] = lambda _: None,
) -> int:
    """Write the readings `query` selects to `out`; how many. `base_url` is the node's
    public address, for each reading's proof link."""
    writer = {Format.JSONLD: _jsonld, Format.CSV: _csv, Format.PARQUET: _parquet}[format]
    temporary = out.with_name(f".{out.name}.writing")
    try:
        count = writer(pages(store, query), temporary, base_url.rstrip("/"), progress)
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)
    return count


def _proof(base_url: str, reading: StoredReading) -> str:
    return f"{base_url}/v1/readings/{reading.id}/proof"


def measurement_of(reading: StoredReading, proof_url: str) -> dict[str, Any]:
    """A stored reading as a node of the graph: what the API answers and exports write."""
    return measurement(
        log=reading.log,
        index=reading.index,
        producer=reading.producer,
        device=reading.device,
        time=reading.time,
        measurand=reading.measurand,
        value=reading.value,
        unit=reading.unit,
        format=reading.format,
        received=reading.received,
        proof_url=proof_url,
        attrs=reading.attrs,
    )


def _row(base_url: str, reading: StoredReading) -> list[object]:
    return [
        reading.id, reading.log, reading.index, reading.producer, reading.owner,
        reading.device, reading.time, reading.measurand, reading.value, reading.unit,
        json.dumps(reading.attrs, separators=(",", ":")), reading.format, reading.received,
        reading.message, _proof(base_url, reading),
    ]  # fmt: skip


def _jsonld(
    found: Iterator[list[StoredReading]], path: Path, base_url: str, progress: Callable[[int], None]
) -> int:
    """One JSON-LD document, its @graph written item by item."""
    count = 0
    with path.open("w") as file:
        file.write('{"@context": ' + json.dumps(CONTEXT) + ', "@graph": [\n')
        for page in found:
            for reading in page:
                node = measurement_of(reading, _proof(base_url, reading))
                file.write((",\n" if count else "") + json.dumps(node))
                count += 1
            progress(count)
        file.write("\n]}\n")
    return count


def _csv(
    found: Iterator[list[StoredReading]], path: Path, base_url: str, progress: Callable[[int], None]
) -> int:
    count = 0
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for page in found:
            writer.writerows(_row(base_url, reading) for reading in page)
            count += len(page)
            progress(count)
    return count


def _parquet(
    found: Iterator[list[StoredReading]], path: Path, base_url: str, progress: Callable[[int], None]
) -> int:
    """One row group per page of the store (pyarrow imported here: every `bal` command
    imports this module, few write Parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [(name, pa.int64() if name in ("id", "index") else pa.string()) for name in COLUMNS]
    )
    count = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for page in found:
            rows = [_row(base_url, reading) for reading in page]
            columns = {name: [row[n] for row in rows] for n, name in enumerate(COLUMNS)}
            writer.write_table(pa.table(columns, schema=schema))
            count += len(page)
            progress(count)
        if count == 0:
            writer.write_table(pa.table({name: [] for name in COLUMNS}, schema=schema))
    return count
