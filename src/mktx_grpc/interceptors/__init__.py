"""The server interceptor chain, outermost first:

logging → metrics → error mapping → decode → auth → rate limit → validation → unit of
work → servicer. (Before any of them, the server's method lookup refuses calls without
credentials unread: ``gate``.)

Each is a grpc-interceptor ``AsyncServerInterceptor``. Per-method facts come from
``mktx_grpc.methods``. For server-streaming RPCs the next handler returns an async
iterator; interceptors that must act across the whole stream wrap it (see
``_stream``).
"""

from __future__ import annotations

from .auth import AuthInterceptor
from .chain import InterceptorChain, chained_handler
from .decode import DecodeInterceptor
from .errors import ErrorMappingInterceptor
from .gate import REFUSAL, GatedMethods
from .logging import LoggingInterceptor
from .metrics import MetricsInterceptor
from .ratelimit import RateLimitInterceptor
from .uow import UnitOfWorkInterceptor
from .validation import ValidationInterceptor

__all__ = [
    "REFUSAL",
    "AuthInterceptor",
    "DecodeInterceptor",
    "ErrorMappingInterceptor",
    "GatedMethods",
    "InterceptorChain",
    "LoggingInterceptor",
    "MetricsInterceptor",
    "RateLimitInterceptor",
    "UnitOfWorkInterceptor",
    "ValidationInterceptor",
    "chained_handler",
]
