"""A thin training toolkit in NumPy around the recurrent layers: modules, the model container
:class:`Sequential`, losses, optimisers, clipping, truncated BPTT.

Everything here is small and explicit: there is no autograd. A "module" is any object with
``forward(x, *, training=False)``, ``backward(d_y) -> d_x`` (after a training forward), ``parameters()``
returning its live parameter arrays by name, a ``grads`` dict with the same names and shapes (into which
``backward`` adds), ``zero_grad()``, ``state_dict()`` and ``load_state_dict()``; the recurrent layers
(:class:`rnnfast.RNN`, :class:`rnnfast.LSTM`, :class:`rnnfast.GRU`, whose ``forward`` also takes and returns
a state), :class:`Linear`, :class:`Embedding`, :class:`Dropout`, :class:`LastStep`, the activations and
:class:`Sequential` itself are modules. A whole model::

    import rnnfast
    from rnnfast import nn

    model = nn.Sequential(nn.Embedding(1000, 32, seed=0), rnnfast.LSTM(32, 64, seed=1),
                          nn.LastStep(), nn.Linear(64, 5, seed=2))
    opt = nn.Adam(model, lr=1e-3)

    logits = model.forward(tokens, training=True, lengths=lengths)   # tokens (T, B) ints -> (B, 5)
    loss, d_logits = nn.softmax_cross_entropy(logits, y)
    opt.zero_grad()
    model.backward(d_logits)
    nn.clip_grad_norm(model, max_norm=1.0)
    opt.step()                                          # updates the parameter arrays in place
    probs = nn.softmax(model.predict(tokens, batch_size=256, lengths=lengths))

or the same step written out module by module::

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
    opt.step()

Contents:

- :class:`Sequential`: modules in order, trained, indexed, saved (:func:`rnnfast.save`) and loaded as one
  model, with PyTorch's state-dict keys; :meth:`Sequential.predict` for batched inference;
- :class:`Linear`: ``y = x W^T + b`` on the last axis, so it applies per step to (T, B, H) sequences;
- :class:`Embedding` (token ids to vectors), :class:`Dropout`, :class:`LastStep` (each sequence's last valid
  step: the many-to-one head);
- activations :class:`ReLU`, :class:`Tanh`, :class:`Sigmoid`, :class:`GELU`, :class:`ELU`,
  :class:`LeakyReLU`, :class:`SELU`, :class:`Softplus`, :class:`SiLU`, :class:`Identity`, :class:`Softmax`,
  as their ``torch.nn`` namesakes;
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
from ._modules import Module
from .activations import ELU, GELU, SELU, Identity, LeakyReLU, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh
from .dropout import Dropout
from .embedding import Embedding
from .last_step import LastStep
from .sequential import Sequential
from .losses import mse, one_hot, softmax, softmax_cross_entropy
from .optim import SGD, Adam, clip_grad_norm
from .tbptt import TruncatedBPTT

__all__ = [
    "Module", "Sequential", "Linear", "Embedding", "Dropout", "LastStep",
    "ReLU", "Tanh", "Sigmoid", "GELU", "ELU", "LeakyReLU", "SELU", "Softplus", "SiLU", "Identity", "Softmax",
    "softmax", "softmax_cross_entropy", "mse", "one_hot",
    "SGD", "Adam", "clip_grad_norm", "TruncatedBPTT",
]
