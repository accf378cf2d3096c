// HDF5 back-end: Thermo Fisher Velox EMD, Berkeley EMD v0.2 (NCEM / ncempy) and HyperSpy .hspy.
// The file stays open; frame() selects one frame as an HDF5 hyperslab, so stacks stream.
// Orientation: HDF5 axis 0 = rows (as rosettasciio and ncempy read Velox; ncempy's stored order
// for Berkeley EMD, where dim1 is named Y; HyperSpy's axis-0 = array axis 0).
#include <hdf5.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "epitem/error.hpp"
#include "epitem/image_file.hpp"

namespace epitem {

namespace {

using nlohmann::json;

// Every HDF5 call runs under one process-wide lock (the Debian build is thread-safe, but a
// serial build would not be), with HDF5's own error printing silenced for the call; the error
// stack is per thread, so it is silenced per call and restored after.
std::mutex& hdf5_mutex() {
  static std::mutex m;
  return m;
}

class Hdf5Call {
public:
  Hdf5Call() : lock_(hdf5_mutex()) {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~Hdf5Call() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  Hdf5Call(const Hdf5Call&) = delete;
  Hdf5Call& operator=(const Hdf5Call&) = delete;

private:
  std::lock_guard<std::mutex> lock_;
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// The innermost message on HDF5's error stack (e.g. "truncated file: eof = ..."), then cleared.
std::string hdf5_detail() {
  std::string out;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* e, void* text) -> herr_t {
        if (n == 0 && e->desc)
          *static_cast<std::string*>(text) = e->desc;
        return 0;
      },
      &out);
  H5Eclear2(H5E_DEFAULT);
  return out.empty() ? "no detail from HDF5" : out;
}

// Owns one HDF5 identifier; only destroy it while holding Hdf5Call.
class Hid {
public:
  Hid() = default;
  explicit Hid(hid_t id) : id_(id) {}
  Hid(Hid&& o) noexcept : id_(std::exchange(o.id_, -1)) {}
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, -1);
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  ~Hid() { reset(); }
  void reset() {
    if (id_ >= 0)
      H5Idec_ref(id_);
    id_ = -1;
  }
  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }

private:
  hid_t id_ = -1;
};

// True when every component of `path` (relative to loc, '/'-separated) exists.
bool link_exists(hid_t loc, const std::string& path) {
  std::string prefix;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!part.empty()) {
      prefix += (prefix.empty() && path[0] != '/' ? "" : "/") + part;
      if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0)
        return false;
    }
    if (slash == std::string::npos)
      break;
    start = slash + 1;
  }
  return true;
}

Hid open_object(hid_t loc, const std::string& path, H5I_type_t want) {
  if (!link_exists(loc, path))
    return Hid();
  Hid obj(H5Oopen(loc, path.c_str(), H5P_DEFAULT));
  if (obj && H5Iget_type(obj.get()) != want)
    return Hid();
  return obj;
}
Hid open_group(hid_t loc, const std::string& path) { return open_object(loc, path, H5I_GROUP); }
Hid open_dataset(hid_t loc, const std::string& path) { return open_object(loc, path, H5I_DATASET); }

// Names of the links in a group, in name order.
std::vector<std::string> child_names(hid_t group) {
  std::vector<std::string> names;
  H5G_info_t gi{};
  if (H5Gget_info(group, &gi) < 0)
    return names;
  for (hsize_t i = 0; i < gi.nlinks && i < 100000; ++i) {
    const ssize_t n = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n <= 0)
      continue;
    std::string name(size_t(n) + 1, '\0');
    H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(size_t(n));
    names.push_back(name);
  }
  return names;
}

Hid open_attribute(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0)
    return Hid();
  return Hid(H5Aopen(obj, name, H5P_DEFAULT));
}

// A string attribute (fixed or variable length), trailing NULs/spaces removed; "" when absent.
std::string string_attribute(hid_t obj, const char* name) {
  Hid attr = open_attribute(obj, name);
  if (!attr)
    return "";
  Hid type(H5Aget_type(attr.get()));
  Hid space(H5Aget_space(attr.get()));
  if (!type || H5Tget_class(type.get()) != H5T_STRING || H5Sget_simple_extent_npoints(space.get()) != 1)
    return "";
  std::string out;
  if (H5Tis_variable_str(type.get()) > 0) {
    Hid mem(H5Tcopy(H5T_C_S1));
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    char* text = nullptr;
    if (H5Aread(attr.get(), mem.get(), &text) >= 0 && text)
      out = text;
    if (text)
      H5free_memory(text);
  } else {
    const size_t size = H5Tget_size(type.get());
    if (size == 0 || size > (1u << 20))
      return "";
    std::string buf(size, '\0');
    if (H5Aread(attr.get(), type.get(), buf.data()) >= 0)
      out = buf.substr(0, buf.find('\0'));
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '\0'))
    out.pop_back();
  return out;
}

double parse_number(const std::string& s) {
  if (s.empty())
    return NAN;
  const char* begin = s.c_str();
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  return end != begin ? v : NAN;
}

// A numeric (or numeric-string) scalar attribute; NaN when absent or not a number.
/// An integer or IEEE float type as numpy/h5py/Velox write it. A damaged file can declare, say,
/// a 4-byte integer of 0-bit precision, and HDF5's conversion of that reads out of bounds
/// (SIGBUS, found by tests/fuzz): such a type is refused before any read converts it.
bool plain_number_type(hid_t type) {
  const H5T_class_t cls = H5Tget_class(type);
  const size_t size = H5Tget_size(type);
  if (H5Tget_offset(type) != 0 || H5Tget_precision(type) != 8 * size)
    return false;
  if (cls == H5T_INTEGER)
    return size == 1 || size == 2 || size == 4 || size == 8;
  if (cls != H5T_FLOAT)
    return false;
  size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
  if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0)
    return false;
  const bool layout = (size == 2 && esize == 5 && msize == 10) || (size == 4 && esize == 8 && msize == 23) ||
                      (size == 8 && esize == 11 && msize == 52);
  return layout && spos == 8 * size - 1 && mpos == 0 && epos == msize &&
         H5Tget_ebias(type) == (size_t(1) << (esize - 1)) - 1 && H5Tget_norm(type) == H5T_NORM_IMPLIED;
}

double number_attribute(hid_t obj, const char* name) {
  Hid attr = open_attribute(obj, name);
  if (!attr)
    return NAN;
  Hid type(H5Aget_type(attr.get()));
  Hid space(H5Aget_space(attr.get()));
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls == H5T_STRING)
    return parse_number(string_attribute(obj, name));
  if (H5Sget_simple_extent_npoints(space.get()) != 1)
    return NAN;
  if (cls == H5T_ENUM && H5Tget_size(type.get()) == 1) {  // h5py's bool: FALSE = 0, TRUE = 1
    signed char b = 0;
    return H5Aread(attr.get(), type.get(), &b) >= 0 ? double(b) : NAN;
  }
  if (!plain_number_type(type.get()))
    return NAN;
  double v = NAN;
  return H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v) >= 0 ? v : NAN;
}

// Velox JSON: every number is a string. Value at `keys`, NaN when absent or not a number.
const json* json_at(const json& j, std::initializer_list<const char*> keys) {
  const json* p = &j;
  for (const char* k : keys) {
    if (!p->is_object())
      return nullptr;
    const auto it = p->find(k);
    if (it == p->end())
      return nullptr;
    p = &*it;
  }
  return p;
}
double json_number(const json& j, std::initializer_list<const char*> keys) {
  const json* p = json_at(j, keys);
  if (!p)
    return NAN;
  if (p->is_number())
    return p->get<double>();
  return p->is_string() ? parse_number(p->get<std::string>()) : NAN;
}
std::string json_string(const json& j, std::initializer_list<const char*> keys) {
  const json* p = json_at(j, keys);
  return p && p->is_string() ? p->get<std::string>() : "";
}

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

std::string shape_text(const std::vector<hsize_t>& dims) {
  std::string out;
  for (size_t i = 0; i < dims.size(); ++i)
    out += (i ? " × " : "") + std::to_string(dims[i]);
  return out;
}

// Seconds per `unit` for time axes; 0 when not a time unit.
double time_unit_in_s(const std::string& unit) {
  if (unit == "s") return 1;
  if (unit == "ms") return 1e-3;
  if (unit == "us" || unit == "µs") return 1e-6;
  if (unit == "ns") return 1e-9;
  return 0;
}

// How the stored numbers are read into memory before the conversion to float.
enum class Mem { U8, I8, U16, I16, U32, I32, U64, I64, F32, F64 };

hid_t native_type(Mem m) {
  switch (m) {
    case Mem::U8: return H5T_NATIVE_UINT8;
    case Mem::I8: return H5T_NATIVE_INT8;
    case Mem::U16: return H5T_NATIVE_UINT16;
    case Mem::I16: return H5T_NATIVE_INT16;
    case Mem::U32: return H5T_NATIVE_UINT32;
    case Mem::I32: return H5T_NATIVE_INT32;
    case Mem::U64: return H5T_NATIVE_UINT64;
    case Mem::I64: return H5T_NATIVE_INT64;
    case Mem::F32: return H5T_NATIVE_FLOAT;
    case Mem::F64: return H5T_NATIVE_DOUBLE;
  }
  return H5T_NATIVE_FLOAT;
}

size_t mem_bytes(Mem m) {
  switch (m) {
    case Mem::U8: case Mem::I8: return 1;
    case Mem::U16: case Mem::I16: return 2;
    case Mem::U32: case Mem::I32: case Mem::F32: return 4;
    default: return 8;
  }
}

// Widens n stored values at `src` to float. `src` may be the tail of `out` itself: value i is
// read before slot i is written, and slot i never reaches an unread value.
template <class T>
void widen_to_float(const unsigned char* src, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * sizeof(T), sizeof(T));
    out[i] = static_cast<float>(v);
  }
}

class EmdReader : public ImageFileReader {
public:
  explicit EmdReader(const std::string& path) {
    info_.path = path;
    Hdf5Call call;
    try {
      open(path);
    } catch (...) {
      data_.reset();
      file_.reset();
      throw;
    }
  }
  ~EmdReader() override {
    Hdf5Call call;
    data_.reset();
    file_.reset();
  }

  Image frame(std::size_t i, ComplexPart) const override {
    if (i >= info_.n_frames)
      fail(info_.path, ": frame ", i, " requested but the file holds ", info_.n_frames,
           " frame(s), numbered from 0");
    Image image(info_.nx, info_.ny);
    const size_t n = image.size();
    // Values of up to 4 bytes are read into the tail of the pixel buffer and widened in place;
    // 8-byte values need their own buffer.
    const size_t value_bytes = mem_bytes(mem_);
    std::unique_ptr<unsigned char[]> wide;
    unsigned char* raw = nullptr;
    if (value_bytes > sizeof(float)) {
      wide.reset(new unsigned char[n * value_bytes]);
      raw = wide.get();
    } else {
      raw = reinterpret_cast<unsigned char*>(image.pixels.data()) + n * (sizeof(float) - value_bytes);
    }
    {
      Hdf5Call call;
      Hid file_space(H5Dget_space(data_.get()));
      std::vector<hsize_t> start(size_t(rank_), 0), count(dims_);
      if (frame_axis_ >= 0) {
        start[size_t(frame_axis_)] = i;
        count[size_t(frame_axis_)] = 1;
      }
      // Same shape as the file selection, so HDF5 can copy it in one piece.
      Hid mem_space(H5Screate_simple(rank_, count.data(), nullptr));
      if (!file_space || H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) < 0 ||
          H5Dread(data_.get(), native_type(mem_), mem_space.get(), file_space.get(), H5P_DEFAULT, raw) < 0)
        fail(info_.path, ": frame ", i, " of ", dataset_name_, " could not be read (HDF5: ", hdf5_detail(),
             "); the file is truncated or damaged");
    }
    float* out = image.pixels.data();
    switch (mem_) {
      case Mem::U8: widen_to_float<std::uint8_t>(raw, out, n); break;
      case Mem::I8: widen_to_float<std::int8_t>(raw, out, n); break;
      case Mem::U16: widen_to_float<std::uint16_t>(raw, out, n); break;
      case Mem::I16: widen_to_float<std::int16_t>(raw, out, n); break;
      case Mem::U32: widen_to_float<std::uint32_t>(raw, out, n); break;
      case Mem::I32: widen_to_float<std::int32_t>(raw, out, n); break;
      case Mem::U64: widen_to_float<std::uint64_t>(raw, out, n); break;
      case Mem::I64: widen_to_float<std::int64_t>(raw, out, n); break;
      case Mem::F64: widen_to_float<double>(raw, out, n); break;
      case Mem::F32: break;  // read as float directly
    }
    apply_calibration(info_, image);
    return image;
  }

private:
  Hid file_, data_;
  std::string dataset_name_;
  int rank_ = 0;
  std::vector<hsize_t> dims_;
  int frame_axis_ = -1;  // HDF5 axis of the frames, -1 for a single 2-D image
  Mem mem_ = Mem::F32;
  std::string units_assumed_;  // HyperSpy axes read as nm for want of units

  void open(const std::string& path) {
    Hid fapl(H5Pcreate(H5P_FILE_ACCESS));
    H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
#if H5_VERSION_GE(1, 12, 1) || (H5_VERSION_GE(1, 10, 7) && !H5_VERSION_GE(1, 12, 0))
    H5Pset_file_locking(fapl.get(), true, true);  // still open on file systems without locks (NFS)
#endif
    file_ = Hid(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
    if (!file_)
      fail(path, ": cannot be opened as HDF5 (HDF5: ", hdf5_detail(), "); the file is truncated or damaged");
    const hid_t f = file_.get();
    if (link_exists(f, "/Data/Image"))
      open_velox();
    else if (link_exists(f, "/data") || link_exists(f, "/signals"))
      open_berkeley();
    else if (link_exists(f, "/Experiments"))
      open_hyperspy();
    else
      not_emd();
  }

  [[noreturn]] void not_emd() const {
    fail(info_.path, ": HDF5 file but not EMD/HyperSpy: no /Data/Image (Velox), no emd_group_type=1 "
                     "group under /data or /signals (Berkeley EMD), no /Experiments/<name>/data (HyperSpy); "
                     "export the image as TIFF");
  }

  // Takes `ds` as the image data: type, shape (rows/cols/frames at the given HDF5 axes) and a
  // check that the declared size is really stored before anything is allocated.
  void use_dataset(Hid ds, const std::string& name, int rows_axis, int cols_axis, int frame_axis) {
    const std::string& path = info_.path;
    dataset_name_ = name;
    Hid space(H5Dget_space(ds.get()));
    rank_ = H5Sget_simple_extent_ndims(space.get());
    if (rank_ < 2 || rank_ > 3 || rows_axis >= rank_ || cols_axis >= rank_ || frame_axis >= rank_)
      fail(path, ": dataset ", name, " has ", rank_,
           " dimensions; only images (2-D) and image stacks (3-D) can be read");
    dims_.assign(size_t(rank_), 0);
    H5Sget_simple_extent_dims(space.get(), dims_.data(), nullptr);
    frame_axis_ = frame_axis;

    Hid type(H5Dget_type(ds.get()));
    const H5T_class_t cls = H5Tget_class(type.get());
    const size_t size = H5Tget_size(type.get());
    if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && !plain_number_type(type.get()))
      fail(path, ": dataset ", name, " declares a damaged number type (", size, " bytes, ",
           H5Tget_precision(type.get()), "-bit precision at bit ", H5Tget_offset(type.get()),
           "); the file is damaged");
    if (cls == H5T_INTEGER && (size == 1 || size == 2 || size == 4 || size == 8)) {
      const bool is_signed = H5Tget_sign(type.get()) == H5T_SGN_2;
      const Mem u[] = {Mem::U8, Mem::U16, Mem::U32, Mem::U64}, s[] = {Mem::I8, Mem::I16, Mem::I32, Mem::I64};
      const int k = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
      mem_ = is_signed ? s[k] : u[k];
      info_.dtype = (is_signed ? "int" : "uint") + std::to_string(8 * size);
    } else if (cls == H5T_FLOAT && (size == 2 || size == 4 || size == 8)) {
      mem_ = size == 8 ? Mem::F64 : Mem::F32;  // float16 → float32 by HDF5, exactly
      info_.dtype = "float" + std::to_string(8 * size);
    } else {
      const char* what = cls == H5T_COMPOUND ? "compound (complex?)" : cls == H5T_STRING ? "string" : "non-numeric";
      fail(path, ": dataset ", name, " holds ", what, " values of ", size,
           " bytes; only integer and real float images can be read (export a real image, e.g. the modulus)");
    }

    double declared = double(size);
    for (hsize_t d : dims_)
      declared *= double(d);
    for (hsize_t d : dims_)
      if (d == 0)
        fail(path, ": dataset ", name, " is empty (a dimension is 0); the acquisition holds no image");
    if (dims_[size_t(rows_axis)] > hsize_t(INT_MAX) || dims_[size_t(cols_axis)] > hsize_t(INT_MAX))
      fail(path, ": dataset ", name, " declares ", dims_[size_t(rows_axis)], " × ", dims_[size_t(cols_axis)],
           " pixels per frame, more than can be read; the header is damaged");
    Hid dcpl(H5Dget_create_plist(ds.get()));
    const int n_filters = dcpl ? H5Pget_nfilters(dcpl.get()) : 0;
    for (int k = 0; k < n_filters; ++k) {
      unsigned flags = 0, values[8];
      size_t n_values = 8;
      char filter_name[64] = "";
      const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), unsigned(k), &flags, &n_values, values, sizeof filter_name,
                                             filter_name, nullptr);
      if (id >= 0 && H5Zfilter_avail(id) <= 0)
        fail(path, ": dataset ", name, " is compressed with HDF5 filter ", id, " '", filter_name,
             "', which this HDF5 library lacks; re-save it uncompressed or with gzip (e.g. h5repack -f NONE)");
    }
    // Compressed data may hold more than stored, but deflate cannot exceed ~1032:1.
    const double stored = double(H5Dget_storage_size(ds.get()));
    const bool filtered = n_filters > 0;
    if (declared > (filtered ? 1100 * stored : stored))
      fail(path, ": dataset ", name, " declares ", shape_text(dims_), " ", info_.dtype, " values (", declared,
           " bytes) but the file stores only ", stored, filtered ? " compressed" : "",
           " bytes of them; the file is truncated or its header damaged");

    // Chunks that hold several frames (Velox interleaves frames fastest) must fit in the chunk
    // cache, or each frame becomes millions of tiny strided reads.
    if (dcpl && H5Pget_layout(dcpl.get()) == H5D_CHUNKED && frame_axis >= 0) {
      std::vector<hsize_t> chunk(size_t(rank_), 0);
      if (H5Pget_chunk(dcpl.get(), rank_, chunk.data()) == rank_ && chunk[size_t(frame_axis)] > 1) {
        double chunk_bytes = double(size);
        for (hsize_t c : chunk)
          chunk_bytes *= double(c);
        const double cache_bytes = std::min(chunk_bytes, double(size_t(1) << 30));
        if (cache_bytes > double(1 << 20)) {
          Hid dapl(H5Pcreate(H5P_DATASET_ACCESS));
          H5Pset_chunk_cache(dapl.get(), 521, size_t(cache_bytes), 1.0);
          ds.reset();  // an open dataset would keep its cache; reopen it with the larger one
          ds = Hid(H5Dopen2(file_.get(), name.c_str(), dapl.get()));
          if (!ds)
            fail(path, ": dataset ", name, " cannot be reopened (HDF5: ", hdf5_detail(), "); the file is damaged");
        }
        if (chunk_bytes > cache_bytes)
          info_.notes.push_back("HDF5 chunks of " + fmt(chunk_bytes / (1 << 20)) +
                                " MiB interleave several frames: reading frames is slow");
      }
    }
    info_.ny = int(dims_[size_t(rows_axis)]);
    info_.nx = int(dims_[size_t(cols_axis)]);
    info_.n_frames = frame_axis >= 0 ? size_t(dims_[size_t(frame_axis)]) : 1;
    data_ = std::move(ds);
  }

  // ---- Velox: /Data/Image/<uuid>/{Data (rows, cols, frames), Metadata (bytes × frames)} ----

  // JSON of metadata column `col` (NUL-padded UTF-8); null json when absent or unreadable.
  json velox_metadata(hid_t group, hsize_t col) const {
    Hid ds = open_dataset(group, "Metadata");
    if (!ds)
      return json();
    Hid space(H5Dget_space(ds.get()));
    hsize_t dims[2] = {0, 0};
    if (H5Sget_simple_extent_ndims(space.get()) != 2 || H5Sget_simple_extent_dims(space.get(), dims, nullptr) < 0 ||
        dims[1] == 0 || dims[0] > (hsize_t(1) << 26) || double(dims[0]) * double(dims[1]) > double(H5Dget_storage_size(ds.get())))
      return json();
    col = std::min(col, dims[1] - 1);
    hsize_t start[2] = {0, col}, count[2] = {dims[0], 1};
    Hid mem(H5Screate_simple(1, &dims[0], nullptr));
    std::string text(static_cast<size_t>(dims[0]), '\0');
    if (H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) < 0 ||
        H5Dread(ds.get(), H5T_NATIVE_UINT8, mem.get(), space.get(), H5P_DEFAULT, text.data()) < 0) {
      H5Eclear2(H5E_DEFAULT);
      return json();
    }
    text.resize(std::strlen(text.c_str()));
    json j = json::parse(text, nullptr, false);
    return j.is_discarded() ? json() : j;
  }

  void open_velox() {
    const std::string& path = info_.path;
    info_.format = "Velox EMD";
    Hid images = open_group(file_.get(), "/Data/Image");
    std::vector<std::string> ids;
    if (images)
      for (const std::string& id : child_names(images.get()))
        if (link_exists(images.get(), id + "/Data"))
          ids.push_back(id);
    if (ids.empty())
      fail(path, ": Velox EMD without an image under /Data/Image (spectrum-only files cannot be read); "
                 "export the image from Velox as TIFF");
    Hid group = open_group(images.get(), ids[0]);
    Hid ds = open_dataset(group.get(), "Data");
    if (!group || !ds)
      fail(path, ": /Data/Image/", ids[0], "/Data cannot be opened (HDF5: ", hdf5_detail(), "); the file is damaged");
    const int rank = H5Sget_simple_extent_ndims(Hid(H5Dget_space(ds.get())).get());
    use_dataset(std::move(ds), "/Data/Image/" + ids[0] + "/Data", 0, 1, rank == 3 ? 2 : -1);

    const json meta = velox_metadata(group.get(), 0);
    const std::string detector = json_string(meta, {"BinaryResult", "Detector"});
    info_.notes.push_back("image /Data/Image/" + ids[0] + (detector.empty() ? "" : " (" + detector + ")"));
    if (ids.size() > 1) {
      std::string others;
      for (size_t k = 1; k < ids.size(); ++k) {
        Hid g = open_group(images.get(), ids[k]);
        const std::string d = g ? json_string(velox_metadata(g.get(), 0), {"BinaryResult", "Detector"}) : "";
        others += (k > 1 ? ", " : "") + ids[k] + (d.empty() ? "" : " (" + d + ")");
      }
      info_.notes.push_back(std::to_string(ids.size()) + " images in the file, the first is read; others: " + others);
    }
    if (meta.is_null()) {
      info_.notes.push_back("Velox metadata missing or unreadable: no calibration");
      info_.axes = {AxisCalibration{}, AxisCalibration{}};
      derive_pixel_sizes(info_);
      return;
    }

    const auto axis = [&](const char* size_key, const char* offset_key, const char* unit_key) {
      AxisCalibration a;
      const double scale = json_number(meta, {"BinaryResult", "PixelSize", size_key});
      const double offset = json_number(meta, {"BinaryResult", "Offset", offset_key});
      if (std::isfinite(scale) && scale != 0) {
        a.scale = scale;
        a.origin_px = std::isfinite(offset) && offset != 0 ? -offset / scale : 0;
        a.unit = json_string(meta, {"BinaryResult", unit_key});
      }
      return a;
    };
    info_.axes = {axis("width", "x", "PixelUnitX"), axis("height", "y", "PixelUnitY")};

    const auto positive = [](double v) { return std::isfinite(v) && v > 0 ? v : 0.0; };
    info_.energy_eV = positive(json_number(meta, {"Optics", "AccelerationVoltage"}));
    info_.camera_length_m = positive(json_number(meta, {"Optics", "CameraLength"}));

    // Timing: a STEM scan has Scan.FrameTime; a camera has its detector's ExposureTime and
    // per-frame TimeStamps (µs), whose spacing is the real frame interval.
    const double scan_frame_s = positive(json_number(meta, {"Scan", "FrameTime"}));
    const double dwell_s = positive(json_number(meta, {"Scan", "DwellTime"}));
    const std::string det_key = "Detector-" + json_string(meta, {"BinaryResult", "DetectorIndex"});
    const double exposure_s = positive(json_number(meta, {"Detectors", det_key.c_str(), "ExposureTime"}));
    if (scan_frame_s > 0) {
      info_.frame_time_s = info_.exposure_s = scan_frame_s;
      if (dwell_s > 0)
        info_.notes.push_back("STEM dwell " + fmt(dwell_s * 1e6) + " µs per pixel; exposure = frame time " +
                              fmt(scan_frame_s) + " s (Scan.FrameTime)");
    } else {
      info_.exposure_s = exposure_s;
      if (info_.n_frames > 1) {
        const double t0 = velox_timestamp_us(meta, detector);
        const double t1 = velox_timestamp_us(velox_metadata(group.get(), info_.n_frames - 1), detector);
        const double interval_s = (t1 - t0) * 1e-6 / double(info_.n_frames - 1);
        if (std::isfinite(interval_s) && interval_s > 0) {
          info_.frame_time_s = interval_s;
          info_.notes.push_back("frame interval " + fmt(interval_s) + " s from the per-frame TimeStamps (exposure " +
                                fmt(exposure_s) + " s)");
        } else if (exposure_s > 0) {
          info_.frame_time_s = exposure_s;
          info_.notes.push_back("no per-frame TimeStamps: frame interval taken as the exposure time");
        }
      }
    }
    if (info_.n_frames > 1)
      info_.axes.push_back(AxisCalibration{info_.frame_time_s, 0, info_.frame_time_s > 0 ? "s" : ""});
    derive_pixel_sizes(info_);
  }

  static double velox_timestamp_us(const json& meta, const std::string& detector) {
    const json* props = json_at(meta, {"CustomProperties"});
    if (!props || !props->is_object())
      return NAN;
    const std::string mine = "Detectors[" + detector + "].TimeStamp";
    double any = NAN;
    for (auto it = props->begin(); it != props->end(); ++it) {
      const std::string& key = it.key();
      const std::string suffix = "].TimeStamp";
      if (key.size() < suffix.size() || key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      const double v = json_number(it.value(), {"value"});
      if (key == mine)
        return v;
      if (std::isnan(any))
        any = v;
    }
    return any;
  }

  // ---- Berkeley EMD v0.2: group (emd_group_type = 1) with data + dim1..dimN ----

  // Calibration from a dim vector: step and value at index 0; units without the [ ] brackets.
  AxisCalibration berkeley_axis(hid_t group, int n, hsize_t axis_size, std::string& name) const {
    AxisCalibration a;
    const std::string dim = "dim" + std::to_string(n);
    Hid ds = open_dataset(group, dim);
    if (!ds)
      return a;
    name = string_attribute(ds.get(), "name");
    std::string unit = string_attribute(ds.get(), "units");
    if (unit.size() >= 2 && unit.front() == '[' && unit.back() == ']')
      unit = unit.substr(1, unit.size() - 2);
    Hid space(H5Dget_space(ds.get()));
    const hssize_t m = H5Sget_simple_extent_npoints(space.get());
    if (H5Sget_simple_extent_ndims(space.get()) != 1 || m < 2 ||
        !plain_number_type(Hid(H5Dget_type(ds.get())).get()))
      return a;
    // First, second and last entries: the step over the whole vector is the most precise
    // when it has one entry per pixel; EMD also allows the 2-entry [offset, offset + step].
    const hsize_t last = hsize_t(m) - 1;
    hsize_t picks[3] = {0, 1, last};
    double v[3] = {NAN, NAN, NAN};
    const hsize_t three = 3;
    Hid mem(H5Screate_simple(1, &three, nullptr));
    if (H5Sselect_elements(space.get(), H5S_SELECT_SET, 3, picks) < 0 ||
        H5Dread(ds.get(), H5T_NATIVE_DOUBLE, mem.get(), space.get(), H5P_DEFAULT, v) < 0) {
      H5Eclear2(H5E_DEFAULT);
      return a;
    }
    const double step = hsize_t(m) == axis_size ? (v[2] - v[0]) / double(last) : v[1] - v[0];
    if (std::isfinite(step) && step != 0) {
      a.scale = step;
      a.origin_px = std::isfinite(v[0]) && v[0] != 0 ? -v[0] / step : 0;
      a.unit = unit;
    }
    return a;
  }

  void open_berkeley() {
    const std::string& path = info_.path;
    std::vector<std::string> groups;
    for (const char* parent : {"/data", "/signals"}) {
      Hid p = open_group(file_.get(), parent);
      if (!p)
        continue;
      for (const std::string& child : child_names(p.get())) {
        Hid g = open_group(p.get(), child);
        if (g && number_attribute(g.get(), "emd_group_type") == 1 && link_exists(g.get(), "data"))
          groups.push_back(std::string(parent) + "/" + child);
      }
    }
    if (groups.empty()) {
      if (link_exists(file_.get(), "/Experiments"))
        return open_hyperspy();
      not_emd();
    }
    const std::string major = string_or_number_attribute(file_.get(), "version_major");
    const std::string minor = string_or_number_attribute(file_.get(), "version_minor");
    info_.format = major.empty() ? "Berkeley EMD" : "Berkeley EMD v" + major + "." + minor;

    Hid group = open_group(file_.get(), groups[0]);
    Hid ds = open_dataset(group.get(), "data");
    if (!ds)
      fail(path, ": ", groups[0], "/data cannot be opened (HDF5: ", hdf5_detail(), "); the file is damaged");
    const int rank = H5Sget_simple_extent_ndims(Hid(H5Dget_space(ds.get())).get());
    // ncempy's order: (rows, cols) or (frames, rows, cols); dim1 describes HDF5 axis 0.
    const int off = rank == 3 ? 1 : 0;
    use_dataset(std::move(ds), groups[0] + "/data", off, off + 1, rank == 3 ? 0 : -1);

    std::string name_x, name_y, name_t;
    const AxisCalibration y = berkeley_axis(group.get(), off + 1, dims_[size_t(off)], name_y);
    const AxisCalibration x = berkeley_axis(group.get(), off + 2, dims_[size_t(off + 1)], name_x);
    info_.axes = {x, y};
    if (rank == 3) {
      const AxisCalibration t = berkeley_axis(group.get(), 1, dims_[0], name_t);
      info_.axes.push_back(t);
      info_.frame_time_s = t.scale * time_unit_in_s(t.unit);
    }
    info_.notes.push_back("group " + groups[0] + ": rows = HDF5 axis 0 (dim" + std::to_string(off + 1) +
                          (name_y.empty() ? "" : " '" + name_y + "'") + "), columns = dim" + std::to_string(off + 2) +
                          (name_x.empty() ? "" : " '" + name_x + "'") + ", as ncempy reads it (HyperSpy shows the transpose)");
    if (groups.size() > 1) {
      std::string others;
      for (size_t k = 1; k < groups.size(); ++k)
        others += (k > 1 ? ", " : "") + groups[k];
      info_.notes.push_back(std::to_string(groups.size()) + " EMD data groups, the first is read; others: " + others);
    }
    // ncempy-written /microscope attributes (units are not stored: high tension in V, or kV
    // when below 1000).
    if (Hid mic = open_group(file_.get(), "/microscope")) {
      double kv = number_attribute(mic.get(), "high tension");
      if (!std::isfinite(kv))
        kv = number_attribute(mic.get(), "voltage");
      if (std::isfinite(kv) && kv > 0)
        info_.energy_eV = kv < 1000 ? kv * 1000 : kv;
      const double cl = number_attribute(mic.get(), "camera length");
      if (std::isfinite(cl) && cl > 0)
        info_.notes.push_back("/microscope camera length " + fmt(cl) + " (unit not stored; not used)");
      const double dwell = number_attribute(mic.get(), "dwell time");
      if (std::isfinite(dwell) && dwell > 0)
        info_.notes.push_back("/microscope dwell time " + fmt(dwell) + " (unit not stored)");
    }
    derive_pixel_sizes(info_);
  }

  static std::string string_or_number_attribute(hid_t obj, const char* name) {
    std::string s = string_attribute(obj, name);
    if (s.empty()) {
      const double v = number_attribute(obj, name);
      if (std::isfinite(v))
        s = fmt(v);
    }
    return s;
  }

  // ---- HyperSpy .hspy: /Experiments/<name>/data with axis-<i> groups (scale, offset, units) ----

  AxisCalibration hyperspy_axis(hid_t group, int i, bool frames) {
    AxisCalibration a;
    Hid g = open_group(group, "axis-" + std::to_string(i));
    if (!g)
      return a;
    double scale = number_attribute(g.get(), "scale"), offset = number_attribute(g.get(), "offset");
    if (!std::isfinite(scale) || scale == 0)
      return a;
    offset = std::isfinite(offset) ? offset : 0;
    std::string unit = string_attribute(g.get(), "units");
    if (unit == "<undefined>")
      unit.clear();
    // Files saved without units (atomap's test data) are nm by HyperSpy's STEM habit; a scale of
    // exactly 1 with offset 0 is HyperSpy's "not calibrated" default and stays unitless.
    if (unit.empty() && !frames && !(scale == 1 && offset == 0)) {
      unit = "nm";
      units_assumed_ += (units_assumed_.empty() ? "axis-" : ", axis-") + std::to_string(i);
    }
    a.scale = scale;
    a.origin_px = offset != 0 ? -offset / scale : 0;
    a.unit = unit;
    return a;
  }

  void open_hyperspy() {
    const std::string& path = info_.path;
    Hid experiments = open_group(file_.get(), "/Experiments");
    std::string name;
    if (experiments)
      for (const std::string& child : child_names(experiments.get()))
        if (link_exists(experiments.get(), child + "/data")) {
          name = child;
          break;
        }
    if (name.empty())
      not_emd();
    const std::string version = string_attribute(file_.get(), "file_format_version");
    info_.format = "HyperSpy HDF5";
    Hid group = open_group(experiments.get(), name);
    Hid ds = open_dataset(group.get(), "data");
    if (!ds)
      fail(path, ": /Experiments/", name, "/data cannot be opened (HDF5: ", hdf5_detail(), "); the file is damaged");
    const int rank = H5Sget_simple_extent_ndims(Hid(H5Dget_space(ds.get())).get());
    const int off = rank == 3 ? 1 : 0;
    // A stack keeps its image (signal) axes last; a spectrum image has the signal axis last.
    for (int i = off; i < rank && rank == 3; ++i)
      if (Hid a = open_group(group.get(), "axis-" + std::to_string(i)))
        if (number_attribute(a.get(), "navigate") == 1)
          fail(path, ": /Experiments/", name, "/data is 3-D with navigation axis ", i,
               " among the last two: not an image stack (a spectrum image?); save the images as a stack");
    use_dataset(std::move(ds), "/Experiments/" + name + "/data", off, off + 1, rank == 3 ? 0 : -1);
    const AxisCalibration y = hyperspy_axis(group.get(), off, false);
    const AxisCalibration x = hyperspy_axis(group.get(), off + 1, false);
    info_.axes = {x, y};
    if (rank == 3) {
      const AxisCalibration t = hyperspy_axis(group.get(), 0, true);
      info_.axes.push_back(t);
      info_.frame_time_s = t.scale * time_unit_in_s(t.unit);
    }
    if (!units_assumed_.empty())
      info_.warnings.push_back(units_assumed_ + " store no units: nm assumed (atomap / HyperSpy STEM habit)");
    info_.notes.push_back("signal /Experiments/" + name + (version.empty() ? "" : " (file format " + version + ")"));
    if (Hid tem = open_group(group.get(), "metadata/Acquisition_instrument/TEM")) {
      const double kev = number_attribute(tem.get(), "beam_energy");  // HyperSpy: keV
      if (std::isfinite(kev) && kev > 0)
        info_.energy_eV = kev * 1000;
      const double cl_mm = number_attribute(tem.get(), "camera_length");  // HyperSpy: mm
      if (std::isfinite(cl_mm) && cl_mm > 0)
        info_.camera_length_m = cl_mm * 1e-3;
      for (const char* cam : {"Detector/Camera", "Camera"})
        if (Hid c = open_group(tem.get(), cam)) {
          const double e = number_attribute(c.get(), "exposure");
          if (std::isfinite(e) && e > 0)
            info_.exposure_s = e;
        }
    }
    derive_pixel_sizes(info_);
  }
};

}  // namespace

std::unique_ptr<ImageFileReader> open_emd_file(const std::string& path) {
  return std::make_unique<EmdReader>(path);
}

}  // namespace epitem
