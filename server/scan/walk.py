"""Find a workspace's source files, honouring ignore files the way git does.

The walk (`scan_workspace`) and the single-path check (`WorkspaceFilter.classify`) apply the same rules,
in this order, to every directory entry:

1. Ignore rules. `.git`, `.hg` and `.svn` directories are always skipped. Otherwise the last matching
   pattern wins, searching these layers from highest to lowest priority:
   - the `exclude` setting (gitignore syntax, relative to the root): a match always excludes;
   - for each directory from the deepest ancestor up to the root, its `.codesieveignore`, then its
     `.gitignore` (so a `.codesieveignore` overrides the `.gitignore` beside it and above it, and a
     deeper `.gitignore` overrides a shallower `.codesieveignore`);
   - `<root>/.git/info/exclude`;
   - `DEFAULT_EXCLUDES`, which any ignore file can override (for example `!build/`).
   Patterns are relative to the directory holding their file; `.gitignore` files above the root are not
   read. An ignored directory is pruned: as in git, a negation cannot re-include a file below an ignored
   directory (re-include the directory, then re-ignore what you do not want inside it).
2. Names that cannot be encoded as UTF-8 are skipped as "bad-name"; names with spaces or newlines are fine.
3. Symlinks are resolved. A target outside the resolved root is "symlink-outside"; a dangling link is
   "unreadable"; a link cycle, or a directory link to an ancestor or an already-walked directory, is
   "symlink-loop". The real tree is walked first, so a directory reached both directly and through a
   link is indexed under its real path; links to pruned directories are followed. Files reached more than
   once (file links) are indexed once, preferring the path with no link in it, else the smallest path;
   the others count as "duplicate".
4. Files: "not-source" when `language_of(relpath)` is None, "not-regular" for FIFOs, sockets and devices
   (never opened), "too-large" above `max_file_size` (from stat, not read), "binary" when the first
   8 KiB hold a NUL byte, "unreadable" when stat or open fails.

Each skipped entry is counted once: a pruned directory counts once, not its contents.

Ignore patterns are compiled and matched in `ignore_rules.py`; a single file is opened and read in
`safe_read.py`.
"""

from __future__ import annotations

import errno
import heapq
import os
import stat
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..languages import language_for_path
from .ignore_rules import (
    DEFAULT_EXCLUDES,
    IGNORE_FILES,
    VCS_DIRS,
    Layer,
    compile_rules,
    last_match,
    layers_match,
    read_ignore_file,
)
from .safe_read import SNIFF_BYTES, SourceError, open_regular

LanguageOf = Callable[[str], str | None]

MAX_EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to index."""

    path: str  # workspace-relative POSIX path
    abspath: Path
    language: str
    size: int
    mtime_ns: int


@dataclass
class ScanResult:
    """The files a walk found, and what it skipped and why."""

    files: list[SourceFile] = field(default_factory=list)  # sorted by path
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> count
    examples: dict[str, list[str]] = field(default_factory=dict)  # reason -> up to 5 relative paths

    def skip(self, reason: str, relpath: str) -> None:
        """Count one skipped entry and keep it as an example if there are few."""
        self.skipped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < MAX_EXAMPLES:
            shown.append(relpath)


@dataclass(frozen=True, slots=True)
class _Dir:
    """A directory to walk: where it is, how it was reached, and the ignore layers above it."""

    path: str
    rel: str  # "" for the root, else "a/b/"
    real: str
    layers: tuple[Layer, ...]
    direct: bool  # reached without following any symlink
    key: tuple[int, int]
    is_link: bool = False  # this directory entry is itself a symlink


@dataclass(frozen=True, slots=True)
class _Candidate:
    file: SourceFile
    real: str
    direct: bool


_Verdict = str | _Dir | _Candidate


class WorkspaceFilter:
    """The rules of the walk, answerable for one path at a time (for files an editor reports changed).

    Ignore files are read once and cached: make a new filter when one of them changes. One limit:
    when several links lead to the same file that is not itself indexed, the walk keeps only the
    smallest path, but `classify` accepts each of them.
    """

    def __init__(
        self,
        root: Path,
        exclude: Sequence[str] = (),
        max_file_size: int = 1_000_000,
        language_of: LanguageOf | None = None,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self.root_real = os.path.realpath(self.root)
        self.max_file_size = max_file_size
        self.language_of = language_of if language_of is not None else language_for_path
        self._exclude = compile_rules(exclude)
        self._own_layers: dict[str, tuple[Layer, ...]] = {}
        base: list[Layer] = [("", compile_rules(DEFAULT_EXCLUDES))]
        info_exclude = read_ignore_file(os.path.join(self.root, ".git", "info", "exclude"))
        if info_exclude:
            base.append(("", info_exclude))
        self._base_layers = tuple(base)

    def root_dir(self) -> _Dir:
        """The walk's starting point; raises NotADirectoryError with a clear message if there is none."""
        try:
            info = os.stat(self.root)
        except OSError as exc:
            raise NotADirectoryError(f"{self.root}: workspace root cannot be read ({exc.strerror})") from exc
        if not stat.S_ISDIR(info.st_mode):
            raise NotADirectoryError(f"{self.root}: workspace root is not a directory")
        key = (info.st_dev, info.st_ino)
        return _Dir(str(self.root), "", self.root_real, self._base_layers, True, key)

    def layers_in(self, directory: _Dir, names: frozenset[str] | None = None) -> tuple[Layer, ...]:
        """All ignore layers that apply inside `directory` (`names`: its entries, if already listed)."""
        own = self._own_layers.get(directory.rel)
        if own is None:
            found = []
            for name in IGNORE_FILES:
                if names is None or name in names:
                    rules = read_ignore_file(os.path.join(directory.path, name))
                    if rules:
                        found.append((directory.rel, rules))
            own = self._own_layers[directory.rel] = tuple(found)
        return directory.layers + own

    def _name_reason(self, rel: str, name: str, is_dir: bool, layers: Sequence[Layer]) -> str | None:
        if is_dir and name in VCS_DIRS:
            return "ignored"
        probe = rel + "/" if is_dir else rel
        if last_match(self._exclude, probe) or layers_match(layers, probe):
            return "ignored"
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            return "bad-name"
        return None

    def _resolve_link(self, path: str) -> tuple[str, os.stat_result] | str:
        real = os.path.realpath(path)
        prefix = self.root_real if self.root_real.endswith(os.sep) else self.root_real + os.sep
        if real != self.root_real and not real.startswith(prefix):
            return "symlink-outside"
        try:
            return real, os.stat(path)
        except OSError as exc:
            return "symlink-loop" if exc.errno == errno.ELOOP else "unreadable"

    def examine(
        self,
        parent: _Dir,
        layers: Sequence[Layer],
        name: str,
        kind: tuple[bool, bool],
        lstat: Callable[[], os.stat_result],
    ) -> _Verdict:
        """Judge one entry of `parent`; `kind` is (is a symlink, is a directory without following)."""
        is_link, plain_dir = kind
        rel, path = parent.rel + name, os.path.join(parent.path, name)
        target = self._resolve_link(path) if is_link else None
        is_dir = (
            plain_dir if target is None else isinstance(target, tuple) and stat.S_ISDIR(target[1].st_mode)
        )
        reason = self._name_reason(rel, name, is_dir, layers)
        if reason is not None:
            return reason
        if isinstance(target, str):
            return target
        try:
            real, info = target if target is not None else (os.path.join(parent.real, name), lstat())
        except OSError:
            return "unreadable"
        direct = parent.direct and target is None
        if is_dir:
            key = (info.st_dev, info.st_ino)
            return _Dir(path, rel + "/", real, tuple(layers), direct, key, target is not None)
        return self._examine_file(rel, path, real, info, direct)

    def _examine_file(self, rel: str, path: str, real: str, info: os.stat_result, direct: bool) -> _Verdict:
        language = self.language_of(rel)
        if language is None:
            return "not-source"
        if not stat.S_ISREG(info.st_mode):
            return "not-regular"
        if info.st_size > self.max_file_size:
            return "too-large"
        try:
            head = open_regular(path, self.max_file_size, SNIFF_BYTES)
        except SourceError as exc:
            return exc.reason
        if b"\0" in head:
            return "binary"
        source = SourceFile(rel, self.root / rel, language, info.st_size, info.st_mtime_ns)
        return _Candidate(source, real, direct)

    def classify(self, relpath: str) -> SourceFile | str:
        """The SourceFile the walk would index at `relpath`, or the reason it would skip it."""
        parts = PurePosixPath(relpath).parts
        if not parts or parts[0] == "/" or ".." in parts:
            return "outside"
        parent = self._descend(parts[:-1], follow_links=True)
        if isinstance(parent, str):
            return parent
        verdict = self._examine_path(parent, parts[-1])
        if isinstance(verdict, _Dir):
            entered = self._enter(verdict, self._reals_above(parts[:-1]), follow_links=True)
            return entered if isinstance(entered, str) else "directory"
        if isinstance(verdict, str):
            return verdict
        if not verdict.direct:
            real_rel = os.path.relpath(verdict.real, self.root_real).replace(os.sep, "/")
            if isinstance(self._classify_direct(real_rel), SourceFile):
                return "duplicate"
        return verdict.file

    def accepts(self, relpath: str) -> bool:
        """Whether the walk would index the file at `relpath`."""
        return isinstance(self.classify(relpath), SourceFile)

    def _classify_direct(self, relpath: str) -> SourceFile | str:
        parts = PurePosixPath(relpath).parts
        parent = self._descend(parts[:-1], follow_links=False)
        if isinstance(parent, str):
            return parent
        verdict = self._examine_path(parent, parts[-1])
        return verdict.file if isinstance(verdict, _Candidate) and verdict.direct else "not-direct"

    def _examine_path(self, parent: _Dir, name: str) -> _Verdict:
        try:
            info = os.lstat(os.path.join(parent.path, name))
        except OSError:
            return "unreadable"
        kind = (stat.S_ISLNK(info.st_mode), stat.S_ISDIR(info.st_mode))
        return self.examine(parent, self.layers_in(parent), name, kind, lambda: info)

    def _descend(self, parts: Sequence[str], follow_links: bool) -> _Dir | str:
        """The directory `parts` leads to if the walk would enter it, else the reason it would not."""
        directory = self.root_dir()
        reals = {directory.real}
        for name in parts:
            verdict = self._examine_path(directory, name)
            if isinstance(verdict, _Candidate):
                return "not-a-directory"
            if isinstance(verdict, str):
                return verdict
            entered = self._enter(verdict, reals, follow_links)
            if isinstance(entered, str):
                return entered
            reals.add(verdict.real)
            directory = verdict
        return directory

    def _reals_above(self, parts: Sequence[str]) -> set[str]:
        """Real paths of the root and of the directories `parts` leads through."""
        reals = {self.root_real}
        for depth in range(1, len(parts) + 1):
            directory = self._descend(parts[:depth], follow_links=True)
            if isinstance(directory, _Dir):
                reals.add(directory.real)
        return reals

    def _enter(self, directory: _Dir, reals: set[str], follow_links: bool) -> _Dir | str:
        """`directory` if the walk would list it, else why not (a repeat, or no permission)."""
        if directory.real in reals or (directory.is_link and self._walked_directly(directory, follow_links)):
            return "symlink-loop"
        if not os.access(directory.path, os.R_OK | os.X_OK):
            return "unreadable"
        return directory

    def _walked_directly(self, directory: _Dir, follow_links: bool) -> bool:
        """Whether the walk reaches `directory`'s real path without links (so a link to it is a repeat)."""
        if not follow_links:
            return True
        real_rel = os.path.relpath(directory.real, self.root_real)
        parts = () if real_rel == "." else PurePosixPath(real_rel.replace(os.sep, "/")).parts
        return isinstance(self._descend(parts, follow_links=False), _Dir)


class _Walk:
    """One iterative walk: the real tree first, then directories reached through links."""

    def __init__(self, workspace: WorkspaceFilter) -> None:
        self.workspace = workspace
        self.result = ScanResult()
        self.candidates: list[_Candidate] = []
        self.visited: set[tuple[int, int]] = set()
        self.stack: list[_Dir] = []
        self.linked: list[tuple[str, _Dir]] = []  # heap by relative path

    def run(self) -> ScanResult:
        root = self.workspace.root_dir()
        self.visited.add(root.key)
        self.stack.append(root)
        while self.stack or self.linked:
            if self.stack:
                self._walk_dir(self.stack.pop())
            else:
                self._follow(heapq.heappop(self.linked)[1])
        self._keep_unique()
        return self.result

    def _follow(self, directory: _Dir) -> None:
        if directory.key in self.visited:
            self.result.skip("symlink-loop", directory.rel.rstrip("/"))
            return
        self.visited.add(directory.key)
        self.stack.append(directory)

    def _walk_dir(self, directory: _Dir) -> None:
        try:
            with os.scandir(directory.path) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            self.result.skip("unreadable", directory.rel.rstrip("/") or ".")
            return
        layers = self.workspace.layers_in(directory, frozenset(entry.name for entry in entries))
        subdirs: list[_Dir] = []
        for entry in entries:
            verdict = self._examine(directory, layers, entry)
            if isinstance(verdict, str):
                self.result.skip(verdict, directory.rel + entry.name)
            elif isinstance(verdict, _Candidate):
                self.candidates.append(verdict)
            elif verdict.is_link:
                heapq.heappush(self.linked, (verdict.rel, verdict))
            elif verdict.key in self.visited:
                self.result.skip("symlink-loop", verdict.rel.rstrip("/"))
            else:
                self.visited.add(verdict.key)
                subdirs.append(verdict)
        self.stack.extend(reversed(subdirs))

    def _examine(self, directory: _Dir, layers: Sequence[Layer], entry: os.DirEntry[str]) -> _Verdict:
        try:
            is_link = entry.is_symlink()
            kind = (is_link, not is_link and entry.is_dir(follow_symlinks=False))
        except OSError:
            return "unreadable"
        return self.workspace.examine(
            directory, layers, entry.name, kind, lambda: entry.stat(follow_symlinks=False)
        )

    def _keep_unique(self) -> None:
        """Index each real file once: under its link-free path if it has one, else its smallest path."""
        best: dict[str, _Candidate] = {}
        for candidate in sorted(self.candidates, key=lambda c: (not c.direct, c.file.path)):
            if candidate.real in best:
                self.result.skip("duplicate", candidate.file.path)
            else:
                best[candidate.real] = candidate
        self.result.files = sorted((c.file for c in best.values()), key=lambda f: f.path)


def scan_workspace(
    root: Path,
    *,
    max_file_size: int = 1_000_000,
    exclude: Sequence[str] = (),
    language_of: LanguageOf | None = None,
) -> ScanResult:
    """Walk `root` and return its source files (sorted by path) and what was skipped, by reason."""
    return _Walk(WorkspaceFilter(root, exclude, max_file_size, language_of)).run()
