"""The canonical ``helloworld`` protocol, built in code: no protoc, no committed ``_pb2`` files.

The descriptor below is what protoc makes of ``helloworld.proto`` (shipped beside this module for
other languages; ``tests/demo/test_helloworld.py`` holds the two together). It is added to
``descriptor_pool.Default()`` so server reflection can serve it, and the message classes come
from ``message_factory.GetMessageClass``. If a ``helloworld.proto`` is already in the default
pool (say, grpc's own example ``helloworld_pb2`` was imported first), that one is reused.

The message classes are dynamic, so static typing goes through the small protocols
:class:`HelloRequestMessage` and :class:`HelloReplyMessage` and the helper constructors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, cast

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FileDescriptor, ServiceDescriptor
from google.protobuf.message import Message

__all__ = [
    "FILE_DESCRIPTOR",
    "FILE_NAME",
    "PACKAGE",
    "PROTO_PATH",
    "SAY_HELLO_PATH",
    "SERVICE_DESCRIPTOR",
    "SERVICE_NAME",
    "HelloReply",
    "HelloReplyMessage",
    "HelloRequest",
    "HelloRequestMessage",
    "deserialize_reply",
    "deserialize_request",
    "file_descriptor_proto",
    "new_reply",
    "new_request",
    "serialize",
]

FILE_NAME = "helloworld.proto"
PACKAGE = "helloworld"
SERVICE_NAME = f"{PACKAGE}.Greeter"
SAY_HELLO_PATH = f"/{SERVICE_NAME}/SayHello"
PROTO_PATH = Path(__file__).with_name(FILE_NAME)

_FieldProto = descriptor_pb2.FieldDescriptorProto


def file_descriptor_proto() -> descriptor_pb2.FileDescriptorProto:
    """A fresh ``FileDescriptorProto`` equal to protoc's for ``helloworld.proto``."""
    proto = descriptor_pb2.FileDescriptorProto(
        name=FILE_NAME,
        package=PACKAGE,
        syntax="proto3",
        options=descriptor_pb2.FileOptions(
            java_multiple_files=True,
            java_package="io.grpc.examples.helloworld",
            java_outer_classname="HelloWorldProto",
            objc_class_prefix="HLW",
        ),
    )
    for message_name, field_name in (("HelloRequest", "name"), ("HelloReply", "message")):
        message = proto.message_type.add(name=message_name)
        message.field.add(
            name=field_name,
            number=1,
            label=_FieldProto.LABEL_OPTIONAL,
            type=_FieldProto.TYPE_STRING,
            json_name=field_name,
        )
    service = proto.service.add(name="Greeter")
    service.method.add(
        name="SayHello",
        input_type=f".{PACKAGE}.HelloRequest",
        output_type=f".{PACKAGE}.HelloReply",
    )
    return proto


def _register() -> FileDescriptor:
    pool = descriptor_pool.Default()
    try:
        return pool.FindFileByName(FILE_NAME)
    except KeyError:
        pool.Add(file_descriptor_proto())
        return pool.FindFileByName(FILE_NAME)


FILE_DESCRIPTOR: FileDescriptor = _register()
SERVICE_DESCRIPTOR: ServiceDescriptor = FILE_DESCRIPTOR.services_by_name["Greeter"]

HelloRequest: type[Message] = message_factory.GetMessageClass(
    FILE_DESCRIPTOR.message_types_by_name["HelloRequest"]
)
HelloReply: type[Message] = message_factory.GetMessageClass(
    FILE_DESCRIPTOR.message_types_by_name["HelloReply"]
)


class HelloRequestMessage(Protocol):
    """The typed view of a ``helloworld.HelloRequest``."""

    name: str

    def SerializeToString(self, *, deterministic: bool = ...) -> bytes:  # noqa: N802 (protobuf)
        """The wire encoding."""
        ...


class HelloReplyMessage(Protocol):
    """The typed view of a ``helloworld.HelloReply``."""

    message: str

    def SerializeToString(self, *, deterministic: bool = ...) -> bytes:  # noqa: N802 (protobuf)
        """The wire encoding."""
        ...


def new_request(name: str) -> HelloRequestMessage:
    """A ``HelloRequest`` with ``name`` set."""
    request = cast("HelloRequestMessage", HelloRequest())
    request.name = name
    return request


def new_reply(message: str) -> HelloReplyMessage:
    """A ``HelloReply`` with ``message`` set."""
    reply = cast("HelloReplyMessage", HelloReply())
    reply.message = message
    return reply


def serialize(message: HelloRequestMessage | HelloReplyMessage) -> bytes:
    """Wire bytes of either message (the gRPC serializer for both directions)."""
    return message.SerializeToString()


def deserialize_request(data: bytes) -> HelloRequestMessage:
    """Parse a ``HelloRequest`` (the server's request deserializer)."""
    return cast("HelloRequestMessage", HelloRequest.FromString(data))


def deserialize_reply(data: bytes) -> HelloReplyMessage:
    """Parse a ``HelloReply`` (the client's response deserializer)."""
    return cast("HelloReplyMessage", HelloReply.FromString(data))
