// oneDNN's float32 NHWC convolutions as XLA FFI handlers: forward, input gradient, kernel
// gradient. The prototype of issue #38's decision gate (benchmarks/onednn_gate/onednn.py builds
// it once per machine and calls it); not part of the package.
//
// Layouts are the model's: input and output NHWC, kernel HWIO. oneDNN picks the kernel's
// internal (blocked) layout for the machine ("any"); the kernel is reordered into it per call,
// as PyTorch's channels_last training does. Primitives are cached by shape; every call gets
// its own scratchpad and stream, so XLA may run two calls at once.
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

struct Geometry {
  int64_t n, c, h, w, o, kh, kw, oh, ow, sh, sw, pt, pb, pl, pr;
  std::string Key(char kind) const {
    std::string key(1, kind);
    for (int64_t v : {n, c, h, w, o, kh, kw, oh, ow, sh, sw, pt, pb, pl, pr})
      key += "," + std::to_string(v);
    return key;
  }
  dnnl::memory::desc Src() const { return {{n, c, h, w}, dt::f32, tag::nhwc}; }
  dnnl::memory::desc Dst() const { return {{n, o, oh, ow}, dt::f32, tag::nhwc}; }
  dnnl::memory::desc WeightsHwio() const { return {{o, c, kh, kw}, dt::f32, tag::hwio}; }
  dnnl::memory::desc WeightsAny() const { return {{o, c, kh, kw}, dt::f32, tag::any}; }
  dnnl::memory::dims Strides() const { return {sh, sw}; }
  dnnl::memory::dims PadL() const { return {pt, pl}; }
  dnnl::memory::dims PadR() const { return {pb, pr}; }

  dnnl::convolution_forward::primitive_desc Forward() const {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return {Engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
            Src(), WeightsAny(), Dst(), Strides(), PadL(), PadR(), attr};
  }
};

// One cached primitive with the reorder between the model's kernel layout and its own.
struct Cached {
  dnnl::primitive conv;
  dnnl::memory::desc weights;  // the primitive's kernel layout
  dnnl::memory::desc scratch;
  bool reorder;
  dnnl::reorder to_internal, to_hwio;
};

std::mutex cache_mutex;
std::unordered_map<std::string, std::shared_ptr<Cached>>& Cache() {
  static auto* cache = new std::unordered_map<std::string, std::shared_ptr<Cached>>();
  return *cache;
}

template <typename Primitive, typename PD>
std::shared_ptr<Cached> Finish(const Geometry& g, const PD& pd, const dnnl::memory::desc& w) {
  auto entry = std::make_shared<Cached>();
  entry->conv = Primitive(pd);
  entry->weights = w;
  entry->scratch = pd.scratchpad_desc();
  entry->reorder = w != g.WeightsHwio();
  if (entry->reorder) {
    auto hwio = g.WeightsHwio();
    entry->to_internal = dnnl::reorder(dnnl::reorder::primitive_desc(
        Engine(), hwio, Engine(), w));
    entry->to_hwio = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), w, Engine(), hwio));
  }
  return entry;
}

std::shared_ptr<Cached> Lookup(const Geometry& g, char kind) {
  std::string key = g.Key(kind);
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = Cache().find(key);
    if (it != Cache().end()) return it->second;
  }
  std::shared_ptr<Cached> entry;
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (kind == 'f') {
    auto pd = g.Forward();
    entry = Finish<dnnl::convolution_forward>(g, pd, pd.weights_desc());
  } else if (kind == 'd') {
    auto hint = g.Forward();
    dnnl::convolution_backward_data::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, g.Src(), g.WeightsAny(), g.Dst(),
        g.Strides(), g.PadL(), g.PadR(), hint, attr);
    entry = Finish<dnnl::convolution_backward_data>(g, pd, pd.weights_desc());
  } else {
    auto hint = g.Forward();
    dnnl::convolution_backward_weights::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, g.Src(), g.WeightsAny(), g.Dst(),
        g.Strides(), g.PadL(), g.PadR(), hint, attr);
    entry = Finish<dnnl::convolution_backward_weights>(g, pd, pd.diff_weights_desc());
  }
  std::lock_guard<std::mutex> lock(cache_mutex);
  return Cache().emplace(key, entry).first->second;
}

Geometry Shape(ffi::Span<const int64_t> x, ffi::Span<const int64_t> w,
               ffi::Span<const int64_t> y, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
               int64_t pl, int64_t pr) {
  return {x[0], x[3], x[1], x[2], w[3], w[0], w[1], y[1], y[2], sh, sw, pt, pb, pl, pr};
}

// Runs `kind` with the kernel argument `kernel` (the model's HWIO buffer): reordered into the
// primitive's layout before (forward, input gradient) or out of it after (kernel gradient).
ffi::Error Run(const Geometry& g, char kind, void* src, void* kernel, void* dst) {
  try {
    auto entry = Lookup(g, kind);
    dnnl::stream stream(Engine());
    // Uninitialised buffers (a std::vector would zero them on every call).
    std::unique_ptr<char[]> scratch_bytes(new char[entry->scratch.get_size() + 1]);
    dnnl::memory scratch(entry->scratch, Engine(), scratch_bytes.get());
    dnnl::memory hwio(g.WeightsHwio(), Engine(), kernel);
    std::unique_ptr<char[]> internal_bytes(
        new char[entry->reorder ? entry->weights.get_size() : 1]);
    dnnl::memory weights = entry->reorder
        ? dnnl::memory(entry->weights, Engine(), internal_bytes.get()) : hwio;
    if (entry->reorder && kind != 'w') entry->to_internal.execute(stream, hwio, weights);
    dnnl::memory s(g.Src(), Engine(), src), d(g.Dst(), Engine(), dst);
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SCRATCHPAD, scratch}};
    if (kind == 'f') {
      args.insert({{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, d}});
    } else if (kind == 'd') {
      args.insert({{DNNL_ARG_DIFF_SRC, s}, {DNNL_ARG_WEIGHTS, weights},
                   {DNNL_ARG_DIFF_DST, d}});
    } else {
      args.insert({{DNNL_ARG_SRC, s}, {DNNL_ARG_DIFF_WEIGHTS, weights},
                   {DNNL_ARG_DIFF_DST, d}});
    }
    entry->conv.execute(stream, args);
    if (entry->reorder && kind == 'w') entry->to_hwio.execute(stream, weights, hwio);
    stream.wait();
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN: ") + e.what());
  } catch (const std::exception& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, e.what());
  }
  return ffi::Error::Success();
}

ffi::Error Forward(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::ResultBuffer<ffi::F32> y, int64_t sh, int64_t sw, int64_t pt,
                   int64_t pb, int64_t pl, int64_t pr) {
  auto g = Shape(x.dimensions(), w.dimensions(), y->dimensions(), sh, sw, pt, pb, pl, pr);
  return Run(g, 'f', x.untyped_data(), w.untyped_data(), y->untyped_data());
}

ffi::Error InputGrad(ffi::Buffer<ffi::F32> g_out, ffi::Buffer<ffi::F32> w,
                     ffi::ResultBuffer<ffi::F32> g_in, int64_t sh, int64_t sw, int64_t pt,
                     int64_t pb, int64_t pl, int64_t pr) {
  auto g = Shape(g_in->dimensions(), w.dimensions(), g_out.dimensions(), sh, sw, pt, pb, pl,
                 pr);
  return Run(g, 'd', g_in->untyped_data(), w.untyped_data(), g_out.untyped_data());
}

ffi::Error KernelGrad(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> g_out,
                      ffi::ResultBuffer<ffi::F32> g_w, int64_t sh, int64_t sw, int64_t pt,
                      int64_t pb, int64_t pl, int64_t pr) {
  auto g = Shape(x.dimensions(), g_w->dimensions(), g_out.dimensions(), sh, sw, pt, pb, pl,
                 pr);
  return Run(g, 'w', x.untyped_data(), g_w->untyped_data(), g_out.untyped_data());
}

}  // namespace

#define GEOMETRY_ATTRS                                                            \
  .Attr<int64_t>("sh").Attr<int64_t>("sw").Attr<int64_t>("pt").Attr<int64_t>("pb") \
      .Attr<int64_t>("pl").Attr<int64_t>("pr")

XLA_FFI_DEFINE_HANDLER_SYMBOL(OnednnConvForward, Forward,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>() GEOMETRY_ATTRS);

XLA_FFI_DEFINE_HANDLER_SYMBOL(OnednnConvInputGrad, InputGrad,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>() GEOMETRY_ATTRS);

XLA_FFI_DEFINE_HANDLER_SYMBOL(OnednnConvKernelGrad, KernelGrad,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>() GEOMETRY_ATTRS);

extern "C" const char* OnednnVersion() {
  static std::string version = [] {
    const dnnl_version_t* v = dnnl_version();
    return std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
           std::to_string(v->patch) + " (" + v->hash + ")";
  }();
  return version.c_str();
}
