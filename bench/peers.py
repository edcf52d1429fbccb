"""The peers' side of bench/peers.sh, and the table it prints.

    python peers.py run torch|paddle [--repeats R] [--steps N] [--scheduler-steps M]
    python peers.py table [FILE...]

`run` times the seed's dynamic training loop (Linear(10, 10), SGD, a [10, 10] uniform batch,
mean loss, backward, optimizer step, CyclicLR step with base 0.5, max 1.0, 15 steps up and
5 down) in PyTorch eager or Paddle dygraph on the CPU with one thread, inside the loop with
perf_counter_ns, then the scheduler's `step()` alone. It prints one line per timed repeat,
`sample <system> <metric> <value>`, as `cargo bench --bench peers` does for this crate.

`table` reads such lines (from files or stdin) and prints the medians, the ratios and the
targets as a Markdown table.
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

SEED = dict(base=0.5, max=1.0, step_size_up=15, step_size_down=5)


def one_thread_env():
    # Read by the OpenMP and MKL runtimes when they load: set before importing a framework.
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CPU_NUM"):
        os.environ[name] = "1"


def torch_loop():
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    linear = torch.nn.Linear(10, 10)
    sgd = torch.optim.SGD(linear.parameters(), lr=SEED["base"])
    scheduler = torch.optim.lr_scheduler.CyclicLR(
        sgd,
        base_lr=SEED["base"],
        max_lr=SEED["max"],
        step_size_up=SEED["step_size_up"],
        step_size_down=SEED["step_size_down"],
        cycle_momentum=False,
    )

    def train_step():
        x = torch.rand(10, 10)
        loss = linear(x).mean()
        sgd.zero_grad()
        loss.backward()
        sgd.step()
        scheduler.step()

    return "torch", torch.__version__, train_step, scheduler.step


def paddle_loop():
    import paddle

    paddle.set_device("cpu")
    linear = paddle.nn.Linear(10, 10)
    scheduler = paddle.optimizer.lr.CyclicLR(
        base_learning_rate=SEED["base"],
        max_learning_rate=SEED["max"],
        step_size_up=SEED["step_size_up"],
        step_size_down=SEED["step_size_down"],
    )
    sgd = paddle.optimizer.SGD(learning_rate=scheduler, parameters=linear.parameters())

    def train_step():
        x = paddle.uniform([10, 10])
        loss = paddle.mean(linear(x))
        loss.backward()
        sgd.step()
        sgd.clear_gradients()
        scheduler.step()

    return "paddle", paddle.__version__, train_step, scheduler.step


def time_loop(fn, steps):
    start = time.perf_counter_ns()
    for _ in range(steps):
        fn()
    return time.perf_counter_ns() - start


def run(args):
    one_thread_env()
    system, version, train_step, scheduler_step = {"torch": torch_loop, "paddle": paddle_loop}[
        args.framework
    ]()
    print(f"version {system} {version}")
    for _ in range(args.warm_up_steps):
        train_step()
    # Short blocks, one sample each: their median is an undisturbed step's time even on a
    # busy machine (see benches/peers.rs).
    for _ in range(args.blocks):
        ns = time_loop(train_step, args.block_steps)
        print(f"sample {system} train_step_us {ns / args.block_steps / 1e3:.4f}")
    for _ in range(args.blocks):
        ns = time_loop(scheduler_step, args.scheduler_block_steps)
        print(f"sample {system} scheduler_step_ns {ns / args.scheduler_block_steps:.4f}")
    sys.stdout.flush()


NAMES = {
    "torch": "PyTorch {version} eager + `torch.optim.lr_scheduler.CyclicLR`",
    "paddle": "Paddle {version} dygraph + `paddle.optimizer.lr.CyclicLR`",
    "tch": "tch 0.26 (libtorch 2.13), no scheduler",
    "cyclic-lr": "tch 0.26 + cyclic-lr",
}
SHORT_NAMES = {"torch": "PyTorch", "paddle": "Paddle"}

# (metric, peer, at least): this crate's figure must be `at least` times faster than the peer's.
TARGETS = [
    ("train_step_us", "torch", 4.0),
    ("train_step_us", "paddle", 4.5),
    ("scheduler_step_ns", "torch", 30.0),
    ("scheduler_step_ns", "paddle", 30.0),
]
OVERHEAD_TARGET_PCT = 1.0


def machine():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, load average {load}"


def table(args):
    samples, versions = {}, {}
    lines = []
    if args.files:
        for path in args.files:
            with open(path) as f:
                lines.extend(f)
    else:
        lines = sys.stdin.readlines()
    for line in lines:
        words = line.split()
        if len(words) == 4 and words[0] == "sample":
            samples.setdefault((words[1], words[2]), []).append(float(words[3]))
        elif len(words) == 3 and words[0] == "version":
            versions[words[1]] = words[2]

    def median(system, metric):
        values = samples.get((system, metric))
        return statistics.median(values) if values else None

    def cell(value, digits):
        return "–" if value is None else f"{value:.{digits}f}"

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    blocks = {system: len(samples.get((system, "train_step_us"), [])) for system in NAMES}
    print(f"Measured {now} on {machine()}; one thread each; medians over timed blocks of "
          f"about a millisecond ({', '.join(f'{n} {s}' for s, n in blocks.items())}).")
    print()
    print("| | µs per training step | ns per scheduler step |")
    print("|---|---:|---:|")
    for system in ("torch", "paddle", "tch", "cyclic-lr"):
        name = NAMES[system].format(version=versions.get(system, "").split("+")[0])
        print(f"| {name} | {cell(median(system, 'train_step_us'), 1)} "
              f"| {cell(median(system, 'scheduler_step_ns'), 1)} |")
    print()
    print("| this crate vs | training step | scheduler step |")
    print("|---|---:|---:|")
    verdicts = []
    for peer in ("torch", "paddle"):
        row = []
        for metric in ("train_step_us", "scheduler_step_ns"):
            ours, theirs = median("cyclic-lr", metric), median(peer, metric)
            at_least = next(t for m, p, t in TARGETS if m == metric and p == peer)
            if ours is None or theirs is None:
                row.append("–")
                verdicts.append(False)
                continue
            ratio = theirs / ours
            met = ratio >= at_least
            verdicts.append(met)
            row.append(f"{ratio:.1f}× faster ({'met' if met else 'missed'}: ≥ {at_least:g}×)")
        print(f"| {SHORT_NAMES[peer]} | {row[0]} | {row[1]} |")
    print()
    raw = median("tch", "train_step_us")
    if raw is not None:
        ratios = [f"{theirs / raw:.1f}× faster than {SHORT_NAMES[peer]}'s"
                  for peer in ("torch", "paddle")
                  if (theirs := median(peer, "train_step_us")) is not None]
        print(f"Without the scheduler, a tch training step is {' and '.join(ratios)}.")
    overhead = median("cyclic-lr", "scheduler_overhead_pct")
    next_rate = median("cyclic-lr", "next_rate_ns")
    if overhead is not None:
        met = overhead <= OVERHEAD_TARGET_PCT
        verdicts.append(met)
        print(f"The scheduler adds {overhead:+.2f} % to the raw tch loop "
              f"({'met' if met else 'missed'}: ≤ {OVERHEAD_TARGET_PCT:g} %; median of the "
              f"ratios of interleaved blocks). ", end="")
    if next_rate is not None:
        print(f"The next rate alone (`step()`, what Paddle's scheduler step computes) "
              f"takes {next_rate:.1f} ns.", end="")
    print()
    sys.stdout.flush()
    return 0 if all(verdicts) else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="time a peer's seed loop")
    run_parser.add_argument("framework", choices=["torch", "paddle"])
    run_parser.add_argument("--blocks", type=int, default=100, help="timed blocks per figure")
    run_parser.add_argument("--block-steps", type=int, default=5, help="training steps per block")
    run_parser.add_argument("--scheduler-block-steps", type=int, default=200)
    run_parser.add_argument("--warm-up-steps", type=int, default=200)
    table_parser = commands.add_parser("table", help="print the medians and ratios")
    table_parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    if args.command == "run":
        run(args)
        return 0
    return table(args)


if __name__ == "__main__":
    sys.exit(main())
