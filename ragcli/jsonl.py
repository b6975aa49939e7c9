"""Reading a JSONL input file with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragcli.errors import InputError


def read_objects(path: Path, what: str, expected: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSONL file.

    Args:
        what: what the file is, for the error when it is missing ("questions file").
        expected: what a line should hold, for the errors on a bad line (e.g. 'a `question` per line').

    Raises:
        InputError: the file is missing, or a line is not JSON or not an object.
    """
    if not path.is_file():
        raise InputError(f"{what} {str(path)!r} does not exist; give a JSONL file with {expected}")
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{path}:{n}: not valid JSON ({exc}); expected {expected}") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{n}: expected a JSON object with {expected}")
        yield n, row
