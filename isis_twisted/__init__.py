"""
isis-twisted: total-order multicast for Twisted.

The public face of the package.  Everything named in C{__all__} can be
imported from here; it is loaded on first use, so that importing one part
(the pure engine, say) does not load the rest::

    from isis_twisted import MulticastNode, IDeliveryHandler, Delivery
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from isis_twisted.api.webapi import api_site
    from isis_twisted.core.checker import CheckResult, check
    from isis_twisted.core.engine import (
        Delivery,
        Engine,
        Frame,
        StreamPosition,
        ViewChange,
    )
    from isis_twisted.core.membership import Membership, NotDeliveringError
    from isis_twisted.core.viewcheck import check_views
    from isis_twisted.core.views import View
    from isis_twisted.interfaces import (
        HistoryGoneError,
        IDeliveryHandler,
        IDeliveryHandlerFactory,
        IDurableHandler,
        IOrderedMulticast,
        IStateHandler,
        IViewHandler,
    )
    from isis_twisted.net.node import (
        BackPressureError,
        DeliveryUnknownError,
        MulticastNode,
        NodeStoppedError,
    )

_WHERE = {
    "BackPressureError": "net.node",
    "CheckResult": "core.checker",
    "Delivery": "core.engine",
    "DeliveryUnknownError": "net.node",
    "Engine": "core.engine",
    "Frame": "core.engine",
    "HistoryGoneError": "interfaces",
    "IDeliveryHandler": "interfaces",
    "IDeliveryHandlerFactory": "interfaces",
    "IDurableHandler": "interfaces",
    "IOrderedMulticast": "interfaces",
    "IStateHandler": "interfaces",
    "IViewHandler": "interfaces",
    "Membership": "core.membership",
    "MulticastNode": "net.node",
    "NodeStoppedError": "net.node",
    "NotDeliveringError": "core.membership",
    "StreamPosition": "core.engine",
    "View": "core.views",
    "ViewChange": "core.engine",
    "check": "core.checker",
    "api_site": "api.webapi",
    "check_views": "core.viewcheck",
}

__all__ = [
    "BackPressureError",
    "CheckResult",
    "Delivery",
    "DeliveryUnknownError",
    "Engine",
    "Frame",
    "HistoryGoneError",
    "IDeliveryHandler",
    "IDeliveryHandlerFactory",
    "IDurableHandler",
    "IOrderedMulticast",
    "IStateHandler",
    "IViewHandler",
    "Membership",
    "MulticastNode",
    "NodeStoppedError",
    "NotDeliveringError",
    "StreamPosition",
    "View",
    "ViewChange",
    "api_site",
    "check",
    "check_views",
]


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'isis_twisted' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"isis_twisted.{module}"), name)
    globals()[name] = value
    return value
