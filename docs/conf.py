"""
Sphinx configuration for the isis-twisted documentation.

Docstrings are written in Twisted's epytext style (C{code}, L{link},
@param ...); L{epytext_to_rest} turns them into reStructuredText as autodoc
reads them, so the API reference renders them properly.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from sphinx.util.docstrings import prepare_docstring

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

project = "isis-twisted"
author = "the isis-twisted developers"
copyright = "2026, the isis-twisted developers"
release = "0.1.0"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "isis_sequence",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_generated/*.md", "README*", "benchmarks/*.md"]
myst_heading_anchors = 3
html_theme = "furo"
html_title = "isis-twisted"
html_static_path = ["_static"]
autodoc_member_order = "bysource"
autoclass_content = "both"
# Twisted's own docstrings (inherited __init__s) are not ours to render.
autodoc_inherit_docstrings = False
autodoc_typehints = "signature"
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    # Document each name where it is defined, not where it is re-exported.
    "ignore-module-all": True,
}
suppress_warnings = ["myst.xref_missing"]

_FIELDS = {
    "param": "param",
    "type": "type",
    "ivar": "ivar",
    "cvar": "cvar",
    "var": "var",
    "return": "return",
    "returns": "return",
    "rtype": "rtype",
    "raise": "raises",
    "raises": "raises",
    "see": "seealso",
    "note": "note",
}
_MARKUP = {"C": "``{}``", "L": ":py:obj:`{}`", "I": "*{}*", "B": "**{}**", "U": "{}"}
_FIELD = re.compile(r"^(\s*)@(\w+)(\s+[^:]+)?:")


def _inline(text: str) -> str:
    """
    Replace epytext inline markup (with nested braces) by reST.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        if (
            text[i] in _MARKUP
            and text[i + 1 : i + 2] == "{"
            and (i == 0 or not text[i - 1].isalnum())
        ):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            inner = text[i + 2 : j - 1]
            kind = text[i]
            if kind == "C":
                inner = inner.replace("``", "` `")
                out.append(_MARKUP[kind].format(inner) if inner else "")
            elif kind == "L":
                target = inner.split("<")[-1].rstrip(">").strip()
                out.append(_MARKUP[kind].format(target))
            else:
                out.append(_MARKUP[kind].format(_inline(inner)))
            i = j
            # reST needs a break between a role and a plural "s".
            if i < len(text) and text[i].isalnum():
                out.append("\\ ")
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def epytext_to_rest(lines: list[str]) -> list[str]:
    """
    Convert one docstring's lines from epytext to reStructuredText.
    """
    converted = []
    for line in lines:
        match = _FIELD.match(line)
        if match and match.group(2) in _FIELDS:
            indent, name, arg = match.group(1), match.group(2), match.group(3) or ""
            line = f"{indent}:{_FIELDS[name]}{arg}:" + line[match.end() :]
        converted.append(_inline(line))
    # A field list must be set off from the paragraph before it.
    out: list[str] = []
    for line in converted:
        if (
            line.lstrip().startswith(":")
            and out
            and out[-1].strip()
            and not out[-1].lstrip().startswith(":")
            and not out[-1].startswith((" ", "\t"))
        ):
            out.append("")
        out.append(line)
    return out


def _process(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what == "class":
        init = getattr(obj, "__init__", None)
        owner = getattr(init, "__module__", None) or ""
        if not owner.startswith(("isis_twisted", "examples")):
            # A constructor inherited from Twisted: show the class's own
            # docstring only.
            lines[:] = prepare_docstring(obj.__doc__ or "")
    lines[:] = epytext_to_rest(lines)


def setup(app: Any) -> None:
    """
    Hook the docstring conversion into autodoc.
    """
    app.connect("autodoc-process-docstring", _process)
