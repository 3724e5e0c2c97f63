"""Lingering close, on a raw socket as an independent interoperability suite
does it: a 5.0 client sends Receive Maximum + 1 QoS 2 PUBLISHes without
reading, then reads every PUBREC (answering each with PUBREL, so it goes on
writing after the broker has decided to close) until it sees DISCONNECT 0x93.
A broker that closes at once makes that client's writes fail (broken pipe,
reset) before it reads the reason; Roost shuts its write side and reads on.

Each test starts its own broker (`roost -c FILE -p 0`), parallel-safe."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from roost_interop import TIMEOUT, BrokerProcess, unique

RECEIVE_MAXIMUM_EXCEEDED = 0x93
RECEIVE_MAXIMUM = 10


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


def utf8(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_v5(client_id: str) -> bytes:
    # Protocol name, level 5, Clean Start, keep alive 60, no properties.
    return packet(0x10, utf8("MQTT") + bytes([5, 0x02]) + struct.pack("!H", 60) + b"\x00" + utf8(client_id))


def publish_qos2(topic: str, packet_id: int) -> bytes:
    return packet(0x34, utf8(topic) + struct.pack("!H", packet_id) + b"\x00" + b"x")


def pubrel(packet_id: int) -> bytes:
    return packet(0x62, struct.pack("!H", packet_id))


class Reader:
    """Reads whole packets off a socket; any socket error fails the test."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def _fill(self, n: int) -> bool:
        while len(self.buf) < n:
            chunk = self.sock.recv(4096)  # OSError (reset) propagates: the failure looked for
            if not chunk:
                return False
            self.buf += chunk
        return True

    def next(self) -> tuple[int, bytes] | None:
        """(type nibble, body), or None at a clean end of stream."""
        if not self._fill(2):
            assert not self.buf, f"stream ended inside a packet: {self.buf!r}"
            return None
        length, shift, i = 0, 0, 1
        while True:
            assert self._fill(i + 1)
            byte = self.buf[i]
            length += (byte & 0x7F) << shift
            shift += 7
            i += 1
            if not byte & 0x80:
                break
        assert self._fill(i + length), "stream ended inside a packet"
        first, body = self.buf[0], self.buf[i : i + length]
        self.buf = self.buf[i + length :]
        return first >> 4, body


@pytest.fixture
def broker(tmp_path):
    config = tmp_path / "roost.toml"
    config.write_text(f'[store]\nbackend = "memory"\n[mqtt]\nreceive_maximum = {RECEIVE_MAXIMUM}\n')
    b = BrokerProcess("-c", str(config))
    yield b
    b.stop()


def open_v5(broker, prefix: str) -> tuple[socket.socket, Reader]:
    sock = socket.create_connection((broker.host, broker.port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = Reader(sock)
    sock.sendall(connect_v5(unique(prefix)))
    kind, body = reader.next()
    assert kind == 2 and body[1] == 0x00, f"CONNACK {body!r}"
    return sock, reader


@pytest.mark.parametrize("round_", range(3))
def test_receive_maximum_overflow_is_read_to_the_disconnect_by_a_client_that_keeps_writing(broker, round_):
    sock, reader = open_v5(broker, "linger-py")
    topic = f"linger/{unique('t')}"
    sock.sendall(b"".join(publish_qos2(topic, i) for i in range(1, RECEIVE_MAXIMUM + 2)))
    pubrecs = 0
    while True:
        got = reader.next()
        assert got is not None, "closed before the DISCONNECT"
        kind, body = got
        if kind == 5:  # PUBREC: answer it, writing after the broker's close
            pubrecs += 1
            sock.sendall(pubrel(struct.unpack("!H", body[:2])[0]))
        elif kind == 14:  # DISCONNECT
            assert body[0] == RECEIVE_MAXIMUM_EXCEEDED, f"DISCONNECT {body!r}"
            break
        else:
            pytest.fail(f"unexpected packet type {kind}")
    assert pubrecs == RECEIVE_MAXIMUM
    sock.sendall(pubrel(1))  # still no broken pipe
    assert reader.next() is None, "nothing after the DISCONNECT, then a clean close"
    sock.close()


def test_a_client_that_never_stops_writing_is_cut_off(broker):
    sock, reader = open_v5(broker, "linger-flood")
    sock.sendall(b"\xd0\x00")  # PINGRESP from a client: Protocol Error
    kind, body = reader.next()
    assert (kind, body[0]) == (14, 0x82)
    started = time.monotonic()
    chunk = b"\x00" * 4096
    with pytest.raises(OSError):  # broken pipe or reset once the bound is reached
        while time.monotonic() - started < 10:
            sock.sendall(chunk)
    assert time.monotonic() - started < 4, "held longer than the lingering bound"
    sock.close()
