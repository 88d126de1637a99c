#!/usr/bin/env bash
# Ready this checkout for a lent GPU machine (the device tool of ../shared/GPU.md), and back.
#
# The tool sends the checkout's files and the paths named in `carry`, 64 MiB in all, and the
# tracked tree alone is larger (models/ and results/ hold about 90 MB). `pack` takes those two
# folders out of the working tree with git's sparse checkout (they stay in the index, so git
# sees no change and no commit can delete them) and puts what a training run reads into
# device_data/ (git-ignored; name it in `carry`): the rebuilt Pommier cache and the ADIR
# metaphases. `unpack` brings models/ and results/ back. Whether the tool sends a sparse
# checkout as it is has not been tried on a device yet: check it with the first call.
#
#   bash scripts/device_stage.sh pack      # before the device calls
#   bash scripts/device_stage.sh unpack    # after them
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=device_data
PYTHON=${PYTHON:-.venv/bin/python}

case "${1:-}" in
pack)
    cache=$("$PYTHON" -c 'from amfl.data.dataset import default_cache_path; print(default_cache_path())')
    [ -f "$cache" ] || "$PYTHON" -m amfl.data build
    adir=$("$PYTHON" -c 'from amfl.data.adir import default_adir_dir; print(default_adir_dir())')
    [ -d "$adir" ] || { echo "error: no ADIR metaphases at $adir (set AMFL_ADIR)" >&2; exit 2; }
    mkdir -p "$STAGE/cache"
    cp "$cache" "$STAGE/cache/"
    rm -rf "$STAGE/adir-mfish" && cp -r "$adir" "$STAGE/adir-mfish"
    git sparse-checkout set --no-cone '/*' '!/models/' '!/results/'
    # Tracked files still in the working tree, untracked ones git does not ignore, and the stage.
    sent=$({ git ls-files -z --cached --others --exclude-standard | xargs -0 -r du -b 2>/dev/null || true
             du -sb "$STAGE"; } | awk '{ total += $1 } END { print total }')
    echo "staged: $STAGE/ (carry it); about $((sent / 1048576)) MiB would travel, 64 MiB allowed"
    ;;
unpack)
    git sparse-checkout disable
    echo "models/ and results/ are back; $STAGE/ stays (git-ignored) for the next session's calls"
    ;;
*)
    echo "usage: bash scripts/device_stage.sh pack|unpack" >&2
    exit 2
    ;;
esac
