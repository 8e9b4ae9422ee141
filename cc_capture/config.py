"""One typed settings object: the tunables of capture, gates, datasets and training.

Everything cc-capture writes lives under one home folder (`cc_capture.paths`), so tests and
users can relocate it all with `CC_CAPTURE_HOME`. Tunables come from `config.toml` in that
folder and can be overridden by `CC_CAPTURE_<SECTION>__<NAME>` environment variables.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cc_capture import redact
from cc_capture.deploy.config import DeploySettings
from cc_capture.ingest.assemble import DEFAULT_MAX_OUTPUT_CHARS
from cc_capture.paths import Paths  # noqa: F401  (re-exported: callers load settings from a home's Paths)
from cc_capture.train.config import TrainSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


class ConfigError(Exception):
    """The settings file or an override is invalid; the message says which value and why."""


class CaptureSettings(BaseModel):
    """Tunables of the capture path."""

    model_config = ConfigDict(extra="forbid")

    max_event_bytes: int = Field(8 * 1024 * 1024, gt=0, description="payloads above this are reduced and quarantined")
    max_output_chars: int = Field(DEFAULT_MAX_OUTPUT_CHARS, gt=0,
                                  description="tool outputs longer than this are cut, with a marker")
    max_read_bytes: int = Field(512 * 1024 * 1024, gt=0, description="journal records above this are not read at all")
    incomplete_grace_s: float = Field(120.0, gt=0, description="a record with no end marker this old is quarantined")
    batch_events: int = Field(2000, gt=0, description="events committed per transaction")
    transcript_hot_s: float = Field(15.0, ge=0, description="keep re-reading a transcript this long after its last event")
    poll_interval_s: float = Field(1.0, gt=0, description="journal rescan interval, in case a file event is missed")
    mirror_transcripts: bool = Field(True, description="import every transcript under transcript_roots, live")
    transcript_roots: list[str] | None = Field(None, description="default: ~/.claude/projects and "
                                                                  "$CLAUDE_CONFIG_DIR/projects")
    redact_emails: redact.EmailPolicy = Field(redact.EmailPolicy.PERSONAL,
                                              description="personal: all but no-reply and example addresses; all; none")
    email_allow: list[str] = Field(default_factory=list, description="domains or addresses never redacted")

    def roots(self) -> list[Path]:
        """Where Claude Code keeps transcripts."""
        if self.transcript_roots is not None:
            return [Path(r).expanduser() for r in self.transcript_roots]
        roots = [Path.home() / ".claude" / "projects"]
        if os.environ.get("CLAUDE_CONFIG_DIR"):
            roots.append(Path(os.environ["CLAUDE_CONFIG_DIR"]) / "projects")
        return list(dict.fromkeys(roots))


class GateSettings(BaseModel):
    """Which traces are good enough to learn from (see cc_capture.signals.gates)."""

    model_config = ConfigDict(extra="forbid")

    min_answer_words: int = Field(50, ge=0, description="a tool-less answer shorter than this is trivial")
    exclude_statuses: list[str] = Field(default_factory=lambda: ["failed", "interrupted", "open"])
    require_final_answer: bool = True
    min_prompt_chars: int = Field(8, ge=0, description="shorter prompts are ambiguous")
    ambiguous_prompts: list[str] = Field(
        default_factory=lambda: ["continue", "go on", "go ahead", "yes", "no", "ok", "okay", "sure", "do it",
                                 "try again", "again", "next", "proceed", "thanks", "?"],
        description="prompts that mean nothing without their context",
    )
    honour_feedback: bool = Field(True, description="down excludes; up includes despite trivial/ambiguous")


class DatasetSettings(BaseModel):
    """How traces become training examples (cc_capture.datasets)."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(4096, gt=256, description="longer conversations are split at step boundaries")
    max_tool_output_tokens: int = Field(1024, gt=0, description="tool outputs are cut to this, with a marker")
    eval_percent: int = Field(10, ge=0, le=50, description="share of sessions held out for evaluation")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    gates: GateSettings = Field(default_factory=GateSettings)
    datasets: DatasetSettings = Field(default_factory=DatasetSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)


def load_settings(paths: Paths | None = None) -> Settings:
    """Read `config.toml` (if any) and `CC_CAPTURE_<SECTION>__<NAME>` overrides into Settings."""
    paths = paths or Paths()
    raw: dict = {}
    if paths.config_file.exists():
        try:
            raw = tomllib.loads(paths.config_file.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{paths.config_file}: not valid TOML: {e}") from e
    prefix = "CC_CAPTURE_"
    for key, value in os.environ.items():
        section, _, name = key[len(prefix):].partition("__")
        if key.startswith(prefix) and name and section.lower() in Settings.model_fields:
            raw.setdefault(section.lower(), {})[name.lower()] = value
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"invalid settings ({paths.config_file} or {prefix}<SECTION>__<NAME> variables):\n{e}") from e
    # The redactor of this process follows the settings (the daemon's and every command's).
    redact.configure(settings.capture.redact_emails, settings.capture.email_allow)
    return settings
