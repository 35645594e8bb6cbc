"""What to tell a plugin author whose plugin raised while it was imported.

The error and where it happened in the plugin's own files (file, line, the line's
code, the plugin frames that led there), not in importlib's; with ``--debug``
(``PLATFORM_DEBUG``) the whole traceback as well.
"""

from __future__ import annotations

import importlib.util
import os
import traceback
from pathlib import Path

#: Set by ``platform --debug``: import failures carry the whole traceback.
full_tracebacks = False

#: Plugin frames shown at most, innermost last.
FRAMES = 5


def _wanted() -> bool:
    return full_tracebacks or os.environ.get("PLATFORM_DEBUG", "").lower() not in (
        "", "0", "false", "no")


def _roots(target: str) -> list[Path]:
    """The files or folders of the entry point's top-level module."""
    top = target.partition(":")[0].partition(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [Path(p).resolve() for p in spec.submodule_search_locations]
    return [Path(spec.origin).resolve()] if spec.origin else []


def _inside(filename: str, roots: list[Path]) -> bool:
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return False
    return any(path == root or root in path.parents for root in roots)


def describe(target: str, exc: BaseException) -> str:
    """``ZeroDivisionError: division by zero, at .../plugin.py:12 in <module>: `x = 1 / 0```
    and, when asked for, the traceback."""
    text = f"{type(exc).__name__}: {exc}"
    roots = _roots(target)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _inside(f.filename, roots)]
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        code = (exc.text or "").strip()
        text += f", at {exc.filename}:{exc.lineno}" + (f": `{code}`" if code else "")
    elif frames:
        last = frames[-1]
        text += f", at {last.filename}:{last.lineno} in {last.name}" + (
            f": `{last.line.strip()}`" if last.line else "")
        if len(frames) > 1:
            path = " <- ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}"
                               for f in reversed(frames[-FRAMES:]))
            text += f" (plugin frames, innermost first: {path})"
    if _wanted():
        text += "\n" + "".join(traceback.format_exception(exc)).rstrip()
    else:
        text += "; rerun with --debug (or PLATFORM_DEBUG=1) for the whole traceback"
    return text
