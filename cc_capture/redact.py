"""Secrets out before anything reaches the store.

Two layers: patterns for well-known credential formats (cloud keys, tokens, private keys,
JWTs, passwords in URLs) applied to every string, and names that look secret (key, token,
secret, password, ...) whose values are replaced, both in `NAME=value` text and in JSON
fields. One Aho-Corasick pass over a text finds every literal any rule needs: none, and the
text is clean; otherwise it says which patterns to run and where the names are. For JSON
(`redact_payload` for hook payloads, `redact_json` for transcript tool inputs and results) the
same pass over the raw text decides whether any rule could fire before anything is decoded:
most documents that merely mention a key or a token are stored as they came.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import ahocorasick_rs
import msgspec

MARK = "[REDACTED:{}]"

# Well-known credential formats: (kind, pattern). Order matters: specific before generic.
_FORMATS: list[tuple[str, str]] = [
    ("private_key", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:.|\n)*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)"),
    ("aws_access_key", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"),
    ("gitlab_token", r"\bgl(?:pat|dt|rt|ptt|ft|cbt|imt|oas|soat|agent)-[A-Za-z0-9_\-]{20,}"),
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}"),
    ("openai_key", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
    ("slack_token", r"\bxox[abposre]-[A-Za-z0-9\-]{10,}"),
    ("slack_webhook", r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]{20,}"),
    ("stripe_key", r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|\bwhsec_[A-Za-z0-9]{20,}"),
    ("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}"),
    ("jwt", r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    ("bearer_token", r"(?<=[Bb]earer )[A-Za-z0-9._~+/=\-]{16,}"),
    ("basic_auth", r"(?<=[Aa]uthorization: [Bb]asic )[A-Za-z0-9+/=]{8,}"),
]
# Lower-case literals one of which each format needs: a pattern runs only where its anchor occurs.
_ANCHORS = {
    "private_key": ("private key",), "aws_access_key": ("akia", "asia", "agpa", "aida", "aroa", "aipa", "anpa", "anva",
                                                        "abia", "acca"),
    "github_token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "gitlab_token": ("glpat-", "gldt-", "glrt-", "glptt-", "glft-", "glcbt-", "glimt-", "gloas-", "glsoat-",
                     "glagent-"),
    "anthropic_key": ("sk-ant-",), "openai_key": ("sk-",), "slack_token": ("xox",), "slack_webhook": ("hooks.slack.com",),
    "stripe_key": ("_live_", "_test_", "whsec_"), "google_api_key": ("aiza",), "jwt": ("eyj",),
    "bearer_token": ("bearer ",), "basic_auth": ("authorization: basic ",),
}
_FORMAT_RES = [(kind, re.compile(pat)) for kind, pat in _FORMATS]

# Passwords in URLs: scheme://user:PASSWORD@host
_URL_PASSWORD_RE = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@'\"]+:)(?P<pw>[^@\s/'\"]+)(?P<at>@)")

# .netrc and similar: "machine HOST login USER password SECRET" (whitespace, no `=`).
_NETRC_RE = re.compile(r"(?P<head>\b(?:machine|login)\s+\S+(?:\s+login\s+\S+)?\s+password\s+)(?P<pw>\S+)")

# Words that make a name look secret. Bare `key` and `pwd` count only as JSON field names:
# in free text they are too often prose ("the key: ...") or the working directory (PWD=/home).
_SECRET_WORDS = (
    r"api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key|secret|passwd|password|passphrase|token|credentials?|"
    r"auth[_\-]?key|session[_\-]?key|[a-z0-9]+_pwd|[a-z0-9]+[_\-.]key"
)
_TEXT_NAME = rf"[A-Za-z0-9_.\-]*?(?:{_SECRET_WORDS})[A-Za-z0-9_\-]*"
# Where a secret word occurs in free text; the name around it and the value after it are read
# from there (cheaper than trying a name at every word of a long tool output).
_TEXT_NAME_RE = re.compile(rf"{_TEXT_NAME}", re.IGNORECASE)
# Literals every secret word contains; an automaton finds them in one pass, and the name around
# each hit must then match _TEXT_NAME in full.
_SECRET_WORD_ANCHORS = ("key", "secret", "passwd", "password", "passphrase", "token", "credential", "_pwd")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
# Literals of the field names that are secret only as JSON fields (key, pwd, pass, authorization, cookie).
_FIELD_NAME_WORDS = ("pwd", "pass", "auth", "cookie")
_FIELD_NAME_RE = re.compile(rf"^(?:{_TEXT_NAME}|key|pwd|pass|authorization|cookie|set-cookie)$", re.IGNORECASE)
# Names that contain a secret word but hold no secret.
_NOT_SECRET_NAMES = re.compile(
    r"(?i)^(?:.*tokens?_?(?:count|usage|limit|budget|len|length|ids?|type|s)|max_?tokens?|.*_tokens|tokens|tokeni[sz]e[rd]?.*|"
    r"num_?tokens|total_?tokens|input_?tokens|output_?tokens|.*key_?(?:id|name|path|file|type|bindings?|s)|primary_?key|"
    r"foreign_?key|sort_?key|partition_?key|cache_?key|.*password_?(?:file|path|prompt|hint|policy|length))$"
)
# After a secret-looking NAME: the separator and the value (quoted, or a bare token).
_AFTER_NAME_RE = re.compile(
    r"(?P<sep>[\"']?\s*(?:=|:|:=)\s*)(?:\"(?P<dq>[^\"\n]*)\"|'(?P<sq>[^'\n]*)'|(?P<bare>[^\s\"'`,;)}\]]+))"
)
_WORD_TAIL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")

# Lower-case fragments, one of which every pattern above needs: a payload with none of them is
# clean. Keep in step with the patterns (tests check every corpus secret trips it).
_PREFILTER_WORDS = (
    "key", "token", "secret", "passw", "pass", "pwd", "credential", "auth", "bearer", "cookie", "private",
    "akia", "asia", "agpa", "aida", "aroa", "aipa", "anpa", "anva", "abia", "acca",
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-", "glrt-", "glptt-", "glft-",
    "glcbt-", "glimt-", "gloas-", "glsoat-", "glagent-", "sk-", "xox", "hooks.slack.com", "_live_", "_test_",
    "whsec_", "aiza", "eyj", "machine", "login",
)
_URL_USERINFO_RE = re.compile(r"://[^/\s\"]*:[^@\s\"]*@")


@dataclass(frozen=True)
class _Literal:
    """A literal some rule needs, and which rules: the format patterns anchored on it, and
    whether it is part of a secret-looking name."""

    word: str
    kinds: frozenset[str]
    secret_word: bool
    name_word: bool  # part of a name whose value may be a secret: NAME=value, or a JSON field


def _literal_table() -> list[_Literal]:
    anchors = {a for kind_anchors in _ANCHORS.values() for a in kind_anchors}
    words = sorted(set(_PREFILTER_WORDS) | set(_SECRET_WORD_ANCHORS) | anchors)
    return [_Literal(word, frozenset(kind for kind, anchors in _ANCHORS.items() if word in anchors),
                     word in _SECRET_WORD_ANCHORS, word in _SECRET_WORD_ANCHORS or word in _FIELD_NAME_WORDS)
            for word in words]


# Every literal of every rule in one automaton: one pass over a text tells whether it can hold a
# secret at all, which format patterns to run, and where the secret-looking names are.
_LITERAL_TABLE = _literal_table()
_LITERALS = ahocorasick_rs.AhoCorasick([lit.word for lit in _LITERAL_TABLE])


def _literals_in(low: str) -> list[tuple[int, _Literal]]:
    """(start index, literal) of every literal in a lower-cased text, overlaps included, by end."""
    return [(start, _LITERAL_TABLE[i]) for i, start, _ in _LITERALS.find_matches_as_indexes(low, overlapping=True)]


# A string shorter than every literal (and than "://") holds no secret by pattern.
_SHORTEST_LITERAL = min(len("://"), *(len(lit.word) for lit in _LITERAL_TABLE))


def _looks_like_value(value: str) -> bool:
    """A literal worth hiding, not a reference, an expression, a number or a placeholder."""
    if len(value) < 4 or value.isdigit():
        return False
    if value.startswith(("$", "%", "{", "<", "[REDACTED")):
        return False
    low = value.lower()
    if low in {"none", "null", "true", "false", "undefined", "nil", "required", "optional", "string", "str", "bool", "int"}:
        return False
    return True


def _looks_like_expression(value: str) -> bool:
    """An unquoted right-hand side that is code (os.environ[...], self.token, f(x)), not a literal."""
    return "(" in value or "[" in value or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+", value) is not None


def _secret_words(low: str) -> list[tuple[int, str]]:
    """(start index, word) of each secret-word literal in a lower-cased text."""
    return [(start, lit.word) for start, lit in _literals_in(low) if lit.secret_word]


def _redact_assignments(text: str, low: str, words: list[tuple[int, str]]) -> str:
    """`NAME=value` / `NAME: value` where NAME looks secret: the value is replaced (`low` is
    text.lower(), `words` the secret-word literals found in it)."""
    if len(low) != len(text):  # a character whose lower case is longer: positions would drift
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
        words = _secret_words(low)
    out, last, pos = [], 0, 0
    for hit_start, word in words:
        if hit_start < pos:
            continue
        start, end = hit_start, hit_start + len(word)
        while start > 0 and text[start - 1] in _NAME_CHARS:
            start -= 1
        while end < len(text) and text[end] in _WORD_TAIL:
            end += 1
        pos = end
        if start < last:
            continue
        name = text[start:end].lstrip(".-")
        after = _AFTER_NAME_RE.match(text, end)
        if not name or not after or _NOT_SECRET_NAMES.match(name) or not _TEXT_NAME_RE.fullmatch(name):
            continue
        bare = after.group("bare")
        value = bare if bare is not None else (after.group("dq") if after.group("dq") is not None else after.group("sq"))
        if not _looks_like_value(value) or (bare is not None and _looks_like_expression(bare)):
            pos = after.end()
            continue
        quote = "" if bare is not None else ('"' if after.group("dq") is not None else "'")
        out.append(text[last:end] + after.group("sep") + quote + MARK.format("secret") + quote)
        last = pos = after.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def redact_text(text: str) -> str:
    """Replace every secret in `text` with a `[REDACTED:kind]` marker."""
    low = text.lower()
    hits = _literals_in(low)
    if not hits and not _has_url_userinfo(text):
        return text
    original = text
    kinds = set().union(*(lit.kinds for _, lit in hits))
    for kind, rx in _FORMAT_RES:
        if kind in kinds:
            text = rx.sub(MARK.format(kind), text)
    if "://" in text and "@" in text:
        text = _URL_PASSWORD_RE.sub(lambda m: f"{m.group('head')}{MARK.format('password')}{m.group('at')}", text)
    if "password" in low and ("machine" in low or "login" in low):
        text = _NETRC_RE.sub(lambda m: f"{m.group('head')}{MARK.format('password')}", text)
    if text is original:
        words = [(start, lit.word) for start, lit in hits if lit.secret_word]
    else:  # a pattern replaced something: the names are found again in the new text
        low = text.lower()
        words = _secret_words(low)
    return _redact_assignments(text, low, words) if words else text


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """True for a JSON field name whose string value is a credential (api_key, accessToken, password)."""
    return bool(_FIELD_NAME_RE.match(name)) and not _NOT_SECRET_NAMES.match(name)


def redact_value(value: Any, name: str | None = None) -> Any:
    """Redact a decoded JSON value: strings by pattern, string fields with secret-looking names whole."""
    if isinstance(value, str):
        if name is not None and is_secret_name(name) and _looks_like_value(value):
            return MARK.format("secret")
        return redact_text(value) if len(value) >= _SHORTEST_LITERAL else value
    if isinstance(value, dict):
        return {k: redact_value(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    return value


def redact_json(text: str) -> str:
    """JSON text with its secrets out; as is (the same object) when nothing in it could be one.
    Text that is not JSON is redacted as text and stored as a JSON string."""
    if not _json_may_hold_secret(text):
        return text
    try:
        value = msgspec.json.decode(text)
    except msgspec.ValidationError:  # valid JSON msgspec declines (1e400): the standard library reads it
        return json.dumps(redact_value(json.loads(text)), ensure_ascii=False)
    except msgspec.DecodeError:
        return msgspec.json.encode(redact_text(text)).decode()
    return msgspec.json.encode(redact_value(value)).decode()


# After a name in JSON text: what `_AFTER_NAME_RE` allows before its separator, as JSON writes it
# (quotes, escaped or not; whitespace, escaped or not), any number of times.
_JSON_SEPARATOR_RE = re.compile(r"""(?:\\["nrtfb]|\\u00[01][0-9a-fA-F]|["'\s])*[=:]""")


def _json_may_hold_secret(text: str) -> bool:
    """Whether redacting this JSON document's strings could change anything, judged on its text:
    a format's anchor, a URL with a password, a netrc line, or a secret-looking name followed by
    `=` or `:` (an assignment in a string, or a field name). Never False where `redact_value`
    would redact (each rule needs one of these); most documents that merely mention a token or
    a key are let through without a decode."""
    low = text.lower()
    if len(low) != len(text) or _has_url_userinfo(text):
        return True
    if "password" in low and ("machine" in low or "login" in low):
        return True
    for start, lit in _literals_in(low):
        if lit.kinds:
            return True
        if lit.name_word:
            end = start + len(lit.word)
            while end < len(text) and text[end] in _WORD_TAIL:
                end += 1
            if _JSON_SEPARATOR_RE.match(text, end):
                return True
    return False


def _has_url_userinfo(text: str) -> bool:
    return "://" in text and _URL_USERINFO_RE.search(text) is not None


def redact_payload(raw: bytes, decoded: Any) -> tuple[Any, bytes]:
    """Return the redacted object (`decoded` is `raw`, JSON, decoded) and its JSON encoding; the
    raw bytes pass through when their text shows nothing could be redacted."""
    if not _json_may_hold_secret(raw.decode("utf-8", errors="replace")):
        return decoded, raw
    clean = redact_value(decoded)
    return clean, msgspec.json.encode(clean)
