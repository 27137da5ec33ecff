#!/bin/bash
# The committed soft-prompt run (benchmarks/results/softprompt/): arith (all stages) and MATH500 (stages
# 1-3, the 50 shortest problems) as two single-thread processes under nice, sized for a shared 2-core CPU.
# Add --resume to either command to reuse the restarts in its vectors.pt (nothing is re-optimised).
set -euo pipefail
OUT=benchmarks/results/softprompt
COMMON="--k 32 --restarts 1 --lr 0.2 --schedule cosine --stop-loss 0.3 --sample 5 --batch 10 --threads 1 --baseline-draws 2"
NOTE="Reduced for a shared 2-core CPU: 1 restart instead of 5, at most STEPS Adam steps instead of 500, stage-1 sample of 5 pairs, stop once greedy-exact with every loss < 0.3, 2 baseline draws."
nice -n 10 genesis-ps softprompt run --pairs arith --n 50 $COMMON --steps 15 --stage all --sweep-pairs 3 \
  --note "${NOTE/STEPS/15}" --note "Stage 4 on the first 3 pairs only (K=128 costs ~3.3x K=32 per step)." \
  --out $OUT/arith "$@" > /dev/null &
nice -n 10 genesis-ps softprompt run --pairs math500 --select shortest --n 50 $COMMON --steps 12 --stage 1,2,3 \
  --note "${NOTE/STEPS/12}" \
  --note "The 50 MATH500 problems with the fewest question+answer tokens (SmolLM2 tokenizer); no stage 4 here." \
  --out $OUT/math500 "$@" > /dev/null &
wait
