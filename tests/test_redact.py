"""Secrets never reach the database: the corpus in fixtures/secrets.txt, end to end."""

import json
from pathlib import Path

import pytest

from cc_capture.redact import redact_json, redact_payload, redact_text, redact_value
from conftest import emit, ingest_all

FIXTURES = Path(__file__).parent / "fixtures"


def _corpus():
    rows = []
    for line in (FIXTURES / "secrets.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            kind, text, secret = line.split("\t")
            rows.append((kind, text.replace("\\n", "\n"), secret))
    return rows


SECRETS = _corpus()
NOT_SECRETS = [l for l in (FIXTURES / "not_secrets.txt").read_text().splitlines() if l and not l.startswith("#")]


@pytest.mark.parametrize("kind,text,secret", SECRETS, ids=[r[0] for r in SECRETS])
def test_each_secret_is_redacted(kind, text, secret):
    out = redact_text(text)
    assert secret not in out
    assert "[REDACTED:" in out


@pytest.mark.parametrize("kind,text,secret", SECRETS, ids=[r[0] for r in SECRETS])
def test_prefilter_lets_no_secret_through(kind, text, secret):
    """The shortcuts for JSON (a payload, a tool input or result let through undecoded) miss none."""
    for doc in (json.dumps({"x": text}), json.dumps({"x": ["line\n" + text]}, indent=1)):
        assert secret not in redact_json(doc)
        assert secret not in redact_payload(doc.encode(), json.loads(doc))[1].decode()


def test_prefilter_passes_clean_payloads_untouched():
    raw = b'{"hook_event_name":"PostToolUse","tool_response":{"stdout":"hello, my tokens and keys"}}'
    decoded = json.loads(raw)
    assert redact_payload(raw, decoded) == (decoded, raw)


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_lookalikes_are_left_alone(text):
    assert redact_text(text) == text


def test_json_fields_with_secret_names():
    obj = {"password": "pw-Zq81", "accessToken": "abc.def.ghi", "usage": {"input_tokens": 12, "output_tokens": 3},
           "tokenType": "bearer", "key": "k-938475", "headers": {"Authorization": "Token 8f7e6d5c4b3a"}}
    out = redact_value(obj)
    assert out["password"] == out["accessToken"] == out["key"] == out["headers"]["Authorization"] == "[REDACTED:secret]"
    assert out["usage"] == {"input_tokens": 12, "output_tokens": 3} and out["tokenType"] == "bearer"


def test_no_corpus_secret_anywhere_in_the_database_file(paths, tmp_path):
    """Secrets in prompts, commands, outputs, errors, answers, fields and transcripts: none stored."""
    transcript = tmp_path / "t.jsonl"
    lines = []
    base = {"session_id": "sec", "transcript_path": str(transcript), "cwd": "/w"}
    all_text = "\n".join(t for _, t, _ in SECRETS)
    emit(paths, {**base, "hook_event_name": "UserPromptSubmit", "prompt_id": "p", "prompt": all_text})
    for i, (kind, text, secret) in enumerate(SECRETS):
        tid = f"toolu_{i:04d}"
        call = {**base, "prompt_id": "p", "tool_name": "Bash", "tool_use_id": tid,
                "tool_input": {"command": text, "description": kind, "env": {"SECRET_VALUE": secret}}}
        emit(paths, {**call, "hook_event_name": "PreToolUse"})
        if i % 2:
            emit(paths, {**call, "hook_event_name": "PostToolUse", "tool_response": {"stdout": text, "stderr": ""}})
        else:
            emit(paths, {**call, "hook_event_name": "PostToolUseFailure", "error": f"failed: {text}"})
        lines.append({"type": "assistant", "message": {"model": "m", "content": [
            {"type": "text", "text": f"I will use {text}"}, {"type": "tool_use", "id": tid, "name": "Bash", "input": {}}]}})
    emit(paths, {**base, "hook_event_name": "Stop", "prompt_id": "p", "last_assistant_message": all_text})
    # A record that is quarantined keeps a (redacted) sample too.
    emit(paths, b'{"hook_event_name": "Stop", "broken": "' + all_text.replace("\n", " ").encode())
    transcript.write_text("".join(json.dumps(l) + "\n" for l in lines))
    result = ingest_all(paths)
    assert result.quarantined == 1 and result.ingested == 2 + 2 * len(SECRETS)
    blob = b"".join(p.read_bytes() for p in paths.home.glob("cc-capture.db*"))
    assert b"[REDACTED:" in blob
    for kind, _, secret in SECRETS:
        assert secret.encode() not in blob, kind
        assert json.dumps(secret)[1:-1].encode() not in blob, kind
    assert not list(paths.journal.glob("*.ev"))  # journals deleted once ingested


def _documents(shared):
    """JSON documents as tool inputs and results come: every corpus text and look-alike in the
    places a secret can hide (a value, after a newline or a quote, a field of a secret-looking
    name, nested, pretty-printed), and every tool input and structured result of the real
    transcripts."""
    names = ["password", "api_key", "apiKey", "pass", "pwd", "Authorization", "set-cookie", "key", "token",
             "max_tokens", "input_tokens", "primary_key", "keyboard", "description", "AUTH_TOKEN"]
    texts = [t for _, t, _ in SECRETS] + NOT_SECRETS + ["k-938475", "hunter22", "Token 8f7e6d5c4b3a", "none", "ok"]
    docs = []
    for text in texts:
        docs += [json.dumps({"stdout": text}), json.dumps({"content": "first line\n" + text + "\n\tlast"}),
                 json.dumps([text, {"nested": {"deeper": [text]}}]), json.dumps({"text": f'he said "{text}"'}),
                 json.dumps({"a": text}, indent=2, ensure_ascii=False), json.dumps(text)]
        docs += [json.dumps({name: text}) for name in names] + [json.dumps({name: {"value": text}}) for name in names]
    for f in (shared / "transcripts").rglob("*.jsonl"):
        for line in f.open(encoding="utf-8"):
            d = json.loads(line)
            if isinstance(d.get("toolUseResult"), (dict, list)):
                docs.append(json.dumps(d["toolUseResult"], ensure_ascii=False))
            content = (d.get("message") or {}).get("content")
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    docs.append(json.dumps(block.get("input", {}), ensure_ascii=False))
    return docs


def test_json_redaction_equals_the_walk_of_every_string(shared):
    """redact_json lets a document through undecoded when its text shows no rule can fire; that
    must never differ from decoding it and redacting every string and field."""
    docs = _documents(shared)
    assert len(docs) > 1000
    passed_through = 0
    for doc in docs:
        out = redact_json(doc)
        assert json.loads(out) == redact_value(json.loads(doc)), doc[:200]
        passed_through += out is doc and ("key" in doc.lower() or "token" in doc.lower())
    assert passed_through > 50  # the shortcut is taken, not only the walk


def test_json_redaction_of_text_that_is_not_json():
    assert json.loads(redact_json("password=hunter22 {broken")) == "password=[REDACTED:secret] {broken"
    # valid JSON the fast decoder declines (a number out of its range): the standard library reads it
    assert json.loads(redact_json('{"password": "hunter22", "big": 1e400}')) == {"password": "[REDACTED:secret]",
                                                                                 "big": float("inf")}


def test_a_name_is_never_replaced_only_a_value():
    """The value after a secret-looking name goes, the name stays; prose after "token:" and the
    code on the next line stay too."""
    assert redact_text("DB_PASSWORD=Zq8!mv2Lp") == "DB_PASSWORD=[REDACTED:secret]"
    assert redact_text('client_secret: "9f8e7d6c5b4a39281706f5e4d3c2b1a0"') == 'client_secret: "[REDACTED:secret]"'
    text = "Process a single token:\n    new_name = token_idx * token\n"
    assert redact_text(text) == text
    assert redact_text('secret_key_base:\n    "Hq8vN2mL5xR9tK3wZ7pC4bJ6fD1sG0aE"') == \
        'secret_key_base:\n    "[REDACTED:secret]"'


@pytest.mark.parametrize("kind,text,secret", SECRETS, ids=[r[0] for r in SECRETS])
def test_redaction_is_idempotent(kind, text, secret):
    """What is redacted once is not redacted again (the dataset's second pass changes nothing)."""
    once = redact_text(text)
    assert redact_text(once) == once
    assert json.loads(redact_json(json.dumps({"x": once}))) == {"x": once}


def test_keyword_values_must_look_like_secrets():
    # keys and tokens need a generated-looking value; passwords take any literal
    assert redact_text("STORAGE_KEY = 'app-state-v2'") == "STORAGE_KEY = 'app-state-v2'"
    assert redact_text("api_key = 'ak93Kq7Lm2Np8Rs4'") == "api_key = '[REDACTED:secret]'"
    assert redact_text("password = 'open sesame'") == "password = '[REDACTED:secret]'"
    assert redact_text("password = pw") == "password = pw"  # an identifier: a variable
    assert redact_text("PASSWORD=hunter22") == "PASSWORD=[REDACTED:secret]"  # shell: a literal


def test_personal_email_addresses_are_redacted_no_reply_addresses_pass():
    from cc_capture import redact

    text = ("Author: Jan Doe <jan.doe@gmail.com>\nCo-Authored-By: Claude <noreply@anthropic.com>\n"
            "Signed-off-by: 1234+jdoe@users.noreply.github.com, see alice@example.com and icon@2x.png")
    out = redact_text(text)
    assert "jan.doe@gmail.com" not in out and "<[REDACTED:email]>" in out
    assert out.replace("jan.doe@gmail.com", "") == out and out == text.replace("jan.doe@gmail.com", "[REDACTED:email]")
    try:
        redact.configure("all")
        assert "noreply@anthropic.com" not in redact_text(text) and "icon@2x.png" in redact_text(text)
        redact.configure("none")
        assert redact_text(text) == text
        redact.configure("personal", ["gmail.com"])
        assert redact_text(text) == text
    finally:
        redact.configure()
    # the JSON shortcut sees addresses too
    doc = json.dumps({"stdout": text})
    assert "jan.doe@gmail.com" not in redact_json(doc)
    assert redact_json(json.dumps({"stdout": "Co-Authored-By: Claude <noreply@anthropic.com>"})).endswith('com>"}')


def test_email_policy_comes_from_the_settings(paths):
    from cc_capture import redact
    from cc_capture.config import load_settings

    text = "Co-Authored-By: Claude <noreply@anthropic.com>, reviewed by bob@corp.io"
    try:
        assert load_settings(paths).capture.redact_emails == "personal"
        assert redact_text(text) == "Co-Authored-By: Claude <noreply@anthropic.com>, reviewed by [REDACTED:email]"
        paths.config_file.write_text('[capture]\nredact_emails = "all"\n')
        load_settings(paths)
        assert redact_text(text).count("[REDACTED:email]") == 2
        paths.config_file.write_text('[capture]\nemail_allow = ["corp.io"]\n')
        load_settings(paths)
        assert redact_text(text) == text
    finally:
        redact.configure()


def _narrowed_documents():
    """JSON documents (and text that is not JSON) with a name in each place where the shortcut of
    `redact_json` now skips a name it once decoded for: a field whose value is no string (digits,
    true, false, null, an object, an array), `==`, `=>`, `=~` and `::` after a name, a word
    that makes only a field's name secret (`auth`, `pass`, `pwd`, `cookie`) in a name that is no
    secret field's or not at a field name's end, and `_live_`/`_test_` without Stripe's prefix;
    each beside the places that are still decoded, with values that are secrets and values that
    are not, written with and without escapes of non-ASCII characters."""
    names = ["password", "api_key", "token", "auth_token", "client_secret", "db_pwd", "pwd", "pass", "Authorization",
             "authorization", "cookie", "Set-Cookie", "input_tokens", "totalTokens", "Co-Authored-By", "author",
             "author_email", "cookies", "passenger", "primary_key", "my_auth", "\u017fet-cookie", "set-coo\u212aie",
             "auth\u00e9", "phoenix_live_view", "my_test_helper"]
    secrets = ["hunter22", "s3cr3t-V4lue-9x8yQ", "ak93Kq7Lm2Np8Rs4", "sk-ant-api03-Zq81mv2LpXw9Rt4Yb7Nc3Kd6Hf0Gj5",
               "sk_live_51Hq8Kp2Lm7Nq3Rs9Tv4Wx0Yz6Ab", "Basic dXNlcjpwYXNzd29yZA=="]
    values = [12345678, 0, -12345678, 1234.5678, True, False, None, [], {}, *secrets, [secrets[3]],
              {"value": secrets[0]}, {"nested": [secrets[4]]}]
    docs = []
    for name in names:
        for value in values:
            # A name whose letters the text hides (`\u212a` for K) always goes down the full walk
            # (test_a_secret_the_text_hides_from_the_shortcut_is_still_redacted), so only its raw form is here.
            for ascii_only in (True, False) if name.isascii() else (False,):
                docs += [json.dumps({name: value}, ensure_ascii=ascii_only),
                         json.dumps({"usage": {name: value}, "stdout": "ok"}, ensure_ascii=ascii_only, indent=1),
                         json.dumps([{name: value}, name], ensure_ascii=ascii_only)]
        for secret in secrets:
            for sep in ("=", ": ", ":", " = ", ":=", "==", " => ", "=>", "=~", "::", '": "', "\n", '" => "'):
                text = f"{name}{sep}{secret}"
                docs += [json.dumps({"text": text}), json.dumps({"content": f"line\n{text}\nend"}, ensure_ascii=False),
                         json.dumps({"code": f'%{{"{name}" => "{secret}"}}'}), text, f'{{"{name}": {secret} broken']
    return docs


def test_the_json_shortcut_skips_only_what_no_rule_would_redact():
    """Every document the shortcut lets through undecoded comes out of the whole walk (decode,
    redact every string and field, encode) unchanged, and text that is not JSON out of
    `redact_text` unchanged: each skipped place is one where no rule can fire."""
    from cc_capture.redact import _json_may_hold_secret

    skipped = 0
    for doc in _narrowed_documents():
        try:
            value = json.loads(doc)
        except ValueError:
            if not _json_may_hold_secret(doc):
                assert redact_text(doc) == doc, doc
            continue
        if not _json_may_hold_secret(doc):
            skipped += 1
            assert redact_value(value) == value, doc
        assert json.loads(redact_json(doc)) == redact_value(value), doc
    assert skipped > 4000  # the narrowed places are taken (5,102 of these; 482 before they were narrowed)


_USAGE = ', "usage": {"input_tokens": 3, "output_tokens": 12}}'
HIDDEN = [  # raw JSON text of a transcript-shaped line: a secret behind an escape, an alias letter or a newline
    ('{"input": {"p\\u0061ssword": "s3cr3t-V4lue-9x8yQ"}' + _USAGE, "s3cr3t-V4lue-9x8yQ"),
    ('{"input": {"api_\\u006bey": "s3cr3t-V4lue-9x8yQ"}' + _USAGE, "s3cr3t-V4lue-9x8yQ"),
    ('{"input": {"\\u0070wd": "hunter22"}' + _USAGE, "hunter22"),
    ('{"stdout": "mail jan.doe\\u0040gmail.com"' + _USAGE, "gmail.com"),
    ('{"stdout": "git clone https://bob:hunter22\\u0040github.com/x"' + _USAGE, "hunter22"),
    ('{"stdout": "export PASSWORD\\u003dhunter22"' + _USAGE, "hunter22"),
    ('{"stdout": "sk\\u005flive_51Hq8Kp2Lm7Nq3Rs9Tv4Wx0Yz6Ab"' + _USAGE, "51Hq8Kp2Lm7Nq3Rs9Tv4Wx0Yz6Ab"),
    ('{"stdout": "\\u0041KIAIOSFODNN7EXAMPLE"' + _USAGE, "IOSFODNN7EXAMPLE"),
    ('{"input": {"pwd\\n": "hunter22"}}', "hunter22"),
    ('{"input": {"Authorization\\n": "Basic dXNlcjpwYXNzd29yZA=="}' + _USAGE, "dXNlcjpwYXNzd29yZA=="),
    ('{"input": {"cookie\\u000a": "session=Zq81mv2LpXw9Rt4Yb7"}' + _USAGE, "Zq81mv2LpXw9Rt4Yb7"),
    ('{"input": {"password\u017f": "s3cr3t-V4lue-9x8yQ"}' + _USAGE, "s3cr3t-V4lue-9x8yQ"),
    ('{"input": {"api_token\u212a": "s3cr3t-V4lue-9x8yQ"}' + _USAGE, "s3cr3t-V4lue-9x8yQ"),
    ('{"input": {"secret\u0131": "s3cr3t-V4lue-9x8yQ"}' + _USAGE, "s3cr3t-V4lue-9x8yQ"),
    ('{"input": {"client_secret\\u017f": "s3cr3t-V4lue-9x8yQ"}' + _USAGE, "s3cr3t-V4lue-9x8yQ"),
]


@pytest.mark.parametrize(("raw", "secret"), HIDDEN, ids=[f"hidden-{i}" for i in range(len(HIDDEN))])
def test_a_secret_the_text_hides_from_the_shortcut_is_still_redacted(raw, secret):
    """The shortcut reads the JSON text, not the decoded strings: a name or format written with an
    escape of a visible character, ending in an escaped newline, or spelt with a letter that a
    case-insensitive rule reads as ASCII (ſ, K, ı) must send the document down the full walk."""
    assert redact_value(json.loads(raw)) != json.loads(raw)  # the full walk redacts it
    for out in (redact_json(raw), redact_payload(raw.encode(), json.loads(raw))[1].decode()):
        assert secret not in json.dumps(json.loads(out)) and "[REDACTED:" in out, out


@pytest.mark.parametrize("doc", [
    {"usage": {"input_tokens": 7, "cache_creation_input_tokens": 501},
     "note": "ANTHROPIC_API_KEY=sk-ant-api03-Zq81mv2LpXw9Rt4Yb7Nc3Kd6Hf0Gj5"},
    {"api_key": {"value": "sk-ant-api03-Zq81mv2LpXw9Rt4Yb7Nc3Kd6Hf0Gj5"}, "token": 12345678},
    {"password": ["ghp_Zq81mv2LpXw9Rt4Yb7Nc3Kd6Hf0Gj5Aa1Bb2"], "secret": None, "key": True},
    {"code": '%{"api_key" => "sk_live_51Hq8Kp2Lm7Nq3Rs9Tv4Wx0Yz6Ab"}', "check": "token == AKIAZQ81MV2LPXW9RT4Y"},
    {"Co-Authored-By": "Jan Doe <jan.doe@gmail.com>", "author": "xoxb-1234567890-abcdefghij",
     "cookies": "Bearer Zq81mv2LpXw9Rt4Yb7Nc3Kd6"},
    {"stdout": "phoenix_live_view ok\nexport STRIPE=rk_test_4eC39HqLyjWDarjtT1zdp7dc\n"
               "my_test_case: whsec_Mq2Np6Rs0Tv4Wx8Yz2Ab6Cd0Ef4Gh8"},
    {"Authorization": "hunter22-not-a-format", "set-cookie": "session=Zq81mv2LpXw9Rt4Yb7", "pwd": "open sesame"},
], ids=["usage-fields", "non-string-fields", "list-null-bool-fields", "ruby-hash-and-comparison",
        "author-and-cookies", "live-and-test-words", "secret-fields-still-read"])
def test_a_real_secret_in_each_newly_skipped_place_is_still_redacted(doc):
    """A secret beside (or inside the value of) each name the shortcut now skips is found by its
    own rule: the skipped name never hides it."""
    secrets = [s for s in ("sk-ant-api03-Zq81mv2LpXw9Rt4Yb7Nc3Kd6Hf0Gj5",
                           "ghp_Zq81mv2LpXw9Rt4Yb7Nc3Kd6Hf0Gj5Aa1Bb2",
                           "sk_live_51Hq8Kp2Lm7Nq3Rs9Tv4Wx0Yz6Ab", "AKIAZQ81MV2LPXW9RT4Y", "jan.doe@gmail.com",
                           "xoxb-1234567890-abcdefghij", "Zq81mv2LpXw9Rt4Yb7Nc3Kd6",
                           "rk_test_4eC39HqLyjWDarjtT1zdp7dc", "whsec_Mq2Np6Rs0Tv4Wx8Yz2Ab6Cd0Ef4Gh8",
                           "hunter22-not-a-format", "session=Zq81mv2LpXw9Rt4Yb7", "open sesame") if s in json.dumps(doc)]
    assert secrets
    for raw in (json.dumps(doc), json.dumps(doc, indent=2)):
        out = redact_json(raw)
        assert "[REDACTED:" in out
        for secret in secrets:
            assert secret not in out, secret
        assert redact_payload(raw.encode(), json.loads(raw))[1].decode() == json.dumps(json.loads(out),
                                                                                       separators=(",", ":"))
