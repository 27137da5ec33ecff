#!/usr/bin/env bash
# The committed HumanEval runs of `genesis-ps bench code` on the embedded model (SmolLM2-135M-Instruct,
# Q4_1) on a 2-core CPU. Subset: the 8 problems with the shortest prompts (short prompts = short
# solutions, the only ones a 135M model has a chance on, and the only ones whose eight methods fit in
# ~25 minutes here); max 64 new tokens, which fits a fenced short function.
set -euo pipefail
cd "$(dirname "$0")/.."
GPS=${GPS:-genesis-ps}

# 1. Why chat style: the instruct model continues the raw prompt (completion style) with a closing fence
#    and prose rather than a function body. Greedy only, 5 problems, a minute.
nice -n 10 $GPS bench code --order shortest --limit 5 --methods greedy --prompt-style completion \
  --max-new-tokens 64 --seed 0 --out benchmarks/results/code_completion

# 2. The comparison: every method, chat style.
nice -n 10 $GPS bench code --order shortest --limit 8 --prompt-style chat --max-new-tokens 64 \
  --block-size 32 --n-mcmc 1 --particles 2 --alpha 4 --seeds 1 \
  --methods single,low-temp,power-mh,power-smc,bon,darwin,darwin-power --darwin-sampler smc \
  --darwin-population 1 --darwin-generations 1 --darwin-offspring 1 --seed 0 --out benchmarks/results/code

# Regenerate the reports from rows.jsonl alone (identical files):
#   genesis-ps bench code --report benchmarks/results/code
