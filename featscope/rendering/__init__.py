"""Rendering: recipes and presets, the batching plan, the pipeline from variables to model
input, the search of one batch, recovery from failures, and ``render`` over a request."""

from .api import RenderPlan, accentuate, as_loaded, plan_render, render, render_planned
from .batch import SearchSettings, never_activated, optimizer_for, render_batch, step_mode
from .pipeline import Parameterize, Pipeline, keras_deprocess
from .plan import (
                   ACCELERATOR_BATCH,
                   CPU_BATCH_ELEMENTS,
                   Batch,
                   Unit,
                   check_batch_size,
                   default_batch_size,
                   make_units,
                   memory_batch,
                   plan_batches,
)
from .recipes import (
                   AUTO,
                   CLASS_PRESET,
                   OPTIMIZERS,
                   PRESETS,
                   TRANSFORMER_PRESET,
                   UNIT_PRESET,
                   Architecture,
                   Recipe,
                   architecture_of,
                   check_preset,
                   image_size,
                   model_size,
                   preset_for,
                   recipe,
                   recipes_of,
                   register_preset,
)
from .recovery import render_robustly
from .results import RenderError, RenderResult, UnitResult

__all__ = ["RenderPlan", "accentuate", "as_loaded", "plan_render", "render", "render_planned",
           "SearchSettings", "never_activated", "optimizer_for", "step_mode",
           "render_batch", "Parameterize", "Pipeline", "keras_deprocess", "ACCELERATOR_BATCH",
           "CPU_BATCH_ELEMENTS", "Batch", "Unit", "check_batch_size", "default_batch_size",
           "make_units", "memory_batch", "plan_batches", "AUTO", "CLASS_PRESET", "OPTIMIZERS",
           "PRESETS", "UNIT_PRESET", "TRANSFORMER_PRESET", "Architecture", "architecture_of",
           "Recipe", "check_preset", "image_size", "model_size", "preset_for", "recipe",
           "recipes_of", "register_preset", "render_robustly", "RenderError",
           "RenderResult", "UnitResult"]
