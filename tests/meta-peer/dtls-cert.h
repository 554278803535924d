// The DTLS identity of the Meta-like peer: its own self-signed certificate and SDP fingerprints.
//
// The peer must not use GStreamer's default DTLS certificate: dtlsdec makes ONE per process (g_once),
// so a webrtcbin bridge in the same test process would show the very same fingerprint, and a bridge
// that wrongly echoes Meta's fingerprint back in its answer would still "match". The peer therefore
// generates its own ECDSA P-256 certificate (what Meta's FAQ recommends: small, no DTLS fragmentation).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace meta_peer {

// A fresh self-signed ECDSA P-256 certificate followed by its PKCS#8 private key, both PEM: the form
// dtlsdec's "pem" property takes. Empty, with *error set, on failure.
std::string make_self_signed_pem(const std::string &common_name, std::string *error);

// The DER bytes of the first CERTIFICATE block in pem (the private key, if any, is ignored).
// Empty if there is none or its base64 is broken.
std::vector<uint8_t> certificate_der_from_pem(const std::string &pem);

// "AA:BB:…" (upper-case hex, colon separated): the SDP form of a sha-256 fingerprint (RFC 8122).
std::string sha256_fingerprint(const std::vector<uint8_t> &der);

// Fingerprints compare case-insensitively (RFC 8122 §5: hex is case-insensitive; aiortc sends
// "SHA-256" and lower-case hex).
bool fingerprints_equal(const std::string &a, const std::string &b);

}  // namespace meta_peer
