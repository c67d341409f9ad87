"""
Deterministic simulation of a group of engines over a simulated network.

The network keeps every link FIFO and reliable, as the link layer promises,
but interleaves links, delays frames and ends each member's turn at random,
all drawn from one seed, so any schedule can be replayed exactly.  Members
may also crash: what a crashed member had not yet sent is lost, frames in
flight to it are lost, and of the frames in flight from it only a prefix
(perhaps none) arrives.  Users' own tests may import it to drive a group of
L{Engine}s, or a variant of it.

Run one seeded scenario from the command line, and see every node's order::

    python -m isis_twisted.tools.simulation --seed 7 --nodes 3 --messages 9 --show
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import deque
from collections.abc import Callable, Sequence

import attrs

from isis_twisted.core.checker import (
    CheckResult,
    MessageId,
    Multicast,
    check,
    check_uniformity,
)
from isis_twisted.core.engine import Delivery, Engine, Frame, Timestamp

EngineFactory = Callable[[str, Sequence[str]], Engine]
"""
Makes the engine of one member: C{factory(me, members)}.
"""

MEMBER_NAMES = ("a", "b", "c", "d", "e", "f", "g")
"""
The names given to the members of a simulated group, in order.
"""

ONE_MIB = b"\xa5" * (1 << 20)


class Simulation:
    """
    A group of engines joined by simulated FIFO links.

    @ivar engines: Every member's engine, by name.
    @ivar histories: Every member's deliveries, in order.
    @ivar replay: The command line that replays this scenario.
    @ivar multicasts: Every message multicast, in the order it happened.
    @ivar frames: How many frames were put on links (one per peer).
    @ivar crashed: The members that crashed, in the order they did.
    """

    def __init__(
        self,
        members: Sequence[str],
        rng: random.Random,
        engine_factory: EngineFactory = Engine,
        frame_limit: int | None = None,
    ) -> None:
        """
        @param members: The members' names.
        @param rng: Every random choice comes from it.
        @param engine_factory: Makes each member's engine.
        @param frame_limit: Passed to L{Engine.flush} to split large batches.
        """
        self.rng = rng
        self.engines = {m: engine_factory(m, members) for m in members}
        self.histories: dict[str, list[Delivery]] = {m: [] for m in members}
        self.multicasts: list[Multicast] = []
        self.frames = 0
        self.crashed: list[str] = []
        self._frame_limit = frame_limit
        self._links: dict[tuple[str, str], deque[Frame]] = {
            (src, dst): deque() for src in members for dst in members if src != dst
        }

    def multicast(self, member: str, payload: bytes) -> Timestamp:
        """
        Have C{member} multicast C{payload}; it goes out at its turn's end.
        """
        engine = self.engines[member]
        after = engine.delivered
        stamp = engine.multicast(payload)
        self.multicasts.append(Multicast(member, stamp[0], payload, after))
        self._collect(member)
        return stamp

    def end_turn(self, member: str) -> None:
        """
        End C{member}'s turn: put its flushed frames on its outgoing links.
        """
        engine = self.engines[member]
        for frame in engine.flush(self._frame_limit):
            for peer in engine.peers:
                if peer not in self.crashed:
                    self._links[(member, peer)].append(frame)
                    self.frames += 1

    def transmit(self, src: str, dst: str) -> None:
        """
        Hand the oldest frame on the link from C{src} to C{dst} to C{dst}.
        """
        frame = self._links[(src, dst)].popleft()
        self.engines[dst].receive(src, frame)
        self._collect(dst)

    def crash(self, member: str) -> None:
        """
        Crash C{member}: it never acts again, frames in flight to it are
        lost, and of those in flight from it a random prefix still arrives.
        """
        self.crashed.append(member)
        for (src, dst), frames in self._links.items():
            if dst == member:
                frames.clear()
            elif src == member:
                keep = self.rng.randint(0, len(frames))
                while len(frames) > keep:
                    frames.pop()

    def live(self) -> list[str]:
        """
        The members that have not crashed.
        """
        return [m for m in self.engines if m not in self.crashed]

    def _collect(self, member: str) -> None:
        self.histories[member].extend(self.engines[member].take_deliveries())

    def busy_links(self) -> list[tuple[str, str]]:
        """
        The links that hold frames in flight.
        """
        return [link for link, q in self._links.items() if q]

    def turns_due(self) -> list[str]:
        """
        The live members whose next turn's end would send something.
        """
        return [
            m
            for m, e in self.engines.items()
            if (e.unsent or e.ack_due) and m not in self.crashed
        ]

    def run(
        self, plan: Sequence[tuple[str, bytes]], max_burst: int = 4, crashes: int = 0
    ) -> None:
        """
        Play a workload under a random schedule, then drain the network.

        Each step is one of: a member multicasts its next one to
        C{max_burst} messages from C{plan} (in plan order for that member),
        a member's turn ends, one frame in flight arrives, or (while
        C{crashes} remain) a member crashes.  The weights of the steps are
        drawn once per run, so runs range from bursty senders over a slow
        network to a fast network that acknowledges everything.

        @param plan: C{(member, payload)} pairs; a crashed member's share of
            it is never sent.
        @param max_burst: The most messages multicast in one step.
        @param crashes: How many members crash during the run (at random
            steps, at most all but one).
        """
        rng = self.rng
        queues: dict[str, deque[bytes]] = {m: deque() for m in self.engines}
        for member, payload in plan:
            queues[member].append(payload)
        weights = [rng.uniform(0.1, 1.0) for _ in range(3)]
        weights.append(rng.uniform(0.001, 0.02))
        crashes = min(crashes, len(self.engines) - 1)
        while True:
            senders = [m for m, q in queues.items() if q and m not in self.crashed]
            due = self.turns_due()
            links = self.busy_links()
            choices = []
            if senders:
                choices.append(0)
            if due:
                choices.append(1)
            if links:
                choices.append(2)
            if not choices:
                return
            if len(self.crashed) < crashes:
                choices.append(3)
            action = rng.choices(choices, [weights[c] for c in choices])[0]
            if action == 0:
                member = rng.choice(senders)
                for _ in range(rng.randint(1, max_burst)):
                    if queues[member]:
                        self.multicast(member, queues[member].popleft())
            elif action == 1:
                self.end_turn(rng.choice(due))
            elif action == 2:
                self.transmit(*rng.choice(links))
            else:
                self.crash(rng.choice(self.live()))

    def check(self) -> CheckResult:
        """
        Check every member's history, knowing everything that was multicast.

        Once a member crashed, the group waits for it for ever (it cannot
        yet move on without it), so agreement and validity are not expected
        of what was delivered; instead every crashed member's history must
        be a prefix of every survivor's deliveries and held messages
        (uniformity), and the other guarantees hold as ever.
        """
        result = check(self.histories, self.multicasts)
        if not self.crashed:
            return result
        kept = tuple(
            v for v in result.violations if v.guarantee not in ("agreement", "validity")
        )
        survivors: dict[str, list[MessageId]] = {}
        for member in self.live():
            engine = self.engines[member]
            survivors[member] = [(d.sender, d.clock) for d in self.histories[member]]
            survivors[member].extend((m.sender, m.clock) for m in engine.undelivered())
        crashed = {m: self.histories[m] for m in self.crashed}
        return attrs.evolve(
            result, violations=kept + check_uniformity(crashed, survivors)
        )

    def stuck(self) -> dict[str, int]:
        """
        The live members that still hold undelivered messages, with how many.
        """
        return {
            m: e.queue_length
            for m, e in self.engines.items()
            if e.queue_length and m not in self.crashed
        }


@attrs.frozen
class Outcome:
    """
    The result of one seeded scenario.

    @ivar seed: The seed that reproduces it.
    @ivar members: The members' names.
    @ivar sent: How many messages were multicast.
    @ivar frames: How many frames crossed links.
    @ivar result: The checker's verdict over every member's history.
    @ivar stuck: Members still holding messages after the network drained.
    @ivar histories: Every member's deliveries, in order.
    @ivar replay: The command line that replays this scenario.
    @ivar crashed: The members that crashed, in order.
    """

    seed: int
    members: tuple[str, ...]
    sent: int
    frames: int
    result: CheckResult
    stuck: dict[str, int]
    histories: dict[str, list[Delivery]] = attrs.field(repr=False)
    replay: str = ""
    crashed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """
        Whether every guarantee held and, unless a member crashed (the group
        then waits for it), every message was delivered.
        """
        return self.result.ok and (bool(self.crashed) or not self.stuck)

    def describe(self) -> str:
        """
        What went wrong, with the command that replays it.
        """
        crashed = f", crashed: {', '.join(self.crashed)}" if self.crashed else ""
        lines = [
            f"seed {self.seed}: {len(self.members)} members, {self.sent} multicasts,"
            f" {self.frames} frames{crashed}",
            self.result.summary(),
        ]
        if self.stuck:
            lines.append(f"undelivered after the network drained: {self.stuck}")
        lines.append(f"replay: {self.replay}")
        return "\n".join(lines)


def random_plan(
    rng: random.Random, members: Sequence[str], messages: int
) -> list[tuple[str, bytes]]:
    """
    A random workload: who multicasts what, in which order.

    Some members may stay silent; payloads are mostly short and distinct,
    sometimes empty, and rarely 1 MiB.
    """
    talkers = [m for m in members if rng.random() < 0.8] or [members[0]]
    plan = []
    for i in range(messages):
        member = rng.choice(talkers)
        roll = rng.random()
        if roll < 0.05:
            payload = b""
        elif roll < 0.06:
            payload = ONE_MIB
        else:
            payload = f"{member}-{i}".encode() + b"." * rng.randrange(40)
        plan.append((member, payload))
    return plan


def run_seed(
    seed: int,
    engine_factory: EngineFactory = Engine,
    nodes: int | None = None,
    messages: int | None = None,
    crashes: int = 0,
) -> Outcome:
    """
    Run the scenario that C{seed} describes and check it.

    @param seed: Chooses everything: group size (1 to 7, unless C{nodes} is
        given), workload, batching and the schedule.
    @param engine_factory: Makes each member's engine.
    @param nodes: Overrides the group size.
    @param messages: Overrides the number of multicasts.
    @param crashes: How many members crash during the run.
    """
    rng = random.Random(seed)
    n = nodes if nodes is not None else 1 + seed % 7
    count = messages if messages is not None else rng.randrange(0, 41)
    members = MEMBER_NAMES[:n]
    frame_limit = rng.choice([None, None, 64, 1024])
    sim = Simulation(members, rng, engine_factory, frame_limit)
    sim.run(
        random_plan(rng, members, count),
        max_burst=rng.choice([1, 2, 8]),
        crashes=crashes,
    )
    return Outcome(
        seed=seed,
        members=tuple(members),
        sent=len(sim.multicasts),
        frames=sim.frames,
        result=sim.check(),
        stuck=sim.stuck(),
        histories=sim.histories,
        replay=" ".join(
            ["python -m isis_twisted.tools.simulation", f"--seed {seed}"]
            + ([f"--nodes {nodes}"] if nodes is not None else [])
            + ([f"--messages {messages}"] if messages is not None else [])
            + ([f"--crashes {crashes}"] if crashes else [])
        ),
        crashed=tuple(sim.crashed),
    )


def _show(histories: dict[str, list[Delivery]]) -> str:
    def cell(d: Delivery) -> str:
        text = d.payload[:8].decode("ascii", "replace").rstrip(".")
        return f"{d.sender}@{d.clock} {text}"

    names = sorted(histories)
    rows = max((len(h) for h in histories.values()), default=0)
    width = max([12] + [len(cell(d)) for h in histories.values() for d in h])
    lines = ["  #  " + "".join(n.ljust(width + 2) for n in names)]
    for i in range(rows):
        cells = [cell(histories[n][i]) if i < len(histories[n]) else "-" for n in names]
        lines.append(f"{i + 1:3}  " + "".join(c.ljust(width + 2) for c in cells))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run one seeded scenario, print the verdict (and with C{--show} every
    node's delivery order side by side); exit 1 if a guarantee broke.
    """
    parser = argparse.ArgumentParser(
        prog="python -m isis_twisted.tools.simulation",
        description="Run one seeded, replayable simulation of a group of engines.",
    )
    parser.add_argument("--seed", type=int, default=1, help="scenario seed")
    parser.add_argument("--nodes", type=int, choices=range(1, 8), help="group size")
    parser.add_argument("--messages", type=int, help="number of multicasts")
    parser.add_argument(
        "--crashes", type=int, default=0, help="members that crash during the run"
    )
    parser.add_argument(
        "--show", action="store_true", help="print every node's delivery order"
    )
    args = parser.parse_args(argv)
    if args.messages is not None and args.messages < 0:
        parser.error("--messages must not be negative")
    if args.crashes < 0:
        parser.error("--crashes must not be negative")
    outcome = run_seed(
        args.seed, nodes=args.nodes, messages=args.messages, crashes=args.crashes
    )
    if args.show:
        print(_show(outcome.histories))
    print(outcome.describe())
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
