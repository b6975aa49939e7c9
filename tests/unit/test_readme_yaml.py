"""Every YAML pipeline shown in the README is a valid config (loaded as a user's file is: `extends:` resolved)."""

from __future__ import annotations

import re
from pathlib import Path

from ragcli.config import load_config

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_readme_yaml_block_is_a_valid_config(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 2
    for i, block in enumerate(blocks):
        f = tmp_path / f"readme_{i}.yaml"
        f.write_text(block, encoding="utf-8")
        load_config(f)
