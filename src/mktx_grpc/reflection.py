"""Server reflection that carries the contract's documentation.

grpc's reflection servicer answers with file descriptors rebuilt from the
generated code, which has no source info, so ``grpcurl describe`` would show no
comments. ``scripts/genproto.sh`` also writes ``mktx/v1/descriptors.binpb``, a
descriptor set of every ``.proto`` and its imports *with* source info; this
servicer answers with those files when it has them and falls back to the
generated descriptors for anything else (health, reflection itself).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

__all__ = ["DocumentedReflectionServicer", "documented_files"]

_DESCRIPTOR_SET = ("mktx.v1", "descriptors.binpb")


def documented_files() -> dict[str, bytes]:
    """File name -> serialized ``FileDescriptorProto`` with source info, from the
    generated descriptor set. Raises FileNotFoundError when ``gen/`` lacks it
    (run ``scripts/genproto.sh``)."""
    package, name = _DESCRIPTOR_SET
    raw = resources.files(package).joinpath(name).read_bytes()
    fds = descriptor_pb2.FileDescriptorSet.FromString(raw)
    return {f.name: f.SerializeToString() for f in fds.file}


class DocumentedReflectionServicer(reflection.aio.ReflectionServicer):  # type: ignore[misc]
    """``ReflectionServicer`` whose file descriptors keep their comments.

    Lookups resolve through the default descriptor pool (what the server really
    serves); only the bytes sent back come from the documented descriptor set. A
    file the set lacks is sent as the generated code knows it, without comments.
    """

    def __init__(self, service_names: Iterable[str]) -> None:
        super().__init__(list(service_names))
        self._documented = documented_files()
        self._pool: Any = descriptor_pool.Default()

    def _file_response(self, descriptor: Any, request: Any) -> Any:
        files: dict[str, Any] = {}
        stack = [descriptor]
        while stack:
            d = stack.pop()
            if d.name in files:
                continue
            files[d.name] = d
            stack.extend(d.dependencies)
        serialized = []
        for name, d in files.items():
            data = self._documented.get(name)
            if data is None:
                proto = descriptor_pb2.FileDescriptorProto()
                d.CopyToProto(proto)
                data = proto.SerializeToString()
            serialized.append(data)
        return reflection_pb2.ServerReflectionResponse(
            file_descriptor_response=reflection_pb2.FileDescriptorResponse(
                file_descriptor_proto=serialized
            ),
            original_request=request,
        )

    def _file_by_filename(self, request: Any, filename: str) -> Any:
        try:
            descriptor = self._pool.FindFileByName(filename)
        except KeyError:
            return super()._file_by_filename(request, filename)
        return self._file_response(descriptor, request)

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        try:
            descriptor = self._pool.FindFileContainingSymbol(fully_qualified_name)
        except KeyError:
            return super()._file_containing_symbol(request, fully_qualified_name)
        return self._file_response(descriptor, request)
