// Gatan DigitalMicrograph DM3/DM4 back-end (no official spec; C. Boothroyd's and G. Jefferis'
// notes, cross-checked against rosettasciio/ncempy). The file is one tag tree: groups of named
// tags, the structure (types, lengths, counts) big-endian, 4-byte in DM3 and 8-byte in DM4, the
// values in the header's byte order. The tree is parsed with small positioned reads that skip
// every array, so pixel data are read only by frame(), one frame at a time.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>

#include "binary_io.hpp"
#include "epitem/error.hpp"
#include "epitem/image_file.hpp"

namespace epitem {

namespace {

using namespace binary_io;

constexpr int kMaxDepth = 64;                   // real files nest < 12 deep
constexpr std::size_t kMaxTags = 2'000'000;     // real files hold a few thousand
constexpr std::uint64_t kMaxInfo = 1 << 16;     // entries of one tag's type description
constexpr std::uint64_t kMaxTextUnits = 4096;   // UTF-16 arrays decoded as text (names, units)
constexpr std::uint64_t kMaxSmallArray = 64;    // numeric arrays kept as numbers (binning ...)

// DM tag encoding codes.
enum : std::uint64_t { kStruct = 15, kString = 18, kArray = 20 };
constexpr int kGroupTag = 20, kDataTag = 21;

// Bytes of a simple DM tag value, 0 for anything else.
std::size_t simple_size(std::uint64_t type) {
  switch (type) {
    case 2: case 4: return 2;         // int16, uint16
    case 3: case 5: case 6: return 4; // int32, uint32, float32
    case 7: case 11: case 12: return 8;  // float64, int64, uint64
    case 8: case 9: case 10: return 1;   // bool, int8, uint8
    default: return 0;
  }
}

double simple_value(std::uint64_t type, const unsigned char* p, bool little) {
  switch (type) {
    case 2: return load<std::int16_t>(p, little);
    case 3: return load<std::int32_t>(p, little);
    case 4: return load<std::uint16_t>(p, little);
    case 5: return load<std::uint32_t>(p, little);
    case 6: return load<float>(p, little);
    case 7: return load<double>(p, little);
    case 8: return p[0] != 0;
    case 9: return static_cast<std::int8_t>(p[0]);
    case 10: return p[0];
    case 11: return double(load<std::int64_t>(p, little));
    case 12: return double(load<std::uint64_t>(p, little));
    default: return 0;
  }
}

void append_utf8(std::string& out, std::uint32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

std::string utf16_to_utf8(const unsigned char* p, std::size_t units, bool little) {
  std::string out;
  for (std::size_t i = 0; i < units; ++i) {
    std::uint32_t c = load<std::uint16_t>(p + 2 * i, little);
    if (c == 0)
      break;
    if (c >= 0xD800 && c < 0xDC00 && i + 1 < units) {
      const std::uint32_t lo = load<std::uint16_t>(p + 2 * (i + 1), little);
      if (lo >= 0xDC00 && lo < 0xE000) {
        c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
        ++i;
      }
    }
    append_utf8(out, c);
  }
  return out;
}

std::string latin1_to_utf8(const unsigned char* p, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i)
    append_utf8(out, p[i]);
  return out;
}

struct Tag {
  std::string name;
  bool is_group = false;
  std::vector<Tag> children;
  std::vector<double> numbers;  // simple value, struct fields or a small numeric array
  std::string text;             // string, or an array of uint16 (UTF-16)
  bool is_array = false;
  std::uint64_t element_type = 0;  // arrays: simple type, or kStruct
  std::uint64_t count = 0;         // arrays: elements
  std::uint64_t element_bytes = 0;
  std::uint64_t offset = 0;        // arrays: file offset of element 0
};

// Buffered big-endian structure reader over positioned reads.
class Cursor {
public:
  Cursor(const RawFile& file, std::uint64_t pos) : file_(file), pos_(pos) {}
  std::uint64_t pos() const { return pos_; }
  std::uint64_t left() const { return file_.size() - pos_; }

  const unsigned char* take(std::size_t n, const char* what) {
    if (n > left())
      fail(file_.path(), ": the DM tag tree is cut off: ", what, " at byte ", pos_, " needs ", n,
           " bytes but the file ends at ", file_.size(), "; the file is truncated");
    if (pos_ < buf_start_ || pos_ + n > buf_start_ + buf_.size()) {
      const std::size_t want = std::size_t(std::min<std::uint64_t>(left(), std::max<std::size_t>(n, 1 << 16)));
      buf_.resize(want);
      file_.read(pos_, buf_.data(), want, what);
      buf_start_ = pos_;
    }
    const unsigned char* p = buf_.data() + (pos_ - buf_start_);
    pos_ += n;
    return p;
  }
  void skip(std::uint64_t n, const char* what) {
    if (n > left())
      fail(file_.path(), ": the DM tag tree is cut off: ", what, " at byte ", pos_, " needs ", n,
           " bytes but the file ends at ", file_.size(), "; the file is truncated");
    pos_ += n;
  }
  std::uint64_t be(std::size_t bytes, const char* what) {
    const unsigned char* p = take(bytes, what);
    return bytes == 8 ? load<std::uint64_t>(p, false) : load<std::uint32_t>(p, false);
  }

private:
  const RawFile& file_;
  std::uint64_t pos_;
  std::vector<unsigned char> buf_;
  std::uint64_t buf_start_ = 0;
};

class TagParser {
public:
  TagParser(const RawFile& file, int version, bool little, std::uint64_t root_at)
      : file_(file), cur_(file, root_at), width_(version == 4 ? 8 : 4), little_(little) {}

  Tag parse_root() {
    Tag root;
    root.is_group = true;
    parse_group(root, 0);
    return root;
  }

private:
  [[noreturn]] void damaged(const std::string& tag, const std::string& what) const {
    fail(file_.path(), ": DM tag '", tag, "' (near byte ", cur_.pos(), "): ", what,
         "; the file is damaged or not a DM file");
  }

  void parse_group(Tag& group, int depth) {
    if (depth > kMaxDepth)
      damaged(group.name, "tag groups nested more than " + std::to_string(kMaxDepth) + " deep");
    cur_.take(2, "tag group header");  // sorted, open flags
    const std::uint64_t n = cur_.be(width_, "tag count");
    for (std::uint64_t i = 0; i < n; ++i) {
      if (++tags_ > kMaxTags)
        damaged(group.name, "more than " + std::to_string(kMaxTags) + " tags");
      const int kind = *cur_.take(1, "tag kind");
      const std::size_t name_len = load<std::uint16_t>(cur_.take(2, "tag name length"), false);
      Tag tag;
      tag.name = latin1_to_utf8(cur_.take(name_len, "tag name"), name_len);
      if (width_ == 8)
        cur_.take(8, "tag size");
      if (kind == kGroupTag) {
        tag.is_group = true;
        parse_group(tag, depth + 1);
      } else if (kind == kDataTag) {
        parse_data(tag);
      } else {
        damaged(tag.name, "unknown tag kind " + std::to_string(kind) + " (expected 20 = group or 21 = data)");
      }
      group.children.push_back(std::move(tag));
    }
  }

  void parse_data(Tag& tag) {
    const unsigned char* mark = cur_.take(4, "tag data marker");
    if (std::string(reinterpret_cast<const char*>(mark), 4) != "%%%%")
      damaged(tag.name, "the data marker '%%%%' is missing");
    const std::uint64_t n_info = cur_.be(width_, "tag type length");
    if (n_info == 0 || n_info > kMaxInfo || n_info > cur_.left() / width_)
      damaged(tag.name, "type description of " + std::to_string(n_info) + " entries");
    std::vector<std::uint64_t> info(n_info);
    for (auto& v : info)
      v = cur_.be(width_, "tag type");
    const std::uint64_t type = info[0];

    if (simple_size(type) && n_info == 1) {
      tag.numbers.push_back(simple_value(type, cur_.take(simple_size(type), "tag value"), little_));
    } else if (type == kString && n_info == 2) {
      if (info[1] > cur_.left())
        damaged(tag.name, "string longer than the rest of the file");
      tag.text = latin1_to_utf8(cur_.take(std::size_t(info[1]), "string"), std::size_t(info[1]));
    } else if (type == kStruct && n_info >= 3 && n_info == 3 + 2 * info[2]) {
      for (std::uint64_t f = 0; f < info[2]; ++f) {
        const std::uint64_t ft = info[4 + 2 * f];
        if (!simple_size(ft))
          damaged(tag.name, "struct field of unknown type " + std::to_string(ft));
        tag.numbers.push_back(simple_value(ft, cur_.take(simple_size(ft), "struct field"), little_));
      }
    } else if (type == kArray && n_info >= 3) {
      parse_array(tag, info);
    } else {
      damaged(tag.name, "unknown data type code " + std::to_string(type) + " (type description of " +
                            std::to_string(n_info) + " entries)");
    }
  }

  void parse_array(Tag& tag, const std::vector<std::uint64_t>& info) {
    tag.is_array = true;
    tag.element_type = info[1];
    if (simple_size(info[1]) && info.size() == 3) {
      tag.element_bytes = simple_size(info[1]);
      tag.count = info[2];
    } else if (info[1] == kStruct && info.size() >= 5 && info.size() == 5 + 2 * info[3]) {
      // [20, 15, name length, n fields, (field name length, field type) × n, count]
      for (std::uint64_t f = 0; f < info[3]; ++f) {
        const std::size_t fs = simple_size(info[5 + 2 * f]);
        if (!fs)
          damaged(tag.name, "array of structs with a field of unknown type " + std::to_string(info[5 + 2 * f]));
        tag.element_bytes += fs;
      }
      tag.count = info.back();
    } else {
      damaged(tag.name, "array of unknown element type " + std::to_string(info[1]));
    }
    if (tag.element_bytes == 0 || tag.count > cur_.left() / tag.element_bytes)
      damaged(tag.name, "array of " + std::to_string(tag.count) + " × " + std::to_string(tag.element_bytes) +
                            " bytes runs past the end of the " + std::to_string(file_.size()) + "-byte file");
    tag.offset = cur_.pos();
    const std::uint64_t bytes = tag.count * tag.element_bytes;
    if (tag.name == "Data") {  // pixels: read by frame() only
      cur_.skip(bytes, "array");
    } else if (tag.element_type == 4 && tag.count <= kMaxTextUnits) {
      tag.text = utf16_to_utf8(cur_.take(std::size_t(bytes), "text"), std::size_t(tag.count), little_);
    } else if (simple_size(tag.element_type) && tag.count <= kMaxSmallArray) {
      const unsigned char* p = cur_.take(std::size_t(bytes), "array");
      for (std::uint64_t k = 0; k < tag.count; ++k)
        tag.numbers.push_back(simple_value(tag.element_type, p + k * tag.element_bytes, little_));
    } else {
      cur_.skip(bytes, "array");
    }
  }

  const RawFile& file_;
  Cursor cur_;
  std::size_t width_;
  bool little_;
  std::size_t tags_ = 0;
};

const Tag* child(const Tag* group, const std::string& name) {
  if (!group)
    return nullptr;
  for (const Tag& t : group->children)
    if (t.name == name)
      return &t;
  return nullptr;
}

const Tag* find(const Tag* group, std::initializer_list<const char*> path) {
  for (const char* name : path)
    group = child(group, name);
  return group;
}

double number(const Tag* tag, double fallback = 0) {
  return tag && tag->numbers.size() == 1 && std::isfinite(tag->numbers[0]) ? tag->numbers[0] : fallback;
}

std::string text(const Tag* tag) { return tag ? tag->text : std::string(); }

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Pixel types by ImageData.DataType (the Data tag's own element type is not the image type).
enum class Pixel { Stored, Bool, Bgra };

struct PixelType {
  Pixel kind = Pixel::Stored;
  Stored stored = Stored::F32;
  std::size_t bytes = 0;
  const char* name = "";
};

bool pixel_type(int data_type, PixelType& t) {
  switch (data_type) {
    case 1: t = {Pixel::Stored, Stored::I16, 2, "int16"}; return true;
    case 2: t = {Pixel::Stored, Stored::F32, 4, "float32"}; return true;
    case 3: t = {Pixel::Stored, Stored::C64, 8, "complex64"}; return true;
    case 6: t = {Pixel::Stored, Stored::U8, 1, "uint8"}; return true;
    case 7: t = {Pixel::Stored, Stored::I32, 4, "int32"}; return true;
    case 8: t = {Pixel::Bgra, Stored::U8, 4, "rgb8"}; return true;
    case 9: t = {Pixel::Stored, Stored::I8, 1, "int8"}; return true;
    case 10: t = {Pixel::Stored, Stored::U16, 2, "uint16"}; return true;
    case 11: t = {Pixel::Stored, Stored::U32, 4, "uint32"}; return true;
    case 12: t = {Pixel::Stored, Stored::F64, 8, "float64"}; return true;
    case 13: t = {Pixel::Stored, Stored::C128, 16, "complex128"}; return true;
    case 14: t = {Pixel::Bool, Stored::U8, 1, "bool"}; return true;
    case 23: t = {Pixel::Bgra, Stored::U8, 4, "rgba8"}; return true;
    default: return false;
  }
}

struct Candidate {
  const Tag* image = nullptr;
  const Tag* data = nullptr;
  std::vector<double> dims;
  int data_type = 0;
  double pixels = 0;
};

class DmReader : public ImageFileReader {
public:
  explicit DmReader(const std::string& path) : file_(path) {
    info_.path = path;
    if (file_.size() < 16)
      fail(path, ": a DM header needs at least 16 bytes but the file has ", file_.size(), "; the file is truncated");
    const std::vector<unsigned char> head = file_.read(0, 16, "DM header");
    const std::uint32_t version = load<std::uint32_t>(head.data(), false);
    if (version != 3 && version != 4)
      fail(path, ": DM version ", version, " is not supported (only DM3 and DM4); re-save it in GMS as DM4");
    const std::size_t order_at = version == 4 ? 12 : 8;
    const std::uint32_t order = load<std::uint32_t>(head.data() + order_at, false);
    if (order > 1)
      fail(path, ": DM byte-order flag is ", order, " (expected 0 or 1); the header is damaged");
    little_ = order == 1;
    info_.format = version == 4 ? "DM4" : "DM3";

    const Tag root = TagParser(file_, int(version), little_, order_at + 4).parse_root();
    const Candidate main = choose_image(root);
    read_image(main);
    read_metadata(child(main.image, "ImageTags"));
    derive_pixel_sizes(info_);
  }

  Image frame(std::size_t i, ComplexPart part) const override {
    if (i >= info_.n_frames)
      fail(info_.path, ": frame ", i, " does not exist (the file has ", info_.n_frames, " frames)");
    Image image(info_.nx, info_.ny);
    const std::size_t n = image.pixels.size();
    const std::uint64_t at = data_offset_ + std::uint64_t(i) * frame_bytes_;
    if (type_.kind == Pixel::Stored && type_.stored == Stored::F32 && little_ == host_is_little_endian()) {
      file_.read(at, image.pixels.data(), frame_bytes_, "DM frame data");
    } else {
      const std::vector<unsigned char> raw = file_.read(at, frame_bytes_, "DM frame data");
      if (type_.kind == Pixel::Bool) {
        for (std::size_t k = 0; k < n; ++k)
          image.pixels[k] = raw[k] ? 1.f : 0.f;
      } else if (type_.kind == Pixel::Bgra) {
        for (std::size_t k = 0; k < n; ++k) {
          const unsigned char* p = &raw[4 * k];
          image.pixels[k] = float(0.299 * p[2] + 0.587 * p[1] + 0.114 * p[0]);
        }
      } else {
        convert_to_float(type_.stored, raw.data(), n, little_, image.pixels.data(), part);
      }
    }
    apply_calibration(info_, image);
    return image;
  }

private:
  // GMS puts an RGBA thumbnail ("Image Of ...") first in ImageList; Nion files hold one image.
  Candidate choose_image(const Tag& root) const {
    const Tag* list = child(&root, "ImageList");
    std::vector<Candidate> all;
    if (list)
      for (const Tag& image : list->children) {
        const Tag* image_data = child(&image, "ImageData");
        Candidate c;
        c.image = &image;
        c.data = child(image_data, "Data");
        const double data_type = number(child(image_data, "DataType"), -1);
        c.data_type = data_type >= 0 && data_type < 1e6 ? int(data_type) : -1;
        if (const Tag* dims = child(image_data, "Dimensions"))
          for (const Tag& d : dims->children)
            c.dims.push_back(number(&d, -1));
        if (!c.data || !c.data->is_array || c.dims.empty())
          continue;
        c.pixels = 1;
        for (double d : c.dims)
          c.pixels *= d;
        all.push_back(c);
      }
    if (all.empty())
      fail(info_.path, ": the DM file holds no image (no ImageList entry with ImageData.Data and Dimensions); "
                       "it may be a DM tag file without data, or damaged");
    const auto thumbnail = [&](const Candidate& c) {
      return all.size() > 1 && (text(child(c.image, "Name")).rfind("Image Of", 0) == 0 ||
                                (c.image == &list->children.front() && (c.data_type == 23 || c.data_type == 8)));
    };
    const Candidate* best = nullptr;
    for (const Candidate& c : all)
      if (!thumbnail(c) && (!best || c.pixels >= best->pixels))
        best = &c;
    if (!best)
      best = &all.back();
    return *best;
  }

  void read_image(const Candidate& c) {
    const std::string& path = info_.path;
    if (!pixel_type(c.data_type, type_))
      fail(path, ": DM DataType ", c.data_type, " is not supported (supported: 1 int16, 2 float32, 3 complex64, "
                 "6 uint8, 7 int32, 8 RGB, 9 int8, 10 uint16, 11 uint32, 12 float64, 13 complex128, 14 bool, "
                 "23 RGBA); convert the image to float32 in GMS and re-save");
    if (c.dims.size() > 4)
      fail(path, ": DM image has ", c.dims.size(), " dimensions; only 1 to 4 are supported");
    for (double d : c.dims)
      if (!(d >= 1 && d == std::floor(d) && d < 2147483648.0))
        fail(path, ": DM ImageData.Dimensions holds ", d, "; every size must be a whole number ≥ 1 (damaged header)");
    const double nx = c.dims[0], ny = c.dims.size() > 1 ? c.dims[1] : 1;
    double frames = 1;
    for (std::size_t k = 2; k < c.dims.size(); ++k)
      frames *= c.dims[k];
    // The Data array was checked against the file size while parsing.
    require_declared_size(path, nx, ny, frames, double(type_.bytes), double(c.data->count) * double(c.data->element_bytes));
    info_.nx = int(nx);
    info_.ny = int(ny);
    info_.n_frames = std::size_t(frames);
    info_.dtype = type_.name;
    data_offset_ = c.data->offset;
    frame_bytes_ = std::size_t(nx) * std::size_t(ny) * type_.bytes;
    if (c.dims.size() == 1)
      info_.warnings.push_back("1-D data (a spectrum or profile) read as one row");
    if (c.dims.size() == 4)
      info_.warnings.push_back("4-D data read as " + fmt(c.dims[2]) + " × " + fmt(c.dims[3]) +
                            " frames, Dimensions[2] fastest");
    if (type_.kind == Pixel::Bgra)
      info_.warnings.push_back("RGB converted to luminance 0.299 R + 0.587 G + 0.114 B");
    if (is_complex(type_.stored) && type_.kind == Pixel::Stored)
      info_.warnings.push_back("complex data: frames return the chosen part (modulus by default)");

    const Tag* image_data = child(c.image, "ImageData");
    const Tag* cals = find(image_data, {"Calibrations", "Dimension"});
    const std::size_t n_axes = std::min<std::size_t>(c.dims.size() < 2 ? 2 : c.dims.size(), 3);
    for (std::size_t a = 0; a < n_axes; ++a) {
      AxisCalibration axis;
      if (cals && a < cals->children.size()) {
        const Tag& d = cals->children[a];
        axis.scale = number(child(&d, "Scale"));
        axis.origin_px = number(child(&d, "Origin"));
        axis.unit = text(child(&d, "Units"));
      } else if (a < c.dims.size()) {
        info_.notes.push_back("no calibration stored for axis " + std::to_string(a) + " (" +
                              std::to_string(cals ? cals->children.size() : 0) + " Calibrations for " +
                              std::to_string(c.dims.size()) + " dimensions)");
      }
      info_.axes.push_back(axis);
    }
    const Tag* brightness = find(image_data, {"Calibrations", "Brightness"});
    const double b_scale = number(child(brightness, "Scale"), 1), b_origin = number(child(brightness, "Origin"));
    if (b_scale != 1 || b_origin != 0)
      info_.notes.push_back("stored values returned raw; the intensity calibration (scale " + fmt(b_scale) +
                            ", origin " + fmt(b_origin) + ", unit '" + text(child(brightness, "Units")) +
                            "') is not applied");
  }

  void read_metadata(const Tag* tags) {
    // StackBuilder keeps the source image's tags in "source.Tags at creation".
    if (!child(tags, "Microscope Info"))
      if (const Tag* source = find(tags, {"source", "Tags at creation"}))
        tags = source;
    const Tag* mi = child(tags, "Microscope Info");
    info_.energy_eV = std::max(0.0, number(child(mi, "Voltage")));
    const double stem_cl_mm = number(child(mi, "STEM Camera Length")), cl_mm = number(child(mi, "Camera Length"));
    if (stem_cl_mm > 0) {
      info_.camera_length_m = stem_cl_mm * 1e-3;
    } else if (cl_mm > 0) {
      info_.camera_length_m = cl_mm * 1e-3;
    } else if (text(child(mi, "Imaging Mode")) == "DIFFRACTION" &&
               text(child(mi, "Illumination Mode")).find("STEM") == std::string::npos) {
      // TEM diffraction: GMS stores the camera length as the "magnification" (HyperSpy reads mm).
      const double mag = number(child(mi, "Indicated Magnification"));
      if (mag > 0) {
        info_.camera_length_m = mag * 1e-3;
        info_.notes.push_back("camera length " + fmt(mag) + " mm read from Microscope Info.Indicated "
                              "Magnification (diffraction mode), as HyperSpy does");
      }
    }
    double exposure = number(find(tags, {"DataBar", "Exposure Time (s)"}));
    if (!(exposure > 0))
      exposure = number(find(tags, {"Acquisition", "Parameters", "High Level", "Exposure (s)"}));
    if (exposure > 0)
      info_.exposure_s = exposure;
    const double dwell_us = number(find(tags, {"DigiScan", "Sample Time"}));
    if (dwell_us > 0)
      info_.notes.push_back("STEM dwell time " + fmt(dwell_us) + " µs per pixel (DigiScan.Sample Time)");
  }

  RawFile file_;
  bool little_ = true;
  PixelType type_;
  std::uint64_t data_offset_ = 0;
  std::size_t frame_bytes_ = 0;
};

}  // namespace

std::unique_ptr<ImageFileReader> open_dm_file(const std::string& path) { return std::make_unique<DmReader>(path); }

}  // namespace epitem
