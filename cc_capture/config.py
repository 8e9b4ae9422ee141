"""One typed settings object: the tunables of capture, gates, datasets and training.

Everything cc-capture writes lives under one home folder (`cc_capture.paths`), so tests and
users can relocate it all with `CC_CAPTURE_HOME`. Tunables come from `config.toml` in that
folder and can be overridden by `CC_CAPTURE_<SECTION>__<NAME>` environment variables.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cc_capture import redact
from cc_capture.claude_format import DEFAULT_MAX_OUTPUT_CHARS, transcript_roots
from cc_capture.paths import Paths  # noqa: F401  (re-exported: callers load settings from a home's Paths)

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
    poll_interval_s: float = Field(1.0, gt=0, le=3600, description="journal rescan interval, in case a file event is "
                                                               "missed")
    mirror_transcripts: bool = Field(True, description="import every transcript under transcript_roots, live")
    max_log_bytes: int = Field(5 * 1024 * 1024, gt=0, description="logs/daemon.log and hook-errors.log are rotated "
                                                                    "to <name>.1 above this size")
    transcript_roots: list[str] | None = Field(None, description="default: ~/.claude/projects and "
                                                                  "$CLAUDE_CONFIG_DIR/projects")
    redact_emails: redact.EmailPolicy = Field(redact.EmailPolicy.PERSONAL,
                                              description="personal: all but no-reply and example addresses; all; none")
    email_allow: list[str] = Field(default_factory=list, description="domains or addresses never redacted")

    def roots(self) -> list[Path]:
        """Where Claude Code keeps transcripts."""
        if self.transcript_roots is not None:
            return [Path(r).expanduser() for r in self.transcript_roots]
        return transcript_roots()


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


# The metrics of behavioural_similarity and their weights (cc_capture/evaluate/metrics.py says
# what each measures); `[evaluate] weights` changes them.
DEFAULT_WEIGHTS = {"valid_call_rate": 0.2, "next_action_accuracy": 0.2, "tool_accuracy": 0.2,
                   "argument_match": 0.15, "parallel_match": 0.1, "answer_similarity": 0.15}


class EvaluateSettings(BaseModel):
    """How models are scored against held-out Claude traces, and when a challenger replaces the
    champion (cc_capture.evaluate)."""

    model_config = ConfigDict(extra="forbid")

    max_items: int = Field(300, gt=0, description="eval items at most (sampled deterministically, by trace)")
    max_new_tokens: int = Field(256, gt=0, description="tokens a model may write for one step")
    batch_size: int = Field(8, gt=0, description="prompts generated together")
    bootstrap_samples: int = Field(1000, ge=100, description="resamples (by trace) for intervals and the gate")
    max_p: float = Field(0.1, gt=0, le=1, description="a challenger's improvement must have p <= this")
    max_valid_call_drop: float = Field(0.02, ge=0, le=1, description="how much valid_call_rate may fall")
    min_score: float = Field(0.0, ge=0, le=1, description="behavioural_similarity a challenger must reach")
    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS),
                                      description="of the metrics in behavioural_similarity")
    seed: int = 0

    @field_validator("weights")
    @classmethod
    def _known_metrics(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(DEFAULT_WEIGHTS))
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; weights are for {sorted(DEFAULT_WEIGHTS)}")
        if any(w < 0 for w in weights.values()) or not sum(weights.values()):
            raise ValueError("weights must be >= 0 and not all 0")
        return weights


class TrainSettings(BaseModel):
    """How a model is trained (cc_capture.train); `ccd train` options override these."""

    model_config = ConfigDict(extra="forbid")

    base_model: str = Field("meta-llama/Llama-3.1-8B-Instruct", description="a local path or a model name")
    lora_r: int = Field(16, gt=0)
    lora_alpha: int = Field(32, gt=0)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str = "all-linear"
    learning_rate: float = Field(2e-4, gt=0)
    epochs: float = Field(3, gt=0)
    batch_size: int = Field(2, gt=0)
    gradient_accumulation_steps: int = Field(4, gt=0)
    max_steps: int = Field(-1, description="-1: train for `epochs`")
    max_length: int = Field(4096, gt=0)
    load_in_4bit: bool = Field(True, description="QLoRA on CUDA (bitsandbytes or unsloth); ignored on CPU")
    save_steps: int = Field(50, gt=0, description="checkpoint every N steps (resume continues from the last)")
    seed: int = 42
    dpo_beta: float = Field(0.1, gt=0)
    grpo_num_generations: int = Field(4, ge=2)
    grpo_max_completion_length: int = Field(256, gt=0)
    backend: str = Field("auto", pattern="^(auto|unsloth|transformers)$")


DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"


class Quantization(str, Enum):
    """The GGUF file types export makes and deploy ships (llama.cpp's names, lower case)."""

    F16 = "f16"
    Q8_0 = "q8_0"
    Q4_K_M = "q4_k_m"


class DeploySettings(BaseModel):
    """Where Ollama is, what the model is called there, how it is served (cc_capture.deploy)."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = Field("cc-capture", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*(/[a-zA-Z0-9][a-zA-Z0-9_.-]*)?$",
                            description="Ollama model name: versions are NAME:vN, the alias NAME:latest")
    ollama_host: str | None = Field(None, description="default: $OLLAMA_HOST, else " + DEFAULT_OLLAMA_HOST)
    num_ctx: int = Field(65536, ge=2048, description="context Ollama gives the model (Claude Code needs 64k+)")
    quantization: Quantization = Field(Quantization.Q4_K_M, description="which exported GGUF is deployed")
    keep_versions: int = Field(3, ge=1, description="version tags kept in Ollama (the alias's target and the "
                                                   "previous champion are always kept)")
    timeout_s: float = Field(600.0, gt=0, description="the longest one Ollama request may take")
    max_quantization_loss: float = Field(0.02, ge=0, le=1, description="how far the deployed GGUF's "
                                         "behavioural_similarity may fall below its own HF model's")

    def host(self) -> str:
        """The Ollama URL: the setting, else $OLLAMA_HOST, else the local default; scheme and port filled in
        as the Ollama CLI does (`0.0.0.0` means this machine)."""
        raw = (self.ollama_host or os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST).strip().rstrip("/")
        scheme, sep, rest = raw.partition("://")
        if not sep:
            scheme, rest = "http", raw
        hostport, slash, path = rest.partition("/")
        if hostport.startswith("["):  # [::1]:port
            host, _, port = hostport[1:].partition("]")
            port = port.lstrip(":")
            host = f"[{host}]"
        else:
            host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1"}.get(host, host)
        port = port or ("443" if scheme == "https" else "11434")
        return f"{scheme}://{host}:{port}" + (f"/{path}" if slash and path else "")

    def tag(self, version: int) -> str:
        return f"{self.model_name}:v{version}"

    @property
    def alias(self) -> str:
        return f"{self.model_name}:latest"


class SystemPromptChoice(str, Enum):
    """Which system prompt the local model runs with inside Claude Code, and is trained and evaluated
    with (README "The local model inside Claude Code" says why the default is compact)."""

    CLAUDE_CODE = "claude_code"  # Claude Code's own
    COMPACT = "compact"  # cc-capture's short one, given with --system-prompt (it replaces Claude Code's)


class LocalSettings(BaseModel):
    """How the local model runs inside Claude Code (`ccd local`, `ccd compare`), and therefore what
    datasets train it with (cc_capture.datasets.inference)."""

    model_config = ConfigDict(extra="forbid")

    system_prompt: SystemPromptChoice = Field(SystemPromptChoice.COMPACT,
                                              description="claude_code: Claude Code's own; compact: cc-capture's")


class CompareSettings(BaseModel):
    """How the real Claude Code is run on the local model (cc_capture.compare): `ccd compare`, `ccd local`."""

    model_config = ConfigDict(extra="forbid")

    claude: str = Field("claude", description="the Claude Code command (a name on PATH or a path)")
    max_turns: int = Field(20, ge=1, description="a compared run stops after this many turns")
    timeout_s: float = Field(600.0, gt=0, description="a compared run is stopped after this many seconds")
    limit: int = Field(10, ge=1, description="prompts `ccd compare` replays when --limit is not given")


class LearningSettings(BaseModel):
    """The learning pipeline and when the daemon starts it on its own (cc_capture.scheduler)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="the daemon starts `ccd pipeline run` on its own")
    window: str = Field("01:00-06:00", pattern=r"^(always|([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d)$",
                        description="local HH:MM-HH:MM (may cross midnight), or \"always\"")
    check_interval_min: float = Field(15, gt=0, description="how often the daemon re-checks the conditions")
    min_new_traces: int = Field(200, ge=0, description="qualifying real traces since the last pipeline started")
    min_first_traces: int = Field(500, ge=0, description="qualifying traces before the very first pipeline")
    include_synthetic: bool = Field(False, description="bootstrap traces count towards the thresholds")
    min_interval_h: float = Field(20, ge=0, description="hours since the last pipeline started")
    min_gpu_free_gb: float = Field(16, ge=0, description="free GPU memory a run needs")
    allow_cpu: bool = Field(False, description="run without a GPU (tests, small models)")
    idle_min: float = Field(30, ge=0, description="minutes without a hook event (no live Claude Code session)")
    allow_battery: bool = Field(False, description="run on a laptop's battery")
    min_free_disk_gb: float = Field(10, ge=0, description="free disk a run needs at least")
    disk_per_base_model: float = Field(3, ge=0, description="free disk a run needs, in sizes of the base model "
                                                            "(merged weights, GGUF, quantized copy)")
    retry_after_h: float = Field(6, ge=0, description="hours before a failed pipeline is retried on the same data")
    pipeline_command: list[str] | None = Field(None, description="what the daemon starts (default: this "
                                                                 "cc-capture's `ccd pipeline run`), e.g. "
                                                                 "behind `nice`")
    min_dpo_pairs: int = Field(20, ge=1, description="the pipeline trains DPO only with this many preference pairs")

    @field_validator("pipeline_command", mode="before")
    @classmethod
    def _command_words(cls, value: Any) -> Any:
        """A command given as one string (an environment variable) is split as a shell would."""
        return shlex.split(value) if isinstance(value, str) else value

    @field_validator("window")
    @classmethod
    def _window_not_empty(cls, value: str) -> str:
        start, _, end = value.partition("-")
        if end and start == end:
            raise ValueError(f"window {value!r} is empty; use \"always\" for the whole day")
        return value


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    gates: GateSettings = Field(default_factory=GateSettings)
    datasets: DatasetSettings = Field(default_factory=DatasetSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    evaluate: EvaluateSettings = Field(default_factory=EvaluateSettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)
    learning: LearningSettings = Field(default_factory=LearningSettings)
    compare: CompareSettings = Field(default_factory=CompareSettings)
    local: LocalSettings = Field(default_factory=LocalSettings)


def _env_value(value: str) -> Any:
    """An environment value as TOML would give it: a JSON list (`["nice", "ccd"]`) or table is
    parsed, so list settings can be set there too; anything else stays text for pydantic."""
    if value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


def load_settings(paths: Paths | None = None) -> Settings:
    """Read `config.toml` (if any) and `CC_CAPTURE_<SECTION>__<NAME>` overrides into Settings."""
    paths = paths or Paths()
    raw: dict = {}
    if paths.config_file.exists():
        try:
            raw = tomllib.loads(paths.config_file.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{paths.config_file}: not valid TOML: {e}") from e
        except OSError as e:
            raise ConfigError(f"{paths.config_file}: cannot be read ({e.strerror}); it should be a TOML file "
                              "(or absent)") from e
    prefix = "CC_CAPTURE_"
    for key, value in os.environ.items():
        section, _, name = key[len(prefix):].partition("__")
        if key.startswith(prefix) and name and section.lower() in Settings.model_fields:
            raw.setdefault(section.lower(), {})[name.lower()] = _env_value(value)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"invalid settings ({paths.config_file} or {prefix}<SECTION>__<NAME> variables):\n{e}") from e
    # The redactor of this process follows the settings (the daemon's and every command's).
    redact.configure(settings.capture.redact_emails, settings.capture.email_allow)
    return settings
