"""
A node's counters in the Prometheus text format, for C{--metrics-port}.

The figures are the ones C{isis status} shows, read from the node when
Prometheus scrapes: multicasts, deliveries, queue depth, the age of the
oldest undelivered message, back-pressure, rejected connections, handler
errors, the view, the membership state, view changes and suspicions, and
for every peer its connections, frames and bytes each way,
resend buffer, resends and silence.  Needs C{prometheus_client}
(C{pip install 'isis-twisted[metrics]'}).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from twisted.web.resource import Resource
from twisted.web.server import Request

from isis_twisted.core.status import NodeStatus


class StatusSource(Protocol):
    """
    Anything with a node's C{status()}.
    """

    def status(self) -> NodeStatus:
        """
        The node's status, as L{isis_twisted.net.node.MulticastNode.status}.
        """


_NODE_COUNTERS = {
    "multicasts": ("isis_multicasts", "Messages this member multicast."),
    "delivered": ("isis_deliveries", "Messages this member delivered."),
    "rejected_connections": (
        "isis_rejected_connections",
        "Connections refused or dropped for breaking the protocol.",
    ),
    "handler_errors": ("isis_handler_errors", "Delivery handler calls that raised."),
    "handler_give_ups": (
        "isis_handler_give_ups",
        "Times this member left the group because a delivery handler stayed"
        " stuck past --handler-give-up.",
    ),
    "view_changes": ("isis_view_changes", "Views this member installed."),
    "suspicions": (
        "isis_suspicions",
        "Times this member's failure detector suspected a member of its view.",
    ),
}
_NODE_GAUGES = {
    "clock": ("isis_clock", "This member's Lamport clock."),
    "queue": ("isis_queue_depth", "Messages held, not yet deliverable."),
    "waiting_multicasts": (
        "isis_waiting_multicasts",
        "Multicasts waiting for room in a peer's resend buffer or for a view"
        " change to end.",
    ),
    "view": ("isis_view", "The id of the view this member is in."),
    "undelivered_records": (
        "isis_undelivered_records",
        "Records delivered by the group that a stuck delivery handler holds"
        " back on this member.",
    ),
    "last_view_change_s": (
        "isis_last_view_change_seconds",
        "How long the last view change took, from the first suspicion to the"
        " view installed here.",
    ),
}

STATES = ("normal", "flushing", "blocked", "removed")
"""
The membership states C{isis_state} reports, one label value each.
"""
_PEER_COUNTERS = {
    "frames_out": ("isis_peer_frames_out", "DATA frames sent to the peer."),
    "frames_in": ("isis_peer_frames_in", "DATA frames received from the peer."),
    "bytes_out": ("isis_peer_bytes_out", "Bytes of DATA frames sent to the peer."),
    "bytes_in": ("isis_peer_bytes_in", "Bytes of frames received from the peer."),
    "resent": ("isis_peer_resent_frames", "Frames resent after a reconnect."),
    "duplicates": ("isis_peer_duplicate_frames", "Duplicate frames dropped."),
    "connections": ("isis_peer_connections", "Connections made to the peer."),
}
_PEER_GAUGES = {
    "unacked_bytes": (
        "isis_peer_unacked_bytes",
        "Bytes in the peer's resend buffer (sent, not yet acknowledged).",
    ),
    "unacked_frames": ("isis_peer_unacked_frames", "Frames in the resend buffer."),
    "silent_s": ("isis_peer_silent_seconds", "Seconds since the peer was heard."),
}


class NodeCollector:
    """
    A C{prometheus_client} collector that reads a node's status at every
    scrape.
    """

    def __init__(self, node: StatusSource) -> None:
        """
        @param node: The node to read.
        """
        self.node = node

    def collect(self) -> Iterator[Any]:
        """
        The node's metric families, labelled with its member name.
        """
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        status = self.node.status()
        member = status.member
        for key, (name, doc) in _NODE_COUNTERS.items():
            family = CounterMetricFamily(name, doc, labels=["member"])
            family.add_metric([member], _number(getattr(status, key)))
            yield family
        for key, (name, doc) in _NODE_GAUGES.items():
            gauge = GaugeMetricFamily(name, doc, labels=["member"])
            gauge.add_metric([member], _number(getattr(status, key)))
            yield gauge
        state = GaugeMetricFamily(
            "isis_state",
            "1 for the membership state this member is in (normal, flushing,"
            " blocked without a majority, removed), 0 for the others.",
            labels=["member", "state"],
        )
        for name in STATES:
            state.add_metric([member, name], 1.0 if status.state == name else 0.0)
        yield state
        size = GaugeMetricFamily(
            "isis_view_members", "How many members the view has.", labels=["member"]
        )
        size.add_metric([member], float(len(status.view_members)))
        yield size
        suspected = GaugeMetricFamily(
            "isis_suspects",
            "How many members of the view are suspected now.",
            labels=["member"],
        )
        suspected.add_metric([member], float(len(status.suspects)))
        yield suspected
        oldest = status.oldest_undelivered
        age = GaugeMetricFamily(
            "isis_oldest_undelivered_age_seconds",
            "How long the oldest undelivered message has waited (0 if none).",
            labels=["member"],
        )
        age.add_metric([member], _number(oldest.age_s) if oldest is not None else 0.0)
        yield age
        peers = sorted(status.peers.items())
        for key, (name, doc) in _PEER_COUNTERS.items():
            family = CounterMetricFamily(name, doc, labels=["member", "peer"])
            for peer, link in peers:
                family.add_metric([member, peer], _number(getattr(link, key)))
            yield family
        for key, (name, doc) in _PEER_GAUGES.items():
            gauge = GaugeMetricFamily(name, doc, labels=["member", "peer"])
            for peer, link in peers:
                gauge.add_metric([member, peer], _number(getattr(link, key)))
            yield gauge
        connected = GaugeMetricFamily(
            "isis_peer_connected",
            "Whether a connection to the peer is up (1) or not (0).",
            labels=["member", "peer", "direction"],
        )
        for peer, link in peers:
            connected.add_metric([member, peer, "out"], float(link.connected_out))
            connected.add_metric([member, peer, "in"], float(link.connected_in))
        yield connected


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


class MetricsResource(Resource):
    """
    The node's metrics, at any path: the exposition is made on the reactor
    thread, where the node lives (C{prometheus_client}'s own Twisted
    resource makes it in a thread pool, and would read the node's state
    while the reactor changes it).
    """

    isLeaf = True

    def __init__(self, node: StatusSource) -> None:
        """
        @param node: The node to read at every scrape.
        @raise ImportError: If C{prometheus_client} is not installed.
        """
        from prometheus_client import CollectorRegistry

        super().__init__()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(NodeCollector(node))

    def render_GET(self, request: Request) -> bytes:
        """
        The metrics in the Prometheus text format.
        """
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self.registry)


def metrics_resource(node: StatusSource) -> MetricsResource:
    """
    A Twisted web resource serving the node's metrics at any path.

    @raise ImportError: If C{prometheus_client} is not installed.
    """
    return MetricsResource(node)
