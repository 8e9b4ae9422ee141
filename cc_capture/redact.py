"""Secrets out before anything reaches the store.

Two layers: patterns for well-known credential formats (cloud keys, tokens, private keys,
JWTs, passwords in URLs) applied to every string, and names that look secret (key, token,
secret, password, ...) whose values are replaced, both in `NAME=value` text and in JSON
fields. `redact_payload` is the one entry point the ingest path uses; a cheap prefilter lets
the common, secret-free payload through without a structural walk.
"""

from __future__ import annotations

import re
from typing import Any

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
_FORMAT_RE = re.compile("|".join(f"(?P<{kind}>{pat})" for kind, pat in _FORMATS))

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
_FIELD_NAME_RE = re.compile(rf"^(?:{_TEXT_NAME}|key|pwd|pass|authorization|cookie|set-cookie)$", re.IGNORECASE)
# Names that contain a secret word but hold no secret.
_NOT_SECRET_NAMES = re.compile(
    r"(?i)^(?:.*tokens?_?(?:count|usage|limit|budget|len|length|ids?|type|s)|max_?tokens?|.*_tokens|tokens|tokeni[sz]e[rd]?.*|"
    r"num_?tokens|total_?tokens|input_?tokens|output_?tokens|.*key_?(?:id|name|path|file|type|bindings?|s)|primary_?key|"
    r"foreign_?key|sort_?key|partition_?key|cache_?key|.*password_?(?:file|path|prompt|hint|policy|length))$"
)
# NAME=value or NAME: value in free text (shell, .env, YAML, code with literal values).
_ASSIGN_RE = re.compile(
    rf"(?P<name>\b{_TEXT_NAME}\b)(?P<sep>[\"']?\s*(?:=|:|:=)\s*)"
    r"(?:\"(?P<dq>[^\"\n]*)\"|'(?P<sq>[^'\n]*)'|(?P<bare>[^\s\"'`,;)}\]]+))",
    re.IGNORECASE,
)
# Lower-case fragments, one of which every pattern above needs: a payload with none of them is
# clean. Keep in step with the patterns (tests check every corpus secret trips it).
_PREFILTER_WORDS = (
    b"key", b"token", b"secret", b"passw", b"pass", b"pwd", b"credential", b"auth", b"bearer", b"cookie", b"private",
    b"akia", b"asia", b"agpa", b"aida", b"aroa", b"aipa", b"anpa", b"anva", b"abia", b"acca",
    b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_", b"glpat-", b"gldt-", b"glrt-", b"glptt-", b"glft-",
    b"glcbt-", b"glimt-", b"gloas-", b"glsoat-", b"glagent-", b"sk-", b"xox", b"hooks.slack.com", b"_live_", b"_test_",
    b"whsec_", b"aiza", b"eyj", b"machine", b"login",
)
_PREFILTER_RE = re.compile(b"|".join(re.escape(w) for w in _PREFILTER_WORDS))
_URL_USERINFO_RE = re.compile(rb"://[^/\s\"]*:[^@\s\"]*@")


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


def _replace_assignment(m: re.Match[str]) -> str:
    if _NOT_SECRET_NAMES.match(m.group("name")):
        return m.group(0)
    bare = m.group("bare")
    value = bare if bare is not None else (m.group("dq") if m.group("dq") is not None else m.group("sq"))
    if not _looks_like_value(value) or (bare is not None and _looks_like_expression(bare)):
        return m.group(0)
    quote = "" if bare is not None else ('"' if m.group("dq") is not None else "'")
    return f"{m.group('name')}{m.group('sep')}{quote}{MARK.format('secret')}{quote}"


def redact_text(text: str) -> str:
    """Replace every secret in `text` with a `[REDACTED:kind]` marker."""
    text = _FORMAT_RE.sub(lambda m: MARK.format(m.lastgroup), text)
    text = _URL_PASSWORD_RE.sub(lambda m: f"{m.group('head')}{MARK.format('password')}{m.group('at')}", text)
    text = _NETRC_RE.sub(lambda m: f"{m.group('head')}{MARK.format('password')}", text)
    return _ASSIGN_RE.sub(_replace_assignment, text)


def is_secret_name(name: str) -> bool:
    """True for a JSON field name whose string value is a credential (api_key, accessToken, password)."""
    return bool(_FIELD_NAME_RE.match(name)) and not _NOT_SECRET_NAMES.match(name)


def redact_value(value: Any, name: str | None = None) -> Any:
    """Redact a decoded JSON value: strings by pattern, string fields with secret-looking names whole."""
    if isinstance(value, str):
        if name is not None and is_secret_name(name) and _looks_like_value(value):
            return MARK.format("secret")
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    return value


def might_contain_secret(raw: bytes | str) -> bool:
    """Cheap test: False means no pattern could match, so the payload can be stored as it is."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if _PREFILTER_RE.search(raw.lower()):
        return True
    return b"://" in raw and _URL_USERINFO_RE.search(raw) is not None


def redact_payload(raw: bytes, decoded: Any) -> tuple[Any, bytes]:
    """Return the redacted object and its JSON encoding; the raw bytes pass through when clean."""
    if not might_contain_secret(raw):
        return decoded, raw
    clean = redact_value(decoded)
    return clean, msgspec.json.encode(clean)
