"""``rnnfast bench``: rnnfast against the other CPU implementations a user could run instead.

For every (scenario, cell) row it builds one rnnfast model with a fixed seed and gives exactly its
weights to every peer that is importable:

- ``numpy``: :mod:`rnnfast.reference`, plain NumPy, which is the "naive NumPy" way to write an RNN
  (the input projection of all steps as one matrix product, then ``h @ W_hh.T`` and the gate math per step);
- ``torch``: ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` (inference under ``torch.no_grad``; training with
  autograd), and for streaming ``torch.nn.RNNCell`` / ``LSTMCell`` / ``GRUCell`` called once per step;
- ``onnxruntime``: the model exported with :func:`rnnfast.to_onnx`, run by an ONNX Runtime CPU session;
  for streaming the same graph is called once per step with T = 1, the state passed in and out;
- ``keras``: Keras 3 ``SimpleRNN`` / ``LSTM`` / ``GRU`` (on whichever backend Keras is configured for, the
  torch backend unless ``KERAS_BACKEND`` says otherwise), sequence inference only.

TensorFlow and JAX are not measured on their own (Keras covers them when it runs on them).

Cell variants (``--cells gru_reset_before,lstm_proj,lstm_peepholes,lstm_clip`` or ``--cells variants``; not in
the default run; float32; see :mod:`.variants`): rnnfast through :func:`rnnfast.functional.variant_forward`
(streaming: one call per step, T = 1, the state carried), against the peers that compute the same cell: the GRU
with the reset gate before the product against ONNX Runtime's GRU with ``linear_before_reset=0`` and Keras's
``GRU(reset_after=False)``; the LSTM with a projection to P = H/2 against ``torch.nn.LSTM(proj_size=P)``; the
LSTM with peepholes and the LSTM with its gates clipped to [-1, 1] against ONNX Runtime's LSTM (``P``, ``clip``).
The ONNX models are made with ``onnx.helper`` from the row's weights. Their FLOP count has R = P in place of H
for the recurrent product, plus ``2*T*B*P*H`` for the projection.

Reduced precision (``--precision``, default ``float32,int8,bf16``; inference and streaming rows only; inputs,
outputs and states float32 in every one; see :mod:`.reduced`):

- ``rnnfast int8`` / ``rnnfast bf16``: ``rnnfast.quantize(model, "int8"|"bf16")``, called as the float model is
  (its ``stepper`` for streaming); not measured, with the reason, in a build without ``rnnfast.quantize``;
- ``onnxruntime`` int8: ``onnxruntime.quantization.quantize_dynamic`` of the exported model (per-channel int8
  weights) into ``DynamicQuantizeLSTM``; LSTM only (ONNX Runtime has no quantized GRU or RNN: n/a);
- ``openvino`` bf16: the exported model compiled by OpenVINO for the CPU with ``INFERENCE_PRECISION_HINT=bf16``
  at the row's static shapes (not measured where OpenVINO does not run the recurrent node in bf16);
- ``litert`` int8: LiteRT's dynamic-range model (int8 weights, its hybrid sequence kernels), written with the
  schema ``ai_edge_litert`` ships (:mod:`.litert_model`); LSTM and RNN (LiteRT has no GRU operator: n/a).

rnnfast float32 is measured in every run: it is the reference of every comparison. For each row the report
gives the fastest peer of any precision, and for rnnfast in each precision how many times faster it is than
that peer, than the fastest peer of its own precision, and than rnnfast float32; and for every
reduced-precision implementation the largest absolute difference of its output (every step's, for streaming)
from rnnfast float32's on the same input and weights, with rnnfast int8's error over ONNX Runtime int8's.

Before timing a row, every implementation runs once on the same input and its results (outputs and
final states; for training also the input and parameter gradients; for streaming every step's output)
are compared with rnnfast's: the largest absolute difference is printed, and a row whose peer differs
by more than 1e-4 relative to the magnitude of the result is flagged and makes the command exit 1 (a
reduced-precision output: more than 0.1, five times the largest error rounding costs on the bench's shapes and
far below what a wrong gate order gives).

Timing: the implementations of a row take turns (round robin, the starting one rotating), each turn a
pause of ``SETTLE_SECONDS`` (so that the previous implementation's idle threads have stopped spinning),
untimed calls for ``WARM_SECONDS`` and a timed sample of enough calls to last about a millisecond; a row reports the
median of its samples per call (per step for streaming). Sequence scenarios report milliseconds per
call, streaming reports microseconds per step. GFLOP/s counts ``2*T*B*G*H*(I+H)`` floating-point
operations for a forward pass (G gates), three times that for forward + backward, and it is given as a
fraction of the float32 matrix-multiply rate NumPy's BLAS reaches in the same run (the best of a few
``n x n @ n x n`` products, n = 2048, at the start and again at the end; the better of the two). Every framework gets the same thread count (``--threads``;
NumPy's OpenBLAS too where it can be set at run time).

``python -m rnnfast bench --help`` lists the options; :func:`rnnfast._bench.measure.run` is the programmatic
entry point and returns what ``--json`` writes.

Modules: :mod:`.scenarios` (shapes, cells, the problem of a row), :mod:`.peers` (finding the peers and
their float32 implementations), :mod:`.variants` (the cell variants' implementations), :mod:`.reduced` and
:mod:`.litert_model` (the reduced-precision ones),
:mod:`.timing`, :mod:`.measure` (the run), :mod:`.report` (tables, summary, chart) and :mod:`.command_line`
(the options and the command).
"""
