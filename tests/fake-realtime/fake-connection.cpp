// Client events, the session and the input audio buffer of one fake Realtime connection.
#include "fake-connection.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace fake_realtime::detail {
namespace {

constexpr size_t kMinCommitBytes = 100 * kBytesPerMs;  // a commit needs 100 ms (docs §8 G6)
constexpr int kLargeFrameSeconds = 45;                 // 45 s of PCM is ~2.9 MB of base64

ApiError missing(const std::string &param) {
  return {"missing_required_parameter", "Missing required parameter: '" + param + "'.", param};
}

ApiError invalid(const std::string &param, const std::string &message) {
  return {"invalid_value", message, param};
}

}  // namespace

Connection::Connection(SharedState &state, int index, SoupWebsocketConnection *ws, ConnectInfo info,
                       FinishedFn finished)
    : state_(state),
      index_(index),
      ws_(SOUP_WEBSOCKET_CONNECTION(g_object_ref(ws))),
      info_(std::move(info)),
      finished_(std::move(finished)),
      cfg_(state.config()),
      vad_(cfg_.vad_threshold_dbfs) {
  ctx_.shape = cfg_.shape == "beta" ? Shape::Beta : Shape::Ga;
  ctx_.model = info_.model;
  // Without a lifetime the session never expires, but clients plan rotations from expires_at, so
  // it must still lie in the future.
  ctx_.expires_at =
      static_cast<int64_t>(std::time(nullptr)) + (cfg_.session_lifetime_s > 0 ? cfg_.session_lifetime_s : 24 * 3600);
  ctx_.default_silence_ms = cfg_.vad_silence_ms;
  session_ = default_session(ctx_);
  view_ = view_session(session_, ctx_);
  conversation_id_ = state_.make_id("conv");
  message_handler_ = g_signal_connect(ws_, "message", G_CALLBACK(on_message_cb), this);
  closed_handler_ = g_signal_connect(ws_, "closed", G_CALLBACK(on_closed_cb), this);
}

Connection::~Connection() {
  stop_response_timer();
  if (lifetime_timer_) {
    g_source_destroy(lifetime_timer_);
    g_source_unref(lifetime_timer_);
  }
  finished_ = nullptr;  // the owner is tearing us down; it needs no report
  if (phase_ != Phase::Gone)
    drop();
  if (message_handler_)
    g_signal_handler_disconnect(ws_, message_handler_);
  if (closed_handler_)
    g_signal_handler_disconnect(ws_, closed_handler_);
  g_object_unref(ws_);
  json_object_unref(session_);
}

void Connection::start() {
  const bool beta_header = !info_.beta_header.empty();
  if (ctx_.shape == Shape::Ga && beta_header) {
    // OpenAI retired the beta shape: error, then close 4000 (docs §1.1, G1).
    send_error({"beta_api_shape_disabled",
                "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.", ""},
               "");
    close(4000, "beta_api_shape_disabled");
    return;
  }
  if (ctx_.shape == Shape::Beta && !beta_header) {
    send_error(
        {"missing_beta_header", "You must provide the 'OpenAI-Beta: realtime=v1' header to use this beta server.", ""},
        "");
    close(4000, "missing_beta_header");
    return;
  }
  send(event("session.created").obj("session", Obj(deep_copy(session_))));
  if (cfg_.session_lifetime_s > 0) {
    lifetime_timer_ = g_timeout_source_new(static_cast<guint>(cfg_.session_lifetime_s) * 1000u);
    g_source_set_callback(lifetime_timer_, on_lifetime_cb, this, nullptr);
    g_source_attach(lifetime_timer_, g_main_context_get_thread_default());
  }
  if (cfg_.send_large_frame_on_connect)
    send_large_frame();
}

void Connection::close(gushort code, const std::string &reason) {
  if (phase_ != Phase::Open)
    return;
  phase_ = Phase::Closing;
  stop_response_timer();
  response_.reset();
  // The client may have closed first; then libsoup has sent its close frame already and "closed"
  // follows on its own.
  if (soup_websocket_connection_get_state(ws_) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close(ws_, code, reason.c_str());
}

void Connection::drop() {
  if (phase_ == Phase::Gone)
    return;
  stop_response_timer();
  response_.reset();
  // Shut the socket down under libsoup so no close frame goes out: the client sees an unclean
  // close (a network failure), not a normal one.
  GIOStream *io = soup_websocket_connection_get_io_stream(ws_);
  if (io && G_IS_SOCKET_CONNECTION(io))
    g_socket_shutdown(g_socket_connection_get_socket(G_SOCKET_CONNECTION(io)), TRUE, TRUE, nullptr);
  if (io)
    g_io_stream_close(io, nullptr, nullptr);
  finish();
}

void Connection::expire() {
  if (phase_ != Phase::Open)
    return;
  const int s = cfg_.session_lifetime_s;
  std::string limit = s % 60 == 0 ? std::to_string(s / 60) + " minutes" : std::to_string(s) + " seconds";
  send_error({"session_expired", "Your session hit the maximum duration of " + limit + ".", ""}, "");
  close(SOUP_WEBSOCKET_CLOSE_NORMAL, "session_expired");
}

void Connection::start_unprompted_response(const std::string &instructions) {
  if (phase_ == Phase::Open && !response_)
    start_response(nullptr, instructions);
}

void Connection::emit_speech_started() {
  if (phase_ != Phase::Open)
    return;
  if (view_.vad)
    vad_.force_speech();  // later quiet appends end the turn as usual
  on_speech_started(input_timeline_ms() + view_.prefix_padding_ms);
}

void Connection::on_message_cb(SoupWebsocketConnection *, gint type, GBytes *message, gpointer self) {
  static_cast<Connection *>(self)->on_message(type, message);
}

void Connection::on_closed_cb(SoupWebsocketConnection *, gpointer self) {
  static_cast<Connection *>(self)->on_closed();
}

gboolean Connection::on_lifetime_cb(gpointer self) {
  auto *c = static_cast<Connection *>(self);
  g_source_unref(c->lifetime_timer_);
  c->lifetime_timer_ = nullptr;
  c->expire();
  return G_SOURCE_REMOVE;
}

void Connection::on_closed() {
  if (phase_ == Phase::Gone)
    return;
  finish();
}

// The connection is over: stop everything and tell the owner, once.
void Connection::finish() {
  phase_ = Phase::Gone;
  stop_response_timer();
  response_.reset();
  if (lifetime_timer_) {
    g_source_destroy(lifetime_timer_);
    g_source_unref(lifetime_timer_);
    lifetime_timer_ = nullptr;
  }
  g_signal_handler_disconnect(ws_, message_handler_);
  g_signal_handler_disconnect(ws_, closed_handler_);
  message_handler_ = closed_handler_ = 0;
  state_.record_closed(index_);
  g_debug("connection %d closed", index_);
  if (finished_)
    finished_(this);
}

void Connection::on_message(gint type, GBytes *message) {
  if (phase_ != Phase::Open)
    return;
  gsize length = 0;
  const char *data = static_cast<const char *>(g_bytes_get_data(message, &length));
  if (type != SOUP_WEBSOCKET_DATA_TEXT) {
    state_.record_event(index_, "", "");
    send_error({"invalid_event", "Binary frames are not supported; send JSON text events.", ""}, "");
    return;
  }
  std::string text(data ? data : "", length);
  std::string parse_error;
  NodePtr root(parse(text.data(), text.size(), &parse_error));
  if (!root || !JSON_NODE_HOLDS_OBJECT(root.get())) {
    state_.record_event(index_, text, "");
    send_error({"invalid_event",
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly. " +
                    parse_error + ")",
                ""},
               "");
    return;
  }
  JsonObject *ev = json_node_get_object(root.get());
  const std::string type_name = get_string(ev, "type");
  const std::string eid = get_string(ev, "event_id");
  state_.record_event(index_, text, type_name);
  g_debug("connection %d <- %s", index_, type_name.c_str());
  if (!is_string(ev, "type")) {
    send_error({"invalid_event", "The 'type' field is missing.", "type"}, eid);
    return;
  }
  dispatch(ev, type_name, eid);
}

void Connection::dispatch(JsonObject *ev, const std::string &type, const std::string &eid) {
  if (type == "session.update")
    handle_session_update(ev, eid);
  else if (type == "input_audio_buffer.append")
    handle_append(ev, eid);
  else if (type == "input_audio_buffer.commit")
    handle_commit(eid);
  else if (type == "input_audio_buffer.clear")
    handle_clear();
  else if (type == "conversation.item.create")
    handle_item_create(ev, eid);
  else if (type == "conversation.item.truncate")
    handle_truncate(ev, eid);
  else if (type == "conversation.item.delete")
    handle_delete(ev, eid);
  else if (type == "conversation.item.retrieve")
    handle_retrieve(ev, eid);
  else if (type == "response.create")
    handle_response_create(ev, eid);
  else if (type == "response.cancel")
    handle_response_cancel(ev, eid);
  else
    // output_audio_buffer.clear lands here too: it exists for WebRTC/SIP only (docs §3).
    send_error({"invalid_event",
                "Invalid value: '" + type +
                    "'. Supported values are: 'session.update', 'input_audio_buffer.append', "
                    "'input_audio_buffer.commit', 'input_audio_buffer.clear', "
                    "'conversation.item.create', 'conversation.item.truncate', "
                    "'conversation.item.delete', 'conversation.item.retrieve', "
                    "'response.create', and 'response.cancel'.",
                "type"},
               eid);
}

void Connection::handle_session_update(JsonObject *ev, const std::string &eid) {
  ApiError err;
  JsonObject *merged =
      merge_session_update(session_, json_object_get_member(ev, "session"), ctx_, assistant_audio_present_, &err);
  if (!merged) {
    send_error(err, eid);
    return;
  }
  json_object_unref(session_);
  session_ = merged;
  const bool had_vad = view_.vad;
  view_ = view_session(session_, ctx_);
  if (had_vad && !view_.vad) {
    vad_.reset();
    speech_item_id_.clear();
  }
  send(event("session.updated").obj("session", Obj(deep_copy(session_))));
}

void Connection::handle_append(JsonObject *ev, const std::string &eid) {
  if (!is_string(ev, "audio")) {
    send_error(missing("audio"), eid);
    return;
  }
  std::vector<uint8_t> pcm = unbase64(get_string(ev, "audio"));
  state_.record_audio(index_, pcm);
  input_.insert(input_.end(), pcm.begin(), pcm.end());
  run_vad();  // appends are never acknowledged; only VAD events may follow
}

void Connection::run_vad() {
  while (phase_ == Phase::Open && input_.size() - vad_pos_ >= kVadFrameBytes) {
    const uint8_t *frame = input_.data() + vad_pos_;
    const int64_t frame_start_ms = static_cast<int64_t>((input_base_bytes_ + vad_pos_) / kBytesPerMs);
    vad_pos_ += kVadFrameBytes;
    if (!view_.vad)
      continue;
    switch (vad_.feed(frame, view_.silence_ms)) {
      case EnergyVad::Event::SpeechStarted:
        on_speech_started(frame_start_ms);
        break;
      case EnergyVad::Event::SpeechStopped:
        on_speech_stopped();
        break;
      case EnergyVad::Event::None:
        break;
    }
  }
}

void Connection::on_speech_started(int64_t frame_start_ms) {
  speech_item_id_ = state_.make_id("item");
  // audio_start_ms includes prefix_padding_ms, but never reaches before the buffer (docs §4).
  const int64_t buffer_start_ms = static_cast<int64_t>(input_base_bytes_ / kBytesPerMs);
  speech_start_ms_ = std::max(buffer_start_ms, frame_start_ms - view_.prefix_padding_ms);
  send(event("input_audio_buffer.speech_started")
           .num("audio_start_ms", speech_start_ms_)
           .str("item_id", speech_item_id_));
  state_.record_speech_started();
  if (view_.vad && view_.interrupt_response && response_ && response_->in_conversation)
    finish_response("cancelled", "turn_detected");
}

void Connection::on_speech_stopped() {
  const int64_t end_ms = static_cast<int64_t>((input_base_bytes_ + vad_pos_) / kBytesPerMs);
  const std::string item_id = speech_item_id_.empty() ? state_.make_id("item") : speech_item_id_;
  send(event("input_audio_buffer.speech_stopped").num("audio_end_ms", end_ms).str("item_id", item_id));
  // The user item holds the speech from audio_start_ms (padding included) to the end of the silence.
  const int64_t start_bytes = speech_start_ms_ * kBytesPerMs - static_cast<int64_t>(input_base_bytes_);
  const size_t from = static_cast<size_t>(std::clamp<int64_t>(start_bytes, 0, static_cast<int64_t>(vad_pos_)));
  std::vector<uint8_t> turn(input_.begin() + static_cast<std::ptrdiff_t>(from),
                            input_.begin() + static_cast<std::ptrdiff_t>(vad_pos_));
  consume_input(vad_pos_);
  speech_item_id_.clear();
  commit_user_audio(item_id, std::move(turn));
  if (view_.create_response && !response_)
    start_response(nullptr, "");
}

void Connection::consume_input(size_t bytes) {
  bytes = std::min(bytes, input_.size());
  input_.erase(input_.begin(), input_.begin() + static_cast<std::ptrdiff_t>(bytes));
  input_base_bytes_ += bytes;
  vad_pos_ = vad_pos_ > bytes ? vad_pos_ - bytes : 0;
}

void Connection::commit_user_audio(const std::string &item_id, std::vector<uint8_t> pcm) {
  last_turn_ = pcm;
  const std::string previous = last_item_id();
  send(event("input_audio_buffer.committed").str_or_null("previous_item_id", previous).str("item_id", item_id));
  Item item;
  item.id = item_id;
  item.type = "message";
  item.role = "user";
  item.user_audio = true;
  item.audio = std::move(pcm);
  items_.push_back(std::move(item));
  announce_item(items_.back(), previous, true);
  if (view_.transcription) {
    char transcript[64];
    std::snprintf(transcript, sizeof transcript, "(%lld ms of caller audio)",
                  static_cast<long long>(items_.back().audio_ms()));
    send(event("conversation.item.input_audio_transcription.completed")
             .str("item_id", item_id)
             .num("content_index", 0)
             .str("transcript", transcript));
  }
}

void Connection::handle_commit(const std::string &eid) {
  if (input_.size() < kMinCommitBytes) {
    char message[200];
    std::snprintf(message, sizeof message,
                  "Error committing input audio buffer: buffer too small. Expected at least 100ms "
                  "of audio, but buffer only has %.2fms of audio.",
                  static_cast<double>(input_.size()) / kBytesPerMs);
    send_error({"input_audio_buffer_commit_empty", message, ""}, eid);
    return;
  }
  const std::string item_id = speech_item_id_.empty() ? state_.make_id("item") : speech_item_id_;
  std::vector<uint8_t> pcm(std::move(input_));
  input_base_bytes_ += pcm.size();
  input_.clear();
  vad_pos_ = 0;
  vad_.reset();
  speech_item_id_.clear();
  commit_user_audio(item_id, std::move(pcm));  // a manual commit never starts a response
}

void Connection::handle_clear() {
  input_base_bytes_ += input_.size();
  input_.clear();
  vad_pos_ = 0;
  vad_.reset();
  speech_item_id_.clear();
  send(event("input_audio_buffer.cleared"));
}

void Connection::handle_item_create(JsonObject *ev, const std::string &eid) {
  JsonObject *in = get_object(ev, "item");
  if (!in) {
    send_error(missing("item"), eid);
    return;
  }
  // Where the item goes: after previous_item_id, at the start for "root", else at the end.
  size_t position = items_.size();
  const std::string previous_param = get_string(ev, "previous_item_id");
  if (previous_param == "root") {
    position = 0;
  } else if (!previous_param.empty()) {
    auto it = std::find_if(items_.begin(), items_.end(), [&](const Item &i) { return i.id == previous_param; });
    if (it == items_.end()) {
      send_error(invalid("previous_item_id", "Previous item with id '" + previous_param + "' not found."), eid);
      return;
    }
    position = static_cast<size_t>(it - items_.begin()) + 1;
  }
  Item item;
  item.id = get_string(in, "id");
  if (item.id.empty())
    item.id = state_.make_id("item");
  else if (find_item(item.id)) {
    send_error(invalid("item.id", "Item with id '" + item.id + "' already exists."), eid);
    return;
  }
  item.type = get_string(in, "type");
  if (item.type.empty()) {
    send_error(missing("item.type"), eid);
    return;
  }
  if (item.type == "function_call_output") {
    item.call_id = get_string(in, "call_id");
    if (!is_string(in, "call_id") || !is_string(in, "output")) {
      send_error(missing(is_string(in, "call_id") ? "item.output" : "item.call_id"), eid);
      return;
    }
    const bool known = std::any_of(items_.begin(), items_.end(), [&](const Item &i) {
      return i.type == "function_call" && i.call_id == item.call_id;
    });
    if (!known) {
      send_error(invalid("item.call_id", "Tool call ID '" + item.call_id + "' not found in conversation."), eid);
      return;
    }
    item.output = get_string(in, "output");
    state_.record_function_output(item.call_id, item.output);
  } else if (item.type == "function_call") {  // history replayed after a reconnect
    for (const char *key : {"call_id", "name", "arguments"})
      if (!is_string(in, key)) {
        send_error(missing(std::string("item.") + key), eid);
        return;
      }
    item.call_id = get_string(in, "call_id");
    item.name = get_string(in, "name");
    item.arguments = get_string(in, "arguments");
  } else if (item.type == "message") {
    if (!validate_message_content(in, &item, eid))
      return;
  } else {
    send_error(invalid("item.type", "Invalid value: '" + item.type +
                                        "'. Supported values are: 'message', 'function_call', and "
                                        "'function_call_output'."),
               eid);
    return;
  }
  const std::string previous = position == 0 ? "" : items_[position - 1].id;
  auto it = items_.insert(items_.begin() + static_cast<std::ptrdiff_t>(position), std::move(item));
  announce_item(*it, previous, true);  // never a response: the client asks for one
}

// Roles and content types per shape (docs §2.4): assistant history is output_text in GA and text in
// beta, and nobody may create assistant audio.
bool Connection::validate_message_content(JsonObject *in, Item *item, const std::string &eid) {
  item->role = get_string(in, "role");
  if (item->role != "user" && item->role != "assistant" && item->role != "system") {
    send_error(item->role.empty() ? missing("item.role")
                                  : invalid("item.role", "Invalid value: '" + item->role +
                                                             "'. Supported values are: 'user', "
                                                             "'assistant', and 'system'."),
               eid);
    return false;
  }
  JsonNode *content = json_object_get_member(in, "content");
  if (!content || !JSON_NODE_HOLDS_ARRAY(content)) {
    send_error(missing("item.content"), eid);
    return false;
  }
  const bool ga = ctx_.shape == Shape::Ga;
  std::vector<std::string> allowed;
  if (item->role == "user")
    allowed = ga ? std::vector<std::string>{"input_text", "input_audio", "input_image"}
                 : std::vector<std::string>{"input_text", "input_audio"};
  else if (item->role == "system")
    allowed = {"input_text"};
  else
    allowed = {ga ? "output_text" : "text"};
  JsonArray *parts = json_node_get_array(content);
  for (guint i = 0; i < json_array_get_length(parts); i++) {
    const std::string param = "item.content[" + std::to_string(i) + "]";
    JsonNode *pn = json_array_get_element(parts, i);
    JsonObject *part = JSON_NODE_HOLDS_OBJECT(pn) ? json_node_get_object(pn) : nullptr;
    const std::string type = get_string(part, "type");
    if (std::find(allowed.begin(), allowed.end(), type) == allowed.end()) {
      std::string supported;
      for (size_t k = 0; k < allowed.size(); k++)
        supported += (k ? ", '" : "'") + allowed[k] + "'";
      send_error(invalid(param + ".type", "Invalid value: '" + type + "'. Supported values are: " + supported +
                                              " for role '" + item->role + "'."),
                 eid);
      return false;
    }
    if (type == "input_audio") {
      if (!is_string(part, "audio")) {
        send_error(missing(param + ".audio"), eid);
        return false;
      }
      std::vector<uint8_t> pcm = unbase64(get_string(part, "audio"));
      item->audio.insert(item->audio.end(), pcm.begin(), pcm.end());
    } else if (type != "input_image" && !is_string(part, "text")) {
      send_error(missing(param + ".text"), eid);
      return false;
    }
  }
  item->content.reset(deep_copy(content));
  return true;
}

void Connection::handle_truncate(JsonObject *ev, const std::string &eid) {
  const std::string item_id = get_string(ev, "item_id");
  int64_t content_index = 0, audio_end_ms = 0;
  if (item_id.empty() || !get_int(ev, "audio_end_ms", &audio_end_ms)) {
    send_error(missing(item_id.empty() ? "item_id" : "audio_end_ms"), eid);
    return;
  }
  Item *item = find_item(item_id);
  if (!item) {
    send_error({"item_truncate_invalid_item_id", "Item with item_id '" + item_id + "' not found.", "item_id"}, eid);
    return;
  }
  if (!item->assistant_audio) {
    send_error(invalid("item_id", "Only model output audio messages can be truncated"), eid);
    return;
  }
  if (get_int(ev, "content_index", &content_index) && content_index != 0) {
    send_error(invalid("content_index", "Invalid value: content_index must be 0."), eid);
    return;
  }
  if (audio_end_ms < 0) {
    send_error(invalid("audio_end_ms", "Invalid value: audio_end_ms must not be negative."), eid);
    return;
  }
  const int64_t item_ms = item->audio_ms();
  TruncateRecord record{item_id, audio_end_ms, item_ms, false};
  int64_t end_ms = audio_end_ms;
  // Each truncate is recorded before its reply (error or truncated) is sent: a test that waits for
  // the reply on another thread and then reads the records must find this one there.
  if (audio_end_ms > item_ms) {
    state_.record_truncate(record);
    // Observed: code null and error.event_id null (docs §8 G7, G15).
    send_error({"",
                "Audio content of " + std::to_string(item_ms) + "ms is already shorter than " +
                    std::to_string(audio_end_ms) + "ms",
                ""},
               "");
    if (!state_.config().clamp_bad_truncate)
      return;
    end_ms = item_ms;  // observed behaviour: the server applies a clamped truncate anyway
    record.audio_end_ms = item_ms;
  }
  // Cut the audio and, proportionally, the transcript the model remembers.
  if (item_ms > 0)
    item->transcript.resize(item->transcript.size() * static_cast<size_t>(end_ms) / static_cast<size_t>(item_ms));
  item->audio.resize(static_cast<size_t>(end_ms) * kBytesPerMs);
  record.accepted = true;
  state_.record_truncate(record);
  send(
      event("conversation.item.truncated").str("item_id", item_id).num("content_index", 0).num("audio_end_ms", end_ms));
}

void Connection::handle_delete(JsonObject *ev, const std::string &eid) {
  const std::string item_id = get_string(ev, "item_id");
  auto it = std::find_if(items_.begin(), items_.end(), [&](const Item &i) { return i.id == item_id; });
  if (item_id.empty() || it == items_.end()) {
    send_error({"item_delete_invalid_item_id",
                "Error deleting item: the item with id '" + item_id + "' does not exist.", "item_id"},
               eid);
    return;
  }
  items_.erase(it);
  state_.record_deleted(item_id);
  send(event("conversation.item.deleted").str("item_id", item_id));
}

void Connection::handle_retrieve(JsonObject *ev, const std::string &eid) {
  const std::string item_id = get_string(ev, "item_id");
  Item *item = find_item(item_id);
  if (!item) {
    send_error({"item_retrieve_invalid_item_id", "Item with item_id '" + item_id + "' not found.", "item_id"}, eid);
    return;
  }
  send(event("conversation.item.retrieved").obj("item", item_json(*item, true)));
}

void Connection::handle_response_create(JsonObject *ev, const std::string &eid) {
  JsonNode *params = json_object_get_member(ev, "response");
  ApiError err;
  if (!validate_response_params(params, ctx_.shape, &err)) {
    send_error(err, eid);
    return;
  }
  if (response_) {  // docs §8 G4: VAD-created responses count too
    send_error({"conversation_already_has_active_response",
                "Conversation already has an active response in progress: " + response_->id +
                    ". Wait until the response is finished before creating a new one.",
                ""},
               eid);
    return;
  }
  start_response(params && JSON_NODE_HOLDS_OBJECT(params) ? json_node_get_object(params) : nullptr, "");
}

void Connection::handle_response_cancel(JsonObject *ev, const std::string &eid) {
  const std::string response_id = get_string(ev, "response_id");
  if (!response_ || (!response_id.empty() && response_id != response_->id)) {
    send_error({"response_cancel_not_active", "Cancellation failed: no active response found", ""}, eid);
    return;
  }
  finish_response("cancelled", "client_cancelled");
}

// A conversation.item.retrieved far above libsoup's 128 KiB default, to prove the client raised its
// limit (docs §7, G12). It describes an item outside the conversation.
void Connection::send_large_frame() {
  std::vector<uint8_t> pcm = synth_tone(kLargeFrameSeconds * 1000, 220.0, 0.1);
  Arr content;
  content.add(std::move(Obj()
                            .str("type", name("output_audio", "audio"))
                            .str("transcript", "A long recorded answer.")
                            .str("audio", base64(pcm.data(), pcm.size()))));
  Obj item;
  item.str("id", state_.make_id("item"))
      .str("object", "realtime.item")
      .str("type", "message")
      .str("status", "completed")
      .str("role", "assistant")
      .arr("content", std::move(content));
  send(event("conversation.item.retrieved").obj("item", std::move(item)));
}

Obj Connection::event(const char *type) {
  Obj e;
  e.str("type", type).str("event_id", state_.make_id("event"));
  return e;
}

void Connection::send(const Obj &ev) {
  if (soup_websocket_connection_get_state(ws_) != SOUP_WEBSOCKET_STATE_OPEN)
    return;
  g_debug("connection %d -> %s", index_, json_object_get_string_member(ev.get(), "type"));
  soup_websocket_connection_send_text(ws_, ev.text().c_str());
}

void Connection::send_error(const ApiError &error, const std::string &client_event_id) {
  Obj body;
  body.str("type", "invalid_request_error")
      .str_or_null("code", error.code)
      .str("message", error.message)
      .str_or_null("param", error.param)
      .str_or_null("event_id", client_event_id);
  send(event("error").obj("error", std::move(body)));
  state_.record_error(error.code);
  g_debug("connection %d error %s: %s", index_, error.code.c_str(), error.message.c_str());
}

const char *Connection::name(const char *ga, const char *beta) const {
  return ctx_.shape == Shape::Ga ? ga : beta;
}

Item *Connection::find_item(const std::string &id) {
  for (Item &i : items_)
    if (i.id == id)
      return &i;
  return nullptr;
}

Item *Connection::find_output(const std::string &id) {
  if (Item *i = find_item(id))
    return i;
  if (response_)
    for (Item &i : response_->detached)
      if (i.id == id)
        return &i;
  return nullptr;
}

std::string Connection::last_item_id() const {
  return items_.empty() ? "" : items_.back().id;
}

Obj Connection::item_json(const Item &item, bool with_audio) const {
  Obj o;
  o.str("id", item.id).str("object", "realtime.item").str("type", item.type);
  if (item.type == "function_call_output") {
    o.str("call_id", item.call_id).str("output", item.output);
    return o;
  }
  o.str("status", item.status);
  if (item.type == "function_call") {
    o.str("call_id", item.call_id).str("name", item.name).str("arguments", item.arguments);
    return o;
  }
  o.str("role", item.role);
  if (item.content) {
    o.node("content", deep_copy(item.content.get()));
    return o;
  }
  Arr content;
  if (item.user_audio || item.assistant_audio) {
    Obj part;
    part.str("type", item.user_audio ? "input_audio" : name("output_audio", "audio"));
    if (with_audio)
      part.str("audio", base64(item.audio.data(), item.audio.size()));
    if (item.user_audio)
      part.null("transcript");
    else
      part.str("transcript", item.transcript);
    content.add(std::move(part));
  } else if (item.assistant_text) {
    content.add(std::move(Obj().str("type", name("output_text", "text")).str("text", item.transcript)));
  }
  o.arr("content", std::move(content));
  return o;
}

// GA reports a new item with conversation.item.added (+ .done once final); beta with .created.
void Connection::announce_item(const Item &item, const std::string &previous_id, bool with_done) {
  if (ctx_.shape == Shape::Beta) {
    send(event("conversation.item.created")
             .str_or_null("previous_item_id", previous_id)
             .obj("item", item_json(item, false)));
    return;
  }
  send(event("conversation.item.added")
           .str_or_null("previous_item_id", previous_id)
           .obj("item", item_json(item, false)));
  if (with_done)
    send(event("conversation.item.done")
             .str_or_null("previous_item_id", previous_id)
             .obj("item", item_json(item, false)));
}

void Connection::stop_response_timer() {
  if (response_ && response_->timer) {
    g_source_destroy(response_->timer);
    g_source_unref(response_->timer);
    response_->timer = nullptr;
  }
}

int64_t Connection::input_timeline_ms() const {
  return static_cast<int64_t>((input_base_bytes_ + input_.size()) / kBytesPerMs);
}

}  // namespace fake_realtime::detail
