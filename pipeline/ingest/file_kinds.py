"""File kinds beyond JSON, JSON Lines and CSV, told apart by extension or by their first bytes.

* YAML documents (`.yaml`/`.yml`: VCR and pytest-recording cassettes): one record per document,
  read with PyYAML's safe loader (`!!binary` bodies become bytes).
* inspect_ai `.eval` logs (a zip: `header.json` + `samples/<id>_epoch_<n>.json`): one record per
  sample, shaped like a `.json` eval log holding that one sample, so the eval-log format reads it.
* Raw server-sent-event captures (`event:` / `data:` lines as sent on the wire, e.g. a saved
  `curl -N`, also with `-i`'s status line and headers first): one record per event, numbered by the
  line its block starts on; `[DONE]`, comments and the header block are blanks.
* Concatenated JSON values (OpenTelemetry's ConsoleSpanExporter: pretty-printed objects one after
  another; a pretty-printed JSON array in a `.txt`): one record per value (array elements each).

Detection is by content for the text kinds, so an SSE capture saved as `.jsonl` or a console dump
saved as `.log` reads right; a file whose first line is a complete JSON value stays JSON Lines.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson
import yaml

# (kind, how a file is recognized and read), for `logaudit formats`.
FILE_KINDS = (
    ("jsonl", "`.jsonl`/`.ndjson`/`.txt`/`.log` (optionally .gz/.zst) whose first line is a JSON value: one record per line"),
    ("json", "`.json`/`.har`: one JSON document (an array gives one record per element)"),
    ("csv", "`.csv` with a header row (nested columns JSON-decoded): one record per row"),
    ("yaml", "`.yaml`/`.yml` (VCR / pytest-recording cassettes), PyYAML safe loader: one record per YAML document"),
    ("inspect_eval_zip", "`.eval` (inspect_ai's zip log): one record per `samples/<id>_epoch_<n>.json`, with the header's `eval`"),
    ("sse", "any text file whose first line is an SSE field (`data:`, `event:`, `id:`, `:` comment), e.g. a saved "
            "`curl -N`: one record per event block; `[DONE]` and comments are blanks"),
    ("concatenated_json", "any text file whose first line opens a pretty-printed value (`{` or `[` at its end), e.g. "
                          "OpenTelemetry `ConsoleSpanExporter` output: one record per value"),
)
YAML_SUFFIXES = (".yaml", ".yml")
ZIP_SUFFIXES = (".eval",)
EXTRA_SUFFIXES = (*YAML_SUFFIXES, *ZIP_SUFFIXES, ".sse")
SNIFF_BYTES = 1 << 16
MAX_VALUE_CHARS = 1 << 28  # one dumped value this long is treated as broken, not read on forever
_TAIL = 64  # a parse error this close to the end of the text read so far may just be the chunk boundary
_SSE_FIELDS = (b"data:", b"event:", b"id:", b"retry:")
_SAMPLE_NAME = re.compile(r"samples/(.+)_epoch_(\d+)\.json$")


def _first_line(head: bytes) -> bytes:
    head = head.removeprefix(b"\xef\xbb\xbf")
    for line in head.splitlines():
        if line.strip():
            return line.strip()
    return b""


def sniff(head: bytes) -> str | None:
    """`"sse"`, `"concatenated_json"` or None (plain JSON Lines) from a file's first bytes."""
    line = _first_line(head)
    if not line:
        return None
    if re.match(rb"HTTP/[0-9.]+ \d{3}", line):
        # `curl -i -N` keeps the status line and headers: the stream starts after the first blank line.
        body = re.split(rb"\r?\n\r?\n", head.removeprefix(b"\xef\xbb\xbf"), maxsplit=1)
        return "sse" if len(body) == 2 and _first_line(body[1]).startswith(_SSE_FIELDS) else None
    if line.startswith(_SSE_FIELDS) or (line.startswith(b":") and not line.startswith(b":{")):
        return "sse"
    # A pretty-printed value opens a bracket at the end of its first line; a JSON Lines file whose
    # first line is merely broken does not, and keeps being read (and rejected) line by line.
    if line[:1] in (b"{", b"[") and line[-1:] in (b"{", b"["):
        return "concatenated_json"
    return None


def sniff_path(path: Path) -> str | None:
    """`sniff` on an uncompressed file on disk (None when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return sniff(f.read(SNIFF_BYTES))
    except OSError:
        return None


def peek(stream: IO[bytes]) -> bytes:
    """The first bytes of a buffered stream without consuming them."""
    peek_fn = getattr(stream, "peek", None)
    return peek_fn(SNIFF_BYTES)[:SNIFF_BYTES] if peek_fn is not None else b""


# Records are built by the caller's record type (reader.RawRecord) so this module stays free of it.
MakeRecord = Callable[..., Any]


def read_yaml(stream: IO[bytes], make: MakeRecord, fail: Callable[[str, str], Exception]) -> Iterator[Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        for i, doc in enumerate(yaml.load_all(stream, Loader=loader), start=1):
            if doc is None:
                yield make(i, blank=True)
            else:
                yield make(i, value=doc, snippet=_snippet(doc))
    except yaml.YAMLError as e:
        raise fail("invalid_yaml", f"not a valid YAML document: {e}") from e


def read_inspect_zip(path: Path, make: MakeRecord, fail: Callable[[str, str], Exception],
                     on_bytes: Callable[[int], None]) -> Iterator[Any]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise fail("corrupt_zip", f"not a readable zip archive (inspect_ai `.eval` log): {e}") from e
    with archive:
        names = archive.namelist()
        try:
            header_name = "header.json" if "header.json" in names else "_journal/start.json"
            header = orjson.loads(archive.read(header_name)) if header_name in names else {}
        except (orjson.JSONDecodeError, zipfile.BadZipFile, KeyError, OSError) as e:
            raise fail("corrupt_zip", f"unreadable `.eval` header: {e}") from e
        samples = sorted((n for n in names if _SAMPLE_NAME.search(n)), key=_sample_order)
        base = {"version": header.get("version"), "eval": header.get("eval")}
        if not samples:
            yield make(1, value={**base, "samples": []}, snippet="header.json")
        for i, name in enumerate(samples, start=1):
            try:
                sample = orjson.loads(archive.read(name))
            except (orjson.JSONDecodeError, zipfile.BadZipFile, OSError) as e:
                yield make(i, error=("invalid_json", f"{name}: {e}"), snippet=name)
                continue
            yield make(i, value={**base, "samples": [sample]}, snippet=name)
    with contextlib.suppress(OSError):
        on_bytes(path.stat().st_size)


def _sample_order(name: str) -> tuple:
    m = _SAMPLE_NAME.search(name)
    sid, epoch = (m.group(1), int(m.group(2))) if m else (name, 0)
    return (0, int(sid), "", epoch) if sid.isdigit() else (1, 0, sid, epoch)


def read_sse(stream: IO[bytes], make: MakeRecord) -> Iterator[Any]:
    """One record per event block; the event name becomes `type` when the payload has none."""
    data: list[str] = []
    event: str | None = None
    start = 0  # line of the block being read (0: between blocks)
    for n, raw in enumerate(stream, start=1):
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if n == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip():
            if start:
                yield _sse_record(start, data, event, make)
            data, event, start = [], None, 0
            continue
        start = start or n
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith("event:"):
            event = line[6:].strip()
    if start:
        yield _sse_record(start, data, event, make)


def _sse_record(line: int, data: list[str], event: str | None, make: MakeRecord) -> Any:
    payload = "\n".join(data).strip()
    if not payload or payload == "[DONE]":
        return make(line, blank=True)  # a terminator, keep-alive or comment: nothing to ingest
    snippet = payload[:300]
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as e:
        return make(line, error=("invalid_json", f"SSE `data:` payload: {e}"), snippet=snippet)
    if isinstance(value, dict) and event and "type" not in value and event != "message":
        value = {"type": event, **value}
    return make(line, value=value, snippet=snippet)


def read_concatenated(stream: IO[bytes], make: MakeRecord, chunk_chars: int = 1 << 23) -> Iterator[Any]:
    """JSON values one after another, each numbered by the line it starts on, read in bounded chunks.

    A value that does not parse is rejected from its line to the next line starting with `{` or
    `[` at column 0, where reading resumes (one bad span does not lose the rest of the dump).
    """
    reader = io.TextIOWrapper(stream, encoding="utf-8", errors="replace")
    decoder = json.JSONDecoder()
    text, pos, line, eof = "", 0, 1, False

    def more() -> bool:
        nonlocal text, pos, eof
        chunk = reader.read(chunk_chars)
        if not chunk:
            eof = True
            return False
        text = text[pos:] + chunk.removeprefix("\ufeff") if not text else text[pos:] + chunk
        pos = 0
        return True

    more()
    while True:
        skipped = _skip_space(text, pos)
        line += text.count("\n", pos, skipped)
        pos = skipped
        if pos >= len(text) and not more():
            return
        if pos >= len(text):
            continue
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            # Cut by the chunk boundary (not by bad bytes): read on, unless the value is absurdly long.
            if not eof and e.pos >= len(text) - 1 - _TAIL and len(text) - pos < MAX_VALUE_CHARS and more():
                continue
            resume = _next_value_start(text, pos)
            yield make(line, error=("invalid_json", f"{e.msg} (line {line + text.count(chr(10), pos, e.pos)})"),
                       snippet=text[pos : pos + 300])
            line += text.count("\n", pos, resume)
            pos = resume
            continue
        if end >= len(text) and not eof and more():
            continue  # a number or literal may go on in the next chunk: parse again with more text
        if isinstance(value, list):
            for item in value:
                yield make(line, value=item, snippet=_snippet(item))
        else:
            yield make(line, value=value, snippet=text[pos : min(end, pos + 300)])
        line += text.count("\n", pos, end)
        pos = end


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n,":
        pos += 1
    return pos


def _next_value_start(text: str, pos: int) -> int:
    m = re.compile(r"\n(?=[{\[])").search(text, pos + 1)
    return m.start() + 1 if m else len(text)


def _snippet(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)[:300].decode("utf-8", "replace")
    except TypeError:
        return repr(value)[:300]
