// FEI/Thermo TIA back-ends. SER ("TIA Series Data" spec; ncempy ser.py): header, dimension arrays,
// offset arrays (32-bit in SeriesVersion 0x210, 64-bit in 0x220), then one element per frame
// (element header + rows stored bottom-up). EMI (no public spec): a tagged container holding one
// XML <ObjectInfo> per .ser plus a display copy of each .ser's frame 0; the copy is found by its
// self-checking record (type, byte count = 8 + nx·ny·bytes, nx, ny) and its calibration doubles.
// TIA stores SI calibrations without a unit: m, or 1/m for TEM diffraction (decided from the
// XML "Mode" like HyperSpy, else from the magnitude).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "binary_io.hpp"
#include "epitem/error.hpp"
#include "epitem/image_file.hpp"

namespace epitem {

namespace {

using namespace binary_io;
namespace fs = std::filesystem;

bool ser_type(std::uint32_t code, Stored& t) {
  switch (code) {
    case 1: t = Stored::U8; return true;
    case 2: t = Stored::U16; return true;
    case 3: t = Stored::U32; return true;
    case 4: t = Stored::I8; return true;
    case 5: t = Stored::I16; return true;
    case 6: t = Stored::I32; return true;
    case 7: t = Stored::F32; return true;
    case 8: t = Stored::F64; return true;
    case 9: t = Stored::C64; return true;
    case 10: t = Stored::C128; return true;
    default: return false;
  }
}

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

double number_or_nan(const std::string& s) {
  const std::string t = trimmed(s);
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  return (!t.empty() && end != t.c_str() && std::isfinite(v)) ? v : NAN;
}

// Text of the first <tag>…</tag> in xml, "" when absent.
std::string xml_text(const std::string& xml, const std::string& tag) {
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  const auto b = xml.find(open);
  if (b == std::string::npos)
    return "";
  const auto e = xml.find(close, b + open.size());
  return e == std::string::npos ? "" : xml.substr(b + open.size(), e - b - open.size());
}

// ExperimentalDescription entry <Data><Label>label</Label><Value>…</Value><Unit>…</Unit></Data>.
bool description_entry(const std::string& xml, const std::string& label, std::string& value, std::string& unit) {
  const auto at = xml.find("<Label>" + label + "</Label>");
  if (at == std::string::npos)
    return false;
  const auto end = xml.find("</Data>", at);
  const std::string entry = xml.substr(at, end == std::string::npos ? std::string::npos : end - at);
  value = trimmed(xml_text(entry, "Value"));
  unit = trimmed(xml_text(entry, "Unit"));
  return true;
}

/// Fills energy, camera length, exposure and frame time from one <ObjectInfo>; returns the Mode.
std::string apply_object_info(const std::string& xml, ImageFileInfo& info) {
  std::string value, unit;
  const double volts = number_or_nan(xml_text(xml, "AcceleratingVoltage"));
  if (volts > 0)
    info.energy_eV = volts;
  else if (description_entry(xml, "High tension", value, unit) && number_or_nan(value) > 0)
    info.energy_eV = number_or_nan(value) * (unit == "V" ? 1 : 1e3);
  std::string mode;
  if (description_entry(xml, "Mode", value, unit)) {
    mode = value;
    info.notes.push_back("mode: " + mode);
  }
  if (description_entry(xml, "Magnification", value, unit) && number_or_nan(value) > 0)
    info.notes.push_back("magnification " + value + "×");
  if (description_entry(xml, "Camera length", value, unit) && number_or_nan(value) > 0) {
    const double f = unit == "mm" ? 1e-3 : unit == "cm" ? 1e-2 : 1;
    info.camera_length_m = number_or_nan(value) * f;
  }
  const double dwell = number_or_nan(xml_text(xml, "DwellTimePath"));
  const double frame_time = number_or_nan(xml_text(xml, "FrameTime"));
  if (mode.find("STEM") != std::string::npos) {
    // STEM: DwellTimePath is per pixel; a frame is exposed for its whole scan time.
    if (frame_time > 0)
      info.frame_time_s = info.exposure_s = frame_time;
    if (dwell > 0)
      info.notes.push_back("STEM dwell " + fmt(dwell * 1e6) + " µs per pixel; exposure = frame time");
  } else {
    if (dwell > 0)
      info.exposure_s = dwell;  // camera exposure per frame
    if (frame_time > 0)
      info.frame_time_s = frame_time;
  }
  return mode;
}

// HyperSpy's rule: STEM scans and TEM images are in m, TEM diffraction in 1/m.
std::string si_unit(const std::string& mode, double delta, ImageFileInfo& info) {
  if (!mode.empty())
    return (mode.find("STEM") == std::string::npos && mode.find("Diffraction") != std::string::npos) ? "1/m" : "m";
  const bool reciprocal = std::abs(delta) > 1;
  info.warnings.push_back(std::string("no TIA mode string: unit ") + (reciprocal ? "1/m" : "m") +
                       " guessed from the calibration magnitude");
  return reciprocal ? "1/m" : "m";
}

AxisCalibration tia_axis(double offset, double delta, std::int32_t element, const std::string& unit) {
  AxisCalibration a;
  a.scale = std::isfinite(delta) ? delta : 0;
  // TIA: physical = offset + (index − element) · delta.
  a.origin_px = (a.scale != 0 && std::isfinite(offset)) ? double(element) - offset / a.scale : double(element);
  a.unit = unit;
  return a;
}

// Reads rows bottom-up (as TIA stores them) into display order.
void convert_flipped(Stored type, const unsigned char* src, int nx, int ny, float* dst, ComplexPart part) {
  const std::size_t row_bytes = std::size_t(nx) * bytes_per_value(type);
  for (int r = 0; r < ny; ++r)
    convert_to_float(type, src + std::size_t(ny - 1 - r) * row_bytes, std::size_t(nx), true,
                     dst + std::size_t(r) * std::size_t(nx), part);
}

// ---------------------------------------------------------------------------------------- EMI

struct EmiCopy {
  Stored type = Stored::F32;
  int nx = 0, ny = 0;
  std::uint64_t data_offset = 0;
  double offset[2] = {0, 0}, delta[2] = {0, 0};
  std::int32_t element[2] = {0, 0};
  std::string name;
};

struct EmiContents {
  std::vector<EmiCopy> copies;
  std::vector<std::string> object_infos;
};

constexpr std::size_t kMaxXmlBytes = 1u << 20;

// `<ObjectInfo>…</ObjectInfo>` starting at `start`, "" when it does not close within 1 MiB.
std::string read_object_info(const RawFile& f, std::uint64_t start) {
  const std::size_t n = std::size_t(std::min<std::uint64_t>(kMaxXmlBytes, f.size() - start));
  std::string text(n, '\0');
  f.read(start, text.data(), n, "EMI ObjectInfo XML");
  const auto end = text.find("</ObjectInfo>");
  return end == std::string::npos ? std::string() : text.substr(0, end + 13);
}

// Record at q: `TT SS 22 02 02 | u32 8+nx·ny·bytes | u32 nx | u32 ny | data`, then calibration
// records `41 00 00 01 offsetX`, `41 00 20 01 deltaX`, `31 00 40 01 elementX` (10/30/50: Y).
bool parse_emi_copy(const RawFile& f, const unsigned char* q, std::uint64_t q_at, EmiCopy& c) {
  if (!ser_type(q[-2], c.type))
    return false;
  const std::uint32_t length = load<std::uint32_t>(q + 3), nx = load<std::uint32_t>(q + 7),
                      ny = load<std::uint32_t>(q + 11);
  if (nx < 1 || ny < 1 || nx > (1u << 20) || ny > (1u << 20))
    return false;
  const std::uint64_t bytes = std::uint64_t(nx) * ny * bytes_per_value(c.type);
  c.data_offset = q_at + 15;
  if (std::uint64_t(length) != bytes + 8 || c.data_offset > f.size() || bytes > f.size() - c.data_offset)
    return false;
  c.nx = int(nx);
  c.ny = int(ny);

  const std::uint64_t end = c.data_offset + bytes;
  const std::size_t tail_n = std::size_t(std::min<std::uint64_t>(96, f.size() - end));
  std::vector<unsigned char> tail = f.read(end, tail_n, "EMI calibration");
  const auto find_record = [&](unsigned char type, unsigned char tag, std::size_t value_bytes) -> const unsigned char* {
    for (std::size_t i = 0; i + 4 + value_bytes <= tail.size(); ++i)
      if (tail[i] == type && tail[i + 1] == 0 && tail[i + 2] == tag && tail[i + 3] == 1)
        return tail.data() + i + 4;
    return nullptr;
  };
  for (int axis = 0; axis < 2; ++axis) {
    const unsigned char step = axis == 0 ? 0x00 : 0x10;
    if (const unsigned char* p = find_record(0x41, step, 8))
      c.offset[axis] = load<double>(p);
    if (const unsigned char* p = find_record(0x41, step + 0x20, 8))
      c.delta[axis] = load<double>(p);
    if (const unsigned char* p = find_record(0x31, step + 0x40, 4))
      c.element[axis] = load<std::int32_t>(p);
  }

  // Display name: `60 00 00 01 | u32 n | n chars`, ending 11 bytes before q.
  const std::uint64_t name_end = q_at >= 11 ? q_at - 11 : 0;
  const std::size_t head_n = std::size_t(std::min<std::uint64_t>(128, name_end));
  const std::vector<unsigned char> head = f.read(name_end - head_n, head_n, "EMI display name");
  for (std::size_t i = 0; i + 8 <= head.size(); ++i)
    if (head[i] == 0x60 && head[i + 1] == 0 && head[i + 2] == 0 && head[i + 3] == 1 &&
        i + 8 + load<std::uint32_t>(&head[i + 4]) == head.size())
      c.name = trimmed(std::string(head.begin() + std::ptrdiff_t(i + 8), head.end()));
  return true;
}

// Finds the XML blocks and image copies, jumping over each copy's data (reads little else).
EmiContents scan_emi(const RawFile& f) {
  EmiContents out;
  constexpr std::size_t kChunk = 1u << 20, kOverlap = 32;
  static const char kOpen[] = "<ObjectInfo>";
  std::vector<unsigned char> buf;
  std::uint64_t pos = 0;
  bool xml_closes = true;  // an unclosed block means damage: stop looking, so the scan stays linear
  while (pos < f.size()) {
    const std::size_t n = std::size_t(std::min<std::uint64_t>(kChunk, f.size() - pos));
    buf.resize(n);
    f.read(pos, buf.data(), n, "EMI contents");
    std::uint64_t next = pos + n >= f.size() ? f.size() : pos + n - kOverlap;
    for (std::size_t i = 0; i < n; ++i) {
      if (xml_closes && buf[i] == '<' && i + 12 <= n && std::memcmp(&buf[i], kOpen, 12) == 0) {
        std::string xml = read_object_info(f, pos + i);
        xml_closes = !xml.empty();
        if (xml_closes) {
          next = pos + i + xml.size();
          out.object_infos.push_back(std::move(xml));
          break;
        }
      } else if (buf[i] == 0x22 && i >= 2 && i + 15 <= n && buf[i + 1] == 2 && buf[i + 2] == 2) {
        EmiCopy c;
        if (parse_emi_copy(f, &buf[i], pos + i, c)) {
          next = c.data_offset + std::uint64_t(c.nx) * std::uint64_t(c.ny) * bytes_per_value(c.type);
          out.copies.push_back(std::move(c));
          break;
        }
      }
    }
    pos = std::max(next, pos + 1);
  }
  return out;
}

class EmiReader : public ImageFileReader {
public:
  explicit EmiReader(const std::string& path) : file_(path) {
    info_.path = path;
    info_.format = "TIA EMI";
    const EmiContents contents = scan_emi(file_);
    if (contents.copies.empty())
      fail(path, ": no image copy found in this .emi (it holds only metadata); open the .ser file "
                 "written beside it");
    copy_ = contents.copies.front();
    info_.dtype = dtype_name(copy_.type);
    info_.nx = copy_.nx;
    info_.ny = copy_.ny;
    info_.n_frames = 1;
    std::string mode;
    if (!contents.object_infos.empty())
      mode = apply_object_info(contents.object_infos.front(), info_);
    const std::string unit = si_unit(mode, copy_.delta[0], info_);
    for (int a = 0; a < 2; ++a)
      info_.axes.push_back(tia_axis(copy_.offset[a], copy_.delta[a], copy_.element[a], unit));
    derive_pixel_sizes(info_);

    std::string note = "the .emi holds a display copy of frame 0 only";
    if (!copy_.name.empty())
      note += " (\"" + copy_.name + "\")";
    if (contents.copies.size() > 1) {
      note += "; it also holds copies of";
      for (std::size_t k = 1; k < contents.copies.size(); ++k)
        note += (k > 1 ? ", \"" : " \"") + contents.copies[k].name + "\"";
      note += ", read them from their .ser files";
    }
    const fs::path p(path);
    const fs::path ser = p.parent_path() / (p.stem().string() + "_1.ser");
    std::error_code ec;
    if (fs::exists(ser, ec))
      note += "; all frames are in " + ser.filename().string();
    info_.notes.push_back(note);
    if (is_complex(copy_.type))
      info_.warnings.push_back("complex data: frames return the chosen part (modulus by default)");
  }

  Image frame(std::size_t i, ComplexPart part) const override {
    if (i != 0)
      fail(info_.path, ": frame ", i, " does not exist (an .emi holds one display copy; open the .ser for the series)");
    const std::size_t bytes = std::size_t(copy_.nx) * std::size_t(copy_.ny) * bytes_per_value(copy_.type);
    const std::vector<unsigned char> raw = file_.read(copy_.data_offset, bytes, "EMI image data");
    Image image(copy_.nx, copy_.ny);
    convert_flipped(copy_.type, raw.data(), copy_.nx, copy_.ny, image.pixels.data(), part);
    apply_calibration(info_, image);
    return image;
  }

private:
  RawFile file_;
  EmiCopy copy_;
};

// ---------------------------------------------------------------------------------------- SER

constexpr std::size_t kElementHeaderBytes = 50;  // 2-D element: 2 × (f64, f64, i32), u16, 2 × u32

// <ObjectInfo> of this .ser from `<base>.emi` (block n−1 for `<base>_<n>.ser`) or
// `<base>_emi_ObjectInfo.xml`; "" when neither is there.
std::string companion_object_info(const std::string& ser_path, ImageFileInfo& info) {
  const fs::path p(ser_path);
  std::string base = p.stem().string();
  std::size_t index = 0;
  const auto underscore = base.find_last_of('_');
  if (underscore != std::string::npos && underscore + 1 < base.size() &&
      base.find_first_not_of("0123456789", underscore + 1) == std::string::npos) {
    index = std::size_t(std::max(1L, std::strtol(base.c_str() + underscore + 1, nullptr, 10)) - 1);
    base.resize(underscore);
  }
  std::error_code ec;
  const fs::path emi = p.parent_path() / (base + ".emi");
  if (fs::is_regular_file(emi, ec)) {
    try {
      const RawFile f(emi.string());
      const EmiContents contents = scan_emi(f);
      if (!contents.object_infos.empty()) {
        info.notes.push_back("metadata from " + emi.filename().string());
        return contents.object_infos[std::min(index, contents.object_infos.size() - 1)];
      }
    } catch (const Error& e) {
      info.notes.push_back(std::string("companion .emi unreadable, metadata skipped: ") + e.what());
    }
  }
  const fs::path xml = p.parent_path() / (base + "_emi_ObjectInfo.xml");
  if (fs::is_regular_file(xml, ec) && fs::file_size(xml, ec) <= kMaxXmlBytes) {
    std::ifstream in(xml);
    std::stringstream text;
    text << in.rdbuf();
    const std::string s = text.str();
    const auto b = s.find("<ObjectInfo>"), e = s.find("</ObjectInfo>");
    if (b != std::string::npos && e != std::string::npos && e > b) {
      info.notes.push_back("metadata from " + xml.filename().string());
      return s.substr(b, e + 13 - b);
    }
  }
  info.notes.push_back("no .emi beside the file: no acquisition metadata");
  return "";
}

class SerReader : public ImageFileReader {
public:
  explicit SerReader(const std::string& path) : file_(path) {
    info_.path = path;
    const std::uint64_t size = file_.size();
    std::vector<unsigned char> h = file_.read(0, std::size_t(std::min<std::uint64_t>(size, 34)), "SER header");
    if (h.size() < 30)
      fail(path, ": a SER header needs 30 bytes but the file has ", size, "; the file is truncated");
    if (load<std::uint16_t>(&h[0]) != 0x4949 || load<std::uint16_t>(&h[2]) != 0x0197)
      fail(path, ": not a little-endian TIA SER file (ByteOrder/SeriesID are not 0x4949/0x0197)");
    const std::uint16_t version = load<std::uint16_t>(&h[4]);
    if (version != 0x210 && version != 0x220)
      fail(path, ": SER SeriesVersion 0x", std::hex, version, std::dec,
           " is unknown (readable: 0x210, 0x220); re-export the series from TIA");
    const bool wide = version == 0x220;  // 64-bit offsets
    if (h.size() < (wide ? 34u : 30u))
      fail(path, ": the SER header is truncated (", size, " bytes)");
    const std::uint32_t data_type_id = load<std::uint32_t>(&h[6]);
    if (data_type_id == 0x4120)
      fail(path, ": holds 1-D data elements (spectra, DataTypeID 0x4120), not images; open it with a "
                 "spectrum tool");
    if (data_type_id != 0x4122)
      fail(path, ": SER DataTypeID 0x", std::hex, data_type_id, std::dec,
           " is unknown (images are 0x4122); the header is damaged");
    const std::uint32_t total = load<std::uint32_t>(&h[14]), valid = load<std::uint32_t>(&h[18]);
    const std::uint64_t offset_array = wide ? load<std::uint64_t>(&h[22]) : load<std::uint32_t>(&h[22]);
    const std::uint32_t n_dims = load<std::uint32_t>(&h[wide ? 30 : 26]);
    if (n_dims > 16)
      fail(path, ": SER header declares ", n_dims, " series dimensions (TIA writes 1–3); the header is damaged");
    if (valid == 0 || valid > total)
      fail(path, ": SER header declares ", valid, " valid of ", total,
           " elements; the series is empty or the header damaged");
    const std::size_t entry = wide ? 8 : 4;
    if (offset_array > size || double(total) * 2 * double(entry) > double(size - offset_array))
      fail(path, ": SER offset arrays (", total, " elements at byte ", offset_array,
           ") lie past the end of the ", size, "-byte file; the file is truncated or damaged");

    // Dimension arrays: size u32, offset f64, delta f64, element i32, description, units.
    std::uint64_t at = wide ? 34 : 30;
    AxisCalibration series_axis;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      std::vector<unsigned char> dim = file_.read(at, 28, "SER dimension array");
      const std::uint32_t dim_size = load<std::uint32_t>(&dim[0]);
      const std::uint32_t desc_n = load<std::uint32_t>(&dim[24]);
      at += 28;
      if (desc_n > size - std::min(size, at))
        fail(path, ": SER dimension ", d, " description length ", desc_n, " runs past the end of the file");
      const std::string desc(reinterpret_cast<const char*>(file_.read(at, desc_n, "SER dimension description").data()), desc_n);
      at += desc_n;
      const std::uint32_t unit_n = load<std::uint32_t>(file_.read(at, 4, "SER dimension units").data());
      at += 4;
      if (unit_n > size - std::min(size, at))
        fail(path, ": SER dimension ", d, " units length ", unit_n, " runs past the end of the file");
      const std::vector<unsigned char> unit_bytes = file_.read(at, unit_n, "SER dimension units");
      at += unit_n;
      if (d == 0)
        series_axis = tia_axis(load<double>(&dim[4]), load<double>(&dim[12]), load<std::int32_t>(&dim[20]),
                               std::string(unit_bytes.begin(), unit_bytes.end()));
      if (n_dims > 1)
        info_.notes.push_back("series dimension " + std::to_string(d) + ": " + std::to_string(dim_size) +
                              " (" + desc + "); frames run over all dimensions, first fastest");
    }

    const std::vector<unsigned char> table = file_.read(offset_array, std::size_t(valid) * entry, "SER data offset array");
    offsets_.resize(valid);
    for (std::uint32_t k = 0; k < valid; ++k)
      offsets_[k] = wide ? load<std::uint64_t>(&table[k * entry]) : load<std::uint32_t>(&table[k * entry]);

    const std::vector<unsigned char> eh = file_.read(offsets_[0], kElementHeaderBytes, "SER data element 0 header");
    if (!ser_type(load<std::uint16_t>(&eh[40]), type_))
      fail(path, ": SER data element 0 has unknown DataType ", load<std::uint16_t>(&eh[40]),
           " (valid: 1–10); the file is damaged");
    const std::uint32_t nx = load<std::uint32_t>(&eh[42]), ny = load<std::uint32_t>(&eh[46]);
    require_declared_size(path, nx, ny, valid, double(bytes_per_value(type_)), double(size));
    if (nx > (1u << 30) || ny > (1u << 30))
      fail(path, ": SER element size ", nx, " × ", ny, " is implausible; the header is damaged");
    frame_bytes_ = std::size_t(nx) * ny * bytes_per_value(type_);
    for (std::uint32_t k = 0; k < valid; ++k)
      if (offsets_[k] > size || kElementHeaderBytes + frame_bytes_ > size - offsets_[k])
        fail(path, ": SER data element ", k, " (offset array entry: byte ", offsets_[k],
             ") runs past the end of the ", size, "-byte file; the file is truncated or its offset array damaged");

    info_.format = wide ? "TIA SER v0x220" : "TIA SER v0x210";
    info_.dtype = dtype_name(type_);
    info_.nx = int(nx);
    info_.ny = int(ny);
    info_.n_frames = valid;
    const std::string mode = [&] {
      const std::string xml = companion_object_info(path, info_);
      return xml.empty() ? std::string() : apply_object_info(xml, info_);
    }();
    const std::string unit = si_unit(mode, load<double>(&eh[8]), info_);
    info_.axes.push_back(tia_axis(load<double>(&eh[0]), load<double>(&eh[8]), load<std::int32_t>(&eh[16]), unit));
    info_.axes.push_back(tia_axis(load<double>(&eh[20]), load<double>(&eh[28]), load<std::int32_t>(&eh[36]), unit));
    if (valid > 1) {
      info_.axes.push_back(series_axis);
      if (!(info_.frame_time_s > 0))
        info_.notes.push_back("frame interval not stored (TIA time tags have 1-s resolution)");
    }
    if (is_complex(type_))
      info_.warnings.push_back("complex data: frames return the chosen part (modulus by default)");
    info_.notes.push_back("rows flipped: TIA stores them bottom-up");
    derive_pixel_sizes(info_);
  }

  Image frame(std::size_t i, ComplexPart part) const override {
    if (i >= offsets_.size())
      fail(info_.path, ": frame ", i, " does not exist (the series has ", offsets_.size(), " frames)");
    const std::vector<unsigned char> raw = file_.read(offsets_[i], kElementHeaderBytes + frame_bytes_, "SER data element");
    Stored t;
    if (!ser_type(load<std::uint16_t>(&raw[40]), t) || t != type_ ||
        load<std::uint32_t>(&raw[42]) != std::uint32_t(info_.nx) || load<std::uint32_t>(&raw[46]) != std::uint32_t(info_.ny))
      fail(info_.path, ": SER data element ", i, " differs in type or size from element 0; the file is damaged");
    Image image(info_.nx, info_.ny);
    convert_flipped(type_, raw.data() + kElementHeaderBytes, info_.nx, info_.ny, image.pixels.data(), part);
    apply_calibration(info_, image);
    return image;
  }

private:
  RawFile file_;
  Stored type_ = Stored::F32;
  std::vector<std::uint64_t> offsets_;
  std::size_t frame_bytes_ = 0;
};

}  // namespace

std::unique_ptr<ImageFileReader> open_ser_file(const std::string& path) { return std::make_unique<SerReader>(path); }

std::unique_ptr<ImageFileReader> open_emi_file(const std::string& path) { return std::make_unique<EmiReader>(path); }

}  // namespace epitem
