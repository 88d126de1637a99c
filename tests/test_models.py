"""The generator, the discriminator and the model registry (paper Section II.A)."""

import pytest
import torch
from torch import nn

from amfl.losses import LSGANLoss, lovasz_softmax
from amfl.models import MODELS, NestedUNet, PatchDiscriminator, create_discriminator, create_model
from conftest import parameter_count

TABLE_IV_AMFL_PARAMETERS = 36.63e6


def test_paper_preset_has_table_iv_parameter_count():
    assert abs(parameter_count(create_model("amfl-paper")) - TABLE_IV_AMFL_PARAMETERS) <= 0.05e6


def test_base_width_scales_the_generator():
    small, paper = create_model("amfl-small"), create_model("amfl-paper")
    assert small.base_width == 8 and paper.base_width == 64
    # Conv weights scale with width squared, so width / 8 gives about 1/64 of the parameters.
    assert 50 < parameter_count(paper) / parameter_count(small) < 70


def test_registry_names_are_case_insensitive_and_overridable():
    assert isinstance(create_model("AMFL-Small"), NestedUNet)
    assert create_model("amfl-paper", base_width=4).base_width == 4
    with pytest.raises(KeyError, match="amfl-small"):
        create_model("no-such-model")


GENERATOR_PRESETS = sorted(name for name, spec in MODELS.items() if spec.model_class is NestedUNet)


@pytest.mark.parametrize("name", GENERATOR_PRESETS)
def test_generator_presets_map_images_to_four_class_logits(name):
    logits = create_model(name, base_width=4)(torch.rand(2, 1, 64, 96))
    assert logits.shape == (2, 4, 64, 96)


def test_nested_unet_refuses_sizes_not_divisible_by_16_naming_the_padded_size():
    model = create_model("amfl-small")
    with pytest.raises(ValueError, match="divisible by 16.*96x96"):
        model(torch.rand(1, 1, 94, 93))


def test_nested_unet_refuses_wrong_channel_count():
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        create_model("amfl-small")(torch.rand(1, 3, 128, 128))


def test_nested_unet_refuses_nonsense_widths():
    with pytest.raises(ValueError, match="base_width=0"):
        NestedUNet(base_width=0)


def test_nested_unet_has_the_fifteen_nodes_of_eq_1():
    model = create_model("amfl-small")
    names = set(model.nodes.keys())
    expected = {f"x{level}_{column}" for level in range(5) for column in range(5 - level)}
    assert names == expected
    # Node x^{0,4} sees four same-level outputs of f(0) and one upsampled f(1) (eq. 2).
    first_conv = model.nodes["x0_4"][0]
    assert first_conv.in_channels == 8 * 4 + 16


def test_predict_gives_probabilities_in_eval_mode():
    model = create_model("amfl-small").train()
    probabilities = model.predict(torch.rand(2, 1, 32, 32))
    assert not model.training
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(2, 32, 32), atol=1e-5)


def test_discriminator_layers_follow_section_ii_a():
    discriminator = create_discriminator()
    convolutions = [layer for layer in discriminator.modules() if isinstance(layer, nn.Conv2d)]
    assert [conv.in_channels for conv in convolutions] == [5, 64, 128, 256, 512]
    assert [conv.out_channels for conv in convolutions] == [64, 128, 256, 512, 1]
    assert [conv.stride for conv in convolutions] == [(2, 2)] * 3 + [(1, 1)] * 2
    assert all(conv.kernel_size == (4, 4) and conv.padding == (2, 2) for conv in convolutions)
    norms = [layer for layer in discriminator.modules() if isinstance(layer, nn.BatchNorm2d)]
    assert len(norms) == 3
    slopes = {layer.negative_slope for layer in discriminator.modules() if isinstance(layer, nn.LeakyReLU)}
    assert slopes == {0.2}
    assert isinstance(list(discriminator.modules())[-1], nn.Sigmoid)


def test_discriminator_scores_patches_between_zero_and_one():
    scores = create_discriminator(base_width=8)(torch.rand(2, 1, 128, 128), torch.rand(2, 4, 128, 128))
    assert scores.shape == (2, 1, 19, 19)
    assert ((scores > 0) & (scores < 1)).all()


def test_discriminator_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="segmentation"):
        PatchDiscriminator()(torch.rand(2, 1, 64, 64), torch.rand(2, 3, 64, 64))


def test_generator_receives_gradients_from_both_loss_terms():
    """Eq. 7: the adversarial term alone and the Lovasz term alone each reach every G layer."""
    torch.manual_seed(0)
    generator, discriminator = create_model("amfl-small", base_width=4), create_discriminator(base_width=4)
    images, labels = torch.rand(2, 1, 32, 32), torch.randint(0, 4, (2, 32, 32))
    gan_loss = LSGANLoss()
    terms = {
        "adversarial": lambda logits: gan_loss.generator_loss(discriminator(images, logits.softmax(1))),
        "lovasz": lambda logits: lovasz_softmax(logits, labels),
    }
    for name, term in terms.items():
        generator.zero_grad()
        term(generator(images)).backward()
        for parameter_name, parameter in generator.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, (name, parameter_name)
