"""The public API is stable: names do not disappear silently."""

import importlib

import attngan

EXPECTED = [
    "AttentionComposition",
    "AttentionGenerator",
    "AttentionRegularizer",
    "CriticOutput",
    "GeneratorOutput",
    "MaskStatistics",
    "MultiHeadCritic",
    "ResidualBlock",
    "TotalVariation",
    "attention_regularizer",
    "broadcast_condition",
    "classification_loss",
    "compose",
    "concat_condition",
    "gradient_norm_penalty",
    "gradient_penalty",
    "mask_statistics",
    "one_hot",
    "per_sample_scores",
    "random_interpolates",
    "sample_target_labels",
    "select_head",
    "set_value_checks",
    "total_variation",
    "value_checks_enabled",
    "wgan_critic_loss",
    "wgan_generator_loss",
]


def test_expected_names_are_exported_and_importable():
    missing = [name for name in EXPECTED if name not in attngan.__all__]
    assert not missing, f"public names removed from attngan.__all__: {missing}"
    for name in EXPECTED:
        obj = getattr(attngan, name)
        assert obj is not None
        exec(f"from attngan import {name}", {})


def test_all_is_sorted_and_unique():
    assert list(attngan.__all__) == sorted(attngan.__all__)
    assert len(set(attngan.__all__)) == len(attngan.__all__)


def test_every_exported_name_exists_and_is_documented():
    for name in attngan.__all__:
        obj = getattr(attngan, name)
        assert (obj.__doc__ or "").strip(), f"{name} has no docstring"


def test_submodule_all_lists_are_sorted_and_reexported():
    for module_name in ("composition", "conditioning", "critic", "generator", "losses", "penalty", "regularizers"):
        module = importlib.import_module(f"attngan.{module_name}")
        assert list(module.__all__) == sorted(module.__all__), module_name
        for name in module.__all__:
            assert getattr(attngan, name) is getattr(module, name), (module_name, name)


def test_version_and_typed_marker():
    assert attngan.__version__ == "0.1.0"
    from importlib import resources

    assert resources.files("attngan").joinpath("py.typed").is_file()
