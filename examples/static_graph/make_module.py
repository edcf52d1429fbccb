"""Builds the TorchScript module that examples/static_graph trains: Paddle's static-graph seed.

The seed's program is `x: [None, 4, 5] -> z = paddle.static.nn.fc(x, 100) -> loss = mean(z)`.
`fc` flattens every dimension after the first ([N, 4, 5] -> [N, 20]) and applies a Linear(20, 100)
whose weight starts Xavier-uniform and whose bias starts at zero, as here.

The seed also declares and feeds `y: [None, 4, 5]`, but its loss never reads it. `loss(x, y)` takes
`y` the same way and ignores it, so that the Rust example feeds the program what the seed feeds.

    python3 make_module.py                          # examples/static_graph/module.pt
    python3 make_module.py --variant no-loss OUT    # test assets: no `loss` method,
    python3 make_module.py --variant wrong-shapes OUT  # or a Linear(20, 50)

Needs torch 2.13 (`PYTHONPATH=.libtorch python3 ...` uses the one scripts/libtorch.sh installs).
The weights come from a fixed seed and the archive is rewritten without what varies between
machines and runs, so a rebuild with the same torch gives the same bytes.
"""

import argparse
import hashlib
import io
import os
import sys
import warnings

# The torch that scripts/libtorch.sh installs comes without NumPy, which this script does not need.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402


class StaticGraph(torch.nn.Module):
    def __init__(self, outputs: int = 100):
        super().__init__()
        self.fc = torch.nn.Linear(20, outputs)
        torch.nn.init.xavier_uniform_(self.fc.weight)
        torch.nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))

    @torch.jit.export
    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # The seed's loss is mean(fc(x)); y is fed but unused, as in the seed.
        return self.forward(x).mean()


class NoLoss(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(20, 100)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


VARIANTS = {
    "seed": lambda: StaticGraph(),
    "no-loss": lambda: NoLoss(),
    "wrong-shapes": lambda: StaticGraph(outputs=50),
}


def reproducible(scripted: torch.jit.ScriptModule) -> bytes:
    """The saved module without the records that differ from one build to the next.

    `torch.jit.save` adds, beside each code file, a `.debug_pkl` of source ranges naming the
    absolute paths of this script and of torch's own sources, and a random
    `.data/serialization_id`. libtorch loads a module without the debug records (its error
    messages then quote the serialized code instead of the Python source); the id is made from
    the contents instead.
    """
    saved = io.BytesIO()
    torch.jit.save(scripted, saved)
    reader = torch._C.PyTorchFileReader(io.BytesIO(saved.getvalue()))
    kept = [
        name
        for name in reader.get_all_records()
        if not name.endswith(".debug_pkl")
        and name not in ("version", "byteorder", ".data/serialization_id")
    ]
    digest = hashlib.sha256()
    out = io.BytesIO()
    writer = torch._C.PyTorchFileWriter(out)
    for name in kept:
        data = reader.get_record(name)
        digest.update(name.encode() + b"\0" + data)
        writer.write_record(name, data, len(data))
    serialization_id = str(int(digest.hexdigest(), 16) % 10**40).zfill(40).encode()
    writer.write_record(".data/serialization_id", serialization_id, len(serialization_id))
    writer.set_min_version(int(reader.get_record("version")))
    writer.write_end_of_file()
    return out.getvalue()


def main():
    if os.environ.get("PYTHONHASHSEED") != "0":
        # TorchScript writes a class's constants in set order, which follows string hashing:
        # fix the hash seed so that the code in the archive comes out the same every time.
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=os.path.join(here, "module.pt"))
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="seed")
    args = parser.parse_args()

    torch.manual_seed(0)
    module = VARIANTS[args.variant]()
    with warnings.catch_warnings():
        # torch 2.13 marks torch.jit.script deprecated; it still writes what libtorch loads.
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(module)
    with open(args.out, "wb") as f:
        f.write(reproducible(scripted))
    print(f"{args.out}: {args.variant}, {os.path.getsize(args.out)} bytes, torch {torch.__version__}")


if __name__ == "__main__":
    main()
