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

from collections.abc import Iterator, Mapping
from typing import Any, Protocol


class StatusSource(Protocol):
    """
    Anything with a node's C{status()}.
    """

    def status(self) -> Mapping[str, object]:
        """
        The node's status, as L{isis_twisted.node.MulticastNode.status}.
        """


_NODE_COUNTERS = {
    "multicasts": ("isis_multicasts", "Messages this member multicast."),
    "delivered": ("isis_deliveries", "Messages this member delivered."),
    "rejected_connections": (
        "isis_rejected_connections",
        "Connections refused or dropped for breaking the protocol.",
    ),
    "handler_errors": ("isis_handler_errors", "Delivery handler calls that raised."),
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
        member = str(status["member"])
        for key, (name, doc) in _NODE_COUNTERS.items():
            family = CounterMetricFamily(name, doc, labels=["member"])
            family.add_metric([member], float(_number(status.get(key))))
            yield family
        for key, (name, doc) in _NODE_GAUGES.items():
            gauge = GaugeMetricFamily(name, doc, labels=["member"])
            gauge.add_metric([member], float(_number(status.get(key))))
            yield gauge
        state = GaugeMetricFamily(
            "isis_state",
            "1 for the membership state this member is in (normal, flushing,"
            " blocked without a majority, removed), 0 for the others.",
            labels=["member", "state"],
        )
        for name in STATES:
            state.add_metric(
                [member, name], 1.0 if status.get("state") == name else 0.0
            )
        yield state
        members = status.get("view_members")
        suspects = status.get("suspects")
        size = GaugeMetricFamily(
            "isis_view_members", "How many members the view has.", labels=["member"]
        )
        size.add_metric(
            [member], float(len(members) if isinstance(members, list) else 0)
        )
        yield size
        suspected = GaugeMetricFamily(
            "isis_suspects",
            "How many members of the view are suspected now.",
            labels=["member"],
        )
        suspected.add_metric(
            [member], float(len(suspects) if isinstance(suspects, dict) else 0)
        )
        yield suspected
        oldest = status.get("oldest_undelivered")
        age = GaugeMetricFamily(
            "isis_oldest_undelivered_age_seconds",
            "How long the oldest undelivered message has waited (0 if none).",
            labels=["member"],
        )
        age.add_metric(
            [member],
            float(_number(oldest.get("age_s"))) if isinstance(oldest, dict) else 0.0,
        )
        yield age
        peers = status.get("peers")
        peers = peers if isinstance(peers, dict) else {}
        for key, (name, doc) in _PEER_COUNTERS.items():
            family = CounterMetricFamily(name, doc, labels=["member", "peer"])
            for peer, counters in sorted(peers.items()):
                family.add_metric([member, peer], float(_number(counters.get(key))))
            yield family
        for key, (name, doc) in _PEER_GAUGES.items():
            gauge = GaugeMetricFamily(name, doc, labels=["member", "peer"])
            for peer, counters in sorted(peers.items()):
                gauge.add_metric([member, peer], float(_number(counters.get(key))))
            yield gauge
        connected = GaugeMetricFamily(
            "isis_peer_connected",
            "Whether a connection to the peer is up (1) or not (0).",
            labels=["member", "peer", "direction"],
        )
        for peer, counters in sorted(peers.items()):
            for direction in ("out", "in"):
                up = counters.get(f"connected_{direction}")
                connected.add_metric([member, peer, direction], 1.0 if up else 0.0)
        yield connected


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def metrics_resource(node: StatusSource) -> Any:
    """
    A Twisted web resource serving the node's metrics at any path.

    @raise ImportError: If C{prometheus_client} is not installed.
    """
    from prometheus_client import CollectorRegistry
    from prometheus_client.twisted import MetricsResource

    registry = CollectorRegistry(auto_describe=True)
    registry.register(NodeCollector(node))
    return MetricsResource(registry=registry)  # type: ignore[no-untyped-call]
