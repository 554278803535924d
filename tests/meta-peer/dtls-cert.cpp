#include "dtls-cert.h"

#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace meta_peer {

namespace {

// Owns the GnuTLS objects of one generation so that every early return frees them.
struct Generation {
  gnutls_x509_privkey_t key = nullptr;
  gnutls_x509_crt_t crt = nullptr;
  gnutls_datum_t crt_pem = {nullptr, 0};
  gnutls_datum_t key_pem = {nullptr, 0};
  ~Generation() {
    if (crt_pem.data) gnutls_free(crt_pem.data);
    if (key_pem.data) gnutls_free(key_pem.data);
    if (crt) gnutls_x509_crt_deinit(crt);
    if (key) gnutls_x509_privkey_deinit(key);
  }
};

bool check(int rc, const char *what, std::string *error) {
  if (rc >= 0) return true;
  if (error) *error = std::string(what) + ": " + gnutls_strerror(rc);
  return false;
}

}  // namespace

std::string make_self_signed_pem(const std::string &common_name, std::string *error) {
  Generation g;
  if (!check(gnutls_x509_privkey_init(&g.key), "privkey_init", error)) return {};
  if (!check(gnutls_x509_privkey_generate(g.key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
             "generate P-256 key", error))
    return {};
  if (!check(gnutls_x509_crt_init(&g.crt), "crt_init", error)) return {};

  uint8_t serial[8];
  for (auto &b : serial) b = (uint8_t)g_random_int_range(0, 256);
  serial[0] &= 0x7f;  // a positive INTEGER
  time_t now = time(nullptr);
  if (!check(gnutls_x509_crt_set_version(g.crt, 3), "set_version", error) ||
      !check(gnutls_x509_crt_set_serial(g.crt, serial, sizeof serial), "set_serial", error) ||
      // An hour of slack before "now" so that a clock a little behind on the other side still accepts it.
      !check(gnutls_x509_crt_set_activation_time(g.crt, now - 3600), "set_activation_time", error) ||
      !check(gnutls_x509_crt_set_expiration_time(g.crt, now + 30 * 24 * 3600), "set_expiration_time", error) ||
      !check(gnutls_x509_crt_set_dn_by_oid(g.crt, GNUTLS_OID_X520_COMMON_NAME, 0, common_name.data(),
                                           (unsigned)common_name.size()),
             "set_dn", error) ||
      !check(gnutls_x509_crt_set_key(g.crt, g.key), "set_key", error) ||
      // Self-signed: the certificate is its own issuer.
      !check(gnutls_x509_crt_sign2(g.crt, g.crt, g.key, GNUTLS_DIG_SHA256, 0), "sign", error))
    return {};

  if (!check(gnutls_x509_crt_export2(g.crt, GNUTLS_X509_FMT_PEM, &g.crt_pem), "export certificate", error) ||
      // PKCS#8 ("BEGIN PRIVATE KEY"): OpenSSL's PEM_read_bio_PrivateKey, which dtlsdec uses, reads it.
      !check(gnutls_x509_privkey_export2_pkcs8(g.key, GNUTLS_X509_FMT_PEM, nullptr, GNUTLS_PKCS_PLAIN, &g.key_pem),
             "export key", error))
    return {};

  std::string pem(reinterpret_cast<const char *>(g.crt_pem.data), g.crt_pem.size);
  if (!pem.empty() && pem.back() != '\n') pem += '\n';
  pem.append(reinterpret_cast<const char *>(g.key_pem.data), g.key_pem.size);
  return pem;
}

std::vector<uint8_t> certificate_der_from_pem(const std::string &pem) {
  static const char kBegin[] = "-----BEGIN CERTIFICATE-----";
  static const char kEnd[] = "-----END CERTIFICATE-----";
  size_t begin = pem.find(kBegin);
  if (begin == std::string::npos) return {};
  begin += strlen(kBegin);
  size_t end = pem.find(kEnd, begin);
  if (end == std::string::npos) return {};
  std::string body;
  for (size_t i = begin; i < end; i++)
    if (!isspace((unsigned char)pem[i])) body += pem[i];
  if (body.empty()) return {};
  gsize len = 0;
  guchar *der = g_base64_decode(body.c_str(), &len);
  std::vector<uint8_t> out(der, der + len);
  g_free(der);
  return out;
}

std::string sha256_fingerprint(const std::vector<uint8_t> &der) {
  if (der.empty()) return {};
  GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
  g_checksum_update(sum, der.data(), der.size());
  guint8 digest[32];
  gsize len = sizeof digest;
  g_checksum_get_digest(sum, digest, &len);
  g_checksum_free(sum);
  std::string out;
  char hex[4];
  for (gsize i = 0; i < len; i++) {
    snprintf(hex, sizeof hex, i ? ":%02X" : "%02X", digest[i]);
    out += hex;
  }
  return out;
}

bool fingerprints_equal(const std::string &a, const std::string &b) {
  return !a.empty() && a.size() == b.size() && g_ascii_strcasecmp(a.c_str(), b.c_str()) == 0;
}

}  // namespace meta_peer
