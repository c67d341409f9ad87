"""
Tests for L{isis_twisted.app.handlers}: the built-in delivery handlers and
building handlers from specifications.
"""

from __future__ import annotations

import errno
import importlib
import os
import subprocess
import sys
import textwrap
import types
import uuid
from pathlib import Path

import attrs
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import Logger, LogLevel, formatEvent, globalLogPublisher
from twisted.plugin import IPlugin
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from isis_twisted.app.handlers import (
    BUILTIN_FACTORIES,
    PREVIEW_BYTES,
    HandlerSpecError,
    JsonLinesHandler,
    JsonLinesHandlerFactory,
    LogHandler,
    LogHandlerFactory,
    available_handlers,
    build_handler,
)
from isis_twisted.core.checker import load_jsonl, load_records, record_to_json
from isis_twisted.core.engine import Delivery, StreamPosition, ViewChange
from isis_twisted.core.pump import (
    HandlerPump,
    HandlerResumed,
    HandlerStopped,
    Pumped,
    Stuck,
)
from isis_twisted.interfaces import (
    IDeliveryHandler,
    IDeliveryHandlerFactory,
    IDurableHandler,
    IViewHandler,
)
from isis_twisted.tools import testing

RECORDS = (
    Delivery(1, "a", 7, b"text"),
    Delivery(2, "b", 8, b"\xff\x00\xfe"),
    Delivery(3, "a", 9, "caf\u00e9 \u2603".encode(), after=2),
)
"""
Three records: a UTF-8 payload, a payload that is not UTF-8, and a record
with C{after} and non-ASCII text.
"""

EXPECTED_LINES = (
    '{"index": 1, "sender": "a", "clock": 7, "payload": "text"}\n',
    '{"index": 2, "sender": "b", "clock": 8, "payload_b64": "/wD+"}\n',
    '{"index": 3, "sender": "a", "clock": 9, "payload": "caf\u00e9 \u2603",'
    ' "after": 2}\n',
)
"""
What L{JsonLinesHandler} writes for L{RECORDS}, line by line.
"""

VIEW = ViewChange(1, ("a", "b"), 3)
"""
A view change that falls between the second and third of L{RECORDS}.
"""


@implementer(IDeliveryHandler)
class RecordingHandler(testing.RecordingHandler):
    """
    A delivery handler that remembers what it was given and the argument
    it was built with.

    @ivar argument: The argument it was built with.
    """

    def __init__(self, argument: str | None) -> None:
        super().__init__()
        self.argument = argument


def make_recorder(argument: str | None) -> RecordingHandler:
    """
    A module-path handler factory: C{tests.test_handlers:make_recorder}.
    """
    return RecordingHandler(argument)


def make_nothing(argument: str | None) -> object:
    """
    A module-path factory whose result is not a handler.
    """
    return object()


def make_refusal(argument: str | None) -> RecordingHandler:
    """
    A module-path factory that rejects every argument.
    """
    raise ValueError(f"cannot record into {argument!r}")


class Factories:
    """
    A namespace, for a dotted factory name: C{module:Factories.recorder}.
    """

    recorder = staticmethod(make_recorder)


NOT_CALLABLE = 42
"""
A module attribute that cannot make a handler.
"""


@implementer(IDeliveryHandlerFactory)
class RecorderFactory:
    """
    A handler factory used through the module-path form.
    """

    name = "recorder-factory"
    description = "Record deliveries (module-path form)."

    def build(self, argument: str | None) -> IDeliveryHandler:
        return RecordingHandler(f"built:{argument}")


RECORDER_FACTORY = RecorderFactory()


def make_crash(argument: str | None) -> RecordingHandler:
    """
    A module-path factory that fails with something other than
    L{ValueError}.
    """
    raise RuntimeError("the recorder's database is down")


class NoArgumentHandler(testing.RecordingHandler):
    """
    A handler class whose constructor takes no argument, so it cannot serve
    as a factory.
    """

    def __init__(self) -> None:
        super().__init__()


class Undeclared:
    """
    Has C{deliver} and C{close} but does not declare L{IDeliveryHandler}.
    """

    def deliver(self, record: Delivery) -> None:
        pass

    def close(self) -> None:
        pass


def make_undeclared(argument: str | None) -> Undeclared:
    """
    A module-path factory whose handler forgot C{@implementer}.
    """
    return Undeclared()


PLUGIN_SOURCE = '''\
"""
Delivery handler plugins for the tests of isis_twisted.app.handlers.
"""

from twisted.plugin import IPlugin
from zope.interface import implementer

from isis_twisted.interfaces import IDeliveryHandler, IDeliveryHandlerFactory


@implementer(IDeliveryHandler)
class PluginRecorder:
    def __init__(self, argument):
        self.argument = argument

    def deliver(self, record):
        pass

    def close(self):
        pass


@implementer(IPlugin, IDeliveryHandlerFactory)
class Factory:
    def __init__(self, name, description):
        self.name = name
        self.description = description

    def build(self, argument):
        if argument == "bad":
            raise ValueError("bad is not a good argument")
        return PluginRecorder(argument)


recorder = Factory("recorder", "Record deliveries (a plugin).")
dotted = Factory("dotted.name", "A plugin whose name has a dot.")
shadowed = Factory("log", "A plugin that tries to replace the built-in log.")
'''
"""
A plugin module: three L{IDeliveryHandlerFactory} plugins, one of which has
the same name as a built-in.
"""


class JsonLinesHandlerTests(SynchronousTestCase):
    """
    Tests for L{JsonLinesHandler}.
    """

    def setUp(self) -> None:
        self.path = self.mktemp()

    def read(self) -> str:
        """
        The log file's content, read independently of the handler.
        """
        return Path(self.path).read_text(encoding="utf-8")

    def test_provides(self) -> None:
        """
        L{JsonLinesHandler} provides L{IViewHandler}, and so
        L{IDeliveryHandler}.
        """
        handler = JsonLinesHandler(self.path)
        self.addCleanup(handler.close)
        self.assertTrue(verifyObject(IViewHandler, handler))
        self.assertTrue(IDeliveryHandler.providedBy(handler))

    def test_view_line(self) -> None:
        """
        A view change is a line of its own, where it fell among the
        deliveries, with the view's id, members and first index and no
        C{sender} key; L{load_records} reads it back in place.
        """
        handler = JsonLinesHandler(self.path)
        handler.deliver(RECORDS[0])
        handler.deliver(RECORDS[1])
        handler.view_changed(VIEW)
        handler.deliver(RECORDS[2])
        handler.close()
        lines = self.read().splitlines(keepends=True)
        self.assertEqual(
            lines,
            [
                *EXPECTED_LINES[:2],
                '{"view": 1, "members": ["a", "b"], "index": 3}\n',
                EXPECTED_LINES[2],
            ],
        )
        self.assertEqual(
            load_records(self.path), [RECORDS[0], RECORDS[1], VIEW, RECORDS[2]]
        )
        self.assertEqual(load_jsonl(self.path), list(RECORDS))

    def test_view_flushed(self) -> None:
        """
        A view line is in the file as soon as C{view_changed} returns.
        """
        handler = JsonLinesHandler(self.path)
        self.addCleanup(handler.close)
        handler.view_changed(VIEW)
        self.assertEqual(load_records(self.path), [VIEW])

    def test_view_after_close(self) -> None:
        """
        A view change given to a closed handler raises L{RuntimeError}
        naming the file and the view, and writes nothing.
        """
        handler = JsonLinesHandler(self.path)
        handler.close()
        e = self.assertRaises(RuntimeError, handler.view_changed, VIEW)
        self.assertIn(self.path, str(e))
        self.assertIn("view 1", str(e))
        self.assertEqual(self.read(), "")

    def test_lines(self) -> None:
        """
        Each delivery appends exactly C{record_to_json(record) + "\\n"}:
        C{payload} for UTF-8, C{payload_b64} otherwise, and C{after} when set.
        """
        handler = JsonLinesHandler(self.path)
        for record in RECORDS:
            handler.deliver(record)
        handler.close()
        lines = self.read().splitlines(keepends=True)
        self.assertEqual(lines, list(EXPECTED_LINES))
        self.assertEqual(lines, [record_to_json(r) + "\n" for r in RECORDS])

    def test_round_trip(self) -> None:
        """
        L{load_jsonl} reads back the records that were delivered.
        """
        handler = JsonLinesHandler(self.path)
        for record in RECORDS:
            handler.deliver(record)
        handler.close()
        self.assertEqual(load_jsonl(self.path), list(RECORDS))

    def test_flushed_after_each_write(self) -> None:
        """
        Every line is in the file as soon as C{deliver} returns, before the
        handler is closed.
        """
        handler = JsonLinesHandler(self.path)
        self.addCleanup(handler.close)
        self.assertEqual(self.read(), "")
        for count, record in enumerate(RECORDS, 1):
            handler.deliver(record)
            self.assertEqual(self.read(), "".join(EXPECTED_LINES[:count]))
            self.assertEqual(load_jsonl(self.path), list(RECORDS[:count]))

    def test_appends(self) -> None:
        """
        An existing file is kept and extended.
        """
        Path(self.path).write_text(EXPECTED_LINES[0], encoding="utf-8")
        handler = JsonLinesHandler(Path(self.path))
        handler.deliver(RECORDS[1])
        handler.close()
        self.assertEqual(self.read(), "".join(EXPECTED_LINES[:2]))

    def test_path_attribute(self) -> None:
        """
        The handler's C{path} is the path it was given, as a string.
        """
        handler = JsonLinesHandler(Path(self.path))
        self.addCleanup(handler.close)
        self.assertEqual(handler.path, self.path)

    def test_missing_directory(self) -> None:
        """
        A path in a directory that does not exist is a L{ValueError} naming
        the path and the reason.
        """
        path = os.path.join(self.mktemp(), "missing", "log.jsonl")
        e = self.assertRaises(ValueError, JsonLinesHandler, path)
        self.assertIn(path, str(e))
        self.assertIn("No such file or directory", str(e))
        self.assertFalse(os.path.exists(os.path.dirname(path)))

    def test_directory(self) -> None:
        """
        A path that is a directory is a L{ValueError} naming the path.
        """
        os.makedirs(self.path)
        e = self.assertRaises(ValueError, JsonLinesHandler, self.path)
        self.assertIn(self.path, str(e))
        self.assertIn("directory", str(e))

    def test_deliver_after_close(self) -> None:
        """
        Delivering to a closed handler raises L{RuntimeError} and leaves the
        file as it was.
        """
        handler = JsonLinesHandler(self.path)
        handler.deliver(RECORDS[0])
        handler.close()
        e = self.assertRaises(RuntimeError, handler.deliver, RECORDS[1])
        self.assertIn(self.path, str(e))
        self.assertIn("closed", str(e))
        self.assertEqual(self.read(), EXPECTED_LINES[0])

    def test_close_twice(self) -> None:
        """
        Closing a closed handler does nothing.
        """
        handler = JsonLinesHandler(self.path)
        handler.close()
        handler.close()
        self.assertEqual(self.read(), "")


class LogHandlerTests(SynchronousTestCase):
    """
    Tests for L{LogHandler}.
    """

    def observed(self) -> tuple[LogHandler, EventLoggingObserver]:
        """
        A log handler whose events go to a fresh observer.
        """
        observer = EventLoggingObserver()
        return LogHandler(Logger(namespace="test", observer=observer)), observer

    def test_provides(self) -> None:
        """
        L{LogHandler} provides L{IViewHandler}, and so L{IDeliveryHandler}.
        """
        self.assertTrue(verifyObject(IViewHandler, LogHandler()))
        self.assertTrue(IDeliveryHandler.providedBy(LogHandler()))

    def test_view_event(self) -> None:
        """
        A view change is one C{info} event, in order with the deliveries,
        carrying the view's id, members and first index.
        """
        handler, observer = self.observed()
        handler.deliver(RECORDS[0])
        handler.view_changed(ViewChange(1, ("a", "b"), 2))
        handler.deliver(RECORDS[1])
        self.assertEqual(len(observer), 3)
        event = observer[1]
        self.assertEqual(event["log_level"], LogLevel.info)
        self.assertEqual(
            (event["view"], event["members"], event["index"]), (1, ("a", "b"), 2)
        )
        self.assertEqual(formatEvent(event), "view 1: a, b (from #2)")
        self.assertEqual([e["index"] for e in observer], [1, 2, 2])

    def test_one_event_per_delivery(self) -> None:
        """
        Every delivery is one C{info} event carrying the record's index,
        sender, clock, payload size and a preview.
        """
        handler, observer = self.observed()
        for record in RECORDS:
            handler.deliver(record)
        self.assertEqual(len(observer), len(RECORDS))
        for event, record in zip(observer, RECORDS, strict=True):
            self.assertEqual(event["log_level"], LogLevel.info)
            self.assertEqual(event["index"], record.index)
            self.assertEqual(event["sender"], record.sender)
            self.assertEqual(event["clock"], record.clock)
            self.assertEqual(event["size"], len(record.payload))
        self.assertEqual(
            [event["preview"] for event in observer],
            ["text", "\\xff\\x00\\xfe", "caf\u00e9 \u2603"],
        )
        self.assertEqual(
            formatEvent(observer[0]), "delivered #1 from a at clock 7: 4 bytes text"
        )

    def test_preview_truncated(self) -> None:
        """
        The preview shows at most L{PREVIEW_BYTES} bytes, and marks what it
        left out.
        """
        handler, observer = self.observed()
        handler.deliver(Delivery(1, "a", 1, b"x" * (PREVIEW_BYTES + 10)))
        self.assertEqual(observer[0]["preview"], "x" * PREVIEW_BYTES + "...")
        self.assertEqual(observer[0]["size"], PREVIEW_BYTES + 10)

    def test_preview_cut_character(self) -> None:
        """
        A multi-byte character cut by the preview's limit is left out rather
        than shown as escaped bytes; unprintable characters are escaped.
        """
        handler, observer = self.observed()
        payload = b"\n" + b"x" * (PREVIEW_BYTES - 2) + "\u2603".encode()
        handler.deliver(Delivery(1, "a", 1, payload))
        self.assertEqual(
            observer[0]["preview"], "\\n" + "x" * (PREVIEW_BYTES - 2) + "..."
        )

    def test_global_publisher(self) -> None:
        """
        By default a L{LogHandler} logs to the global log publisher, in its
        own namespace, with itself as the source.
        """
        observer = EventLoggingObserver()
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        handler = LogHandler()
        handler.deliver(RECORDS[0])
        handler.deliver(RECORDS[1])
        mine = [e for e in observer if e.get("log_source") is handler]
        self.assertEqual([e["index"] for e in mine], [1, 2])
        self.assertEqual(
            mine[0]["log_namespace"], "isis_twisted.app.handlers.LogHandler"
        )

    def test_close(self) -> None:
        """
        Closing logs nothing.
        """
        handler, observer = self.observed()
        handler.close()
        self.assertEqual(len(observer), 0)


class FactoryTests(SynchronousTestCase):
    """
    Tests for the built-in factories, L{LogHandlerFactory} and
    L{JsonLinesHandlerFactory}.
    """

    def test_provides(self) -> None:
        """
        The built-in factories are plugins providing
        L{IDeliveryHandlerFactory}, named C{log} and C{jsonl}.
        """
        for factory in BUILTIN_FACTORIES:
            self.assertTrue(verifyObject(IDeliveryHandlerFactory, factory))
            self.assertTrue(verifyObject(IPlugin, factory))
            self.assertIsInstance(factory.description, str)
        self.assertEqual([f.name for f in BUILTIN_FACTORIES], ["log", "jsonl"])

    def test_log(self) -> None:
        """
        The C{log} factory makes a L{LogHandler} without an argument.
        """
        for argument in (None, ""):
            handler = LogHandlerFactory().build(argument)
            self.assertIsInstance(handler, LogHandler)
            self.assertTrue(verifyObject(IDeliveryHandler, handler))

    def test_log_argument(self) -> None:
        """
        The C{log} factory rejects an argument.
        """
        e = self.assertRaises(ValueError, LogHandlerFactory().build, "x")
        self.assertIn("no argument", str(e))

    def test_jsonl(self) -> None:
        """
        The C{jsonl} factory makes a L{JsonLinesHandler} for its argument.
        """
        path = self.mktemp()
        handler = JsonLinesHandlerFactory().build(path)
        self.addCleanup(handler.close)
        self.assertIsInstance(handler, JsonLinesHandler)
        self.assertTrue(verifyObject(IDeliveryHandler, handler))
        handler.deliver(RECORDS[0])
        self.assertEqual(load_jsonl(path), [RECORDS[0]])

    def test_jsonl_without_path(self) -> None:
        """
        The C{jsonl} factory needs a path.
        """
        for argument in (None, ""):
            e = self.assertRaises(ValueError, JsonLinesHandlerFactory().build, argument)
            self.assertIn("jsonl:PATH", str(e))


class BuildHandlerTests(SynchronousTestCase):
    """
    Tests for L{build_handler} with built-in names and module paths.
    """

    def assertSpecError(self, spec: str, *fragments: str) -> HandlerSpecError:
        """
        Assert that C{spec} is rejected with one line naming it and every
        fragment.
        """
        e: HandlerSpecError = self.assertRaises(HandlerSpecError, build_handler, spec)
        message = str(e)
        self.assertIsInstance(e, ValueError)
        self.assertIn(repr(spec), message)
        self.assertNotIn("\n", message)
        self.assertTrue(message.endswith("."), message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return e

    def recorder(self, spec: str) -> RecordingHandler:
        """
        Build C{spec} and check that it made a L{RecordingHandler}.
        """
        handler = build_handler(spec)
        self.assertTrue(verifyObject(IDeliveryHandler, handler))
        self.assertIsInstance(handler, RecordingHandler)
        assert isinstance(handler, RecordingHandler)
        return handler

    def test_log(self) -> None:
        """
        C{log} is a L{LogHandler}.
        """
        handler = build_handler("log")
        self.assertIsInstance(handler, LogHandler)
        self.assertTrue(verifyObject(IDeliveryHandler, handler))

    def test_jsonl(self) -> None:
        """
        C{jsonl:PATH} is a L{JsonLinesHandler} appending to C{PATH}; the path
        may contain colons.
        """
        path = os.path.join(self.mktemp(), "a:b.jsonl")
        os.makedirs(os.path.dirname(path))
        handler = build_handler(f"jsonl:{path}")
        self.addCleanup(handler.close)
        self.assertIsInstance(handler, JsonLinesHandler)
        self.assertTrue(verifyObject(IDeliveryHandler, handler))
        handler.deliver(RECORDS[0])
        self.assertEqual(load_jsonl(path), [RECORDS[0]])

    def test_jsonl_without_path(self) -> None:
        """
        C{jsonl} and C{jsonl:} are rejected: they need a path.
        """
        self.assertSpecError("jsonl", "jsonl:PATH")
        self.assertSpecError("jsonl:", "jsonl:PATH")

    def test_jsonl_unwritable(self) -> None:
        """
        C{jsonl:PATH} with a path that cannot be opened names the path and
        the reason.
        """
        path = os.path.join(self.mktemp(), "missing", "log.jsonl")
        self.assertSpecError(f"jsonl:{path}", path, "No such file or directory")

    def test_log_argument(self) -> None:
        """
        C{log:ARGUMENT} is rejected; C{log:} is the same as C{log}.
        """
        self.assertSpecError("log:verbose", "no argument")
        self.assertIsInstance(build_handler("log:"), LogHandler)

    def test_unknown_name(self) -> None:
        """
        An unknown name is rejected with the list of known names.
        """
        self.assertSpecError("nope", "Unknown handler", "jsonl, log")
        self.assertSpecError("nope:arg", "Unknown handler", "jsonl, log")

    def test_no_name(self) -> None:
        """
        An empty name is rejected.
        """
        self.assertSpecError("", "no name")
        self.assertSpecError(":arg", "no name")

    def test_module_path(self) -> None:
        """
        C{package.module:factory} calls the factory with L{None}.
        """
        handler = self.recorder("tests.test_handlers:make_recorder")
        self.assertIsNone(handler.argument)

    def test_module_path_argument(self) -> None:
        """
        C{package.module:factory:ARGUMENT} calls the factory with the
        argument, colons and all.
        """
        handler = self.recorder("tests.test_handlers:make_recorder:x:y")
        self.assertEqual(handler.argument, "x:y")
        handler = self.recorder("tests.test_handlers:make_recorder:")
        self.assertEqual(handler.argument, "")

    def test_module_path_dotted_attribute(self) -> None:
        """
        The factory's name may be dotted.
        """
        handler = self.recorder("tests.test_handlers:Factories.recorder:z")
        self.assertEqual(handler.argument, "z")

    def test_module_path_class(self) -> None:
        """
        The factory may be a handler class.
        """
        handler = self.recorder("tests.test_handlers:RecordingHandler:w")
        self.assertEqual(handler.argument, "w")

    def test_module_path_factory_provider(self) -> None:
        """
        An L{IDeliveryHandlerFactory} provider is used through its C{build}.
        """
        self.assertTrue(verifyObject(IDeliveryHandlerFactory, RECORDER_FACTORY))
        handler = self.recorder("tests.test_handlers:RECORDER_FACTORY:v")
        self.assertEqual(handler.argument, "built:v")

    def test_module_path_builtin(self) -> None:
        """
        The built-in handlers can be named by module path too.
        """
        path = self.mktemp()
        handler = build_handler(f"isis_twisted.app.handlers:JsonLinesHandler:{path}")
        self.addCleanup(handler.close)
        self.assertIsInstance(handler, JsonLinesHandler)

    def test_module_not_importable(self) -> None:
        """
        A module that is not on the path is rejected, saying so and
        suggesting C{PYTHONPATH}.
        """
        self.assertSpecError(
            "tests.no_such_module:factory",
            "cannot import",
            "no module 'tests.no_such_module' on the Python path",
            "PYTHONPATH",
        )
        self.assertSpecError(
            "isis_no_such_package.sub:factory",
            "no module 'isis_no_such_package' on the Python path",
            "PYTHONPATH",
        )

    def test_top_level_module_not_on_path(self) -> None:
        """
        C{module:factory} whose top-level module is not on the path is not
        just "unknown": the message names the module and C{PYTHONPATH}.
        """
        self.assertSpecError(
            "isis_missing_module:make",
            "'isis_missing_module' is neither a known handler (jsonl, log)"
            " nor a module on the Python path",
            "PYTHONPATH",
        )

    def test_module_raises_on_import(self) -> None:
        """
        A module that exists but raises while it is imported is told apart
        from a missing one: the message has the module's exception, not a
        traceback, also when the module's own import is what is missing.
        """
        root = os.path.abspath(self.mktemp())
        os.makedirs(root)
        name = f"isis_broken_{uuid.uuid4().hex}"
        Path(root, f"{name}.py").write_text("raise RuntimeError('no config file')\n")
        Path(root, f"{name}_dep.py").write_text("import isis_absent_dependency\n")
        sys.path.insert(0, root)
        importlib.invalidate_caches()
        self.addCleanup(sys.path.remove, root)
        for module in (name, f"{name}_dep"):
            self.addCleanup(sys.modules.pop, module, None)
        self.assertSpecError(
            f"{name}:factory",
            f"cannot import module {name!r}: importing it raised"
            " RuntimeError: no config file",
        )
        self.assertSpecError(
            f"{name}_dep:factory",
            "importing it raised ModuleNotFoundError: No module named"
            " 'isis_absent_dependency'",
        )

    def test_attribute_missing(self) -> None:
        """
        A factory the module does not have is rejected.
        """
        self.assertSpecError("tests.test_handlers:missing", "has no 'missing'")
        self.assertSpecError(
            "tests.test_handlers:Factories.missing:x", "has no 'Factories.missing'"
        )

    def test_no_factory(self) -> None:
        """
        A module path without a factory name is rejected.
        """
        self.assertSpecError("tests.test_handlers", "names no factory")
        self.assertSpecError("tests.test_handlers:", "names no factory")

    def test_not_callable(self) -> None:
        """
        An attribute that is neither callable nor a factory is rejected.
        """
        self.assertSpecError("tests.test_handlers:NOT_CALLABLE", "neither callable")

    def test_factory_refuses(self) -> None:
        """
        A factory's L{ValueError} becomes a L{HandlerSpecError} with its
        message.
        """
        e = self.assertSpecError(
            "tests.test_handlers:make_refusal:q", "cannot record into 'q'"
        )
        self.assertIsInstance(e.__cause__, ValueError)

    def test_not_a_handler(self) -> None:
        """
        A factory whose result is not an L{IDeliveryHandler} is rejected.
        """
        self.assertSpecError(
            "tests.test_handlers:make_nothing",
            "not a delivery handler",
            "does not provide IDeliveryHandler",
        )

    def test_factory_crashes(self) -> None:
        """
        A factory that raises anything else is one sentence with the
        exception's type and message, not a traceback.
        """
        e = self.assertSpecError(
            "tests.test_handlers:make_crash",
            "its factory raised RuntimeError: the recorder's database is down",
        )
        self.assertIsInstance(e.__cause__, RuntimeError)

    def test_class_instead_of_factory(self) -> None:
        """
        A class whose constructor does not take the argument is named as a
        class, and the message says what a factory is.
        """
        self.assertSpecError(
            "tests.test_handlers:NoArgumentHandler",
            "NoArgumentHandler is a class whose constructor cannot be called",
            "give a factory: a function that takes the argument",
        )

    def test_factory_class_instead_of_instance(self) -> None:
        """
        An L{IDeliveryHandlerFactory} class (not an instance) is rejected
        with the fix.
        """
        self.assertSpecError(
            "tests.test_handlers:RecorderFactory",
            "is a handler factory class, not a factory",
            "factory = RecorderFactory()",
        )

    def test_undeclared_handler(self) -> None:
        """
        A handler that does not declare L{IDeliveryHandler} is rejected with
        the hint to use C{@implementer}.
        """
        self.assertSpecError(
            "tests.test_handlers:make_undeclared",
            "does not provide IDeliveryHandler",
            "@implementer(IDeliveryHandler)",
        )

    def test_available(self) -> None:
        """
        L{available_handlers} lists the built-ins first, with their
        descriptions.
        """
        available = available_handlers()
        self.assertEqual(list(available)[:2], ["log", "jsonl"])
        self.assertEqual(available["log"], LogHandlerFactory.description)
        self.assertEqual(available["jsonl"], JsonLinesHandlerFactory.description)


class PluginTests(SynchronousTestCase):
    """
    Tests for L{build_handler} and L{available_handlers} finding plugins.
    """

    def setUp(self) -> None:
        self.package = self.pluginPackage({"isis_test_plugin": PLUGIN_SOURCE})

    def pluginPackage(self, modules: dict[str, str]) -> types.ModuleType:
        """
        Make, import and return a plugin package in a temporary directory on
        C{sys.path}; undo it all when the test ends.

        @param modules: The source of each plugin module, by module name.
        """
        root = os.path.abspath(self.mktemp())
        name = f"isis_test_plugins_{uuid.uuid4().hex}"
        directory = os.path.join(root, name)
        os.makedirs(directory)
        Path(directory, "__init__.py").write_text("")
        for module, source in modules.items():
            Path(directory, f"{module}.py").write_text(textwrap.dedent(source))
        sys.path.insert(0, root)
        self.addCleanup(self.forget, root, name)
        importlib.invalidate_caches()
        return importlib.import_module(name)

    def forget(self, root: str, name: str) -> None:
        """
        Take a temporary plugin package off C{sys.path} and out of
        C{sys.modules}.
        """
        sys.path.remove(root)
        for module in list(sys.modules):
            if module == name or module.startswith(name + "."):
                del sys.modules[module]

    def test_found_by_name(self) -> None:
        """
        A plugin is built by its name, with the argument.
        """
        handler = build_handler("recorder:xyz", self.package)
        self.assertTrue(verifyObject(IDeliveryHandler, handler))
        self.assertEqual(type(handler).__name__, "PluginRecorder")
        self.assertEqual(getattr(handler, "argument", None), "xyz")
        handler = build_handler("recorder", self.package)
        self.assertIsNone(getattr(handler, "argument", "missing"))

    def test_plugins_provide(self) -> None:
        """
        The test plugins are what they claim to be, and the test package
        holds nothing else.
        """
        from twisted.plugin import getPlugins

        plugins = list(getPlugins(IDeliveryHandlerFactory, self.package))
        self.assertEqual(
            sorted(p.name for p in plugins), ["dotted.name", "log", "recorder"]
        )
        for plugin in plugins:
            self.assertTrue(verifyObject(IDeliveryHandlerFactory, plugin))
            self.assertTrue(verifyObject(IPlugin, plugin))

    def test_dotted_name(self) -> None:
        """
        A plugin name with a dot is taken as a name, not a module path.
        """
        handler = build_handler("dotted.name:a", self.package)
        self.assertEqual(type(handler).__name__, "PluginRecorder")

    def test_builtin_wins(self) -> None:
        """
        A plugin with a built-in's name does not replace the built-in.
        """
        self.assertIsInstance(build_handler("log", self.package), LogHandler)
        available = available_handlers(self.package)
        self.assertEqual(available["log"], LogHandlerFactory.description)

    def test_available(self) -> None:
        """
        L{available_handlers} lists the built-ins, then the plugins by name.
        """
        self.assertEqual(
            available_handlers(self.package),
            {
                "log": LogHandlerFactory.description,
                "jsonl": JsonLinesHandlerFactory.description,
                "dotted.name": "A plugin whose name has a dot.",
                "recorder": "Record deliveries (a plugin).",
            },
        )

    def test_unknown_lists_plugins(self) -> None:
        """
        The message for an unknown name lists the plugins too.
        """
        e = self.assertRaises(HandlerSpecError, build_handler, "nope", self.package)
        self.assertIn("dotted.name, jsonl, log, recorder", str(e))

    def test_plugin_refuses(self) -> None:
        """
        A plugin's L{ValueError} becomes a L{HandlerSpecError} naming the
        spec.
        """
        e = self.assertRaises(
            HandlerSpecError, build_handler, "recorder:bad", self.package
        )
        self.assertIn("'recorder:bad'", str(e))
        self.assertIn("bad is not a good argument", str(e))

    def test_empty_package(self) -> None:
        """
        With no plugins, only the built-ins are available.
        """
        empty = self.pluginPackage({})
        self.assertEqual(list(available_handlers(empty)), ["log", "jsonl"])


class HelperTests(SynchronousTestCase):
    """
    The test helpers provide the interfaces they claim to.
    """

    def test_recorder(self) -> None:
        """
        L{RecordingHandler} provides L{IDeliveryHandler}.
        """
        handler = make_recorder("a")
        self.assertTrue(verifyObject(IDeliveryHandler, handler))
        handler.deliver(RECORDS[0])
        handler.close()
        self.assertEqual(handler.records, [RECORDS[0]])
        self.assertTrue(handler.closed)


class JsonLinesOpenTests(SynchronousTestCase):
    """
    Tests for what L{JsonLinesHandler} does with an existing file when it
    opens it: the position it reads, the torn line it repairs, and the files
    it refuses.
    """

    def setUp(self) -> None:
        self.path = self.mktemp()
        self.observer = EventLoggingObserver()
        self.log = Logger(observer=self.observer)

    def open(self) -> JsonLinesHandler:
        """
        Open the file with a handler that logs to C{self.observer}, and close
        it when the test ends.
        """
        handler = JsonLinesHandler(self.path, logger=self.log)
        self.addCleanup(handler.close)
        return handler

    def write(self, data: bytes) -> None:
        """
        Replace the file's content with C{data}.
        """
        Path(self.path).write_bytes(data)

    def written(self, *records: Delivery | ViewChange) -> bytes:
        """
        What the handler writes for C{records}.
        """
        return "".join(record_to_json(r) + "\n" for r in records).encode()

    def test_provides(self) -> None:
        """
        L{JsonLinesHandler} provides L{IDurableHandler}.
        """
        self.assertTrue(verifyObject(IDurableHandler, self.open()))

    def test_new_file(self) -> None:
        """
        A new file has the empty position, and opening it logs nothing.
        """
        self.assertEqual(self.open().position(), StreamPosition())
        self.assertEqual(len(self.observer), 0)

    def test_position_of_existing_file(self) -> None:
        """
        An existing file's position is its last delivery's index, sender
        and clock, and its last view's id, wherever they are.
        """
        self.write(
            self.written(
                RECORDS[0], ViewChange(1, ("a", "b"), 2), RECORDS[1], VIEW, RECORDS[2]
            )
        )
        self.assertEqual(self.open().position(), StreamPosition(3, 1, ("a", 9)))
        self.assertEqual(len(self.observer), 0)

    def test_position_view_last(self) -> None:
        """
        A view line after the last delivery counts: the position has that
        view and the delivery before it.
        """
        self.write(self.written(RECORDS[0], RECORDS[1], VIEW))
        self.assertEqual(self.open().position(), StreamPosition(2, 1, ("b", 8)))

    def test_position_views_only(self) -> None:
        """
        A file of view lines alone has index 0 and no last delivery.
        """
        self.write(self.written(ViewChange(1, ("a",), 1), ViewChange(2, ("a", "b"), 1)))
        self.assertEqual(self.open().position(), StreamPosition(0, 2, None))

    def test_position_far_back(self) -> None:
        """
        The last view line is found however far back it is: more than the
        reads' size, with long lines in between.
        """
        filler = [Delivery(i, "a", i, b"x" * 5000) for i in range(1, 600)]
        self.write(self.written(VIEW, *filler))
        self.assertGreater(os.path.getsize(self.path), 2 << 20)
        self.assertEqual(self.open().position(), StreamPosition(599, 1, ("a", 599)))

    def test_position_advances(self) -> None:
        """
        The position follows each record written.
        """
        self.write(self.written(RECORDS[0]))
        handler = self.open()
        handler.deliver(RECORDS[1])
        self.assertEqual(handler.position(), StreamPosition(2, 0, ("b", 8)))
        handler.view_changed(VIEW)
        self.assertEqual(handler.position(), StreamPosition(2, 1, ("b", 8)))
        handler.deliver(RECORDS[2])
        self.assertEqual(handler.position(), StreamPosition(3, 1, ("a", 9)))
        handler.close()
        self.assertEqual(handler.position(), StreamPosition(3, 1, ("a", 9)))
        self.assertEqual(
            JsonLinesHandler(self.path, logger=self.log).position(), handler.position()
        )

    def assertCut(self, whole: bytes, torn: bytes) -> JsonLinesHandler:
        """
        A file of C{whole} then C{torn} is cut back to C{whole} when it is
        opened, and one warning names the file and the bytes dropped.
        """
        self.write(whole + torn)
        handler = self.open()
        self.assertEqual(Path(self.path).read_bytes(), whole)
        self.assertEqual(len(self.observer), 1)
        event = self.observer[0]
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertEqual(event["dropped"], len(torn))
        text = formatEvent(event)
        self.assertIn(self.path, text)
        self.assertIn(f"{len(torn)} bytes", text)
        return handler

    def test_torn_line_cut(self) -> None:
        """
        A last line without its newline is cut off; the position is that of
        the line before, and the next record follows it on a line of its
        own.
        """
        whole = self.written(RECORDS[0], RECORDS[1])
        handler = self.assertCut(whole, self.written(RECORDS[2])[:30])
        self.assertEqual(handler.position(), StreamPosition(2, 0, ("b", 8)))
        handler.deliver(RECORDS[2])
        self.assertEqual(load_records(self.path), list(RECORDS))

    def test_whole_record_without_newline_cut(self) -> None:
        """
        A last record without its newline was not completely written: it is
        cut too, so it is not part of the position and is written again.
        """
        whole = self.written(RECORDS[0])
        handler = self.assertCut(whole, self.written(RECORDS[1])[:-1])
        self.assertEqual(handler.position(), StreamPosition(1, 0, ("a", 7)))

    def test_torn_view_line_cut(self) -> None:
        """
        A torn view line is cut like a torn delivery.
        """
        whole = self.written(RECORDS[0])
        handler = self.assertCut(whole, b'{"view": 1, "memb')
        self.assertEqual(handler.position(), StreamPosition(1, 0, ("a", 7)))

    def test_short_torn_line_cut(self) -> None:
        """
        A torn line shorter than a record's first key is cut.
        """
        self.assertCut(self.written(RECORDS[0]), b'{"in')

    def test_torn_invalid_json_with_newline_cut(self) -> None:
        """
        A last line that ends in a newline but is not JSON, and starts as a
        record does, is cut.
        """
        self.assertCut(self.written(RECORDS[0]), b'{"index": 2, "sen\n')

    def test_zero_bytes_cut(self) -> None:
        """
        Zero bytes at the end (left by a crash on some file systems) are
        cut.
        """
        self.assertCut(self.written(RECORDS[0]), b"\0" * 100)

    def test_only_torn_line(self) -> None:
        """
        A file that holds only a torn first record is cut to nothing.
        """
        handler = self.assertCut(b"", self.written(RECORDS[0])[:-5])
        self.assertEqual(handler.position(), StreamPosition())

    def test_long_torn_line(self) -> None:
        """
        A torn line longer than the reads is cut whole.
        """
        big = Delivery(2, "a", 8, b"y" * 200_000)
        self.assertCut(self.written(RECORDS[0]), self.written(big)[:150_000])

    def assertRefused(self, content: bytes, *words: str) -> None:
        """
        A file holding C{content} is refused with a L{ValueError} of one
        sentence naming the file (and C{words}), and is left as it was.
        """
        self.write(content)
        e = self.assertRaises(ValueError, JsonLinesHandler, self.path, self.log)
        message = str(e)
        self.assertIn(self.path, message)
        self.assertIn("is not a delivery log", message)
        self.assertNotIn("\n", message)
        for word in words:
            self.assertIn(word, message)
        self.assertEqual(Path(self.path).read_bytes(), content)
        self.assertEqual(len(self.observer), 0)

    def test_refuses_text(self) -> None:
        """
        A text file is refused, quoting its last line.
        """
        self.assertRefused(b"hello\nworld\n", "'world'")

    def test_refuses_text_without_newline(self) -> None:
        """
        A text file whose last line has no newline is refused, not cut.
        """
        self.assertRefused(b"hello\nworld", "'world'")

    def test_refuses_other_json(self) -> None:
        """
        JSON lines that are not records are refused.
        """
        self.assertRefused(b'{"level": "info"}\n{"level": "warn"}\n')

    def test_refuses_bad_record(self) -> None:
        """
        A whole last line that is JSON but not a valid record is refused,
        not cut as if it were torn.
        """
        self.assertRefused(
            self.written(RECORDS[0]) + b'{"view": 1, "members": 5, "index": 2}\n'
        )

    def test_refuses_other_start(self) -> None:
        """
        A file that ends with records of ours but starts with something else
        is refused, quoting its first line.
        """
        self.assertRefused(b"# notes\n" + self.written(RECORDS[0]), "first line")

    def test_refused_before_cut(self) -> None:
        """
        A file that is refused is not cut first, even when its end looks
        like a torn record.
        """
        self.assertRefused(b"# notes\n" + self.written(RECORDS[0])[:20])

    def test_refuses_binary(self) -> None:
        """
        A binary file is refused.
        """
        self.assertRefused(bytes(range(256)) * 4)

    def test_refused_by_build_handler(self) -> None:
        """
        Through L{build_handler} (what the tap calls) the refusal is one
        sentence naming the handler's specification.
        """
        self.write(b"hello\n")
        e = self.assertRaises(HandlerSpecError, build_handler, f"jsonl:{self.path}")
        self.assertEqual(
            str(e),
            f"Handler 'jsonl:{self.path}': {self.path} is not a delivery log"
            " written by the jsonl handler (its last line is 'hello'); give"
            " another file.",
        )


class FailingWrites:
    """
    Makes C{os.write} fail as a full disk does: it writes at most C{room}
    more bytes, then raises L{OSError} C{ENOSPC}.  It is patched for the
    whole test (the handler calls C{os.write} through the module), but
    limits nothing until a test sets C{room}.

    @ivar room: How many bytes may still be written, or L{None} for no
        limit.
    """

    def __init__(self, case: SynchronousTestCase) -> None:
        self.room: int | None = None
        self._write = os.write
        case.patch(os, "write", self.write)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if self.room is None:
            return self._write(fd, data)
        if self.room == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        taken = self._write(fd, bytes(data[: self.room]))
        self.room -= taken
        return taken


class JsonLinesFailedWriteTests(SynchronousTestCase):
    """
    A write that fails leaves L{JsonLinesHandler}'s file and position as
    they were, so that the same record can be given again.
    """

    def setUp(self) -> None:
        self.path = self.mktemp()
        self.disk = FailingWrites(self)
        self.handler = JsonLinesHandler(self.path)
        self.addCleanup(self.handler.close)
        self.handler.deliver(RECORDS[0])

    def test_partial_write_undone(self) -> None:
        """
        A record the disk took part of is cut back: the file holds only the
        whole lines before it and the position did not move.
        """
        self.disk.room = 10
        self.assertRaises(OSError, self.handler.deliver, RECORDS[1])
        self.assertEqual(Path(self.path).read_text(), EXPECTED_LINES[0])
        self.assertEqual(self.handler.position(), StreamPosition(1, 0, ("a", 7)))

    def test_nothing_written(self) -> None:
        """
        A record the disk took none of leaves the file and position as they
        were.
        """
        self.disk.room = 0
        e = self.assertRaises(OSError, self.handler.deliver, RECORDS[1])
        self.assertEqual(e.errno, errno.ENOSPC)
        self.assertRaises(OSError, self.handler.view_changed, VIEW)
        self.assertEqual(Path(self.path).read_text(), EXPECTED_LINES[0])
        self.assertEqual(self.handler.position(), StreamPosition(1, 0, ("a", 7)))

    def test_given_again(self) -> None:
        """
        Once there is room, the same record is written after the last whole
        line, and the file reads back with no hole and no torn line.
        """
        self.disk.room = 25
        self.assertRaises(OSError, self.handler.deliver, RECORDS[1])
        self.disk.room = None
        self.handler.deliver(RECORDS[1])
        self.handler.view_changed(VIEW)
        self.handler.deliver(RECORDS[2])
        self.assertEqual(
            load_records(self.path), [RECORDS[0], RECORDS[1], VIEW, RECORDS[2]]
        )
        self.assertEqual(self.handler.position(), StreamPosition(3, 1, ("a", 9)))

    def test_cut_fails(self) -> None:
        """
        When cutting the partial write back fails too, the next write cuts
        it first, so the torn line still does not stay.
        """
        self.disk.room = 10
        truncate = os.ftruncate
        calls: list[int] = []

        def failing(fd: int, size: int) -> None:
            calls.append(size)
            if len(calls) == 1:
                raise OSError(errno.EIO, "I/O error")
            truncate(fd, size)

        self.patch(os, "ftruncate", failing)
        self.assertRaises(OSError, self.handler.deliver, RECORDS[1])
        self.assertEqual(len(Path(self.path).read_bytes()), len(EXPECTED_LINES[0]) + 10)
        self.disk.room = None
        self.handler.deliver(RECORDS[1])
        self.assertEqual(Path(self.path).read_text(), "".join(EXPECTED_LINES[:2]))
        self.assertEqual(calls, [len(EXPECTED_LINES[0])] * 2)


class JsonLinesFullDiskTests(SynchronousTestCase):
    """
    L{JsonLinesHandler}, fed by a L{HandlerPump}, on a real file system that
    fills up: a 64 KiB tmpfs, which needs root to mount.
    """

    def setUp(self) -> None:
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            raise SkipTest("mounting a tiny tmpfs to fill needs root")
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        try:
            mounted = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", self.directory],
                capture_output=True,
                text=True,
            )
        except OSError as e:
            raise SkipTest(f"cannot run mount: {e}") from e
        if mounted.returncode != 0:
            raise SkipTest(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
        self.addCleanup(
            subprocess.run, ["umount", "-l", self.directory], capture_output=True
        )
        self.path = os.path.join(self.directory, "log.jsonl")
        self.filler = os.path.join(self.directory, "filler")

    def fill(self, size: int) -> None:
        """
        Take C{size} bytes of the file system with a file of its own.
        """
        Path(self.filler).write_bytes(b"\0" * size)

    def test_full_then_room(self) -> None:
        """
        When the disk fills, the file keeps only whole lines, the position
        stays at the last one and the pump is stuck at the next record,
        reported once; once there is room again, the file continues at
        exactly that record and ends holding every record, byte for byte as
        if the disk had never filled.
        """
        self.fill(32 * 1024)
        handler = JsonLinesHandler(self.path)
        self.addCleanup(handler.close)
        pump = HandlerPump([handler], retry_initial=1.0, retry_max=1.0)
        records: list[Delivery | ViewChange] = [
            Delivery(i, "ab"[i % 2], 100 + i, (b"%d " % i * 400)[:800])
            for i in range(1, 60)
        ]
        records.insert(20, ViewChange(1, ("a", "b"), 21))
        expected = "".join(record_to_json(r) + "\n" for r in records).encode()
        self.assertGreater(len(expected), 40 * 1024)
        pump.put(records)

        first = pump.run(0.0)
        stuck = pump.stuck
        assert stuck is not None
        done = len(first.records)
        self.assertGreater(done, 1)
        self.assertLess(done, len(records))
        self.assertEqual(first.records, records[:done])
        self.assertEqual(stuck.record, records[done])
        self.assertIn("No space left on device", stuck.reason)
        self.assertEqual(first.events, [HandlerStopped(stuck)])
        on_disk = Path(self.path).read_bytes()
        self.assertEqual(on_disk, expected[: len(on_disk)])
        self.assertEqual(load_records(self.path), records[:done])
        last = [r for r in records[:done] if isinstance(r, Delivery)][-1]
        self.assertEqual(handler.position().index, last.index)
        self.assertEqual(handler.position().last, (last.sender, last.clock))

        # Still full: the retry fails, changes nothing and says nothing.
        again = pump.run(1.0)
        self.assertEqual(again, Pumped([], []))
        self.assertEqual(Path(self.path).read_bytes(), on_disk)
        self.assertEqual(handler.position().index, last.index)

        os.remove(self.filler)
        resumed = pump.run(2.0)
        self.assertEqual(resumed.records, records[done:])
        self.assertEqual(resumed.events, [HandlerResumed(pump_stuck(stuck, 2), 2.0)])
        self.assertEqual(Path(self.path).read_bytes(), expected)
        self.assertEqual(load_records(self.path), records)
        self.assertEqual(handler.position(), StreamPosition(59, 1, ("b", 159)))
        handler.close()
        self.assertEqual(JsonLinesHandler(self.path).position(), handler.position())


def pump_stuck(stuck: Stuck, attempts: int) -> Stuck:
    """
    C{stuck} as it stands after C{attempts} failures.
    """
    return attrs.evolve(stuck, attempts=attempts)
