"""The helloworld protocol built in code matches the shipped helloworld.proto, is registered in
the default descriptor pool, and the Greeter answers on sync and aio servers (naming the caller
only when a verified client certificate was presented)."""

from __future__ import annotations

import asyncio
import re

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.demo import helloworld
from grpcsec.demo.greeter import greeting, say_hello, say_hello_async
from grpcsec.identity import Peer, TransportSecurity
from tests.conftest import CLIENT_SPIFFE_ID, FRESH_CONNECTION, TIMEOUT, Pki, serve

_Field = descriptor_pb2.FieldDescriptorProto
_SCALARS = {"string": _Field.TYPE_STRING}


def parse_proto(text: str) -> dict[str, object]:
    """A deliberately small reader for the subset helloworld.proto uses (no protoc needed)."""
    text = re.sub(r"//[^\n]*", "", text)
    syntax = re.search(r'syntax\s*=\s*"([^"]+)"\s*;', text)
    package = re.search(r"\bpackage\s+([\w.]+)\s*;", text)
    assert syntax
    assert package
    options = dict(re.findall(r"\boption\s+(\w+)\s*=\s*([^;]+);", text))
    messages = {
        name: re.findall(r"(\w+)\s+(\w+)\s*=\s*(\d+)\s*;", body)
        for name, body in re.findall(r"\bmessage\s+(\w+)\s*\{([^}]*)\}", text)
    }
    services = {
        name: re.findall(r"\brpc\s+(\w+)\s*\(\s*(\w+)\s*\)\s*returns\s*\(\s*(\w+)\s*\)", body)
        for name, body in re.findall(r"\bservice\s+(\w+)\s*\{(.*?)\n\}", text, re.DOTALL)
    }
    return {
        "syntax": syntax.group(1),
        "package": package.group(1),
        "options": options,
        "messages": messages,
        "services": services,
    }


@pytest.fixture(scope="module")
def proto_file() -> dict[str, object]:
    return parse_proto(helloworld.PROTO_PATH.read_text())


def test_the_proto_file_ships_beside_the_module() -> None:
    assert helloworld.PROTO_PATH.name == "helloworld.proto"
    assert helloworld.PROTO_PATH.is_file()


def test_file_header_matches(proto_file: dict[str, object]) -> None:
    built = helloworld.file_descriptor_proto()
    assert built.name == helloworld.FILE_NAME
    assert built.syntax == proto_file["syntax"] == "proto3"
    assert built.package == proto_file["package"] == "helloworld"
    options = proto_file["options"]
    assert isinstance(options, dict)
    assert built.options.java_multiple_files is (options["java_multiple_files"] == "true")
    assert built.options.java_package == options["java_package"].strip('"')
    assert built.options.java_outer_classname == options["java_outer_classname"].strip('"')
    assert built.options.objc_class_prefix == options["objc_class_prefix"].strip('"')


def test_messages_match_field_by_field(proto_file: dict[str, object]) -> None:
    built = helloworld.file_descriptor_proto()
    messages = proto_file["messages"]
    assert isinstance(messages, dict)
    assert [m.name for m in built.message_type] == list(messages)
    for message in built.message_type:
        expected = [(_SCALARS[t], name, int(n)) for t, name, n in messages[message.name]]
        actual = [(f.type, f.name, f.number) for f in message.field]
        assert actual == expected, message.name
        for field in message.field:
            # proto3 singular scalar: LABEL_OPTIONAL without proto3_optional or a oneof
            assert field.label == _Field.LABEL_OPTIONAL
            assert not field.proto3_optional
            assert not field.HasField("oneof_index")


def test_service_and_method_full_names_match(proto_file: dict[str, object]) -> None:
    services = proto_file["services"]
    assert services == {"Greeter": [("SayHello", "HelloRequest", "HelloReply")]}
    service = helloworld.SERVICE_DESCRIPTOR
    assert service.full_name == helloworld.SERVICE_NAME == "helloworld.Greeter"
    [method] = service.methods
    assert method.full_name == "helloworld.Greeter.SayHello"
    assert method.input_type.full_name == "helloworld.HelloRequest"
    assert method.output_type.full_name == "helloworld.HelloReply"
    assert not method.client_streaming
    assert not method.server_streaming
    assert helloworld.SAY_HELLO_PATH == "/helloworld.Greeter/SayHello"


def test_registered_descriptor_equals_the_built_one() -> None:
    """What server reflection would serve is exactly the file built in code."""
    registered = descriptor_pb2.FileDescriptorProto()
    helloworld.FILE_DESCRIPTOR.CopyToProto(registered)
    built = helloworld.file_descriptor_proto()
    for proto in (registered, built):
        for message in proto.message_type:
            for field in message.field:
                field.ClearField("json_name")  # CopyToProto omits it for default names
    assert registered == built


def test_the_default_pool_knows_the_protocol() -> None:
    pool = descriptor_pool.Default()
    assert pool.FindFileByName("helloworld.proto") is helloworld.FILE_DESCRIPTOR
    assert pool.FindServiceByName("helloworld.Greeter").methods_by_name["SayHello"]
    assert pool.FindMessageTypeByName("helloworld.HelloRequest").fields_by_name["name"].number == 1


def test_messages_round_trip_on_the_wire() -> None:
    request = helloworld.new_request("grpcsec")
    data = helloworld.serialize(request)
    assert data == b"\n\x07grpcsec"  # field 1, length-delimited, 7 bytes
    assert helloworld.deserialize_request(data).name == "grpcsec"
    reply = helloworld.deserialize_reply(helloworld.serialize(helloworld.new_reply("hi")))
    assert reply.message == "hi"


def test_greeting_names_only_a_verified_caller() -> None:
    anonymous = Peer(address="ipv4:127.0.0.1:1", transport=TransportSecurity.TLS)
    assert greeting("Ada", anonymous) == "Hello Ada"
    verified = Peer(
        address="ipv4:127.0.0.1:1",
        transport=TransportSecurity.TLS,
        client_cert_presented=True,
        common_name="ada",
        spiffe_id="spiffe://example.org/ada",
    )
    assert greeting("Ada", verified) == "Hello Ada (from spiffe://example.org/ada)"


def test_greeter_over_mtls_names_the_caller(pki: Pki, server_kind: str) -> None:
    client = channel_credentials(ca=pki.ca, identity=pki.client)
    with (
        serve(server_kind, server_credentials(pki.server, client_ca=pki.ca)) as server,
        grpc.secure_channel(server.target, client, options=FRESH_CONNECTION) as channel,
    ):
        reply = say_hello(channel, "Ada", timeout=TIMEOUT)
    assert reply == f"Hello Ada (from {CLIENT_SPIFFE_ID})"


def test_greeter_over_tls_greets_anonymously(pki: Pki, server_kind: str) -> None:
    async def call(target: str) -> str:
        credentials = channel_credentials(ca=pki.ca)
        async with grpc.aio.secure_channel(target, credentials, options=FRESH_CONNECTION) as ch:
            return await say_hello_async(ch, "Ada", timeout=TIMEOUT)

    with serve(server_kind, server_credentials(pki.server)) as server:
        assert asyncio.run(call(server.target)) == "Hello Ada"
