// What openairealtimesink and openairealtimesrc share: the session properties (both elements take
// every session setting, so either one can configure the shared connection), the action signals an
// application uses, and the element-side handle on the session.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include <gst/gst.h>

#include "realtime-session.h"

GST_DEBUG_CATEGORY_EXTERN(openairealtime_debug);

namespace realtime {

// Per-element state shared by both element types. Created in instance init, deleted in finalize
// (GObject runs no C++ constructors on instance memory).
struct ElementCommon {
  std::mutex lock;
  std::string session_name = "default";
  SessionSettings settings;            // property values
  std::shared_ptr<Session> session;    // between start and stop
};

void common_class_init(GObjectClass *klass, guint first_prop_id);
// Returns true when prop_id belongs to the common set (and was handled).
bool common_set_property(ElementCommon *common, guint prop_id, const GValue *value, guint first_prop_id);
bool common_get_property(ElementCommon *common, guint prop_id, GValue *value, guint first_prop_id);
// Ties the common state to the instance so that the action signals can find it.
void common_instance_init(GObject *object, ElementCommon *common);

// start/stop helpers: acquire the session by name and attach the element, or detach and release.
bool common_start(GstElement *element, ElementCommon *common, bool prefer_for_messages);
void common_stop(GstElement *element, ElementCommon *common);
std::shared_ptr<Session> common_session(ElementCommon *common);

}  // namespace realtime
