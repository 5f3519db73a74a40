"""The studio's "Layers & classes" tab: a model's layer table, its class names by search,
and an uploaded image's top classes (the same helpers as `python -m dreamer classify`)."""

from __future__ import annotations

from pathlib import Path

from converters.network import Network
from dreamer.loops.classify import classified
from dreamer.plan.targets import classifier_of, labels_for
from dreamer.studio.cache import ModelCache
from models.labels import ClassList, search

LAYER_HEADERS = ["#", "layer", "type", "output", "smallest input"]
CLASS_HEADERS = ["index", "names"]
TOP_HEADERS = ["probability", "index", "name"]
TOP = 5


def layer_table(network: Network) -> list[list[str]]:
    """One row per layer: `LAYER_HEADERS`."""
    return [list(row) for row in network.layer_rows()]


def labels_of(cache: ModelCache, model: str) -> ClassList | None:
    """The model's class names (its folder's labels.txt), or None."""
    network = cache.get(model).network
    return labels_for(str(cache.root / model), None, classifier_of(network).classes)


def class_table(cache: ModelCache, model: str, query: str) -> list[list]:
    """`CLASS_HEADERS` per class whose names hold `query` (as `--list-classes QUERY`)."""
    labels = labels_of(cache, model)
    if labels is None:
        raise ValueError(f"{model} has no class names (no labels.txt in its folder)")
    return [[i, ", ".join(labels.names[i])] for i in search(query, labels)]


def top_table(cache: ModelCache, model: str, image: Path) -> list[list]:
    """`TOP_HEADERS` of the image's top classes (as `classify IMAGE --top 5`)."""
    labels = labels_of(cache, model)
    network = cache.get(model).network
    with cache.dreaming:  # the net is not run by two threads at once
        rows = classified(network, image, labels, TOP)
    return [[f"{row['probability']:.4f}", row["index"], row["name"]] for row in rows]
