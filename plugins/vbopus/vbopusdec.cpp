// vbopusdec: see vbopusdec.h.
//
// Loss policy (use-inband-fec=true, plc=true, the defaults):
//   - A packet is decoded the moment it arrives: nothing is held while nothing is lost, and the
//     element adds no latency.
//   - A loss reaches us as a GAP event (rtpjitterbuffer do-lost=true → the depayloader's GAP), which
//     GstAudioDecoder (plc-aware) hands us as an empty buffer with the gap's PTS and duration. We
//     output nothing yet and remember it: the next packet carries the lost frame's FEC copy.
//   - When the next packet arrives, we first output the gap (PTS and duration of the gap): plain
//     PLC for any part longer than one frame, then the last frame's worth recovered from the
//     packet's FEC (opus_decode with decode_fec=1; libopus falls back to PLC if the packet has no
//     FEC data), and then the packet itself. The gap's audio is thus late by the time until that
//     packet arrives; a jitter buffer that reports a loss at its deadline usually holds the next
//     packet already, so that costs nothing in practice.
//   - A gap only waits for the next packet, never for anything else: a second gap, EOS, a drain or
//     a DISCONT packet first conceals the pending one with PLC. A gap's FEC is only ever taken
//     from the packet that directly follows it.
// With use-inband-fec=false a gap is concealed with PLC at once. With plc=false GstAudioDecoder
// forwards GAP events downstream and neither PLC nor FEC happens (as opusdec).
//
// Output timestamps come from the input: every packet's audio has the packet's PTS and as many
// samples as it decodes to, every gap's audio the gap's PTS and duration.
#include "vbopusdec.h"

#include <gst/audio/audio.h>
#include <opus/opus.h>

#include <algorithm>
#include <vector>

GST_DEBUG_CATEGORY_STATIC(vbopusdec_debug);
#define GST_CAT_DEFAULT vbopusdec_debug

namespace {

constexpr bool kDefaultPlc = true;
constexpr bool kDefaultUseInbandFec = true;
constexpr int kDefaultRate = 48000;

// What exists between start and stop (streaming thread only).
struct State {
  OpusDecoder *decoder = nullptr;
  int rate = 0;
  int channels = 0;
  int last_frame_samples = 0;       // of the last good packet, for packets that do not say
  bool gap_pending = false;         // a lost packet waiting for the next one's FEC
  GstClockTime gap_duration = 0;
  GstClockTime plc_leftover = 0;    // of gaps' durations, below libopus's 2.5 ms step
  guint64 corrupt_packets = 0;
  std::vector<opus_int16> pcm;
};

}  // namespace

struct _GstVbOpusDec {
  GstAudioDecoder parent;
  gint use_inband_fec;  // atomic: read on the streaming thread
  State *state;
};

enum { PROP_0, PROP_PLC, PROP_USE_INBAND_FEC };

// What rtpopusdepay 1.22 outputs (channels from sprop-stereo, rate from sprop-maxcapturerate) and
// opusenc outputs for one or two channels. Only family 0 (one stream) is single-stream Opus.
static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-opus, channel-mapping-family=(int)0, channels=(int)[ 1, 2 ]"));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-raw, format=(string)S16LE, layout=(string)interleaved, "
                    "rate=(int){ 48000, 24000, 16000, 12000, 8000 }, channels=(int)[ 1, 2 ]"));

G_DEFINE_TYPE(GstVbOpusDec, gst_vb_opus_dec, GST_TYPE_AUDIO_DECODER);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE(vbopusdec, "vbopusdec", GST_RANK_NONE, GST_TYPE_VB_OPUS_DEC,
                                      GST_DEBUG_CATEGORY_INIT(vbopusdec_debug, "vbopusdec", 0,
                                                              "single-stream Opus decoder"));

// ---- properties ----

static void dec_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  auto *self = GST_VB_OPUS_DEC(object);
  switch (prop_id) {
    case PROP_PLC: gst_audio_decoder_set_plc(GST_AUDIO_DECODER(self), g_value_get_boolean(value)); break;
    case PROP_USE_INBAND_FEC: g_atomic_int_set(&self->use_inband_fec, g_value_get_boolean(value)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

static void dec_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  auto *self = GST_VB_OPUS_DEC(object);
  switch (prop_id) {
    case PROP_PLC: g_value_set_boolean(value, gst_audio_decoder_get_plc(GST_AUDIO_DECODER(self))); break;
    case PROP_USE_INBAND_FEC: g_value_set_boolean(value, g_atomic_int_get(&self->use_inband_fec)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
}

// ---- helpers ----

static int samples_of(const State &st, GstClockTime t) {
  return (int)gst_util_uint64_scale_round(t, (guint64)st.rate, GST_SECOND);
}

// A fresh output buffer of `samples` per channel with the decoded audio of `fill`, which writes at
// most that many samples and returns how many it wrote (the rest stays silent).
template <typename Fill>
static GstBuffer *make_output(GstVbOpusDec *self, int samples, Fill fill) {
  State &st = *self->state;
  const gsize bytes = (gsize)samples * (gsize)st.channels * sizeof(opus_int16);
  GstBuffer *out = gst_audio_decoder_allocate_output_buffer(GST_AUDIO_DECODER(self), bytes);
  GstMapInfo map;
  gst_buffer_map(out, &map, GST_MAP_WRITE);
  auto *pcm = reinterpret_cast<opus_int16 *>(map.data);
  const int written = fill(pcm);
  if (written < samples)
    std::fill(pcm + (size_t)std::max(written, 0) * st.channels, pcm + (size_t)samples * st.channels, 0);
  gst_buffer_unmap(out, &map);
  return out;
}

// PLC for `samples`, in steps libopus accepts (≤ 120 ms).
static int conceal(State &st, opus_int16 *pcm, int samples) {
  const int max_step = st.rate * 120 / 1000;
  int done = 0;
  while (done < samples) {
    const int n = opus_decode(st.decoder, nullptr, 0, pcm + (size_t)done * st.channels,
                              std::min(max_step, samples - done), 0);
    if (n <= 0) break;
    done += n;
  }
  return done;
}

// The gap's length in samples, in libopus's 2.5 ms steps; what rounding leaves over is carried to
// the next gap, so that a run of odd-sized gaps does not drift.
static int gap_samples(State &st, GstClockTime duration) {
  const GstClockTime step = 2500 * GST_USECOND;
  const GstClockTime total = duration + st.plc_leftover;
  const GstClockTime aligned = (total + step / 2) / step * step;
  st.plc_leftover = total > aligned ? total - aligned : 0;
  return samples_of(st, aligned);
}

static GstClockTime duration_or_last(const State &st, GstBuffer *buffer) {
  if (GST_BUFFER_DURATION_IS_VALID(buffer) && GST_BUFFER_DURATION(buffer) > 0) return GST_BUFFER_DURATION(buffer);
  return gst_util_uint64_scale_int(GST_SECOND, st.last_frame_samples, st.rate);
}

// Outputs the pending gap with PLC alone (no packet to take FEC from).
static GstFlowReturn conceal_pending_gap(GstVbOpusDec *self) {
  State &st = *self->state;
  if (!st.gap_pending) return GST_FLOW_OK;
  st.gap_pending = false;
  const int samples = gap_samples(st, st.gap_duration);
  if (samples == 0) return gst_audio_decoder_finish_frame(GST_AUDIO_DECODER(self), nullptr, 1);
  GST_LOG_OBJECT(self, "concealing a gap of %d samples with PLC", samples);
  GstBuffer *out = make_output(self, samples, [&](opus_int16 *pcm) { return conceal(st, pcm, samples); });
  return gst_audio_decoder_finish_frame(GST_AUDIO_DECODER(self), out, 1);
}

// Outputs the pending gap from `packet`: PLC up to its last frame, that frame from the FEC.
static GstFlowReturn recover_pending_gap(GstVbOpusDec *self, const unsigned char *packet, int size) {
  State &st = *self->state;
  st.gap_pending = false;
  const int samples = gap_samples(st, st.gap_duration);
  if (samples == 0) return gst_audio_decoder_finish_frame(GST_AUDIO_DECODER(self), nullptr, 1);
  const int packet_samples = opus_packet_get_nb_samples(packet, size, st.rate);
  GstBuffer *out = make_output(self, samples, [&](opus_int16 *pcm) {
    if (packet_samples <= 0) return conceal(st, pcm, samples);  // not a packet libopus understands
    const int fec = std::min(samples, packet_samples);
    int done = conceal(st, pcm, samples - fec);
    if (done < samples - fec) return done;
    // The FEC copy is of the frame just before the packet, as long as the packet's frame.
    const int n = opus_decode(st.decoder, packet, size, pcm + (size_t)done * st.channels, fec, 1);
    GST_LOG_OBJECT(self, "gap of %d samples: %d by PLC, %d from FEC (%s)", samples, samples - fec, fec,
                   n < 0 ? opus_strerror(n) : "ok");
    return n < 0 ? done : done + n;
  });
  return gst_audio_decoder_finish_frame(GST_AUDIO_DECODER(self), out, 1);
}

// ---- GstAudioDecoder ----

static gboolean dec_start(GstAudioDecoder *dec) {
  auto *self = GST_VB_OPUS_DEC(dec);
  delete self->state;
  self->state = new State();
  // We conceal gaps (empty buffers) ourselves.
  gst_audio_decoder_set_plc_aware(dec, TRUE);
  return TRUE;
}

static gboolean dec_stop(GstAudioDecoder *dec) {
  auto *self = GST_VB_OPUS_DEC(dec);
  if (self->state && self->state->decoder) opus_decoder_destroy(self->state->decoder);
  delete self->state;
  self->state = nullptr;
  return TRUE;
}

// The output format: downstream's choice among libopus's rates, the nearest to 48 kHz if it takes
// several (what libopus decodes without resampling inside); mono unless downstream wants stereo.
static bool choose_output(GstVbOpusDec *self, int *rate, int *channels) {
  GstPad *src = GST_AUDIO_DECODER_SRC_PAD(self);
  GstCaps *allowed = gst_pad_get_allowed_caps(src);
  if (!allowed) allowed = gst_pad_get_pad_template_caps(src);  // not linked yet
  if (gst_caps_is_empty(allowed)) {
    gst_caps_unref(allowed);
    return false;
  }
  allowed = gst_caps_make_writable(gst_caps_truncate(allowed));
  GstStructure *s = gst_caps_get_structure(allowed, 0);
  gst_structure_fixate_field_nearest_int(s, "rate", kDefaultRate);
  gst_structure_fixate_field_nearest_int(s, "channels", 1);
  const bool ok = gst_structure_get_int(s, "rate", rate) && gst_structure_get_int(s, "channels", channels);
  gst_caps_unref(allowed);
  return ok;
}

// Any family-0 Opus stream, whatever downstream wants: libopus decodes every stream at every rate
// and channel count. (GstAudioDecoder's default would copy downstream's rate and channels into the
// Opus caps, and refuse e.g. rtpopusdepay's rate=16000 — the sender's capture rate — when
// downstream wants 24 kHz.)
static GstCaps *dec_getcaps(GstAudioDecoder *dec, GstCaps *filter) {
  GstCaps *caps = gst_pad_get_pad_template_caps(GST_AUDIO_DECODER_SINK_PAD(dec));
  if (filter) {
    GstCaps *both = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref(caps);
    caps = both;
  }
  return caps;
}

// (Re)creates the decoder for the output format downstream wants now. A gap still pending is
// concealed first, in the format it was due in.
static gboolean update_output(GstVbOpusDec *self) {
  State &st = *self->state;
  int rate = 0, channels = 0;
  if (!choose_output(self, &rate, &channels)) {
    GST_WARNING_OBJECT(self, "downstream takes none of our formats");
    return FALSE;
  }
  if (st.decoder && rate == st.rate && channels == st.channels) return TRUE;
  if (st.decoder) {
    conceal_pending_gap(self);
    opus_decoder_destroy(st.decoder);
  }
  int err = OPUS_OK;
  st.decoder = opus_decoder_create(rate, channels, &err);
  if (!st.decoder || err != OPUS_OK) {
    st.decoder = nullptr;
    GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("Could not create the Opus decoder"),
                      ("opus_decoder_create(%d, %d): %s", rate, channels, opus_strerror(err)));
    return FALSE;
  }
  GST_DEBUG_OBJECT(self, "decoding to %d Hz, %d channel(s)", rate, channels);
  st.rate = rate;
  st.channels = channels;
  st.last_frame_samples = rate / 50;  // 20 ms until a packet says otherwise
  st.plc_leftover = 0;
  st.pcm.assign((size_t)rate * 120 / 1000 * (size_t)channels, 0);
  GstAudioInfo info;
  gst_audio_info_set_format(&info, GST_AUDIO_FORMAT_S16LE, rate, channels, nullptr);
  return gst_audio_decoder_set_output_format(GST_AUDIO_DECODER(self), &info);
}

static gboolean dec_set_format(GstAudioDecoder *dec, GstCaps *caps) {
  // The input caps say nothing we need (every family-0 stream decodes the same way; their rate is
  // the sender's capture rate, not ours to follow): the output is downstream's choice.
  GST_DEBUG_OBJECT(dec, "input %" GST_PTR_FORMAT, caps);
  return update_output(GST_VB_OPUS_DEC(dec));
}

static GstFlowReturn dec_handle_frame(GstAudioDecoder *dec, GstBuffer *buffer) {
  auto *self = GST_VB_OPUS_DEC(dec);
  State &st = *self->state;
  if (!buffer) return conceal_pending_gap(self);  // drain
  // Downstream may want another rate now (a capsfilter changed, a relink): switch before decoding,
  // so that this buffer already comes out in the new format.
  GstPad *src = GST_AUDIO_DECODER_SRC_PAD(dec);
  if (gst_pad_check_reconfigure(src)) {
    gst_pad_mark_reconfigure(src);  // GstAudioDecoder still renegotiates (caps, allocation)
    if (!update_output(self)) return GST_FLOW_NOT_NEGOTIATED;
  }
  if (!st.decoder) {
    // A GAP before any caps: nothing to conceal with, and nothing was heard yet.
    return gst_audio_decoder_finish_frame(dec, nullptr, 1);
  }

  const gsize size = gst_buffer_get_size(buffer);
  if (size == 0) {
    // A lost packet (GAP), or an empty (DTX) packet: concealment of its duration.
    const GstClockTime duration = duration_or_last(st, buffer);
    GstFlowReturn ret = conceal_pending_gap(self);  // an earlier gap has no packet to take FEC from
    st.gap_pending = true;
    st.gap_duration = duration;
    if (!g_atomic_int_get(&self->use_inband_fec)) ret = conceal_pending_gap(self);
    return ret;
  }

  GstFlowReturn ret = GST_FLOW_OK;
  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) {
    GST_ELEMENT_ERROR(self, STREAM, DECODE, ("Could not map the input"), (nullptr));
    return GST_FLOW_ERROR;
  }
  const int bytes = (int)std::min<gsize>(map.size, G_MAXINT);
  if (st.gap_pending) ret = recover_pending_gap(self, map.data, bytes);

  const int max = st.rate * 120 / 1000;
  const int n = opus_decode(st.decoder, map.data, bytes, st.pcm.data(), max, 0);
  int samples = n;
  if (n < 0) {
    // A corrupt packet: silence for as long as it claims (or lasted, or the last packet lasted),
    // so that the timeline stays whole. GstAudioDecoder counts these against max-errors (default:
    // never fatal) and posts a warning.
    const int claimed = opus_packet_get_nb_samples(map.data, bytes, st.rate);
    samples = claimed > 0 && claimed <= max ? claimed : std::min(max, samples_of(st, duration_or_last(st, buffer)));
    std::fill(st.pcm.begin(), st.pcm.begin() + (size_t)samples * st.channels, 0);
    st.corrupt_packets++;
    GST_AUDIO_DECODER_ERROR(self, 1, STREAM, DECODE, ("Corrupt Opus packet"),
                            ("opus_decode: %s (%d bytes); %d samples of silence instead", opus_strerror(n), bytes,
                             samples),
                            ret);
  } else {
    st.last_frame_samples = n;
  }
  gst_buffer_unmap(buffer, &map);
  if (ret != GST_FLOW_OK) return ret;
  // opusenc (not over RTP, which has no such thing) marks its pre-skip and end padding with a
  // clipping meta in 48 kHz samples; honouring it keeps opusenc's stream exactly as long as its input.
  int skip = 0, keep = samples;
  if (GstAudioClippingMeta *clip = gst_buffer_get_audio_clipping_meta(buffer)) {
    if (clip->format == GST_FORMAT_DEFAULT && samples > 0) {
      skip = std::min(samples, (int)gst_util_uint64_scale_int(clip->start, st.rate, 48000));
      const int end = (int)gst_util_uint64_scale_int(clip->end, st.rate, 48000);
      keep = std::max(0, samples - skip - end);
    }
  }
  if (keep <= 0) return gst_audio_decoder_finish_frame(dec, nullptr, 1);
  GstBuffer *out = make_output(self, keep, [&](opus_int16 *pcm) {
    const auto first = st.pcm.begin() + (size_t)skip * st.channels;
    std::copy(first, first + (size_t)keep * st.channels, pcm);
    return keep;
  });
  return gst_audio_decoder_finish_frame(dec, out, 1);
}

static void dec_flush(GstAudioDecoder *dec, gboolean hard) {
  auto *self = GST_VB_OPUS_DEC(dec);
  State *st = self->state;
  if (!st) return;
  // A drain (hard=FALSE) has already concealed the pending gap through handle_frame(NULL); a
  // flush (seek, flushing events) drops everything queued, and the codec's history with it.
  st->gap_pending = false;
  st->plc_leftover = 0;
  if (hard && st->decoder) opus_decoder_ctl(st->decoder, OPUS_RESET_STATE);
}

static gboolean dec_sink_event(GstAudioDecoder *dec, GstEvent *event) {
  // At EOS the pending gap goes out before the base class drains (which it may skip when already
  // drained, and then the gap would be dropped).
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    GST_AUDIO_DECODER_STREAM_LOCK(dec);
    auto *self = GST_VB_OPUS_DEC(dec);
    if (self->state) conceal_pending_gap(self);
    GST_AUDIO_DECODER_STREAM_UNLOCK(dec);
  }
  return GST_AUDIO_DECODER_CLASS(gst_vb_opus_dec_parent_class)->sink_event(dec, event);
}

// ---- GObject ----

static void dec_finalize(GObject *object) {
  auto *self = GST_VB_OPUS_DEC(object);
  if (self->state && self->state->decoder) opus_decoder_destroy(self->state->decoder);
  delete self->state;
  G_OBJECT_CLASS(gst_vb_opus_dec_parent_class)->finalize(object);
}

static void gst_vb_opus_dec_class_init(GstVbOpusDecClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstAudioDecoderClass *dec_class = GST_AUDIO_DECODER_CLASS(klass);

  gobject_class->set_property = dec_set_property;
  gobject_class->get_property = dec_get_property;
  gobject_class->finalize = dec_finalize;

  const auto flags = (GParamFlags)(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
  // Shadows GstAudioDecoder's own "plc" (default FALSE there) with the same meaning and our
  // default, so that gst-inspect-1.0 shows the default that applies.
  g_object_class_install_property(
      gobject_class, PROP_PLC,
      g_param_spec_boolean("plc", "Packet loss concealment",
                           "Fill lost packets (GAP events, e.g. from rtpjitterbuffer do-lost=true through the "
                           "depayloader) with concealment audio, so the timeline has no hole. Needed for FEC",
                           kDefaultPlc, flags));
  g_object_class_install_property(
      gobject_class, PROP_USE_INBAND_FEC,
      g_param_spec_boolean("use-inband-fec", "Use in-band FEC",
                           "Recover a lost packet from the FEC data of the packet after it. Unlike opusdec this "
                           "adds no delay: packets are decoded at once, and only a lost packet's audio waits for "
                           "the next packet",
                           kDefaultUseInbandFec, flags));

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "Opus decoder (single-stream, no added delay)", "Codec/Decoder/Audio",
      "Decodes one-stream Opus (channel-mapping family 0, as from rtpopusdepay) to S16LE at the rate downstream "
      "wants (8–48 kHz, default 48 kHz), mono or stereo, with libopus's single-stream API. Each packet is decoded "
      "as soon as it arrives; in-band FEC is used only to recover a lost packet",
      "voicebridge");

  dec_class->start = GST_DEBUG_FUNCPTR(dec_start);
  dec_class->stop = GST_DEBUG_FUNCPTR(dec_stop);
  dec_class->getcaps = GST_DEBUG_FUNCPTR(dec_getcaps);
  dec_class->set_format = GST_DEBUG_FUNCPTR(dec_set_format);
  dec_class->handle_frame = GST_DEBUG_FUNCPTR(dec_handle_frame);
  dec_class->flush = GST_DEBUG_FUNCPTR(dec_flush);
  dec_class->sink_event = GST_DEBUG_FUNCPTR(dec_sink_event);
}

// GstAudioDecoder silently drops empty buffers (they add nothing to its adapter), which would
// leave a hole: an empty packet (DTX, a sender's "nothing here") becomes the GAP it stands for, and
// takes the lost-packet path.
static GstPadProbeReturn empty_packet_to_gap(GstPad *pad, GstPadProbeInfo *info, gpointer) {
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
  if (gst_buffer_get_size(buffer) != 0) return GST_PAD_PROBE_OK;
  if (GST_BUFFER_PTS_IS_VALID(buffer))
    gst_pad_send_event(pad, gst_event_new_gap(GST_BUFFER_PTS(buffer), GST_BUFFER_DURATION(buffer)));
  return GST_PAD_PROBE_DROP;
}

static void gst_vb_opus_dec_init(GstVbOpusDec *self) {
  self->state = nullptr;
  self->use_inband_fec = kDefaultUseInbandFec;
  GstAudioDecoder *dec = GST_AUDIO_DECODER(self);
  gst_audio_decoder_set_plc(dec, kDefaultPlc);
  gst_audio_decoder_set_plc_aware(dec, TRUE);
  gst_pad_add_probe(GST_AUDIO_DECODER_SINK_PAD(dec), GST_PAD_PROBE_TYPE_BUFFER, empty_packet_to_gap, nullptr,
                    nullptr);
  // Timestamps follow each input packet exactly (default tolerance 0): a gap's concealment and
  // the packet after it keep their own PTS.
}
