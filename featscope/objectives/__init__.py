"""Objectives and terms: what a search maximizes (units, classes, directions, custom
functions), the penalties and priors added to it, and how a batch of them is scored."""

from .attention import Attention, AttentionReads, attention_reads
from .base import IMAGE, Activations, Constant, Objective, Scaled, Sum, as_objective
from .binding import bind_objectives
from .features import (
                       CLS,
                       POOLS,
                       Channel,
                       ClassLogit,
                       ClassProbability,
                       Custom,
                       Direction,
                       LayerObjective,
                       Neuron,
                       Pool,
                       channel,
                       check_feature,
                       check_pool,
                       class_index,
                       class_logit,
                       class_probability,
                       custom,
                       declared_order,
                       direction,
                       features_first,
                       neuron,
                       pool_map,
)
from .penalties import (
    DEFAULT_CLOSENESS,
    DEFAULT_DIVERSITY,
    Closeness,
    Diversity,
    TotalVariation,
    gram,
    similarity,
)
from .scoring import BatchScorer, Scores, batch_scores
from .targets import SYNTAX, parse_target

__all__ = [
    "Attention", "AttentionReads", "attention_reads", "bind_objectives", "CLS",
    "LayerObjective", "declared_order", "IMAGE", "Activations", "Constant", "Objective",
    "Scaled", "Sum", "as_objective", "POOLS",
    "Channel", "ClassLogit", "ClassProbability", "Custom", "Direction", "Neuron", "Pool",
    "channel", "check_feature", "check_pool", "class_index", "class_logit", "class_probability",
    "custom", "direction", "features_first", "neuron", "pool_map", "DEFAULT_CLOSENESS",
    "DEFAULT_DIVERSITY", "Closeness", "Diversity", "TotalVariation", "gram", "similarity",
    "BatchScorer", "Scores",
    "batch_scores", "SYNTAX", "parse_target",
]
