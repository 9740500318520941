// The registration of the cells: the one place where a Cell value becomes its cell type. Drivers
// switch on the cell here, once, and run code templated on the cell type from then on.
#pragma once

#include <stdexcept>
#include <utility>

#include "rnnfast/cells/gru.h"
#include "rnnfast/cells/lstm.h"
#include "rnnfast/cells/rnn.h"
#include "rnnfast/core/cell.h"

namespace rnnfast {

// fn(CellType{}) for the type of `cell`; throws std::invalid_argument for an unknown cell.
template <typename Fn>
decltype(auto) with_cell_type(Cell cell, Fn&& fn) {
  switch (cell) {
    case Cell::kRnnTanh:
      return std::forward<Fn>(fn)(RnnTanhCell{});
    case Cell::kRnnRelu:
      return std::forward<Fn>(fn)(RnnReluCell{});
    case Cell::kLstm:
      return std::forward<Fn>(fn)(LstmCell{});
    case Cell::kGru:
      return std::forward<Fn>(fn)(GruCell{});
  }
  throw std::invalid_argument("rnnfast: unknown cell");
}

// The gate whose recurrent bias a cell keeps in the fused step (the GRU's n: b_hn), or -1.
inline int kept_bias_gate(Cell cell) {
  return with_cell_type(cell, [](auto c) { return decltype(c)::kRecurrentBiasGate; });
}

}  // namespace rnnfast
