"""Settings of the AI stand-in: accepted keys, served models, moderation words.

Defaults run with no setup: one development key (:data:`DEFAULT_API_KEY`, not a
secret), the model ids the project's AI client uses, and short word lists that
make the moderation endpoint flag obvious test phrases.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_MODELS",
    "DEFAULT_MODERATION_WORDS",
    "MODERATION_CATEGORIES",
    "ModelKind",
    "ModelSpec",
    "StandinConfig",
]

DEFAULT_API_KEY = "sk-standin-local"

ModelKind = Literal["chat", "embedding", "moderation"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One served model. ``dimensions`` is an embedding model's default vector size;
    ``shortenable`` says whether it accepts the ``dimensions`` parameter (OpenAI's
    text-embedding-3 models do, ada-002 does not)."""

    id: str
    kind: ModelKind = "chat"
    owned_by: str = "system"
    created: int = 1_715_367_049
    dimensions: int | None = None
    shortenable: bool = False


DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("gpt-4o-mini"),
    ModelSpec("gpt-4o"),
    ModelSpec("gpt-4.1-mini"),
    ModelSpec("gpt-4.1"),
    ModelSpec("standin-chat", owned_by="mktx"),
    ModelSpec("text-embedding-3-small", "embedding", dimensions=1536, shortenable=True),
    ModelSpec("text-embedding-3-large", "embedding", dimensions=3072, shortenable=True),
    ModelSpec("text-embedding-ada-002", "embedding", dimensions=1536),
    ModelSpec("omni-moderation-latest", "moderation"),
    ModelSpec("text-moderation-latest", "moderation"),
)

# OpenAI's moderation category names, in the order its responses list them.
MODERATION_CATEGORIES: tuple[str, ...] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)

# Phrases matched on word boundaries after case and punctuation are normalised.
# Deliberately mild: they exist to make tests and demos flag on purpose.
DEFAULT_MODERATION_WORDS: dict[str, tuple[str, ...]] = {
    "harassment": ("idiot", "moron", "loser", "shut up"),
    "harassment/threatening": ("i will find you", "you will regret this", "watch your back"),
    "hate": ("subhuman", "vermin people"),
    "hate/threatening": ("wipe them all out",),
    "illicit": ("buy drugs", "shoplift", "counterfeit money"),
    "illicit/violent": ("make a bomb", "untraceable gun"),
    "self-harm": ("hurt myself", "self harm"),
    "self-harm/intent": ("i want to die", "end my life"),
    "self-harm/instructions": ("how to cut myself",),
    "sexual": ("nsfw", "explicit sex"),
    "sexual/minors": (),
    "violence": ("kill you", "stab", "shoot you", "beat you up"),
    "violence/graphic": ("gore", "dismembered"),
}


@dataclass(slots=True)
class StandinConfig:
    """What the stand-in accepts and serves; the admin API can change it at run time
    and ``POST /_standin/reset`` restores it.

    ``hang_seconds`` bounds the ``timeout`` fault (the request hangs until the
    client gives up, the server stops, or this passes). ``seed`` drives the
    probability faults, so a run is repeatable. ``moderation_list_input`` false makes
    ``/v1/moderations`` refuse a list of strings (400) as providers that take one
    text per request do.
    """

    api_keys: tuple[str, ...] = field(default=(DEFAULT_API_KEY,), repr=False)
    require_auth: bool = True
    models: tuple[ModelSpec, ...] = DEFAULT_MODELS
    moderation_words: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_MODERATION_WORDS)
    )
    seed: int = 0
    hang_seconds: float = 300.0
    request_log_size: int = 10_000
    stream_chunk_tokens: int = 2
    moderation_list_input: bool = True
    rate_limit_requests: int = 10_000
    rate_limit_tokens: int = 30_000_000

    def copy(self) -> StandinConfig:
        return replace(self, moderation_words=dict(self.moderation_words))

    def model(self, model_id: str) -> ModelSpec | None:
        return next((m for m in self.models if m.id == model_id), None)
