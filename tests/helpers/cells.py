"""The four cells every kernel test goes over, and how many gate blocks each stacks in its weights."""

CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
