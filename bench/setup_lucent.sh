#!/usr/bin/env bash
# Lucent 0.1.8 in its own virtual environment (it needs kornia 0.4.1, which newer torch code
# around it would not tolerate). Idempotent: does nothing when the environment works.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${LUCENT_VENV:-$here/.lucent-venv}"
if "$venv/bin/python" -c "import lucent.optvis.render" 2>/dev/null; then
  echo "$venv"
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet torch==2.14.1 torchvision==0.29.1 >&2
"$venv/bin/pip" install --quiet --no-deps torch-lucent==0.1.8 kornia==0.4.1 >&2
"$venv/bin/pip" install --quiet decorator tqdm ipython pillow numpy >&2
echo "$venv"
