#include "epitem/json.hpp"

#include <cmath>
#include <cstdio>

namespace epitem {

Json::Json(const std::vector<double>& v) : kind_(Kind::Array) {
  for (double x : v)
    items_.emplace_back(x);
}
Json::Json(const std::vector<int>& v) : kind_(Kind::Array) {
  for (int x : v)
    items_.emplace_back(x);
}
Json::Json(const std::vector<std::string>& v) : kind_(Kind::Array) {
  for (const auto& x : v)
    items_.emplace_back(x);
}

Json& Json::set(const std::string& key, Json value) {
  if (kind_ == Kind::Null)
    kind_ = Kind::Object;
  for (auto& [k, v] : members_)
    if (k == key) {
      v = std::move(value);
      return *this;
    }
  members_.emplace_back(key, std::move(value));
  return *this;
}

Json& Json::push(Json value) {
  if (kind_ == Kind::Null)
    kind_ = Kind::Array;
  items_.push_back(std::move(value));
  return *this;
}

static void escape_to(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

void Json::dump_to(std::string& out, int indent, int level) const {
  auto newline = [&](int lvl) {
    if (indent > 0) {
      out += '\n';
      out.append(size_t(indent * lvl), ' ');
    }
  };
  switch (kind_) {
    case Kind::Null: out += "null"; break;
    case Kind::Bool: out += bool_ ? "true" : "false"; break;
    case Kind::Number: {
      if (!std::isfinite(number_)) {
        out += "null";
      } else if (number_ == std::floor(number_) && std::abs(number_) < 1e15) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.0f", number_);
        out += buf;
      } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.10g", number_);
        out += buf;
      }
      break;
    }
    case Kind::String: escape_to(out, string_); break;
    case Kind::Array: {
      out += '[';
      bool simple = true;
      for (const auto& it : items_)
        if (it.kind_ == Kind::Array || it.kind_ == Kind::Object)
          simple = false;
      for (size_t i = 0; i < items_.size(); ++i) {
        if (i)
          out += simple ? ", " : ",";
        if (!simple)
          newline(level + 1);
        items_[i].dump_to(out, indent, level + 1);
      }
      if (!simple && !items_.empty())
        newline(level);
      out += ']';
      break;
    }
    case Kind::Object: {
      out += '{';
      for (size_t i = 0; i < members_.size(); ++i) {
        if (i)
          out += ',';
        newline(level + 1);
        escape_to(out, members_[i].first);
        out += indent > 0 ? ": " : ":";
        members_[i].second.dump_to(out, indent, level + 1);
      }
      if (!members_.empty())
        newline(level);
      out += '}';
      break;
    }
  }
}

}  // namespace epitem
