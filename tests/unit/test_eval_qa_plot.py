"""The cost-quality plot: a PNG with curves and baseline points (matplotlib from the `bench` extra)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.eval.plot import Series, plot_tradeoff


def test_plot_tradeoff_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = plot_tradeoff(
        tmp_path / "sub" / "curve.png",
        [Series("ragcli lean", [120, 250, 480], [0.55, 0.7, 0.8], ["128", "256", "512"])],
        [Series("LlamaIndex top_k=5", [560], [0.78]), Series("oracle", [210], [1.0])],
        title="test",
    )
    assert out.is_file()
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_matplotlib_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import builtins

    from ragcli.errors import ResourceMissing

    real_import = builtins.__import__

    def no_mpl(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    with pytest.raises(ResourceMissing, match=r"pip install matplotlib"):
        plot_tradeoff(tmp_path / "x.png", [Series("a", [1], [0.5])])
