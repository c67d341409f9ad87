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
import contextlib
import importlib
import importlib.util
import json
import os
import types
from collections.abc import Callable, Iterator
from typing import ClassVar

import attrs
from twisted.logger import Logger
from twisted.plugin import IPlugin, getPlugins
from zope.interface import implementer

from isis_twisted.core.checker import _record_from_json, _view_from_json, record_to_json
from isis_twisted.core.engine import Delivery, Record, StreamPosition, ViewChange
from isis_twisted.interfaces import (
    IDeliveryHandler,
    IDeliveryHandlerFactory,
    IDurableHandler,
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
            C{isis_twisted.app.handlers.LogHandler} that emits to the global log
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


@implementer(IDurableHandler)
class JsonLinesHandler:
    """
    A durable delivery handler that appends every delivered message, and
    every view change, to a file as one line of JSON, the format
    L{isis_twisted.core.checker.load_records} reads.

    Each line is exactly C{record_to_json(record) + "\\n"}, for example
    C{{"index": 1, "sender": "a", "clock": 7, "payload": "text"}}, with
    C{payload_b64} in place of C{payload} when the payload is not UTF-8 and an
    C{after} field when the record has one.  A view change is a line of its
    own where it falls among the deliveries, with no C{sender} key (which
    is how a reader tells it apart): C{{"view": 1, "members": ["a", "b"],
    "index": 81}}, C{index} being that of the view's first delivery.  Each
    line goes to the operating system as it is written, so that the history
    checker can read the file while the member runs (it is not synced to
    disk).

    An existing file is kept and extended.  Opening it reads it from the end
    (so a file of millions of lines opens in milliseconds): a torn last line
    (the member died while writing it, or the disk filled) is cut off and
    logged once, and L{position} says where the file stopped.  A file that
    is not a log of this format is refused rather than appended to.  A
    write that fails (L{OSError}: a full disk) leaves the file as it was
    before that record and the position unchanged, so the same record can
    be given again.  The handler must be the file's only writer.

    @ivar path: The file written to.
    """

    def __init__(
        self, path: str | os.PathLike[str], logger: Logger | None = None
    ) -> None:
        """
        Open the file, repair a torn last line, and read where it stopped.

        @param path: The file to append to; created if missing (its parent
            directory is not).
        @param logger: Where to say that a torn line was cut; by default a
            L{Logger} in the namespace C{isis_twisted.app.handlers.JsonLinesHandler}.
        @raise ValueError: If the file cannot be opened for appending, or it
            holds something other than delivery records; the message is one
            sentence naming the path and the reason.
        """
        self.path = os.fspath(path)
        self._log = (
            logger
            if logger is not None
            else Logger(namespace=f"{__name__}.{type(self).__name__}", source=self)
        )
        try:
            fd = os.open(
                self.path,
                os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0),
                0o666,
            )
        except OSError as e:
            reason = e.strerror or str(e)
            raise ValueError(f"cannot open {self.path} for appending: {reason}") from e
        try:
            self._size, self._last, self._view = self._recover(fd)
        except Exception as e:
            os.close(fd)
            if isinstance(e, OSError):
                reason = e.strerror or str(e)
                raise ValueError(f"cannot read {self.path}: {reason}") from e
            raise
        self._position: StreamPosition | None = None
        self._fd: int | None = fd
        # Set when a failed write could not be cut back: the next write (or
        # close) cuts the file to _size before anything else.
        self._dirty = False

    def _recover(self, fd: int) -> tuple[int, Delivery | None, int]:
        """
        Cut a torn last line off the file and find where it stopped.

        @param fd: The open file.
        @return: The file's length once repaired, its last delivery (or
            L{None}) and its last view id (or 0).
        @raise ValueError: If the file is not a log of delivery records.
        """
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, None, 0
        end, dropped = _repair(self.path, fd, size)
        delivery: Record | None = None
        view: Record | None = None
        if end > 0:
            # Every line this handler writes starts with one of these two,
            # so a backwards search for them finds the records without
            # parsing the lines in between.
            delivery = _last_record(self.path, fd, end, _DELIVERY_START)
            view = _last_record(self.path, fd, end, _VIEW_START)
            if delivery is None and view is None:
                raise ValueError(
                    f"{self.path} is not a delivery log written by the jsonl"
                    " handler (it holds no delivery or view record); give"
                    " another file"
                )
            _check_first_line(self.path, fd, end)
        # Only once the file is known to be one of ours: a file that is
        # refused is left exactly as it was.
        if dropped:
            os.ftruncate(fd, end)
            self._log.warn(
                "{path} ended in a torn line ({dropped} bytes without a whole"
                " record); cut it off, the file now ends at byte {end}",
                path=self.path,
                dropped=dropped,
                end=end,
            )
        return (
            end,
            delivery if isinstance(delivery, Delivery) else None,
            view.view if isinstance(view, ViewChange) else 0,
        )

    def position(self) -> StreamPosition:
        """
        Where the file stopped: its last delivery (index, sender and clock)
        and its last view change, as read when it was opened and advanced by
        every record written since.

        @return: The position.
        """
        position = self._position
        if position is None:
            # Made when asked for, not per record written: most records are
            # written with nobody asking.
            last = self._last
            position = self._position = StreamPosition(
                last.index if last is not None else 0,
                self._view,
                (last.sender, last.clock) if last is not None else None,
            )
        return position

    def deliver(self, record: Delivery) -> None:
        """
        Append one delivered message to the file.

        @param record: The message.
        @raise RuntimeError: If the handler has been closed; nothing is
            written then.
        @raise OSError: If writing fails (a full disk, for example); the file
            and the position are as they were before.
        """
        self._write(record)
        self._last = record
        self._position = None

    def view_changed(self, change: ViewChange) -> None:
        """
        Append one view change to the file.

        @param change: The view installed.
        @raise RuntimeError: If the handler has been closed; nothing is
            written then.
        @raise OSError: If writing fails (a full disk, for example); the file
            and the position are as they were before.
        """
        self._write(change)
        self._view = change.view
        self._position = None

    def _write(self, record: Record) -> None:
        fd = self._fd
        if fd is None:
            what = (
                f"view {record.view}"
                if isinstance(record, ViewChange)
                else f"delivery #{record.index}"
            )
            raise RuntimeError(
                f"JSON-lines handler for {self.path} is closed; {what} was not written"
            )
        data = (record_to_json(record) + "\n").encode("utf-8")
        if self._dirty:
            os.ftruncate(fd, self._size)
            self._dirty = False
        written = 0
        try:
            written = os.write(fd, data)
            # One write() nearly always takes the whole line; a full disk can
            # take part of it and refuse the rest.
            while written < len(data):
                written += os.write(fd, memoryview(data)[written:])
        except OSError:
            if written:
                try:
                    os.ftruncate(fd, self._size)
                except OSError:
                    self._dirty = True
            raise
        self._size += len(data)

    def close(self) -> None:
        """
        Close the file.  Closing again does nothing; delivering afterwards
        raises L{RuntimeError}.
        """
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                if self._dirty:
                    # Best effort: a torn line left here is cut when the
                    # file is next opened.
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, self._size)
            finally:
                os.close(fd)


_DELIVERY_START = b'{"index": '
_VIEW_START = b'{"view": '
_CHUNK = 1 << 16
"""
How much of a file's end is read at a time, looking for its last line.
"""
_SCAN_CHUNK = 1 << 20
"""
How much is read at a time, searching back for the last line of a kind.
"""


def _read_at(fd: int, offset: int, length: int) -> bytes:
    """
    Read C{length} bytes of C{fd} from C{offset} (fewer at the end).
    """
    os.lseek(fd, offset, os.SEEK_SET)
    parts: list[bytes] = []
    while length > 0:
        part = os.read(fd, length)
        if not part:
            break
        parts.append(part)
        length -= len(part)
    return b"".join(parts)


def _parse(line: bytes) -> Record | None:
    """
    One line of a log as a record.

    @return: The record, or L{None} if the line is not one.
    """
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    try:
        if "sender" in obj:
            return _record_from_json(obj)
        return _view_from_json(obj)
    except (ValueError, TypeError, KeyError):
        return None


def _is_json(line: bytes) -> bool:
    """
    Whether C{line} is one JSON value.
    """
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _could_be_torn(tail: bytes) -> bool:
    """
    Whether C{tail}, the end of a file, can be a record cut short: the start
    of a line this handler writes, or the zero bytes some file systems leave
    where a crash interrupted a write.
    """
    if not tail.replace(b"\0", b"").strip():
        return True
    for start in (_DELIVERY_START, _VIEW_START):
        if tail.startswith(start) or start.startswith(tail):
            return True
    return False


def _repair(path: str, fd: int, size: int) -> tuple[int, int]:
    """
    Find where a file's last whole record ends.

    @return: That offset, and how many bytes after it are a torn record.
    @raise ValueError: If the file's end is not a record nor a torn one.
    """
    # The torn part is at most the last line: search back for the newline
    # before it (the file's final byte may be the one that ends it).
    line_start = 0
    position = size - 1
    while position > 0:
        offset = max(0, position - _CHUNK)
        found = _read_at(fd, offset, position - offset).rfind(b"\n")
        if found >= 0:
            line_start = offset + found + 1
            break
        position = offset
    last = _read_at(fd, line_start, size - line_start)
    if last.endswith(b"\n"):
        if _parse(last) is not None:
            return size, 0
        # A whole line that is JSON but not a record was written on purpose,
        # by someone else: not a torn write of ours.
        torn = not _is_json(last) and _could_be_torn(last)
    else:
        torn = _could_be_torn(last)
    if not torn:
        raise ValueError(
            f"{path} is not a delivery log written by the jsonl handler (its"
            f" last line is {_show(last)}); give another file"
        )
    return line_start, size - line_start


def _last_record(path: str, fd: int, end: int, start: bytes) -> Record | None:
    """
    The last record of the file before C{end} whose line begins with
    C{start}.

    @raise ValueError: If that line is not a whole record.
    """
    needle = b"\n" + start
    # A line can hold the needle across two reads: each read keeps the
    # first bytes of the one after it.
    carry = b""
    position = end
    while position > 0:
        offset = max(0, position - _SCAN_CHUNK)
        buffer = _read_at(fd, offset, position - offset) + carry
        found = buffer.rfind(needle)
        if found >= 0:
            line_at = offset + found + 1
        elif offset == 0 and buffer.startswith(start):
            line_at = 0
        else:
            carry = buffer[: len(needle) - 1]
            position = offset
            continue
        line = _line_at(fd, line_at, end)
        record = _parse(line)
        if record is None:
            raise ValueError(
                f"{path} is not a delivery log written by the jsonl handler"
                f" (the line at byte {line_at} is {_show(line)}); give another file"
            )
        return record
    return None


def _line_at(fd: int, offset: int, end: int) -> bytes:
    """
    The line of C{fd} starting at C{offset}, newline included.
    """
    parts: list[bytes] = []
    while offset < end:
        block = _read_at(fd, offset, min(_CHUNK, end - offset))
        cut = block.find(b"\n")
        if cut >= 0:
            parts.append(block[: cut + 1])
            break
        parts.append(block)
        offset += len(block)
    return b"".join(parts)


def _check_first_line(path: str, fd: int, end: int) -> None:
    """
    Refuse a file whose first line is not a record: another file that
    happens to end with a line of ours.
    """
    line = _line_at(fd, 0, end)
    if _parse(line) is None:
        raise ValueError(
            f"{path} is not a delivery log written by the jsonl handler (its"
            f" first line is {_show(line)}); give another file"
        )


def _show(line: bytes) -> str:
    """
    The start of a line, for a message.
    """
    text = line.rstrip(b"\n")[:PREVIEW_BYTES]
    shown = repr(text.decode("utf-8", "backslashreplace"))
    return shown + "..." if len(line.rstrip(b"\n")) > PREVIEW_BYTES else shown


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
