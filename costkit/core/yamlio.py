"""YAML that keeps line numbers and exact numbers.

Mappings come back as `Mapping` (a dict with `.line` and `.key_lines`), so errors can name the line.
Floats and timestamps are not resolved: they stay as their source text, so `0.12` is parsed later as an
exact Decimal and never passes through a binary float.
"""
from __future__ import annotations

import re

import yaml

from costkit.core.errors import BadInput


class Mapping(dict):
    line: int = 0
    key_lines: dict

    def line_of(self, key) -> int:
        return self.key_lines.get(key, self.line)


class Sequence(list):
    line: int = 0
    item_lines: list


class _Loader(yaml.SafeLoader):
    pass


# Drop the float and timestamp resolvers: those scalars stay strings (exact text).
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp")]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _mapping(loader, node):
    loader.flatten_mapping(node)
    m = Mapping()
    m.line = node.start_mark.line + 1
    m.key_lines = {}
    for k_node, v_node in node.value:
        key = loader.construct_object(k_node, deep=True)
        if key in m:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", k_node.start_mark)
        m[key] = loader.construct_object(v_node, deep=True)
        m.key_lines[key] = k_node.start_mark.line + 1
    return m


def _sequence(loader, node):
    s = Sequence(loader.construct_object(n, deep=True) for n in node.value)
    s.line = node.start_mark.line + 1
    s.item_lines = [n.start_mark.line + 1 for n in node.value]
    return s


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load_yaml_text(text: str, path) -> object:
    """Parse YAML text; a syntax error becomes one BadInput line naming the file and line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        problem = re.sub(r"\s+", " ", f"{e.problem or e.context or 'invalid YAML'}").strip()
        raise BadInput(f"malformed YAML: {problem}", path=path, line=line)
    except yaml.YAMLError as e:
        raise BadInput("malformed YAML: " + re.sub(r"\s+", " ", str(e)), path=path)


def load_yaml_file(path) -> object:
    """Read and parse a YAML file (UTF-8)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise BadInput("file not found", path=path)
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"cannot read: {e.__class__.__name__}: {e}", path=path)
    return load_yaml_text(text, path)
