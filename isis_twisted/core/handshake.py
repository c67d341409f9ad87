"""
The link handshake's rules: what a HELLO must say to be served, the proof
of the group secret, and how a client of the client API that dialed a peer
port is told so.  No I/O: L{isis_twisted.net.link} applies them to its
connections.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import attrs

from isis_twisted.core.wire import (
    REFUSED_GROUP,
    REFUSED_MEMBERS,
    REFUSED_NAME,
    REFUSED_SECRET,
    Hello,
)

__all__ = [
    "HANDSHAKE_MAX_FRAME",
    "NONCE_SIZE",
    "WRONG_PORT_CODE",
    "HelloPolicy",
    "Refusal",
    "amp_box",
    "amp_tag",
    "handshake_mac",
    "locked_out_sentence",
    "looks_like_amp",
    "members_differ",
    "names",
]

HANDSHAKE_MAX_FRAME = 65536
"""
The largest frame accepted before the handshake completes, so that a
stranger cannot make a node buffer a large frame.  A HELLO carries the
sender's member list, so this bounds the group too: a node whose HELLO would
not fit refuses to start (L{isis_twisted.net.link.PeerLink}).
"""

NONCE_SIZE = 32
"""
How many random bytes each side of a handshake contributes in a group with
a secret.
"""

WRONG_PORT_CODE = b"ISIS_PEER_PORT"
"""
The AMP error code a peer port answers a client's first command with: the
client dialed a member's peer port instead of its client port.
"""


@attrs.frozen
class Refusal:
    """
    Why a handshake is refused, for the log and the peer's REFUSE.

    @ivar reason: One sentence.
    @ivar code: The REFUSE's code (C{REFUSED_*} in L{isis_twisted.core.wire}).
    """

    reason: str
    code: int


@attrs.frozen
class HelloPolicy:
    """
    What a member checks a peer's HELLO against.

    @ivar group: This member's group.
    @ivar me: Its name.
    @ivar members: Its configured member list, sorted.
    @ivar configured: The same list in the order it was configured, for
        sentences.
    @ivar dialed: The member a dialed connection was dialed to, or L{None}
        for an accepted one.
    @ivar has_secret: Whether the group has a secret.
    @ivar require_certificate: Whether a peer's TLS certificate must name it.
    """

    group: str
    me: str
    members: tuple[str, ...]
    configured: tuple[str, ...]
    dialed: str | None
    has_secret: bool
    require_certificate: bool

    def wrong_group(self, group: str) -> Refusal | None:
        """
        Refuse a connection whose first frame names another group.
        """
        if group == self.group:
            return None
        return Refusal(
            f"group {group!r} is not this node's group {self.group!r}",
            REFUSED_GROUP,
        )

    def is_stranger(self, hello: Hello, known: bool) -> bool:
        """
        Whether C{hello} comes from a member the group was not started with
        that gives its address (added at run time, or asking to be).

        @param known: Whether this member has a link to the HELLO's member.
        """
        return (
            not known
            and self.dialed is None
            and bool(hello.address)
            and hello.member != self.me
            and hello.member not in self.members
        )

    def identity(self, hello: Hello, known: bool) -> Refusal | None:
        """
        Whether C{hello} names the right group and members: the checks made
        before the connection is taken as the HELLO's member's.

        Members exchange nothing unless they were given the same members:
        the configured lists, not the views, which change as members leave
        (a member still in an older view must reach the others to catch up).

        @param known: Whether this member has a link to the HELLO's member.
        """
        wrong = self.wrong_group(hello.group)
        if wrong is not None:
            return wrong
        if self.dialed is not None and hello.member != self.dialed:
            return Refusal(
                f"dialed member {self.dialed!r} but {hello.member!r}"
                " answered: check the peer addresses",
                REFUSED_NAME,
            )
        if hello.peer != self.me:
            return Refusal(
                f"{hello.member!r} meant to reach member {hello.peer!r}, but this"
                f" is {self.me!r}: check the peer addresses of {hello.member!r}",
                REFUSED_NAME,
            )
        if hello.members and hello.members != self.members:
            return self._differ(hello)
        if not known and not self.is_stranger(hello, known):
            what = (
                "this node's own name"
                if hello.member == self.me
                else f"not a member (members: {', '.join(self.configured)})"
            )
            return Refusal(f"{hello.member!r} is {what}", REFUSED_NAME)
        if hello.members != self.members:
            return self._differ(hello)
        return None

    def credentials(self, hello: Hello, presented: str | None) -> Refusal | None:
        """
        Whether the peer that sent C{hello} shows what this group asks of a
        member: a certificate naming it, and the secret's nonce if and only
        if the group has a secret.

        @param presented: The name the peer's certificate gives, if any
            (only read when certificates are required).
        """
        if self.require_certificate and presented != hello.member:
            what = (
                "no certificate"
                if presented is None
                else f"the certificate of {presented!r}"
            )
            return Refusal(
                f"{hello.member!r} presented {what}: a member's certificate"
                " must name it",
                REFUSED_NAME,
            )
        if not self.has_secret and hello.nonce:
            return Refusal(
                "the peer uses a group secret but this node has none"
                " (give every member the same --secret-file)",
                REFUSED_SECRET,
            )
        if self.has_secret and not hello.nonce:
            return Refusal(
                "this group requires the group secret, and the peer has none"
                " (give every member the same --secret-file)",
                REFUSED_SECRET,
            )
        return None

    def _differ(self, hello: Hello) -> Refusal:
        return Refusal(members_differ(hello, self.me, self.members), REFUSED_MEMBERS)


def names(listed: Sequence[str], most: int = 8) -> str:
    """
    Names for a sentence, the first C{most} of a long list.
    """
    if not listed:
        return "none"
    shown = ", ".join(listed[:most])
    return shown if len(listed) <= most else f"{shown} ... ({len(listed)} in all)"


def members_differ(them: Hello, me: str, mine: tuple[str, ...]) -> str:
    """
    The reason to refuse a HELLO whose member list is not C{mine}: both
    lists, and what one has that the other has not.

    The views are left out: they change as members leave, and the reason
    is to stay the same for as long as the mistake does, so that it is
    logged once.

    @param them: The HELLO.
    @param me: This node's name.
    @param mine: This node's configured member list, sorted.
    """
    theirs = them.members
    who = repr(them.member)
    missing = [name for name in mine if name not in theirs]
    extra = [name for name in theirs if name not in mine]
    diff = [
        *([f"{who} omits {names(missing)}"] if missing else []),
        *([f"only {who} lists {names(extra)}"] if extra else []),
    ]
    return (
        f"{who} lists members {names(theirs)}; {me!r} lists {names(mine)}"
        f" ({'; '.join(diff)}): every member must be given the same members"
    )


def handshake_mac(
    secret: bytes,
    role: bytes,
    group: str,
    dialer: tuple[str, int, bytes],
    acceptor: tuple[str, int, bytes],
    members: Sequence[str],
) -> bytes:
    """
    The MAC that the side in C{role} (C{b"dialer"} or C{b"acceptor"})
    sends: over both sides' names, incarnations and nonces and the member
    list, so that it proves the secret for this connection only and a
    recorded handshake cannot be replayed.  The member list too: both sides
    checked that the HELLOs' lists are their own, and the MAC proves that
    neither HELLO's was changed on the way.

    @param dialer: The dialing side's name, incarnation and nonce.
    @param acceptor: The accepting side's.
    @param members: The configured member list (sorted here).
    """
    listed = b"".join(
        len(raw).to_bytes(2, "big") + raw
        for raw in (name.encode() for name in sorted(members))
    )
    transcript = b"".join(
        [
            b"isis-twisted auth 2\0",
            role,
            b"\0",
            *(
                len(part).to_bytes(2, "big") + part
                for part in (
                    group.encode(),
                    dialer[0].encode(),
                    acceptor[0].encode(),
                    dialer[2] + acceptor[2],
                )
            ),
            dialer[1].to_bytes(8, "big"),
            acceptor[1].to_bytes(8, "big"),
            len(members).to_bytes(2, "big"),
            listed,
        ]
    )
    return hmac.new(secret, transcript, hashlib.sha256).digest()


def locked_out_sentence(
    me: str, members: Sequence[str], refusing: Sequence[tuple[str, tuple[int, str]]]
) -> str | None:
    """
    Whether a member can never be let in as it was started, and why: most
    of its configured members (at least M{n // 2 + 1} distinct peers of a
    group of M{n}, itself counted in M{n}) refused it for a reason no retry
    can change (wrong group or secret).

    A majority, so that one mistaken peer cannot shut a healthy member out,
    and neither member of a pair can shut out the other.

    @param refusing: The peers whose last refusal was such a one, in name
        order, with its code and reason.
    @return: One sentence that says what is wrong and what to do, or
        L{None}.
    """
    if len(refusing) < len(members) // 2 + 1:
        return None
    codes = {code for _, (code, _) in refusing}
    advice = []
    if REFUSED_GROUP in codes:
        advice.append("start it with the --group of the other members")
    if REFUSED_SECRET in codes:
        advice.append("give it the same --secret-file as the other members")
    first, (_, reason) = refusing[0]
    return (
        f"member {me!r} can never be let in:"
        f" {names([name for name, _ in refusing])}"
        f" of its {len(members) - 1} peers refused it ({first}: {reason});"
        f" {' and '.join(advice)}"
    )


def looks_like_amp(data: bytes) -> bool:
    """
    Whether C{data}, the first bytes of a connection, begin an AMP box (what
    a client of the client API sends) rather than a frame.

    An AMP box starts with a key: a 2-byte length below 256 and the key
    itself, and every key AMP sends first (C{_ask}, C{_command}) starts with
    an underscore.  A frame starts with a 4-byte length, which before the
    handshake is at most L{HANDSHAKE_MAX_FRAME} (65,536), so its second byte
    is 0 or its third is.
    """
    return len(data) >= 3 and data[0] == 0 and data[1] != 0 and data[2:3] == b"_"


def amp_tag(data: bytes) -> bytes | None:
    """
    The C{_ask} tag of the AMP box at the start of C{data}, if the box has
    one and it is all there.
    """
    offset = 0
    while offset + 2 <= len(data):
        size = int.from_bytes(data[offset : offset + 2], "big")
        if size == 0:
            return None  # the end of the box
        key = data[offset + 2 : offset + 2 + size]
        offset += 2 + size
        if offset + 2 > len(data):
            return None
        length = int.from_bytes(data[offset : offset + 2], "big")
        value = data[offset + 2 : offset + 2 + length]
        offset += 2 + length
        if offset > len(data):
            return None
        if key == b"_ask":
            return value
    return None


def amp_box(fields: dict[bytes, bytes]) -> bytes:
    """
    Encode one AMP box (keys and values below 64 KiB).
    """
    parts = []
    for key, value in fields.items():
        parts += [
            len(key).to_bytes(2, "big"),
            key,
            len(value).to_bytes(2, "big"),
            value,
        ]
    return b"".join([*parts, b"\x00\x00"])
