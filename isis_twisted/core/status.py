"""
What a member is doing, as typed records: L{NodeStatus} and its parts.

L{isis_twisted.net.node.MulticastNode.status} returns one; C{isis status},
the client API (as JSON, L{NodeStatus.to_json}), the metrics and the tests
read it.  L{NodeStatus.from_json} reads the JSON form back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attr
import attrs


@attrs.frozen
class PeerStatus:
    """
    The link to one peer.

    @ivar connected_out: Whether the connection this member dialed is up.
    @ivar connected_in: Whether the connection the peer dialed is up.
    @ivar unacked_frames: Frames in the resend buffer.
    @ivar unacked_bytes: Bytes in the resend buffer.
    @ivar sent_seq: The sequence number of the last frame sent.
    @ivar received_seq: The highest sequence number held, without gaps.
    @ivar frames_out: Frames sent.
    @ivar frames_in: Frames received.
    @ivar bytes_out: Bytes sent.
    @ivar bytes_in: Bytes received.
    @ivar resent: Frames resent after a reconnect.
    @ivar duplicates: Duplicate frames dropped.
    @ivar connections: Connections made to the peer.
    @ivar silent_s: Seconds since the peer was last heard, or L{None} if
        never.
    @ivar refused: Times the peer refused a connection this member dialed.
    """

    connected_out: bool
    connected_in: bool
    unacked_frames: int
    unacked_bytes: int
    sent_seq: int
    received_seq: int
    frames_out: int
    frames_in: int
    bytes_out: int
    bytes_in: int
    resent: int
    duplicates: int
    connections: int
    silent_s: float | None
    refused: int = 0


@attrs.frozen
class OldestUndelivered:
    """
    The head of the queue: the message delivery waits on.

    @ivar sender: Its sender.
    @ivar clock: The clock of its timestamp.
    @ivar age_s: Seconds since it arrived, if known.
    @ivar waiting_for: The members whose clock or receipt it still needs.
    """

    sender: str
    clock: int
    age_s: float | None
    waiting_for: tuple[str, ...]


@attrs.frozen
class StuckHandler:
    """
    A delivery handler that cannot keep a record (it raises L{OSError}: a
    full disk, a lost database): the member hands out nothing from that
    record on until it does.

    @ivar handler: The handler's C{repr}.
    @ivar index: The index of the record it is stuck at.
    @ivar reason: The last failure, in one line.
    @ivar stuck_s: Seconds since it first failed on that record.
    @ivar attempts: How many times it failed on it.
    """

    handler: str
    index: int
    reason: str
    stuck_s: float
    attempts: int


def _stuck(value: Any) -> tuple[StuckHandler, ...]:
    return tuple(v if isinstance(v, StuckHandler) else StuckHandler(**v) for v in value)


def _tuple(value: Any) -> tuple[str, ...]:
    return tuple(value)


def _ints(value: Any) -> tuple[int, ...]:
    return tuple(value)


@attrs.frozen
class NodeStatus:
    """
    What a member is doing.

    @ivar member: Its name.
    @ivar group: The group's name.
    @ivar members: The members it was started with.
    @ivar view: The id of the view it is in.
    @ivar view_members: That view's members, in rank order.
    @ivar state: C{normal}, C{flushing} (closing the view), C{blocked}
        (no majority to close it with) or C{removed}.
    @ivar removed_because: Why it is out of the group, once it is.
    @ivar suspects: The suspected members of the view, each with the
        seconds since this member suspected it (L{None}: another member
        does and told it).
    @ivar view_changes: Views installed since it started.
    @ivar suspicions: Times its failure detector suspected a member.
    @ivar last_view_change_s: How long the last view change took here.
    @ivar clock: Its Lamport clock.
    @ivar multicasts: Messages it multicast.
    @ivar delivered: Messages it delivered (the last index).
    @ivar queue: Messages held, not yet deliverable.
    @ivar waiting_multicasts: Multicasts waiting for room in a resend
        buffer or for a view change to end.
    @ivar oldest_undelivered: The head of the queue, if any.
    @ivar peers: Every peer's link, by name.
    @ivar silent_members: Members of the view not heard from for the
        silence bound.
    @ivar rejected_connections: Connections refused or dropped.
    @ivar last_rejection: Who, from where and why, for the last of them.
    @ivar handler_errors: Handler calls that raised.
    @ivar refused_because: Why this member can never be let in (most of
        its group refused it for its group name or secret), once it knows.
    @ivar forced_views: The views this member installed by force, on an
        operator's word (C{isis force-view}).
    @ivar stuck_handlers: The handlers that cannot keep a record, longest
        stuck first: what this member hands out waits for them.
    @ivar handler_give_ups: Times this member left the group because a
        handler stayed stuck past C{--handler-give-up}.
    @ivar undelivered_records: Records delivered by the group and not yet
        taken by every handler.
    @ivar caught_up_records: Records this member was given by replay when
        it was added back.
    @ivar restored_bytes: Bytes of state handlers' snapshots it restored
        when it was added back.
    """

    member: str
    group: str
    members: tuple[str, ...] = attrs.field(converter=_tuple)
    view: int
    view_members: tuple[str, ...] = attrs.field(converter=_tuple)
    state: str
    removed_because: str | None
    suspects: Mapping[str, float | None]
    view_changes: int
    suspicions: int
    last_view_change_s: float | None
    clock: int
    multicasts: int
    delivered: int
    queue: int
    waiting_multicasts: int
    oldest_undelivered: OldestUndelivered | None
    peers: Mapping[str, PeerStatus]
    silent_members: tuple[str, ...] = attrs.field(converter=_tuple)
    rejected_connections: int
    last_rejection: str | None
    handler_errors: int
    refused_because: str | None = None
    forced_views: tuple[int, ...] = attrs.field(default=(), converter=_ints)
    stuck_handlers: tuple[StuckHandler, ...] = attrs.field(default=(), converter=_stuck)
    handler_give_ups: int = 0
    undelivered_records: int = 0
    caught_up_records: int = 0
    restored_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        """
        The status as JSON-ready data (what C{isis status --json} prints).
        """
        # attr's asdict, not attrs': it turns tuples into lists, as JSON has.
        return attr.asdict(self, retain_collection_types=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NodeStatus:
        """
        Read the JSON form back.

        @raise ValueError: If it is not a status (a field is missing or of
            the wrong shape).
        """
        try:
            fields = dict(data)
            oldest = fields["oldest_undelivered"]
            fields["oldest_undelivered"] = (
                None
                if oldest is None
                else OldestUndelivered(
                    oldest["sender"],
                    oldest["clock"],
                    oldest["age_s"],
                    tuple(oldest["waiting_for"]),
                )
            )
            fields["peers"] = {
                name: PeerStatus(**peer) for name, peer in fields["peers"].items()
            }
            fields["suspects"] = dict(fields["suspects"])
            known = {a.name for a in attrs.fields(cls)}
            return cls(**{k: v for k, v in fields.items() if k in known})
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"not a member's status: {e}") from None


def status_json(status: NodeStatus | Mapping[str, Any]) -> dict[str, Any]:
    """
    A status, or a test double's JSON form of one, as JSON-ready data:
    what C{isis status --json} prints and the client APIs answer.
    """
    return status.to_json() if isinstance(status, NodeStatus) else dict(status)
