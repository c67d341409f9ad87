"""
A delivery handler that tallies messages and bytes per sender.

Use it by module path, with no registration::

    PYTHONPATH=examples twistd -n isis ... --handler tally:tally_factory:100

or by name (C{--handler tally:100}) from a C{twisted/plugins/} module that
imports C{tally_factory}.
"""

from __future__ import annotations

from collections import Counter

import attrs
from twisted.logger import Logger
from twisted.plugin import IPlugin
from zope.interface import implementer

from isis_twisted.core.engine import Delivery
from isis_twisted.interfaces import IDeliveryHandler, IDeliveryHandlerFactory


@implementer(IDeliveryHandler)
class TallyHandler:
    """
    Counts messages and payload bytes per sender, and logs the tally every
    C{every} messages and when the member stops.

    @ivar messages: Messages delivered, per sender.
    @ivar volume: Payload bytes delivered, per sender.
    """

    log = Logger()

    def __init__(self, every: int) -> None:
        self.every = every
        self.messages: Counter[str] = Counter()
        self.volume: Counter[str] = Counter()
        self.last_index = 0

    def deliver(self, record: Delivery) -> None:
        """
        Count one message.
        """
        self.messages[record.sender] += 1
        self.volume[record.sender] += len(record.payload)
        self.last_index = record.index
        if record.index % self.every == 0:
            self.report()

    def close(self) -> None:
        """
        Log the final tally.
        """
        self.report()

    def report(self) -> None:
        """
        Log the tally so far.
        """
        self.log.info(
            "after message {index}: {tally}",
            index=self.last_index,
            tally=", ".join(
                f"{sender}: {count} messages, {self.volume[sender]} bytes"
                for sender, count in sorted(self.messages.items())
            ),
        )


@implementer(IPlugin, IDeliveryHandlerFactory)
@attrs.frozen
class TallyFactory:
    """
    Makes L{TallyHandler}s; the argument is how often to log (default 1000).
    """

    name: str = "tally"
    description: str = "Count messages and bytes per sender; log every N messages."

    def build(self, argument: str | None) -> IDeliveryHandler:
        """
        A handler that logs every C{argument} messages.

        @raise ValueError: If the argument is not a positive whole number.
        """
        if not argument:
            return TallyHandler(1000)
        if not argument.isdecimal() or int(argument) < 1:
            raise ValueError(f"tally takes a positive whole number, not {argument!r}")
        return TallyHandler(int(argument))


tally_factory = TallyFactory()
