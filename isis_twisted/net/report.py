"""
What a member is doing, as a L{NodeStatus}: L{node_status} reads it from
the member's membership, engine, links, failure detector and handlers
(L{MulticastNode.status} returns it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from isis_twisted.core.status import (
    NodeStatus,
    OldestUndelivered,
    PeerStatus,
    StuckHandler,
)

if TYPE_CHECKING:
    from isis_twisted.net.node import MulticastNode


def node_status(node: MulticastNode) -> NodeStatus:
    """
    What C{node} is doing: its view and membership state, clock, queue,
    the oldest undelivered message (its age and whom it waits for), every
    peer's link, and counters.
    """
    engine = node.engine
    now = node.clock.seconds()
    head = engine.head()
    oldest: OldestUndelivered | None = None
    if head is not None:
        since = node.admission.arrived.get(head)
        oldest = OldestUndelivered(
            head[1],
            head[0],
            round(now - since, 3) if since is not None else None,
            tuple(engine.waiting_for()),
        )
    peers = {
        name: PeerStatus(
            connected_out=link.outbound is not None,
            connected_in=link.inbound is not None,
            unacked_frames=len(link.unacked),
            unacked_bytes=link.unacked_bytes,
            sent_seq=link.next_seq - 1,
            received_seq=link.received,
            frames_out=link.frames_out,
            frames_in=link.frames_in,
            bytes_out=link.bytes_out,
            bytes_in=link.bytes_in,
            resent=link.resent,
            duplicates=link.duplicates,
            connections=link.connects,
            refused=link.refused,
            silent_s=(
                round(now - link.last_heard, 3) if link.last_heard is not None else None
            ),
        )
        for name, link in node.links.items()
    }
    membership = node.membership
    suspected = node.detector.suspected
    last_flush = node.driver.last_flush
    started_at = node.peers.started_at
    return NodeStatus(
        member=node.me,
        group=node.group,
        members=node.members,
        view=membership.view.id,
        view_members=membership.view.members,
        state=membership.state,
        removed_because=membership.reason,
        suspects={
            name: round(now - suspected[name], 3) if name in suspected else None
            for name in sorted(membership.suspects)
        },
        view_changes=membership.view_changes,
        suspicions=node.detector.suspicions,
        last_view_change_s=(round(last_flush, 4) if last_flush is not None else None),
        clock=engine.clock,
        multicasts=node.admission.multicasts,
        delivered=engine.delivered,
        queue=engine.queue_length,
        waiting_multicasts=len(node.admission.waiting),
        oldest_undelivered=oldest,
        peers=peers,
        silent_members=[
            name
            for name, link in node.links.items()
            if name in membership.view.members
            and now - (link.last_heard if link.last_heard is not None else started_at)
            >= node.silence
        ],
        rejected_connections=node.rejections,
        last_rejection=node.last_rejection,
        handler_errors=node.handler_errors,
        refused_because=node.refused_because,
        forced_views=tuple(membership.forced),
        stuck_handlers=tuple(
            StuckHandler(
                s.handler,
                s.index,
                s.reason,
                round(now - s.since, 3),
                s.attempts,
            )
            for s in sorted(node.pump.all_stuck, key=lambda s: s.since)
        ),
        handler_give_ups=node.standing.give_ups,
        undelivered_records=node.pump.pending,
        caught_up_records=node.caught_up,
        restored_bytes=node.restored_bytes,
    )
