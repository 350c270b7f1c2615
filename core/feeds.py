"""Streaming reader for import files: JSON Lines or CSV, plain or gzip, one record at a time with its line
number, so an import of any size runs in constant memory and can name each bad line.

Used by the import commands of every app (catalog is the app the others already import)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

FORMATS = ("jsonl", "csv")
_SUFFIX_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}
# CSV cells can hold long descriptions; the stdlib default (128 KiB) is kept generous but finite.
CSV_FIELD_LIMIT = 1024 * 1024


class FeedError(Exception):
    """The file as a whole cannot be read (missing, wrong format, corrupt gzip, not UTF-8)."""


@dataclass
class Record:
    """One line (JSONL) or row (CSV). `line` is the 1-based line where it starts; `data` is None when the
    line could not be parsed, and `error` says why."""

    line: int
    data: dict[str, Any] | None
    error: str = ""


def feed_format(path: Path, *, explicit: str | None = None) -> str:
    """The format of `path`: `explicit` if given, else from its suffix (`.gz` looked through)."""
    if explicit:
        if explicit not in FORMATS:
            raise FeedError(f"Unknown format {explicit!r}; use one of: {', '.join(FORMATS)}.")
        return explicit
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = _SUFFIX_FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise FeedError(
            f"Cannot tell the format of {path.name}: name it .jsonl, .csv (optionally .gz) or pass --format."
        )
    return fmt


class Feed:
    """An open import file. Iterate `records()`; `position()` is how far into the file (compressed bytes
    for .gz) reading has got, for a progress bar whose total is `size`."""

    def __init__(self, path: str | Path, *, fmt: str | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise FeedError(f"File not found: {self.path}")
        if not self.path.is_file():
            raise FeedError(f"Not a file: {self.path}")
        self.format = feed_format(self.path, explicit=fmt)
        self.size = self.path.stat().st_size
        self._raw: BinaryIO = self.path.open("rb")
        stream: BinaryIO = self._raw
        if self._raw.read(2) == b"\x1f\x8b":
            stream = gzip.GzipFile(fileobj=self._raw, mode="rb")  # type: ignore[assignment]
        self._raw.seek(0)
        # newline="" lets the csv module see embedded newlines inside quoted cells; utf-8-sig drops a BOM.
        self._text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        self.header: list[str] = []

    def position(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._text.close()
        self._raw.close()

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def records(self) -> Iterator[Record]:
        try:
            if self.format == "csv":
                yield from self._csv_records()
            else:
                yield from self._jsonl_records()
        except UnicodeDecodeError as exc:
            raise FeedError(f"{self.path.name} is not UTF-8 text ({exc.reason}).") from None
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise FeedError(f"{self.path.name} is not a readable gzip file ({exc}).") from None

    def _jsonl_records(self) -> Iterator[Record]:
        for number, line in enumerate(self._text, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line, parse_constant=_reject_constant)
            except (ValueError, RecursionError) as exc:
                yield Record(number, None, f"Not valid JSON: {exc}")
                continue
            if not isinstance(data, dict):
                yield Record(number, None, "Each line must be a JSON object.")
                continue
            yield Record(number, data)

    def _csv_records(self) -> Iterator[Record]:
        csv.field_size_limit(CSV_FIELD_LIMIT)
        reader = csv.reader(self._text, strict=True)
        try:
            self.header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise FeedError(f"{self.path.name} is empty: a CSV file needs a header row.") from None
        except csv.Error as exc:
            raise FeedError(f"{self.path.name} has an unreadable header row ({exc}).") from None
        if len(set(self.header)) != len(self.header) or not all(self.header):
            raise FeedError(f"{self.path.name}: header names must be unique and non-empty: {self.header}")
        width = len(self.header)
        end_of_previous = reader.line_num
        while True:
            start = end_of_previous + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                end_of_previous = reader.line_num
                yield Record(start, None, f"Unreadable CSV: {exc}")
                continue
            end_of_previous = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != width:
                yield Record(start, None, f"Has {len(row)} columns; the header has {width}.")
                continue
            yield Record(start, dict(zip(self.header, row, strict=True)))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def feed_batches(
    feed: Feed, *, size: int, limit: int | None = None, progress: bool = True
) -> Iterator[list[Record]]:
    """The feed's records in lists of `size`, with a tqdm bar over the file's bytes (on stderr).
    `limit` stops after that many records (for a quick look at a large file)."""
    bar = tqdm(
        total=feed.size, unit="B", unit_scale=True, desc=feed.path.name, disable=not progress, leave=True
    )
    batch: list[Record] = []
    seen = 0
    try:
        for record in feed.records():
            batch.append(record)
            seen += 1
            if len(batch) >= size:
                yield batch
                batch = []
                bar.update(feed.position() - bar.n)
            if limit is not None and seen >= limit:
                break
        if batch:
            yield batch
        bar.update(feed.position() - bar.n)
    finally:
        bar.close()


# Exit status of an import that kept its valid lines but rejected others: not 0, so that a script or a
# cron job sees the bad lines, and not 1, which means nothing was imported (a file error, or every line bad).
EXIT_SOME_REJECTED = 2


class FeedImportCommand(BaseCommand):
    """The shape every import command shares: FILE, --format, --batch-size, --limit, --no-progress; file
    errors become a CommandError (exit 1), each rejected line is reported on stderr by its number, and an
    import with rejected lines ends with a non-zero exit (`rejections_check`)."""

    default_batch_size = 1000

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to the file (.jsonl or .csv, optionally .gz)")
        parser.add_argument("--format", choices=FORMATS, help="override the format guessed from the name")
        parser.add_argument("--batch-size", type=int, default=self.default_batch_size)
        parser.add_argument("--limit", type=int, help="stop after this many lines (a quick look)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        self.rejected = 0
        self.lines = 0
        try:
            with Feed(options["file"], fmt=options["format"]) as feed:
                batches = feed_batches(
                    feed,
                    size=options["batch_size"],
                    limit=options["limit"],
                    progress=not options["no_progress"],
                )
                self.import_feed(feed, batches, **options)
        except FeedError as exc:
            raise CommandError(str(exc)) from None

    def import_feed(self, feed: Feed, batches: Iterator[list[Record]], **options) -> None:
        raise NotImplementedError

    def validated(
        self, feed: Feed, batch: list[Record], check: Callable[[Any], tuple[Any, dict]]
    ) -> list[Any]:
        """The clean values of a batch's valid records; every other record is rejected by its line number.
        In CSV an empty cell means "not given", so the stored value (or the default) stays."""
        valid = []
        for record in batch:
            self.lines += 1
            if record.data is None:
                self.reject(record.line, record.error)
                continue
            raw = record.data
            if feed.format == "csv":
                raw = {k: v for k, v in raw.items() if v != ""}
            clean, errors = check(raw)
            if errors:
                self.reject(record.line, errors)
            else:
                valid.append(clean)
        return valid

    def rejections_check(self, *, lines: int, what: str = "line") -> None:
        """Call after the summary: exit 1 when every one of `lines` was rejected (nothing imported), exit
        EXIT_SOME_REJECTED when some were (the valid ones are imported; each bad one is reported above)."""
        if not self.rejected:
            return
        if self.rejected == lines:
            raise CommandError(f"Every {what} was rejected; nothing was imported.")
        raise CommandError(
            f"{self.rejected} of {lines} {what}s rejected (each reported above by its line number); "
            f"the other {lines - self.rejected} were imported.",
            returncode=EXIT_SOME_REJECTED,
        )

    def reject(self, line: int, errors: dict[str, list[str]] | str) -> None:
        self.rejected += 1
        if isinstance(errors, str):
            reason = errors
        else:
            reason = "; ".join(f"{field}: {' '.join(map(str, msgs))}" for field, msgs in errors.items())
        # through tqdm, so that the line is printed above the progress bar instead of through it
        tqdm.write(f"line {line}: rejected: {reason}", file=self.stderr._out)
