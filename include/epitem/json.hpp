// A small JSON value for sidecars and reports: objects keep insertion order so the sidecar
// reads in the order parameters were resolved. Writing only; no parser needed.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace epitem {

class Json {
public:
  Json() : kind_(Kind::Null) {}
  Json(double v) : kind_(Kind::Number), number_(v) {}
  Json(int v) : kind_(Kind::Number), number_(v) {}
  Json(long v) : kind_(Kind::Number), number_(double(v)) {}
  Json(long long v) : kind_(Kind::Number), number_(double(v)) {}
  Json(unsigned long v) : kind_(Kind::Number), number_(double(v)) {}
  Json(unsigned long long v) : kind_(Kind::Number), number_(double(v)) {}
  Json(bool v) : kind_(Kind::Bool), bool_(v) {}
  Json(const char* v) : kind_(Kind::String), string_(v) {}
  Json(std::string v) : kind_(Kind::String), string_(std::move(v)) {}
  Json(const std::vector<double>& v);
  Json(const std::vector<int>& v);
  Json(const std::vector<std::string>& v);

  static Json object() { Json j; j.kind_ = Kind::Object; return j; }
  static Json array() { Json j; j.kind_ = Kind::Array; return j; }

  /// Sets key (replacing an existing one, keeping its place). Turns null into an object.
  Json& set(const std::string& key, Json value);
  /// Appends to an array. Turns null into an array.
  Json& push(Json value);
  bool is_null() const { return kind_ == Kind::Null; }
  size_t size() const { return kind_ == Kind::Object ? members_.size() : items_.size(); }
  /// An object's (key, value) pairs in insertion order (empty for other kinds).
  const std::vector<std::pair<std::string, Json>>& members() const { return members_; }

  /// Serialises with `indent` spaces per level (0 = one line). Non-finite numbers → null.
  std::string dump(int indent = 2) const;

private:
  enum class Kind { Null, Bool, Number, String, Array, Object };
  void dump_to(std::string& out, int indent, int level) const;
  Kind kind_;
  double number_ = 0;
  bool bool_ = false;
  std::string string_;
  std::vector<Json> items_;
  std::vector<std::pair<std::string, Json>> members_;
};

}  // namespace epitem
