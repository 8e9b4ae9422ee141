"""Does tests/test_learning.py's proof of learning hold for other seeds, or only for the one it runs?

Runs the test `test_sft_learns_and_the_gate_promotes_it_over_the_base` once per seed
(CC_LEARNING_SEED: the tiny model's initial weights, its short pretraining and the LoRA run; the
captured traces, the split and the eval items stay the same) and prints, per seed, what the test
printed: valid_call_rate and tool_accuracy of the SFT model on the held-out items with their 95%
by-trace intervals, the untuned base's figures and the constant guess (the train split's most
frequent first tool) measured in the same run, the counts behind them, and whether the test passed.

    python benchmarks/learning_seeds.py [--seeds 0,1,2,3,4]

Each seed is a whole run of the test's fixtures (several minutes on a laptop CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEST = "tests/test_learning.py::test_sft_learns_and_the_gate_promotes_it_over_the_base"


def run_seed(seed: int) -> tuple[dict | None, bool]:
    """(the figures the test printed, whether it passed) for one seed."""
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "--basetemp", tmp,
                            TEST], cwd=REPO, capture_output=True, text=True,
                           env=dict(os.environ, CC_LEARNING_SEED=str(seed), PYTHONPATH=str(REPO)))
    printed = [line for line in p.stdout.splitlines() if line.startswith('{"seed"')]
    if not printed:
        print(p.stdout[-3000:], p.stderr[-3000:], file=sys.stderr)
    return (json.loads(printed[-1]) if printed else None), p.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    args = parser.parse_args()
    print("| seed | valid_call_rate (base) | tool_accuracy (base) | constant guess | behavioural_similarity (base) "
          "| items (tool steps, traces) | test |")
    print("|---|---|---|---|---|---|---|")
    for seed in (int(s) for s in args.seeds.split(",")):
        figures, passed = run_seed(seed)
        if figures is None:
            print(f"| {seed} | - | - | - | - | - | failed before its figures (output above) |", flush=True)
            continue
        ours, base, interval, counts = figures["sft"], figures["base"], figures["intervals"], figures["counts"]
        guess = figures["constant_guess"]

        def cell(name: str) -> str:
            low, high = interval[name]
            return f"{ours[name]:.3f} [{low:.3f}, {high:.3f}] ({base[name]:.3f})"

        print(f"| {seed} | {cell('valid_call_rate')} | {cell('tool_accuracy')} | {guess['tool']} "
              f"{guess['right']}/{guess['steps']} = {guess['tool_accuracy']:.3f} | {cell('behavioural_similarity')} "
              f"| {figures['eval_set']['items']} ({counts['tool_accuracy']}, {figures['eval_set']['traces']}) "
              f"| {'passed' if passed else 'FAILED'} |", flush=True)


if __name__ == "__main__":
    main()
