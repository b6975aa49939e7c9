"""Every YAML pipeline shown in the README is a valid config."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ragcli.config import parse_config

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_readme_yaml_block_is_a_valid_config() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 2
    for block in blocks:
        parse_config(yaml.safe_load(block), source="README")
