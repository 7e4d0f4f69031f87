"""The Greeter service: ``SayHello`` answers ``Hello <name>`` and names a verified caller.

Handlers are plain generic handlers built from the dynamic message classes, so the same service
runs on ``grpc.server`` and ``grpc.aio.server`` without generated stubs. The identity comes from
:func:`grpcsec.identity.peer`; with mTLS the reply ends in `` (from <principal>)``. The client
helpers call the method on any channel the caller made (and owns).
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from grpcsec.demo.helloworld import (
    SAY_HELLO_PATH,
    SERVICE_NAME,
    HelloReplyMessage,
    HelloRequestMessage,
    deserialize_reply,
    deserialize_request,
    new_reply,
    new_request,
    serialize,
)
from grpcsec.identity import AuthContextCarrier, Peer, peer
from grpcsec.text import get_logger

log = get_logger("grpcsec.serve")

__all__ = [
    "add_greeter",
    "aio_greeter_handler",
    "greeter_handler",
    "greeting",
    "say_hello",
    "say_hello_async",
]


def greeting(name: str, caller: Peer) -> str:
    """``Hello <name>``, plus `` (from <principal>)`` when the caller presented a verified
    certificate (with grpcio servers a presented certificate is always a verified one)."""
    text = f"Hello {name}"
    if caller.client_cert_presented and caller.principal:
        text += f" (from {caller.principal})"
    return text


def _say_hello(request: HelloRequestMessage, context: AuthContextCarrier) -> HelloReplyMessage:
    caller = peer(context)
    if log.isEnabledFor(logging.INFO):
        log.info("SayHello from %s", caller.display)
    return new_reply(greeting(request.name, caller))


async def _say_hello_async(
    request: HelloRequestMessage, context: AuthContextCarrier
) -> HelloReplyMessage:
    return _say_hello(request, context)


def greeter_handler() -> grpc.GenericRpcHandler:
    """The Greeter for a sync ``grpc.server`` (handlers run in its thread pool)."""
    return grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {
            "SayHello": grpc.unary_unary_rpc_method_handler(
                _say_hello, request_deserializer=deserialize_request, response_serializer=serialize
            )
        },
    )


def aio_greeter_handler() -> grpc.GenericRpcHandler:
    """The Greeter for a ``grpc.aio.server`` (a coroutine handler, so no executor is needed)."""
    return grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {
            "SayHello": grpc.unary_unary_rpc_method_handler(
                _say_hello_async,
                request_deserializer=deserialize_request,
                response_serializer=serialize,
            )
        },
    )


def add_greeter(server: Any) -> None:  # noqa: ANN401 (grpc.Server or grpc.aio.Server; untyped)
    """Register the Greeter on a sync or aio server, choosing the matching handler."""
    is_aio = isinstance(server, grpc.aio.Server)
    server.add_generic_rpc_handlers((aio_greeter_handler() if is_aio else greeter_handler(),))


def say_hello(
    channel: grpc.Channel,
    name: str,
    *,
    timeout: float,
    metadata: tuple[tuple[str, str], ...] = (),
) -> str:
    """Call ``SayHello`` on a sync channel and return the reply text (raises ``grpc.RpcError``)."""
    call = channel.unary_unary(
        SAY_HELLO_PATH, request_serializer=serialize, response_deserializer=deserialize_reply
    )
    reply: HelloReplyMessage = call(new_request(name), timeout=timeout, metadata=metadata)
    return reply.message


async def say_hello_async(channel: grpc.aio.Channel, name: str, *, timeout: float) -> str:
    """Call ``SayHello`` on a ``grpc.aio`` channel and return the reply text."""
    call = channel.unary_unary(
        SAY_HELLO_PATH, request_serializer=serialize, response_deserializer=deserialize_reply
    )
    reply: HelloReplyMessage = await call(new_request(name), timeout=timeout)
    return reply.message
