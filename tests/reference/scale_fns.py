"""Custom scale functions of the reference cases, by name.

`tests/reference.rs` holds the same functions under the same names, as Rust closures of an
`f64`. Paddle hands `scale_fn` a float cycle or an int iteration count, PyTorch an int for
both; each function here gives the same float for an int as for the equal float, so the
Rust closures see the same numbers (every epoch of a trace is exact as a float)."""
import math

SCALE_FNS = {
    # A constant: half the amplitude, whatever the cycle.
    "half": lambda x: 0.5,
    # The amplitude divided by the cycle number (cycle mode only: 1/0 at iteration 0).
    "inv_cycle": lambda x: 1 / x,
    # A slow cosine of the iteration count, between 0 and 1.
    "cos_iter": lambda x: 0.5 * (1 + math.cos(x / 50)),
    # An exponential decay of the iteration count, reaching 0 for huge counts.
    "exp_decay_iter": lambda x: math.exp(-x / 1000),
}
