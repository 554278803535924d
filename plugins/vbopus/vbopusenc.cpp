// vbopusenc: see vbopusenc.h. One Opus frame per input frame; the base class cuts the input into
// frames and timestamps the packets (packet PTS = PTS of its first input sample, duration = the
// frame), so a packet covers exactly the input it came from and rtpopuspay advances the RTP clock by
// one frame per packet.
#include "vbopusenc.h"

#include <opus/opus.h>

#include <algorithm>
#include <mutex>
#include <vector>

GST_DEBUG_CATEGORY_STATIC(vbopusenc_debug);
#define GST_CAT_DEFAULT vbopusenc_debug

namespace {

// The rates libopus encodes natively (anything else needs a resampler upstream).
#define VB_OPUS_RATES "(int){ 48000, 24000, 16000, 12000, 8000 }"

// Property values as set, applied to the encoder at the next frame.
struct Settings {
  int bitrate = 64000;
  int complexity = 10;
  bool inband_fec = false;
  int packet_loss_percentage = 0;
  bool dtx = false;
  int frame_size = 20;         // ms; 2 means 2.5 ms, as opusenc's enum
  int bandwidth = OPUS_AUTO;   // the maximum audio bandwidth
  int audio_type = OPUS_SIGNAL_VOICE;
  unsigned generation = 1;     // bumped by every change
};

// What exists between set_format and stop.
struct State {
  OpusEncoder *encoder = nullptr;
  int rate = 0;
  int frame_samples = 0;       // per packet, at the input rate
  unsigned applied = 0;        // the Settings generation the encoder runs with
  std::vector<unsigned char> packet = std::vector<unsigned char>(1275);  // libopus's maximum packet
  std::vector<opus_int16> padded;
};

int frame_samples_for(int rate, int frame_size_ms) {
  return frame_size_ms == 2 ? rate / 400 : rate * frame_size_ms / 1000;
}

}  // namespace

struct _GstVbOpusEnc {
  GstAudioEncoder parent;
  std::mutex *lock;  // guards settings
  Settings *settings;
  State *state;      // streaming thread only
};

enum {
  PROP_0,
  PROP_BITRATE,
  PROP_COMPLEXITY,
  PROP_INBAND_FEC,
  PROP_PACKET_LOSS_PERCENTAGE,
  PROP_DTX,
  PROP_FRAME_SIZE,
  PROP_BANDWIDTH,
  PROP_AUDIO_TYPE,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-raw, format=(string)S16LE, layout=(string)interleaved, channels=(int)1, "
                    "rate=" VB_OPUS_RATES));

// As opusenc 1.22 for one channel, minus the streamheader (no OpusHead/OpusTags: RTP carries none,
// and rtpopuspay 1.22 would packetize header buffers as audio). `rate` is the input rate, as
// opusenc's: rtpopuspay turns it into sprop-maxcapturerate.
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-opus, channel-mapping-family=(int)0, channels=(int)1, rate=" VB_OPUS_RATES));

G_DEFINE_TYPE(GstVbOpusEnc, gst_vb_opus_enc, GST_TYPE_AUDIO_ENCODER);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE(vbopusenc, "vbopusenc", GST_RANK_NONE, GST_TYPE_VB_OPUS_ENC,
                                      GST_DEBUG_CATEGORY_INIT(vbopusenc_debug, "vbopusenc", 0,
                                                              "single-stream Opus encoder"));

// ---- enums, with opusenc's nicks so that gst_util_set_object_arg() calls carry over ----

static GType bandwidth_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {OPUS_AUTO, "Auto (up to the input's)", "auto"},
      {OPUS_BANDWIDTH_NARROWBAND, "Narrow band (4 kHz)", "narrowband"},
      {OPUS_BANDWIDTH_MEDIUMBAND, "Medium band (6 kHz)", "mediumband"},
      {OPUS_BANDWIDTH_WIDEBAND, "Wide band (8 kHz)", "wideband"},
      {OPUS_BANDWIDTH_SUPERWIDEBAND, "Super wide band (12 kHz)", "superwideband"},
      {OPUS_BANDWIDTH_FULLBAND, "Full band (20 kHz)", "fullband"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstVbOpusEncBandwidth", values));
  return type;
}

static GType frame_size_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {{2, "2.5 ms", "2.5"}, {5, "5 ms", "5"},   {10, "10 ms", "10"},
                                      {20, "20 ms", "20"},  {40, "40 ms", "40"}, {60, "60 ms", "60"},
                                      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstVbOpusEncFrameSize", values));
  return type;
}

static GType audio_type_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {{OPUS_SIGNAL_VOICE, "Voice", "voice"},
                                      {OPUS_SIGNAL_MUSIC, "Generic audio", "generic"},
                                      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstVbOpusEncAudioType", values));
  return type;
}

// ---- properties ----

static void enc_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  auto *self = GST_VB_OPUS_ENC(object);
  std::lock_guard<std::mutex> lock(*self->lock);
  Settings &s = *self->settings;
  switch (prop_id) {
    case PROP_BITRATE: s.bitrate = g_value_get_int(value); break;
    case PROP_COMPLEXITY: s.complexity = g_value_get_int(value); break;
    case PROP_INBAND_FEC: s.inband_fec = g_value_get_boolean(value); break;
    case PROP_PACKET_LOSS_PERCENTAGE: s.packet_loss_percentage = g_value_get_int(value); break;
    case PROP_DTX: s.dtx = g_value_get_boolean(value); break;
    case PROP_FRAME_SIZE: s.frame_size = g_value_get_enum(value); break;
    case PROP_BANDWIDTH: s.bandwidth = g_value_get_enum(value); break;
    case PROP_AUDIO_TYPE: s.audio_type = g_value_get_enum(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); return;
  }
  s.generation++;
}

static void enc_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  auto *self = GST_VB_OPUS_ENC(object);
  std::lock_guard<std::mutex> lock(*self->lock);
  const Settings &s = *self->settings;
  switch (prop_id) {
    case PROP_BITRATE: g_value_set_int(value, s.bitrate); break;
    case PROP_COMPLEXITY: g_value_set_int(value, s.complexity); break;
    case PROP_INBAND_FEC: g_value_set_boolean(value, s.inband_fec); break;
    case PROP_PACKET_LOSS_PERCENTAGE: g_value_set_int(value, s.packet_loss_percentage); break;
    case PROP_DTX: g_value_set_boolean(value, s.dtx); break;
    case PROP_FRAME_SIZE: g_value_set_enum(value, s.frame_size); break;
    case PROP_BANDWIDTH: g_value_set_enum(value, s.bandwidth); break;
    case PROP_AUDIO_TYPE: g_value_set_enum(value, s.audio_type); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

// ---- encoding ----

// Brings the encoder and the base class's framing up to date with the properties. Called from the
// streaming thread only (set_format, handle_frame), so property changes apply between two frames.
static void apply_settings(GstVbOpusEnc *self) {
  State &st = *self->state;
  Settings s;
  {
    std::lock_guard<std::mutex> lock(*self->lock);
    s = *self->settings;
  }
  if (s.generation == st.applied) return;
  OpusEncoder *e = st.encoder;
  opus_encoder_ctl(e, OPUS_SET_BITRATE(s.bitrate));
  opus_encoder_ctl(e, OPUS_SET_COMPLEXITY(s.complexity));
  opus_encoder_ctl(e, OPUS_SET_INBAND_FEC(s.inband_fec ? 1 : 0));
  opus_encoder_ctl(e, OPUS_SET_PACKET_LOSS_PERC(s.packet_loss_percentage));
  opus_encoder_ctl(e, OPUS_SET_DTX(s.dtx ? 1 : 0));
  opus_encoder_ctl(e, OPUS_SET_SIGNAL(s.audio_type));
  // A maximum, not a forced bandwidth: libopus may still go lower for a low bitrate. Auto means
  // no limit beyond the input rate's.
  opus_encoder_ctl(e, OPUS_SET_MAX_BANDWIDTH(s.bandwidth == OPUS_AUTO ? OPUS_BANDWIDTH_FULLBAND : s.bandwidth));

  const int frame_samples = frame_samples_for(st.rate, s.frame_size);
  if (frame_samples != st.frame_samples) {
    st.frame_samples = frame_samples;
    // Exactly one Opus frame per handle_frame call.
    GstAudioEncoder *enc = GST_AUDIO_ENCODER(self);
    gst_audio_encoder_set_frame_samples_min(enc, frame_samples);
    gst_audio_encoder_set_frame_samples_max(enc, frame_samples);
    gst_audio_encoder_set_frame_max(enc, 1);
    // What we add to the pipeline's latency is the frame we wait for, as opusenc. The codec's
    // lookahead (OPUS_GET_LOOKAHEAD, 6.5 ms in VOIP mode) is not a wait: it is a shift of the
    // decoded audio inside each packet's time span, which over RTP (no pre-skip) every Opus sender
    // has; declaring it as latency would only make a synchronised sink play everything later.
    const GstClockTime frame = gst_util_uint64_scale_int(frame_samples, GST_SECOND, st.rate);
    gst_audio_encoder_set_latency(enc, frame, frame);
  }
  opus_int32 lookahead = 0;
  opus_encoder_ctl(e, OPUS_GET_LOOKAHEAD(&lookahead));
  GST_DEBUG_OBJECT(self,
                   "settings: %d bit/s, complexity %d, fec %d, loss %d %%, dtx %d, %d samples per frame, max "
                   "bandwidth %d, signal %d, lookahead %d samples",
                   s.bitrate, s.complexity, s.inband_fec, s.packet_loss_percentage, s.dtx, frame_samples,
                   s.bandwidth, s.audio_type, lookahead);
  st.applied = s.generation;
}

static gboolean enc_start(GstAudioEncoder *enc) {
  auto *self = GST_VB_OPUS_ENC(enc);
  delete self->state;
  self->state = new State();
  return TRUE;
}

static gboolean enc_stop(GstAudioEncoder *enc) {
  auto *self = GST_VB_OPUS_ENC(enc);
  if (self->state && self->state->encoder) opus_encoder_destroy(self->state->encoder);
  delete self->state;
  self->state = nullptr;
  return TRUE;
}

static gboolean enc_set_format(GstAudioEncoder *enc, GstAudioInfo *info) {
  auto *self = GST_VB_OPUS_ENC(enc);
  State &st = *self->state;
  const int rate = GST_AUDIO_INFO_RATE(info);
  if (st.encoder && rate == st.rate) return TRUE;  // same stream, keep the codec's state
  // set_format is only called between frames (the base class drains first), so a new encoder
  // loses nothing.
  if (st.encoder) opus_encoder_destroy(st.encoder);
  int err = OPUS_OK;
  st.encoder = opus_encoder_create(rate, 1, OPUS_APPLICATION_VOIP, &err);
  if (!st.encoder || err != OPUS_OK) {
    st.encoder = nullptr;
    GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("Could not create the Opus encoder"),
                      ("opus_encoder_create(%d, 1): %s", rate, opus_strerror(err)));
    return FALSE;
  }
  st.rate = rate;
  st.frame_samples = 0;
  st.applied = 0;
  apply_settings(self);

  GstCaps *caps = gst_caps_new_simple("audio/x-opus", "channel-mapping-family", G_TYPE_INT, 0, "channels",
                                      G_TYPE_INT, 1, "rate", G_TYPE_INT, rate, nullptr);
  const gboolean ok = gst_audio_encoder_set_output_format(enc, caps);
  gst_caps_unref(caps);
  return ok;
}

static GstFlowReturn enc_handle_frame(GstAudioEncoder *enc, GstBuffer *buffer) {
  auto *self = GST_VB_OPUS_ENC(enc);
  State &st = *self->state;
  if (!buffer) return GST_FLOW_OK;  // drain: we never hold samples back
  if (!st.encoder) return GST_FLOW_NOT_NEGOTIATED;

  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) {
    GST_ELEMENT_ERROR(self, STREAM, ENCODE, ("Could not map the input"), (nullptr));
    return GST_FLOW_ERROR;
  }
  const int frame_samples = st.frame_samples;  // the size the base class cut this frame to
  const int input_samples = (int)(map.size / sizeof(opus_int16));
  const opus_int16 *pcm = reinterpret_cast<const opus_int16 *>(map.data);
  if (input_samples < frame_samples) {
    // The end of the stream: pad with silence to a whole frame. The packet still only stands for
    // the real samples (its duration), so the stream's length is kept.
    st.padded.assign((size_t)frame_samples, 0);
    std::copy(pcm, pcm + input_samples, st.padded.begin());
    pcm = st.padded.data();
  }
  const opus_int32 bytes =
      opus_encode(st.encoder, pcm, frame_samples, st.packet.data(), (opus_int32)st.packet.size());
  gst_buffer_unmap(buffer, &map);
  if (bytes < 0) {
    GST_ELEMENT_ERROR(self, STREAM, ENCODE, ("Opus encoding failed"), ("opus_encode: %s", opus_strerror(bytes)));
    return GST_FLOW_ERROR;
  }
  // After this frame, so that the base class's next frame has the new size.
  apply_settings(self);
  // DTX can make 1–2 byte packets (the TOC only); they are real packets, sent as they are.
  GstBuffer *out = gst_audio_encoder_allocate_output_buffer(enc, (gsize)bytes);
  gst_buffer_fill(out, 0, st.packet.data(), (gsize)bytes);
  return gst_audio_encoder_finish_frame(enc, out, input_samples);
}

// ---- GObject ----

static void enc_finalize(GObject *object) {
  auto *self = GST_VB_OPUS_ENC(object);
  if (self->state && self->state->encoder) opus_encoder_destroy(self->state->encoder);
  delete self->state;
  delete self->settings;
  delete self->lock;
  G_OBJECT_CLASS(gst_vb_opus_enc_parent_class)->finalize(object);
}

static void gst_vb_opus_enc_class_init(GstVbOpusEncClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstAudioEncoderClass *enc_class = GST_AUDIO_ENCODER_CLASS(klass);

  gobject_class->set_property = enc_set_property;
  gobject_class->get_property = enc_get_property;
  gobject_class->finalize = enc_finalize;

  const Settings d;
  const auto flags = (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
  g_object_class_install_property(
      gobject_class, PROP_BITRATE,
      g_param_spec_int("bitrate", "Bitrate", "Target bitrate in bit/s (applied from the next frame)", 4000, 650000,
                       d.bitrate, flags));
  g_object_class_install_property(
      gobject_class, PROP_COMPLEXITY,
      g_param_spec_int("complexity", "Complexity", "Encoder complexity: 0 is the cheapest, 10 the best quality", 0,
                       10, d.complexity, flags));
  g_object_class_install_property(
      gobject_class, PROP_INBAND_FEC,
      g_param_spec_boolean("inband-fec", "In-band FEC",
                           "Carry a low-bitrate copy of each frame in the next packet, so a decoder can recover a "
                           "lost packet (needs packet-loss-percentage > 0)",
                           d.inband_fec, flags));
  g_object_class_install_property(
      gobject_class, PROP_PACKET_LOSS_PERCENTAGE,
      g_param_spec_int("packet-loss-percentage", "Packet loss percentage",
                       "Expected packet loss in %: how much the encoder invests in FEC and robustness", 0, 100,
                       d.packet_loss_percentage, flags));
  g_object_class_install_property(
      gobject_class, PROP_DTX,
      g_param_spec_boolean("dtx", "DTX",
                           "Discontinuous transmission: tiny packets during silence (rtpopuspay dtx=true drops "
                           "them)",
                           d.dtx, flags));
  g_object_class_install_property(
      gobject_class, PROP_FRAME_SIZE,
      g_param_spec_enum("frame-size", "Frame size", "Duration of the audio in each packet, in ms",
                        frame_size_get_type(), d.frame_size, flags));
  g_object_class_install_property(
      gobject_class, PROP_BANDWIDTH,
      g_param_spec_enum("bandwidth", "Maximum bandwidth",
                        "The widest audio bandwidth to encode (OPUS_SET_MAX_BANDWIDTH): e.g. wideband for a "
                        "peer that plays 16 kHz",
                        bandwidth_get_type(), d.bandwidth, flags));
  g_object_class_install_property(
      gobject_class, PROP_AUDIO_TYPE,
      g_param_spec_enum("audio-type", "Audio type", "What the signal is (OPUS_SET_SIGNAL)", audio_type_get_type(),
                        d.audio_type, flags));

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "Opus mono encoder (single-stream)", "Codec/Encoder/Audio",
      "Encodes mono S16LE audio (8, 12, 16, 24 or 48 kHz) to Opus in VOIP mode with libopus's single-stream API, "
      "one packet per frame, for rtpopuspay. Same properties and output caps as opusenc for one channel, "
      "without the multistream API's per-frame cost",
      "voicebridge");

  enc_class->start = GST_DEBUG_FUNCPTR(enc_start);
  enc_class->stop = GST_DEBUG_FUNCPTR(enc_stop);
  enc_class->set_format = GST_DEBUG_FUNCPTR(enc_set_format);
  enc_class->handle_frame = GST_DEBUG_FUNCPTR(enc_handle_frame);

  gst_type_mark_as_plugin_api(bandwidth_get_type(), (GstPluginAPIFlags)0);
  gst_type_mark_as_plugin_api(frame_size_get_type(), (GstPluginAPIFlags)0);
  gst_type_mark_as_plugin_api(audio_type_get_type(), (GstPluginAPIFlags)0);
}

static void gst_vb_opus_enc_init(GstVbOpusEnc *self) {
  self->lock = new std::mutex();
  self->settings = new Settings();
  self->state = nullptr;
}
