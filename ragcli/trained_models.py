"""Models trained on the user's labels (`ragcli train reranker|embedder|fusion|sentence-model`): where they live,
their cards, their gates.

A trained model is a folder `<home>/<kind>/<NAME>` holding the model and a card (JSON) that says what it was
trained on and whether it passed its deployment gate. Configs name it `trained:NAME`. The stages read the card
here (never the training layer) so that a config naming a model which failed its gate warns when it is built,
and an embedder's version (which changes when it is re-trained under the same name) reaches the ingest
fingerprint, so collections embedded with the old weights are re-embedded.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal, TypeVar

from ragcli.errors import InputError, ResourceMissing
from ragcli.resources import ragcli_home

log = logging.getLogger(__name__)

T = TypeVar("T")

TRAINED_PREFIX = "trained:"
PACKAGED_PREFIX = "packaged:"
Kind = Literal["rerankers", "embedders", "fusions", "sentence_models", "unit_models"]
CARDS: dict[str, str] = {
    "rerankers": "ragcli_reranker.json",
    "embedders": "ragcli_embedder.json",
    "fusions": "ragcli_fusion.json",
    "sentence_models": "ragcli_sentence_model.json",
    "unit_models": "ragcli_unit_model.json",
}
"""The card's file name per kind of model."""


_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
"""A saved model's or session's name: it becomes a file or folder under the home, so no path separator, and no
leading '.' (which would allow '.' and '..', that is the folder above, or hide the folder)."""


def check_name(name: str, what: str) -> str:
    """`name` when it is a valid name for something saved under the home (a router, a cache verifier), else an
    `InputError` naming it and the allowed form: 1-64 letters, digits, '.', '_' or '-', not starting with '.'.

    Args:
        what: What is named, for the message (`router`, `verifier`).
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InputError(
            f"{what} name {name!r} is not valid; use 1-64 letters, digits, '.', '_' or '-', not starting with "
            "'.' (a plain name, no path: it is saved as a folder under the ragcli home; e.g. support-1)"
        )
    return name


def trained_dir(kind: Kind, home: Path | None = None) -> Path:
    """The folder holding trained models of one kind, one sub-folder per name."""
    return (home or ragcli_home()) / kind


def read_card(model_dir: Path, kind: Kind) -> dict[str, Any] | None:
    """The model's card, or None when there is none (a pretrained model, a folder from elsewhere)."""
    path = model_dir / CARDS[kind]
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        log.warning("model card %s is not valid JSON; ignoring it", path)
        return None
    return card if isinstance(card, dict) else None


def model_folder(spec: str, kind: Kind, packaged_dir: Path, home: Path | None = None) -> Path:
    """The folder a config's model name points at: `packaged:NAME` under `packaged_dir` (inside ragcli),
    `trained:NAME` under `<home>/<kind>`, else the folder given, or the folder of the card file given."""
    if spec.startswith(PACKAGED_PREFIX):
        return packaged_dir / spec[len(PACKAGED_PREFIX) :]
    if spec.startswith(TRAINED_PREFIX):
        return trained_dir(kind, home) / spec[len(TRAINED_PREFIX) :]
    given = Path(spec).expanduser()
    return given.parent if given.suffix == ".json" else given


def read_card_json(path: Path, fix: str) -> Any:
    """The parsed JSON of a model's card file; `fix` ends the error when it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ResourceMissing(f"{str(path)!r} is not valid JSON ({exc}); {fix}") from exc


def load_card_model(
    spec: str,
    kind: Kind,
    packaged_dir: Path,
    home: Path | None,
    parse: Callable[[dict[str, Any], str], T],
    *,
    what: str,
    train: str,
    config_key: str,
) -> T:
    """The card model a config names (`packaged:NAME`, `trained:NAME` or a card file or its folder), parsed by
    `parse(card, where)`; one that failed its deployment gate still loads, with a warning (the config asked for
    it).

    Args:
        what: The kind of model in messages (`unit model`).
        train: The command that trains one, for the message when none is there.
        config_key: The config key that names it, for that message.

    Raises:
        ResourceMissing: nothing readable there, naming what is available.
    """
    folder = model_folder(spec, kind, packaged_dir, home)
    card = CARDS[kind]
    path = folder / card
    if not path.is_file():
        have = sorted(PACKAGED_PREFIX + p.parent.name for p in packaged_dir.glob(f"*/{card}"))
        have += sorted(TRAINED_PREFIX + p.parent.name for p in trained_dir(kind, home).glob(f"*/{card}"))
        raise ResourceMissing(
            f"{what} {spec!r} not found at {str(path)!r} (have: {', '.join(have) or 'none'}); name one of "
            f"those or a card file, train one with `{train}`, or remove {config_key}"
        )
    data = read_card_json(path, "retrain it")
    if not isinstance(data, dict):
        raise ResourceMissing(f"{str(path)!r} is not a {what} card (a JSON object)")
    model = parse(data, repr(str(path)))
    warn_if_gated_out(spec, folder, kind)
    return model


def gate_of(model_dir: Path, kind: Kind) -> dict[str, Any] | None:
    """The deployment-gate verdict recorded in the card, or None when the model was never gated."""
    card = read_card(model_dir, kind)
    gate = card.get("gate") if card else None
    return gate if isinstance(gate, dict) else None


def warn_if_gated_out(model: str, model_dir: Path, kind: Kind) -> bool:
    """Warn when a configured model failed its deployment gate; returns True when it did.

    A model without a verdict (pretrained, or trained before gates existed) passes quietly: the gate judges
    only what it measured.
    """
    gate = gate_of(model_dir, kind)
    if gate is None or gate.get("deployable", True):
        return False
    log.warning(
        "%s %r FAILED its deployment gate: %s %.4f vs %s %.4f on %s held-out queries (delta %+.4f, "
        "CI [%+.4f, %+.4f]); it is not expected to beat the ranking it replaces. Retrain it with more "
        "labels or remove it from the config",
        kind[:-1],
        model,
        gate.get("candidate", "model"),
        float(gate.get("candidate_mean", 0.0)),
        gate.get("baseline", "baseline"),
        float(gate.get("baseline_mean", 0.0)),
        gate.get("queries", "?"),
        float(gate.get("delta", 0.0)),
        float(gate.get("ci_low", 0.0)),
        float(gate.get("ci_high", 0.0)),
    )
    return True


def model_version(model_dir: Path, kind: Kind) -> str | None:
    """A short id of the weights a trained model holds (from its card), or None without a card.

    Re-training under the same name changes it, so an index fingerprint that includes it goes stale.
    """
    card = read_card(model_dir, kind)
    if not card:
        return None
    version = card.get("weights_sha") or card.get("trained_at")
    return str(version)[:12] if version else None


class CardModel:
    """A small model saved as one JSON card: its dataclass fields, plus a free-form `card` dict (what it was
    trained on, its gate's verdict) flattened beside them. Mixed into dataclasses that have a `card` field."""

    card: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)  # type: ignore[call-overload]
        return {**data.pop("card"), **data}

    def save_card(self, folder: Path, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def checked_fields(
        cls, data: Mapping[str, Any], where: str, *, what: str, fmt: str, features: Sequence[str], fix: str
    ) -> dict[str, Any]:
        """`card_fields` of a card whose format and feature list this ragcli reads; else an error naming both
        and `fix`."""
        if data.get("format") != fmt or list(data.get("features", ())) != list(features):
            raise ResourceMissing(
                f"{where} is not a {what} this ragcli reads (format {data.get('format')!r}, expected "
                f"{fmt!r} with features {', '.join(features)}); {fix}"
            )
        return cls.card_fields(data)

    @classmethod
    def card_fields(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """The constructor's keyword arguments from a card: known fields as they are, the rest into `card`."""
        known = set(cls.__dataclass_fields__) - {"card"}  # type: ignore[attr-defined]
        return {
            **{k: v for k, v in data.items() if k in known},
            "card": {k: v for k, v in data.items() if k not in known},
        }
