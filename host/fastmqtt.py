"""paho's MQTT client with a faster read side, for the collector (microfab.collector).

paho reads each packet with three or more recv() calls and builds an MQTT 5 Properties object per
PUBLISH: about 8,000 messages/s on one core. FastClient reads the socket in 256 KB chunks and
decodes QoS 0/1 PUBLISH packets in place; everything else stays paho's."""
from __future__ import annotations

import ssl
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

_PUBLISH, _PUBACK, _PUBACK_HEAD = 0x30, 0x40, b"\x40\x02"
_FRESH = {"command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1,
          "remaining_length": 0, "packet": bytearray(), "to_process": 0, "pos": 0}
SHORT, TOO_LONG = -1, -2


def varint(buf, i: int, end: int) -> tuple[int, int]:
    """The variable byte integer at buf[i] (MQTT 5 1.5.5: at most 4 bytes) -> (value, index after
    it); (SHORT, i) if it runs on past `end`, (TOO_LONG, i) after a 4th byte that says more."""
    value = shift = 0
    while i < end:
        b = buf[i]
        i += 1
        value |= (b & 127) << shift
        if b < 128:
            return value, i
        shift += 7
        if shift > 21:
            return TOO_LONG, i
    return SHORT, i


class FastClient(mqtt.Client):
    """The socket is read in 256 KB chunks; QoS 0/1 PUBLISH packets are decoded in place and
    handed to on_publish_fast(topic, payload, mid, qos) (their properties are skipped: the
    collector uses none), every other packet goes through paho's own handler. Connection
    keeping, CONNECT/SUBSCRIBE, acks and reconnects stay paho's. Written against paho-mqtt
    2.x's internals (_sock, _packet_handle, _in_packet, _loop_rc_handle); a paho without them
    falls back to its own reader (the collector then works, only slower), as does a client
    whose on_publish_fast is None."""

    on_publish_fast = None
    _rbuf = b""

    def ack_many(self, mids: list[int]):
        """PUBACKs for these QoS 1 messages, in this order, as one write instead of one
        queued packet (and one wake-up of the network thread) each."""
        if not mids:
            return
        if not hasattr(self, "_packet_queue"):
            for mid in mids:
                self.ack(mid, 1)
            return
        # PUBACK with the remaining length 2: reason "success" left out (MQTT 5 3.4.2.1).
        self._packet_queue(_PUBACK, b"".join([_PUBACK_HEAD + mid.to_bytes(2, "big")
                                             for mid in mids]), 0, 0)

    def reconnect(self):
        self._rbuf = b""
        return super().reconnect()

    def loop_read(self, max_packets: int = 1):
        sock = self._sock
        if sock is None or self.on_publish_fast is None:
            return super().loop_read(max_packets)
        try:
            data = sock.recv(262144)
            while getattr(sock, "pending", None) and sock.pending():  # TLS: decrypted, unread
                data += sock.recv(262144)
        except (BlockingIOError, ssl.SSLWantReadError):
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except ssl.SSLWantWriteError:
            self._call_socket_register_write()
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except OSError:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if not data:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        with self._msgtime_mutex:
            self._last_bytes_received = time.monotonic()
        buf = self._rbuf + data if self._rbuf else data
        n, pos, fast = len(buf), 0, self.on_publish_fast
        v5 = self._protocol == mqtt.MQTTv5
        while n - pos >= 2:
            cmd = buf[pos]
            size, i = varint(buf, pos + 1, n)  # the remaining length
            if size == TOO_LONG:
                return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_PROTOCOL)
            end = i + size
            if size == SHORT or end > n:
                break  # the rest of this packet is still on its way
            pos = end
            qos = (cmd >> 1) & 3
            if cmd & 0xF0 == _PUBLISH and qos < 2 and size >= 2:
                j = i + 2 + ((buf[i] << 8) | buf[i + 1])
                topic, mid = buf[i + 2:j], 0
                if qos:
                    mid = (buf[j] << 8) | buf[j + 1]
                    j += 2
                if v5:  # skip the properties; a length that does not fit goes to paho's handler
                    plen, j = varint(buf, j, end)
                    j = j + plen if plen >= 0 else end + 1
                if topic and j <= end:
                    fast(topic, buf[j:end], mid, qos)
                    continue
            self._in_packet = dict(_FRESH, command=cmd, packet=bytearray(buf[i:end]),
                                   remaining_length=size, have_remaining=1)
            rc = self._packet_handle()
            self._in_packet = dict(_FRESH, packet=bytearray())
            if rc > 0:
                self._rbuf = b""
                return self._loop_rc_handle(rc)
            if self._sock is not sock:  # the handler closed the connection
                self._rbuf = b""
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        self._rbuf = buf[pos:]
        return MQTTErrorCode.MQTT_ERR_SUCCESS


if not all(hasattr(mqtt.Client, a) for a in ("_packet_handle", "_loop_rc_handle",
                                            "_call_socket_register_write")):
    FastClient.loop_read = mqtt.Client.loop_read  # type: ignore[method-assign]
