"""Just enough Markdown for the docs checks: ATX headings and fenced code blocks.

Headings inside fenced blocks (a ``# comment`` in a shell or Python example) are not
headings. Line numbers are 1-based, as an editor shows them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<text>.*?)(?:\s+#+)?\s*$")


@dataclass(frozen=True)
class Heading:
    line: int
    level: int
    text: str

    @property
    def plain(self) -> str:
        """The text without backticks: ``platform send TASK_NAME`` for `` `platform send TASK_NAME` ``."""
        return self.text.replace("`", "").strip()


@dataclass(frozen=True)
class Block:
    """A fenced code block: ``opening`` is the fence's line, ``closing`` the closing fence's
    (or one past the end of the text for a block left open), ``body`` the lines between."""

    opening: int
    closing: int
    info: str
    body: tuple[str, ...]


@dataclass(frozen=True)
class Document:
    lines: tuple[str, ...]
    headings: tuple[Heading, ...]
    blocks: tuple[Block, ...]

    def section(self, heading: Heading) -> tuple[int, int]:
        """The lines ``heading`` rules: from it up to the next heading of its level or above."""
        end = len(self.lines) + 1
        for other in self.headings:
            if other.line > heading.line and other.level <= heading.level:
                end = other.line
                break
        return heading.line, end

    def headings_in(self, heading: Heading) -> list[Heading]:
        start, end = self.section(heading)
        return [h for h in self.headings if start < h.line < end]

    def blocks_in(self, heading: Heading) -> list[Block]:
        start, end = self.section(heading)
        return [b for b in self.blocks if start < b.opening < end]


def parse(text: str) -> Document:
    lines = text.splitlines()
    headings: list[Heading] = []
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line)
        if fence:
            mark = fence["fence"]
            closing = index + 1
            while closing < len(lines):
                candidate = lines[closing].strip()
                if candidate.startswith(mark) and set(candidate) == {mark[0]}:
                    break
                closing += 1
            blocks.append(Block(index + 1, closing + 1, fence["info"].strip(),
                                tuple(lines[index + 1:closing])))
            index = closing + 1
            continue
        heading = HEADING.match(line)
        if heading:
            headings.append(Heading(index + 1, len(heading["hashes"]), heading["text"]))
        index += 1
    return Document(tuple(lines), tuple(headings), tuple(blocks))
