#!/usr/bin/env bash
# Runs a command on a lent accelerator machine (the `device` tool), whose Python lacks
# ml-collections and nest_asyncio (and tensorflow-datasets, which the code imports lazily).
# Prepare here, once (network):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
#       ml_collections==1.1.0 nest_asyncio
#   cp ../shared/data/cifar10-jpeg.tar.gz data/
# then, with carry=[".whl", "data"]:
#   bash scripts/device_run.sh bash scripts/paper_gpu.sh "$OUT/paper_gpu" --budget=480
#   bash scripts/device_run.sh bash benchmarks/gpu_suite.sh "$OUT/gpu_suite"
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
  pip install --quiet --no-index --no-deps --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
python -c "import jax, ml_collections; print('device_run:', jax.__version__, jax.devices())"
exec "$@"
