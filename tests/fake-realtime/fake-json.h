// Small json-glib helpers for the fake Realtime server: an owning object/array builder (events are
// built in many places and raw json-glib calls would drown the protocol logic), deep copies (the
// session is edited in place and json_node_copy() only shares children), and typed getters.
#pragma once

#include <json-glib/json-glib.h>

#include <cstdint>
#include <memory>
#include <string>

namespace fake_realtime::detail {

class Arr;

struct NodeUnref {
  void operator()(JsonNode *n) const {
    if (n)
      json_node_unref(n);
  }
};
using NodePtr = std::unique_ptr<JsonNode, NodeUnref>;

// Owns one JsonObject reference. Setters chain: Obj().str("type", "error").num("code", 1).
class Obj {
 public:
  Obj() : o_(json_object_new()) {}
  explicit Obj(JsonObject *adopt) : o_(adopt) {}
  ~Obj();
  Obj(Obj &&other) noexcept : o_(other.o_) { other.o_ = nullptr; }
  Obj &operator=(Obj &&other) noexcept;
  Obj(const Obj &) = delete;
  Obj &operator=(const Obj &) = delete;

  Obj &str(const char *key, const std::string &value);
  Obj &num(const char *key, int64_t value);
  Obj &dbl(const char *key, double value);
  Obj &boolean(const char *key, bool value);
  Obj &null(const char *key);
  Obj &str_or_null(const char *key, const std::string &value);  // "" becomes null
  Obj &obj(const char *key, Obj &&value);
  Obj &arr(const char *key, Arr &&value);
  Obj &node(const char *key, JsonNode *adopt);  // takes ownership; nullptr becomes null

  JsonObject *get() const { return o_; }
  JsonObject *release();
  std::string text() const;

 private:
  JsonObject *o_;
};

// Owns one JsonArray reference.
class Arr {
 public:
  Arr() : a_(json_array_new()) {}
  ~Arr();
  Arr(Arr &&other) noexcept : a_(other.a_) { other.a_ = nullptr; }
  Arr(const Arr &) = delete;
  Arr &operator=(const Arr &) = delete;
  Arr &operator=(Arr &&) = delete;

  Arr &add(Obj &&value);
  Arr &add_str(const std::string &value);
  Arr &add_node(JsonNode *adopt);

  JsonArray *get() const { return a_; }
  JsonArray *release();

 private:
  JsonArray *a_;
};

// Deep copies; the results are new, unshared references.
JsonNode *deep_copy(JsonNode *node);
JsonObject *deep_copy(JsonObject *object);

std::string to_text(JsonObject *object);
std::string to_text(JsonNode *node);

// Parses text; returns a new node or nullptr with *error set.
JsonNode *parse(const char *data, size_t length, std::string *error);

// Typed member access that tolerates absent members and wrong types.
bool is_string(JsonObject *o, const char *key);
std::string get_string(JsonObject *o, const char *key, const std::string &fallback = {});
JsonObject *get_object(JsonObject *o, const char *key);      // borrowed, nullptr unless an object
bool is_null(JsonObject *o, const char *key);                // present and null
bool get_int(JsonObject *o, const char *key, int64_t *out);  // integer or integral double
bool get_bool(JsonObject *o, const char *key, bool fallback);

// "a JSON string", "an integer"… for "Invalid type" messages.
std::string describe_type(JsonNode *node);

}  // namespace fake_realtime::detail
