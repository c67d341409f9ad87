"""
Tests for L{isis_twisted.app.forcing}: C{isis force-view}.
"""

from __future__ import annotations

from twisted.python import usage

from isis_twisted.app.cli import parse
from isis_twisted.core.membership import CannotForceError
from tests.test_cli import NodeCommandTests, console, err, out
from tests.test_client import FakeNode


class ForcingNode(FakeNode):
    """
    A L{FakeNode} that can be asked to force a view change, and refuses
    when told to.
    """

    def __init__(self) -> None:
        super().__init__()
        self.forced: list[list[str] | None] = []
        self.refuse: str | None = None

    def force_view(self, without: list[str] | None) -> tuple[str, ...]:
        if self.refuse is not None:
            raise CannotForceError(self.refuse)
        self.forced.append(without)
        return ("a",)


class ForceViewTests(NodeCommandTests):
    """
    C{isis force-view}.
    """

    async def test_needs_confirmation(self) -> None:
        """
        Without C{--yes-i-know} it prints the warning, does nothing and
        exits 4.
        """
        node = ForcingNode()
        c = console()
        self.assertEqual(await self.run_command(node, ["force-view"], c), 4)
        self.assertEqual(node.forced, [])
        self.assertEqual(len(err(c)), 2)
        self.assertIn("two groups", err(c)[0])
        self.assertIn("--yes-i-know", err(c)[1])

    async def test_forces(self) -> None:
        node = ForcingNode()
        c = console()
        argv = ["force-view", "--yes-i-know", "--without", "b, c"]
        self.assertEqual(await self.run_command(node, argv, c), 0)
        self.assertEqual(node.forced, [["b", "c"]])
        self.assertEqual(out(c)[0].split(";")[0], "proposed a view of a")
        c = console()
        self.assertEqual(
            await self.run_command(node, ["force-view", "--yes-i-know"], c), 0
        )
        self.assertEqual(node.forced[-1], None)

    async def test_refused(self) -> None:
        """
        The node's refusal is one line, and a usage exit status.
        """
        node = ForcingNode()
        node.refuse = "member 'a' is normal, not blocked: a view change needs no force"
        c = console()
        argv = ["force-view", "--yes-i-know"]
        self.assertEqual(await self.run_command(node, argv, c), 2)
        self.assertEqual(err(c)[-1], f"isis force-view: {node.refuse}")

    async def test_node_without_views(self) -> None:
        c = console()
        argv = ["force-view", "--yes-i-know"]
        self.assertEqual(await self.run_command(FakeNode(), argv, c), 2)
        self.assertEqual(err(c)[-1], "isis force-view: this node has no views to force")

    def test_empty_without(self) -> None:
        with self.assertRaises(usage.UsageError) as caught:
            parse(["force-view", "--without", " , "])
        self.assertIn("at least one member", str(caught.exception))
