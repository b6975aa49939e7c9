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


def test_a_misspelt_key_names_the_key_it_is_close_to(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "retrival: {top_k: 3}\npacking: {budget_token: 100, zzz: 1}\nllm: {type: openai, model: m, modle: x}\n"
        "tiers: [{type: llama_cpp, model: a, context_windw: 512}]\n"
        "ingest: {chunking: {profiles: {markdown: {max_tokns: 100}}}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    text = "\n".join(info.value.problems)
    assert "retrival: unknown key; did you mean 'retrieval'?" in text
    assert "packing.budget_token: unknown key; did you mean 'budget_tokens'?" in text
    assert "llm.modle: unknown key; did you mean 'model'?" in text
    assert "packing.zzz: unknown key (remove it" in text  # nothing close: no guess
    # inside a list of a union of configs (the tiers): the keys of the tier's kinds
    assert "tiers[0].context_windw: unknown key; did you mean 'context_window'?" in text
    # under a mapping of configs (a profile's name is the user's own key)
    assert "profiles.markdown.max_tokns: unknown key; did you mean 'max_tokens'?" in text


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


def test_a_file_extends_a_preset_or_another_file(tmp_path: Path) -> None:
    quarter = tmp_path / "quarter.yaml"
    quarter.write_text(
        "extends: lean\ncollection: mine\n"
        "retrieval: {top_k: 12, second_hop: 4}\n"
        "packing: {budget_tokens: 2048, select_sentences: false, sentence_model: null}\n"
        "compression: {type: sentences, target_tokens: 132}\n"
    )
    cfg = load_config(quarter)
    lean = load_config("lean")
    assert cfg.name == "lean" and cfg.collection == "mine"
    assert cfg.retrieval.top_k == 12 and cfg.retrieval.fusion == lean.retrieval.fusion  # one key changed
    assert cfg.packing.sentence_model is None and cfg.prompt.system == lean.prompt.system
    # a file over a file, by a path relative to the file itself
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "tight.yaml").write_text(
        "extends: ../quarter.yaml\ncompression: {target_tokens: 96}\n"
    )
    tight = load_config(tmp_path / "sub" / "tight.yaml")
    assert tight.compression.target_tokens == 96 and tight.retrieval.second_hop == 4


def test_extends_errors_name_the_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("extends: b.yaml\n")
    b.write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="loop"):
        load_config(a)
    a.write_text("extends: nope\n")
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        load_config(a)
    a.write_text("extends: lean\nretrieval: {top_kk: 3}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(a)
    assert str(a) in str(exc.value) and any("top_kk" in p for p in exc.value.problems)
