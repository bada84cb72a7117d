#!/usr/bin/env bash
# The GPU check: PFV on onnxruntime's CUDA provider (and TensorRT's where it loads) on a machine with an NVIDIA
# GPU and no network: the GPU-relevant tests, the providers benchmark (I/O binding, F_N's statistics in the
# graph on and off) and python -m benchmarks.gpu_check (PFV / bare at batch 32, pictures against the CPU's).
#
#   benchmarks/gpu.sh fetch          here, with the package registry: the wheels the GPU machine lacks, for its
#                                    Python 3.12, into .whl-all/ (git-ignored), the large ones cut in parts of
#                                    PART_MB (a call carries 64 MiB, the working tree's 40 MB included)
#   benchmarks/gpu.sh stage N        here: put the N-th group of those files (at most PART_MB, from 1) in .whl/;
#                                    prints how many groups there are
#   benchmarks/gpu.sh stash          there, in the call that carries .whl/: keep its files in /tmp/pfv-wheels
#                                    (back to back, stage and stash each group: a machine stays warm 30 s)
#   benchmarks/gpu.sh run [OUT]      there: install from /tmp/pfv-wheels (no network), run the checks, write
#                                    the tables and logs to OUT (default $OUT, else gpu-results)
#   benchmarks/gpu.sh dry-run [OUT]  here: the same checks on the CPU, from the project's environment
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
PYTHON=${PYTHON:-python3}
WHEELS=/tmp/pfv-wheels
ORT_GPU=${ORT_GPU:-onnxruntime-gpu==1.31.1}
# what the GPU machine's Python may lack of what the project and its tests need (numpy, onnx, torch are there)
PART_MB=${PART_MB:-24}
MISSING=${MISSING:-"scipy opencv-python-headless pillow pytest pytest-xdist execnet pluggy iniconfig hypothesis sortedcontainers"}

checks() {  # $1 provider (CUDA or CPU), $2 the output folder, $3 runs
  local provider=$1 out=$2 runs=$3
  mkdir -p "$out"
  "$PYTHON" -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())" | tee "$out/providers.txt"
  # the tests whose code paths differ on an accelerator: sessions and kept outputs, statistics in the graph,
  # the solver's guarantee, the picture in the graph, transformers (PFV() picks CUDA where it loads)
  # each step runs whatever the one before it gave: a failing test must not cost the measurements
  "$PYTHON" -m pytest -q -p no:cacheprovider -n 0 tests/runtime tests/core/test_fidelity.py tests/analyses/test_in_graph.py \
    tests/apps/test_transformers.py 2>&1 | tee "$out/tests.log" | tail -3 || echo "some tests failed: $out/tests.log" >&2
  "$PYTHON" -m benchmarks.gpu_check --provider "$provider" --runs "$runs" --out "$out" 2>&1 | tee "$out/gpu_check.log" || echo "the GPU check failed" >&2
  "$PYTHON" -m benchmarks.providers --runs "$runs" $( [ "$provider" = CPU ] && echo --quick ) 2>&1 | tee "$out/providers.md" || echo "the providers table failed" >&2
}

case "$mode" in
  fetch)
    mkdir -p .whl-all
    platforms="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $platforms -d .whl-all "$ORT_GPU" $MISSING
    for wheel in .whl-all/*.whl; do
      if [ "$(stat -c%s "$wheel")" -gt $((PART_MB * 1000000)) ]; then split -b "${PART_MB}MB" "$wheel" "$wheel.part-" && rm "$wheel"; fi
    done
    ls -l .whl-all ;;
  stage)
    rm -rf .whl && mkdir .whl
    "$PYTHON" - "${2:?which group}" "$PART_MB" <<'GROUPS'
import shutil, sys
from pathlib import Path
wanted, limit = int(sys.argv[1]), int(sys.argv[2]) * 1_000_000
groups, size = [[]], 0
for path in sorted(Path(".whl-all").iterdir()):
    if size + path.stat().st_size > limit and groups[-1]:
        groups.append([]); size = 0
    groups[-1].append(path); size += path.stat().st_size
if not 1 <= wanted <= len(groups):
    sys.exit(f"no group {wanted}: there are {len(groups)}")
for path in groups[wanted - 1]:
    shutil.copy(path, ".whl")
print(f"group {wanted} of {len(groups)}: {', '.join(p.name for p in groups[wanted - 1])}")
GROUPS
    ;;
  stash)
    ls .whl/* > /dev/null 2>&1 || { echo "nothing in .whl/ to keep: carry it (benchmarks/gpu.sh stage N first)" >&2; exit 2; }
    mkdir -p "$WHEELS" && cp .whl/* "$WHEELS"/ && ls -l "$WHEELS" ;;
  run)
    out=${2:-${OUT:-gpu-results}}
    for first in "$WHEELS"/*.whl.part-aa; do [ -e "$first" ] && cat "${first%.part-aa}".part-* > "${first%.part-aa}"; done
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target /tmp/pfv-site "$WHEELS"/*.whl
    export PYTHONPATH=/tmp/pfv-site:$PWD
    # onnxruntime-gpu (installed without its dependencies) loads CUDA's and cuDNN's libraries from the nvidia-*
    # packages torch brought there
    nvidia=$("$PYTHON" -c 'import glob, os, nvidia; print(":".join(sorted(glob.glob(os.path.join(list(nvidia.__path__)[0], "*", "lib")))))' 2>/dev/null || true)
    export LD_LIBRARY_PATH=${nvidia}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee /dev/stderr > /dev/null || true
    checks CUDA "$out" 9 ;;
  dry-run)
    out=${2:-gpu-results}
    PYTHON=${PYTHON_DRY:-.venv/bin/python}
    checks CPU "$out" 2 ;;
  *)
    sed -n '2,17p' "$0"; exit 2 ;;
esac
