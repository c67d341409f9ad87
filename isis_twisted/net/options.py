"""
What operators type, made into what Twisted takes: addresses into endpoint
descriptions, counts into numbers.  Shared by C{twistd isis} and the C{isis}
command, so both accept the same short forms and say the same things.
"""

from __future__ import annotations

import re

from twisted.internet import reactor as _reactor
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.python import usage

_ENDPOINT_TYPES = ("tcp", "tcp6", "unix", "ssl", "tls", "systemd")
_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9_.\-]+):(?P<port>\d{1,5})$")


def _port(text: str, least: int) -> int:
    port = int(text)
    if not least <= port <= 65535:
        raise ValueError(f"{port} is not a TCP port ({least}-65535)")
    return port


def listen_description(value: str) -> str:
    """
    Turn a listening address into a server endpoint description: a bare
    port number listens on 127.0.0.1 only; anything else must be a
    description (C{tcp:9001:interface=0.0.0.0}, C{unix:/run/a.sock}).

    @raise ValueError: If it is neither, with the reason in plain words.
    """
    value = value.strip()
    if value.isdecimal():
        return f"tcp:{_port(value, 0)}:interface=127.0.0.1"
    try:
        serverFromString(_reactor, value)
    except Exception as e:
        raise ValueError(
            f"{value!r} is neither a port number nor an endpoint description"
            f" such as tcp:9001:interface=0.0.0.0 ({e})"
        ) from None
    return value


def dial_description(value: str) -> str:
    """
    Turn an address to dial into a client endpoint description: a bare port
    number is that port on 127.0.0.1, C{HOST:PORT} is TCP, and anything else
    must be a description (C{tcp:host=10.0.0.2:port=9001},
    C{unix:path=/run/b.sock}).

    @raise ValueError: If it is none of these, with the reason in plain
        words.
    """
    value = value.strip()
    if value.isdecimal():
        return f"tcp:host=127.0.0.1:port={_port(value, 1)}"
    match = _HOST_PORT.match(value)
    if match and match["host"] not in _ENDPOINT_TYPES:
        return f"tcp:host={match['host']}:port={_port(match['port'], 1)}"
    try:
        clientFromString(_reactor, value)
    except Exception as e:
        raise ValueError(
            f"{value!r} is neither HOST:PORT nor a client endpoint description"
            f" such as tcp:host=10.0.0.2:port=9001 ({e})"
        ) from None
    return value


def whole_number(option: str, value: object, least: int) -> int:
    """
    Read a command-line count.

    @param option: The option's name as typed (C{"--window"}), for messages.
    @raise usage.UsageError: If C{value} is not a whole number of at least
        C{least}.
    """
    try:
        number = int(str(value).replace("_", ""))
    except ValueError:
        raise usage.UsageError(
            f"{option} takes a whole number, not {value!r}"
        ) from None
    if number < least:
        raise usage.UsageError(f"{option} must be {least} or more, not {number}")
    return number


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def byte_size(option: str, value: object, least: int) -> int:
    """
    Read a command-line size in bytes: a whole number, or one followed by
    C{k}, C{M} or C{G} (or C{KiB}, C{MiB}, C{GiB}), powers of 1024.

    @param option: The option's name as typed, for messages.
    @raise usage.UsageError: If C{value} is not such a size, of at least
        C{least} bytes.
    """
    text = str(value).strip().replace("_", "")
    lowered = text.lower().removesuffix("ib").removesuffix("b")
    digits = lowered.rstrip("kmg")
    unit = lowered[len(digits) :]
    if not digits.isdecimal() or unit not in _UNITS:
        raise usage.UsageError(
            f"{option} takes a size in bytes (such as 65536, 64MiB or 2G),"
            f" not {value!r}"
        )
    size = int(digits) * _UNITS[unit]
    if size < least:
        raise usage.UsageError(f"{option} must be {least} bytes or more, not {text}")
    return size


def advertised(listen: str) -> str | None:
    """
    Where peers dial a member that listens at C{listen} (a server endpoint
    description), if that says: a TCP port on one interface, or a UNIX
    socket.  L{None} for a TCP port on every interface (C{0.0.0.0}, C{::},
    or none given), whose address on the network only the operator knows.
    """
    kind, _, rest = listen.partition(":")
    fields = rest.split(":")
    named = dict(f.partition("=")[::2] for f in fields if "=" in f)
    plain = [f for f in fields if "=" not in f]
    if kind in ("tcp", "tcp6"):
        port = named.get("port") or (plain[0] if plain else "")
        interface = named.get("interface", "")
        if not port.isdecimal() or interface in ("", "0.0.0.0", "::"):
            return None
        return f"{kind}:host={interface}:port={port}"
    if kind == "unix":
        path = named.get("address") or (plain[0] if plain else "")
        return f"unix:path={path}" if path else None
    return None
