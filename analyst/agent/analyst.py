"""The Variance Analyst agent: its model (Responses or Chat Completions, any OpenAI-compatible server), its
instructions and its tools.

The ``AsyncOpenAI`` client carries the timeout and the bounded retry policy: it retries 408/409/429/5xx and
network errors ``max_retries`` times with exponential backoff (honouring ``retry-after``), only before a
stream has started, so no text is ever sent twice.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence

import httpx2
from agents import (
    Agent,
    Model,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

from analyst.agent.instructions import instructions
from analyst.agent.settings import AgentSettings
from analyst.context import AnalysisContext

# One client per (event loop, settings): its connection pool belongs to the loop it was made on.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[AgentSettings, AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)


def configure_tracing(settings: AgentSettings) -> None:
    """Tracing exports to OpenAI; keep it off unless the user turned it on (no calls nobody asked for)."""
    set_tracing_disabled(not settings.tracing)


def openai_client(settings: AgentSettings) -> AsyncOpenAI:
    """The shared client for these settings on the running loop."""
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    client = per_loop.get(settings)
    if client is None:
        client = AsyncOpenAI(
            api_key=settings.api_key,
            base_url=settings.base_url,
            max_retries=settings.max_retries,
            # `read` bounds the silence between two streamed chunks, so a hung stream fails fast while a long
            # answer that keeps streaming is never cut.
            timeout=httpx2.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
        )
        per_loop[settings] = client
    return client


def build_model(settings: AgentSettings) -> Model:
    client = openai_client(settings)
    if settings.api == "chat_completions":
        return OpenAIChatCompletionsModel(model=settings.model, openai_client=client)
    return OpenAIResponsesModel(model=settings.model, openai_client=client)


def build_agent(settings: AgentSettings, tools: Sequence[Tool] | None = None) -> Agent[AnalysisContext]:
    """The analyst agent for one run; ``tools`` defaults to the engine's read-only tools."""
    if tools is None:
        from analyst.agent.tools import ANALYST_TOOLS

        tools = ANALYST_TOOLS
    return Agent[AnalysisContext](
        name="Variance Analyst",
        instructions=instructions,
        tools=list(tools),
        model=build_model(settings),
        model_settings=ModelSettings(
            temperature=0.2 if _supports_temperature(settings.model) else None,
            # OpenAI's servers report streamed usage anyway; other Chat Completions servers need to be asked.
            include_usage=True if settings.api == "chat_completions" else None,
        ),
    )


def _supports_temperature(model: str) -> bool:
    # Reasoning models (o-series, gpt-5) reject a temperature.
    name = model.lower().rsplit("/", 1)[-1]
    return not (name.startswith(("o1", "o3", "o4", "gpt-5")))
