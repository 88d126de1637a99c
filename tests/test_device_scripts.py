"""scripts/device_stage.sh and scripts/device_real_image.sh: what travels to a lent GPU machine
and what runs there. The slow test plays a device call on this CPU: a clone packed, only the
files that would travel copied elsewhere (no ../shared beside them), the run with --cpu on a
few samples, its returned shards joined into a model folder, and the clone unpacked again."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import amfl.hub
from amfl.data.adir import default_adir_dir
from amfl.data.sources import default_source_dir
from amfl.weight_shards import join_weights

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "scripts" / "device_stage.sh"
RUN = ROOT / "scripts" / "device_real_image.sh"


def _bash(*args, cwd=ROOT, env=None):
    return subprocess.run(["bash", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("script", [STAGE, RUN])
def test_scripts_parse(script):
    assert _bash("-n", script).returncode == 0


def test_stage_without_a_verb_shows_its_usage():
    result = _bash(STAGE)
    assert result.returncode == 2
    assert "usage: bash scripts/device_stage.sh pack|unpack" in result.stderr


def test_device_run_refuses_to_start_without_an_output_folder():
    env = {key: value for key, value in os.environ.items() if key != "OUT"}
    result = _bash(RUN, 16, 1, env=env)
    assert result.returncode != 0
    assert "OUT must name the folder whose files come back" in result.stderr


def _travelling_files(clone: Path) -> list[str]:
    """What the device tool sends: files git tracks that the working tree holds, and untracked
    ones git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=clone, check=True, capture_output=True).stdout.decode().split("\0")
    return [name for name in listed if name and (clone / name).is_file()]


@pytest.mark.slow
def test_a_device_run_works_from_what_pack_leaves(tmp_path):
    if not default_adir_dir().is_dir() or not (default_source_dir() / "DAPI.tif").is_file():
        pytest.skip("the source images and ADIR metaphases are not here")
    clone, device, out = tmp_path / "clone", tmp_path / "device" / "repo", tmp_path / "out"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {**os.environ, "PYTHON": sys.executable, "AMFL_ADIR": str(default_adir_dir()),
           "AMFL_DATA": str(default_source_dir())}
    packed = _bash("scripts/device_stage.sh", "pack", cwd=clone, env=env)
    assert packed.returncode == 0, packed.stderr
    assert not (clone / "models").exists() and not (clone / "results").exists()

    files = _travelling_files(clone)
    for name in files + [str(path.relative_to(clone)) for path in (clone / "device_data").rglob("*") if path.is_file()]:
        (device / name).parent.mkdir(parents=True, exist_ok=True)
        (device / name).write_bytes((clone / name).read_bytes())
    out.mkdir()
    device_env = {key: value for key, value in env.items() if key not in ("AMFL_ADIR", "AMFL_DATA", "AMFL_CACHE")}
    ran = _bash("scripts/device_real_image.sh", 20, 1, "--cpu", "--max_samples", 16, "--synthetic_count", 8,
                "--real_repeats", 1, "--touching_repeats", 0, "--masked_repeats", 0,
                "--masked_overlapping_repeats", 0, "--num_workers", 0, "--eval_batch_size", 16,
                cwd=device, env={**device_env, "OUT": str(out)})
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert (out / "log.jsonl").is_file()
    assert sorted(path.name for path in (out / "model").glob("model-*.safetensors")) == ["model-01-of-01.safetensors"]

    join_weights(out / "model", tmp_path / "joined")
    assert amfl.hub.from_pretrained(tmp_path / "joined").base_width == 20

    unpacked = _bash("scripts/device_stage.sh", "unpack", cwd=clone, env=env)
    assert unpacked.returncode == 0, unpacked.stderr
    assert (clone / "models").is_dir() and (clone / "results").is_dir()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, check=True, capture_output=True, text=True)
    assert status.stdout == ""
