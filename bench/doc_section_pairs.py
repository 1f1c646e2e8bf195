"""Human-style queries from package documentation: (section title, the first code block under it).

A third source of short, human-style supervision, measured before it is built into the corpus: the
reStructuredText and Markdown files of the corpus's unpacked sources (`~/.cache/codesieve-corpus/
sources`, the packages of data/corpus/manifest.json only) give a pair for each section title of 2
to 14 words ("Following Redirects", "ETA and Countdown") and the first code block of 2 to 40 lines
under it that looks like code (not a shell line, a folder tree or prose). Change logs, licences,
tests and translated docs are skipped. The pairs are decontaminated like the corpus
(`trainer.corpus.decontaminate`: no benchmark code or query, no code twice) and written in the
trainer's pairs format with `"source": "doc-section"`.

    python bench/doc_section_pairs.py --out ~/.cache/codesieve-exp/doc-sections.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from codesieve.trainer.benchmarks import find_benchmarks_root
from codesieve.trainer.corpus.decontaminate import decontaminate, load_contamination

ROOT = Path(__file__).resolve().parents[1]
SOURCES = Path.home() / ".cache" / "codesieve-corpus" / "sources"
UNDERLINE = re.compile(r"""^([=\-~^"'`#*+<>_:.])\1{2,}\s*$""")
CODE_DIRECTIVE = re.compile(r"^\s*\.\. (code-block|code|sourcecode)::")
GENERIC_TITLES = {
    "installation", "install", "usage", "example", "examples", "license", "licence", "changelog",
    "changes", "api", "contributing", "introduction", "overview", "getting started", "quickstart",
    "quick start", "features", "requirements", "documentation", "summary", "description", "notes",
    "note", "todo", "authors", "credits", "history", "release notes", "tutorial", "reference",
    "basic usage", "testing", "development", "support", "faq",
}  # fmt: skip
SKIPPED_FILES = re.compile(r"(?i)change|history|news|licen|authors|contrib|release")
SKIPPED_PATHS = re.compile(r"(^|/)(tests?|specs?)/|/(doc|docs)\.[a-z]{2}/|/locale/|/i18n/")
LOOKS_LIKE_CODE = re.compile(
    r"(\w\(|\w\s*=\s*\S|^\s*(import|from|def|class|fn|func|let|const|var|require|>>>)\b)", re.M
)
PROSE_LINE = re.compile(r"^[A-Z][a-z]+( [a-z]+){4,}[.:]?$", re.M)
NOT_CODE = re.compile(r"^\s*(\$|pip |npm |cargo |go get|gem |\.\. )|[├└│]")


def title_query(line: str) -> str | None:
    """A section title as a query, or None for one too short, too long or too generic."""
    title = re.sub(r"[`*_]+", "", line).strip().strip("#:").strip()
    words = re.findall(r"[A-Za-z][A-Za-z0-9_']*", title)
    if (
        not 2 <= len(words) <= 14
        or title.lower() in GENERIC_TITLES
        or not re.fullmatch(r"[\x20-\x7e]+", title)
    ):
        return None
    if re.match(r"^(v(ersion)?\s*)?\d", title.lower()) or re.search(r"[{}<>|\\]|\.\.|https?:", title):
        return None
    return title


def indented_block(lines: list[str], start: int) -> tuple[str, int]:
    """The indented block from `start` (blank lines and directive options first skipped), and where it ends."""
    end = start
    while end < len(lines) and (not lines[end].strip() or re.match(r"^\s*:\w+:", lines[end])):
        end += 1
    block: list[str] = []
    indent = None
    while end < len(lines):
        line = lines[end]
        if line.strip():
            depth = len(line) - len(line.lstrip())
            indent = depth if indent is None else indent
            if depth == 0 or depth < indent:
                break
            line = line[indent:]
        block.append(line)
        end += 1
    return "\n".join(block).strip("\n"), end


def rst_sections(text: str) -> Iterator[tuple[str, str]]:
    lines = text.split("\n")
    title, at = None, 0
    while at < len(lines):
        line = lines[at]
        under = lines[at + 1] if at + 1 < len(lines) else ""
        if line.strip() and UNDERLINE.match(under) and not UNDERLINE.match(line):
            title, at = title_query(line), at + 2
        elif title and (
            CODE_DIRECTIVE.match(line) or (line.rstrip().endswith("::") and ".." not in line[:3])
        ):
            code, at = indented_block(lines, at + 1)
            if code:
                yield title, code
                title = None
        else:
            at += 1


def markdown_sections(text: str) -> Iterator[tuple[str, str]]:
    lines = text.split("\n")
    title, at = None, 0
    while at < len(lines):
        heading = re.match(r"^#{1,6}\s+(.*)", lines[at])
        if heading:
            title = title_query(heading.group(1))
        elif title and lines[at].strip().startswith("```"):
            end = next(
                (i for i in range(at + 1, len(lines)) if lines[i].strip().startswith("```")), len(lines)
            )
            code = "\n".join(lines[at + 1 : end]).strip("\n")
            if code:
                yield title, code
                title = None
            at = end
        at += 1


def is_code(code: str) -> bool:
    return (
        2 <= code.count("\n") + 1 <= 40
        and bool(LOOKS_LIKE_CODE.search(code))
        and not NOT_CODE.search(code)
        and len(PROSE_LINE.findall(code)) <= 1
        and not re.match(r"^\s*[\w./-]+\s*$", code)
    )


def package_pairs(package: dict[str, str], folder: Path) -> Iterator[dict[str, str]]:
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(SOURCES))
        if (
            path.suffix not in (".rst", ".md")
            or SKIPPED_FILES.search(path.name)
            or SKIPPED_PATHS.search(relative)
        ):
            continue
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for title, code in (rst_sections if path.suffix == ".rst" else markdown_sections)(text):
            if is_code(code):
                yield {
                    "query": title,
                    "code": code,
                    "doc_code": code,
                    "language": package["language"],
                    "path": relative,
                    "name": "",
                    "source": "doc-section",
                    **{key: package[key] for key in ("registry", "version", "licence")},
                    "package": package["name"],
                }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="pairs file to write (JSONL)")
    parser.add_argument("--manifest", type=Path, default=ROOT / "data" / "corpus" / "manifest.json")
    args = parser.parse_args()
    found: list[dict[str, str]] = []
    for package in json.loads(args.manifest.read_text(encoding="utf-8"))["packages"]:
        prefix = f"{package['registry']}-{package['name']}-{package['version']}"
        folders = sorted(SOURCES.glob(f"{prefix}*"))
        if folders:
            found.extend(package_pairs(package, folders[0]))
    pairs = [{"id": f"doc-section:{number}", **pair} for number, pair in enumerate(found)]
    kept, dropped = decontaminate(pairs, load_contamination(find_benchmarks_root()), set())
    args.out.write_text("".join(json.dumps(pair) + "\n" for pair in kept), encoding="utf-8")
    print(f"{len(kept)} pairs -> {args.out} (dropped: {dict(dropped) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
