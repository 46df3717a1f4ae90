"""Parse YAML once, keeping the line of every key and list item, to point errors at lines.

`yaml.safe_load` throws away positions, so we compose the node tree ourselves,
note where each location starts, then construct the data from that same tree
(exactly what `safe_load` does). Locations are paths such as
`("jobs", 2, "styles", 0)`, written `jobs[2].styles[0]` in messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import Problem

PathKey = str | int
Loc = tuple[PathKey, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
# A gallery of 10,000 photos reused in 50 entries is 500,000; aliases nested a
# few deep can stand for billions, which no step after parsing could go through.
MOST_VALUES = 2_000_000


def _without_base_60(tag: str, regexp: re.Pattern) -> re.Pattern:
    """An int or float resolver that leaves anything with a colon as text."""
    if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
        return regexp
    return re.compile(r"(?!.*:)" + regexp.pattern, regexp.flags)


class _ManifestLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but `1e4` and `2.5e1` are numbers: YAML 1.1 wants a
    dot and a signed exponent in a float (2.5e+1) and reads them as text; YAML
    1.2 and every person read a number. One
    rule for every key (settings, sweeps and `run:` alike); quoted, it is text.
    And no key takes a date, so `2024-06-01` (a folder of that day's photos)
    stays the text it was written as, not a datetime.date. Nor is `1:30` the
    YAML 1.1 base-60 number 90: `job_timeout: 1:30` meant 90 minutes if anything,
    and as text it is refused with its line instead of read as 90 seconds."""

    yaml_implicit_resolvers = {
        first: [(tag, _without_base_60(tag, regexp)) for tag, regexp in resolvers
                if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_ManifestLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


def where(path: Loc) -> str:
    """`("jobs", 2, "styles", 0)` -> `jobs[2].styles[0]`; `()` -> `""` (the whole file)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass
class LineMap:
    """1-based line of each key (for mapping entries) and item (for list entries)."""

    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, path: Loc) -> int | None:
        # A location that is not in the file (a missing key, a value we made up)
        # takes the line of the nearest enclosing one that is.
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None


class YamlSyntaxError(Exception):
    """The text is not YAML we can read; `line` is yaml's own (1-based), when it has one."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class ParsedYaml:
    data: Any
    lines: LineMap
    duplicate_keys: list[tuple[Loc, str, int]]  # (mapping path, key, line of its first use)


# What the parser's words usually mean in a manifest (its own words stay, for a search).
_SYNTAX_HINTS = (
    ("'\\t' that cannot start any token", "YAML indents with spaces, not tabs"),
    ("found unhashable key", "a value starting with { or [ is read as a mapping or list; quote it"),
    ("mapping values are not allowed here", "a value containing ': ' needs quotes"),
    ("expected <block end>", "this line's indentation does not match the lines above it"),
)


_VALUE = re.compile(r"\s*(?:-\s+)?(?:[^\s:#'\"][^:#]*:\s+)?(?P<value>[{\[*].*?)\s*(?:#.*)?$")
_TEMPLATE_FIELD = re.compile(r"\{(content|style|variant)\}")


def _quoting_hint(text: str, line: int | None, message: str) -> str | None:
    """The fix for the two values a manifest most often leaves unquoted, shown
    as the line should read: a name template (`{style}/{content}`, a mapping to
    YAML) and a glob (`*.jpg`, an alias to YAML)."""
    lines = text.splitlines()
    match = _VALUE.fullmatch(lines[line]) if line is not None and line < len(lines) else None
    if match is None:
        return None
    value = match.group("value")
    if _TEMPLATE_FIELD.search(value):
        return f"a name template must be quoted: '{value}'"
    if "alias" in message and "*" in value:
        if value.startswith("[") and value.endswith("]"):
            quoted = "[" + ", ".join(f"'{item.strip()}'" for item in value[1:-1].split(",")) + "]"
        else:
            quoted = f"'{value}'"
        return f"* starts a YAML alias; quote a glob: {quoted}"
    return None


def parse_yaml(text: str) -> ParsedYaml:
    """`yaml.safe_load(text)` plus the line map. Raises YamlSyntaxError, nothing else."""
    loader = _ManifestLoader(text)
    try:
        node = loader.get_single_node()
        lines, duplicates = LineMap(), []
        if node is not None:
            # Walk before constructing: construction flattens `<<` merge keys in place.
            if _expanded_values(node, {}, set()) > MOST_VALUES:
                raise YamlSyntaxError(None, f"aliases (*name) in it spell out more than {MOST_VALUES:,} values; "
                                            "is an anchor repeated inside another, many times over?")
            _walk(node, (), lines.lines, duplicates, set())
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        parts = [p for p in (exc.context, exc.problem) if p]
        message = ", ".join(parts)
        hint = _quoting_hint(text, mark.line if mark else None, message) or next(
            (hint for cause, hint in _SYNTAX_HINTS if cause in message), None)
        raise YamlSyntaxError(mark.line + 1 if mark else None,
                              f"{message} ({hint})" if hint else message) from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        # e.g. a whole number of more than 4300 digits, or `!!timestamp 2024-13-45`.
        raise YamlSyntaxError(None, str(exc) or type(exc).__name__) from None
    finally:
        loader.dispose()
    return ParsedYaml(data, lines, duplicates)


def _walk(
    node: Node,
    path: Loc,
    lines: dict[Loc, int],
    duplicates: list[tuple[Loc, str, int]],
    walked: set[int],
) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    # An alias is the anchored node itself: walked once, it is not walked again
    # (nine aliases of nine aliases of ... would take exponential time), and
    # a deeper location under it takes the alias's own line.
    if id(node) in walked:
        return
    walked.add(id(node))
    if isinstance(node, MappingNode):
        first_use: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in first_use:
                duplicates.append((path, key, first_use[key]))
            first_use.setdefault(key, line)
            # The key's line, not the value's: a block value starts on the next line.
            lines[path + (key,)] = line
            _walk(value_node, path + (key,), lines, duplicates, walked)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), lines, duplicates, walked)


def _expanded_values(node: Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many values the node stands for once every alias in it is spelled
    out: linear time, each node counted once and its size remembered."""
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in open_nodes:  # an alias inside its own anchor: a loop, counted once
        return 1
    open_nodes.add(id(node))
    if isinstance(node, MappingNode):
        children = [child for pair in node.value for child in pair]
    else:
        children = node.value if isinstance(node, SequenceNode) else []
    total = 1 + sum(_expanded_values(child, sizes, open_nodes) for child in children)
    open_nodes.discard(id(node))
    sizes[id(node)] = total
    return total


class Problems:
    """Collects problems for one file, each pinned to a line; drops exact repeats.

    The same mistake in the top-level settings shows up in every job built from
    it, but the user should read it once.
    """

    def __init__(self, file: str, lines: LineMap) -> None:
        self.file = file
        self.lines = lines
        self.items: list[Problem] = []

    def add(self, path: Loc, message: str, line_path: Loc | None = None) -> None:
        line = self.lines.line(path if line_path is None else line_path)
        problem = Problem(self.file, line, where(path), message)
        if problem not in self.items:
            self.items.append(problem)

    def sorted(self) -> list[Problem]:
        """In file order, so a reader can fix them top to bottom."""
        return sorted(self.items, key=lambda p: p.line or 0)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)
