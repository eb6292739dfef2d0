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


# Drop the float and timestamp resolvers: those scalars stay strings (exact text). YAML 1.1 ints also
# include octal (010), hex (0x10), binary, base-60 (1:30) and underscores; only decimal digits resolve to
# int here, the rest stay text so that the field that expects a number names them (money.number_hint).
_DROPPED = ("tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int")
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in _DROPPED]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"),
                              list("-+0123456789"))
# A text longer than this is not a scenario, price book, settings or mapping file: refused before parsing
# (parsing 50 MB of YAML takes many seconds).
MAX_YAML_BYTES = 4 * 1024 * 1024


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
    if len(text) > MAX_YAML_BYTES:
        raise BadInput(f"text is larger than {MAX_YAML_BYTES // (1024 * 1024)} MB; not a costkit YAML file",
                       path=path)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except RecursionError:
        raise BadInput("malformed YAML: nested too deeply", path=path) from None
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
        with open(path, "rb") as fh:
            raw = fh.read(MAX_YAML_BYTES + 1)
        if len(raw) > MAX_YAML_BYTES:
            raise BadInput(f"file is larger than {MAX_YAML_BYTES // (1024 * 1024)} MB; not a costkit YAML file",
                           path=path)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise BadInput("file not found", path=path)
    except IsADirectoryError:
        raise BadInput("is a directory, not a file", path=path)
    except UnicodeDecodeError as e:
        raise BadInput(f"not UTF-8 text (byte {e.start})", path=path)
    except OSError as e:
        raise BadInput(f"cannot read: {e.strerror or e}", path=path)
    return load_yaml_text(text, path)
