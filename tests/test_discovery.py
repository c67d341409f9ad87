"""
Tests for L{isis_twisted.net.discovery}: a member that joins asks who listens
at an address, on real loopback connections to real nodes.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import Deferred

from isis_twisted.net.discovery import Discovery, Found, NoAnswerError, ask
from isis_twisted.tools.testing import free_ports, wait_until
from tests.test_node import GroupTestCase, LogCapture, deferred


class AskTests(GroupTestCase):
    def test_member_answers(self) -> Deferred[None]:
        """
        A member answers with its name, view, the founding list and where
        the members of its view that it knows of listen.
        """

        async def run() -> None:
            group = await self.group("abc")
            found = await ask(reactor, group.address("b"), "isis", 5.0)
            self.assertEqual(found.address, group.address("b"))
            self.assertEqual(found.here.member, "b")
            self.assertEqual(found.here.view, 0)
            self.assertEqual(found.here.members, ("a", "b", "c"))
            # Not its own: started without an address to give, it knows
            # only where its peers listen (the asker knows where it dialled).
            self.assertEqual(
                dict(found.here.addresses), {n: group.address(n) for n in "ac"}
            )
            # The answering member counts nothing against the asker.
            self.assertEqual(group.nodes["b"].rejections, 0)

        return deferred(run())

    def test_another_group_refuses(self) -> Deferred[None]:
        async def run() -> None:
            group = await self.group("ab")
            with self.assertRaises(NoAnswerError) as caught:
                await ask(reactor, group.address("a"), "other", 5.0)
            self.assertEqual(caught.exception.code, 1)
            self.assertIn("not this node's group", str(caught.exception))

        return deferred(run())

    def test_nobody_listens(self) -> Deferred[None]:
        async def run() -> None:
            (port,) = free_ports(1)
            with self.assertRaises(NoAnswerError) as caught:
                await ask(reactor, f"tcp:host=127.0.0.1:port={port}", "isis", 5.0)
            self.assertIn("cannot connect", str(caught.exception))

        return deferred(run())


class DiscoveryTests(GroupTestCase):
    def test_every_address_of_another_group(self) -> Deferred[None]:
        """
        Refused by every address for its group: one sentence, no retry.
        """

        async def run() -> None:
            group = await self.group("ab")
            fatal: list[str] = []
            found: list[Found] = []
            discovery = Discovery(
                reactor,
                "d",
                "other",
                [group.address("a"), group.address("b")],
                found.append,
                fatal.append,
            )
            discovery.start()
            self.addCleanup(discovery.stop)
            await wait_until(reactor, lambda: bool(fatal), 10.0, "giving up")
            self.assertEqual(found, [])
            self.assertEqual(discovery.attempts, 1)
            self.assertIn("member 'd' cannot join group 'other'", fatal[0])
            self.assertIn("--group", fatal[0])

        return deferred(run())

    def test_goes_on_asking_and_says_so_once(self) -> Deferred[None]:
        """
        While nobody answers it asks again, backing off, and warns once;
        the first member to answer is taken.
        """

        async def run() -> None:
            logs = LogCapture(self)
            (port,) = free_ports(1)
            group = await self.group("ab")
            found: list[Found] = []
            discovery = Discovery(
                reactor,
                "d",
                "isis",
                [f"tcp:host=127.0.0.1:port={port}"],
                found.append,
                self.fail,
                max_delay=0.2,
            )
            discovery.start()
            self.addCleanup(discovery.stop)
            await wait_until(reactor, lambda: discovery.attempts >= 4, 10.0, "retries")
            self.assertEqual(len(logs.matching("found no member", "goes on")), 1)
            discovery.addresses.append(group.address("b"))
            await wait_until(reactor, lambda: bool(found), 10.0, "an answer")
            self.assertEqual(found[0].here.member, "b")

        return deferred(run())
