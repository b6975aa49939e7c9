"""Config loading: presets, every-problem-at-once validation, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ragcli.config import PipelineConfig, dump_config, load_config, parse_config, preset_names
from ragcli.errors import ConfigError


def test_presets_are_listed_and_load() -> None:
    names = preset_names()
    assert {"local", "openai", "server"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert cfg.name == name


def test_default_is_local_and_free() -> None:
    cfg = load_config()
    assert cfg.store.type == "qdrant_edge"
    assert cfg.llm.type == "llama_cpp"
    # no paid backend by default, anywhere
    assert PipelineConfig().llm.type == "llama_cpp"


def test_three_mistakes_are_all_reported_with_their_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "retrieval": {"top_k": 0},  # below minimum
                "reranker": {"type": "colbert"},  # unknown variant
                "llm": {"type": "openai", "model": "gpt-4o-mini", "api_key": "sk-secret"},  # unknown key
            }
        )
    )
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    problems = info.value.problems
    assert len(problems) == 3, problems
    text = "\n".join(problems)
    assert "retrieval.top_k" in text
    assert "reranker.type" in text and "'colbert'" in text and "cross_encoder" in text
    assert "llm.api_key: unknown key" in text
    assert "sk-secret" not in str(info.value)


def test_unknown_preset_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown preset 'nope'; presets are: .*local"):
        load_config("nope")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_invalid_yaml_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("retrieval: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(f)


def test_top_level_must_be_mapping() -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_config(["a"])


def test_overrides_and_dump_roundtrip() -> None:
    cfg = load_config("local", overrides={"collection": "other", "retrieval": {"top_k": 3}})
    assert cfg.collection == "other" and cfg.retrieval.top_k == 3
    again = parse_config(yaml.safe_load(dump_config(cfg)))
    assert again == cfg


def test_secrets_are_env_names_only() -> None:
    cfg = parse_config({"llm": {"type": "openai", "model": "gpt-4o-mini", "api_key_env": "MY_KEY"}})
    assert cfg.llm.type == "openai" and cfg.llm.api_key_env == "MY_KEY"
