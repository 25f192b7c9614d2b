"""OpenAI's error bodies: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

__all__ = [
    "OpenAIError",
    "bad_json_body",
    "invalid_request",
    "invalid_type",
    "missing_param",
    "model_not_found",
    "rate_limited",
    "server_error",
]

_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a decimal",
    type(None): "null",
}


class OpenAIError(Exception):
    """Raised by handlers; becomes the status, OpenAI's error body and the headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), self.status, headers=self.headers)


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> OpenAIError:
    return OpenAIError(400, message, param=param, code=code)


def missing_param(param: str) -> OpenAIError:
    return invalid_request(
        f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
    )


def invalid_type(param: str, expected: str, got: Any) -> OpenAIError:
    name = _TYPE_NAMES.get(type(got), type(got).__name__)
    return invalid_request(
        f"Invalid type for '{param}': expected {expected}, but got {name} instead.",
        param,
        "invalid_type",
    )


def model_not_found(model: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def bad_json_body() -> OpenAIError:
    return invalid_request(
        "We could not parse the JSON body of your request. (HINT: This likely means you "
        "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
        "but what was sent was not valid JSON.)"
    )


def server_error(status: int = 500) -> OpenAIError:
    message = (
        "The server is overloaded or not ready yet."
        if status == 503
        else "The server had an error while processing your request. Sorry about that!"
    )
    return OpenAIError(status, message, type="server_error")


def rate_limited(
    model: str, limit: int, retry_after: float, headers: dict[str, str], *, quota: bool = False
) -> OpenAIError:
    if quota:
        return OpenAIError(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            type="insufficient_quota",
            code="insufficient_quota",
            headers=headers,
        )
    return OpenAIError(
        429,
        f"Rate limit reached for {model or 'requests'} in organization org-standin on requests "
        f"per min (RPM): Limit {limit}, Used {limit}, Requested 1. Please try again in "
        f"{retry_after:g}s.",
        type="requests",
        code="rate_limit_exceeded",
        headers=headers,
    )
