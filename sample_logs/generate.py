#!/usr/bin/env python3
"""Deterministic generator of sample LLM API logs with planted ground truth.

    python sample_logs/generate.py --out DIR --requests N --days D --seed S [--start 2026-09-01]

Without arguments it rewrites the committed sample next to this file (4,000 calls, 45 days, seed 7).

This file is the ground truth the project's tests check the tool against, so it is stdlib only
and imports nothing from the project packages (pipeline, audit, schemas): it must share no code
with the tool it judges. Output is byte-identical for the same arguments (no wall clock, no set
iteration, no str hash(); gzip headers carry mtime 0 and no file name). It streams: calls are
generated one day at a time, emitted in time order through a heap, and per-request truth is
written line by line, so memory stays bounded for --requests 1000000.
"""

from __future__ import annotations

import argparse
import base64
import csv
import gzip
import hashlib
import heapq
import io
import itertools
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import sys
from array import array
from collections import Counter, deque
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

GENERATOR_VERSION = "1.0.0"

# Provider cache rules used by the simulation (see README "Caching truth").
TTL_MS = 300_000  # 5-minute cache lifetime, refreshed on every hit
OPENAI_MIN_PROMPT = 1024  # OpenAI caches only prefixes of at least 1,024 tokens ...
OPENAI_BLOCK = 128  # ... in 128-token increments
OPENAI_ROUTE_TOKENS = 256  # the prefix OpenAI hashes to route a request to a cache machine
ANTHROPIC_MIN_PREFIX = {"claude-sonnet-4-5": 1024, "claude-haiku-4-5": 2048}
MSG_OVERHEAD = 3  # tokens added per message (role markers), system included
REPLY_OVERHEAD = 3  # tokens that prime the assistant reply, counted once per request

# Public list prices, USD per million tokens; batch API traffic is billed at 50%.
PRICES: dict[str, dict[str, float | None]] = {
    "gpt-4.1-mini": {"input_per_mtok": 0.40, "cached_input_per_mtok": 0.10, "cache_write_5m_per_mtok": None,
                     "cache_write_1h_per_mtok": None, "output_per_mtok": 1.60},
    "gpt-4o": {"input_per_mtok": 2.50, "cached_input_per_mtok": 1.25, "cache_write_5m_per_mtok": None,
               "cache_write_1h_per_mtok": None, "output_per_mtok": 10.00},
    "claude-sonnet-4-5": {"input_per_mtok": 3.00, "cached_input_per_mtok": 0.30, "cache_write_5m_per_mtok": 3.75,
                          "cache_write_1h_per_mtok": 6.00, "output_per_mtok": 15.00},
    "claude-haiku-4-5": {"input_per_mtok": 1.00, "cached_input_per_mtok": 0.10, "cache_write_5m_per_mtok": 1.25,
                         "cache_write_1h_per_mtok": 2.00, "output_per_mtok": 5.00},
}
BATCH_DISCOUNT = 0.5
PICO = 10**12  # truth sums spend in integer pico-dollars
PRICES_AS_OF = "2026-09-01"

MODELS: dict[str, dict[str, Any]] = {
    # provider, dated snapshot the response reports, latency model: base ms + ms per output token
    "gpt-4.1-mini": {"provider": "openai", "snapshot": "gpt-4.1-mini-2025-04-14", "base_ms": 600, "per_tok_ms": 6.0},
    "gpt-4o": {"provider": "openai", "snapshot": "gpt-4o-2024-08-06", "base_ms": 700, "per_tok_ms": 8.0},
    "claude-sonnet-4-5": {"provider": "anthropic", "snapshot": "claude-sonnet-4-5-20250929", "base_ms": 1150,
                          "per_tok_ms": 6.0},
    "claude-haiku-4-5": {"provider": "anthropic", "snapshot": "claude-haiku-4-5-20251001", "base_ms": 380,
                         "per_tok_ms": 4.5},
}

WEEKLY_GROWTH = 0.04  # true week-over-week growth of the traffic intensity
WEEKEND_FACTOR = 0.35
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 10, 9, 10, 10, 9, 8, 6, 5, 4, 3, 2, 2, 1)  # UTC
N_USERS = 150

# Share of all calls that go to each channel; the envelope gets the rest.
BATCH_SHARE = 0.0375
LITELLM_JSONL_SHARE = 0.075
LITELLM_CSV_SHARE = 0.025

# Every word below is ONE token (with its leading space) in both o200k_base and cl100k_base, so the
# token count of generated prose is its word count plus punctuation (checked with tiktoken offline).
VOCAB: tuple[str, ...] = tuple(["the", "a", "an", "and", "or", "but", "if", "then", "so", "because", "when", "while", "where", "which", "that", "this", "these", "those", "it", "its", "they", "them", "their", "we", "our", "you", "your", "he", "she", "his", "her", "i", "my", "me", "us", "is", "are", "was", "were", "be", "been", "being", "have", "has", "had", "do", "does", "did", "will", "would", "can", "could", "should", "may", "might", "must", "shall", "order", "customer", "data", "report", "account", "invoice", "payment", "price", "cost", "total", "amount", "date", "time", "day", "week", "month", "year", "team", "project", "plan", "service", "support", "ticket", "issue", "problem", "error", "request", "response", "message", "email", "phone", "address", "name", "number", "list", "item", "product", "user", "system", "file", "page", "table", "query", "result", "value", "field", "record", "status", "update", "change", "note", "review", "check", "test", "build", "release", "new", "old", "first", "last", "next", "good", "bad", "high", "low", "small", "large", "long", "short", "fast", "slow", "early", "late", "open", "close", "clear", "full", "empty", "simple", "make", "get", "use", "find", "send", "read", "write", "show", "tell", "ask", "give", "take", "keep", "help", "need", "want", "know", "see", "look", "work", "call", "run", "start", "stop", "add", "remove", "move", "set", "put", "return", "save", "load", "create", "delete", "edit", "reply", "share", "sign", "pay", "buy", "sell", "ship", "deliver", "track", "follow", "please", "thanks", "hello", "today", "tomorrow", "yesterday", "now", "here", "there", "also", "only", "just", "still", "again", "very", "more", "most", "less", "many", "much", "few", "some", "any", "all", "each", "every", "other", "same", "different", "about", "after", "before", "between", "into", "from", "with", "without", "over", "under", "during", "through", "within", "across", "against", "along", "around", "company", "office", "manager", "staff", "client", "partner", "vendor", "supplier", "store", "shop", "market", "sale", "sales", "budget", "tax", "fee", "rate", "discount", "refund", "delivery", "shipping", "package", "box", "stock", "warehouse", "line", "unit", "quantity", "size", "color", "model", "type", "group", "level", "region", "city", "country", "state", "meeting", "schedule", "calendar", "event", "room", "agenda", "minutes", "summary", "action", "owner", "task", "goal", "feedback", "question", "answer", "reason", "detail", "document", "contract", "policy", "rule", "term", "condition", "section", "part", "step", "process", "method", "example", "case", "option", "choice", "version", "copy", "code", "function", "class", "variable", "bug", "fix", "feature", "branch", "merge", "commit", "deploy", "server", "database", "index", "key", "column", "row", "join", "draft", "letter", "subject", "body", "hope", "regards", "best", "dear", "thank", "sorry", "apologize", "understand", "confirm", "receive", "attach", "member", "guest", "visitor", "person", "people", "family", "friend", "home", "school", "car", "food", "water", "money", "card", "bank", "loan", "morning", "evening", "night", "weekend", "holiday", "season", "spring", "summer", "winter", "fall", "great", "fine", "sure", "okay", "right", "wrong", "true", "false", "yes", "no", "maybe", "likely", "possible", "available", "ready", "busy", "free", "important", "urgent", "offer", "deal", "extra", "standard", "premium", "basic", "annual", "monthly", "daily", "weekly", "quarterly", "complaint", "concern", "delay", "damage", "missing", "broken"])

# Spanish words that are single tokens in both encodings (translation targets).
ES_VOCAB: tuple[str, ...] = tuple(["el", "la", "los", "las", "de", "del", "que", "y", "en", "un", "una", "por", "para", "con", "no", "es", "se", "lo", "al", "como", "más", "pero", "sus", "le", "ya", "o", "este", "esta", "son", "entre", "cuando", "muy", "sin", "sobre", "también", "me", "hasta", "hay", "donde", "quien", "desde", "todo", "nos", "durante", "todos", "uno", "les", "ni", "contra", "otros", "ese", "eso", "ante", "ellos", "e", "esto", "mí", "antes", "algunos", "qué", "unos", "yo", "otro", "otras", "otra", "él", "tanto", "esa", "estos", "mucho", "quienes", "nada", "muchos", "cual", "poco", "ella", "estar", "estas", "algunas", "algo", "nosotros", "pedido", "cliente", "cuenta", "factura", "pago", "precio", "costo", "total", "fecha", "tiempo", "día", "semana", "mes", "año", "equipo", "proyecto", "plan", "servicio", "problema", "error", "mensaje", "correo", "dirección", "nombre", "número", "lista", "producto", "usuario", "sistema", "archivo", "página", "tabla", "resultado", "valor", "estado", "cambio", "nota", "gracias", "hoy", "mañana", "ahora", "aquí", "bien", "mal", "nuevo", "grande", "primero", "último", "siguiente", "entrega", "favor", "ayuda", "quiero", "puede", "tiene", "hacer", "enviar", "recibir"])

FIRST_NAMES = ("maria", "john", "li", "ahmed", "sofia", "lucas", "emma", "noah", "aiko", "omar", "elena", "david")
LAST_NAMES = ("garcia", "smith", "chen", "khan", "rossi", "muller", "brown", "tanaka", "silva", "novak", "jones")
EMAIL_DOMAINS = ("example.com", "example.org", "mail.example.net", "acme-corp.example")
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
B64URL = ALNUM + "-_"
UPPER_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


# ---------------------------------------------------------------------------------------------
# Token estimate. Text is built from single-token words, so counts are known by construction;
# this regex is the definition used for everything else (JSON, SQL, numbers, planted secrets).
# A punctuation run swallows the newlines after it, as BPE does with ".\n\n".

_TOKEN_RE = re.compile(r"[^\W\d_]+|\d{1,3}|[^\w\s]+\n*|\n+|_+")
_LONG_RUN_RE = re.compile(r"[^\W\d_]{9,}")


def ntok(text: str) -> int:
    """Token estimate of `text` (approximates o200k_base within a few %)."""
    n = len(_TOKEN_RE.findall(text))
    if text.islower():  # no upper case letter, so no mixed-case run (the common case)
        return n
    # Random mixed-case runs (keys, base64) split into many BPE tokens; vocabulary words never do.
    for run in _LONG_RUN_RE.findall(text):
        if not run.islower():
            n += (len(run) + 2) // 3 - 1
    return n


def cut_to_tokens(text: str, k: int) -> str:
    """Prefix of `text` holding exactly its first k estimated tokens (for truncated replies)."""
    if k <= 0:
        return ""
    for i, m in enumerate(_TOKEN_RE.finditer(text)):
        if i == k - 1:
            return text[: m.end()]
    return text


class Piece(NamedTuple):
    """A span of text and its token count."""

    text: str
    tokens: int


def piece(text: str) -> Piece:
    return Piece(text, ntok(text))


def _sep_tokens(prev: str) -> int:
    # "\n\n" after punctuation merges into it (".\n\n" is one token); after a word it is its own token.
    return 0 if prev and not prev[-1].isalnum() and prev[-1] != "_" else 1


def join_pieces(pieces: list[Piece], sep: str = "\n\n") -> Piece:
    """Join with blank lines; the token count stays additive by construction."""
    if not pieces:
        return Piece("", 0)
    tokens = sum(p.tokens for p in pieces)
    for p in pieces[:-1]:
        tokens += _sep_tokens(p.text) if sep == "\n\n" else ntok(sep)
    return Piece(sep.join(p.text for p in pieces), tokens)


def phash(text: str) -> int:
    """64-bit content hash of a prompt block (blake2b: stable across runs, unlike hash())."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


_PHASH_CACHE: dict[str, int] = {}


def phash_cached(text: str) -> int:
    """Hash for texts that repeat across requests (system paragraphs, templates, tools)."""
    h = _PHASH_CACHE.get(text)
    if h is None:
        h = _PHASH_CACHE[text] = phash(text)
    return h


# ---------------------------------------------------------------------------------------------
# Word drawing. A 65,536-slot lookup table indexed by random bytes is ~20x faster than
# rng.choices, which matters for 1M requests. array("H") uses native byte order (little-endian on
# every platform we run on), so output is reproducible across x86-64 and arm64.


class Lexicon:
    def __init__(self, words: tuple[str, ...]) -> None:
        self.words_list = words
        weights = [1.0 / (i + 8) ** 0.8 for i in range(len(words))]  # mild Zipf: function words first
        cum = list(itertools.accumulate(weights))
        total = cum[-1]
        table: list[str] = []
        j = 0
        for k in range(65536):
            x = (k + 0.5) / 65536 * total
            while cum[j] < x:
                j += 1
            table.append(words[j])
        self.table = tuple(table)

    def words(self, rng: random.Random, n: int) -> list[str]:
        idx = array("H")
        idx.frombytes(rng.randbytes(2 * n))
        t = self.table
        return [t[i] for i in idx]

    def phrase(self, rng: random.Random, n: int) -> Piece:
        """n words, no punctuation."""
        return Piece(" ".join(self.words(rng, n)), n)

    def prose(self, rng: random.Random, n: int) -> Piece:
        """n words in sentences of 6-16 words; tokens = words + full stops."""
        if n <= 0:
            return Piece("", 0)
        w = self.words(rng, n)
        ends = rng.randbytes(n // 6 + 2)
        pos, stops, j = -1, 0, 0
        while True:
            pos += 6 + ends[j] % 11
            j += 1
            if pos >= n - 1:
                break
            w[pos] += "."
            stops += 1
        w[-1] += "."
        return Piece(" ".join(w), n + stops + 1)

    def paragraphs(self, rng: random.Random, n_words: int, lo: int = 60, hi: int = 170) -> list[Piece]:
        out: list[Piece] = []
        left = n_words
        while left > 0:
            k = min(left, rng.randint(lo, hi))
            if left - k < lo // 2:
                k = left
            out.append(self.prose(rng, k))
            left -= k
        return out


EN = Lexicon(VOCAB)
ES = Lexicon(ES_VOCAB)


def rand_str(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choices(alphabet, k=n))


_ID_TABLE = (ALNUM * 5)[:256].encode("ascii")


def fast_alnum(rng: random.Random, n: int) -> str:
    """Random alphanumeric id (one random byte per char; ~4x faster than rng.choices for ids)."""
    return rng.randbytes(n).translate(_ID_TABLE).decode("ascii")


def hexid(rng: random.Random, n: int) -> str:
    return rng.randbytes((n + 1) // 2).hex()[:n]


def uuid_like(rng: random.Random) -> str:
    h = hexid(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


DAY_MS = 86_400_000
_DAY_STR: dict[int, str] = {}


def day_of(ts_ms: int) -> str:
    """UTC date of an epoch-ms time (memoised per day: strftime is slow at 1M calls)."""
    d = ts_ms // DAY_MS
    s = _DAY_STR.get(d)
    if s is None:
        s = _DAY_STR[d] = datetime.fromtimestamp(d * 86_400, tz=UTC).strftime("%Y-%m-%d")
    return s


def iso_ms(ts_ms: int) -> str:
    r = ts_ms % DAY_MS
    return f"{day_of(ts_ms)}T{r // 3_600_000:02d}:{r // 60_000 % 60:02d}:{r // 1000 % 60:02d}.{r % 1000:03d}Z"


def iso_s(ts_ms: int) -> str:
    r = ts_ms % DAY_MS
    return f"{day_of(ts_ms)}T{r // 3_600_000:02d}:{r // 60_000 % 60:02d}:{r // 1000 % 60:02d}Z"


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# Secrets and PII: random but well-formed, never real. Each planter returns (type, value) pairs.


def luhn_digit(body: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def luhn_ok(number: str) -> bool:
    digits = [c for c in number if c.isdigit()]
    return luhn_digit("".join(digits[:-1])) == int(digits[-1])


def _format_card(digits: str, style: int) -> str:
    if style == 0:
        return digits
    sep = " " if style == 1 else "-"
    return sep.join(digits[i : i + 4] for i in range(0, 16, 4))


def make_card(rng: random.Random, valid: bool) -> str:
    prefix = rng.choice(("4", "51", "52", "53", "54", "55"))
    body = prefix + "".join(rng.choices("0123456789", k=15 - len(prefix)))
    check = luhn_digit(body)
    if not valid:
        check = (check + rng.randint(1, 9)) % 10
    return _format_card(body + str(check), rng.randint(0, 2))


def make_email(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}{rng.randint(1, 99)}@{rng.choice(EMAIL_DOMAINS)}"


def make_phone(rng: random.Random) -> str:
    n4 = f"{rng.randint(100, 199):04d}"  # 555-0100..0199 is reserved for fiction
    area = rng.choice(("415", "212", "646", "312", "206", "512"))
    style = rng.randint(0, 5)
    if style == 0:
        return f"({area}) 555-{n4}"
    if style == 1:
        return f"{area}-555-{n4}"
    if style == 2:
        return f"+1 {area} 555 {n4}"
    if style == 3:
        return f"+44 20 7946 {rng.randint(0, 999):04d}"
    if style == 4:
        return f"+49 30 {rng.randint(10000000, 99999999)}"
    return f"+33 1 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"


def make_ssn(rng: random.Random) -> str:
    area = rng.randint(1, 665)  # 000, 666 and 900-999 are never issued
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def make_ipv4(rng: random.Random) -> str:
    style = rng.randint(0, 3)
    if style == 0:
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if style == 1:
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if style == 2:
        return f"203.0.113.{rng.randint(1, 254)}"
    return f"198.51.100.{rng.randint(1, 254)}"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def make_jwt(rng: random.Random) -> str:
    header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
    payload = _b64url(dumps({"sub": "u_" + hexid(rng, 6), "name": rng.choice(FIRST_NAMES),
                             "iat": 1780000000 + rng.randint(0, 9_999_999)}).encode())
    return f"{header}.{payload}.{rand_str(rng, B64URL, 43)}"


def make_pem(rng: random.Random) -> str:
    body = base64.b64encode(b"\x30\x82\x04\xa4\x02\x01\x00\x02\x82\x01\x01\x00" + rng.randbytes(300)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END RSA PRIVATE KEY-----"


SECRET_KINDS: tuple[tuple[str, int], ...] = (
    ("email", 20), ("phone", 15), ("credit_card", 10), ("us_ssn", 6), ("ipv4", 8), ("openai_api_key", 7),
    ("anthropic_api_key", 5), ("aws_access_key", 6), ("github_token", 6), ("slack_token", 5),
    ("google_api_key", 5), ("jwt", 4), ("private_key", 3),
)
_SECRET_LEADS = {
    "email": "you can reach me at", "phone": "please call me on", "credit_card": "the card number is",
    "us_ssn": "my social security number is", "ipv4": "the server address is", "openai_api_key": "our key is",
    "anthropic_api_key": "the key we use is", "aws_access_key": "the access key is", "github_token": "the token is",
    "slack_token": "the bot token is", "google_api_key": "the api key is", "jwt": "the session token is",
    "private_key": "here is the key file",
}


def make_secret(rng: random.Random, kind: str) -> list[tuple[str, str]]:
    """One planted secret of `kind` as (type, value) pairs (AWS plants id + secret together)."""
    if kind == "email":
        return [("email", make_email(rng))]
    if kind == "phone":
        return [("phone", make_phone(rng))]
    if kind == "credit_card":
        return [("credit_card", make_card(rng, True))]
    if kind == "us_ssn":
        return [("us_ssn", make_ssn(rng))]
    if kind == "ipv4":
        return [("ipv4", make_ipv4(rng))]
    if kind == "openai_api_key":
        return [("openai_api_key", "sk-proj-" + rand_str(rng, B64URL, 64))]
    if kind == "anthropic_api_key":
        return [("anthropic_api_key", "sk-ant-api03-" + rand_str(rng, B64URL, 93) + "AA")]
    if kind == "aws_access_key":
        return [("aws_access_key_id", "AKIA" + rand_str(rng, UPPER_ALNUM, 16)),
                ("aws_secret_access_key", rand_str(rng, ALNUM + "/+", 40))]
    if kind == "github_token":
        return [("github_token", "ghp_" + rand_str(rng, ALNUM, 36))]
    if kind == "slack_token":
        return [("slack_token", f"xoxb-{rng.randint(10**11, 10**12 - 1)}-{rng.randint(10**12, 10**13 - 1)}-"
                 + rand_str(rng, ALNUM, 24))]
    if kind == "google_api_key":
        return [("google_api_key", "AIza" + rand_str(rng, B64URL, 35))]
    if kind == "jwt":
        return [("jwt", make_jwt(rng))]
    return [("private_key", make_pem(rng))]


def secret_sentence(rng: random.Random, kind: str) -> tuple[Piece, list[tuple[str, str]]]:
    """A sentence carrying one planted secret; the value is space-delimited (no trailing dot)."""
    pairs = make_secret(rng, kind)
    lead = _SECRET_LEADS[kind]
    if kind == "aws_access_key":
        text = f"{lead} {pairs[0][1]} and the secret is {pairs[1][1]} so please check the account."
    elif kind == "private_key":
        text = f"{lead}:\n{pairs[0][1]}\nplease check it."
    else:
        text = f"{lead} {pairs[0][1]} if you need more detail."
    return piece(text), pairs


def pick_secret_kind(rng: random.Random) -> str:
    kinds, weights = zip(*SECRET_KINDS, strict=True)
    return rng.choices(kinds, weights=weights)[0]


HTML_SNIPPETS = (
    "<script>alert(1)</script>",
    '<b>urgent</b> <img src=x onerror="alert(1)">',
    '<a href="javascript:alert(1)">click here</a> <script>alert(1)</script>',
    "<iframe src=x></iframe> <div onclick=alert(1)>open</div>",
)


# ---------------------------------------------------------------------------------------------
# Near-duplicate tools: word 5-gram Jaccard over lowercase \w+ words (what README documents).

_WORD_RE = re.compile(r"\w+")


def shingles(text: str) -> set[tuple[str, ...]]:
    w = _WORD_RE.findall(text.lower())
    return set(zip(w, w[1:], w[2:], w[3:], w[4:], strict=False))


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def mutate_words(rng: random.Random, text: str, k: int, lex: Lexicon = EN) -> str:
    """Replace k plain words at positions >= 6 apart (each change then removes exactly 5 shingles)."""
    toks = text.split(" ")
    ok = [i for i, t in enumerate(toks) if t.rstrip(".").isalpha() and t.rstrip(".").islower() and "\n" not in t]
    if not ok or k <= 0:
        return text
    chosen: list[int] = []
    for i in rng.sample(ok, len(ok)):
        if all(abs(i - j) >= 6 for j in chosen):
            chosen.append(i)
            if len(chosen) == k:
                break
    for i in chosen:
        t = toks[i]
        dot = "." if t.endswith(".") else ""
        old = t.rstrip(".")
        new = old
        while new == old:
            new = lex.words(rng, 1)[0]
        toks[i] = new + dot
    return " ".join(toks)


# ---------------------------------------------------------------------------------------------
# Prompt structures with prefix blocks. A request's prompt is a sequence of blocks (hash, tokens)
# in provider render order: tools, system, then messages. Cache simulation matches block chains.


class SystemPrompt:
    """A system prompt in its provider's rendering, with its prefix blocks."""

    def __init__(self, paragraphs: list[Piece], provider: str, groups: int, cache_control: bool,
                 header: Piece | None = None) -> None:
        paras = ([header] if header else []) + paragraphs
        self.header = header
        self.paragraphs = paras
        # Anthropic may send the system as several text blocks; split the paragraphs into `groups`.
        cut = len(paras) if groups == 1 else max(1, len(paras) // 2)
        self.groups = [paras[:cut]] + ([paras[cut:]] if groups == 2 else [])
        joined = [join_pieces(g) for g in self.groups]
        self.text = "\n\n".join(j.text for j in joined)  # OpenAI / Anthropic string form
        self.tokens = sum(j.tokens for j in joined) if groups == 2 else join_pieces(paras).tokens
        self.provider = provider
        self.cache_control = cache_control
        self._json: dict[str, str] = {}
        if provider == "anthropic" and groups == 2:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": j.text} for j in joined]
            if cache_control:
                blocks[-1]["cache_control"] = {"type": "ephemeral"}
            self.anthropic: Any = blocks
        elif provider == "anthropic" and cache_control:
            self.anthropic = [{"type": "text", "text": self.text, "cache_control": {"type": "ephemeral"}}]
        else:
            self.anthropic = self.text
        # Prefix blocks: one per paragraph; the first carries the message overhead.
        self.blocks: list[tuple[int, int]] = []
        first = True
        for g in self.groups:
            for i, p in enumerate(g):
                t = p.tokens + (_sep_tokens(p.text) if i < len(g) - 1 else 0)
                if first:
                    t += MSG_OVERHEAD
                    first = False
                key = "system\x00" + p.text
                self.blocks.append((phash(key) if p is header else phash_cached(key), t))
        assert sum(t for _, t in self.blocks) == self.tokens + MSG_OVERHEAD

    def json(self, form: str) -> str:
        """JSON of the system prompt, encoded once: it is the bulk of every log line."""
        s = self._json.get(form)
        if s is None:
            s = self._json[form] = dumps(self.text if form == "openai" else self.anthropic)
        return s


class ToolCall(NamedTuple):
    call_id: str
    name: str
    args: dict[str, Any]


class Msg:
    """One conversation message in a provider-neutral form (rendered per provider on output)."""

    __slots__ = ("role", "pieces", "as_parts", "tool_calls", "tool_call_id", "tokens", "_blocks", "text", "_json")

    def __init__(self, role: str, pieces: list[Piece], as_parts: bool = False,
                 tool_calls: list[ToolCall] | None = None, tool_call_id: str | None = None) -> None:
        self.role = role  # user | assistant | tool
        self.pieces = pieces
        self.as_parts = as_parts
        self.tool_calls = tool_calls or []
        self.tool_call_id = tool_call_id
        if as_parts:
            content_tokens = sum(p.tokens for p in pieces)
            self.text = "\n\n".join(p.text for p in pieces)
        else:
            j = join_pieces(pieces)
            content_tokens, self.text = j.tokens, j.text
        self.tokens = MSG_OVERHEAD + content_tokens + sum(tool_call_tokens(tc) for tc in self.tool_calls)
        self._blocks: list[tuple[int, int]] | None = None
        self._json: dict[str, str] = {}

    def json(self, form: str) -> str:
        """JSON of the rendered message, encoded once (chat history is resent on every turn)."""
        s = self._json.get(form)
        if s is None:
            s = self._json[form] = dumps(openai_message(self) if form == "openai" else anthropic_message(self))
        return s

    def blocks(self) -> list[tuple[int, int]]:
        if self._blocks is None:
            out: list[tuple[int, int]] = []
            for i, p in enumerate(self.pieces):
                t = p.tokens
                if i < len(self.pieces) - 1 and not self.as_parts:
                    t += _sep_tokens(p.text)
                if i == 0:
                    t += MSG_OVERHEAD
                key = self.role + "\x00" + p.text
                out.append((phash_cached(key) if p.text in TEMPLATE_TEXTS else phash(key), t))
            if not self.pieces:
                out.append((phash_cached(self.role + "\x00"), MSG_OVERHEAD))
            for tc in self.tool_calls:
                out.append((phash(dumps(tc)), tool_call_tokens(tc)))
            self._blocks = out
        return self._blocks


def tool_call_tokens(tc: ToolCall) -> int:
    return ntok(tc.name) + ntok(dumps(tc.args))


class Choice(NamedTuple):
    text: str | None
    tokens: int  # output tokens (text + tool calls)
    tool_calls: list[ToolCall] | None
    finish: str  # stop | length | refusal | content_filter | tool_calls | empty (truth vocabulary)
    refusal_field: bool = False  # OpenAI structured refusal: message.refusal set, content null


# ---------------------------------------------------------------------------------------------
# Task types.


def pooled_paragraphs(rng: random.Random, n_words: int) -> list[Piece]:
    """Policy-style paragraphs drawn from a pool of 24 sentences per prompt.

    Real system prompts repeat their phrasing; the repetition also keeps the committed sample small,
    because gzip can only reuse text within a 32 KB window and log lines here are 10-20 KB.
    """
    pool = [EN.prose(rng, rng.randint(8, 18)) for _ in range(24)]
    sizes = [len(p.text.split(" ")) for p in pool]
    paras: list[Piece] = []
    left = n_words
    while left > 0:
        picked: list[int] = []
        words = 0
        target = min(left, rng.randint(90, 200))
        while words < target:
            i = rng.randrange(len(pool))
            picked.append(i)
            words += sizes[i]
        paras.append(Piece(" ".join(pool[i].text for i in picked), sum(pool[i].tokens for i in picked)))
        left -= words
    return paras


class Task:
    def __init__(self, task_id: str, label: str, model: str, output_format: str, sys_words: int,
                 app: str, max_tokens: int, *, tools: list[dict[str, Any]] | None = None, multi_turn: bool = False,
                 cache_control: bool = False, anthropic_groups: int = 1, breaker: str | None = None,
                 version_change: bool = False, intro: str = "") -> None:
        self.id = task_id
        self.label = label
        self.model = model
        self.provider = MODELS[model]["provider"]
        self.output_format = output_format
        self.app = app
        self.max_tokens = max_tokens
        self.tools = tools
        self.multi_turn = multi_turn
        self.cache_control = cache_control
        self.breaker = breaker
        self.version_change = version_change
        srng = random.Random(f"system-prompt/{task_id}")  # stable across --seed values
        paras = [piece(intro)] + pooled_paragraphs(srng, sys_words)
        self.sys_paragraphs = {1: paras}
        if version_change:
            # v2 rewrites one sentence in a paragraph past the middle; the prefix before it is shared.
            k = len(paras) // 2 + 1
            old = paras[k].text
            first_stop = old.index(".") + 1
            new_sentence = "always return the total as a number and never guess a missing due date."
            paras2 = list(paras)
            paras2[k] = piece(new_sentence + old[first_stop:])
            self.sys_paragraphs[2] = paras2
            self.version_paragraph = k
        self.systems: dict[int, SystemPrompt] = {}
        for v, ps in self.sys_paragraphs.items():
            self.systems[v] = SystemPrompt(ps, self.provider, anthropic_groups, cache_control)
        if tools:
            tjson = dumps(tools)
            self.tools_block: tuple[int, int] | None = (phash_cached("tools\x00" + tjson), ntok(tjson))
        else:
            self.tools_block = None
        self.header_example = Piece("Current time: 2026-09-01T00:00:00Z", ntok("Current time: 2026-09-01T00:00:00Z"))

    def system(self, version: int, ts_ms: int) -> SystemPrompt:
        if self.breaker == "timestamp":
            # The dynamic line sits BEFORE the stable text: no two requests share more than a few tokens.
            header = piece(f"Current time: {iso_s(ts_ms)}")
            return SystemPrompt(self.sys_paragraphs[version], self.provider, 1, self.cache_control, header)
        return self.systems[version]

    def system_tokens(self, version: int) -> int:
        if self.breaker == "timestamp":
            return join_pieces([self.header_example] + self.sys_paragraphs[version]).tokens
        return self.systems[version].tokens


TOOLS_SQL = [{"type": "function", "function": {
    "name": "run_query", "description": "run a read only sql query against the sales database and return rows",
    "parameters": {"type": "object", "properties": {"sql": {"type": "string", "description": "the sql query"}},
                   "required": ["sql"]}}}]
TOOLS_CHAT = [
    {"type": "function", "function": {
        "name": "lookup_order", "description": "find an order by number and return its status and delivery date",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}},
    {"type": "function", "function": {
        "name": "create_return", "description": "start a return for an order item",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"},
                                                        "reason": {"type": "string"}},
                       "required": ["order_id", "reason"]}}},
]
TOOLS_REVIEW = [{"name": "read_file", "description": "read a file from the repository at the current commit",
                 "input_schema": {"type": "object", "properties": {"path": {"type": "string"}},
                                  "required": ["path"]}}]

TASKS: dict[str, Task] = {t.id: t for t in (
    Task("ticket_classify", "Support ticket triage (JSON)", "gpt-4.1-mini", "json", 1290, "helpdesk", 300,
         intro="You are the ticket triage model for our support team. Read the customer ticket and return only a "
               "json object with the keys category, priority, sentiment, needs_human and summary."),
    Task("invoice_extract", "Invoice field extraction (JSON)", "gpt-4.1-mini", "json", 1150, "finance-ops", 400,
         version_change=True,
         intro="You extract fields from vendor invoices. Return only a json object with the keys vendor, "
               "invoice_number, total, currency, due_date and line_items."),
    Task("product_qa", "Product catalogue Q&A", "gpt-4.1-mini", "text", 1750, "storefront", 600,
         breaker="timestamp",
         intro="You answer shopper questions about products in our store using the catalogue notes below."),
    Task("doc_summarize", "Long document summarisation", "gpt-4o", "text", 130, "docs-assist", 500,
         intro="You summarize documents that users paste. Write five short bullet points."),
    Task("sql_generate", "SQL generation from questions", "gpt-4o", "text", 1930, "analytics", 800,
         tools=TOOLS_SQL,
         intro="You write sql for the sales database. Tables: orders (order_id, customer_id, total, status, "
               "created_at), customers (customer_id, name, region), items (order_id, product, quantity, price)."),
    Task("support_chat", "Customer support chat assistant (multi-turn)", "gpt-4o", "text", 1520, "support-widget",
         400, tools=TOOLS_CHAT, multi_turn=True,
         intro="You are the support assistant in our help widget. Be short and friendly, use the tools to check "
               "orders, and never promise a refund before a return is created."),
    Task("email_draft", "Customer email reply drafting", "claude-sonnet-4-5", "text", 1250, "mail-assist", 1024,
         cache_control=True, anthropic_groups=2,
         intro="You draft email replies for our customer care team. Match the tone of the customer, keep it under "
               "two hundred words and sign as the care team."),
    Task("code_review", "Code review of pull request diffs", "claude-sonnet-4-5", "text", 2250, "dev-tools", 1500,
         tools=TOOLS_REVIEW,
         intro="You review pull request diffs for the orders service. Point out bugs first, then style issues, "
               "and quote the line you mean."),
    Task("translate", "Translation EN to ES", "claude-haiku-4-5", "text", 85, "localization", 500,
         intro="Translate the user text from English to Spanish. Keep names and numbers as they are."),
)}

TASK_HEADERS: dict[str, str] = {
    "ticket_classify": "classify the following support ticket and return only the json object:",
    "invoice_extract": "extract the invoice fields from the text below:",
    "product_qa": "question from a customer:",
    "doc_summarize": "summarize the following document in five bullet points:",
    "sql_generate": "write a sql query that answers this question:",
    "email_draft": "draft a reply to this customer email:",
    "code_review": "review this change and list any bugs:",
    "translate": "translate to spanish:",
}
HEADER_PIECES = {t: piece(h) for t, h in TASK_HEADERS.items()}
# Texts repeated across requests; only these are memoised when hashing prefix blocks.
TEMPLATE_TEXTS = frozenset(TASK_HEADERS.values()) | {"i changed it to:", "is that better?"}

# Relative burst weights per channel (calls per unit differ: chat sessions are ~6 calls).
CHANNEL_TASKS: dict[str, tuple[tuple[str, float], ...]] = {
    "envelope": (("ticket_classify", 0.19), ("invoice_extract", 0.13), ("product_qa", 0.12),
                 ("doc_summarize", 0.10), ("sql_generate", 0.09), ("support_chat", 0.13),
                 ("email_draft", 0.09), ("code_review", 0.08)),
    "litellm_jsonl": (("translate", 0.5), ("email_draft", 0.5)),
    "litellm_csv": (("translate", 1.0),),
}


# ---------------------------------------------------------------------------------------------
# Calls.


class Call:
    """One API call: its content is fixed at generation, usage is filled in at emission."""

    __slots__ = ("ts", "seq", "channel", "task", "rid", "user", "session", "sysp", "sys_version", "msgs",
                 "choices", "finish", "error", "n", "max_tokens", "latency", "ttft", "stream", "regenerated",
                 "regeneration_of", "retry_of", "edited", "feedback", "duplicate_of", "near_duplicate_of",
                 "pair_jaccard", "secrets", "negatives", "html", "turn", "response_id", "extra", "planted",
                 "fb_comment")

    def __init__(self, **kw: Any) -> None:
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    @property
    def reply_text(self) -> str:
        c = self.choices[0] if self.choices else None
        return (c.text or "") if c else ""


class Budget:
    def __init__(self, n: int) -> None:
        self.left = n

    def take(self, n: int) -> bool:
        if n <= self.left:
            self.left -= n
            return True
        return False


class DupSource(NamedTuple):
    ts: int
    rid: str
    user_pieces: list[Piece]  # header + content pieces of the user message
    reply: Choice
    max_tokens: int


class Generator:
    def __init__(self, seed: int, start: date, days: int, n_requests: int) -> None:
        self.seed = seed
        self.start = start
        self.days = days
        self.n_requests = n_requests
        self.t0 = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() * 1000)
        self.seq = 0
        self.heap: list[tuple[int, int, Call]] = []
        urng = random.Random(f"users/{seed}")
        self.users = [f"u_{hexid(urng, 6)}" for _ in range(N_USERS)]
        self.user_cum = list(itertools.accumulate(1.0 / (i + 3) for i in range(N_USERS)))
        # Recent clean requests per day and task that later requests may duplicate.
        self.sources: dict[int, dict[str, deque[DupSource]]] = {}
        self.n_batch = round(n_requests * BATCH_SHARE)
        self.n_lj = round(n_requests * LITELLM_JSONL_SHARE)
        self.n_lc = round(n_requests * LITELLM_CSV_SHARE)
        self.n_env = n_requests - self.n_batch - self.n_lj - self.n_lc
        self.day_weights = self._day_weights()
        self.alloc = {ch: self._allocate(n) for ch, n in (("envelope", self.n_env), ("litellm_jsonl", self.n_lj),
                                                         ("litellm_csv", self.n_lc))}
        self.batch_day = min(days - 1, int(days * 0.4))
        self.version_switch_ms = self.t0 + days * 86_400_000 // 2

    # -- traffic shape ---------------------------------------------------------------------
    def _day_weights(self) -> list[float]:
        wrng = random.Random(f"days/{self.seed}")
        out = []
        for d in range(self.days):
            wd = (self.start + timedelta(days=d)).weekday()
            w = (1 + WEEKLY_GROWTH) ** (d / 7) * (WEEKEND_FACTOR if wd >= 5 else 1.0) * wrng.uniform(0.9, 1.1)
            out.append(w)
        return out

    def _allocate(self, total: int) -> list[int]:
        """Split `total` calls over days in proportion to the day weights (largest remainder)."""
        s = sum(self.day_weights)
        raw = [total * w / s for w in self.day_weights]
        base = [int(x) for x in raw]
        rest = total - sum(base)
        order = sorted(range(self.days), key=lambda i: (-(raw[i] - base[i]), i))
        for i in order[:rest]:
            base[i] += 1
        return base

    def pick_user(self, rng: random.Random) -> str:
        return rng.choices(self.users, cum_weights=self.user_cum)[0]

    def new_session(self, rng: random.Random) -> str:
        return "sess_" + hexid(rng, 12)

    def burst_start(self, rng: random.Random, day: int) -> int:
        hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
        return self.t0 + day * 86_400_000 + hour * 3_600_000 + rng.randrange(3_600_000)

    def push(self, call: Call) -> None:
        call.seq = self.seq
        self.seq += 1
        heapq.heappush(self.heap, (call.ts, call.seq, call))

    # -- ids -------------------------------------------------------------------------------
    def request_id(self, rng: random.Random, channel: str, provider: str) -> tuple[str, str]:
        """(id the tool sees as request_id, provider response id)."""
        resp = "chatcmpl-" + fast_alnum(rng, 29) if provider == "openai" else "msg_01" + fast_alnum(rng, 22)
        if channel == "envelope":
            return "req_" + hexid(rng, 24), resp
        if channel.startswith("litellm"):
            lid = "chatcmpl-" + uuid_like(rng)
            return lid, lid
        return "", resp

    # -- latency ---------------------------------------------------------------------------
    def latency(self, rng: random.Random, model: str, out_tokens: int) -> tuple[int, int]:
        m = MODELS[model]
        lat = (m["base_ms"] + m["per_tok_ms"] * out_tokens) * math.exp(0.35 * rng.gauss(0, 1))
        ttft = m["base_ms"] * 0.55 * math.exp(0.3 * rng.gauss(0, 1))
        return max(60, int(lat)), max(40, min(int(ttft), int(lat) - 10))

    def error_info(self, rng: random.Random, provider: str, model: str) -> tuple[int, str, str]:
        r = rng.random()
        if provider == "openai":
            if r < 0.7:
                return (429, "rate_limit_exceeded",
                        f"Rate limit reached for {model} on requests per min (RPM): Limit 500, Used 500, "
                        "Requested 1. Please try again in 120ms.")
            return 500, "server_error", "The server had an error while processing your request. Sorry about that!"
        if r < 0.55:
            return 429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."
        if r < 0.85:
            return 529, "overloaded_error", "Overloaded"
        return 500, "api_error", "Internal server error"

    # -- task content ----------------------------------------------------------------------
    def user_content(self, rng: random.Random, task: Task, ctx: dict[str, Any]) -> list[Piece]:
        """Variable part of a single-turn user message (without the template header)."""
        tid = task.id
        if tid == "ticket_classify":
            ps = [EN.prose(rng, rng.randint(25, 110))]
            if rng.random() < 0.4:
                ps.append(piece(f"my order number is #{rng.randint(10000, 99999)} and i need help."))
            return ps
        if tid == "invoice_extract":
            inv = f"INV-{rng.randint(10000, 99999)}"
            total = f"{rng.randint(20, 9999)}.{rng.randint(0, 99):02d}"
            cur = rng.choice(("usd", "eur", "gbp"))
            due = (self.start + timedelta(days=rng.randint(0, 90))).isoformat()
            vendor = " ".join(EN.words(rng, 2)) + " supply"
            ctx.update(inv=inv, total=total, cur=cur, due=due, vendor=vendor, items=rng.randint(1, 12))
            facts = piece(f"invoice number {inv} from {vendor}. total due {total} {cur} by {due}. "
                          f"there are {ctx['items']} line items.")
            return [EN.prose(rng, rng.randint(20, 70)), facts, EN.prose(rng, rng.randint(15, 80))]
        if tid == "product_qa":
            return [EN.prose(rng, rng.randint(10, 40))]
        if tid == "doc_summarize":
            # Most of the input is the pasted document, so little of it can ever be cached.
            return [join_pieces(EN.paragraphs(rng, rng.randint(700, 2200), 80, 220))]
        if tid == "sql_generate":
            return [EN.prose(rng, rng.randint(12, 35))]
        if tid == "email_draft":
            return [EN.prose(rng, rng.randint(30, 140))]
        if tid == "code_review":
            return [self.diff(rng)]
        if tid == "translate":
            return [EN.prose(rng, rng.randint(15, 80))]
        raise ValueError(tid)

    def diff(self, rng: random.Random) -> Piece:
        lines = [f"--- a/src/{EN.words(rng, 1)[0]}/{EN.words(rng, 1)[0]}.py",
                 f"+++ b/src/{EN.words(rng, 1)[0]}/{EN.words(rng, 1)[0]}.py"]
        for _ in range(rng.randint(6, 22)):
            a, b, c = EN.words(rng, 3)
            kind = rng.randint(0, 4)
            sign = rng.choice("+-+ ")
            if kind == 0:
                lines.append(f"{sign}def {a}_{b}({c}, {EN.words(rng, 1)[0]}):")
            elif kind == 1:
                lines.append(f"{sign}    {a} = {b}.{c} * {EN.words(rng, 1)[0]}")
            elif kind == 2:
                lines.append(f"{sign}    if {a}.{b} is None:")
            elif kind == 3:
                lines.append(f"{sign}        return {a}_{b}")
            else:
                lines.append(f"{sign}    # {EN.phrase(rng, rng.randint(4, 10)).text}")
        return piece("\n".join(lines))

    def sql(self, rng: random.Random) -> str:
        a, b = EN.words(rng, 2)
        col = rng.choice(("total", "quantity", "price"))
        return (f"select c.region, sum(o.{col}) as {a}_{b}\nfrom orders o\njoin customers c on c.customer_id = "
                f"o.customer_id\nwhere o.status = '{rng.choice(('open', 'paid', 'shipped'))}'\n"
                f"group by c.region\norder by {a}_{b} desc\nlimit {rng.randint(5, 50)};")

    def reply(self, rng: random.Random, task: Task, ctx: dict[str, Any], finish: str, max_tokens: int,
              secrets: list[dict[str, str]] | None = None) -> Choice:
        """The assistant reply for a call with the given outcome (secrets only go into normal replies)."""
        provider = task.provider
        if finish == "refusal":
            if provider == "openai" and task.output_format == "json" and rng.random() < 0.5:
                return Choice(REFUSAL_TEXT, ntok(REFUSAL_TEXT), None, "refusal", refusal_field=True)
            if provider == "anthropic" and rng.random() < 0.5:
                return Choice("", 0, None, "refusal")  # stop_reason "refusal" with no text
            return Choice(REFUSAL_TEXT, ntok(REFUSAL_TEXT), None, "refusal")
        if finish == "content_filter":
            return Choice(None, 0, None, "content_filter")
        if finish == "empty":
            return Choice("", 0, None, "empty")
        if finish == "length":
            # Long enough to hit the cap, then cut exactly at max_tokens.
            lex = ES if task.id == "translate" else EN
            text = cut_to_tokens(self.reply_text(rng, task, ctx).text + " " + lex.prose(rng, max_tokens).text,
                                 max_tokens)
            return Choice(text, ntok(text), None, "length")
        p = self.reply_text(rng, task, ctx, secrets)
        return Choice(p.text, p.tokens, None, "stop")

    def reply_text(self, rng: random.Random, task: Task, ctx: dict[str, Any],
                   secrets: list[dict[str, str]] | None = None) -> Piece:
        """A normal reply. Prose token counts are known by construction; ntok() runs on small parts only."""
        tid = task.id
        if tid == "ticket_classify":
            obj = {"category": rng.choice(("billing", "shipping", "refund", "account", "product", "other")),
                   "priority": rng.choice(("low", "normal", "high", "urgent")),
                   "sentiment": rng.choice(("positive", "neutral", "negative")),
                   "needs_human": rng.random() < 0.3,
                   "summary": EN.phrase(rng, rng.randint(6, 16)).text}
            return piece(json.dumps(obj))
        if tid == "invoice_extract":
            obj = {"vendor": ctx.get("vendor", "unknown"), "invoice_number": ctx.get("inv"),
                   "total": float(ctx.get("total", "0")), "currency": str(ctx.get("cur", "usd")).upper(),
                   "due_date": ctx.get("due"), "line_items": ctx.get("items", 1)}
            return piece(json.dumps(obj))
        if tid in ("doc_summarize", "code_review"):
            n = 5 if tid == "doc_summarize" else rng.randint(3, 7)
            lo, hi = (8, 24) if tid == "doc_summarize" else (10, 30)
            lines = [EN.prose(rng, rng.randint(lo, hi)) for _ in range(n)]
            # "- " is one token; ".\n" merges into one token, so the newlines add nothing.
            return Piece("\n".join("- " + p.text for p in lines), sum(1 + p.tokens for p in lines))
        if tid == "sql_generate":
            code = "```sql\n" + self.sql(rng) + "\n```\n"
            p = EN.prose(rng, rng.randint(15, 50))
            return Piece(code + p.text, ntok(code) + p.tokens)
        if tid == "email_draft":
            p = EN.prose(rng, rng.randint(60, 170))
            text = "dear customer,\n\n" + p.text + "\n\nbest regards,\nthe care team"
            tokens = p.tokens + 9  # dear|customer|,\n\n ... best|regards|,\n|the|care|team
            if secrets is not None:
                for kind in ("email", "phone"):
                    for t, v in make_secret(rng, kind):
                        text += f"\n{v}"
                        tokens += 1 + ntok(v)
                        self.record_secret(secrets, t, v, "assistant")
            return Piece(text, tokens)
        if tid == "translate":
            return ES.prose(rng, int(ctx.get("words", 40) * 1.1))
        if tid in ("product_qa", "support_chat"):
            p = EN.prose(rng, rng.randint(25, 110))
            if secrets is not None:
                for t, v in make_secret(rng, "email"):
                    extra = f" you can also write to {v} for help."
                    p = Piece(p.text + extra, p.tokens + ntok(extra))
                    self.record_secret(secrets, t, v, "assistant")
            return p
        raise ValueError(tid)

    def record_secret(self, secrets: list[dict[str, str]], kind: str, value: str, where: str) -> None:
        secrets.append({"type": kind, "value": value, "where": where})

    # -- outcomes ----------------------------------------------------------------------------
    def outcome(self, rng: random.Random, task: Task) -> str:
        r = rng.random()
        if r < 0.02:
            return "length"
        if r < 0.03:
            return "refusal"
        if r < 0.035 and task.provider == "openai":
            return "content_filter"
        if r < 0.04:
            return "empty"
        return "stop"

    def plant(self, rng: random.Random, pieces: list[Piece], secrets: list[dict[str, str]],
              negatives: list[dict[str, str]], rate: float = 0.03) -> tuple[list[Piece], bool]:
        """Maybe add secret/PII, Luhn-invalid negative or HTML sentences to a user message."""
        html = False
        if rng.random() < rate:
            for _ in range(1 if rng.random() < 0.8 else 2):
                sent, pairs = secret_sentence(rng, pick_secret_kind(rng))
                pieces = pieces + [sent]
                for t, v in pairs:
                    self.record_secret(secrets, t, v, "user")
        if rng.random() < 0.004:
            num = make_card(rng, False)
            pieces = pieces + [piece(f"the reference number on the form is {num} if that helps.")]
            negatives.append({"type": "luhn_invalid_16_digit", "value": num, "where": "user"})
        if rng.random() < 0.004:
            pieces = pieces + [piece(rng.choice(HTML_SNIPPETS))]
            html = True
        return pieces, html

    # -- single-turn units -------------------------------------------------------------------
    def base_call(self, rng: random.Random, task: Task, channel: str, ts: int, user: str | None,
                  session: str | None) -> Call:
        rid, resp = self.request_id(rng, channel, task.provider)
        version = 2 if task.version_change and ts >= self.version_switch_ms else 1
        return Call(ts=ts, channel=channel, task=task, rid=rid, response_id=resp, user=user, session=session,
                    sys_version=version, sysp=task.system(version, ts), n=1, max_tokens=task.max_tokens,
                    regenerated=False, edited=False, secrets=[], negatives=[], html=False, extra={})

    def resend(self, rng: random.Random, template: Call, ts: int) -> Call:
        """A new call whose request is identical to `template`'s (retry, regeneration, error)."""
        call = self.base_call(rng, template.task, template.channel, ts, template.user, template.session)
        call.sysp, call.sys_version, call.msgs = template.sysp, template.sys_version, template.msgs
        call.max_tokens, call.n, call.turn = template.max_tokens, template.n, template.turn
        call.secrets = [s for s in template.secrets if s["where"] == "user"]
        call.negatives, call.html, call.extra = template.negatives, template.html, template.extra
        return call

    def finish_call(self, rng: random.Random, call: Call) -> None:
        out = sum(c.tokens for c in call.choices) if call.choices else 0
        call.latency, ttft = self.latency(rng, call.task.model, out)
        call.stream = rng.random() < 0.5
        call.ttft = ttft if call.stream else None
        if call.channel == "envelope" and rng.random() < 0.01:
            call.latency = None  # some exporters drop timings
            call.ttft = None
        if call.channel == "envelope" and call.finish != "tool_calls" and rng.random() < 0.05:
            call.feedback = 1 if rng.random() < 0.78 else -1
            r = rng.random()
            if call.feedback == -1 and r < 0.5:
                call.fb_comment = rng.choice(("the answer was wrong", "too long and not what i asked",
                                              "wrong category"))
            elif call.feedback == 1 and r < 0.2:
                call.fb_comment = "great answer thanks"

    def error_call(self, rng: random.Random, template: Call) -> Call:
        call = self.resend(rng, template, template.ts)
        call.error = self.error_info(rng, template.task.provider, template.task.model)
        call.finish = "error"
        call.latency = int(rng.uniform(60, 400)) if call.error[0] == 429 else int(rng.uniform(2000, 30000))
        call.ttft = None
        call.stream = False
        return call

    def single_unit(self, rng: random.Random, task: Task, channel: str, ts: int, user: str | None,
                    session: str, budget: Budget, dup_kind: str | None, day: int) -> int:
        """One single-turn task invocation and its follow-ups; returns the time it finished.

        A unit drawn as a duplicate always costs one call: a copy of an earlier clean request, or,
        when there is none yet, a plain request that is never itself used as a source. So whether a
        source existed changes no budget and no random stream, only this unit's text.
        """
        call = self.base_call(rng, task, channel, ts, user, session)
        plain = dup_kind is not None
        if dup_kind:
            budget.take(1)
            src = self.pick_dup_source(rng, task.id, ts, dup_kind == "near", day)
            if src is not None:
                self.dup_unit(rng, call, src, dup_kind)
                return call.ts + (call.latency or 1500)
        ctx: dict[str, Any] = {}
        content = self.user_content(rng, task, ctx)
        ctx["words"] = sum(p.tokens for p in content)
        content, call.html = self.plant(rng, content, call.secrets, call.negatives)
        # Counted once, on the call that carries the value first (resends repeat it in their text).
        call.planted = [s["type"] for s in call.secrets + call.negatives]
        as_parts = task.provider == "openai" and rng.random() < 0.15
        call.msgs = [Msg("user", [HEADER_PIECES[task.id]] + content, as_parts=as_parts)]
        call.extra = {"as_parts": as_parts}
        finish = "stop" if plain else self.outcome(rng, task)
        tool_flow = not plain and finish == "stop" and ((task.id == "sql_generate" and rng.random() < 0.25) or (
            task.id == "code_review" and rng.random() < 0.2))
        if finish == "length" and task.output_format == "json":
            call.max_tokens = rng.choice((12, 16, 20))  # a client that caps JSON replies too tightly
        if task.id in ("product_qa", "doc_summarize") and finish == "stop" and rng.random() < 0.02:
            call.n = rng.choice((2, 3))
        want_error = not plain and rng.random() < 0.03
        retry = want_error and rng.random() < 0.85
        want_regen = not plain and not tool_flow and rng.random() < 0.04
        if want_error and not retry:
            # An error nobody retried: the unit is just the failed call.
            budget.take(1)
            err = self.error_call(rng, call)
            self.push(err)
            return ts + err.latency
        if 1 + tool_flow + want_error + want_regen > budget.left:
            want_regen = False
            tool_flow = tool_flow and budget.left >= 2
            want_error = want_error and budget.left >= 2 + tool_flow
        if want_error:
            err = self.error_call(rng, call)
            budget.take(1)
            self.push(err)
            call.ts = ts + err.latency + int(rng.uniform(1000, 30000))
            call.retry_of = err.rid
        if not plain:
            budget.take(1)
        if tool_flow:
            return self.tool_flow_unit(rng, call, ctx, budget)
        sec_reply: list[dict[str, str]] | None = None
        if finish == "stop" and task.id in ("email_draft", "product_qa") and rng.random() < 0.01:
            sec_reply = []
        call.choices = [self.reply(rng, task, ctx, finish, call.max_tokens, sec_reply if i == 0 else None)
                        for i in range(call.n)]
        if sec_reply:
            call.secrets = call.secrets + sec_reply
            call.planted = call.planted + [s["type"] for s in sec_reply]
        call.finish = call.choices[0].finish
        self.finish_call(rng, call)
        end = call.ts + (call.latency or 1500)
        if want_regen and budget.take(1):
            # The user asks again with the identical request; the EARLIER reply is the rejected one.
            regen = self.resend(rng, call, end + int(rng.uniform(10_000, 120_000)))
            regen.n = 1
            regen.choices = [self.reply(rng, task, ctx, "stop", regen.max_tokens)]
            regen.finish = "stop"
            regen.regeneration_of = call.rid
            call.regenerated = True
            self.finish_call(rng, regen)
            regen.pair_jaccard = round(jaccard(call.msgs[0].text + "\n" + call.reply_text,
                                               regen.msgs[0].text + "\n" + regen.reply_text), 4)
            self.push(regen)
            end = regen.ts + (regen.latency or 1500)
        elif (not plain and call.finish == "stop" and call.n == 1 and not call.secrets and not call.negatives
              and not call.html and call.retry_of is None and call.feedback != -1):
            self.sources[day][task.id].append(DupSource(call.ts, call.rid, call.msgs[0].pieces, call.choices[0],
                                                        call.max_tokens))
        self.push(call)
        return end

    def pick_dup_source(self, rng: random.Random, task_id: str, ts: int, near: bool, day: int) -> DupSource | None:
        """A clean request of the same or the previous day, at least 30 minutes older, in another session
        (so a copy never looks like a regeneration)."""
        cands = [s for d in (day - 1, day) if d in self.sources for s in self.sources[d][task_id]
                 if s.ts <= ts - 1_800_000]
        rng.shuffle(cands)
        for s in cands:
            # A near copy needs >= 70 shingles, else one changed word already drops J below 0.85.
            if not near or len(shingles(join_pieces(s.user_pieces).text + "\n" + (s.reply.text or ""))) >= 70:
                return s
        return None

    def dup_unit(self, rng: random.Random, call: Call, src: DupSource, kind: str) -> None:
        task = call.task
        call.session = self.new_session(rng)
        if rng.random() < 0.5:
            call.user = self.pick_user(rng)
        old = join_pieces(src.user_pieces).text + "\n" + (src.reply.text or "")
        if kind == "exact":
            call.msgs = [Msg("user", src.user_pieces)]
            call.choices = [src.reply]
            call.duplicate_of = src.rid
        else:
            header, content = src.user_pieces[0], src.user_pieces[1:]
            s = len(shingles(old))
            mutable_reply = task.output_format == "text"
            lex = ES if task.id == "translate" else EN
            n_user = sum(len(p.text.split(" ")) for p in content)
            n_reply = len((src.reply.text or "").split(" ")) if mutable_reply else 0
            j = 1.0
            for _attempt in range(20):
                # Each change at least 6 words from another removes 5 shingles and adds 5:
                # J = (S - 5k) / (S + 5k), so k = S (1 - J) / (5 (1 + J)).
                target = rng.uniform(0.87, 0.93)
                k_total = max(1, round(s * (1 - target) / (5 * (1 + target))))
                k_user = max(1, round(k_total * n_user / (n_user + n_reply))) if n_reply else k_total
                k_reply = k_total - k_user
                new_content: list[Piece] = []
                left = k_user
                for i, p in enumerate(content):
                    share_i = left if i == len(content) - 1 else round(k_user * len(p.text.split(" ")) / n_user)
                    share_i = min(share_i, left)
                    left -= share_i
                    new_content.append(Piece(mutate_words(rng, p.text, share_i), p.tokens) if share_i else p)
                new_reply_text = src.reply.text or ""
                if k_reply > 0:
                    new_reply_text = mutate_words(rng, new_reply_text, k_reply, lex)
                j = jaccard(old, join_pieces([header] + new_content).text + "\n" + new_reply_text)
                if 0.85 <= j <= 0.95:
                    break
            call.msgs = [Msg("user", [header] + new_content)]
            call.choices = [Choice(new_reply_text, ntok(new_reply_text), None, "stop")]
            call.near_duplicate_of = src.rid
            call.pair_jaccard = round(j, 4)
        call.max_tokens = src.max_tokens
        call.finish = "stop"
        self.finish_call(rng, call)
        if call.feedback == -1:
            call.feedback, call.fb_comment = 1, None  # planted duplicates stay clean training examples
        self.push(call)

    def tool_flow_unit(self, rng: random.Random, call: Call, ctx: dict[str, Any], budget: Budget) -> int:
        """Call 1 answers with a tool call; call 2 resends everything plus the tool result."""
        task = call.task
        if task.id == "sql_generate":
            tc = ToolCall("call_" + fast_alnum(rng, 24), "run_query", {"sql": self.sql(rng)})
            rows = [{"region": w, "total": round(rng.uniform(100, 90000), 2)} for w in EN.words(rng, 3)]
            result = piece(dumps(rows))
        else:
            tc = ToolCall("toolu_01" + fast_alnum(rng, 22), "read_file",
                          {"path": f"src/{EN.words(rng, 1)[0]}/{EN.words(rng, 1)[0]}.py"})
            result = self.diff(rng)
        call.choices = [Choice(None, tool_call_tokens(tc), [tc], "tool_calls")]
        call.finish = "tool_calls"
        self.finish_call(rng, call)
        self.push(call)
        end = call.ts + (call.latency or 1500)
        if not budget.take(1):
            return end
        second = self.resend(rng, call, end + int(rng.uniform(200, 3000)))
        second.msgs = call.msgs + [Msg("assistant", [], tool_calls=[tc]),
                                   Msg("tool", [result], tool_call_id=tc.call_id)]
        second.choices = [self.reply(rng, task, ctx, "stop", second.max_tokens)]
        second.finish = "stop"
        self.finish_call(rng, second)
        self.push(second)
        return second.ts + (second.latency or 1500)

    # -- multi-turn chat ----------------------------------------------------------------------
    def chat_session(self, rng: random.Random, task: Task, ts: int, user: str | None, budget: Budget) -> None:
        """3-8 turns; every call resends the whole history, so the prompt grows turn by turn."""
        session = self.new_session(rng)
        turns = rng.randint(3, 8)
        as_parts = rng.random() < 0.3
        history: list[Msg] = []
        hist_secrets: list[dict[str, str]] = []
        hist_negatives: list[dict[str, str]] = []
        hist_html = False
        prev_call: Call | None = None
        edit_next = False
        order_id = str(rng.randint(10000, 99999))
        for turn in range(1, turns + 1):
            if budget.left <= 0:
                return
            new_secrets: list[dict[str, str]] = []
            new_negatives: list[dict[str, str]] = []
            if edit_next and prev_call is not None:
                # The user pastes back the previous reply with 10-20% of its words changed.
                old = prev_call.reply_text
                n_words = len(old.split(" "))
                modified = mutate_words(rng, old, max(1, round(n_words * rng.uniform(0.10, 0.20))))
                pieces = [piece("i changed it to:"), Piece(modified, ntok(modified)), piece("is that better?")]
                prev_call.edited = True
            else:
                pieces = [EN.prose(rng, rng.randint(8, 40))]
                if turn == 1 and rng.random() < 0.5:
                    pieces.append(piece(f"my order number is #{order_id} and it has not arrived."))
                pieces, html = self.plant(rng, pieces, new_secrets, new_negatives)
                hist_html = hist_html or html
            msgs = history + [Msg("user", pieces, as_parts=as_parts)]
            call = self.base_call(rng, task, "envelope", ts, user, session)
            call.msgs, call.turn, call.extra = msgs, turn, {"as_parts": as_parts}
            call.secrets, call.negatives = hist_secrets + new_secrets, hist_negatives + new_negatives
            call.html = hist_html
            call.planted = [s["type"] for s in new_secrets + new_negatives]
            if rng.random() < 0.03 and budget.left >= 2:
                err = self.error_call(rng, call)
                budget.take(1)
                self.push(err)
                call.ts = ts + err.latency + int(rng.uniform(1000, 30000))
                call.retry_of = err.rid
            budget.take(1)
            if rng.random() < 0.15 and budget.left >= 1:
                tc = ToolCall("call_" + fast_alnum(rng, 24), "lookup_order", {"order_id": order_id})
                call.choices = [Choice(None, tool_call_tokens(tc), [tc], "tool_calls")]
                call.finish = "tool_calls"
                self.finish_call(rng, call)
                self.push(call)
                budget.take(1)
                eta = (self.start + timedelta(days=rng.randint(1, 60))).isoformat()
                result = piece(dumps({"order_id": order_id, "status": rng.choice(("shipped", "packed", "late")),
                                      "eta": eta}))
                msgs = msgs + [Msg("assistant", [], tool_calls=[tc]), Msg("tool", [result], tool_call_id=tc.call_id)]
                call2 = self.resend(rng, call, call.ts + (call.latency or 1500) + int(rng.uniform(200, 2500)))
                call2.msgs = msgs
                call2.secrets = call.secrets
                call = call2
            finish = self.outcome(rng, task)
            if finish == "content_filter":
                finish = "stop"
            sec_reply: list[dict[str, str]] | None = [] if finish == "stop" and rng.random() < 0.01 else None
            call.choices = [self.reply(rng, task, {}, finish, call.max_tokens, sec_reply)]
            if sec_reply:
                call.secrets = call.secrets + sec_reply
                call.planted = (call.planted or []) + [s["type"] for s in sec_reply]
            call.finish = call.choices[0].finish
            self.finish_call(rng, call)
            self.push(call)
            reply = call.choices[0]
            if not reply.text:
                return  # nothing to continue from: the user gives up
            history = msgs + [Msg("assistant", [Piece(reply.text, reply.tokens)])]
            hist_secrets, hist_negatives = call.secrets, call.negatives
            edit_next = call.finish == "stop" and turn < turns and not sec_reply and rng.random() < 0.05
            prev_call = call
            think = rng.lognormvariate(math.log(60_000), 0.8) if rng.random() < 0.9 else rng.uniform(360_000, 1_200_000)
            ts = call.ts + (call.latency or 1500) + int(min(think, 1_500_000))

    # -- batch --------------------------------------------------------------------------------
    def batch_calls(self) -> list[Call]:
        """One OpenAI Batch job of ticket classifications; completes out of input order."""
        rng = random.Random(f"{self.seed}/batch")
        task = TASKS["ticket_classify"]
        submitted = self.t0 + self.batch_day * 86_400_000 + 2 * 3_600_000 + rng.randrange(600_000)
        self.batch_submitted = submitted
        n = self.n_batch
        n_err = max(1, round(n * 0.007)) if n >= 10 else 0
        err_idx = set(rng.sample(range(n), n_err)) if n_err else set()
        window = min(20 * 3_600_000, max(600_000, n * 4_000))  # inside the 24 h completion window
        calls = []
        for i in range(n):
            done = submitted + 60_000 + rng.randrange(window)
            done = done // 1000 * 1000  # batch output only carries whole-second `created`
            call = self.base_call(rng, task, "batch", done, None, None)
            call.rid = f"ticket-{i + 1:06d}"
            call.extra = {"batch_req": "batch_req_" + hexid(rng, 32), "req_id": "req_" + hexid(rng, 32)}
            ctx: dict[str, Any] = {}
            content = self.user_content(rng, task, ctx)
            call.msgs = [Msg("user", [HEADER_PIECES[task.id]] + content)]
            if i in err_idx:
                call.ts = submitted
                call.error = (0, "batch_expired",
                              "This request could not be executed before the completion window expired.")
                call.finish = "error"
            else:
                call.choices = [self.reply(rng, task, ctx, "stop", task.max_tokens)]
                call.finish = "stop"
            call.latency = call.ttft = None
            calls.append(call)
        return calls

    # -- day loop -----------------------------------------------------------------------------
    def day_calls(self, day: int) -> None:
        """Generate every call of one day (and its spill-over follow-ups) onto the heap.

        The schedule (bursts, tasks, users, which units are duplicates) comes from a per-day RNG and
        each unit's content from its own RNG, so a day depends only on (seed, day) and on the clean
        requests of the day before (the duplicate sources). A worker regenerates the two days before
        its segment to rebuild both the sources and the cache state exactly.
        """
        drng = random.Random(f"{self.seed}/day/{day}")
        self.sources = {d: s for d, s in self.sources.items() if d == day - 1}
        self.sources[day] = {t: deque(maxlen=200) for t in TASKS}
        for channel in ("envelope", "litellm_jsonl", "litellm_csv"):
            budget = Budget(self.alloc[channel][day])
            names, weights = zip(*CHANNEL_TASKS[channel], strict=True)
            unit = 0
            while budget.left > 0:
                task = TASKS[drng.choices(names, weights=weights)[0]]
                ts = self.burst_start(drng, day)
                user = self.pick_user(drng)
                if task.id == "invoice_extract" and drng.random() < 0.15:
                    user = None  # a back-office job without an end user
                if task.multi_turn:
                    unit += 1
                    self.chat_session(random.Random(f"{self.seed}/unit/{day}/{channel}/{unit}"), task, ts, user,
                                      budget)
                    continue
                session = self.new_session(drng)
                size = 1 + min(9, int(drng.expovariate(1 / 2.5)))
                for _ in range(size):
                    if budget.left <= 0:
                        break
                    unit += 1
                    r = drng.random()
                    dup_kind = "exact" if r < 0.035 else "near" if r < 0.07 else None
                    urng = random.Random(f"{self.seed}/unit/{day}/{channel}/{unit}")
                    end = self.single_unit(urng, task, channel, ts, user, session, budget, dup_kind, day)
                    ts = max(ts + int(drng.uniform(4_000, 75_000)), end + 500 if drng.random() < 0.3 else 0)


# ---------------------------------------------------------------------------------------------
# Cache simulation (processes calls in time order).


_M61 = (1 << 61) - 1
_CHAIN_MUL = 0x9E3779B97F4A7C15 % _M61


def chain_hashes(model: str, blocks: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Rolling hash of every block prefix (one per block boundary) and cumulative token counts.

    Seeded with the model, so caches never match across models. Mod 2^61-1 collisions are
    negligible for the few thousand prefixes alive in a 5-minute window.
    """
    chains: list[int] = []
    cums: list[int] = []
    h = phash_cached("model\x00" + model)
    c = 0
    for bh, t in blocks:
        h = (h * _CHAIN_MUL + bh + 1) % _M61
        c += t
        chains.append(h)
        cums.append(c)
    return chains, cums


def openai_cached(shared: int) -> int:
    """OpenAI reports cache hits of at least 1,024 tokens, growing in 128-token steps (else 0)."""
    return shared // OPENAI_BLOCK * OPENAI_BLOCK if shared >= OPENAI_MIN_PROMPT else 0


class CacheSim:
    def __init__(self) -> None:
        self.trie: dict[int, int] = {}  # OpenAI: any prefix chain seen -> last use
        self.route: dict[int, tuple[int, list[int], list[int]]] = {}  # OpenAI routing prefix -> last request
        self.anth: dict[int, int] = {}  # Anthropic breakpoint prefixes written/read via cache_control
        self.anth_ideal: dict[int, int] = {}  # same, as if every request had a breakpoint after system+tools
        self.evict: deque[tuple[int, int, int]] = deque()

    def _expire(self, now: int) -> None:
        tables = (self.trie, self.route, self.anth, self.anth_ideal)
        while self.evict and self.evict[0][0] < now - TTL_MS:
            ts, which, key = self.evict.popleft()
            table = tables[which]
            cur = table.get(key)
            if cur is None:
                continue
            cur_ts = cur[0] if which == 1 else cur
            if cur_ts == ts:
                del table[key]

    def openai(self, now: int, chains: list[int], cums: list[int]) -> tuple[int, int]:
        """(reported cached tokens, as-logged cacheable tokens)."""
        self._expire(now)
        shared = 0
        for ch, cu in zip(chains, cums, strict=True):
            t = self.trie.get(ch)
            if t is None or now - t > TTL_MS:
                break
            shared = cu
        ridx = next((i for i, cu in enumerate(cums) if cu >= OPENAI_ROUTE_TOKENS), len(cums) - 1)
        rkey = chains[ridx]
        prev = self.route.get(rkey)
        rep = 0
        if prev is not None and now - prev[0] <= TTL_MS:
            for a, b, cu in zip(prev[1], chains, cums, strict=False):  # prompts differ in length
                if a != b:
                    break
                rep = cu
        for ch in chains:
            self.trie[ch] = now
            self.evict.append((now, 0, ch))
        self.route[rkey] = (now, chains, cums)
        self.evict.append((now, 1, rkey))
        return openai_cached(rep), openai_cached(shared)

    def anthropic(self, now: int, model: str, key: int, prefix_tokens: int,
                  cache_control: bool) -> tuple[int, int, int]:
        """(cache read, cache write, ideal read) for the system+tools breakpoint."""
        self._expire(now)
        read = write = ideal = 0
        if prefix_tokens >= ANTHROPIC_MIN_PREFIX[model]:
            if cache_control:
                t = self.anth.get(key)
                if t is not None and now - t <= TTL_MS:
                    read = prefix_tokens
                else:
                    write = prefix_tokens
                self.anth[key] = now
                self.evict.append((now, 2, key))
            t = self.anth_ideal.get(key)
            if t is not None and now - t <= TTL_MS:
                ideal = prefix_tokens
            self.anth_ideal[key] = now
            self.evict.append((now, 3, key))
        return read, write, ideal


# ---------------------------------------------------------------------------------------------
# Rendering to provider formats.


def openai_message(m: Msg) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.text}
    if m.role == "assistant":
        d: dict[str, Any] = {"role": "assistant", "content": m.text if m.pieces else None}
        if m.tool_calls:
            d["tool_calls"] = [{"id": tc.call_id, "type": "function",
                                "function": {"name": tc.name, "arguments": dumps(tc.args)}} for tc in m.tool_calls]
        return d
    if m.as_parts:
        return {"role": "user", "content": [{"type": "text", "text": p.text} for p in m.pieces]}
    return {"role": "user", "content": m.text}


def anthropic_message(m: Msg) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": m.tool_call_id,
                                             "content": m.text}]}
    if m.role == "assistant":
        if not m.tool_calls:
            return {"role": "assistant", "content": m.text}
        blocks: list[dict[str, Any]] = [{"type": "text", "text": m.text}] if m.pieces else []
        blocks += [{"type": "tool_use", "id": tc.call_id, "name": tc.name, "input": tc.args} for tc in m.tool_calls]
        return {"role": "assistant", "content": blocks}
    if m.as_parts:
        return {"role": "user", "content": [{"type": "text", "text": p.text} for p in m.pieces]}
    return {"role": "user", "content": m.text}


def request_form(call: Call) -> str:
    """Body shape: Anthropic Messages for Anthropic calls, except LiteLLM's OpenAI-style proxying."""
    task = call.task
    if task.provider == "anthropic" and (call.channel == "envelope" or task.cache_control):
        return "anthropic"
    return "openai"


_TOOLS_JSON: dict[str, str] = {}


def request_json(call: Call, batch: bool = False) -> str:
    """The provider request body as JSON text.

    Assembled from pre-encoded parts (system prompt, tools, each message) because re-encoding the
    same 10 KB system prompt and the growing chat history dominated the 1M-request run time.
    """
    task = call.task
    form = request_form(call)
    head: dict[str, Any] = {"model": task.model}
    if form == "openai":
        if task.output_format == "json":
            head["response_format"] = {"type": "json_object"}
        # Clients differ: the newer parameter name for one model in the envelope, the older one elsewhere.
        newer = task.model == "gpt-4.1-mini" and call.channel == "envelope"
        head["max_completion_tokens" if newer else "max_tokens"] = call.max_tokens
        head["temperature"] = 0 if task.output_format == "json" else 0.7
        if call.n and call.n > 1:
            head["n"] = call.n
        if call.stream and not batch:
            head["stream"] = True
            head["stream_options"] = {"include_usage": True}
        if call.user and not batch:
            head["user"] = call.user
        if call.channel.startswith("litellm"):
            head["litellm_session_id"] = call.session
        parts = ['{"role":"system","content":' + call.sysp.json("openai") + "}"] + [m.json("openai") for m in call.msgs]
        tail = ',"messages":[' + ",".join(parts) + "]"
    else:
        head["max_tokens"] = call.max_tokens
        head["temperature"] = 0.7
        if call.stream:
            head["stream"] = True
        if call.user:
            head["metadata"] = {"user_id": call.user}
        tail = (',"system":' + call.sysp.json("anthropic") + ',"messages":['
                + ",".join(m.json("anthropic") for m in call.msgs) + "]")
    if task.tools:
        tools = _TOOLS_JSON.get(task.id)
        if tools is None:
            tools = _TOOLS_JSON[task.id] = dumps(task.tools)
        tail = ',"tools":' + tools + tail
    return dumps(head)[:-1] + tail + "}"


# A placeholder where the request body goes; dumps_with_request() swaps in request_json().
_REQ = "\x00request\x00"
_REQ_JSON = json.dumps(_REQ)


def dumps_with_request(obj: dict[str, Any], body: str) -> str:
    return dumps(obj).replace(_REQ_JSON, body, 1)


def openai_response(call: Call, usage: dict[str, int], created: int) -> dict[str, Any]:
    choices = []
    for i, c in enumerate(call.choices):
        msg: dict[str, Any] = {"role": "assistant", "content": c.text, "refusal": None, "annotations": []}
        finish = {"stop": "stop", "empty": "stop", "refusal": "stop", "length": "length",
                  "content_filter": "content_filter", "tool_calls": "tool_calls"}[c.finish]
        if c.refusal_field:
            msg["content"] = None
            msg["refusal"] = c.text
        if c.tool_calls:
            msg["tool_calls"] = [{"id": tc.call_id, "type": "function",
                                  "function": {"name": tc.name, "arguments": dumps(tc.args)}} for tc in c.tool_calls]
        choices.append({"index": i, "message": msg, "logprobs": None, "finish_reason": finish})
    return {
        "id": call.response_id, "object": "chat.completion", "created": created,
        "model": MODELS[call.task.model]["snapshot"], "choices": choices,
        "usage": {"prompt_tokens": usage["input_total"], "completion_tokens": usage["output"],
                  "total_tokens": usage["input_total"] + usage["output"],
                  "prompt_tokens_details": {"cached_tokens": usage["read"], "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
        "service_tier": "default", "system_fingerprint": "fp_" + call.response_id[-10:].lower(),
    }


def anthropic_response(call: Call, usage: dict[str, int]) -> dict[str, Any]:
    c = call.choices[0]
    content: list[dict[str, Any]] = []
    if c.text:
        content.append({"type": "text", "text": c.text})
    if c.tool_calls:
        content += [{"type": "tool_use", "id": tc.call_id, "name": tc.name, "input": tc.args} for tc in c.tool_calls]
    stop = {"stop": "end_turn", "empty": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
            "refusal": "end_turn" if c.text else "refusal"}[c.finish]
    return {
        "id": call.response_id, "type": "message", "role": "assistant", "model": MODELS[call.task.model]["snapshot"],
        "content": content, "stop_reason": stop, "stop_sequence": None,
        "usage": {"input_tokens": usage["input_total"] - usage["read"] - usage["write"],
                  "cache_creation_input_tokens": usage["write"], "cache_read_input_tokens": usage["read"],
                  "cache_creation": {"ephemeral_5m_input_tokens": usage["write"], "ephemeral_1h_input_tokens": 0},
                  "output_tokens": usage["output"], "service_tier": "standard"},
    }


def litellm_response(call: Call, usage: dict[str, int], created: int) -> dict[str, Any]:
    """LiteLLM stores an OpenAI-shaped ModelResponse whatever the provider was."""
    c = call.choices[0]
    finish = {"stop": "stop", "empty": "stop", "refusal": "stop", "length": "length", "tool_calls": "tool_calls",
              "content_filter": "content_filter"}[c.finish]
    return {
        "id": call.response_id, "created": created, "model": MODELS[call.task.model]["snapshot"],
        "object": "chat.completion", "system_fingerprint": None,
        "choices": [{"finish_reason": finish, "index": 0,
                     "message": {"content": c.text, "role": "assistant", "tool_calls": None, "function_call": None}}],
        "usage": litellm_usage(usage),
    }


def litellm_usage(usage: dict[str, int]) -> dict[str, Any]:
    return {"completion_tokens": usage["output"], "prompt_tokens": usage["input_total"],
            "total_tokens": usage["input_total"] + usage["output"],
            "completion_tokens_details": {"reasoning_tokens": 0},
            "prompt_tokens_details": {"cached_tokens": usage["read"], "cache_creation_tokens": usage["write"],
                                      "cache_creation_token_details": {"ephemeral_5m_input_tokens": usage["write"],
                                                                       "ephemeral_1h_input_tokens": 0}},
            "cache_creation_input_tokens": usage["write"], "cache_read_input_tokens": usage["read"]}


def spend_usd(model: str, usage: dict[str, int], batch: bool) -> float:
    p = PRICES[model]
    uncached = usage["input_total"] - usage["read"] - usage["write"]
    cost = (uncached * p["input_per_mtok"] + usage["read"] * p["cached_input_per_mtok"]  # type: ignore[operator]
            + usage["write"] * (p["cache_write_5m_per_mtok"] or 0.0) + usage["output"] * p["output_per_mtok"]) / 1e6
    return cost * (BATCH_DISCOUNT if batch else 1.0)


LITELLM_COLUMNS = ("request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens",
                   "completion_tokens", "startTime", "endTime", "request_duration_ms", "completionStartTime",
                   "model", "model_id", "model_group", "custom_llm_provider", "api_base", "user", "metadata",
                   "cache_hit", "cache_key", "request_tags", "team_id", "organization_id", "end_user",
                   "requester_ip_address", "messages", "response", "session_id", "status",
                   "mcp_namespaced_tool_name", "agent_id", "proxy_server_request")
LITELLM_JSON_COLUMNS = {"metadata", "request_tags", "messages", "response", "proxy_server_request"}


# ---------------------------------------------------------------------------------------------
# Output files and truth aggregation.


class Writers:
    """Opens output files lazily; gzip members carry mtime 0 and no name so bytes are reproducible."""

    def __init__(self, out: Path, level: int, redirect: dict[str, str]) -> None:
        self.out = out
        self.level = level
        self.redirect = redirect  # logical file -> this worker's part file
        self.files: dict[str, Any] = {}
        self.raw: dict[str, Any] = {}
        self.count: Counter[str] = Counter()

    def open(self, rel: str) -> Any:
        f = self.files.get(rel)
        if f is None:
            path = self.out / self.redirect.get(rel, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            raw = open(path, "wb")  # noqa: SIM115 - kept open across calls, closed in close()
            self.raw[rel] = raw
            if path.name.endswith(".gz"):
                gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=self.level)
                f = io.TextIOWrapper(gz, encoding="utf-8", newline="\n")
            else:
                f = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
            self.files[rel] = f
        return f

    def line(self, rel: str, text: str) -> None:
        self.open(rel).write(text + "\n")
        self.count[rel] += 1

    def close(self, rel: str) -> None:
        f = self.files.pop(rel, None)
        if f is not None:
            f.close()
            raw = self.raw.pop(rel)
            if not raw.closed:
                raw.close()

    def close_all(self) -> None:
        for rel in list(self.files):
            self.close(rel)


def percentile(sorted_vals: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, DuckDB quantile_cont)."""
    if not sorted_vals:
        return 0.0
    pos = (len(sorted_vals) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


FORMAT_OF_CHANNEL = {"envelope": "envelope", "batch": "openai_batch", "litellm_jsonl": "litellm_spend_log_jsonl",
                     "litellm_csv": "litellm_spend_log_csv"}


class Truth:
    def __init__(self) -> None:
        self.calls = 0
        self.ok = 0
        self.errors = 0
        self.by_format: Counter[str] = Counter()
        self.by_provider: Counter[str] = Counter()
        self.by_model: Counter[str] = Counter()
        self.task: dict[str, Counter[str]] = {t: Counter() for t in TASKS}
        # Spend in integer pico-dollars: sums are then exact and independent of how workers split the work.
        self.task_spend: Counter[str] = Counter()
        self.task_formats: dict[str, Counter[str]] = {t: Counter() for t in TASKS}
        self.prov: dict[str, Counter[str]] = {"openai": Counter(), "anthropic": Counter()}
        self.tokens: Counter[str] = Counter()
        self.spend_total = 0
        self.spend_model: Counter[str] = Counter()
        self.spend_day: Counter[str] = Counter()
        self.signals: Counter[str] = Counter()
        self.quality: Counter[str] = Counter()
        self.secret_types: Counter[str] = Counter()
        self.secret_where: Counter[str] = Counter()
        self.weekly: Counter[str] = Counter()
        self.latency_env = array("d")
        self.latency_litellm = array("d")
        self.regen_jaccard_ge_08 = 0
        self.near_jaccard_min = 1.0
        self.near_jaccard_max = 0.0
        self.planted: Counter[str] = Counter()  # distinct planted secret values by type
        self.negatives_planted = 0

    def merge(self, o: Truth) -> None:
        """Add another worker's totals (integer sums and sorted-later arrays: order does not matter)."""
        for k, v in vars(o).items():
            mine = getattr(self, k)
            if isinstance(v, Counter):
                mine.update(v)
            elif isinstance(v, array):
                mine.extend(v)
            elif isinstance(v, dict):
                for kk, vv in v.items():
                    if isinstance(vv, Counter):
                        mine[kk].update(vv)
                    else:
                        mine[kk] = mine.get(kk, 0.0) + vv
            elif k == "near_jaccard_min":
                self.near_jaccard_min = min(mine, v)
            elif k == "near_jaccard_max":
                self.near_jaccard_max = max(mine, v)
            else:
                setattr(self, k, mine + v)

    def add(self, call: Call, usage: dict[str, int], cacheable: int, ideal: int, spend: float, fmt: str,
            week: str) -> None:
        task = call.task
        self.calls += 1
        self.by_format[fmt] += 1
        self.by_provider[task.provider] += 1
        self.by_model[task.model] += 1
        self.weekly[week] += 1
        tc = self.task[task.id]
        tc["requests"] += 1
        self.task_formats[task.id][fmt] += 1
        if call.error:
            self.errors += 1
            self.quality["errors"] += 1
        else:
            self.ok += 1
        tc["input"] += usage["input_total"]
        tc["output"] += usage["output"]
        tc["read"] += usage["read"]
        tc["write"] += usage["write"]
        tc["cacheable"] += cacheable
        tc["ideal"] += ideal
        pc = self.prov[task.provider]
        pc["input"] += usage["input_total"]
        pc["read"] += usage["read"]
        pc["write"] += usage["write"]
        pc["cacheable"] += cacheable
        pc["ideal"] += ideal
        self.tokens["input_total"] += usage["input_total"]
        self.tokens["uncached_input"] += usage["input_total"] - usage["read"] - usage["write"]
        self.tokens["cache_read"] += usage["read"]
        self.tokens["cache_write"] += usage["write"]
        self.tokens["output_total"] += usage["output"]
        pusd = round(spend * PICO)
        self.task_spend[task.id] += pusd
        self.spend_total += pusd
        self.spend_model[task.model] += pusd
        d = day_of(call.ts)
        self.spend_day[d] += pusd
        if call.regenerated:
            self.signals["regenerated"] += 1
        if call.regeneration_of:
            self.signals["regenerations"] += 1
            if call.pair_jaccard is not None and call.pair_jaccard >= 0.8:
                self.regen_jaccard_ge_08 += 1
        if call.retry_of:
            self.signals["retries_after_error"] += 1
        if call.edited:
            self.signals["edited"] += 1
        if call.feedback == 1:
            self.signals["feedback_positive"] += 1
        elif call.feedback == -1:
            self.signals["feedback_negative"] += 1
        if call.n and call.n > 1:
            self.signals["n_gt_1_requests"] += 1
        if call.duplicate_of:
            self.signals["exact_duplicate_requests"] += 1
        if call.near_duplicate_of:
            self.signals["near_duplicate_requests"] += 1
            self.near_jaccard_min = min(self.near_jaccard_min, call.pair_jaccard)
            self.near_jaccard_max = max(self.near_jaccard_max, call.pair_jaccard)
        fin = call.finish
        if fin == "length":
            self.quality["truncated"] += 1
        elif fin in ("refusal", "content_filter", "empty", "tool_calls"):
            self.quality[{"refusal": "refusals", "content_filter": "content_filter", "empty": "empty",
                          "tool_calls": "tool_calls"}[fin]] += 1
        if call.html:
            self.quality["html_injection"] += 1
        if call.secrets:
            self.signals["requests_with_secrets"] += 1
            for s in call.secrets:
                self.secret_types[s["type"]] += 1
                self.secret_where[s["where"]] += 1
        if call.negatives:
            self.signals["requests_with_negatives"] += 1
        for kind in call.planted or ():
            if kind == "luhn_invalid_16_digit":
                self.negatives_planted += 1
            else:
                self.planted[kind] += 1
        if call.latency is not None and fmt == "envelope":
            self.latency_env.append(call.latency)
        elif call.latency is not None and fmt.startswith("litellm"):
            self.latency_litellm.append(call.latency)


class Emitter:
    """Consumes calls in time order: simulates caches, renders records, writes truth."""

    def __init__(self, gen: Generator, out: Path, seg: int) -> None:
        self.gen = gen
        self.out = out
        self.w = Writers(out, gzip_level(gen.n_requests), {rel: part_path(rel, seg) for rel in SHARED_FILES})
        self.sim = CacheSim()
        self.truth = Truth()
        self.cur_week: str | None = None
        self.bad_good_lines: list[str] = []
        self.bad_day = min(gen.days - 1, 11)
        self.batch_outputs = 0
        self.lc_writer: Any = None

    def week_file(self, ts: int) -> tuple[str, int]:
        w = (ts - self.gen.t0) // (7 * 86_400_000) + 1
        return f"envelope/week-{w:02d}.jsonl.gz", w

    def timestamp(self, ts: int, week: int) -> Any:
        # One week in epoch seconds, one in epoch milliseconds, the rest ISO-8601 with Z.
        if week == 3:
            return round(ts / 1000, 3)
        if week == 5:
            return ts
        return iso_ms(ts)

    def warm(self, call: Call) -> None:
        """Feed a call from the day before this worker's segment through the cache simulation only."""
        self.usage(call)

    def usage(self, call: Call) -> tuple[dict[str, int], int, int]:
        task = call.task
        if call.error:
            return {"input_total": 0, "read": 0, "write": 0, "output": 0}, 0, 0
        blocks: list[tuple[int, int]] = []
        if task.tools_block:
            blocks.append(task.tools_block)
        blocks.extend(call.sysp.blocks)
        n_stable = len(blocks)
        for m in call.msgs:
            blocks.extend(m.blocks())
        chains, cums = chain_hashes(task.model, blocks)
        input_total = cums[-1] + REPLY_OVERHEAD
        output = sum(c.tokens for c in call.choices)
        if task.provider == "openai":
            reported, cacheable = self.sim.openai(call.ts, chains, cums)
            return {"input_total": input_total, "read": reported, "write": 0, "output": output}, cacheable, cacheable
        prefix = cums[n_stable - 1]
        read, write, ideal = self.sim.anthropic(call.ts, task.model, chains[n_stable - 1], prefix,
                                                task.cache_control)
        return {"input_total": input_total, "read": read, "write": write, "output": output}, read, ideal

    def emit(self, call: Call) -> None:
        usage, cacheable, ideal = self.usage(call)
        batch = call.channel == "batch"
        spend = spend_usd(call.task.model, usage, batch) if not call.error else 0.0
        fmt = FORMAT_OF_CHANNEL[call.channel]
        rel, week = self.week_file(call.ts)
        if call.channel == "envelope":
            if self.cur_week != rel:
                if self.cur_week:
                    self.w.close(self.cur_week)
                self.cur_week = rel
            line = dumps_with_request(self.envelope(call, usage, week), request_json(call))
            if (not call.error and len(self.bad_good_lines) < 2 and day_of(call.ts) == day_of(
                    self.gen.t0 + self.bad_day * 86_400_000) and call.turn is None):
                rel = "bad/bad_lines.jsonl"
                self.bad_good_lines.append(line)
            else:
                self.w.line(rel, line)
        elif batch:
            rel = "openai_batch/batch_output.jsonl"
            self.w.line(rel, dumps(self.batch_output(call, usage)))
        else:
            row = self.litellm_row(call, usage, spend)
            if call.channel == "litellm_jsonl":
                rel = "litellm/spend_logs.jsonl.gz"
                self.w.line(rel, dumps_with_request(row, request_json(call)))
            else:
                rel = "litellm/spend_logs.csv"
                if self.lc_writer is None:
                    # The header is written once by the merge step, not by each worker.
                    self.lc_writer = csv.writer(self.w.open(rel), lineterminator="\n")
                row["proxy_server_request"] = request_json(call)  # already JSON text
                self.lc_writer.writerow([row[c] if c == "proxy_server_request" else dumps(row[c])
                                         if c in LITELLM_JSON_COLUMNS else
                                         ("" if row[c] is None else row[c]) for c in LITELLM_COLUMNS])
                self.w.count[rel] += 1
        wk = f"{(call.ts - self.gen.t0) // (7 * 86_400_000) + 1:02d}"
        self.truth.add(call, usage, cacheable, ideal, spend, fmt, wk)
        self.w.line("truth_requests.jsonl.gz", dumps(self.truth_line(call, usage, cacheable, ideal, spend, fmt, rel)))

    def envelope(self, call: Call, usage: dict[str, int], week: int) -> dict[str, Any]:
        task = call.task
        request = _REQ
        if task.provider == "openai":
            response = None if call.error else openai_response(call, usage, call.ts // 1000)
            endpoint = "/v1/chat/completions"
        else:
            response = None if call.error else anthropic_response(call, usage)
            endpoint = "/v1/messages"
        error = None
        if call.error:
            error = {"status": call.error[0], "type": call.error[1], "message": call.error[2]}
        fb = {"rating": call.feedback, "comment": call.fb_comment} if call.feedback else None
        return {"id": call.rid, "timestamp": self.timestamp(call.ts, week), "provider": task.provider,
                "endpoint": endpoint, "request": request, "response": response, "error": error,
                "latency_ms": call.latency, "ttft_ms": call.ttft, "user_id": call.user, "session_id": call.session,
                "metadata": {"app": task.app, "env": "prod", "client": "web" if call.stream else "api"},
                "feedback": fb}

    def batch_output(self, call: Call, usage: dict[str, int]) -> dict[str, Any]:
        if call.error:
            return {"id": call.extra["batch_req"], "custom_id": call.rid, "response": None,
                    "error": {"code": call.error[1], "message": call.error[2]}}
        return {"id": call.extra["batch_req"], "custom_id": call.rid,
                "response": {"status_code": 200, "request_id": call.extra["req_id"],
                             "body": openai_response(call, usage, call.ts // 1000)}, "error": None}

    def litellm_row(self, call: Call, usage: dict[str, int], spend: float) -> dict[str, Any]:
        task = call.task
        anthropic_body = request_form(call) == "anthropic"  # /v1/messages passthrough
        request = _REQ
        team = "team-" + task.app
        lat = call.latency or 0
        first = call.ts + (call.ttft if call.ttft else lat)
        meta: dict[str, Any] = {"user_api_key_alias": f"{task.app}-prod", "user_api_key_team_id": team,
                                "spend_logs_metadata": None}
        if call.error:
            meta["error_information"] = {"error_code": str(call.error[0]), "error_class": call.error[1],
                                         "error_message": call.error[2]}
            meta["usage_object"] = None
        else:
            meta["usage_object"] = litellm_usage(usage)
        return {
            "request_id": call.rid, "call_type": "anthropic_messages" if anthropic_body else "acompletion",
            "api_key": hashlib.sha256(f"sk-litellm-{task.app}".encode()).hexdigest(),
            "spend": round(spend, 10), "total_tokens": usage["input_total"] + usage["output"],
            "prompt_tokens": usage["input_total"], "completion_tokens": usage["output"],
            "startTime": iso_ms(call.ts), "endTime": iso_ms(call.ts + lat), "request_duration_ms": lat,
            "completionStartTime": iso_ms(first), "model": task.model,
            "model_id": hashlib.sha256(task.model.encode()).hexdigest()[:16], "model_group": task.model,
            "custom_llm_provider": task.provider, "api_base": "https://api.anthropic.com",
            "user": f"svc-{task.app}", "metadata": meta, "cache_hit": "False", "cache_key": "Cache OFF",
            "request_tags": ["prod", task.app], "team_id": team, "organization_id": None, "end_user": call.user,
            "requester_ip_address": "", "messages": {},
            "response": {} if call.error else litellm_response(call, usage, call.ts // 1000),
            "session_id": call.session, "status": "failure" if call.error else "success",
            "mcp_namespaced_tool_name": None, "agent_id": None, "proxy_server_request": request,
        }

    def truth_line(self, call: Call, usage: dict[str, int], cacheable: int, ideal: int, spend: float, fmt: str,
                   rel: str) -> dict[str, Any]:
        task = call.task
        return {
            "request_id": call.rid, "format": fmt, "file": rel, "ts": iso_ms(call.ts), "task_type": task.id,
            "model": task.model, "provider": task.provider, "session_id": call.session, "user_id": call.user,
            "status": "error" if call.error else "ok", "finish": call.finish, "turn": call.turn,
            "regenerated": bool(call.regenerated), "regeneration_of": call.regeneration_of,
            "retry_of": call.retry_of, "edited": bool(call.edited), "feedback": call.feedback, "n": call.n,
            "duplicate_of": call.duplicate_of, "near_duplicate_of": call.near_duplicate_of,
            "pair_jaccard": call.pair_jaccard, "secrets": call.secrets, "negatives": call.negatives,
            "html_injection": bool(call.html), "input_tokens": usage["input_total"], "cached_tokens": usage["read"],
            "cache_write_tokens": usage["write"], "output_tokens": usage["output"],
            "cacheable_as_logged": cacheable, "cacheable_ideal": ideal, "spend_usd": round(spend, 10),
            "system_prompt_version": call.sys_version, "response_id": None if call.error else call.response_id,
            "latency_ms": call.latency,
        }

    # -- batch input (written in input order when the job is generated) ------------------------
    def batch_input(self, calls: list[Call]) -> None:
        for call in calls:
            self.w.line(BATCH_INPUT,
                        dumps_with_request({"custom_id": call.rid, "method": "POST", "url": "/v1/chat/completions",
                                            "body": _REQ}, request_json(call, batch=True)))


# ---------------------------------------------------------------------------------------------
# Bad records.


def bad_lines(good: list[str]) -> tuple[list[bytes], Counter[str]]:
    """Broken records with known reasons, mixed with the valid lines routed here."""

    def record(i: int, **changes: Any) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": f"req_bad{i:021d}", "timestamp": f"2026-09-12T10:00:{i:02d}.000Z", "provider": "openai",
            "endpoint": "/v1/chat/completions",
            "request": {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hello there"}]},
            "response": None, "error": None, "latency_ms": 812, "ttft_ms": None, "user_id": None,
            "session_id": None, "metadata": {}, "feedback": None}
        d.update(changes)
        return d

    def without(d: dict[str, Any], key: str) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k != key}

    out: list[tuple[str, bytes]] = [
        ("truncated_json", dumps(record(1))[:150].encode()),
        ("truncated_json", (good[0] if good else dumps(record(2)))[:300].encode()),
        # Invalid UTF-8 bytes: reject the line, do not decode with replacement characters.
        ("invalid_utf8", dumps(record(3)).replace("hello there", "hello \udcff there")
         .encode("utf-8", "surrogateescape")),
        ("invalid_utf8", dumps(record(4)).replace("hello there", "caf\udce9 \udcc3( order")
         .encode("utf-8", "surrogateescape")),
        ("not_an_object", ("[" + dumps(record(5)) + "]").encode()),
        ("not_an_object", b'"just a string"'),
        ("missing_required_field", dumps(without(record(7), "request")).encode()),
        ("missing_required_field", dumps(without(record(8), "timestamp")).encode()),
        ("missing_required_field", dumps(without(record(9), "id")).encode()),
        ("wrong_type", dumps(record(10, timestamp=True)).encode()),
        ("wrong_type", dumps(record(11, request="gpt-4.1-mini: hello there")).encode()),
        ("not_json", b"this line is not json at all"),
    ]
    reasons = Counter(r for r, _ in out)
    lines = [b for _, b in out]
    # Valid lines sit between bad ones so a reader that stops at the first error loses them.
    for i, g in enumerate(good):
        lines.insert(3 + 4 * i, g.encode())
    return lines, reasons


# ---------------------------------------------------------------------------------------------


LOGAUDITIGNORE = """# fnmatch patterns the ingest skips when walking this folder
generate.py
README.md
truth.json
truth_requests.jsonl.gz
.logauditignore
__pycache__
"""


def clean_outputs(out: Path) -> None:
    """Remove files a previous run wrote, so a shorter window leaves no stale weeks behind."""
    for pattern in ("envelope/week-*.jsonl*", "openai_batch/batch_*.jsonl", "litellm/spend_logs.*",
                    "bad/bad_lines.jsonl", "truth.json", "truth_requests.jsonl.gz"):
        for p in sorted(out.glob(pattern)):
            p.unlink()


def gzip_level(n_requests: int) -> int:
    # Best compression for the committed sample; speed for benchmark-sized runs.
    return 9 if n_requests <= 20_000 else 1


BATCH_INPUT = "openai_batch/batch_input.jsonl.gz"
# Files every worker appends to: each writes a plain part, merged in segment order afterwards.
SHARED_FILES = ("truth_requests.jsonl.gz", "litellm/spend_logs.jsonl.gz", "litellm/spend_logs.csv",
                "openai_batch/batch_output.jsonl")


def part_path(rel: str, seg: int) -> str:
    return f".parts/{rel.replace('/', '__').removesuffix('.gz')}.{seg:03d}"


def segments(days: int, parts: int, load: list[int]) -> list[tuple[int, int]]:
    """Split the window into `parts` runs of whole weeks [a, b) with about equal numbers of calls.

    Whole weeks, because an envelope file is one week. The split changes no output byte (see
    run_segment), only how the work spreads over processes.
    """
    weeks = [(a, min(a + 7, days)) for a in range(0, days, 7)]
    parts = max(1, min(parts, len(weeks)))
    week_load = [sum(load[a:b]) for a, b in weeks]
    total = sum(week_load)
    out: list[tuple[int, int]] = []
    first, acc = 0, 0
    for i, (_, b) in enumerate(weeks[:-1]):
        acc += week_load[i]
        left_weeks, left_parts = len(weeks) - i - 1, parts - len(out) - 1
        if left_parts > 0 and (acc * parts >= total * (len(out) + 1) or left_weeks == left_parts):
            out.append((weeks[first][0], b))
            first = i + 1
    out.append((weeks[first][0], days))
    return out


SegmentJob = tuple[Path, int, int, int, date, int, int, int]


def run_segment(job: SegmentJob) -> tuple[Truth, Counter[str], list[str]]:
    """Generate and emit the calls of days [a, b).

    The two days before `a` are regenerated (a day depends only on the seed and on the day before,
    see Generator.day_calls) and fed through the cache simulation without output, so sources and
    cache state at the segment start equal a sequential run's: a cache entry lives 5 minutes and no
    follow-up spans more than a few hours. Calls spilling past `b` belong to the next segment,
    except in the last one.
    """
    out, n_requests, days, seed, start, seg, a, b = job
    gen = Generator(seed, start, days, n_requests)
    em = Emitter(gen, out, seg)
    seg_start = gen.t0 + a * DAY_MS
    for day in range(max(0, a - 2), b):
        gen.day_calls(day)
        if day == gen.batch_day and gen.n_batch:
            calls = gen.batch_calls()
            if day >= a:
                em.batch_input(calls)
                em.w.close(BATCH_INPUT)
            for c in calls:
                gen.push(c)
        horizon = gen.t0 + (day + 1) * DAY_MS
        while gen.heap and gen.heap[0][0] < horizon:
            call = heapq.heappop(gen.heap)[2]
            if call.ts < seg_start:
                em.warm(call)
            else:
                em.emit(call)
    if b == days:
        while gen.heap:
            em.emit(heapq.heappop(gen.heap)[2])
    em.w.close_all()
    return em.truth, em.w.count, em.bad_good_lines


def merge_parts(out: Path, n_segments: int, level: int) -> None:
    """Concatenate the workers' parts in segment order into single-member files."""
    for rel in SHARED_FILES:
        parts = [out / part_path(rel, s) for s in range(n_segments)]
        parts = [p for p in parts if p.exists()]
        if not parts:
            continue
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as raw:
            dst: Any = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level) \
                if rel.endswith(".gz") else raw
            if rel.endswith(".csv"):
                dst.write((",".join(LITELLM_COLUMNS) + "\n").encode())
            for p in parts:
                with open(p, "rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
                p.unlink()
            if dst is not raw:
                dst.close()
    parts_dir = out / ".parts"
    if parts_dir.exists() and not any(parts_dir.iterdir()):
        parts_dir.rmdir()


def run(out: Path, n_requests: int, days: int, seed: int, start: date, workers: int = 1) -> dict[str, Any]:
    """Write the whole sample under `out` and return truth.json's content.

    The bytes do not depend on `workers`: each segment rebuilds the state a sequential run would have
    at its start, parts are merged in order, and the truth totals are exact integer sums.
    """
    out.mkdir(parents=True, exist_ok=True)
    clean_outputs(out)
    (out / ".parts").mkdir(exist_ok=True)
    plan = Generator(seed, start, days, n_requests)
    load = [sum(plan.alloc[ch][d] for ch in plan.alloc) + (plan.n_batch if d == plan.batch_day else 0)
            for d in range(days)]
    jobs: list[SegmentJob] = [(out, n_requests, days, seed, start, i, a, b)
                              for i, (a, b) in enumerate(segments(days, workers, load))]
    if workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context().Pool(min(workers, len(jobs))) as pool:
            results = pool.map(run_segment, jobs, chunksize=1)
    else:
        results = [run_segment(job) for job in jobs]
    truth = Truth()
    counts: Counter[str] = Counter()
    good: list[str] = []
    for t, c, g in results:
        truth.merge(t)
        counts.update(c)
        good.extend(g)
    merge_parts(out, len(jobs), gzip_level(n_requests))
    lines, reasons = bad_lines(good)
    (out / "bad").mkdir(parents=True, exist_ok=True)
    (out / "bad" / "bad_lines.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (out / ".logauditignore").write_text(LOGAUDITIGNORE, encoding="utf-8")
    doc = build_truth(plan, truth, counts, len(good), reasons)
    (out / "truth.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return doc


def share(num: int, den: int) -> float:
    return round(num / den, 6) if den else 0.0


def file_format(rel: str) -> str:
    if rel.startswith("envelope/"):
        return "envelope"
    if rel.startswith("openai_batch/batch_input"):
        return "openai_batch_input"
    if rel.startswith("openai_batch/batch_output"):
        return "openai_batch_output"
    return "litellm_spend_log_csv" if rel.endswith(".csv") else "litellm_spend_log_jsonl"


def build_truth(gen: Generator, t: Truth, counts: Counter[str], n_good_bad: int,
                reasons: Counter[str]) -> dict[str, Any]:
    files: dict[str, Any] = {}
    for rel in sorted(counts):
        if rel == "truth_requests.jsonl.gz":
            continue
        fmt = file_format(rel)
        files[rel] = {"format": fmt, "records": counts[rel], "bad_records": 0}
    files["bad/bad_lines.jsonl"] = {"format": "bad", "records": n_good_bad,
                                    "bad_records": sum(reasons.values())}
    end = gen.start + timedelta(days=gen.days - 1)
    task_types: dict[str, Any] = {}
    per_task: dict[str, Any] = {}
    for tid, task in TASKS.items():
        c = t.task[tid]
        breaker = None
        if task.breaker:
            breaker = {"kind": task.breaker,
                       "stable_tokens_after": join_pieces(task.sys_paragraphs[1]).tokens}
        task_types[tid] = {
            "label": task.label, "requests": c["requests"], "model": task.model, "provider": task.provider,
            "output_format": task.output_format, "system_prompt_tokens": task.system_tokens(1),
            "system_prompt_versions": len(task.sys_paragraphs), "has_tools": bool(task.tools),
            "multi_turn": task.multi_turn, "prefix_breaker": breaker, "input_tokens": c["input"],
            "output_tokens": c["output"], "spend_usd": round(t.task_spend[tid] / PICO, 6),
            # extra detail
            "system_prompt_tokens_by_version": {str(v): task.system_tokens(v) for v in task.sys_paragraphs},
            "version_switch_at": iso_ms(gen.version_switch_ms) if task.version_change else None,
            "tool_definition_tokens": task.tools_block[1] if task.tools_block else 0,
            "cache_control": task.cache_control, "app": task.app,
            "by_format": dict(sorted(t.task_formats[tid].items())),
        }
        per_task[tid] = {"as_logged_share": share(c["cacheable"], c["input"]),
                         "ideal_share": share(c["ideal"], c["input"]),
                         "reported_cached_share": share(c["read"], c["input"])}
    po, pa = t.prov["openai"], t.prov["anthropic"]
    all_in = po["input"] + pa["input"]
    lat = sorted(list(t.latency_env) + list(t.latency_litellm))
    lat_env = sorted(t.latency_env)
    weeks = dict(sorted(t.weekly.items()))
    return {
        "seed": gen.seed, "generator_version": GENERATOR_VERSION,
        "window": {"start": gen.start.isoformat(), "end": end.isoformat(), "days": gen.days},
        "files": files,
        "requests": {"total_api_calls": t.calls, "succeeded": t.ok, "errors": t.errors,
                     "by_format": dict(sorted(t.by_format.items())), "by_provider": dict(sorted(t.by_provider.items())),
                     "by_model": dict(sorted(t.by_model.items()))},
        "bad_records": {"total": sum(reasons.values()), "by_reason": dict(sorted(reasons.items()))},
        "task_types": task_types,
        "cache": {
            "openai_as_logged_share": share(po["cacheable"], po["input"]),
            "anthropic_as_logged_share": share(pa["cacheable"], pa["input"]),
            "anthropic_ideal_share": share(pa["ideal"], pa["input"]),
            "overall_as_logged_share": share(po["cacheable"] + pa["cacheable"], all_in),
            "overall_ideal_share": share(po["ideal"] + pa["ideal"], all_in),
            "reported_cached_tokens": t.tokens["cache_read"], "reported_cache_write_tokens": t.tokens["cache_write"],
            "openai_reported_cached_share": share(po["read"], po["input"]),
            "per_task": per_task,
        },
        "tokens": {k: t.tokens[k] for k in ("input_total", "uncached_input", "cache_read", "cache_write",
                                            "output_total")},
        "prices": {**{m: dict(p) for m, p in PRICES.items()}, "currency": "USD", "as_of": PRICES_AS_OF,
                   "batch_discount": BATCH_DISCOUNT},
        "spend": {"total_usd": round(t.spend_total / PICO, 6),
                  "by_model": {m: round(t.spend_model[m] / PICO, 6) for m in MODELS},
                  "by_day": {d: round(v / PICO, 6) for d, v in sorted(t.spend_day.items())}},
        "signals": {"regenerated": t.signals["regenerated"], "retries_after_error": t.signals["retries_after_error"],
                    "edited": t.signals["edited"], "feedback_positive": t.signals["feedback_positive"],
                    "feedback_negative": t.signals["feedback_negative"],
                    "n_gt_1_requests": t.signals["n_gt_1_requests"]},
        "dedup": {"exact_duplicate_requests": t.signals["exact_duplicate_requests"],
                  "near_duplicate_requests": t.signals["near_duplicate_requests"],
                  "near_duplicate_jaccard_range": [t.near_jaccard_min, t.near_jaccard_max]
                  if t.signals["near_duplicate_requests"] else None,
                  "regeneration_pairs_jaccard_ge_0_8": t.regen_jaccard_ge_08},
        "quality": {"truncated": t.quality["truncated"], "refusals": t.quality["refusals"],
                    "content_filter": t.quality["content_filter"], "empty": t.quality["empty"],
                    "errors": t.quality["errors"], "tool_calls": t.quality["tool_calls"],
                    "html_injection": t.quality["html_injection"]},
        "secrets": {"planted_total": sum(t.planted.values()), "by_type": dict(sorted(t.planted.items())),
                    "requests_with_secrets": t.signals["requests_with_secrets"],
                    "luhn_invalid_card_negatives": t.negatives_planted,
                    "requests_with_luhn_negatives": t.signals["requests_with_negatives"],
                    # a planted string is counted again in every request that resends it (history, retries)
                    "occurrences_total": sum(t.secret_types.values()),
                    "occurrences_by_type": dict(sorted(t.secret_types.items())),
                    "occurrences_by_where": dict(sorted(t.secret_where.items()))},
        "growth": {"weekly_growth_rate": WEEKLY_GROWTH, "weekend_factor": WEEKEND_FACTOR,
                   "api_calls_by_week": weeks},
        "latency": {"p50_ms": round(percentile(lat, 0.5), 1), "p90_ms": round(percentile(lat, 0.9), 1),
                    "p99_ms": round(percentile(lat, 0.99), 1), "count": len(lat),
                    "envelope_only": {"p50_ms": round(percentile(lat_env, 0.5), 1),
                                      "p90_ms": round(percentile(lat_env, 0.9), 1),
                                      "p99_ms": round(percentile(lat_env, 0.99), 1), "count": len(lat_env)}},
    }


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=here, help="output folder (default: next to this script)")
    ap.add_argument("--requests", type=int, default=4000, help="number of API calls to generate")
    ap.add_argument("--days", type=int, default=45, help="length of the window in days")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--start", type=date.fromisoformat, default=date(2026, 9, 1), help="first day (UTC)")
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                    help="processes (output bytes do not depend on it)")
    args = ap.parse_args(argv)
    if args.requests < 1 or args.days < 1:
        ap.error("--requests and --days must be positive")
    out: Path = args.out.resolve()
    truth = run(out, args.requests, args.days, args.seed, args.start, max(1, args.workers))
    readme = here / "README.md"
    if out != here and readme.exists():
        shutil.copyfile(readme, out / "README.md")
    r = truth["requests"]
    print(f"wrote {r['total_api_calls']} API calls ({r['errors']} errors) over {args.days} days to {out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
