"""Variable-length sequences (``lengths=``) in the native ops: against the reference, what lengths mean
(outputs past the end, final states, gradients), and bad lengths refused. The reference with lengths against
finite differences is in api/test_reference.py, the layers against PyTorch's packed sequences in
interop/test_torch_packed_sequences.py."""

from __future__ import annotations

import numpy as np
import pytest

from rnnfast import functional as F, reference as R

from helpers.native_problems import CELLS, LENGTHS, make_problem, run_with_lengths


@pytest.mark.parametrize("kind", list(LENGTHS))
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_native_with_lengths_matches_reference(cell, kind, dtype):
    p = make_problem(cell, 6, 5, 9, 13, dtype=dtype, seed=1)
    got, want = run_with_lengths(F, cell, p, LENGTHS[kind]), run_with_lengths(R, cell, p, LENGTHS[kind])
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for name, w in want.items():
        if w.size:
            scale = max(1.0, float(np.max(np.abs(w))))
            err = float(np.max(np.abs(got[name] - w)))
            assert err <= tol * scale, f"{cell} {kind} {np.dtype(dtype).name}: {name} differs by {err:.2e}"


@pytest.mark.parametrize("cell", CELLS)
def test_lengths_semantics(cell):
    """Outputs past the end are zero; the final state is the state at the last step; d_out past the end
    is ignored; the full length equals no lengths."""
    lengths = np.array(LENGTHS["with_zero"])
    p = make_problem(cell, 6, 5, 3, 4)
    r = run_with_lengths(F, cell, p, lengths)
    for b, n in enumerate(lengths):
        assert not np.any(r["out"][n:, b]), "outputs past a sequence's end must be zero"
        expected_h = p["h0"][b] if n == 0 else r["out"][n - 1, b]
        np.testing.assert_array_equal(r["h_n"][b], expected_h)
    noisy = dict(p, d_out=p["d_out"].copy())
    for b, n in enumerate(lengths):
        noisy["d_out"][n:, b] = 1e3
    r_noisy = run_with_lengths(F, cell, noisy, lengths)
    for name in ("d_x", "d_h0", "d_w_ih", "d_w_hh", "d_b_ih"):
        np.testing.assert_allclose(r_noisy[name], r[name], rtol=1e-12, atol=1e-12, err_msg=name)
    full = run_with_lengths(F, cell, p, np.full(5, 6))
    plain = run_with_lengths(F, cell, p, None)
    for name in plain:
        np.testing.assert_array_equal(full[name], plain[name], err_msg=name)


def test_bad_lengths_are_refused():
    p = make_problem("gru", 4, 3, 2, 5)
    args = (p["x"], p["h0"], p["w_ih"], p["w_hh"])
    with pytest.raises(ValueError, match=r"lengths has shape \(2,\), expected \(batch,\) = \(3,\)"):
        F.gru(*args, lengths=[1, 2])
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, seq_len\] = \[0, 4\]"):
        F.gru(*args, lengths=[1, 5, 2])
    with pytest.raises(ValueError, match=r"lengths must lie in"):
        R.gru(*args, lengths=[1, -1, 2])
    with pytest.raises(TypeError, match="lengths must be integers"):
        F.gru(*args, lengths=[1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="lengths must be integers"):
        F.gru(*args, lengths=[True, False, True])
