"""A thin training toolkit in NumPy around the recurrent layers: dense layer, losses, optimisers, clipping,
truncated BPTT.

Everything here is small and explicit: there is no autograd and no model container. A "module" is any
object with a ``parameters()`` method returning its live parameter arrays by name and a ``grads`` dict
with the same names and shapes, into which its ``backward`` adds gradients; the recurrent layers
(:class:`rnnfast.RNN`, :class:`rnnfast.LSTM`, :class:`rnnfast.GRU`) and :class:`Linear` are modules.
A training step is written out by hand::

    import rnnfast
    from rnnfast import nn

    rnn = rnnfast.LSTM(8, 32, seed=0)
    head = nn.Linear(32, 5, seed=1)
    opt = nn.Adam([rnn, head], lr=1e-3)

    out, _ = rnn.forward(x, training=True)             # x (T, B, 8) -> out (T, B, 32)
    logits = head.forward(out[-1], training=True)       # many-to-one: the last step -> (B, 5)
    loss, d_logits = nn.softmax_cross_entropy(logits, y)
    opt.zero_grad()                                     # clears rnn.grads and head.grads
    d_out = np.zeros_like(out)
    d_out[-1] = head.backward(d_logits)
    rnn.backward(d_out)
    nn.clip_grad_norm([rnn, head], max_norm=1.0)
    opt.step()                                          # updates the parameter arrays in place

Contents:

- :class:`Linear`: ``y = x W^T + b`` on the last axis, so it applies per step to (T, B, H) sequences;
- :func:`softmax_cross_entropy` and :func:`mse`: mean losses returning ``(loss, d_input)``, with an
  optional ``mask`` for padded steps; :func:`softmax` and :func:`one_hot` helpers;
- :class:`SGD` (with momentum) and :class:`Adam`, as PyTorch's ``torch.optim.SGD`` and ``Adam``;
- :func:`clip_grad_norm`: clipping by the global norm of all gradients, as PyTorch's
  ``clip_grad_norm_``;
- :class:`TruncatedBPTT`: walks a long sequence in chunks, carrying the recurrent state forward and
  stopping the gradient between chunks.

Errors are ``ValueError``/``TypeError`` naming the argument and the shapes involved.
"""

from ._linear import Linear
from .losses import mse, one_hot, softmax, softmax_cross_entropy
from .optim import SGD, Adam, clip_grad_norm
from .tbptt import TruncatedBPTT
from ._progress import ProgressBar
from .fit import History, fit

__all__ = [
    "Linear",
    "softmax", "softmax_cross_entropy", "mse", "one_hot",
    "SGD", "Adam", "clip_grad_norm", "TruncatedBPTT",
    "fit", "History", "ProgressBar",
]
