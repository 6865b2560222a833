"""The verify pass's file digests (`assemble.file_digests`), read in blocks, against the plain
line-by-line reading they replaced: lines across block edges, a line longer than a block, blank
and whitespace-only lines, a last line without its newline, an empty file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipeline.dataset import assemble


def _line_by_line(path: Path) -> tuple[str, int, int]:
    sha = hashlib.sha256()
    offset = lines_digest = records = 0
    with open(path, "rb") as fh:
        for raw in fh:
            sha.update(raw)
            lines_digest = (lines_digest + assemble._line_digest(offset, raw)) & assemble._MASK64
            offset += len(raw)
            records += bool(raw.strip())
    return sha.hexdigest(), lines_digest, records


CONTENTS = {
    "records": b"".join(b'{"messages": [%d]}\n' % i for i in range(200)),
    "long_line": b'{"a": 1}\n' + b'{"b": "' + b"x" * 300 + b'"}\n' + b'{"c": 3}\n',
    "blank_lines": b'{"a": 1}\n\n   \n\t{"b": 2}\n \x0b\n',
    "no_last_newline": b'{"a": 1}\n{"b": 2}',
    "crlf": b'{"a": 1}\r\n{"b": 2}\r\n',
    "only_newlines": b"\n\n\n",
    "empty": b"",
}


@pytest.mark.parametrize("block", [7, 16, 64, 1 << 20])
@pytest.mark.parametrize("name", sorted(CONTENTS))
def test_block_digests_equal_line_by_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, block: int) -> None:
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(CONTENTS[name])
    monkeypatch.setattr(assemble, "READ_BLOCK", block)
    assert assemble.file_digests(path) == _line_by_line(path)


def test_a_changed_byte_changes_the_line_digest(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(CONTENTS["records"])
    before = assemble.file_digests(path)
    path.write_bytes(CONTENTS["records"].replace(b"[17]", b"[71]"))
    after = assemble.file_digests(path)
    assert after[1] != before[1] and after[0] != before[0] and after[2] == before[2]
