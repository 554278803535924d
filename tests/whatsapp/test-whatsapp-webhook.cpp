// Unit tests of app/whatsapp-webhook: the signature check, the parsing of Meta's webhooks (every
// fixture, batched bodies, hostile bodies) and the delivery rules (duplicates, stale retries,
// terminate before connect).
#include <gst/check/gstcheck.h>

#include <string>

#include <json-glib/json-glib.h>

#include "wa-harness.h"
#include "whatsapp-webhook.h"

using namespace vb::wa;

namespace {

const std::string kSecret = "app-secret-for-tests";

Webhook parse_ok(const std::string &body) {
  Webhook w;
  std::string error;
  fail_unless(parse_webhook(body.data(), body.size(), &w, &error), "parse failed: %s", error.c_str());
  return w;
}

}  // namespace

// ---- signature ----

GST_START_TEST(test_signature_valid) {
  std::string body = wa_test::fixture("webhook-connect-user-initiated.json");
  std::string header = wa_test::signature(body, kSecret);  // computed by GLib directly, not by the code under test
  fail_unless_equals_int((int)check_signature(kSecret, header, body.data(), body.size()), (int)Signature::Valid);
  // Upper-case hex is the same signature.
  gchar *up = g_ascii_strup(header.c_str() + 7, -1);
  std::string upper = std::string("sha256=") + up;
  g_free(up);
  fail_unless_equals_int((int)check_signature(kSecret, upper, body.data(), body.size()), (int)Signature::Valid);
  // The known answer of RFC 4231 test case 2 ("Jefe" / "what do ya want for nothing?").
  std::string data = "what do ya want for nothing?";
  WA_ASSERT_STR_EQ(hmac_sha256_hex("Jefe", data.data(), data.size()),
                            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}
GST_END_TEST;

GST_START_TEST(test_signature_refused) {
  std::string body = wa_test::fixture("webhook-connect-user-initiated.json");
  std::string good = wa_test::signature(body, kSecret);
  fail_unless_equals_int((int)check_signature(kSecret, "", body.data(), body.size()), (int)Signature::Missing);
  // Wrong secret.
  fail_unless_equals_int((int)check_signature(kSecret, wa_test::signature(body, "other"), body.data(), body.size()),
                         (int)Signature::Mismatch);
  // Wrong prefix (sha1= is the old X-Hub-Signature header's), no prefix, truncated, not hex.
  std::string hex = good.substr(7);
  fail_unless_equals_int((int)check_signature(kSecret, "sha1=" + hex, body.data(), body.size()), (int)Signature::Malformed);
  fail_unless_equals_int((int)check_signature(kSecret, hex, body.data(), body.size()), (int)Signature::Malformed);
  fail_unless_equals_int((int)check_signature(kSecret, good.substr(0, good.size() - 2), body.data(), body.size()),
                         (int)Signature::Malformed);
  std::string not_hex = good;
  not_hex[10] = 'g';
  fail_unless_equals_int((int)check_signature(kSecret, not_hex, body.data(), body.size()), (int)Signature::Malformed);
  // One byte of the body changed (or one added): the signature no longer matches.
  std::string tampered = body;
  tampered[tampered.find("917358580180")] = '8';
  fail_unless_equals_int((int)check_signature(kSecret, good, tampered.data(), tampered.size()), (int)Signature::Mismatch);
  std::string longer = body + " ";
  fail_unless_equals_int((int)check_signature(kSecret, good, longer.data(), longer.size()), (int)Signature::Mismatch);
  // An empty secret validates nothing, not even the signature made with it.
  fail_unless_equals_int((int)check_signature("", wa_test::signature(body, ""), body.data(), body.size()),
                         (int)Signature::Mismatch);
}
GST_END_TEST;

GST_START_TEST(test_constant_time_equal) {
  fail_unless(constant_time_equal("", ""));
  fail_unless(constant_time_equal("token", "token"));
  fail_if(constant_time_equal("token", "tokem"));
  fail_if(constant_time_equal("token", "token2"));
  fail_if(constant_time_equal("token2", "token"));
  fail_if(constant_time_equal("", "x"));
  // A prefix is not a match, and a NUL inside does not end the comparison.
  fail_if(constant_time_equal(std::string("ab\0c", 4), std::string("ab\0d", 4)));

  // Timing: comparing against a value that differs in the first byte takes as long as one that
  // differs in the last (no early exit). Measured over many rounds, the ratio stays near 1.
  std::string secret(4096, 'a');
  std::string first = secret, last = secret;
  first[0] = 'b';
  last[secret.size() - 1] = 'b';
  auto measure = [&](const std::string &other) {
    gint64 best = G_MAXINT64;
    for (int round = 0; round < 30; round++) {
      gint64 t0 = g_get_monotonic_time();
      volatile bool sink = false;
      for (int i = 0; i < 200; i++) sink = sink ^ constant_time_equal(secret, other);
      best = std::min(best, g_get_monotonic_time() - t0);
    }
    return (double)std::max<gint64>(best, 1);
  };
  double early = measure(first), late = measure(last);
  fail_unless(early / late > 0.5 && early / late < 2.0, "first-byte difference %.0f us vs last-byte %.0f us", early, late);
}
GST_END_TEST;

// ---- fixtures ----

GST_START_TEST(test_parse_connect_user_initiated) {
  Webhook w = parse_ok(wa_test::fixture("webhook-connect-user-initiated.json"));
  fail_unless_equals_int((int)w.calls.size(), 1);
  fail_unless_equals_int((int)w.statuses.size(), 0);
  const CallEvent &c = w.calls[0];
  WA_ASSERT_STR_EQ(c.id,
                            "wacid.HBgMOTE3MzU4NTgwMTgwFQIAEhggQUNEODk3OUQ3NzI4MjZBRTZFNEE2MzU3NDEzNDg4RUUcGAsxNTU1MTQ0MTkwNhUCABUKAA==");
  WA_ASSERT_STR_EQ(c.event, "connect");
  WA_ASSERT_STR_EQ(c.direction, "USER_INITIATED");
  fail_unless(c.user_initiated());
  WA_ASSERT_STR_EQ(c.from, "917358580180");
  WA_ASSERT_STR_EQ(c.to, "15551441906");
  fail_unless_equals_int64(c.timestamp, 1760681506LL);
  WA_ASSERT_STR_EQ(c.sdp_type, "offer");
  WA_ASSERT_STR_EQ(c.sdp, wa_test::fixture("offer-user-initiated-1.sdp"));
  fail_if(c.legacy_sdp);
  WA_ASSERT_STR_EQ(c.caller_name, "917358580180");
  WA_ASSERT_STR_EQ(c.phone_number_id, "518638374672395");
  fail_unless(c.errors.empty());
}
GST_END_TEST;

GST_START_TEST(test_parse_terminate_failed) {
  Webhook w = parse_ok(wa_test::fixture("webhook-terminate-failed.json"));
  fail_unless_equals_int((int)w.calls.size(), 1);
  const CallEvent &c = w.calls[0];
  WA_ASSERT_STR_EQ(c.event, "terminate");
  WA_ASSERT_STR_EQ(c.status, "FAILED");
  fail_unless_equals_int64(c.duration, 20LL);
  fail_unless_equals_int64(c.timestamp, 1760681533LL);
  fail_unless(c.sdp.empty());
  fail_unless_equals_int((int)c.errors.size(), 1);
  fail_unless_equals_int64(c.errors[0].code, 138021LL);
  fail_unless(c.errors[0].details.find("not receiving any media") != std::string::npos);
  // The value-level errors too, tied to the call beside them.
  fail_unless_equals_int((int)w.errors.size(), 1);
  fail_unless_equals_int64(w.errors[0].errors[0].code, 138021LL);
  fail_unless_equals_int((int)w.errors[0].call_ids.size(), 1);
  WA_ASSERT_STR_EQ(w.errors[0].call_ids[0], c.id);
  fail_if(w.errors[0].digest.empty());
  // Its meaning, from Meta's table.
  const char *meaning = meta_error_meaning(138021);
  fail_unless(meaning && strstr(meaning, "media receive timeout"), "%s", meaning ? meaning : "(null)");
  std::string described = describe_meta_error(c.errors[0]);
  fail_unless(described.find("138021") == 0 && described.find("media receive timeout") != std::string::npos,
              "%s", described.c_str());
  fail_unless(meta_error_meaning(138006) && strstr(meta_error_meaning(138006), "permission"));
  fail_unless(meta_error_meaning(424242) == nullptr);
}
GST_END_TEST;

GST_START_TEST(test_parse_connect_business_initiated) {
  std::string text = wa_test::fixture("webhook-connect-business-initiated.json");
  Webhook w = parse_ok(text);
  fail_unless_equals_int((int)w.calls.size(), 1);
  const CallEvent &c = w.calls[0];
  fail_unless(c.business_initiated());
  WA_ASSERT_STR_EQ(c.sdp_type, "answer");
  fail_if(c.legacy_sdp);
  // session.sdp, with real CRLFs — not the legacy JSON-in-a-string.
  fail_unless(c.sdp.rfind("v=0\r\n", 0) == 0, "%s", c.sdp.c_str());
  fail_unless(c.sdp.find("a=setup:active\r\n") != std::string::npos);
  fail_unless(c.sdp.find("\\r\\n") == std::string::npos);

  // Distinguish the two fields: with a different session.sdp, that one is read.
  std::string marked = text;
  size_t at = marked.find("\"sdp\": \"v=0");
  fail_unless(at != std::string::npos);
  marked.replace(at, strlen("\"sdp\": \"v=0"), "\"sdp\": \"v=0\\r\\nx=session-field");
  Webhook m = parse_ok(marked);
  fail_unless(m.calls[0].sdp.find("x=session-field") != std::string::npos);

  // Without session, the legacy connection.webrtc.sdp is decoded (JSON {"sdp","type"} in a string).
  JsonParser *parser = json_parser_new();
  fail_unless(json_parser_load_from_data(parser, text.data(), -1, nullptr));
  auto first = [](JsonObject *o, const char *array) {
    return json_node_get_object(json_array_get_element(json_object_get_array_member(o, array), 0));
  };
  JsonObject *entry = first(json_node_get_object(json_parser_get_root(parser)), "entry");
  JsonObject *value = json_object_get_object_member(first(entry, "changes"), "value");
  JsonObject *call = first(value, "calls");
  json_object_remove_member(call, "session");
  gchar *legacy_text = json_to_string(json_parser_get_root(parser), FALSE);
  Webhook l = parse_ok(legacy_text);
  g_free(legacy_text);
  g_object_unref(parser);
  fail_unless(l.calls[0].legacy_sdp);
  WA_ASSERT_STR_EQ(l.calls[0].sdp, c.sdp);
  WA_ASSERT_STR_EQ(l.calls[0].sdp_type, "answer");
}
GST_END_TEST;

GST_START_TEST(test_parse_status_ringing) {
  Webhook w = parse_ok(wa_test::fixture("webhook-status-ringing.json"));
  fail_unless_equals_int((int)w.calls.size(), 0);
  fail_unless_equals_int((int)w.statuses.size(), 1);
  const StatusEvent &s = w.statuses[0];
  WA_ASSERT_STR_EQ(s.id, "wacid.ABGGFjFVU2AfAgo6V");
  WA_ASSERT_STR_EQ(s.type, "call");
  WA_ASSERT_STR_EQ(s.status, "RINGING");
  WA_ASSERT_STR_EQ(s.recipient_id, "163155536021");
  fail_unless_equals_int64(s.timestamp, 1671644824LL);
  WA_ASSERT_STR_EQ(s.phone_number_id, "106540352242922");
}
GST_END_TEST;

// ---- batches ----

GST_START_TEST(test_parse_multi_entry) {
  // Two entries; the second has two changes (one of another field), one of which holds two calls.
  std::string offer = wa_test::local_offer(40000);
  std::string a = wa_test::connect_webhook("wacid.A", offer);
  std::string b = wa_test::terminate_webhook("wacid.B");
  std::string c = wa_test::status_webhook("wacid.C", "ACCEPTED");
  std::string merged = wa_test::merge_webhooks({a, b, c});
  Webhook w = parse_ok(merged);
  fail_unless_equals_int((int)w.calls.size(), 2);
  WA_ASSERT_STR_EQ(w.calls[0].id, "wacid.A");
  WA_ASSERT_STR_EQ(w.calls[1].id, "wacid.B");
  fail_unless_equals_int((int)w.statuses.size(), 1);
  WA_ASSERT_STR_EQ(w.statuses[0].status, "ACCEPTED");

  std::string body =
      "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":["
      "{\"field\":\"messages\",\"value\":{\"messages\":[{\"id\":\"wamid.x\"}]}},"
      "{\"field\":\"calls\",\"value\":{\"metadata\":{\"phone_number_id\":\"123\"},\"calls\":["
      "{\"id\":\"wacid.1\",\"event\":\"connect\",\"direction\":\"USER_INITIATED\",\"from\":\"1\",\"timestamp\":\"5\","
      "\"session\":{\"sdp_type\":\"offer\",\"sdp\":\"v=0\"}},"
      "{\"id\":\"wacid.2\",\"event\":\"terminate\",\"timestamp\":6}]}}]},"
      "{\"id\":\"2\",\"changes\":[{\"field\":\"calls\",\"value\":{\"statuses\":["
      "{\"id\":\"wacid.3\",\"type\":\"call\",\"status\":\"REJECTED\",\"timestamp\":\"7\"}]}}]}]}";
  Webhook x = parse_ok(body);
  fail_unless_equals_int((int)x.calls.size(), 2);
  fail_unless_equals_int((int)x.statuses.size(), 1);
  fail_unless_equals_int(x.ignored_changes, 1);
  fail_unless_equals_int64(x.calls[1].timestamp, 6LL);  // a number is accepted too
  WA_ASSERT_STR_EQ(x.calls[0].phone_number_id, "123");
}
GST_END_TEST;

GST_START_TEST(test_parse_tolerant) {
  // Missing and mistyped members: each item is read on its own, nothing fails.
  const char *bodies[] = {
      "{}",
      "{\"entry\":null}",
      "{\"entry\":{}}",
      "{\"entry\":[1,\"x\",null,[]]}",
      "{\"entry\":[{\"changes\":[null,1,{\"value\":[]},{\"field\":\"calls\"}]}]}",
      "{\"entry\":[{\"changes\":[{\"value\":{\"calls\":[{}]}}]}]}",
      "{\"entry\":[{\"changes\":[{\"value\":{\"calls\":[{\"id\":5,\"event\":[],\"timestamp\":\"abc\","
      "\"session\":\"x\",\"errors\":{},\"from\":{}}]}}]}]}",
      "{\"entry\":[{\"changes\":[{\"value\":{\"calls\":[{\"id\":\"a\",\"connection\":{\"webrtc\":{\"sdp\":\"{bad json\"}},"
      "\"errors\":[1,{\"code\":\"138021\"},{\"code\":{}}]}],\"contacts\":[1,{\"profile\":1}],\"statuses\":[{\"id\":[]}],"
      "\"errors\":[{}]}}]}]}",
  };
  for (const char *body : bodies) {
    Webhook w;
    std::string error;
    fail_unless(parse_webhook(body, strlen(body), &w, &error), "%s: %s", body, error.c_str());
  }
  Webhook w = parse_ok(bodies[7]);
  fail_unless_equals_int((int)w.calls.size(), 1);
  fail_unless(w.calls[0].sdp.empty());
  fail_unless_equals_int((int)w.calls[0].errors.size(), 2);
  fail_unless_equals_int64(w.calls[0].errors[0].code, 138021LL);  // a code sent as a string
  Webhook t = parse_ok(bodies[6]);
  WA_ASSERT_STR_EQ(t.calls[0].id, "5");
  fail_unless_equals_int64(t.calls[0].timestamp, 0LL);
}
GST_END_TEST;

GST_START_TEST(test_parse_garbage) {
  // Not JSON, or not an object: refused with a reason, never a crash.
  const std::string bad[] = {"", "null", "[]", "\"x\"", "42", "{", "{\"entry\":[", "\xff\xfe{}", "{\"a\":1}}",
                             std::string(200000, '['), std::string(100000, '{')};
  for (const auto &body : bad) {
    Webhook w;
    std::string error;
    bool ok = parse_webhook(body.data(), body.size(), &w, &error);
    if (!ok) fail_if(error.empty());
    fail_unless(w.calls.empty() && w.statuses.empty());
  }
  // Deep nesting inside strings is not nesting.
  std::string in_string = "{\"entry\":\"" + std::string(1000, '[') + "\"}";
  Webhook w;
  std::string error;
  fail_unless(parse_webhook(in_string.data(), in_string.size(), &w, &error), "%s", error.c_str());

  // Fuzz: every prefix of a real body, and random byte flips of it.
  std::string real = wa_test::merge_webhooks({wa_test::fixture("webhook-terminate-failed.json"),
                                              wa_test::fixture("webhook-connect-business-initiated.json")});
  for (size_t n = 0; n < real.size(); n += 7) {
    Webhook p;
    parse_webhook(real.data(), n, &p, &error);
  }
  GRand *rand = g_rand_new_with_seed(20251121);
  for (int i = 0; i < 3000; i++) {
    std::string mutated = real;
    int flips = g_rand_int_range(rand, 1, 8);
    for (int f = 0; f < flips; f++) {
      size_t at = (size_t)g_rand_int_range(rand, 0, (gint32)mutated.size());
      const char pool[] = "{}[]\":,0a\\ \x01\xc3";
      mutated[at] = pool[g_rand_int_range(rand, 0, (gint32)sizeof pool - 1)];
    }
    Webhook p;
    parse_webhook(mutated.data(), mutated.size(), &p, &error);
  }
  g_rand_free(rand);
}
GST_END_TEST;

// Bodies json-glib would recurse 100 000 levels into (a stack overflow) while a scan that knows
// only double-quoted strings sees no nesting: a /* */ comment or a single-quoted string holding a
// '"' flips that scan into "inside a string" across the brackets. json-glib accepts both forms.
std::string hidden_nesting(const std::string &opener, const std::string &closer) {
  const size_t depth = 100000;
  return "{\"object\":\"whatsapp_business_account\",\"a\":" + opener + std::string(depth, '[') +
         std::string(depth, ']') + closer + "}";
}

GST_START_TEST(test_parse_hidden_nesting) {
  const std::string bodies[] = {
      hidden_nesting("/*\"*/", "/*\"*/"),           // comments
      hidden_nesting("'\"',\"b\":", ",\"c\":'\"'"),  // single-quoted strings
  };
  for (const auto &body : bodies) {
    Webhook w;
    std::string error;
    fail_if(parse_webhook(body.data(), body.size(), &w, &error), "a non-strict body was accepted");
    fail_unless(error.find("not strict JSON") != std::string::npos, "error: %s", error.c_str());
  }
  // Plain deep nesting: the error says so.
  std::string deep = "{\"entry\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  Webhook w;
  std::string error;
  fail_if(parse_webhook(deep.data(), deep.size(), &w, &error));
  fail_unless(error.find("nested deeper than 64 levels") != std::string::npos, "error: %s", error.c_str());
}
GST_END_TEST;

GST_START_TEST(test_parse_legacy_sdp_hostile) {
  // The legacy connection.webrtc.sdp is JSON inside a string: its brackets are not nesting of the
  // body, so it needs its own depth check. Refused, the call event has no SDP (and is rejected as
  // any connect without an offer); the rest of the body is still read.
  JsonParser *parser = json_parser_new();
  std::string text = wa_test::fixture("webhook-connect-user-initiated.json");
  fail_unless(json_parser_load_from_data(parser, text.data(), -1, nullptr));
  auto first = [](JsonObject *o, const char *array) {
    return json_node_get_object(json_array_get_element(json_object_get_array_member(o, array), 0));
  };
  JsonObject *entry = first(json_node_get_object(json_parser_get_root(parser)), "entry");
  JsonObject *call = first(json_object_get_object_member(first(entry, "changes"), "value"), "calls");
  json_object_remove_member(call, "session");
  JsonObject *webrtc = json_object_new();
  json_object_set_string_member(webrtc, "sdp", (std::string(100000, '[') + std::string(100000, ']')).c_str());
  JsonObject *connection = json_object_new();
  json_object_set_object_member(connection, "webrtc", webrtc);
  json_object_set_object_member(call, "connection", connection);
  gchar *body = json_to_string(json_parser_get_root(parser), FALSE);
  Webhook w = parse_ok(body);
  fail_unless_equals_int((int)w.calls.size(), 1);
  fail_unless(w.calls[0].sdp.empty());
  fail_if(w.calls[0].legacy_sdp);
  fail_if(w.calls[0].id.empty());

  // The same with comments hiding the nesting inside the string.
  std::string sneaky = "{/*\"*/\"sdp\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  json_object_set_string_member(webrtc, "sdp", sneaky.c_str());
  g_free(body);
  body = json_to_string(json_parser_get_root(parser), FALSE);
  Webhook s = parse_ok(body);
  fail_unless(s.calls[0].sdp.empty());
  g_free(body);
  g_object_unref(parser);
}
GST_END_TEST;

// ---- delivery rules ----

GST_START_TEST(test_dedupe) {
  SeenEvents seen(3);
  fail_unless(seen.first_time("wacid.1", "connect"));
  fail_if(seen.first_time("wacid.1", "connect"));  // Meta's retry
  fail_unless(seen.first_time("wacid.1", "terminate"));
  fail_unless(seen.first_time("wacid.2", "connect"));
  fail_unless(seen.contains("wacid.1", "connect"));
  // The pair key cannot be forged by moving text between id and event.
  fail_if(seen.contains("wacid.1conn", "ect"));
  // Bounded: a fourth pair pushes out the oldest.
  fail_unless(seen.first_time("wacid.3", "connect"));
  fail_unless_equals_int((int)seen.size(), 3);
  fail_if(seen.contains("wacid.1", "connect"));
  fail_unless(seen.contains("wacid.1", "terminate"));

  // Terminate before connect: the terminate is remembered, so the later connect can be refused.
  SeenEvents order;
  fail_unless(order.first_time("wacid.9", "terminate"));
  fail_unless(order.first_time("wacid.9", "connect"));
  fail_unless(order.contains("wacid.9", "terminate"));

  SeenEvents big(100000);
  for (int i = 0; i < 200000; i++) big.first_time("wacid." + std::to_string(i), "connect");
  fail_unless_equals_int((int)big.size(), 100000);
}
GST_END_TEST;

GST_START_TEST(test_stale) {
  long long now = 1760681806;
  fail_unless(is_stale(now - 301, now, 300));
  fail_if(is_stale(now - 300, now, 300));
  fail_if(is_stale(now - 5, now, 300));
  fail_if(is_stale(now + 30, now, 300));  // a clock ahead of ours is not stale
  fail_if(is_stale(0, now, 300));         // no timestamp: processed
  // The fixtures are from 2025: stale today.
  Webhook w = parse_ok(wa_test::fixture("webhook-connect-user-initiated.json"));
  fail_unless(is_stale(w.calls[0].timestamp, wa_test::now_s(), 300));
}
GST_END_TEST;

static Suite *whatsapp_webhook_suite() {
  Suite *s = suite_create("whatsapp-webhook");
  TCase *sig = tcase_create("signature");
  tcase_add_test(sig, test_signature_valid);
  tcase_add_test(sig, test_signature_refused);
  tcase_add_test(sig, test_constant_time_equal);
  suite_add_tcase(s, sig);
  TCase *parse = tcase_create("parse");
  tcase_set_timeout(parse, 60);
  tcase_add_test(parse, test_parse_connect_user_initiated);
  tcase_add_test(parse, test_parse_terminate_failed);
  tcase_add_test(parse, test_parse_connect_business_initiated);
  tcase_add_test(parse, test_parse_status_ringing);
  tcase_add_test(parse, test_parse_multi_entry);
  tcase_add_test(parse, test_parse_tolerant);
  tcase_add_test(parse, test_parse_garbage);
  tcase_add_test(parse, test_parse_hidden_nesting);
  tcase_add_test(parse, test_parse_legacy_sdp_hostile);
  suite_add_tcase(s, parse);
  TCase *rules = tcase_create("rules");
  tcase_add_test(rules, test_dedupe);
  tcase_add_test(rules, test_stale);
  suite_add_tcase(s, rules);
  return s;
}

GST_CHECK_MAIN(whatsapp_webhook)
