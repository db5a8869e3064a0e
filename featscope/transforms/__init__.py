"""Transforms: random changes of the image at each step (robustness), as plain functions of
(images, randomness), and MACO's crop views of a canvas; those that draw apart from their
use (``StepTransform``) can have every step's draws made ahead (``plan``)."""

from .affine import (
                     LUCID_DEGREES,
                     LUCID_SCALES,
                     Transform,
                     compose,
                     identity,
                     jitter,
                     lucid_transforms,
                     pad,
                     per_image,
                     random_affine,
                     random_rotate,
                     random_scale,
                     resize,
                     resize_to,
                     scales_within,
                     small_transforms,
)
from .crops import FILL, MAX_SIDE, CropSchedule, crop_transform, crop_views
from .steps import PLAN_ELEMENTS, Parameters, StepTransform, plan, steady, step_parameters

__all__ = ["LUCID_DEGREES", "LUCID_SCALES", "Transform", "compose", "identity", "jitter",
           "lucid_transforms", "pad", "per_image", "random_affine", "random_rotate",
           "random_scale", "resize", "resize_to", "scales_within", "small_transforms", "FILL",
           "MAX_SIDE", "CropSchedule", "crop_transform", "crop_views", "PLAN_ELEMENTS",
           "Parameters", "StepTransform", "plan", "steady", "step_parameters"]
