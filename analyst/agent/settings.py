"""The agent's configuration, read from the environment.

- ``OPENAI_API_KEY``: key for the model server (required to ask questions).
- ``OPENAI_BASE_URL``: any OpenAI-compatible server (``.../v1``); default OpenAI's.
- ``VARIANCE_MODEL``: model name (default ``gpt-4.1-mini``).
- ``VARIANCE_API``: ``responses`` (default) or ``chat_completions`` (vLLM, Ollama and the like).
- ``VARIANCE_MODEL_TIMEOUT``: seconds of silence from the model before giving up (default 60).
- ``VARIANCE_MAX_RETRIES``: retries on 429 / 5xx / network errors before any text arrived (default 2).
- ``VARIANCE_DATA_DIR``: where conversation memory (SQLite) is kept (default
  ``$XDG_DATA_HOME/variance-analyst`` or ``~/.local/share/variance-analyst``, else ``./.data``).
- ``VARIANCE_MAX_TURNS``: model turns (tool round trips) per question (default 12).
- ``VARIANCE_HISTORY_ITEMS``: conversation items replayed to the model (default 40).
- ``VARIANCE_RETENTION_DAYS``: stored conversation items older than this are deleted (default 30).
- ``VARIANCE_TRACING``: ``1`` to export traces to OpenAI; off by default (no outbound calls nobody asked for).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from analyst.memory import DB_NAME

ModelApi = Literal["responses", "chat_completions"]

DEFAULT_MODEL = "gpt-4.1-mini"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """An environment variable with a value we cannot use; the message names the variable and the fix, never
    the value (it may be a secret set in the wrong variable)."""


def _default_data_dir(env: Mapping[str, str]) -> Path:
    xdg = env.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg) / "variance-analyst"
    home = env.get("HOME")
    if home:
        return Path(home) / ".local" / "share" / "variance-analyst"
    return Path(".data")


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """How the analyst agent reaches its model and keeps conversations. Frozen and hashable."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    model: str = DEFAULT_MODEL
    api: ModelApi = "responses"
    timeout: float = 60.0
    max_retries: int = 2
    data_dir: Path = Path(".data")
    max_turns: int = 12
    history_items: int = 40
    # Conversation memory older than this is purged (analyst.memory.purge_older_than).
    retention_days: float = 30.0
    tracing: bool = False
    # Rows per table a tool shows the model; the rest is summed into one "N more" row.
    tool_max_rows: int = 20

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AgentSettings:
        """Read the settings; raise :class:`SettingsError` naming the variable when a value is unusable."""
        env = os.environ if env is None else env
        api = (env.get("VARIANCE_API") or "responses").strip().lower().replace("-", "_")
        if api in {"chat", "chat_completion", "chatcompletions"}:
            api = "chat_completions"
        if api not in ("responses", "chat_completions"):
            raise SettingsError("VARIANCE_API must be 'responses' or 'chat_completions'.")
        data_dir = env.get("VARIANCE_DATA_DIR")
        return cls(
            api_key=(env.get("OPENAI_API_KEY") or "").strip() or None,
            base_url=(env.get("OPENAI_BASE_URL") or "").strip() or None,
            model=(env.get("VARIANCE_MODEL") or "").strip() or DEFAULT_MODEL,
            api=api,  # type: ignore[arg-type]
            timeout=_number(env, "VARIANCE_MODEL_TIMEOUT", 60.0, minimum=0.05),
            max_retries=int(_number(env, "VARIANCE_MAX_RETRIES", 2, minimum=0, integer=True)),
            data_dir=Path(data_dir).expanduser() if data_dir else _default_data_dir(env),
            max_turns=int(_number(env, "VARIANCE_MAX_TURNS", 12, minimum=1, integer=True)),
            history_items=int(_number(env, "VARIANCE_HISTORY_ITEMS", 40, minimum=0, integer=True)),
            retention_days=_number(env, "VARIANCE_RETENTION_DAYS", 30.0, minimum=0.001),
            tracing=_flag(env, "VARIANCE_TRACING"),
        )

    @property
    def session_db_path(self) -> Path:
        return self.data_dir / DB_NAME

    def missing_key_message(self) -> str | None:
        """What to tell the user when no API key is configured, or ``None`` when one is."""
        if self.api_key:
            return None
        return (
            "No OpenAI API key is configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for another "
            "OpenAI-compatible server). The deterministic report needs no key: variance-bot report FILE."
        )


def _number(
    env: Mapping[str, str], name: str, default: float, *, minimum: float, integer: bool = False
) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise SettingsError(f"{name} must be {kind}.") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum:g}.")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(f"{name} must be 1 or 0.")
