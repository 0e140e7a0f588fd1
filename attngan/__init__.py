"""attngan: composable building blocks for attention-masked conditional GANs.

The pieces of AcGANs ("Look Globally, Age Locally", Zhu et al.) and its
lineage (StarGAN, GANimation), as plain functions and modules: condition maps,
the attention composition, the WGAN-GP penalty, total variation and the
attention regulariser, adversarial and classification losses, the
attention generator (the condition as input planes, or in every
normalisation layer) and multi-head critic, mask statistics that tell
when a mask saturates, and differentiable random views (zoom, shift, mirror)
for losses that follow a fixed network.
"""

from .augment import apply_affine, grayscale, random_affine_params
from .composition import AttentionComposition, compose
from .conditioning import broadcast_condition, concat_condition, one_hot, sample_target_labels
from .critic import CriticOutput, MultiHeadCritic
from .diagnostics import MaskStatistics, mask_statistics
from .generator import AttentionGenerator, GeneratorOutput, ResidualBlock
from .modulation import ConditionalNorm2d, film
from .losses import classification_loss, per_sample_scores, wgan_critic_loss, wgan_generator_loss
from .penalty import gradient_norm_penalty, gradient_penalty, random_interpolates, select_head
from ._validation import set_value_checks, value_checks_enabled
from .regularizers import AttentionRegularizer, TotalVariation, attention_regularizer, total_variation

__version__ = "0.1.0"

__all__ = [
    "AttentionComposition",
    "AttentionGenerator",
    "AttentionRegularizer",
    "ConditionalNorm2d",
    "CriticOutput",
    "GeneratorOutput",
    "MaskStatistics",
    "MultiHeadCritic",
    "ResidualBlock",
    "TotalVariation",
    "apply_affine",
    "attention_regularizer",
    "broadcast_condition",
    "classification_loss",
    "compose",
    "concat_condition",
    "film",
    "gradient_norm_penalty",
    "gradient_penalty",
    "grayscale",
    "mask_statistics",
    "one_hot",
    "per_sample_scores",
    "random_affine_params",
    "random_interpolates",
    "sample_target_labels",
    "select_head",
    "set_value_checks",
    "total_variation",
    "value_checks_enabled",
    "wgan_critic_loss",
    "wgan_generator_loss",
]
