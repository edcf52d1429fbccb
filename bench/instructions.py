"""Instructions per step of the seed's training loop and of the scheduler, counted by valgrind's
callgrind: figures that machine load cannot move, where timings on a busy machine scatter.

    python3 bench/instructions.py          # from the repository root; ~8 minutes

Runs the `peers` bench (benches/peers.rs) twice under callgrind, with its cache simulation,
with different numbers of training steps, and divides the difference in each function's
inclusive cost by the difference in its calls, which cancels libtorch's start-up and
first-call costs. Needs valgrind
(callgrind_annotate) and cargo with libtorch set up (`make libtorch`).
"""

import json
import os
import re
import subprocess
import sys
import tempfile

# Training steps per block of the two runs (2 blocks each). The scheduler-only loop runs the
# same single step in both, so every difference comes from the training loops.
RUNS = [200, 1_000]
BLOCKS = 2
FUNCTIONS = {
    "train_step": "peers::Seed::train_step",
    "step_with": "cyclic_lr::cyclic::CyclicLr::step_with",
    "step": "cyclic_lr::cyclic::CyclicLr::step",
    "set_lr": "tch::nn::optimizer::Optimizer::set_lr",
}
# Instructions, and the simulated first-level cache misses (instructions, data reads and
# writes): a training step through libtorch evicts the scheduler's code and data from L1, so
# its misses are part of what the scheduler costs inside a loop.
EVENTS = ["Ir", "I1mr", "D1mr", "D1mw"]


def bench_binary():
    out = subprocess.run(
        ["cargo", "bench", "--bench", "peers", "--no-run", "--message-format=json"],
        check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "peers":
            if message.get("executable"):
                return message["executable"]
    sys.exit("instructions: cargo built no `peers` bench")


def inclusive_costs(binary, block_steps, work):
    out_file = os.path.join(work, f"callgrind.{block_steps}")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--cache-sim=yes", f"--callgrind-out-file={out_file}",
         binary, "--blocks", str(BLOCKS), "--block-steps", str(block_steps),
         "--scheduler-block-steps", "1", "--warm-up-steps", "1"],
        check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    annotated = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", f"--show={','.join(EVENTS)}",
         out_file],
        check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    costs = {}
    for key, name in FUNCTIONS.items():
        match = re.search(rf"^(.*?)\S*:{re.escape(name)} \[", annotated, re.MULTILINE)
        if not match:
            sys.exit(f"instructions: {name} is not in the profile (inlined by this compiler?)")
        counts = re.sub(r"\([^)]*\)", "", match.group(1)).split()
        if len(counts) != len(EVENTS):
            sys.exit(f"instructions: cannot read callgrind_annotate's line for {name}")
        costs[key] = [0 if c == "." else int(c.replace(",", "")) for c in counts]
    return costs


def main():
    binary = bench_binary()
    with tempfile.TemporaryDirectory() as work:
        print(f"instructions: two callgrind runs of {binary} (several minutes)", file=sys.stderr)
        first, second = (inclusive_costs(binary, steps, work) for steps in RUNS)
    extra_steps = BLOCKS * (RUNS[1] - RUNS[0])
    # Both loops take `extra_steps` more training steps; the scheduled one calls step_with
    # (so set_lr and step) once per step, and its training steps' cost includes those calls.
    per_call = {
        key: [(b - a) / extra_steps for a, b in zip(first[key], second[key])] for key in FUNCTIONS
    }
    per_call["train_step"] = [
        (total - scheduler) / 2
        for total, scheduler in zip(per_call["train_step"], per_call["step_with"])
    ]
    rows = [
        ("training step, raw tch (Linear(10, 10), SGD, a [10, 10] batch)", "train_step"),
        ("scheduler step, the rate set on the optimizer (`step_with`)", "step_with"),
        ("of which tch's `Optimizer::set_lr`", "set_lr"),
        ("of which the next rate (`CyclicLr::step`)", "step"),
    ]
    print("| per call, inside the training loop | instructions | L1i misses | L1d misses |")
    print("|---|---:|---:|---:|")
    for label, key in rows:
        ir, i1, d1r, d1w = per_call[key]
        print(f"| {label} | {ir:,.0f} | {i1:,.0f} | {d1r + d1w:,.0f} |")
    print()
    ir, i1, d1r, d1w = per_call["step_with"]
    raw_ir, raw_i1, raw_d1r, raw_d1w = per_call["train_step"]
    print(f"The scheduler step adds {100 * ir / raw_ir:.2f} % to a training step's instructions, "
          f"{100 * i1 / raw_i1:.2f} % to its L1i misses and "
          f"{100 * (d1r + d1w) / (raw_d1r + raw_d1w):.2f} % to its L1d misses; tch's set_lr is "
          f"{100 * per_call['set_lr'][0] / ir:.0f} % of the scheduler step's instructions.")


if __name__ == "__main__":
    main()
