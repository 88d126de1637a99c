"""``python -m amfl.weight_shards``: a model folder's weights as small float16 files, and back.

A lent GPU machine returns at most 8 files of 16 MiB each (64 MiB in all) from a run, so a
trained model larger than that cannot come back as one ``model.safetensors``: the NestedUNet at
base width 32 is 37 MB in float32, the paper-size one 147 MB. ``split`` writes the floating
weights in float16 (half the bytes, about three significant digits, what bfloat16 training
keeps anyway) into numbered safetensors files under a size limit, cutting a tensor across files
where one is larger than the limit, and copies the folder's small files beside them. ``join``
checks that every piece is there and writes a ``from_pretrained`` folder whose
``model.safetensors`` has each tensor's original shape and dtype again. Only safetensors are
read or written, never pickle.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from amfl.hub_files import WEIGHTS_FILE

#: What a returned file may weigh (the device tool's 16 MiB, less room for the safetensors header).
DEFAULT_MAX_MIB = 15.5
#: Header key of each shard holding the layout of the whole model (see ``_layout``).
LAYOUT_KEY = "amfl_weight_shards"
#: Shard file names: the 1-based index and the count, so a missing one is seen at a glance.
SHARD_PATTERN = "model-{index:02d}-of-{count:02d}.safetensors"
#: What finds every shard in a folder, whatever its count.
SHARD_GLOB = "model-*-of-*.safetensors"
#: The folder's small files (config, preprocessing, card), copied as they are; weights are split.
SMALL_FILE_SUFFIXES = (".json", ".md")
#: The precision each floating tensor is stored in.
STORED_DTYPE = torch.float16


@dataclass(frozen=True)
class Piece:
    """One stored slice of a flattened tensor: ``numel`` values from ``offset`` on."""

    key: str
    offset: int
    numel: int

    @property
    def name(self) -> str:
        return f"{self.key}@{self.offset}"


def _stored_dtype(tensor: torch.Tensor) -> torch.dtype:
    """``STORED_DTYPE`` for a floating tensor; integer buffers keep their dtype, so stay exact."""
    return STORED_DTYPE if tensor.is_floating_point() else tensor.dtype


def _stored(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor flattened, in its stored dtype."""
    return tensor.contiguous().reshape(-1).to(_stored_dtype(tensor))


def _copy_small_files(source: Path, destination: Path) -> None:
    """The config, preprocessing and card files of ``source``, copied as they are."""
    for small in sorted(source.iterdir()):
        if small.is_file() and small.suffix in SMALL_FILE_SUFFIXES:
            shutil.copy2(small, destination / small.name)


def plan_shards(tensors: dict[str, torch.Tensor], max_bytes: int) -> list[list[Piece]]:
    """Pieces per shard, in key order, each shard's data at most ``max_bytes``.

    A tensor that does not fit in what is left of a shard is cut there and goes on in the next.
    """
    shards: list[list[Piece]] = [[]]
    room = max_bytes
    for key, tensor in tensors.items():
        itemsize, numel = _stored_dtype(tensor).itemsize, tensor.numel()
        if itemsize > max_bytes:
            raise ValueError(f"a shard limit of {max_bytes} bytes cannot hold one value of {key}")
        offset = 0
        while True:
            take = min(numel - offset, room // itemsize)
            if take == 0 and offset < numel:
                shards.append([])
                room = max_bytes
                continue
            shards[-1].append(Piece(key, offset, take))
            room -= take * itemsize
            offset += take
            if offset >= numel:
                break
    return [pieces for pieces in shards if pieces]


def _layout(tensors: dict[str, torch.Tensor], count: int) -> str:
    """What ``join`` needs besides the pieces: the shard count, each tensor's shape and dtype,
    and an id of this split, so that shards of two splits of same-shaped models never mix."""
    shapes = {key: {"shape": list(tensor.shape), "dtype": str(tensor.dtype).removeprefix("torch.")}
              for key, tensor in tensors.items()}
    return json.dumps({"split": uuid.uuid4().hex, "shards": count, "tensors": shapes})


def split_weights(folder: Path, out: Path, max_mib: float = DEFAULT_MAX_MIB) -> list[Path]:
    """Write ``folder``'s weights as shards of at most ``max_mib`` MiB into ``out``, with its
    small files beside them; returns the shard paths."""
    folder, out = Path(folder), Path(out)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{folder} has no {WEIGHTS_FILE}: give a model folder written by save_pretrained")
    if max_mib <= 0:
        raise ValueError(f"the shard limit must be above 0 MiB; got {max_mib}")
    tensors = load_file(weights)
    plan = plan_shards(tensors, int(max_mib * 2**20))
    out.mkdir(parents=True, exist_ok=True)
    stale = sorted(out.glob(SHARD_GLOB))
    if stale:
        raise FileExistsError(f"{out} already holds shards ({stale[0].name}, ...); give an empty folder")
    layout = _layout(tensors, len(plan))
    stored = {key: _stored(tensor) for key, tensor in tensors.items()}
    paths = []
    for index, pieces in enumerate(plan, start=1):
        data = {piece.name: stored[piece.key][piece.offset:piece.offset + piece.numel].clone() for piece in pieces}
        path = out / SHARD_PATTERN.format(index=index, count=len(plan))
        save_file(data, path, metadata={LAYOUT_KEY: layout})
        paths.append(path)
    _copy_small_files(folder, out)
    return paths


def _read_shards(shards_dir: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The layout the shards agree on and all their pieces; raises if any shard is missing."""
    paths = sorted(Path(shards_dir).glob(SHARD_GLOB))
    if not paths:
        raise FileNotFoundError(f"{shards_dir} holds no model-NN-of-NN.safetensors shards (written by `split`)")
    layouts, pieces = set(), {}
    for path in paths:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
            if LAYOUT_KEY not in metadata:
                raise ValueError(f"{path.name} was not written by amfl.weight_shards split (no {LAYOUT_KEY} in its header)")
            layouts.add(metadata[LAYOUT_KEY])
            pieces.update({name: handle.get_tensor(name) for name in handle.keys()})
    if len(layouts) != 1:
        raise ValueError(f"the shards in {shards_dir} come from different splits; keep one split's files only")
    layout = json.loads(layouts.pop())
    expected = {SHARD_PATTERN.format(index=index, count=layout["shards"]) for index in range(1, layout["shards"] + 1)}
    missing = sorted(expected - {path.name for path in paths})
    if missing:
        raise FileNotFoundError(f"{shards_dir} lacks {', '.join(missing)} of the {layout['shards']} shards")
    return layout, pieces


def join_weights(shards_dir: Path, folder: Path) -> Path:
    """Write a ``from_pretrained`` folder from the shards and small files in ``shards_dir``;
    returns its ``model.safetensors``."""
    shards_dir, folder = Path(shards_dir), Path(folder)
    layout, pieces = _read_shards(shards_dir)
    by_key: dict[str, list[tuple[int, torch.Tensor]]] = {}
    for name, values in pieces.items():
        key, _, offset = name.rpartition("@")
        by_key.setdefault(key, []).append((int(offset), values))
    unknown = sorted(set(by_key) - set(layout["tensors"]))
    if unknown:
        raise ValueError(f"the shards in {shards_dir} hold pieces of tensors their layout does not name: {', '.join(unknown)}")
    tensors = {}
    for key, spec in layout["tensors"].items():
        parts = sorted(by_key.get(key, []), key=lambda part: part[0])
        flat = torch.cat([values for _, values in parts]) if parts else torch.empty(0)
        shape = torch.Size(spec["shape"])
        if flat.numel() != shape.numel():
            raise ValueError(f"{key}: the shards hold {flat.numel()} of its {shape.numel()} values")
        tensors[key] = flat.to(getattr(torch, spec["dtype"])).reshape(shape).contiguous()
    folder.mkdir(parents=True, exist_ok=True)
    _copy_small_files(shards_dir, folder)
    path = folder / WEIGHTS_FILE
    save_file(tensors, path)
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A model folder's weights as float16 files under a size limit, and back.")
    commands = parser.add_subparsers(dest="command", required=True)
    split = commands.add_parser("split", help="write FOLDER's weights as shards into OUT")
    split.add_argument("folder", type=Path, help="a model folder (config.json, model.safetensors, ...)")
    split.add_argument("out", type=Path, help="an empty or new folder for the shards and the small files")
    split.add_argument("--max_mib", type=float, default=DEFAULT_MAX_MIB, help="most MiB of data per shard")
    join = commands.add_parser("join", help="write a model folder from the shards in SHARDS")
    join.add_argument("shards", type=Path, help="the folder written by split")
    join.add_argument("folder", type=Path, help="the model folder to write")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "split":
            paths = split_weights(args.folder, args.out, args.max_mib)
            print("\n".join(f"{path} ({path.stat().st_size / 2**20:.2f} MiB)" for path in paths))
        else:
            print(join_weights(args.shards, args.folder))
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
