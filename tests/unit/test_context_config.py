"""The context path as configuration: the default recipe is exactly the settings' defaults."""

from __future__ import annotations

from dataclasses import fields

import pytest

from memory_service.context.config import DEFAULT, RECIPES, ContextConfig, recipe
from memory_service.settings import CONTEXT_FIELDS, Settings


def _value(config: ContextConfig, part: str | None, key: str) -> object:
    return getattr(config if part is None else getattr(config, part), key)


def test_default_settings_build_the_default_recipe() -> None:
    assert Settings().context_config() == DEFAULT
    for name, (part, key) in CONTEXT_FIELDS.items():
        assert Settings.model_fields[name].default == _value(DEFAULT, part, key), name


def test_explicit_settings_override_the_recipe() -> None:
    config = Settings(context_recipe="no_abstention", candidates=7, prune_top=3).context_config()
    assert config.abstention == RECIPES["no_abstention"].abstention
    assert config.retrieval.candidates == 7 and config.pruning.top == 3
    assert Settings(context_recipe="no_abstention", empty_threshold=0.35).context_config().abstention.empty_threshold == 0.35


def test_recipes_are_context_configs() -> None:
    assert RECIPES["default"] is DEFAULT
    for config in RECIPES.values():
        assert {f.name for f in fields(config)} == {f.name for f in fields(DEFAULT)}
    with pytest.raises(ValueError, match="unknown context recipe"):
        recipe("magic")


def test_the_learned_ranker_is_a_recipe_and_a_setting() -> None:
    assert Settings().context_config().retrieval.ranker is None  # hand-set fusion by default
    assert Settings(context_recipe="learned_ranker").context_config().retrieval.ranker == "default"
    assert Settings(ranker="/models/r.json").context_config().retrieval.ranker == "/models/r.json"
    assert Settings(context_recipe="learned_ranker", ranker=None).context_config().retrieval.ranker is None
