"""The router's LM view from the real packaged SmolLM2 under transformers: one row per prompt, the same vector for a
prompt alone or padded in a batch, and a clear error for a layer the model does not have."""

from __future__ import annotations

import numpy as np
import pytest

from ragcli.errors import InputError, ResourceMissing
from ragcli.resources import local_llm_gguf

pytestmark = pytest.mark.integration

pytest.importorskip("transformers")
pytest.importorskip("gguf")
try:
    local_llm_gguf()
except ResourceMissing as exc:
    pytest.skip(str(exc), allow_module_level=True)

from ragcli.generation.lm_vectors import LMSpec, LMVectorizer  # noqa: E402


def test_lm_vectorizer_runs_the_packaged_lm() -> None:
    lm = LMVectorizer(LMSpec(layer=4), batch_size=8)
    prompts = [
        "What is 17 times 23?",
        "Which river flows through Paris? Answer with one word, and explain why in a long sentence.",
        "",
    ]
    batch = lm.vectors(prompts)
    assert batch.shape == (3, 576) and batch.dtype == np.float32 and np.isfinite(batch).all()
    alone = lm.vectors(prompts[:1])[0]
    # right padding is masked out of the mean: the short prompt's vector does not depend on its batch
    assert np.abs(alone - batch[0]).max() <= 1e-3 * np.abs(alone).max()
    cos = float(batch[0] @ batch[1] / np.linalg.norm(batch[0]) / np.linalg.norm(batch[1]))
    assert cos < 0.9999
    with pytest.raises(InputError, match=r"has 30 blocks; pick a layer from 1 to 30, got 31"):
        LMVectorizer(LMSpec(layer=31)).vectors(["hello"])
