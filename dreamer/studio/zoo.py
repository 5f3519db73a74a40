"""The zoo in the studio: which models are converted, where the others would come from,
and converting one as `python -m models NAME` does (from the mirror the studio was
started with, else downloaded from the zoo's URLs). The page sends a zoo name only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from converters.spec import ConversionError
from models.convert import Converted, convert_zoo
from models.fetch import in_mirror
from models.registry import REGISTRY, ZooModel, lookup

ZOO_HEADERS = ["model", "status", "description", "licence"]


def is_converted(root: Path, model: ZooModel) -> bool:
    return (root / model.name / "network.json").is_file()


def in_the_mirror(mirror: Path | None, model: ZooModel) -> bool:
    """Whether the mirror holds every file the model needs (its class list aside)."""
    if mirror is None:
        return False
    try:
        return all(in_mirror(mirror, model, source) is not None for source in model.sources)
    except ConversionError:  # two candidate files: converting says which
        return False


def zoo_rows(root: Path, mirror: Path | None) -> list[list[str]]:
    """`ZOO_HEADERS` per zoo model; its status: converted, or where converting takes it from."""
    def status(model: ZooModel) -> str:
        if is_converted(root, model):
            return "converted"
        return "convert from the mirror" if in_the_mirror(mirror, model) else "convert (download)"

    return [[m.name, status(m), m.description, m.licence] for m in REGISTRY]


def convertible(root: Path) -> list[str]:
    """The zoo's models not converted yet in `root`."""
    return [m.name for m in REGISTRY if not is_converted(root, m)]


def zoo_model(name: str | None, root: Path) -> ZooModel:
    """The zoo model the page named (its own name, not a path), not converted yet."""
    model = lookup(name) if name else None
    if model is None or model.name != name:
        raise ValueError(f"{name!r} is not a model of the zoo" if name else
                         "choose a zoo model to convert")
    if is_converted(root, model):
        raise ValueError(f"{name} is converted already")
    return model


def convert(name: str | None, root: Path, mirror: Path | None,
            on_step: Callable[[int], None] = lambda index: None) -> Converted:
    """Convert the zoo model `name` into `root`, as `python -m models NAME` does, calling
    `on_step(i)` as the i-th of models.convert.CONVERSION_STEPS starts (a download's progress goes
    through tqdm)."""
    return convert_zoo(zoo_model(name, root), mirror, root=root, on_step=on_step)
