"""Offline tiktoken encodings and a content-hash-keyed token counter.

tiktoken downloads its BPE files on first use; this tool must run air-gapped. The files ship
inside the `bpe-openai` wheel (a declared dependency), gzip-compressed and byte-identical to
OpenAI's (tiktoken checks their sha256). We decompress them once into tiktoken's own cache
layout (`<cache>/<sha1 of the download URL>`) and point `TIKTOKEN_CACHE_DIR` there, so
`tiktoken.get_encoding` works unchanged and never touches the network.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import tempfile
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import tiktoken
import xxhash

from pipeline.errors import DiskError

_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
OFFLINE_ENCODINGS = ("o200k_base", "cl100k_base")

# Which encoding counts which model family. Claude has no public tokenizer: o200k_base is used as
# an approximation and calibrated against the usage the logs report (see audit/token_accounting.py).
_MODEL_ENCODING = (
    ("gpt-3.5", "cl100k_base"),
    ("gpt-4-", "cl100k_base"),
    ("gpt-4", "o200k_base"),  # gpt-4o, gpt-4.1
    ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
)
DEFAULT_ENCODING = "o200k_base"


def cache_dir() -> Path:
    base = os.environ.get("LOGAUDIT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "llm-log-audit"
    )
    return Path(base) / "tiktoken"


def _seed_cache() -> Path:
    """The seeded cache folder: `cache_dir()`, or (when that cannot be written, e.g. a read-only
    HOME, and no LOGAUDIT_CACHE_DIR was set) a per-user folder in the system temp dir."""
    explicit = bool(os.environ.get("LOGAUDIT_CACHE_DIR"))
    candidates = [cache_dir()]
    if not explicit:
        uid = os.getuid() if hasattr(os, "getuid") else 0
        candidates.append(Path(tempfile.gettempdir()) / f"llm-log-audit-{uid}" / "tiktoken")
    failures = []
    for target in candidates:
        try:
            return _seed(target)
        except OSError as e:
            failures.append(f"`{target}` ({e.strerror or e})")
    where = "LOGAUDIT_CACHE_DIR" if explicit else "the default cache folder and the temp folder"
    raise DiskError(f"Cannot write the tokenizer cache: {', '.join(failures)} ({where}). "
                    "Set LOGAUDIT_CACHE_DIR to a writable folder.")


def _seed(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    missing = [
        (name, dest)
        for name in OFFLINE_ENCODINGS
        if not ((dest := target / hashlib.sha1(_URL.format(name=name).encode()).hexdigest()).is_file()
                and dest.stat().st_size > 0)
    ]
    if not missing:
        return target  # importing bpe_openai loads its own tokenizers (~2.5 s): only do it to seed
    data = resources.files("bpe_openai") / "data"
    for name, dest in missing:
        raw = gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes())
        tmp = dest.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(raw)
        os.replace(tmp, dest)  # atomic: concurrent processes never see half a file
    return target


@functools.cache
def get_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """A tiktoken encoding loaded from the bundled files; never downloads."""
    if name not in OFFLINE_ENCODINGS:
        raise ValueError(f"encoding {name!r} is not available offline; use one of {OFFLINE_ENCODINGS}")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_seed_cache())
    return tiktoken.get_encoding(name)


def encoding_name_for(model: str | None) -> str:
    m = (model or "").lower()
    for prefix, enc in _MODEL_ENCODING:
        if m.startswith(prefix):
            return enc
    return DEFAULT_ENCODING


def is_approximate(model: str | None) -> bool:
    """True when the model's own tokenizer is not public (Claude, Gemini, …) and counts are estimates."""
    m = (model or "").lower()
    return not any(m.startswith(p) for p, _ in _MODEL_ENCODING)


def text_key(text: str) -> int:
    """64-bit content hash used to memoize tokenization of repeated texts."""
    return xxhash.xxh3_64_intdigest(text.encode("utf-8", "surrogatepass"))


PARAGRAPH = "\n\n"
SPLIT_MIN_CHARS = 2_000  # shorter texts are counted whole


def paragraphs(text: str) -> list[str]:
    """`text` cut after blank lines where both offline encodings' pre-tokenizers end a piece: a
    piece holding a line break stops at the first character that is neither whitespace nor (o200k's
    punctuation piece takes trailing `[\\r\\n/]`) a slash, and the next piece starts there whatever came
    before, so the pieces of the whole text, hence its tokens, are those of the parts in order
    (`str.isspace` holds for every `\\s` character and a few more, so a doubtful cut is never made)."""
    parts = text.split(PARAGRAPH)
    out = [parts[0]]
    for part in parts[1:]:
        if part and not part[0].isspace() and part[0] != "/":
            out[-1] += PARAGRAPH
            out.append(part)
        else:
            out[-1] += PARAGRAPH + part
    return out


def long_text_paragraphs(text: str, min_chars: int) -> list[str] | None:
    """`paragraphs(text)` for a text of at least `min_chars` that cuts into more than one; else None
    (what the token memos and the redaction cache process part by part)."""
    if len(text) < min_chars or PARAGRAPH not in text:
        return None
    parts = paragraphs(text)
    return parts if len(parts) > 1 else None


class TokenCounter:
    """Counts (and optionally returns) tokens, tokenizing each distinct text once.

    System prompts and conversation histories repeat across thousands of requests; keying by a
    content hash makes the cost proportional to the distinct text, not to the traffic. A long text
    is counted as the sum of its `paragraphs`, each memoized too: a system prompt whose template
    differs by one line per request (a timestamp, a name) is then tokenized once, not per variant.
    """

    def __init__(self, encoding: str = DEFAULT_ENCODING, max_entries: int = 2_000_000) -> None:
        self.encoding = get_encoding(encoding)
        self.encoding_name = encoding
        self._counts: dict[int, int] = {}
        self._max = max_entries
        self.hits = 0
        self.misses = 0

    def prime(self, keys: list[int], counts: list[int]) -> None:
        """Counts known from elsewhere, by content key (`text_key`): the audit tokenized these texts
        with this encoding. `count` of such a text is then a lookup; a text not primed is tokenized."""
        if len(self._counts) + len(keys) > self._max:
            self._counts.clear()
        self._counts.update(zip(keys, counts, strict=True))

    def count(self, text: str | None) -> int:
        if not text:
            return 0
        key = text_key(text)
        n = self._counts.get(key)
        if n is not None:
            self.hits += 1
            return n
        self.misses += 1
        if parts := long_text_paragraphs(text, SPLIT_MIN_CHARS):
            n = sum(self.count(part) for part in parts)
        else:
            n = len(self.encoding.encode_ordinary(text))
        if len(self._counts) >= self._max:
            self._counts.clear()  # bounded memory; a cold cache only costs time
        self._counts[key] = n
        return n

    def count_many(self, texts: Iterable[str | None]) -> list[int]:
        return [self.count(t) for t in texts]

    def encode(self, text: str | None) -> list[int]:
        return self.encoding.encode_ordinary(text) if text else []
