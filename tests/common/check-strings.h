// String comparison for libcheck tests: gstcheck's fail_unless_equals_string and check's
// ck_assert_str_eq keep only the char pointers, which dangle when they come from a temporary
// std::string (a function's return value). assert_str copies both sides first; a NULL char pointer
// reads "(NULL)".
//
//   assert_str(call.json().str("state"), "ended");
#pragma once

#include <gst/check/gstcheck.h>

#include <string>

namespace check_strings {
inline std::string as_text(const char *s) { return s ? s : "(NULL)"; }
inline std::string as_text(const std::string &s) { return s; }
}  // namespace check_strings

#define assert_str(got, want)                                                                               \
  G_STMT_START {                                                                                           \
    const std::string got_ = check_strings::as_text(got), want_ = check_strings::as_text(want);            \
    fail_unless(got_ == want_, "'%s' is\n%.400s\nbut expected\n%.400s", #got, got_.c_str(), want_.c_str()); \
  }                                                                                                        \
  G_STMT_END
