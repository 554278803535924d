// Responses of one fake Realtime connection: scripted tool calls, and an assistant message whose
// audio (a tone, or an echo of the caller) and transcript are streamed in deltas faster than real
// time, in the event order of docs/openai-realtime.md §4.
#include "fake-connection.h"

#include <algorithm>
#include <cstring>

namespace fake_realtime::detail {
namespace {

// Words with their trailing space, so the deltas concatenate back to the text.
std::vector<std::string> split_words(const std::string &text) {
  std::vector<std::string> words;
  size_t start = 0;
  while (start < text.size()) {
    size_t space = text.find(' ', start);
    size_t end = space == std::string::npos ? text.size() : space + 1;
    words.push_back(text.substr(start, end - start));
    start = end;
  }
  return words;
}

// Spreads words over n pieces as evenly as possible (some pieces may be empty).
std::vector<std::string> spread(const std::vector<std::string> &words, size_t n) {
  std::vector<std::string> pieces(n);
  for (size_t i = 0; i < n; i++)
    for (size_t w = i * words.size() / n; w < (i + 1) * words.size() / n; w++)
      pieces[i] += words[w];
  return pieces;
}

bool array_has(JsonNode *node, const char *value) {
  if (!node || !JSON_NODE_HOLDS_ARRAY(node))
    return false;
  JsonArray *a = json_node_get_array(node);
  for (guint i = 0; i < json_array_get_length(a); i++) {
    JsonNode *e = json_array_get_element(a, i);
    if (JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING &&
        std::strcmp(json_node_get_string(e), value) == 0)
      return true;
  }
  return false;
}

Obj pcm_format() {
  Obj format;
  format.str("type", "audio/pcm").num("rate", 24000);
  return format;
}

}  // namespace

void Connection::start_response(JsonObject *params, const std::string &instructions) {
  const Config cfg = state_.config();
  auto r = std::make_unique<Response>();
  r->id = state_.make_id("resp");
  r->instructions = is_string(params, "instructions") ? get_string(params, "instructions") : instructions;
  r->in_conversation = get_string(params, "conversation", "auto") != "none";
  r->text_only = view_.text_only;
  r->voice.reset(session_voice(session_, ctx_.shape));
  if (params) {
    const bool ga = ctx_.shape == Shape::Ga;
    if (JsonNode *m = json_object_get_member(params, ga ? "output_modalities" : "modalities"))
      r->text_only = !array_has(m, "audio");
    JsonObject *voice_holder = ga ? get_object(get_object(params, "audio"), "output") : params;
    if (JsonNode *v = voice_holder ? json_object_get_member(voice_holder, "voice") : nullptr)
      r->voice.reset(deep_copy(v));
  }
  state_.record_response_started(r->instructions);
  response_ = std::move(r);

  send(event("response.created").obj("response", response_json(*response_, "in_progress", nullptr, false)));
  Arr limits;
  limits.add(
      std::move(Obj().str("name", "requests").num("limit", 1000).num("remaining", 999).num("reset_seconds", 60)));
  limits.add(
      std::move(Obj().str("name", "tokens").num("limit", 50000).num("remaining", 49000).num("reset_seconds", 60)));
  send(event("rate_limits.updated").arr("rate_limits", std::move(limits)));

  if (tool_calls_done_ < cfg.tool_calls.size()) {
    // A tool-calling response carries only the calls; the client answers with
    // function_call_output items and asks for the next response itself (docs §6).
    emit_tool_calls(cfg);
    finish_response("completed", nullptr);
    return;
  }
  begin_message(cfg);
}

void Connection::emit_tool_calls(const Config &cfg) {
  Response &r = *response_;
  const bool ga = ctx_.shape == Shape::Ga;
  for (size_t i = tool_calls_done_; i < cfg.tool_calls.size(); i++) {
    const ToolCallScript &script = cfg.tool_calls[i];
    Item item;
    item.id = state_.make_id("item");
    item.type = "function_call";
    item.status = "in_progress";
    item.call_id = state_.make_id("call");
    item.name = script.name;
    const std::string item_id = item.id, call_id = item.call_id;
    const auto output_index = static_cast<int64_t>(r.output_ids.size());
    r.output_ids.push_back(item_id);
    send(event("response.output_item.added")
             .str("response_id", r.id)
             .num("output_index", output_index)
             .obj("item", item_json(item, false)));
    const std::string previous = last_item_id();
    if (r.in_conversation) {
      items_.push_back(std::move(item));
      send(event(name("conversation.item.added", "conversation.item.created"))
               .str_or_null("previous_item_id", previous)
               .obj("item", item_json(items_.back(), false)));
    } else {
      r.detached.push_back(std::move(item));
    }
    send(event("response.function_call_arguments.delta")
             .str("response_id", r.id)
             .str("item_id", item_id)
             .num("output_index", output_index)
             .str("call_id", call_id)
             .str("delta", script.arguments));
    Obj done = event("response.function_call_arguments.done");
    done.str("response_id", r.id).str("item_id", item_id).num("output_index", output_index).str("call_id", call_id);
    if (ga)  // the beta event had no name (docs §2.4)
      done.str("name", script.name);
    send(done.str("arguments", script.arguments));
    Item *stored = find_output(item_id);
    stored->arguments = script.arguments;
    stored->status = "completed";
    send(event("response.output_item.done")
             .str("response_id", r.id)
             .num("output_index", output_index)
             .obj("item", item_json(*stored, false)));
    if (ga && r.in_conversation)
      send(event("conversation.item.done")
               .str_or_null("previous_item_id", previous)
               .obj("item", item_json(*stored, false)));
  }
  tool_calls_done_ = cfg.tool_calls.size();
}

void Connection::begin_message(const Config &cfg) {
  Response &r = *response_;
  Item item;
  item.id = state_.make_id("item");
  item.type = "message";
  item.role = "assistant";
  item.status = "in_progress";
  item.assistant_audio = !r.text_only;
  item.assistant_text = r.text_only;
  r.item_id = item.id;
  r.output_index = static_cast<int>(r.output_ids.size());
  r.output_ids.push_back(item.id);

  const bool echo = cfg.echo_input && !last_turn_.empty();
  std::string text = "Hello from the fake Realtime server.";
  if (!r.instructions.empty())
    text = "Fake reply to the instructions: " + r.instructions;
  else if (echo)
    text = "An echo of your last turn.";
  const std::vector<std::string> words = split_words(text);
  if (r.text_only) {
    r.chunks_total = words.size();
  } else {
    r.pcm = echo ? last_turn_ : synth_tone(cfg.reply_duration_ms, cfg.reply_tone_hz, cfg.reply_amplitude);
    r.chunk_bytes = static_cast<size_t>(std::max(cfg.delta_ms, 1)) * kBytesPerMs;
    r.chunks_total = (r.pcm.size() + r.chunk_bytes - 1) / r.chunk_bytes;
  }
  r.pieces = spread(words, r.chunks_total);

  Obj added = item_json(item, false);
  json_object_set_array_member(added.get(), "content", json_array_new());  // parts come later
  send(event("response.output_item.added")
           .str("response_id", r.id)
           .num("output_index", r.output_index)
           .obj("item", std::move(added)));
  const std::string previous = last_item_id();
  if (r.in_conversation) {
    Obj in_conversation = item_json(item, false);
    json_object_set_array_member(in_conversation.get(), "content", json_array_new());
    items_.push_back(std::move(item));
    send(event(name("conversation.item.added", "conversation.item.created"))
             .str_or_null("previous_item_id", previous)
             .obj("item", std::move(in_conversation)));
  } else {
    r.detached.push_back(std::move(item));
  }
  Obj part;
  if (r.text_only)
    part.str("type", "text").str("text", "");
  else
    part.str("type", "audio").str("transcript", "");  // still "audio" in GA (docs §2.4)
  send(event("response.content_part.added")
           .str("response_id", r.id)
           .str("item_id", r.item_id)
           .num("output_index", r.output_index)
           .num("content_index", 0)
           .obj("part", std::move(part)));

  if (r.text_only || cfg.speed <= 0 || r.chunks_total == 0) {
    while (response_->chunks_sent < response_->chunks_total)
      send_chunk();
    finish_response("completed", nullptr);
    return;
  }
  r.period_us = cfg.delta_ms * 1000.0 / cfg.speed;
  r.start_us = g_get_monotonic_time();
  send_chunk();  // the first delta goes out at once, the rest on the pacing timer
  if (r.chunks_sent >= r.chunks_total) {
    finish_response("completed", nullptr);
    return;
  }
  r.timer = g_timeout_source_new(std::max(1u, static_cast<guint>(r.period_us / 1000)));
  g_source_set_callback(r.timer, on_chunk_timer_cb, this, nullptr);
  g_source_attach(r.timer, g_main_context_get_thread_default());
}

gboolean Connection::on_chunk_timer_cb(gpointer self) {
  auto *c = static_cast<Connection *>(self);
  Response *r = c->response_.get();
  if (!r)
    return G_SOURCE_REMOVE;
  // Send every chunk that is due by now: timers drift, the schedule must not.
  const auto due = static_cast<size_t>((g_get_monotonic_time() - r->start_us) / r->period_us) + 1;
  while (r->chunks_sent < std::min(due, r->chunks_total))
    c->send_chunk();
  if (r->chunks_sent < r->chunks_total)
    return G_SOURCE_CONTINUE;
  c->finish_response("completed", nullptr);  // also drops our reference on this source
  return G_SOURCE_REMOVE;
}

void Connection::send_chunk() {
  Response &r = *response_;
  const size_t i = r.chunks_sent++;
  Item *item = find_output(r.item_id);
  const std::string &piece = r.pieces[i];
  auto delta = [&](const char *type) {
    Obj e = event(type);
    e.str("response_id", r.id).str("item_id", r.item_id).num("output_index", r.output_index).num("content_index", 0);
    return e;
  };
  if (!piece.empty()) {
    send(delta(r.text_only ? name("response.output_text.delta", "response.text.delta")
                           : name("response.output_audio_transcript.delta", "response.audio_transcript.delta"))
             .str("delta", piece));
    r.text_sent += piece;
    if (item)
      item->transcript = r.text_sent;
  }
  if (r.text_only)
    return;
  const size_t from = i * r.chunk_bytes;
  const size_t to = std::min(from + r.chunk_bytes, r.pcm.size());
  send(delta(name("response.output_audio.delta", "response.audio.delta"))
           .str("delta", base64(r.pcm.data() + from, to - from)));
  r.audio_sent = to;
  if (item)
    item->audio.insert(item->audio.end(), r.pcm.begin() + static_cast<std::ptrdiff_t>(from),
                       r.pcm.begin() + static_cast<std::ptrdiff_t>(to));
  assistant_audio_present_ = true;  // from now on the voice is locked (docs §8 G3)
}

// Ends the active response: the done events of its message (if any), then response.done. Deltas stop
// here, so a cancelled response sends nothing late.
void Connection::finish_response(const char *status, const char *reason) {
  stop_response_timer();
  Response &r = *response_;
  const bool ga = ctx_.shape == Shape::Ga;
  if (!r.item_id.empty()) {
    Item *item = find_output(r.item_id);
    if (item)
      item->status = std::strcmp(status, "completed") == 0 ? "completed" : "incomplete";
    auto part_event = [&](const char *type) {
      Obj e = event(type);
      e.str("response_id", r.id).str("item_id", r.item_id).num("output_index", r.output_index).num("content_index", 0);
      return e;
    };
    Obj part;
    if (r.text_only) {
      send(part_event(name("response.output_text.done", "response.text.done")).str("text", r.text_sent));
      part.str("type", "text").str("text", r.text_sent);
    } else {
      send(part_event(name("response.output_audio.done", "response.audio.done")));
      send(part_event(name("response.output_audio_transcript.done", "response.audio_transcript.done"))
               .str("transcript", r.text_sent));
      part.str("type", "audio").str("transcript", r.text_sent);
    }
    send(part_event("response.content_part.done").obj("part", std::move(part)));
    if (item) {
      send(event("response.output_item.done")
               .str("response_id", r.id)
               .num("output_index", r.output_index)
               .obj("item", item_json(*item, false)));
      if (ga && r.in_conversation) {
        std::string previous;
        for (size_t k = 1; k < items_.size(); k++)
          if (items_[k].id == item->id)
            previous = items_[k - 1].id;
        send(event("conversation.item.done")
                 .str_or_null("previous_item_id", previous)
                 .obj("item", item_json(*item, false)));
      }
    }
  }
  Obj done = response_json(r, status, reason, true);
  if (std::strcmp(status, "cancelled") == 0)
    state_.record_response_cancelled();
  response_.reset();
  send(event("response.done").obj("response", std::move(done)));
}

Obj Connection::response_json(const Response &r, const char *status, const char *reason, bool with_usage) {
  Obj o;
  o.str("object", "realtime.response").str("id", r.id).str("status", status);
  if (reason)
    o.obj("status_details", std::move(Obj().str("type", status).str("reason", reason)));
  else
    o.null("status_details");
  Arr output;
  for (const std::string &id : r.output_ids)
    if (Item *item = find_output(id))
      output.add(item_json(*item, false));
  o.arr("output", std::move(output)).str_or_null("conversation_id", r.in_conversation ? conversation_id_ : "");
  Arr modalities;
  if (ctx_.shape == Shape::Ga) {
    modalities.add_str(r.text_only ? "text" : "audio");
    Obj out;
    out.obj("format", pcm_format()).node("voice", deep_copy(r.voice.get()));
    o.arr("output_modalities", std::move(modalities))
        .str("max_output_tokens", "inf")
        .obj("audio", std::move(Obj().obj("output", std::move(out))));
  } else {
    if (!r.text_only)
      modalities.add_str("audio");
    modalities.add_str("text");
    o.arr("modalities", std::move(modalities))
        .node("voice", deep_copy(r.voice.get()))
        .str("output_audio_format", "pcm16")
        .dbl("temperature", 0.8)
        .str("max_output_tokens", "inf");
  }
  if (with_usage)
    o.obj("usage", usage_json(r));
  else
    o.null("usage");
  o.null("metadata");
  return o;
}

// Billing as docs §7 describes it: caller audio 1 token per 100 ms (the whole conversation is
// re-sent for every response), model audio 1 token per 50 ms, text roughly 4 characters per token.
Obj Connection::usage_json(const Response &r) {
  int64_t input_audio_ms = 0;
  size_t input_chars = view_.instructions.size() + r.instructions.size();
  for (const Item &i : items_) {
    if (i.role == "user")
      input_audio_ms += i.audio_ms();
    input_chars += i.transcript.size() + i.arguments.size() + i.output.size();
    if (i.content)
      input_chars += to_text(i.content.get()).size();
  }
  size_t output_chars = r.text_sent.size();
  for (const std::string &id : r.output_ids)
    if (Item *item = find_output(id))
      output_chars += item->arguments.size();
  const int64_t in_audio = input_audio_ms / 100;
  const auto in_text = static_cast<int64_t>((input_chars + 3) / 4);
  const int64_t out_audio = static_cast<int64_t>(r.audio_sent / kBytesPerMs) / 50;
  const auto out_text = static_cast<int64_t>((output_chars + 3) / 4);
  Obj cached;
  cached.num("text_tokens", 0).num("audio_tokens", 0).num("image_tokens", 0);
  Obj in_details;
  in_details.num("text_tokens", in_text)
      .num("audio_tokens", in_audio)
      .num("image_tokens", 0)
      .num("cached_tokens", 0)
      .obj("cached_tokens_details", std::move(cached));
  Obj out_details;
  out_details.num("text_tokens", out_text).num("audio_tokens", out_audio);
  Obj usage;
  usage.num("total_tokens", in_audio + in_text + out_audio + out_text)
      .num("input_tokens", in_audio + in_text)
      .num("output_tokens", out_audio + out_text)
      .obj("input_token_details", std::move(in_details))
      .obj("output_token_details", std::move(out_details));
  return usage;
}

}  // namespace fake_realtime::detail
