"""
The package's floors: imports only go downward (app -> api -> net -> core,
tools on top) and the pure floor touches no reactor, socket, clock or
randomness.
"""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import isis_twisted

#: Each floor's rank: a module may import its own floor or a lower one.
FLOORS = {"core": 0, "net": 1, "api": 2, "app": 3, "tools": 4}

#: What the pure floor may not import, at any depth of its modules.
IMPURE = ("twisted", "socket", "time", "random", "select", "asyncio", "threading")

#: Modules every floor may import: the public seams and the package face.
SEAMS = ("isis_twisted.interfaces",)

PACKAGE = Path(isis_twisted.__file__).parent


def imported(source: str) -> list[str]:
    """
    Every module a source imports, wherever the import statement is
    (functions and C{TYPE_CHECKING} blocks included).
    """
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module == "isis_twisted":
                names.extend(f"isis_twisted.{a.name}" for a in node.names)
            else:
                names.append(node.module)
    return names


def violations(floor: str, module: str, source: str) -> list[str]:
    """
    What is wrong with the imports of one module of C{floor}, as sentences.
    """
    wrong: list[str] = []
    for name in imported(source):
        parts = name.split(".")
        if floor == "core" and parts[0] in IMPURE:
            wrong.append(f"{module} (core) imports {name}")
        if parts[0] != "isis_twisted" or name in SEAMS or len(parts) < 2:
            continue
        target = parts[1]
        if target not in FLOORS:
            wrong.append(f"{module} imports {name}, which is in no floor")
        elif FLOORS[target] > FLOORS[floor]:
            wrong.append(f"{module} ({floor}) imports {name} ({target}), a floor up")
    return wrong


class LayoutTests(SynchronousTestCase):
    """
    The floors as built.
    """

    def test_every_module_is_in_a_floor(self) -> None:
        """
        Besides the package face and the seams, every module lives in one of
        the floors.
        """
        top = sorted(p.name for p in PACKAGE.glob("*.py"))
        self.assertEqual(top, ["__init__.py", "interfaces.py"])
        floors = sorted(
            p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()
        )
        self.assertEqual(floors, sorted(FLOORS))

    def test_imports_go_downward(self) -> None:
        """
        No module imports a floor above its own, and no core module imports
        Twisted, sockets, clocks or randomness.
        """
        wrong: list[str] = []
        seen = 0
        for floor in FLOORS:
            for path in sorted((PACKAGE / floor).glob("*.py")):
                seen += 1
                module = f"isis_twisted.{floor}.{path.stem}"
                wrong.extend(violations(floor, module, path.read_text("utf-8")))
        self.assertEqual(wrong, [])
        self.assertGreater(seen, 30)

    def test_seams_import_only_core(self) -> None:
        """
        The public seams name core types only (under C{TYPE_CHECKING}).
        """
        source = (PACKAGE / "interfaces.py").read_text("utf-8")
        ours = [n for n in imported(source) if n.startswith("isis_twisted.")]
        self.assertEqual(
            [n for n in ours if not n.startswith("isis_twisted.core.")], []
        )
        self.assertNotEqual(ours, [])

    def test_upward_import_is_caught(self) -> None:
        """
        The rule catches a lower floor importing a higher one, inside a
        function too.
        """
        source = "def f():\n    from isis_twisted.app.tap import Options\n"
        self.assertEqual(
            violations("net", "isis_twisted.net.x", source),
            ["isis_twisted.net.x (net) imports isis_twisted.app.tap (app), a floor up"],
        )

    def test_impure_core_is_caught(self) -> None:
        """
        The rule catches a core module reading the clock or the reactor.
        """
        source = "import time\nfrom twisted.internet import reactor\n"
        self.assertEqual(
            violations("core", "isis_twisted.core.x", source),
            [
                "isis_twisted.core.x (core) imports time",
                "isis_twisted.core.x (core) imports twisted.internet",
            ],
        )

    def test_flat_module_is_caught(self) -> None:
        """
        An import of a module outside the floors is named.
        """
        self.assertEqual(
            violations("api", "isis_twisted.api.x", "from isis_twisted import node\n"),
            ["isis_twisted.api.x imports isis_twisted.node, which is in no floor"],
        )
