// What the reduced-precision dot-product tiles of every instruction set share (kernels/reduced_impl.h
// has the Dot policy contract): bfloat16 widening, and the switch from a tile's run-time shape (rows,
// panels, gates) to the instantiation of a kernel compiled for it. Include it only from a per-ISA file,
// after its kernels/isa_<isa>.h: everything lives in that file's namespace (the ODR trap).
#include <cstdint>
#include <cstring>

namespace rnnfast {
namespace RNNFAST_ISA_NAMESPACE {
namespace {

// The float32 value of bfloat16 bits (exact).
inline float bf16_value(std::uint16_t bits) {
  const std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, 4);
  return value;
}

// Calls K::template run<G, R, P>(args...) for a tile's run-time shape, G in {1, 3, 4} (the cells' gate
// counts): one panel and 1 <= rows <= K::tile_rows(G); a single row by K::row_panels(G) panels; or
// several rows (<= K::block_rows(G)) by K::block_panels(G) panels.
template <class K, int G, int P, int R, typename... Args>
inline void run_rows(int rows, Args... args) {
  if constexpr (R >= 1) {
    if (rows == R) return K::template run<G, R, P>(args...);
    return run_rows<K, G, P, R - 1>(rows, args...);
  }
}

template <class K, int G, typename... Args>
inline void run_shape(int rows, int panels, Args... args) {
  if (panels == 1) return run_rows<K, G, 1, K::tile_rows(G)>(rows, args...);
  if (rows == 1 && panels == K::row_panels(G)) return K::template run<G, 1, K::row_panels(G)>(args...);
  if constexpr (K::block_panels(G) > 1) run_rows<K, G, K::block_panels(G), K::block_rows(G)>(rows, args...);
}

template <class K, typename... Args>
inline void run_tile(int rows, int panels, int gates, Args... args) {
  if (gates == 4) return run_shape<K, 4>(rows, panels, args...);
  if (gates == 3) return run_shape<K, 3>(rows, panels, args...);
  return run_shape<K, 1>(rows, panels, args...);
}

}  // namespace
}  // namespace RNNFAST_ISA_NAMESPACE
}  // namespace rnnfast
