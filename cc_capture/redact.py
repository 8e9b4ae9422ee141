"""Secrets out before anything reaches the store, and nothing else.

Three layers, each finding spans of *values* (a name is never replaced):
- known credential formats (cloud keys, vendor tokens, private key blocks, JWTs, passwords in
  URLs and on `mysql`/`sshpass` command lines, `.netrc` lines), wherever they are;
- names that look secret (key, token, secret, password, ...) whose value is replaced, in
  `NAME=value` text (JSON-escaped too) and in JSON fields, but only where the value is a
  literal that looks like a secret: identifiers, expressions, references (`$API_KEY`,
  `os.environ[...]`), placeholders (`<your-key>`, `[PAD]`, `changeme`) and prose pass;
- personal e-mail addresses (no-reply and example addresses pass; `[capture] redact_emails`).
One Aho-Corasick pass over a text finds every literal any rule needs: none, and the text is
clean; otherwise it says which patterns to run and where the names are. For JSON
(`redact_payload` for hook payloads, `redact_json` for transcript tool inputs and results) the
same pass over the raw text decides whether any rule could fire before anything is decoded.
`VERSION` is stored with every row the rules wrote, so data redacted by older rules can be found
and re-imported (`ccd import --rescan`).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any

import ahocorasick_rs
import msgspec

# The rules' version, stored with each row they redacted. 1: keyword rules replaced any value
# (names and code too); 2: values only, and only values that look like secrets; e-mail addresses.
VERSION = 2

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
    "stripe_key": ("sk_live_", "rk_live_", "pk_live_", "sk_test_", "rk_test_", "pk_test_", "whsec_"),
    "google_api_key": ("aiza",), "jwt": ("eyj",),
    "bearer_token": ("bearer ",), "basic_auth": ("authorization: basic ",),
    "mysql_password": ("mysql",), "sshpass_password": ("sshpass",),
}
_FORMAT_RES = [(kind, re.compile(pat)) for kind, pat in _FORMATS]

# Passwords on command lines: `mysql -pPASS` (no space: `-p` alone prompts), `sshpass -p PASS`.
_COMMAND_PASSWORD_RES = [
    ("mysql_password", re.compile(r"\bmysql(?:dump|admin|sh|import|check|slap)?\b[^\n|;&]*?[ \t]-p"
                                  r"(?:'(?P<sq>[^'\n]*)'|\"(?P<dq>[^\"\n]*)\"|(?P<bare>[^\s'\"\-][^\s'\"]*))")),
    ("sshpass_password", re.compile(r"\bsshpass\b[^\n|;&]*?[ \t]-p[ \t]*"
                                    r"(?:'(?P<sq>[^'\n]*)'|\"(?P<dq>[^\"\n]*)\"|(?P<bare>[^\s'\"]+))")),
]

# Passwords in URLs: scheme://user:PASSWORD@host; the password may hold an unencoded `@` (the
# host follows the last one).
_URL_PASSWORD_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@'\"]*:(?P<pw>[^\s/'\"]+)@")

# .netrc and similar: "machine HOST login USER password SECRET" (whitespace, no `=`).
_NETRC_RE = re.compile(r"\b(?:machine|login)\s+\S+(?:\s+login\s+\S+)?\s+password\s+(?P<pw>\S+)")

# Words that make a name look secret. Bare `key` and `pwd` count only as JSON field names:
# in free text they are too often prose ("the key: ...") or the working directory (PWD=/home).
_SECRET_WORDS = (
    r"api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key|secret|passwd|password|passphrase|token|credentials?|"
    r"auth[_\-]?key|session[_\-]?key|[a-z0-9]+_pwd|[a-z0-9]+[_\-.]key"
)
_TEXT_NAME = rf"[A-Za-z0-9_.\-]*?(?:{_SECRET_WORDS})[A-Za-z0-9_\-]*"
_TEXT_NAME_RE = re.compile(rf"{_TEXT_NAME}", re.IGNORECASE)
# Names whose value is a password: any literal counts (words, spaces). A secret (`client_secret`,
# `secret_key_base`) takes any literal without spaces; keys, tokens and credentials need a value
# that looks generated (a key *name*, `STORAGE_KEY = 'app-state'`, is no secret).
_PASSWORD_NAME_RE = re.compile(r"(?i)pass|pwd")
# Literals every secret word contains; an automaton finds them in one pass, and the name around
# each hit must then match _TEXT_NAME in full.
_SECRET_WORD_ANCHORS = ("key", "secret", "passwd", "password", "passphrase", "token", "credential", "_pwd")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
# Literals of the field names that are secret only as JSON fields (key, pwd, pass, authorization, cookie).
_FIELD_NAME_WORDS = ("pwd", "pass", "auth", "cookie")
_FIELD_NAME_RE = re.compile(rf"^(?:{_TEXT_NAME}|key|pwd|pass|authorization|cookie|set-cookie)$", re.IGNORECASE)
# Names that contain a secret word but hold no secret.
_NOT_SECRET_NAMES = re.compile(
    r"(?i)^(?:.*tokens?_?(?:count|usage|limit|budget|len|length|ids?|type|s|idx|index|pos)|max_?tokens?|.*_tokens|tokens|"
    r"tokeni[sz]e[rd]?.*|num_?tokens|total_?tokens|input_?tokens|output_?tokens|"
    r".*(?:pad|bos|eos|unk|sep|cls|mask|special|start|end|stop)_?tokens?(?:_ids?)?|"
    r".*key_?(?:id|name|path|file|type|bindings?|s)|primary_?key|"
    r"foreign_?key|sort_?key|partition_?key|cache_?key|.*password_?(?:file|path|prompt|hint|policy|length))$"
)
# After a secret-looking NAME: the separator (the name's closing quote, escaped as JSON writes it
# inside a string, then `=`, `:` or `:=`, not `==`, `=>` or `::`), then the value: quoted (on the
# next line too: `secret_key_base:\n  "..."`) or a bare token on the same line.
_AFTER_NAME_RE = re.compile(
    r"(?P<sep>(?:\\*[\"'])?[ \t]*(?::=|=(?![=>~])|:(?![:=]))[ \t]*)"
    r"(?:(?:\r?\n[ \t]*)?(?P<q>\\*[\"'])(?P<quoted>[^\n]*?)(?P=q)|(?P<bare>(?:[^\s\"'`,;)}\]\\]|\\(?![nrt\"'\\/u]))+))"
)
_WORD_TAIL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")

# Values that stand for a secret without being one, and words that are never one.
_PLACEHOLDER_RE = re.compile(
    r"(?i)^(?:x+|\*+|\.+|-+|#+|0+|changeme|change[_\-]?me|replace[_\-]?me|todo|tbd|fixme|dummy|example|sample|"
    r"test|testing|secret|password|passwd|pass|token|key|apikey|api[_\-]key|none|null|nil|undefined|true|false|"
    r"required|optional|string|str|bool|int|number|any|object|redacted|hidden|masked|"
    r"(?:your|my|insert|enter|put|add|replace)[_\-\s].*|.*[_\-\s]here)$"
)
_IDENTIFIER_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# A chunk of a name made of words: a word, a small number, a word with a version (`v2`, `utf8`).
_WORD_CHUNK_RE = re.compile(r"[A-Za-z]*[0-9]{0,4}|[0-9]{1,4}[A-Za-z]*")
_EXPRESSION_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:(?:\.|\?\.|::|->)[A-Za-z_$][A-Za-z0-9_$]*)+")


class EmailPolicy(str, Enum):
    """Which e-mail addresses are redacted (`[capture] redact_emails`)."""

    PERSONAL = "personal"  # all but no-reply, role and example addresses
    ALL = "all"
    NONE = "none"


@dataclass(frozen=True)
class _EmailRules:
    policy: EmailPolicy = EmailPolicy.PERSONAL
    allow: tuple[str, ...] = ()  # extra domains or addresses that pass (lower case)


_emails = _EmailRules()

# Addresses that belong to no person: no-reply senders (Claude's co-author line, GitHub's
# private commit addresses), mailer daemons, the reserved example domains (RFC 2606) and the
# fictional companies of documentation and samples (Microsoft's Contoso, Fabrikam, ...).
_NOT_PERSONAL_LOCAL_RE = re.compile(r"(?i)^(?:no[_\-.]?reply|do[_\-.]?not[_\-.]?reply|mailer-daemon|postmaster|git)$")
_NOT_PERSONAL_DOMAIN_RE = re.compile(
    r"(?i)^(?:(?:.+\.)?(?:users\.)?noreply\.github\.com|(?:.+\.)?example\.(?:com|org|net)|"
    r"(?:.+\.)?(?:contoso|fabrikam|northwindtraders|adventure-works|wingtiptoys|tailspintoys)\.com|"
    r".+\.(?:example|test|invalid|localhost)|localhost)$"
)
_EMAIL_DOMAIN_RE = re.compile(r"@(?P<domain>[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*"
                              r"[A-Za-z0-9])?)*\.(?P<tld>[A-Za-z]{2,24}))(?![A-Za-z0-9\-])")
# Top-level "domains" that are file extensions: `icon@2x.png`, `pkg@1.0.tgz` are no addresses.
_FILE_TLDS = frozenset("png jpg jpeg gif svg webp ico js mjs cjs ts tsx jsx json py rb go rs md txt css scss html htm "
                       "xml yaml yml toml lock tgz zip gz map wasm pdf".split())
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")


def configure(redact_emails: EmailPolicy | str = EmailPolicy.PERSONAL, email_allow: list[str] | tuple = ()) -> None:
    """Set this process's e-mail policy (from `[capture]` settings); every redaction after it uses it."""
    global _emails
    _emails = _EmailRules(EmailPolicy(redact_emails), tuple(a.lower() for a in email_allow))


def email_rules() -> tuple[str, tuple[str, ...]]:
    """This process's e-mail policy, to hand to worker processes (`configure(*email_rules())`)."""
    return _emails.policy.value, _emails.allow


# Lower-case fragments, one of which every pattern above needs: a payload with none of them is
# clean. Keep in step with the patterns (tests check every corpus secret trips it).
_PREFILTER_WORDS = (
    "key", "token", "secret", "passw", "pass", "pwd", "credential", "auth", "bearer", "cookie", "private",
    "akia", "asia", "agpa", "aida", "aroa", "aipa", "anpa", "anva", "abia", "acca",
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-", "glrt-", "glptt-", "glft-",
    "glcbt-", "glimt-", "gloas-", "glsoat-", "glagent-", "sk-", "xox", "hooks.slack.com", "sk_live_", "rk_live_",
    "pk_live_", "sk_test_", "rk_test_", "pk_test_", "whsec_", "aiza", "eyj", "machine", "login", "mysql", "sshpass",
)
_URL_USERINFO_RE = re.compile(r"://[^/\s\"]*:[^\s\"]*@")


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


# A string shorter than every literal (and than "://" and "a@b.cd") holds no secret by pattern.
_SHORTEST_LITERAL = min(len("://"), *(len(lit.word) for lit in _LITERAL_TABLE))


def _is_placeholder(value: str) -> bool:
    """A reference or a stand-in (`$API_KEY`, `${TOKEN}`, `<your-key>`, `[PAD]`, `xxx`, `changeme`,
    `REDACTED`, `...`), not a secret."""
    if value.startswith(("$", "%", "{", "<", "[", "#{", "@", "&", "*")) or value.endswith((">", "}", "]", "...", "…")):
        return True
    if "{{" in value or "${" in value or "redacted" in value.lower():
        return True
    return _PLACEHOLDER_RE.match(value.strip()) is not None


def _looks_like_value(value: str) -> bool:
    """A literal worth hiding in a field or after a password's name: not a reference, a number or
    a placeholder."""
    return len(value) >= 4 and not value.isdigit() and not _is_placeholder(value)


def _looks_random(value: str) -> bool:
    """A value that looks generated (a key, a token): long enough, no spaces, several character
    classes, not words (`omp-studio-session`, `csrfToken`, `app-state-v2`)."""
    if len(value) < 8 or any(c.isspace() for c in value):
        return False
    if all(_WORD_CHUNK_RE.fullmatch(chunk) for chunk in re.split(r"[\-_.:/]+", value)):
        return False
    classes = (any(c.islower() for c in value) + any(c.isupper() for c in value) + any(c.isdigit() for c in value)
               + any(not c.isalnum() and c not in "-_." for c in value))
    if classes < 2:
        return False
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 2.5


def _is_code(value: str, tight: bool) -> bool:
    """An unquoted right-hand side that is code: a call, an index, an attribute, or an identifier
    (`PASSWORD=hunter22` written tight, as in a shell or an env file, is a literal)."""
    if "(" in value or "[" in value or _EXPRESSION_RE.fullmatch(value):
        return True
    return not tight and _IDENTIFIER_RE.fullmatch(value) is not None and not any(c.isdigit() for c in value)


def _secret_value(name: str, value: str, quoted: bool, tight: bool) -> bool:
    """Whether the value given to a secret-looking name is itself a secret."""
    if not _looks_like_value(value) or (not quoted and _is_code(value, tight)):
        return False
    literal = quoted or tight or not _IDENTIFIER_RE.fullmatch(value) or _looks_random(value)
    if _PASSWORD_NAME_RE.search(name):
        return literal
    if "secret" in name.lower():
        return literal and len(value) >= 8 and not any(c.isspace() for c in value)
    return _looks_random(value)


def _secret_words(low: str) -> list[tuple[int, str]]:
    """(start index, word) of each secret-word literal in a lower-cased text."""
    return [(start, lit.word) for start, lit in _literals_in(low) if lit.secret_word]


Span = tuple[int, int, str]  # start, end, kind


def _assignment_spans(text: str, low: str, words: list[tuple[int, str]]) -> list[Span]:
    """`NAME=value` / `NAME: value` where NAME looks secret and the value is a literal that looks
    like a secret: the value's span (`low` is text.lower(), `words` the secret-word literals)."""
    if len(low) != len(text):  # a character whose lower case is longer: positions would drift
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
        words = _secret_words(low)
    spans: list[Span] = []
    pos = 0
    for hit_start, word in words:
        if hit_start < pos:
            continue
        start, end = hit_start, hit_start + len(word)
        while start > 0 and text[start - 1] in _NAME_CHARS:
            start -= 1
        while end < len(text) and text[end] in _WORD_TAIL:
            end += 1
        pos = end
        name = text[start:end].lstrip(".-")
        after = _AFTER_NAME_RE.match(text, end)
        if not name or not after or _NOT_SECRET_NAMES.match(name) or not _TEXT_NAME_RE.fullmatch(name):
            continue
        group = "bare" if after.group("bare") is not None else "quoted"
        value = after.group(group)
        tight = group == "bare" and after.group("sep") == "="
        if _secret_value(name, value, group == "quoted", tight):
            spans.append((after.start(group), after.end(group), "secret"))
        pos = after.end()
    return spans


def _email_spans(text: str) -> list[Span]:
    if _emails.policy is EmailPolicy.NONE or "@" not in text:
        return []
    spans = []
    for m in _EMAIL_DOMAIN_RE.finditer(text):
        start = m.start()
        while start > 0 and text[start - 1] in _LOCAL_CHARS:
            start -= 1
        local = text[start:m.start()].lstrip(".")
        start = m.start() - len(local)
        if local and not _email_passes(local, m.group("domain"), m.group("tld"), text[start - 1:start] == "\\"):
            spans.append((start, m.end(), "email"))
    return spans


def _email_passes(local: str, domain: str, tld: str, after_escape: bool = False) -> bool:
    """An address that is no person's (no-reply, example, allowed) or no address at all (`icon@2x.png`)."""
    if tld.lower() in _FILE_TLDS:
        return True
    if _emails.policy is EmailPolicy.ALL or after_escape:
        return False
    domain = domain.lower()
    address = f"{local.lower()}@{domain}"
    return (_NOT_PERSONAL_LOCAL_RE.match(local) is not None or _NOT_PERSONAL_DOMAIN_RE.match(domain) is not None
            or any(a == address or a == domain or domain.endswith("." + a) for a in _emails.allow))


def _group_span(m: re.Match, kind: str) -> Span | None:
    group = next((g for g in ("sq", "dq", "bare") if m.group(g) is not None), None)
    if group is None or not _looks_like_value(m.group(group)):
        return None
    return m.start(group), m.end(group), kind


def secret_spans(text: str) -> list[Span]:
    """(start, end, kind) of every secret in `text`, sorted, overlaps merged."""
    low = text.lower()
    hits = _literals_in(low)
    if not hits and "@" not in text:  # every rule needs a literal, but addresses and URL passwords an `@`
        return []
    spans: list[Span] = []
    kinds = set().union(*(lit.kinds for _, lit in hits)) if hits else set()
    for kind, rx in _FORMAT_RES:
        if kind in kinds:
            spans += [(m.start(), m.end(), kind) for m in rx.finditer(text)]
    for kind, rx in _COMMAND_PASSWORD_RES:
        if kind in kinds:
            spans += [s for m in rx.finditer(text) if (s := _group_span(m, "password"))]
    if "://" in text and "@" in text:
        spans += [(m.start("pw"), m.end("pw"), "password") for m in _URL_PASSWORD_RE.finditer(text)
                  if not _is_placeholder(m.group("pw"))]
    if "password" in low and ("machine" in low or "login" in low):
        spans += [(m.start("pw"), m.end("pw"), "password") for m in _NETRC_RE.finditer(text)
                  if _looks_like_value(m.group("pw"))]
    words = [(start, lit.word) for start, lit in hits if lit.secret_word]
    if words:
        spans += _assignment_spans(text, low, words)
    spans += _email_spans(text)
    if len(spans) < 2:
        return spans
    merged: list[Span] = []
    for start, end, kind in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]), merged[-1][2])
        else:
            merged.append((start, end, kind))
    return merged


def redact_text(text: str) -> str:
    """Replace every secret in `text` with a `[REDACTED:kind]` marker."""
    spans = secret_spans(text)
    if not spans:
        return text
    out, last = [], 0
    for start, end, kind in spans:
        out += [text[last:start], MARK.format(kind)]
        last = end
    out.append(text[last:])
    return "".join(out)


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
# (quotes, escaped or not; whitespace, escaped or not), any number of times, then the separator
# it allows (`=`, `:` or `:=`; not `==`, `=>`, `=~` or `::`).
_JSON_SEPARATOR_RE = re.compile(r"""(?:\\\\|\\["nrtfb]|\\u00[01][0-9a-fA-F]|["'\s])*(?::=|=(?![=>~])|:(?![:=]))""")
# An escape of a character that is no control character (`\u0041` for A, `\u017f` for ſ): a name or
# a format the rules read may hide behind it. JSON.stringify (Claude Code's transcripts) writes none.
_VISIBLE_ESCAPE_RE = re.compile(r"\\u(?!00[01][0-9a-fA-F])[0-9a-fA-F]{4}")
# Letters that a case-insensitive rule reads as ASCII ones (ſ as s, K as k, ı as i) and this look
# misses: `str.lower` leaves ſ and ı as they are, so no literal is found through them, and K, which
# it lowers to k, is no name character where the name's end is read (the text as written). İ lowers
# to two characters: the length check catches it.
_CASELESS_ALIASES_RE = re.compile("[\u017f\u212a\u0131]")
# The end of a JSON field's name: its closing quote (unescaped where a name character precedes
# it; after one escaped newline, which the name rules' `$` lets a secret name end in), then a
# colon; and a value that is no string: digits, true, false, null, an object or an array. No
# rule reads such a field's name: the field rule replaces string values only, and the text rule,
# were the document not JSON (read as text), takes none of these for a value (digits,
# placeholders, `{`/`[` openings).
_FIELD_END_RE = re.compile(r'(?:\\n|\\u000[aA])?"[ \t\n\r]*:')
_NON_STRING_VALUE_RE = re.compile(r'[ \t\n\r]*(?:(?:\d+|true|false|null)(?=[ \t\n\r,}\]]|\Z)|[{\[])')


def _json_may_hold_secret(text: str) -> bool:
    """Whether redacting this JSON document's strings could change anything, judged on its text:
    a format's anchor, a URL with a password, a netrc line, a secret-looking name followed by a
    separator (an assignment in a string, or a field name with a string value), or a personal
    e-mail address. Never False where `redact_value` would redact (each rule needs one of these);
    most documents that merely mention a token or a key are let through without a decode."""
    low = text.lower()
    if len(low) != len(text) or _has_url_userinfo(text) or _email_spans(text):
        return True
    if ("\\u" in text and _VISIBLE_ESCAPE_RE.search(text)) or \
            (not text.isascii() and _CASELESS_ALIASES_RE.search(text)):  # isascii: a flag, no scan
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
            if not _JSON_SEPARATOR_RE.match(text, end):
                continue
            field = _FIELD_END_RE.match(text, end)
            if field and _NON_STRING_VALUE_RE.match(text, field.end()):
                continue
            if lit.secret_word or (field and _may_be_secret_field(text, start, end)):
                return True
    return False


def _may_be_secret_field(text: str, start: int, end: int) -> bool:
    """For a word that makes only a field's name secret (`pass`, `pwd`, `auth`, `cookie`: the text
    rule reads the secret words alone), at `start`, in a name that ends a field's name at `end`:
    whether that field's name may be a secret one (`is_secret_name`). Where an ASCII character
    that is no name character comes before the name around the word, the field's name is that
    name, or holds that character and is no secret name; where an escape or a non-ASCII
    character does (a case-insensitive match reads `ſ` and `K` as ASCII letters), it may be
    anything."""
    while start > 0 and text[start - 1] in _NAME_CHARS:
        start -= 1
    before = text[start - 1] if start else ""
    return before == "\\" or not before.isascii() or is_secret_name(text[start:end])


def _has_url_userinfo(text: str) -> bool:
    return "://" in text and _URL_USERINFO_RE.search(text) is not None


def redact_payload(raw: bytes, decoded: Any) -> tuple[Any, bytes]:
    """Return the redacted object (`decoded` is `raw`, JSON, decoded) and its JSON encoding; the
    raw bytes pass through when their text shows nothing could be redacted."""
    if not _json_may_hold_secret(raw.decode("utf-8", errors="replace")):
        return decoded, raw
    clean = redact_value(decoded)
    return clean, msgspec.json.encode(clean)
