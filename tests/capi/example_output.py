"""What examples/c and examples/cpp print after their first line, computed by the Python layer: .ci/capi compares
the two, line for line (%.9g prints a float32 exactly, so equal lines are equal bits).

    python tests/capi/example_output.py [MODEL.npz]

Without a file, the examples' built-in GRU (input 3, hidden 4, weights from their formula).
"""

from __future__ import annotations

import sys

import numpy as np

import rnnfast

T, B = 5, 2


def builtin_gru() -> rnnfast.GRU:
    """The GRU examples/c/main.c makes from raw arrays."""
    I, H, G = 3, 4, 3
    gru = rnnfast.GRU(I, H)
    i = np.arange(G * H * I)
    j = np.arange(G * H * H)
    k = np.arange(G * H)
    gru.load_state_dict({
        "weight_ih_l0": (((i * 5) % 9 - 4) / np.float32(16)).astype(np.float32).reshape(G * H, I),
        "weight_hh_l0": (((j * 7) % 13 - 6) / np.float32(32)).astype(np.float32).reshape(G * H, H),
        "bias_ih_l0": ((k % 5 - 2) / np.float32(8)).astype(np.float32),
        "bias_hh_l0": ((k % 3 - 1) / np.float32(8)).astype(np.float32),
    })
    return gru


def main(argv: list[str]) -> None:
    model = rnnfast.load(argv[1]) if len(argv) > 1 else builtin_gru()
    t, b, i = np.meshgrid(np.arange(T), np.arange(B), np.arange(model.input_size), indexing="ij")
    x = (((7 * t + 3 * b + 5 * i) % 11 - 5) / 8).astype(np.float32)  # (T, B, I)
    out, state = model(np.ascontiguousarray(x.transpose(1, 0, 2)) if model.batch_first else x)
    if model.batch_first:
        out = out.transpose(1, 0, 2)
    h_n = state[0] if isinstance(state, tuple) else state
    for tt in range(T):
        for bb in range(B):
            print(f"out[t={tt}, b={bb}]:", " ".join("%.9g" % v for v in out[tt, bb]))
    print("h_n:", " ".join("%.9g" % v for v in h_n.ravel()))
    if model.bidirectional or model.direction == "reverse":
        return  # the examples print the stepper's refusal, which this does not reproduce
    print("stepper equals forward: yes")


if __name__ == "__main__":
    main(sys.argv)
