"""
Tests for L{isis_twisted.core.status}: the typed status and its JSON form.
"""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.status import NodeStatus, OldestUndelivered, PeerStatus


def example() -> NodeStatus:
    return NodeStatus(
        member="a",
        group="g",
        members=["a", "b", "c"],
        view=1,
        view_members=("a", "b"),
        state="normal",
        removed_because=None,
        suspects={"c": 1.5},
        view_changes=1,
        suspicions=1,
        last_view_change_s=0.012,
        clock=7,
        multicasts=3,
        delivered=5,
        queue=1,
        waiting_multicasts=0,
        oldest_undelivered=OldestUndelivered("b", 6, 0.25, ("b",)),
        peers={"b": PeerStatus(True, False, 1, 40, 9, 8, 9, 8, 900, 800, 0, 0, 1, 0.1)},
        silent_members=(),
        rejected_connections=0,
        last_rejection=None,
        handler_errors=0,
    )


class NodeStatusTests(SynchronousTestCase):
    def test_json_round_trip(self) -> None:
        """
        The JSON form has plain lists and objects, and reads back equal.
        """
        status = example()
        data = json.loads(json.dumps(status.to_json()))
        self.assertEqual(data["view_members"], ["a", "b"])
        self.assertEqual(data["oldest_undelivered"]["waiting_for"], ["b"])
        self.assertEqual(data["peers"]["b"]["connected_in"], False)
        self.assertEqual(NodeStatus.from_json(data), status)

    def test_lists_become_tuples(self) -> None:
        """
        Sequences given as lists are kept as tuples, so a status is hashable
        in its name fields and compares equal however it was built.
        """
        self.assertEqual(example().members, ("a", "b", "c"))

    def test_not_a_status(self) -> None:
        """
        JSON that is not a status is refused with a L{ValueError} saying so.
        """
        data = example().to_json()
        del data["peers"]
        e = self.assertRaises(ValueError, NodeStatus.from_json, data)
        self.assertIn("not a member's status", str(e))
