"""Runnable examples of every common RNN pattern, trained with :mod:`rnnfast.nn` on the native layers.

Where the model is a chain of modules (or any object with the module interface), it trains with
:func:`rnnfast.nn.fit`; the encoder-decoder and the truncated-BPTT forecaster write their loops out,
as fit does not do what they teach.

Each module is a short script with ``main(argv)`` (its command line: ``rnnfast demo NAME`` or
``python examples/NAME.py``) and ``run(...)`` (the training, with keyword settings, returning a dict
with at least ``losses`` (per epoch), ``summary`` and ``seconds``):

- :mod:`~rnnfast.examples.one_to_one`: an RNN over a single step as a classifier;
- :mod:`~rnnfast.examples.char_rnn`: character-level text generation as the classic tutorial does it
  (many-to-one), relu RNN or LSTM, on the article shipped in ``rnnfast/data``;
- :mod:`~rnnfast.examples.parity`: many-to-one classification of variable-length sequences (``lengths=``);
- :mod:`~rnnfast.examples.spell_number`: one-to-many, a sequence from a single input;
- :mod:`~rnnfast.examples.tagging`: many-to-many (synced), a stacked bidirectional GRU;
- :mod:`~rnnfast.examples.addition`: encoder-decoder, with the decoder driven by the stepper;
- :mod:`~rnnfast.examples.timeseries`: forecasting with truncated BPTT and streaming anomaly detection.

Their shared command line (options, closing lines, the loss-curve plot) is
:mod:`~rnnfast.examples.command_line`. The registry of names is :mod:`rnnfast.demos`.
"""
