// The cells the kernels compute and the facts every layer of the library shares about them: the one
// table of them in C++ (the Python package checks its own against it at import, _core.cell_facts).
// A cell's arithmetic lives in its own header under cells/; this leaf header only names it.
#pragma once

#include <cstdint>
#include <stdexcept>

namespace rnnfast {

// The order is the table's (and the binding's): values index kCellInfo.
enum class Cell { kRnnTanh = 0, kRnnRelu = 1, kLstm = 2, kGru = 3 };

struct CellInfo {
  const char* name;     // as the Python API spells it
  int gates;            // G: the weights have G*H rows, gate blocks in PyTorch's order
  int workspace_slots;  // the training workspace keeps slots*H values per (t, b) row (cells/<cell>.h)
  bool cell_state;      // a second state beside h (the LSTM's c)
};

constexpr int kCellCount = 4;
constexpr CellInfo kCellInfo[kCellCount] = {
    {"rnn_tanh", 1, 0, false},  // cells/rnn.h
    {"rnn_relu", 1, 0, false},  // cells/rnn.h
    {"lstm", 4, 6, true},       // cells/lstm.h
    {"gru", 3, 4, false},       // cells/gru.h
};

// The facts of `cell`; throws std::invalid_argument for a value outside the enumeration.
inline const CellInfo& cell_info(Cell cell) {
  const int index = static_cast<int>(cell);
  if (index < 0 || index >= kCellCount) throw std::invalid_argument("rnnfast: unknown cell");
  return kCellInfo[index];
}

// Number of gates G of `cell`: weights have G*H rows.
inline int gate_count(Cell cell) { return cell_info(cell).gates; }

// Width W, per (t, b) row, of the workspace that the training forward fills for backward (the slots
// are named in each cell's header). Saving activated gates lets backward run without any
// transcendental function.
inline std::int64_t workspace_width(Cell cell, std::int64_t hidden) { return cell_info(cell).workspace_slots * hidden; }

}  // namespace rnnfast
