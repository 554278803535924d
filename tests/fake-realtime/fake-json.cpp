#include "fake-json.h"

#include <cmath>

namespace fake_realtime::detail {

Obj::~Obj() {
  if (o_)
    json_object_unref(o_);
}

Obj &Obj::operator=(Obj &&other) noexcept {
  if (this != &other) {
    if (o_)
      json_object_unref(o_);
    o_ = other.o_;
    other.o_ = nullptr;
  }
  return *this;
}

Obj &Obj::str(const char *key, const std::string &value) {
  json_object_set_string_member(o_, key, value.c_str());
  return *this;
}

Obj &Obj::num(const char *key, int64_t value) {
  json_object_set_int_member(o_, key, value);
  return *this;
}

Obj &Obj::dbl(const char *key, double value) {
  json_object_set_double_member(o_, key, value);
  return *this;
}

Obj &Obj::boolean(const char *key, bool value) {
  json_object_set_boolean_member(o_, key, value);
  return *this;
}

Obj &Obj::null(const char *key) {
  json_object_set_null_member(o_, key);
  return *this;
}

Obj &Obj::str_or_null(const char *key, const std::string &value) {
  return value.empty() ? null(key) : str(key, value);
}

Obj &Obj::obj(const char *key, Obj &&value) {
  json_object_set_object_member(o_, key, value.release());
  return *this;
}

Obj &Obj::arr(const char *key, Arr &&value) {
  json_object_set_array_member(o_, key, value.release());
  return *this;
}

Obj &Obj::node(const char *key, JsonNode *adopt) {
  if (!adopt)
    return null(key);
  json_object_set_member(o_, key, adopt);
  return *this;
}

JsonObject *Obj::release() {
  JsonObject *o = o_;
  o_ = nullptr;
  return o;
}

std::string Obj::text() const {
  return to_text(o_);
}

Arr::~Arr() {
  if (a_)
    json_array_unref(a_);
}

Arr &Arr::add(Obj &&value) {
  json_array_add_object_element(a_, value.release());
  return *this;
}

Arr &Arr::add_str(const std::string &value) {
  json_array_add_string_element(a_, value.c_str());
  return *this;
}

Arr &Arr::add_node(JsonNode *adopt) {
  json_array_add_element(a_, adopt ? adopt : json_node_new(JSON_NODE_NULL));
  return *this;
}

JsonArray *Arr::release() {
  JsonArray *a = a_;
  a_ = nullptr;
  return a;
}

JsonNode *deep_copy(JsonNode *node) {
  if (!node)
    return nullptr;
  switch (JSON_NODE_TYPE(node)) {
    case JSON_NODE_OBJECT: {
      JsonNode *copy = json_node_new(JSON_NODE_OBJECT);
      json_node_take_object(copy, deep_copy(json_node_get_object(node)));
      return copy;
    }
    case JSON_NODE_ARRAY: {
      JsonArray *src = json_node_get_array(node);
      JsonArray *dst = json_array_sized_new(json_array_get_length(src));
      for (guint i = 0; i < json_array_get_length(src); i++)
        json_array_add_element(dst, deep_copy(json_array_get_element(src, i)));
      JsonNode *copy = json_node_new(JSON_NODE_ARRAY);
      json_node_take_array(copy, dst);
      return copy;
    }
    case JSON_NODE_VALUE:
    case JSON_NODE_NULL:
      break;
  }
  return json_node_copy(node);  // scalars have no shared children
}

JsonObject *deep_copy(JsonObject *object) {
  JsonObject *copy = json_object_new();
  GList *members = json_object_get_members(object);
  for (GList *l = members; l; l = l->next) {
    const char *key = static_cast<const char *>(l->data);
    json_object_set_member(copy, key, deep_copy(json_object_get_member(object, key)));
  }
  g_list_free(members);
  return copy;
}

std::string to_text(JsonNode *node) {
  JsonGenerator *gen = json_generator_new();
  json_generator_set_root(gen, node);
  gsize length = 0;
  gchar *data = json_generator_to_data(gen, &length);
  std::string text(data, length);
  g_free(data);
  g_object_unref(gen);
  return text;
}

std::string to_text(JsonObject *object) {
  JsonNode *node = json_node_new(JSON_NODE_OBJECT);
  json_node_set_object(node, object);
  std::string text = to_text(node);
  json_node_unref(node);
  return text;
}

JsonNode *parse(const char *data, size_t length, std::string *error) {
  JsonParser *parser = json_parser_new();
  GError *err = nullptr;
  JsonNode *root = nullptr;
  if (json_parser_load_from_data(parser, data, static_cast<gssize>(length), &err)) {
    root = json_parser_steal_root(parser);
    if (!root && error)
      *error = "empty document";
  } else {
    if (error)
      *error = err ? err->message : "parse error";
    g_clear_error(&err);
  }
  g_object_unref(parser);
  return root;
}

bool is_string(JsonObject *o, const char *key) {
  JsonNode *n = o ? json_object_get_member(o, key) : nullptr;
  return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING;
}

std::string get_string(JsonObject *o, const char *key, const std::string &fallback) {
  if (!is_string(o, key))
    return fallback;
  return json_object_get_string_member(o, key);
}

JsonObject *get_object(JsonObject *o, const char *key) {
  JsonNode *n = o ? json_object_get_member(o, key) : nullptr;
  return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : nullptr;
}

bool is_null(JsonObject *o, const char *key) {
  JsonNode *n = o ? json_object_get_member(o, key) : nullptr;
  return n && JSON_NODE_HOLDS_NULL(n);
}

bool get_int(JsonObject *o, const char *key, int64_t *out) {
  JsonNode *n = o ? json_object_get_member(o, key) : nullptr;
  if (!n || !JSON_NODE_HOLDS_VALUE(n))
    return false;
  GType t = json_node_get_value_type(n);
  if (t == G_TYPE_INT64) {
    *out = json_node_get_int(n);
    return true;
  }
  if (t == G_TYPE_DOUBLE) {
    double d = json_node_get_double(n);
    if (std::floor(d) != d)
      return false;
    *out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}

bool get_bool(JsonObject *o, const char *key, bool fallback) {
  JsonNode *n = o ? json_object_get_member(o, key) : nullptr;
  if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
    return fallback;
  return json_node_get_boolean(n);
}

std::string describe_type(JsonNode *node) {
  if (!node || JSON_NODE_HOLDS_NULL(node))
    return "null";
  if (JSON_NODE_HOLDS_OBJECT(node))
    return "an object";
  if (JSON_NODE_HOLDS_ARRAY(node))
    return "an array";
  GType t = json_node_get_value_type(node);
  if (t == G_TYPE_STRING)
    return "a string";
  if (t == G_TYPE_BOOLEAN)
    return "a boolean";
  if (t == G_TYPE_INT64)
    return "an integer";
  return "a decimal";
}

}  // namespace fake_realtime::detail
