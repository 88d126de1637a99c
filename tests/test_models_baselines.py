"""The baselines of Section II.D in the one registry: shapes, gradients, input sizes, Table IV
parameter counts and Hub round trips. Forward passes use small widths; the paper-size
models are only built on the meta device to count their parameters."""

import pytest
import torch
from torch import nn

import amfl.hub
from amfl.models import MODELS, create_model
from amfl.models.fastfcn import Encoding, FastFCN
from amfl.models.folding import fold_batch_norms
from amfl.models.registry import TABLE_IV_DEVIATIONS, TABLE_IV_PARAMETERS, architecture_class
from conftest import parameter_count

#: Constructor overrides that make each registered model cheap enough for a CPU test while
#: keeping its structure (bottleneck ResNets, both FastFCN heads, recurrence).
SMALL = {
    "amfl-paper": {"base_width": 4},
    "amfl-small": {"base_width": 4},
    "nestedunet": {"base_width": 4},
    "unet": {"base_width": 4},
    "attunet": {"base_width": 4},
    "r2unet": {"base_width": 4, "recurrence": 1},
    "r2attunet": {"base_width": 4, "recurrence": 2},
    "enet": {"base_width": 8},
    "bisenetv1": {"base_width": 8},
    "bisenetv2": {"base_width": 8, "head_width": 16},
    "deeplabv3plus": {"backbone_depth": 50, "base_width": 4, "aspp_width": 16, "skip_width": 8},
    "fastfcn": {"backbone_depth": 18, "base_width": 8, "jpu_width": 8},
}
#: Same network as another entry, skipped where a second copy adds nothing.
ALIASES = {"nestedunet": "amfl-paper"}


def batch_norm_count(module: nn.Module) -> int:
    return sum(isinstance(child, nn.BatchNorm2d) for child in module.modules())


def small_model(name: str) -> nn.Module:
    if name not in SMALL:
        pytest.fail(f"registered model {name!r} has no small test configuration in SMALL")
    torch.manual_seed(0)
    return create_model(name, **SMALL[name])


def test_every_baseline_of_section_ii_d_is_registered():
    baselines = {
        "enet",
        "bisenetv1",
        "bisenetv2",
        "deeplabv3plus",
        "fastfcn",
        "unet",
        "r2unet",
        "attunet",
        "r2attunet",
        "nestedunet",
    }
    assert baselines <= set(MODELS)
    assert set(TABLE_IV_PARAMETERS) <= set(MODELS)


@pytest.mark.parametrize("name", sorted(set(MODELS) - set(ALIASES)))
def test_forward_and_backward_give_full_resolution_logits_and_finite_gradients(name):
    model = small_model(name).train()
    logits = model(torch.rand(2, 1, 128, 128))
    assert logits.shape == (2, 4, 128, 128)
    target = torch.randint(0, 4, (2, 128, 128))
    nn.functional.cross_entropy(logits, target).backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name}: {parameter_name} gets no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{name}: {parameter_name} gradient not finite"


@pytest.mark.parametrize("name", sorted(set(MODELS) - set(ALIASES)))
def test_any_multiple_of_the_declared_divisor_works_and_others_are_refused(name):
    model = small_model(name).eval()
    divisor = model.input_divisor
    with torch.no_grad():
        assert model(torch.rand(1, 1, 3 * divisor, 2 * divisor)).shape == (
            1,
            4,
            3 * divisor,
            2 * divisor,
        )
    with pytest.raises(ValueError, match=f"divisible by {divisor}"):
        model(torch.rand(1, 1, 2 * divisor + 1, 2 * divisor))


@pytest.mark.parametrize("name", sorted(set(MODELS) - set(ALIASES)))
def test_folding_batch_norms_keeps_the_outputs_and_leaves_the_model_as_it_was(name):
    model = small_model(name)
    images = torch.rand(2, 1, 128, 128)
    with torch.no_grad():
        for _ in range(3):  # running statistics other than the initial 0 and 1
            model(images * 3 + 0.5)
    model.eval()
    norms = batch_norm_count(model)
    folded = fold_batch_norms(model)
    assert batch_norm_count(model) == norms
    assert batch_norm_count(folded) < norms
    with torch.no_grad():
        torch.testing.assert_close(folded(images), model(images), rtol=1e-4, atol=1e-4)


def test_folding_removes_every_batch_norm_of_nestedunet():
    assert batch_norm_count(fold_batch_norms(small_model("amfl-small"))) == 0


@pytest.mark.parametrize("name", sorted(TABLE_IV_PARAMETERS))
def test_paper_configuration_has_table_iv_parameter_count(name):
    if name in TABLE_IV_DEVIATIONS:
        pytest.skip(TABLE_IV_DEVIATIONS[name])
    with torch.device("meta"):
        count = parameter_count(create_model(name))
    assert count == pytest.approx(TABLE_IV_PARAMETERS[name], rel=0.10)


def test_documented_deviations_are_real_and_bounded():
    """A deviation entry must still be needed, and the model not absurdly off either."""
    for name in TABLE_IV_DEVIATIONS:
        with torch.device("meta"):
            ratio = parameter_count(create_model(name)) / TABLE_IV_PARAMETERS[name]
        assert not 0.9 <= ratio <= 1.1 and 0.5 < ratio < 2, (name, ratio)


def test_u_net_family_matches_the_reference_sizes_exactly():
    """LeeJunHyun/Image_Segmentation at img_ch=1, output_ch=4, to the parameter."""
    expected = {
        "unet": 34_526_084,
        "r2unet": 39_091_460,
        "attunet": 34_877_616,
        "r2attunet": 39_442_992,
    }
    with torch.device("meta"):
        assert {name: parameter_count(create_model(name)) for name in expected} == expected


@pytest.mark.parametrize(
    "model_class",
    sorted({spec.model_class for spec in MODELS.values()}, key=lambda cls: cls.__name__),
)
def test_hub_round_trip_gives_identical_outputs(model_class, tmp_path):
    name = next(name for name, spec in MODELS.items() if spec.model_class is model_class)
    model = small_model(name).eval()
    model.save_pretrained(tmp_path)
    assert architecture_class(model_class.__name__) is model_class
    loaded = amfl.hub.from_pretrained(tmp_path)
    assert type(loaded) is model_class and not loaded.training
    images = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(images), loaded(images))


def test_fastfcn_encnet_head_runs_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = FastFCN(backbone_depth=18, base_width=8, jpu_width=8, head="encnet", codes=4)
    logits = model(torch.rand(2, 1, 64, 64))
    logits.sum().backward()
    assert all(parameter.grad is not None for parameter in model.parameters())
    model.eval().save_pretrained(tmp_path)
    images = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(images), amfl.hub.from_pretrained(tmp_path)(images))


def test_encoding_layer_matches_its_definition():
    """e_k = sum_i softmax_k(s_k ||x_i - c_k||^2) (x_i - c_k), computed naively."""
    torch.manual_seed(0)
    layer = Encoding(channels=5, codes=3)
    x = torch.randn(2, 5, 4, 3)
    pixels = x.flatten(2).transpose(1, 2)  # (N, HW, C)
    residuals = pixels[:, :, None, :] - layer.codewords[None, None]  # (N, HW, K, C)
    weights = torch.softmax(layer.scale * residuals.pow(2).sum(-1), dim=-1)
    expected = (weights[..., None] * residuals).sum(1)
    assert torch.allclose(layer(x), expected, atol=1e-5)


def test_bad_constructor_arguments_name_the_value_and_the_choices():
    with pytest.raises(ValueError, match=r"head must be one of \('psp', 'encnet'\); got 'fcn'"):
        FastFCN(head="fcn")
    with pytest.raises(
        ValueError,
        match=r"depth \(backbone_depth\) must be one of \[18, 34, 50, 101, 152\]; got 42",
    ):
        create_model("deeplabv3plus", backbone_depth=42)
    with pytest.raises(ValueError, match="base_width=0"):
        create_model("r2unet", base_width=0)
    with pytest.raises(ValueError, match="multiple of 4"):
        create_model("bisenetv2", base_width=6)
