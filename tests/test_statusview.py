"""
Tests for L{isis_twisted.app.statusview}: C{isis status}.
"""

from __future__ import annotations

import io
import json

from twisted.internet import reactor
from twisted.internet.interfaces import IReactorTCP
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.app.cli import parse, run
from isis_twisted.app.clibase import EXIT_TIMEOUT
from isis_twisted.app.statusview import format_status
from tests.test_cli import NodeCommandTests, console, err, out
from tests.test_client import FakeNode


class FormatStatusTests(SynchronousTestCase):
    """
    How the status is printed.
    """

    def test_status(self) -> None:
        status = {
            "me": "a",
            "members": ["a", "b", "c"],
            "queue_length": 2,
            "ready": True,
            "leader": None,
            "load": 0.25,
            "peers": {"b": {"connected": True, "horizon": 4}, "c": {}},
            "links": [{"peer": "b", "up": False}, 3],
            "something_new": {"deep": {"deeper": []}},
        }
        self.assertEqual(
            format_status(status),
            [
                "me: a",
                "members: a, b, c",
                "queue length: 2",
                "ready: yes",
                "leader: -",
                "load: 0.25",
                "peers:",
                "  b:",
                "    connected: yes",
                "    horizon: 4",
                "  c: (none)",
                "links:",
                "  -",
                "    peer: b",
                "    up: no",
                "  - 3",
                "something new:",
                "  deep:",
                "    deeper: (none)",
            ],
        )


class StatusTests(NodeCommandTests):
    """
    C{isis status}.
    """

    async def test_human(self) -> None:
        node = FakeNode()
        node.extra_status = {"peers": {"b": {"connected": False}}}
        c = console()
        self.assertEqual(await self.run_command(node, ["status"], c), 0)
        self.assertEqual(
            out(c),
            [
                "blocked: the node is not connected to b",
                "me: a",
                "members: a, b, c",
                "delivered: 0",
                "pending: 0",
                "history:",
                "  oldest: 1",
                "  newest: 0",
                "peers:",
                "  b:",
                "    connected: no",
            ],
        )

    async def test_blocked_first(self) -> None:
        """
        The first line says which members the oldest message waits for.
        """
        node = FakeNode()
        node.extra_status = {
            "oldest_undelivered": {"age_s": 4.5, "waiting_for": ["b", "c"]},
            "silent_members": ["c"],
            "peers": {"b": {"connected_out": True}, "c": {"connected_in": True}},
        }
        c = console()
        self.assertEqual(await self.run_command(node, ["status"], c), 0)
        self.assertEqual(
            out(c)[0],
            "blocked: the node waits for b, c (silent: c), its oldest message"
            " for 4.5 s",
        )
        node.extra_status = {}
        c = console()
        self.assertEqual(await self.run_command(node, ["status"], c), 0)
        self.assertEqual(out(c)[0], "blocked: no")

    def membership(self, **fields: object) -> dict[str, object]:
        """
        A status with the membership fields a node reports, overridden by
        C{fields}.
        """
        return {
            "view": 2,
            "view_members": ["a", "b", "c"],
            "state": "normal",
            "removed_because": None,
            "suspects": {},
            "view_changes": 2,
            "last_view_change_s": 0.0123,
            **fields,
        }

    async def status_of(self, status: dict[str, object]) -> list[str]:
        node = FakeNode()
        node.extra_status = status
        c = console()
        self.assertEqual(await self.run_command(node, ["status"], c), 0)
        return out(c)

    async def test_view(self) -> None:
        """
        After the blocked line come the view (id, members, state), the
        suspects and the view changes with how long the last took; those
        fields are not repeated below.
        """
        lines = await self.status_of(self.membership())
        self.assertEqual(
            lines[:4],
            [
                "blocked: no",
                "view: 2 of a, b, c (normal)",
                "suspects: (none)",
                "view changes: 2, the last took 12 ms",
            ],
        )
        self.assertEqual(lines[4], "me: a")
        rest = "\n".join(lines[4:])
        for key in ["view members", "state", "suspects", "last view change"]:
            self.assertNotIn(f"{key}:", rest)

    async def test_peer_out_of_view(self) -> None:
        """
        A peer left out of the view holds nothing up: that it is not
        connected is no reason to say the node is blocked.  A member of the
        view that is not connected still is.
        """
        peers = {"b": {"connected_out": True}, "c": {"connected_out": False}}
        lines = await self.status_of(
            self.membership(view_members=["a", "b"], peers=peers)
        )
        self.assertEqual(lines[0], "blocked: no")
        lines = await self.status_of(self.membership(peers=peers))
        self.assertEqual(lines[0], "blocked: the node is not connected to c")

    async def test_suspects(self) -> None:
        """
        Each suspect is shown with how long this member has suspected it, or
        as suspected by others.
        """
        lines = await self.status_of(self.membership(suspects={"c": 1.5, "b": None}))
        self.assertIn("suspects: b (by others), c for 1.5 s", lines)

    async def test_removed_first(self) -> None:
        """
        A member that was removed says so first, with why, even when its
        oldest message waits for members too.
        """
        lines = await self.status_of(
            self.membership(
                state="removed",
                removed_because="view 3 was decided without it",
                oldest_undelivered={"age_s": 9.0, "waiting_for": ["b"]},
            )
        )
        self.assertEqual(
            lines[0],
            "blocked: this member is out of the group: view 3 was decided without it;"
            " it delivers nothing more (the others went on without it)",
        )
        self.assertEqual(lines[1], "view: 2 of a, b, c (removed)")

    async def test_stuck_handler_first(self) -> None:
        """
        A delivery handler that cannot keep a record holds up the member
        whatever the group does: it comes first, even before a removal.
        """
        stuck = {
            "handler": "<jsonl c.jsonl>",
            "index": 612,
            "reason": "OSError: [Errno 28] No space left on device",
            "stuck_s": 12.5,
            "attempts": 7,
        }
        lines = await self.status_of(
            self.membership(state="removed", stuck_handlers=[stuck, stuck])
        )
        self.assertEqual(
            lines[0],
            "blocked: delivery handler <jsonl c.jsonl> (and 1 more) cannot keep"
            " record 612 (OSError: [Errno 28] No space left on device) for 12.5 s;"
            " nothing from there is handed out",
        )

    async def test_blocked_without_majority(self) -> None:
        """
        A member without a majority says so first, naming the suspects and
        for how long.
        """
        lines = await self.status_of(
            self.membership(
                view_members=["a", "b", "c", "d", "e"],
                state="blocked",
                suspects={"c": 2.0, "d": 2.0, "e": 1.0},
                oldest_undelivered={"age_s": 2.5, "waiting_for": ["c", "d", "e"]},
            )
        )
        self.assertEqual(
            lines[0],
            "blocked: no majority of view 2 (a, b, c, d, e) is reachable;"
            " suspected: c for 2 s, d for 2 s, e for 1 s; nothing new is"
            " delivered until enough of them are back",
        )

    async def test_flushing(self) -> None:
        """
        A member closing its view says that delivery goes on in the next.
        """
        lines = await self.status_of(
            self.membership(state="flushing", suspects={"c": 0.75})
        )
        self.assertEqual(
            lines[0],
            "blocked: view 2 (a, b, c) is being closed (a view change without c"
            " for 0.75 s); delivery goes on in the next view",
        )
        lines = await self.status_of(self.membership(state="flushing"))
        self.assertEqual(
            lines[0],
            "blocked: view 2 (a, b, c) is being closed (a view change); delivery"
            " goes on in the next view",
        )

    async def test_node_that_does_not_answer(self) -> None:
        """
        A node that takes the connection and answers nothing (a stopped
        process) costs C{--answer-timeout} seconds, one line and status 3.
        """
        silent = ServerFactory.forProtocol(Protocol)
        port = IReactorTCP(reactor).listenTCP(
            0,
            silent,  # type: ignore[arg-type]
            interface="127.0.0.1",
        )
        self.addCleanup(port.stopListening)
        number = port.getHost().port  # type: ignore[attr-defined]
        c = console()
        argv = ["status", "--node", str(number), "--answer-timeout", "0.3"]
        self.assertEqual(await run(reactor, parse(argv), c), EXIT_TIMEOUT)
        self.assertEqual(
            err(c),
            [
                f"isis status: the node at tcp:host=127.0.0.1:port={number} did"
                " not answer within 0.3 s"
            ],
        )

    async def test_cut_before_any_answer(self) -> None:
        """
        A listener that cuts the connection on the first bytes (as a
        member's peer port does with AMP) is named as perhaps a peer port.
        """

        class Cutter(Protocol):
            def dataReceived(self, data: bytes) -> None:
                assert self.transport is not None
                self.transport.loseConnection()

        port = IReactorTCP(reactor).listenTCP(
            0,
            ServerFactory.forProtocol(Cutter),  # type: ignore[arg-type]
            interface="127.0.0.1",
        )
        self.addCleanup(port.stopListening)
        number = port.getHost().port  # type: ignore[attr-defined]
        c = console()
        self.assertEqual(await run(reactor, parse(["-n", str(number), "status"]), c), 1)
        self.assertEqual(
            err(c),
            [
                f"isis status: lost the connection to the node at"
                f" tcp:host=127.0.0.1:port={number} before it answered anything"
                " (is that its peer port?)"
            ],
        )

    async def test_json(self) -> None:
        node = FakeNode()
        c = console()
        self.assertEqual(await self.run_command(node, ["status", "--json"], c), 0)
        assert isinstance(c.stdout, io.StringIO)
        self.assertEqual(json.loads(c.stdout.getvalue()), node.status())
