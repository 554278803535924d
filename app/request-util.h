// Small helpers shared by the HTTP routes (call API, WhatsApp): token checks and JSON request bodies.
#pragma once

#include <string>

#include <json-glib/json-glib.h>

#include "http-server.h"
#include "json-guard.h"

namespace vb {

// Compares secrets without an early exit, so that response timing does not reveal them.
bool constant_time_equal(const std::string &a, const std::string &b);

// True when no token is configured, or the request carries "Authorization: Bearer <token>".
bool bearer_authorized(const HttpRequest &request, const std::string &token);

// The request body as a JSON object. On failure replies 400 invalid_json and returns nullptr;
// otherwise the returned parser owns *object (g_object_unref it when done).
JsonParser *parse_request_object(HttpRequest &request, JsonObject **object);

// An optional string member; false when present with another type (null counts as absent).
bool optional_string(JsonObject *object, const char *name, std::string *out);

}  // namespace vb
