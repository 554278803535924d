#include "openairealtimesrc.h"

#include <mutex>

#include "openairealtime-common.h"

#define GST_CAT_DEFAULT openairealtime_debug

using realtime::ElementCommon;

namespace {
constexpr int kPeriodMs = 20;
constexpr guint kSamplesPerPeriod = realtime::kSampleRate * kPeriodMs / 1000;  // 480
constexpr guint kBytesPerPeriod = kSamplesPerPeriod * realtime::kBytesPerSample;  // 960
constexpr GstClockTime kPeriod = kPeriodMs * GST_MSECOND;
}  // namespace

// Streaming state, reset in start. Guarded by `lock` only where unlock() races with create().
struct SrcState {
  std::mutex lock;
  GstClockID clock_id = nullptr;
  bool flushing = false;
  bool started = false;
  GstClockTime first_pts = 0;
  guint64 samples = 0;
};

struct _GstOpenAIRealtimeSrc {
  GstBaseSrc parent;
  ElementCommon *common;
  SrcState *state;
};

enum { PROP_0, PROP_COMMON_FIRST };

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-raw, format=(string)S16LE, rate=(int)24000, channels=(int)1, layout=(string)interleaved"));

G_DEFINE_TYPE(GstOpenAIRealtimeSrc, gst_openai_realtime_src, GST_TYPE_BASE_SRC);
GST_ELEMENT_REGISTER_DEFINE(openairealtimesrc, "openairealtimesrc", GST_RANK_NONE, GST_TYPE_OPENAI_REALTIME_SRC);

static void src_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  auto *self = GST_OPENAI_REALTIME_SRC(object);
  if (!realtime::common_set_property(self->common, prop_id, value, PROP_COMMON_FIRST))
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
}

static void src_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  auto *self = GST_OPENAI_REALTIME_SRC(object);
  if (!realtime::common_get_property(self->common, prop_id, value, PROP_COMMON_FIRST))
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
}

static void src_finalize(GObject *object) {
  auto *self = GST_OPENAI_REALTIME_SRC(object);
  delete self->common;
  delete self->state;
  G_OBJECT_CLASS(gst_openai_realtime_src_parent_class)->finalize(object);
}

static gboolean src_start(GstBaseSrc *base) {
  auto *self = GST_OPENAI_REALTIME_SRC(base);
  {
    std::lock_guard<std::mutex> lock(self->state->lock);
    self->state->started = false;
    self->state->samples = 0;
    self->state->flushing = false;
  }
  return realtime::common_start(GST_ELEMENT(base), self->common, true);
}

static gboolean src_stop(GstBaseSrc *base) {
  realtime::common_stop(GST_ELEMENT(base), GST_OPENAI_REALTIME_SRC(base)->common);
  return TRUE;
}

static gboolean src_unlock(GstBaseSrc *base) {
  SrcState *st = GST_OPENAI_REALTIME_SRC(base)->state;
  std::lock_guard<std::mutex> lock(st->lock);
  st->flushing = true;
  if (st->clock_id) gst_clock_id_unschedule(st->clock_id);
  return TRUE;
}

static gboolean src_unlock_stop(GstBaseSrc *base) {
  SrcState *st = GST_OPENAI_REALTIME_SRC(base)->state;
  std::lock_guard<std::mutex> lock(st->lock);
  st->flushing = false;
  return TRUE;
}

// Waits until the running time of the buffer about to be filled. Waiting before taking audio from
// the session (rather than letting basesrc sync after create) keeps what is pulled fresh, so a
// barge-in cuts playback within one period.
static GstFlowReturn wait_until(GstOpenAIRealtimeSrc *self, GstClockTime running_time) {
  GstClock *clock = gst_element_get_clock(GST_ELEMENT(self));
  if (!clock) return GST_FLOW_OK;  // no clock: run as fast as downstream takes buffers
  GstClockTime base_time = gst_element_get_base_time(GST_ELEMENT(self));
  GstClockID id = gst_clock_new_single_shot_id(clock, base_time + running_time);
  gst_object_unref(clock);
  SrcState *st = self->state;
  {
    std::lock_guard<std::mutex> lock(st->lock);
    if (st->flushing) {
      gst_clock_id_unref(id);
      return GST_FLOW_FLUSHING;
    }
    st->clock_id = id;
  }
  GstClockReturn ret = gst_clock_id_wait(id, nullptr);
  {
    std::lock_guard<std::mutex> lock(st->lock);
    st->clock_id = nullptr;
  }
  gst_clock_id_unref(id);
  return ret == GST_CLOCK_UNSCHEDULED ? GST_FLOW_FLUSHING : GST_FLOW_OK;
}

static GstFlowReturn src_create(GstBaseSrc *base, guint64, guint, GstBuffer **out) {
  auto *self = GST_OPENAI_REALTIME_SRC(base);
  auto session = realtime::common_session(self->common);
  if (!session) return GST_FLOW_FLUSHING;
  SrcState *st = self->state;

  bool discont = false;
  if (!st->started) {
    // Timestamps start at the running time of the first buffer and then follow the sample count,
    // so they stay continuous whatever the wake-up jitter.
    GstClock *clock = gst_element_get_clock(GST_ELEMENT(self));
    GstClockTime now = 0;
    if (clock) {
      GstClockTime t = gst_clock_get_time(clock), b = gst_element_get_base_time(GST_ELEMENT(self));
      now = t > b ? t - b : 0;
      gst_object_unref(clock);
    }
    st->first_pts = now;
    st->samples = 0;
    st->started = true;
    discont = true;
  }
  GstClockTime pts = st->first_pts + gst_util_uint64_scale_int(st->samples, GST_SECOND, realtime::kSampleRate);
  GstFlowReturn ret = wait_until(self, pts);
  if (ret != GST_FLOW_OK) return ret;

  GstBuffer *buffer = gst_buffer_new_allocate(nullptr, kBytesPerPeriod, nullptr);
  GstMapInfo map;
  gst_buffer_map(buffer, &map, GST_MAP_WRITE);
  // Silence-padded, and never flagged GAP: encoders downstream must keep sending packets.
  session->pull_output(map.data, kBytesPerPeriod);
  gst_buffer_unmap(buffer, &map);

  GST_BUFFER_PTS(buffer) = pts;
  GST_BUFFER_DTS(buffer) = GST_CLOCK_TIME_NONE;
  GST_BUFFER_DURATION(buffer) = kPeriod;
  GST_BUFFER_OFFSET(buffer) = st->samples;
  st->samples += kSamplesPerPeriod;
  GST_BUFFER_OFFSET_END(buffer) = st->samples;
  if (discont) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DISCONT);
  *out = buffer;
  return GST_FLOW_OK;
}

static gboolean src_query(GstBaseSrc *base, GstQuery *query) {
  if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
    // Live, no latency of its own: create() waits for each buffer's running time and then hands out
    // audio that is already in memory, so a buffer is complete at its timestamp. Reporting the
    // period here would make webrtcbin's clocksync hold every buffer another 20 ms, added to what
    // the caller hears after the model and to every barge-in (bench/RESULTS.md §2). The maximum
    // says how long a buffer may wait downstream: one period, which is what the src produces ahead.
    gst_query_set_latency(query, TRUE, 0, kPeriod);
    return TRUE;
  }
  return GST_BASE_SRC_CLASS(gst_openai_realtime_src_parent_class)->query(base, query);
}

static GstCaps *src_fixate(GstBaseSrc *base, GstCaps *caps) {
  caps = gst_caps_fixate(caps);
  return GST_BASE_SRC_CLASS(gst_openai_realtime_src_parent_class)->fixate(base, caps);
}

static void gst_openai_realtime_src_class_init(GstOpenAIRealtimeSrcClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseSrcClass *base_class = GST_BASE_SRC_CLASS(klass);

  gobject_class->set_property = src_set_property;
  gobject_class->get_property = src_get_property;
  gobject_class->finalize = src_finalize;
  realtime::common_class_init(gobject_class, PROP_COMMON_FIRST);

  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "OpenAI Realtime source", "Source/Audio/Network",
      "Plays the voice of the OpenAI Realtime model of a session as live audio in 20 ms buffers, silence when "
      "the model is quiet; stops at once when the caller barges in. Shares one connection with the "
      "openairealtimesink of the same session name",
      "voicebridge");

  base_class->start = GST_DEBUG_FUNCPTR(src_start);
  base_class->stop = GST_DEBUG_FUNCPTR(src_stop);
  base_class->unlock = GST_DEBUG_FUNCPTR(src_unlock);
  base_class->unlock_stop = GST_DEBUG_FUNCPTR(src_unlock_stop);
  base_class->create = GST_DEBUG_FUNCPTR(src_create);
  base_class->query = GST_DEBUG_FUNCPTR(src_query);
  base_class->fixate = GST_DEBUG_FUNCPTR(src_fixate);
}

static void gst_openai_realtime_src_init(GstOpenAIRealtimeSrc *self) {
  self->common = new ElementCommon();
  self->state = new SrcState();
  realtime::common_instance_init(G_OBJECT(self), self->common);
  gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
  gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
  gst_base_src_set_do_timestamp(GST_BASE_SRC(self), FALSE);
}
