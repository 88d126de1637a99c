"""amfl.weight_shards: a model folder's weights split into float16 files under a size limit
(what a lent GPU machine can return) and joined back into a folder that from_pretrained loads."""

from collections import Counter

import pytest
import torch
from safetensors.torch import load_file, save_file

import amfl.hub
from amfl.hub_files import CONFIG_FILE, WEIGHTS_FILE
from amfl.models import create_model
from amfl.weight_shards import join_weights, main, plan_shards, split_weights

#: Small enough that the tiny model's largest convolutions are cut across shards.
LIMIT_MIB = 0.02


@pytest.fixture
def model_folder(tmp_path):
    folder = tmp_path / "model"
    torch.manual_seed(0)
    create_model("amfl-small", base_width=4).save_pretrained(folder)
    return folder


def test_every_shard_stays_under_the_limit_and_large_tensors_are_cut(model_folder, tmp_path):
    paths = split_weights(model_folder, tmp_path / "shards", LIMIT_MIB)
    pieces_per_tensor = Counter()
    for path in paths:
        pieces = load_file(path)
        assert sum(values.numel() * values.element_size() for values in pieces.values()) <= LIMIT_MIB * 2**20
        pieces_per_tensor.update(name.rpartition("@")[0] for name in pieces)
    assert len(paths) > 1
    assert max(pieces_per_tensor.values()) > 1


def test_join_gives_back_every_tensor_in_its_shape_and_dtype_at_float16_precision(model_folder, tmp_path):
    split_weights(model_folder, tmp_path / "shards", LIMIT_MIB)
    join_weights(tmp_path / "shards", tmp_path / "joined")
    original = load_file(model_folder / WEIGHTS_FILE)
    joined = load_file(tmp_path / "joined" / WEIGHTS_FILE)
    assert joined.keys() == original.keys()
    assert any(not tensor.is_floating_point() for tensor in original.values())
    for key, tensor in original.items():
        assert joined[key].dtype == tensor.dtype and joined[key].shape == tensor.shape, key
        expected = tensor.half().float() if tensor.is_floating_point() else tensor
        assert torch.equal(joined[key], expected), key
    assert (tmp_path / "joined" / CONFIG_FILE).read_text() == (model_folder / CONFIG_FILE).read_text()
    model = amfl.hub.from_pretrained(tmp_path / "joined")
    assert model.base_width == 4


def test_empty_and_integer_tensors_survive_a_split(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    tensors = {"empty": torch.zeros(0, 3), "count": torch.tensor([2**40 + 1]), "weight": torch.randn(40, 50)}
    save_file(tensors, folder / WEIGHTS_FILE)
    split_weights(folder, tmp_path / "shards", max_mib=0.001)
    joined = load_file(join_weights(tmp_path / "shards", tmp_path / "joined"))
    assert joined["empty"].shape == (0, 3)
    assert torch.equal(joined["count"], tensors["count"])
    assert torch.equal(joined["weight"], tensors["weight"].half().float())


def test_plan_cuts_a_tensor_where_the_shard_is_full():
    plan = plan_shards({"a": torch.zeros(3), "b": torch.zeros(10)}, max_bytes=10)
    assert [[(piece.key, piece.offset, piece.numel) for piece in shard] for shard in plan] == [
        [("a", 0, 3), ("b", 0, 2)], [("b", 2, 5)], [("b", 7, 3)],
    ]


def test_a_missing_shard_is_named(model_folder, tmp_path):
    paths = split_weights(model_folder, tmp_path / "shards", LIMIT_MIB)
    paths[1].unlink()
    with pytest.raises(FileNotFoundError, match=paths[1].name):
        join_weights(tmp_path / "shards", tmp_path / "joined")
    assert not (tmp_path / "joined").exists()


def test_shards_of_two_splits_are_not_mixed(model_folder, tmp_path):
    first = split_weights(model_folder, tmp_path / "first", LIMIT_MIB)
    second = split_weights(model_folder, tmp_path / "second", LIMIT_MIB)
    second[0].replace(first[0])
    with pytest.raises(ValueError, match="different splits"):
        join_weights(tmp_path / "first", tmp_path / "joined")


def test_split_refuses_a_folder_that_already_holds_shards(model_folder, tmp_path):
    split_weights(model_folder, tmp_path / "shards", LIMIT_MIB)
    with pytest.raises(FileExistsError, match="already holds shards"):
        split_weights(model_folder, tmp_path / "shards", LIMIT_MIB)


def test_command_line_says_what_is_missing(tmp_path, capsys):
    assert main(["split", str(tmp_path), str(tmp_path / "shards")]) == 2
    assert f"has no {WEIGHTS_FILE}" in capsys.readouterr().err
    assert main(["join", str(tmp_path), str(tmp_path / "joined")]) == 2
    assert "holds no model-NN-of-NN.safetensors" in capsys.readouterr().err
