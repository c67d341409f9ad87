"""
Built-in delivery handlers, and finding a handler from an operator's
specification.

An operator names the handlers a member feeds with C{--handler SPEC}, where
C{SPEC} is one of::

    NAME                              a built-in or plugin handler
    NAME:ARGUMENT                     the same, given an argument
    module:factory                    a handler factory found by import
    module:factory:ARGUMENT           the same, given an argument

The built-in names are C{log} (L{LogHandler}) and C{jsonl}
(L{JsonLinesHandler}).  Other packages add names by installing a provider of
L{IDeliveryHandlerFactory} and L{twisted.plugin.IPlugin} in a
C{twisted/plugins/} module.  L{build_handler} turns a specification into a
handler and L{available_handlers} lists the names it knows.
"""

from __future__ import annotations

import codecs
import importlib
import importlib.util
import os
import types
from collections.abc import Callable, Iterator
from typing import IO, ClassVar

import attrs
from twisted.logger import Logger
from twisted.plugin import IPlugin, getPlugins
from zope.interface import implementer

from isis_twisted.checker import record_to_json
from isis_twisted.engine import Delivery, Record, ViewChange
from isis_twisted.interfaces import (
    IDeliveryHandler,
    IDeliveryHandlerFactory,
    IViewHandler,
)

PREVIEW_BYTES = 40
"""
How many leading bytes of a payload L{LogHandler} shows.
"""


class HandlerSpecError(ValueError):
    """
    A handler specification cannot be turned into a handler.

    The message is one plain sentence that names the specification and says
    what is wrong with it; it is meant to be shown to the operator as it is,
    without a traceback.
    """


def _preview(payload: bytes) -> str:
    """
    A short, printable rendering of the start of C{payload}.

    @param payload: The bytes to show.
    @return: At most L{PREVIEW_BYTES} bytes of C{payload} decoded as UTF-8,
        with undecodable bytes and unprintable characters escaped, and
        C{"..."} appended when the payload is longer.
    """
    head = payload[:PREVIEW_BYTES]
    # An incremental decoder holds back a character cut in half by the
    # slice instead of escaping its first bytes as if they were garbage.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="backslashreplace")
    text = decoder.decode(head, final=len(head) == len(payload))
    shown = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
        for c in text
    )
    return shown + "..." if len(payload) > len(head) else shown


@implementer(IViewHandler)
class LogHandler:
    """
    A delivery handler that logs one line per delivered message, and one
    per view change.

    Each delivery is emitted at level C{info} with the fields C{index},
    C{sender} and C{clock} (as in L{Delivery}), C{size} (the payload's length
    in bytes) and C{preview} (a short printable rendering of the payload's
    start).  Each view change is emitted at level C{info} too, with the
    fields C{view}, C{members} (a tuple of names) and C{index} (as in
    L{ViewChange}), where it falls among the deliveries.

    @ivar log: The logger the events go to.
    """

    def __init__(self, logger: Logger | None = None) -> None:
        """
        @param logger: Where to log; by default a L{Logger} in the namespace
            C{isis_twisted.handlers.LogHandler} that emits to the global log
            publisher.
        """
        self.log = (
            logger
            if logger is not None
            else Logger(namespace=f"{__name__}.{type(self).__name__}", source=self)
        )

    def deliver(self, record: Delivery) -> None:
        """
        Log one delivered message.

        @param record: The message.
        """
        self.log.info(
            "delivered #{index} from {sender} at clock {clock}: {size} bytes {preview}",
            index=record.index,
            sender=record.sender,
            clock=record.clock,
            size=len(record.payload),
            preview=_preview(record.payload),
        )

    def view_changed(self, change: ViewChange) -> None:
        """
        Log one view change.

        @param change: The view installed.
        """
        self.log.info(
            "view {view}: {shown} (from #{index})",
            view=change.view,
            members=change.members,
            shown=", ".join(change.members),
            index=change.index,
        )

    def close(self) -> None:
        """
        Do nothing: a log handler holds nothing of its own.
        """


@implementer(IViewHandler)
class JsonLinesHandler:
    """
    A delivery handler that appends every delivered message, and every view
    change, to a file as one line of JSON, the format
    L{isis_twisted.checker.load_records} reads.

    Each line is exactly C{record_to_json(record) + "\\n"}, for example
    C{{"index": 1, "sender": "a", "clock": 7, "payload": "text"}}, with
    C{payload_b64} in place of C{payload} when the payload is not UTF-8 and an
    C{after} field when the record has one.  A view change is a line of its
    own where it falls among the deliveries, with no C{sender} key (which
    is how a reader tells it apart): C{{"view": 1, "members": ["a", "b"],
    "index": 81}}, C{index} being that of the view's first delivery.  The
    file is flushed after every
    line, so that the history checker can read it while the member runs
    (flushed to the operating system, not synced to disk).

    The file is opened for appending: an existing log is kept and extended,
    and missing parent directories are not created.

    @ivar path: The file written to.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """
        Open the file.

        @param path: The file to append to; created if missing.
        @raise ValueError: If the file cannot be opened for appending; the
            message names the path and the operating system's reason.
        """
        self.path = os.fspath(path)
        try:
            # newline="" writes "\n" as it is on every platform.
            self._file: IO[str] | None = open(  # noqa: SIM115
                self.path, "a", encoding="utf-8", newline=""
            )
        except OSError as e:
            reason = e.strerror or str(e)
            raise ValueError(f"cannot open {self.path} for appending: {reason}") from e

    def deliver(self, record: Delivery) -> None:
        """
        Append one delivered message to the file and flush it.

        @param record: The message.
        @raise RuntimeError: If the handler has been closed; nothing is
            written then.
        @raise OSError: If writing fails (a full disk, for example).
        """
        self._write(record, f"delivery #{record.index}")

    def view_changed(self, change: ViewChange) -> None:
        """
        Append one view change to the file and flush it.

        @param change: The view installed.
        @raise RuntimeError: If the handler has been closed; nothing is
            written then.
        @raise OSError: If writing fails (a full disk, for example).
        """
        self._write(change, f"view {change.view}")

    def _write(self, record: Record, what: str) -> None:
        if self._file is None:
            raise RuntimeError(
                f"JSON-lines handler for {self.path} is closed; {what} was not written"
            )
        self._file.write(record_to_json(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        """
        Close the file.  Closing again does nothing; delivering afterwards
        raises L{RuntimeError}.
        """
        if self._file is not None:
            f, self._file = self._file, None
            f.close()


@implementer(IPlugin, IDeliveryHandlerFactory)
@attrs.frozen
class LogHandlerFactory:
    """
    The C{log} handler: L{LogHandler}.  It takes no argument.
    """

    name: ClassVar[str] = "log"
    description: ClassVar[str] = "Log one line per delivered message and view change."

    def build(self, argument: str | None) -> IDeliveryHandler:
        """
        Make a L{LogHandler}.

        @param argument: Must be L{None} or empty.
        @raise ValueError: If an argument is given.
        """
        if argument:
            raise ValueError(f"the log handler takes no argument, got {argument!r}")
        return LogHandler()


@implementer(IPlugin, IDeliveryHandlerFactory)
@attrs.frozen
class JsonLinesHandlerFactory:
    """
    The C{jsonl:PATH} handler: L{JsonLinesHandler} appending to C{PATH}.
    """

    name: ClassVar[str] = "jsonl"
    description: ClassVar[str] = (
        "jsonl:PATH - append one JSON line per delivered message and view"
        " change to PATH (the history checker's format)."
    )

    def build(self, argument: str | None) -> IDeliveryHandler:
        """
        Make a L{JsonLinesHandler}.

        @param argument: The path of the file to append to.
        @raise ValueError: If the path is missing or the file cannot be
            opened.
        """
        if not argument:
            raise ValueError("the jsonl handler needs a file: jsonl:PATH")
        return JsonLinesHandler(argument)


BUILTIN_FACTORIES: tuple[IDeliveryHandlerFactory, ...] = (
    LogHandlerFactory(),
    JsonLinesHandlerFactory(),
)
"""
The built-in handler factories, in the order L{available_handlers} lists
them.  Their names take precedence over plugins'.
"""


def _factories(
    package: types.ModuleType | None,
) -> Iterator[IDeliveryHandlerFactory]:
    """
    Every usable handler factory, built-ins first, each name once.

    @param package: The plugin package to search, or L{None} for
        C{twisted.plugins}.
    @return: The built-in factories, then the plugins sorted by name.  A
        plugin whose name is taken by a built-in or by an earlier plugin, or
        whose name is not a non-empty string, is left out.
    """
    seen: set[str] = set()
    for factory in BUILTIN_FACTORIES:
        seen.add(factory.name)
        yield factory
    plugins: dict[str, IDeliveryHandlerFactory] = {}
    for plugin in getPlugins(IDeliveryHandlerFactory, package):
        name = plugin.name
        if isinstance(name, str) and name and name not in seen:
            plugins.setdefault(name, plugin)
    for name in sorted(plugins):
        yield plugins[name]


def available_handlers(package: types.ModuleType | None = None) -> dict[str, str]:
    """
    The handler names an operator may give, for C{--help} output.

    @param package: The plugin package to search, or L{None} for
        C{twisted.plugins}.
    @return: Each name mapped to its description: the built-ins first, then
        the plugins sorted by name.
    """
    return {f.name: str(f.description) for f in _factories(package)}


def build_handler(
    spec: str, package: types.ModuleType | None = None
) -> IDeliveryHandler:
    """
    Make the delivery handler an operator asked for.

    C{spec} is C{NAME} or C{NAME:ARGUMENT}, where C{NAME} is a built-in or
    plugin handler's name (see L{available_handlers}); or
    C{module:factory}, optionally followed by C{:ARGUMENT}, where the part
    before the first colon is not a known name and either contains a dot or
    names an importable top-level module.  In
    the second form, C{factory} (a possibly dotted attribute of the module) is
    either an L{IDeliveryHandlerFactory} provider, whose C{build} is called,
    or a callable that takes the argument (C{str} or L{None}) and returns an
    L{IDeliveryHandler} provider.

    @param spec: The specification.
    @param package: The plugin package to search, or L{None} for
        C{twisted.plugins}.
    @return: A new handler.
    @raise HandlerSpecError: If the name is unknown, the module is not on
        the path or raises while it is imported, the attribute is missing or
        unusable (a factory class rather than an instance, a class whose
        constructor does not take the argument), the factory raises, or what
        it returns does not provide L{IDeliveryHandler}.  The message is one
        plain sentence naming C{spec}, never a traceback.
    """
    head, colon, rest = spec.partition(":")
    argument = rest if colon else None
    # Built-ins are looked up before the plugins are loaded, so that a broken
    # third-party plugin cannot get in the way of a built-in handler.
    for builtin in BUILTIN_FACTORIES:
        if builtin.name == head:
            return _call(spec, builtin.build, argument)
    known = {f.name: f for f in _factories(package)}
    factory = known.get(head)
    if factory is not None:
        return _call(spec, factory.build, argument)
    attribute_name = rest.partition(":")[0]
    if "." in head or (
        attribute_name.replace(".", "_").isidentifier() and _module_exists(head)
    ):
        attribute, colon, rest = rest.partition(":")
        return _call(spec, _import(spec, head, attribute), rest if colon else None)
    if not head:
        raise HandlerSpecError(f"Handler {spec!r} has no name.")
    if colon and head.isidentifier() and attribute_name.isidentifier():
        # It reads as module:factory, so the likelier mistake is a module
        # that is not on the path than a misspelt handler name.
        raise HandlerSpecError(
            f"Unknown handler {spec!r}: {head!r} is neither a known handler"
            f" ({', '.join(sorted(known))}) nor a module on the Python path;"
            " if it is module:factory, add the module's directory to PYTHONPATH."
        )
    raise HandlerSpecError(
        f"Unknown handler {spec!r}: the known handlers are"
        f" {', '.join(sorted(known))}, or give module:factory."
    )


def _module_exists(name: str) -> bool:
    """
    Whether a top-level module of that name can be imported.
    """
    if not name.isidentifier():
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _import(
    spec: str, module_name: str, attribute: str
) -> Callable[[str | None], object]:
    """
    Find the factory a module-path specification names.

    @param spec: The whole specification, for messages.
    @param module_name: The module to import.
    @param attribute: The factory's (possibly dotted) name in the module.
    @return: A callable taking the argument: the factory's C{build} if it
        provides L{IDeliveryHandlerFactory}, else the factory itself.
    @raise HandlerSpecError: If the module cannot be imported or the
        attribute is missing or neither a factory nor callable.
    """
    if not attribute:
        raise HandlerSpecError(
            f"Handler {spec!r} names no factory: use module:factory."
        )
    try:
        found: object = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and (
            module_name == e.name or module_name.startswith(e.name + ".")
        ):
            raise HandlerSpecError(
                f"Handler {spec!r}: cannot import module {module_name!r}: there is"
                f" no module {e.name!r} on the Python path; add its directory to"
                " PYTHONPATH."
            ) from e
        raise HandlerSpecError(
            f"Handler {spec!r}: cannot import module {module_name!r}: importing"
            f" it raised {_describe(e)}."
        ) from e
    except Exception as e:
        # The module exists but its own code failed: say so, with the
        # module's message, rather than print the traceback.
        raise HandlerSpecError(
            f"Handler {spec!r}: cannot import module {module_name!r}: importing"
            f" it raised {_describe(e)}."
        ) from e
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError as e:
            raise HandlerSpecError(
                f"Handler {spec!r}: module {module_name!r} has no {attribute!r}."
            ) from e
    if IDeliveryHandlerFactory.providedBy(found):
        build: Callable[[str | None], object] = IDeliveryHandlerFactory(found).build
        return build
    if isinstance(found, type) and IDeliveryHandlerFactory.implementedBy(found):
        raise HandlerSpecError(
            f"Handler {spec!r}: {module_name}:{attribute} is a handler factory"
            f" class, not a factory; name an instance of it instead (in the"
            f" module: factory = {found.__name__}())."
        )
    if callable(found):
        return found
    raise HandlerSpecError(
        f"Handler {spec!r}: {module_name}:{attribute} is neither callable nor a"
        " handler factory."
    )


def _call(
    spec: str, factory: Callable[[str | None], object], argument: str | None
) -> IDeliveryHandler:
    """
    Call a factory and check that it made a handler.

    @param spec: The whole specification, for messages.
    @param factory: What makes the handler.
    @param argument: The argument for C{factory}.
    @return: The handler.
    @raise HandlerSpecError: If C{factory} raises or returns something that
        does not provide L{IDeliveryHandler}.
    """
    try:
        handler = factory(argument)
    except ValueError as e:
        reason = _first_line(e) or type(e).__name__
        raise HandlerSpecError(f"Handler {spec!r}: {reason}.") from e
    except TypeError as e:
        if isinstance(factory, type):
            # A class given where a factory was expected: its constructor
            # does not take the one argument every factory is called with.
            raise HandlerSpecError(
                f"Handler {spec!r}: {factory.__name__} is a class whose"
                f" constructor cannot be called with the handler's argument"
                f" ({_first_line(e)}); give a factory: a function that takes"
                " the argument (a string or None) and returns a handler."
            ) from e
        raise HandlerSpecError(
            f"Handler {spec!r}: its factory raised {_describe(e)}."
        ) from e
    except Exception as e:
        raise HandlerSpecError(
            f"Handler {spec!r}: its factory raised {_describe(e)}."
        ) from e
    if not IDeliveryHandler.providedBy(handler):
        raise HandlerSpecError(
            f"Handler {spec!r} made {_short_repr(handler)}, which is not a"
            " delivery handler: it does not provide IDeliveryHandler (declare"
            " it with @implementer(IDeliveryHandler) on its class)."
        )
    return IDeliveryHandler(handler)


def _first_line(error: BaseException) -> str:
    """
    The first line of an exception's message, without a closing full stop,
    so that it can sit inside one sentence.
    """
    lines = str(error).strip().splitlines()
    return lines[0].rstrip(". ") if lines else ""


def _describe(error: BaseException) -> str:
    """
    An exception as a phrase: its type and, if it has one, its message
    (C{"RuntimeError: no database"}).
    """
    message = _first_line(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _short_repr(thing: object) -> str:
    """
    C{repr(thing)}, cut to one short line for a message.
    """
    shown = " ".join(repr(thing).split())
    return shown if len(shown) <= 80 else shown[:77] + "..."
