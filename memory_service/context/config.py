"""The context path as data: what retrieval, selection, pruning and abstention do, typed.

`ContextConfig` is what `Settings.context_config()` builds (a named recipe, then the
settings given explicitly on top) and what `context.pipeline.ContextPipeline` and its
stages read; nothing else threads context settings by hand. The recipes are the
ablations the evaluations compare: run one with `MEMORY_SERVICE_CONTEXT_RECIPE=<name>`
(the eval reads the environment). `default` is the service's behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

AnalysisMode = Literal["auto", "rules", "lm"]


@dataclass(frozen=True)
class RetrievalConfig:
    """Hybrid retrieval (`context.retrieval.HybridRetriever`)."""

    candidates: int = 50  # taken from each retriever before fusion
    min_relevance: float = 0.25  # cosine below which a unit no query word matches is not returned
    expansion_hits: int = 5  # best first-round hits whose names seed multi-hop expansion
    lexical_weight: float = 0.5
    neighbour_weight: float = 0.2
    entity_boost: float = 0.1
    time_boost: float = 0.5
    # the symbolic lookups (units naming an entity, units in a time range) return at most this many,
    # the latest first: past it, ranking them all by meaning costs more than it finds
    symbolic_limit: int = 20_000
    decay_half_life_days: float = 30.0  # importance decay (`context.importance.DecayPolicy`)
    importance_weight: float = 0.2
    ranker: str | None = None  # learned fusion (`context.ranking`): "default" = the packaged model, a path, None = hand-set


@dataclass(frozen=True)
class AnalysisConfig:
    """Query analysis: the rules alone, or with the LM's grounded additions."""

    mode: AnalysisMode = "auto"  # auto = rules (an LM call costs seconds)
    timeout_s: float = 10.0


@dataclass(frozen=True)
class SelectionParams:
    """Selection into the budget (`context.selection.select`)."""

    redundancy: float = 0.25  # weight of the max cosine to chosen pieces
    duplicate: float = 0.93  # cosine at which a piece adds nothing and is skipped
    # units longer than this keep only their query-bearing sentences; 16 cut most LoCoMo turns and cost
    # content (LoCoMo dev @512: content 0.651 -> 0.700, answer tokens 0.696 -> 0.724 at 64; BEAM flat)
    trim_above_tokens: int = 64
    pool: int = 100  # candidates considered for selection, best fused first
    time_boost: float = 0.2  # relative boost of units inside the query's time range
    entity_boost: float = 0.1  # relative boost of units naming a mentioned entity
    # weight of the share of a piece's content stems that the chosen pieces already show (text-level
    # redundancy, beside the vectors'); dev @512, 0 -> 0.3: LoCoMo content 0.694 -> 0.707, BEAM 0.576 -> 0.583
    novelty: float = 0.3
    cost_exponent: float = 0.0  # gain is divided by (tokens / mean tokens) ** this: >0 favours short pieces


DEFAULT_SELECTION = SelectionParams()


@dataclass(frozen=True)
class PruningConfig:
    """Token pruning inside the best candidates (`context.pruning.TokenPruner`), off by default."""

    enabled: bool = False
    keep_ratio: float = 0.7
    top: int = 40  # best candidates pruned per query
    condition_on_query: bool = False
    model: str | None = None  # GGUF; None = the LM compressor's with llama_cpp, else the packaged SmolLM2


@dataclass(frozen=True)
class AbstentionConfig:
    """Selective augmentation: an empty context when nothing is close enough in meaning."""

    empty_threshold: float = 0.30  # best query-unit cosine below which the context is empty
    cover_top: int = 10  # ... unless one of this many best candidates contains every query stem
    # Answerability (`context.answerability`): the best units must cover the question's subject and attribute.
    pool: int = 40  # best candidates the attribute stems' rarity (IDF) is counted over
    subject_top: int = 20  # best candidates searched for sentences about the subject / about someone else
    subject_margin: float = 0.3  # empty when sentences about someone else cover the attribute this much better ...
    subject_max: float = 0.6  # ... and those about the subject cover at most this share of it
    answer_top: int = 10  # best candidates whose text together must cover the attribute ...
    attribute_threshold: float = 0.0  # ... at least this IDF-weighted share; 0 = off (separated nothing on the dev sets)


@dataclass(frozen=True)
class ContextConfig:
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    selection: SelectionParams = field(default_factory=SelectionParams)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    abstention: AbstentionConfig = field(default_factory=AbstentionConfig)
    default_budget_tokens: int = 512
    tokenizer: str = "cl100k_base"  # predictor tokenizer that counts budget tokens


DEFAULT = ContextConfig()

RECIPES: dict[str, ContextConfig] = {
    "default": DEFAULT,
    # never abstain: fill the budget whatever the best cosine (benchmarks/query_context.py sweeps from here)
    "no_abstention": replace(
        DEFAULT,
        abstention=AbstentionConfig(empty_threshold=-2.0, cover_top=0, subject_margin=2.0, attribute_threshold=-1.0),
    ),
    # relevance alone decides abstention (no subject or attribute check: the behaviour before answerability)
    "no_answerability": replace(DEFAULT, abstention=AbstentionConfig(subject_margin=2.0, attribute_threshold=-1.0)),
    # relevance order only: no redundancy penalty (vectors or words), no near-duplicate skip
    "no_mmr": replace(DEFAULT, selection=SelectionParams(redundancy=0.0, duplicate=2.0, novelty=0.0)),
    # dense retrieval alone ranks (lexical hits still count as candidates)
    "dense_only": replace(DEFAULT, retrieval=RetrievalConfig(lexical_weight=0.0, neighbour_weight=0.0, entity_boost=0.0,
                                                             time_boost=0.0)),
    # the LM adds grounded terms, entities and multi-hop to the rules' analysis
    "lm_analysis": replace(DEFAULT, analysis=AnalysisConfig(mode="lm")),
    # the packaged learned ranker fuses the signals
    "learned_ranker": replace(DEFAULT, retrieval=RetrievalConfig(ranker="default")),
    # LLMLingua-style pruning of the best candidates' words
    "pruned": replace(DEFAULT, pruning=PruningConfig(enabled=True)),
}


def recipe(name: str) -> ContextConfig:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown context recipe {name!r}; recipes: {', '.join(RECIPES)}") from None
