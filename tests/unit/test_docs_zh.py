"""The Chinese pages stay in step with the English ones they translate.

Each English heading has its counterpart in the same place (same level, same order,
the same code in backticks), every fenced example is the English one unchanged (code
is not translated, so a changed command shows up here), prose headings are in Chinese,
and every relative link of a Chinese page leads to a file that exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.markdown import Document, Heading, parse

ROOT = Path(__file__).resolve().parents[2]
ZH = ROOT / "docs" / "zh"

#: Chinese page -> the English page it translates.
PAGES = {
    "README.md": ROOT / "README.md",
    "writing-plugins.md": ROOT / "docs" / "writing-plugins.md",
    "migrating-from-celery.md": ROOT / "docs" / "migrating-from-celery.md",
}

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
CODE = re.compile(r"`[^`]+`")
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def pair(name: str) -> tuple[Document, Document]:
    return (parse(PAGES[name].read_text(encoding="utf-8")),
            parse((ZH / name).read_text(encoding="utf-8")))


def where(path: Path, heading: Heading) -> str:
    return f"{path.relative_to(ROOT)}:{heading.line} `{'#' * heading.level} {heading.text}`"


def is_prose(heading: Heading) -> bool:
    """A heading with words outside its code spans (`## 1. Layout`, not `### Queue`)."""
    return len(CODE.sub(" ", heading.text).split()) > 1


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_english_heading_has_its_counterpart(name: str) -> None:
    english, chinese = pair(name)
    problems = []
    for index, source in enumerate(english.headings):
        if index >= len(chinese.headings):
            problems.append(f"{where(PAGES[name], source)} has no counterpart: add it")
            continue
        target = chinese.headings[index]
        if target.level != source.level or CODE.findall(target.text) != CODE.findall(source.text):
            problems.append(f"{where(PAGES[name], source)} should be translated at "
                            f"{where(ZH / name, target)}: same level, same `code`")
        elif is_prose(source) and not CJK.search(target.text):
            problems.append(f"{where(ZH / name, target)} is not translated")
    for extra in chinese.headings[len(english.headings):]:
        problems.append(f"{where(ZH / name, extra)} has no English heading: add it there first")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(PAGES))
def test_examples_are_the_english_ones_unchanged(name: str) -> None:
    english, chinese = pair(name)
    assert len(chinese.blocks) == len(english.blocks), (
        f"docs/zh/{name} has {len(chinese.blocks)} fenced examples, "
        f"{PAGES[name].relative_to(ROOT)} has {len(english.blocks)}")
    for source, target in zip(english.blocks, chinese.blocks, strict=True):
        assert (target.info, target.body) == (source.info, source.body), (
            f"docs/zh/{name}:{target.opening} differs from the example at "
            f"{PAGES[name].relative_to(ROOT)}:{source.opening}: copy it unchanged")


@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_prose_is_chinese(name: str) -> None:
    _, chinese = pair(name)
    inside = {line for block in chinese.blocks for line in range(block.opening, block.closing + 1)}
    prose = [text for number, text in enumerate(chinese.lines, 1)
             if number not in inside and CODE.sub("", text).strip(" |-#>*`:.")]
    translated = [text for text in prose if CJK.search(text)]
    assert len(translated) >= 0.6 * len(prose), (
        f"docs/zh/{name}: only {len(translated)} of {len(prose)} lines of prose are in Chinese")


@pytest.mark.parametrize("name", sorted(PAGES))
def test_relative_links_lead_somewhere(name: str) -> None:
    _, chinese = pair(name)
    inside = {line for block in chinese.blocks for line in range(block.opening, block.closing + 1)}
    broken = []
    for number, text in enumerate(chinese.lines, 1):
        if number in inside:
            continue
        for match in LINK.finditer(text):
            target = match["target"].split("#", 1)[0]
            if not target or "://" in target or target.startswith("mailto:"):
                continue
            if not (ZH / target).resolve().exists():
                broken.append(f"docs/zh/{name}:{number} links to {match['target']}")
    assert not broken, "\n".join(broken)


def test_the_english_pages_lead_to_the_chinese_ones() -> None:
    for page in (ROOT / "README.md", ROOT / "docs" / "README.md"):
        assert "zh/README.md" in page.read_text(encoding="utf-8"), f"{page.name} links no 中文 page"
