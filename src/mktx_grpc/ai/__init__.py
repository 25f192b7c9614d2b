"""The model client (``openai.AsyncOpenAI`` against any OpenAI-compatible endpoint),
beside ``x/``. Its local stand-in is ``mktx_grpc.ai_standin``."""

from .client import Completion, ModelClient, ModelTimeout, ModelUnavailable, make_model_client

__all__ = ["Completion", "ModelClient", "ModelTimeout", "ModelUnavailable", "make_model_client"]
