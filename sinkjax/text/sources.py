"""Where the text experiments' words come from: texts every machine has, or a file you pass.

Every Python installation ships its standard library as source, so two texts need no download
and are the same on every machine with the same Python minor version (the stdlib changes between
minor versions):

- code: the top-level `*.py` files of `sysconfig.get_paths()["stdlib"]`, sorted by name and
  concatenated up to a byte budget (`stdlib_code`);
- prose: the module, class and function docstrings of the stdlib files that the code did not
  take, in the same order (`stdlib_docstrings`), so the two domains share no text.

Any UTF-8 file (tiny Shakespeare, say) replaces the prose (`read_prose`). Each text comes back as
a `Text`: its bytes and a description of its source, which `describe` turns into the record's
entry (source, bytes, sha256).
"""

import ast
import dataclasses
import hashlib
import pathlib
import sys
import sysconfig
from collections.abc import Collection
from typing import Any

_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def python_minor() -> str:
    """The running interpreter's "MAJOR.MINOR", which fixes the stdlib texts."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclasses.dataclass(frozen=True)
class Text:
    """Raw data a run read (a domain's text, or a file such as the shipped counts).

    Attributes:
        data: the bytes (UTF-8).
        source: where they came from, e.g. "Python 3.11 stdlib source, 12 files" or a path.
        files: the stdlib files (names) the text was taken from, in order; () for a file.
    """

    data: bytes
    source: str
    files: tuple[str, ...] = ()


def describe(text: Text) -> dict[str, Any]:
    """The record's entry for `text`: {"source", "bytes", "sha256"}."""
    return {
        "source": text.source,
        "bytes": len(text.data),
        "sha256": hashlib.sha256(text.data).hexdigest(),
    }


def stdlib_paths() -> list[pathlib.Path]:
    """The top-level `*.py` files of the running interpreter's standard library, sorted by name.

    Raises:
        FileNotFoundError: the interpreter ships no stdlib source.
    """
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(stdlib.glob("*.py"))
    if not paths:
        raise FileNotFoundError(f"no Python source found under {stdlib}; the stdlib is missing")
    return paths


def stdlib_code(max_bytes: int) -> Text:
    """The first `max_bytes` bytes of the sorted top-level stdlib files, concatenated."""
    chunks, names, total = [], [], 0
    for path in stdlib_paths():
        if total >= max_bytes:
            break
        chunks.append(path.read_bytes())
        names.append(path.name)
        total += len(chunks[-1])
    source = f"Python {python_minor()} stdlib source, {len(names)} files from {names[0]}"
    return Text(b"".join(chunks)[:max_bytes], source, tuple(names))


def stdlib_docstrings(max_bytes: int, exclude: Collection[str] = ()) -> Text:
    """The first `max_bytes` bytes of the docstrings of the stdlib files not in `exclude`.

    Module, class and function docstrings (indentation cleaned by `ast.get_docstring`), file by
    file in sorted order and in source order within a file, separated by blank lines. Read with
    `ast`, so nothing is imported.

    Args:
        max_bytes: the byte budget.
        exclude: file names to skip (the code's files, so prose and code share no text).
    """
    chunks, names, total = [], [], 0
    for path in stdlib_paths():
        if total >= max_bytes:
            break
        if path.name in exclude:
            continue
        tree = ast.parse(path.read_bytes())
        nodes = sorted(
            (node for node in ast.walk(tree) if isinstance(node, _DOCUMENTED)),
            key=lambda node: getattr(node, "lineno", 0),
        )
        docs = [doc.encode() + b"\n\n" for doc in filter(None, map(ast.get_docstring, nodes))]
        if docs:
            chunks.extend(docs)
            names.append(path.name)
            total += sum(map(len, docs))
    source = f"Python {python_minor()} stdlib docstrings, {len(names)} files"
    return Text(b"".join(chunks)[:max_bytes], source, tuple(names))


def read_prose(path: str | pathlib.Path, max_bytes: int | None = None) -> Text:
    """The first `max_bytes` bytes (all with None) of a prose file.

    Raises:
        FileNotFoundError: `path` is not a file (the message names --prose).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prose file {path} not found; pass --prose PATH to a text file")
    data = path.read_bytes()
    return Text(data if max_bytes is None else data[:max_bytes], str(path))


def prose_and_code(
    prose_path: str | pathlib.Path | None, max_prose_bytes: int, max_code_bytes: int
) -> tuple[Text, Text]:
    """(prose, code): the code from the stdlib, the prose from `prose_path` or, with None, the
    docstrings of the stdlib files the code did not take."""
    code = stdlib_code(max_code_bytes)
    if prose_path is None:
        return stdlib_docstrings(max_prose_bytes, exclude=code.files), code
    return read_prose(prose_path, max_prose_bytes), code
