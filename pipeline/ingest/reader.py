"""Finding input files and turning them into numbered raw records, without ever raising on bad bytes.

A file may be JSONL/NDJSON, a JSON document (object or array), or CSV, each optionally gzip or
zstd compressed. Every physical line (JSONL, CSV) or array element (JSON) becomes one RawRecord,
so the ingest can account for each: decoded, blank, or undecodable with a reason.
"""

from __future__ import annotations

import codecs
import csv
import fnmatch
import glob
import gzip
import io
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import orjson
import zstandard
from isal import igzip, isal_zlib

from pipeline.ingest import file_kinds

IGNORE_FILE = ".logauditignore"
DATA_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".har", ".txt", ".log", *file_kinds.EXTRA_SUFFIXES)
COMPRESSED_SUFFIXES = (".gz", ".zst")
# Records longer than this are quarantined unread (`record_too_large`): far above any real API call
# (a 1M-token prompt is ~4 MB of JSON), and it bounds the memory one line can take.
MAX_RECORD_BYTES = 64 << 20
SNIPPET_CHARS = 300

csv.field_size_limit(1 << 30)


@dataclass
class RawRecord:
    line: int
    value: Any = None
    blank: bool = False
    error: tuple[str, str] | None = None  # (reason, detail) when the bytes did not decode
    snippet: str = ""


class FileReadError(Exception):
    """The file as a whole could not be read (unreadable, corrupt compression, invalid JSON document)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SkippedPath:
    path: str
    reason: str


def _ignored_patterns(folder: Path) -> list[str]:
    f = folder / IGNORE_FILE
    if not f.is_file():
        return []
    lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")] + [IGNORE_FILE]


def is_data_file(path: Path) -> bool:
    name = path.name.lower()
    for c in COMPRESSED_SUFFIXES:
        if name.endswith(c):
            name = name[: -len(c)]
    return name.endswith(DATA_SUFFIXES)


def discover(paths: list[str]) -> tuple[list[Path], list[SkippedPath]]:
    """Expand files, directories (recursively, honouring `.logauditignore`) and globs, sorted and unique."""
    found: dict[str, Path] = {}
    skipped: list[SkippedPath] = []
    for spec in paths:
        candidates = [Path(p) for p in sorted(glob.glob(spec, recursive=True))] if glob.has_magic(spec) else [Path(spec)]
        if not candidates:
            skipped.append(SkippedPath(spec, "no_match"))
        for p in candidates:
            if p.is_dir():
                _walk(p, found, skipped)
            elif p.exists() and not p.is_file():
                skipped.append(SkippedPath(str(p), _special_kind(p)))
            elif p.exists():
                found[str(p)] = p  # an explicitly named file is always read
            else:
                skipped.append(SkippedPath(str(p), "not_found"))
    return [found[k] for k in sorted(found)], skipped


def _walk(root: Path, found: dict[str, Path], skipped: list[SkippedPath]) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        folder = Path(dirpath)
        patterns = _ignored_patterns(folder)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not _match(d, patterns))
        for name in sorted(filenames):
            p = folder / name
            if name.startswith(".") or _match(name, patterns):
                continue
            if not p.is_file():  # a FIFO would block the read forever; sockets and devices are not logs
                skipped.append(SkippedPath(str(p), _special_kind(p)))
            elif is_data_file(p):
                found[str(p)] = p
            else:
                skipped.append(SkippedPath(str(p), "not_a_log_file_extension"))


def _special_kind(p: Path) -> str:
    """Why a path that exists is not read: it is not a regular file."""
    kind = ("fifo" if p.is_fifo() else "socket" if p.is_socket() else
            "device" if p.is_block_device() or p.is_char_device() else "broken_link" if p.is_symlink() else "special")
    return f"not_a_regular_file ({kind})"


def _match(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, pat) for pat in patterns)


class _CountingReader(io.RawIOBase):
    """Counts compressed bytes consumed, for a progress bar over the bytes on disk."""

    def __init__(self, raw: io.BufferedReader, on_bytes: Callable[[int], None]) -> None:
        self._raw = raw
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._raw.readinto(b)
        if n:
            self._on_bytes(n)
        return n or 0


class _Decoded(io.RawIOBase):
    """A raw stream serving bytes that `_refill` produces block by block (b"" at the end)."""

    def __init__(self) -> None:
        self._out = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def _refill(self) -> bytes | None:
        """The next decoded block; None at the end of the input."""
        raise NotImplementedError

    def readinto(self, b: Any) -> int:
        while self._pos >= len(self._out):
            block = self._refill()
            if block is None:
                return 0
            self._out, self._pos = block, 0
        n = min(len(b), len(self._out) - self._pos)
        b[:n] = self._out[self._pos:self._pos + n]
        self._pos += n
        return n


class _ZstdReader(_Decoded):
    """Decompresses a zstd stream of one or more frames, and fails at the end of input when the
    last frame is incomplete (zstandard's stream_reader reports a silent EOF there, so a file cut
    off mid-stream looked complete)."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self._frame = zstandard.ZstdDecompressor().decompressobj()
        self._in_frame = False

    def _refill(self) -> bytes | None:
        chunk = self._raw.read(1 << 20)
        if not chunk:
            if self._in_frame:
                raise zstandard.ZstdError("truncated zstd stream: the input ends inside a frame")
            return None
        out = []
        while chunk:
            self._in_frame = True
            out.append(self._frame.decompress(chunk))
            if not self._frame.eof:
                break
            chunk, self._in_frame = self._frame.unused_data, False
            self._frame = zstandard.ZstdDecompressor().decompressobj()
        return b"".join(out)


UNICODE_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"),
)


def wide_encoding(head: bytes) -> str | None:
    """UTF-16 or UTF-32 when `head` starts with that byte-order mark (Windows tools write them)."""
    return next((enc for bom, enc in UNICODE_BOMS if head.startswith(bom)), None)


class _Utf8Transcoder(_Decoded):
    """Re-encodes a UTF-16/32 text stream as UTF-8 bytes, so every reader downstream sees UTF-8.
    Invalid code units raise UnicodeDecodeError (a file-level error) after the text before them."""

    def __init__(self, stream: IO[bytes], encoding: str) -> None:
        super().__init__()
        self._raw = stream
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self._error: UnicodeDecodeError | None = None

    def _refill(self) -> bytes | None:
        if self._error is not None:
            raise self._error
        chunk = self._raw.read(1 << 18)
        pending = self._decoder.buffer  # type: ignore[attr-defined]  # bytes held from the last chunk
        try:
            text = self._decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as e:
            self._error = e
            self._decoder.buffer = b""  # type: ignore[attr-defined]
            text = self._decoder.decode((pending + chunk)[: e.start])
        return text.encode("utf-8") if chunk or text else None


def open_binary(path: Path, on_bytes: Callable[[int], None] = lambda n: None) -> IO[bytes]:
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller via the returned stream
    stream: IO[bytes] = io.BufferedReader(_CountingReader(raw, on_bytes), buffer_size=1 << 20)
    name = path.name.lower()
    if name.endswith(".gz"):
        # ISA-L's inflate (python-isal, a drop-in for gzip.GzipFile): 2.8x less CPU than zlib's on
        # these logs (0.9 s vs 2.5 s for 171 MB gzipped), the same bytes and the same errors.
        stream = io.BufferedReader(igzip.GzipFile(fileobj=stream), buffer_size=1 << 20)  # type: ignore[arg-type]
    elif name.endswith(".zst"):
        stream = io.BufferedReader(_ZstdReader(stream), buffer_size=1 << 20)
    encoding = wide_encoding(stream.peek(4)[:4])  # type: ignore[attr-defined]
    if encoding:
        stream = io.BufferedReader(_Utf8Transcoder(stream, encoding), buffer_size=1 << 20)
    return stream


def _logical_name(path: Path) -> str:
    name = path.name.lower()
    for c in COMPRESSED_SUFFIXES:
        if name.endswith(c):
            name = name[: -len(c)]
    return name


# isal's stubs declare `error` as an instance; at run time it is the exception class
_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (
    EOFError, zlib.error, cast(type[BaseException], isal_zlib.error), gzip.BadGzipFile, zstandard.ZstdError)


def splittable(path: Path) -> bool:
    """Plain (uncompressed) line-oriented files can be cut into byte ranges and read in parallel;
    SSE captures and concatenated JSON dumps cannot (a record spans several lines)."""
    if not path.name.lower().endswith((".jsonl", ".ndjson", ".txt", ".log")) or file_kinds.sniff_path(path) is not None:
        return False
    with open(path, "rb") as f:
        return wide_encoding(f.read(4)) is None  # byte ranges of UTF-16/32 text are not lines


def split_ranges(path: Path, chunk_bytes: int) -> list[tuple[int, int, int]]:
    """Cut a line-oriented file into ~chunk_bytes ranges at line boundaries.

    Returns (start, end, first_line) triples; counting newlines is one fast sequential pass and
    gives every range its true starting line number for lineage.
    """
    ranges: list[tuple[int, int, int]] = []
    start, line, pos = 0, 1, 0
    lines_in_range = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 22)
            if not block:
                break
            pos += len(block)
            lines_in_range += block.count(b"\n")
            if pos - start >= chunk_bytes:
                while True:  # finish the current line, in bounded steps (it may be huge)
                    tail = f.readline(1 << 20)
                    pos += len(tail)
                    if not tail or tail.endswith(b"\n"):
                        lines_in_range += tail.count(b"\n")
                        break
                ranges.append((start, pos, line))
                line += lines_in_range
                start, lines_in_range = pos, 0
    if pos > start or not ranges:
        ranges.append((start, pos, line))
    return ranges


def read_range(
    path: Path, start: int, end: int, first_line: int, on_bytes: Callable[[int], None] = lambda n: None,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[RawRecord]:
    """Records of one byte range of a JSONL file (see split_ranges)."""
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError as e:
        raise FileReadError("unreadable_file", f"cannot open: {e.strerror or e}") from e
    with f:
        f.seek(start)
        pos, line = start, first_line
        try:
            for raw in bounded_lines(f, max_record_bytes):
                if pos >= end:
                    break
                size = raw.size if isinstance(raw, Oversized) else len(raw)
                pos += size
                on_bytes(size)
                yield decode_line(raw, line)
                line += 1
        except OSError as e:
            raise FileReadError("unreadable_file", f"read failed: {e}") from e


@dataclass(frozen=True)
class Oversized:
    """A line longer than the per-record limit: only its size and first bytes are kept."""

    size: int
    head: bytes
    limit: int


def bounded_lines(stream: IO[bytes], limit: int) -> Iterator[bytes | Oversized]:
    """The lines of a binary stream, never holding more than `limit` bytes of one line: a longer
    line is skipped in 1 MiB steps and yielded as `Oversized` (one 1 GB record used to take the
    whole ingest down, good lines included)."""
    while True:
        raw = stream.readline(limit + 1)
        if not raw:
            return
        if len(raw) <= limit or raw.endswith(b"\n"):
            yield raw
            continue
        size, head = len(raw), raw[:SNIPPET_CHARS]
        del raw
        while True:
            more = stream.readline(1 << 20)
            size += len(more)
            if not more or more.endswith(b"\n"):
                break
        yield Oversized(size, head, limit)


def read_records(
    path: Path, on_bytes: Callable[[int], None] = lambda n: None, max_record_bytes: int = MAX_RECORD_BYTES
) -> Iterator[RawRecord]:
    """Yield every record of a file. Raises FileReadError (after yielding what was readable)."""
    if _logical_name(path).endswith(file_kinds.ZIP_SUFFIXES):
        yield from file_kinds.read_inspect_zip(path, RawRecord, FileReadError, on_bytes)
        return
    try:
        stream = open_binary(path, on_bytes)
    except _DECOMPRESS_ERRORS as e:
        raise FileReadError("corrupt_compressed_file", f"decompression failed: {e}") from e
    except OSError as e:
        raise FileReadError("unreadable_file", f"cannot open: {e.strerror or e}") from e
    try:
        name = _logical_name(path)
        if name.endswith(".csv"):
            yield from _read_csv(stream)
        elif name.endswith(file_kinds.YAML_SUFFIXES):
            yield from file_kinds.read_yaml(stream, RawRecord, FileReadError)
        elif name.endswith((".json", ".har")):
            yield from _read_json_document(stream)
        else:
            kind = file_kinds.sniff(file_kinds.peek(stream))
            if kind == "sse":
                yield from file_kinds.read_sse(stream, RawRecord)
            elif kind == "concatenated_json":
                yield from file_kinds.read_concatenated(stream, RawRecord)
            else:
                yield from _read_jsonl(stream, max_record_bytes)
    except _DECOMPRESS_ERRORS as e:
        raise FileReadError("corrupt_compressed_file", f"decompression failed: {e}") from e
    except UnicodeDecodeError as e:
        raise FileReadError("invalid_utf16_or_32", f"the file starts with a {e.encoding} byte-order mark but "
                            f"is not valid {e.encoding} at byte {e.start} of a block: {e.reason}") from e
    except OSError as e:
        raise FileReadError("unreadable_file", f"read failed: {e}") from e
    finally:
        stream.close()


def decode_line(raw: bytes | Oversized, line_no: int) -> RawRecord:
    if isinstance(raw, Oversized):
        return RawRecord(line_no, error=("record_too_large", f"{raw.size:,} bytes, above the per-record limit of "
                         f"{raw.limit:,} bytes (ingest --max-record-mb)"),
                         snippet=raw.head.decode("utf-8", errors="replace"))
    if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    stripped = raw.strip()
    if not stripped:
        return RawRecord(line_no, blank=True)
    snippet = stripped[:SNIPPET_CHARS].decode("utf-8", errors="replace")
    try:
        value = orjson.loads(stripped)
    except orjson.JSONDecodeError as e:
        msg = str(e)
        reason = "invalid_utf8" if "UTF-8" in msg or "surrogate" in msg else "invalid_json"
        return RawRecord(line_no, error=(reason, msg), snippet=snippet)
    return RawRecord(line_no, value=value, snippet=snippet)


def _read_jsonl(stream: IO[bytes], max_record_bytes: int = 0) -> Iterator[RawRecord]:
    for i, raw in enumerate(bounded_lines(stream, max_record_bytes or MAX_RECORD_BYTES), start=1):
        yield decode_line(raw, i)


def _read_json_document(stream: IO[bytes]) -> Iterator[RawRecord]:
    data = stream.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        return
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        # Some ".json" exports are really JSON Lines: fall back when the first line is a full value;
        # others are pretty-printed values one after another (OpenTelemetry console dumps).
        first = data.lstrip().split(b"\n", 1)[0]
        try:
            orjson.loads(first)
        except orjson.JSONDecodeError:
            records = list(file_kinds.read_concatenated(io.BytesIO(data), RawRecord))
            if len(records) > 1 and records[0].error is None:
                yield from records
                return
            reason = "invalid_utf8" if "UTF-8" in str(e) else "invalid_json"
            raise FileReadError(reason, f"not a valid JSON document: {e}") from e
        for i, raw in enumerate(data.split(b"\n"), start=1):
            yield decode_line(raw, i)
        return
    if isinstance(value, list):
        for i, item in enumerate(value, start=1):
            yield RawRecord(i, value=item, snippet=_snippet(item))
    else:
        yield RawRecord(1, value=value, snippet=_snippet(value))


def _snippet(value: Any) -> str:
    try:
        return orjson.dumps(value)[:SNIPPET_CHARS].decode("utf-8", errors="replace")
    except TypeError:
        return repr(value)[:SNIPPET_CHARS]


def _read_csv(stream: IO[bytes]) -> Iterator[RawRecord]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    except UnicodeDecodeError as e:
        raise FileReadError("invalid_utf8", f"CSV header is not UTF-8: {e}") from e
    line = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as e:
            raise FileReadError("invalid_utf8", f"CSV after line {line} is not UTF-8: {e}") from e
        except csv.Error as e:
            yield RawRecord(reader.line_num, error=("invalid_csv", str(e)))
            line = reader.line_num
            continue
        start = line + 1
        line = reader.line_num
        if not any(c.strip() for c in cells):
            yield RawRecord(start, blank=True)
            continue
        if len(cells) != len(header):
            yield RawRecord(
                start,
                error=("invalid_csv", f"{len(cells)} cells but the header has {len(header)}"),
                snippet=",".join(cells)[:SNIPPET_CHARS],
            )
            continue
        record = {h: _csv_cell(c) for h, c in zip(header, cells, strict=True)}
        yield RawRecord(start, value=record, snippet=",".join(cells)[:SNIPPET_CHARS])


def _csv_cell(cell: str) -> Any:
    """CSV exports JSON-encode nested columns; decode those, keep the rest as text, '' as null."""
    s = cell.strip()
    if not s:
        return None
    if s[0] in "{[":
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError:
            return cell
    return cell
