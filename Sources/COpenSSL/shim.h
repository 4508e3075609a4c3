// OpenSSL 3 function-like macros do not import into Swift; each wrapper
// below stands for one macro and keeps its C name after the prefix.
#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/rsa.h>
#include <openssl/ec.h>

static inline long COpenSSL_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long COpenSSL_SSL_set_mode(SSL *ssl, long mode) { return SSL_set_mode(ssl, mode); }
static inline long COpenSSL_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int v) { return SSL_CTX_set_min_proto_version(ctx, v); }
// Tests only: a TLS 1.2 client, to show a 1.2 server session keeps OpenSSL.
static inline long COpenSSL_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int v) { return SSL_CTX_set_max_proto_version(ctx, v); }
static inline long COpenSSL_SSL_set_tlsext_host_name(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
static inline long COpenSSL_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long m) { return SSL_CTX_set_session_cache_mode(ctx, m); }
static inline long COpenSSL_BIO_get_mem_data(BIO *b, char **pp) { return BIO_get_mem_data(b, pp); }
static inline size_t COpenSSL_BIO_pending(BIO *b) { return BIO_pending(b); }
static inline void COpenSSL_OPENSSL_free(void *p) { OPENSSL_free(p); }
static inline long COpenSSL_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }
static inline long COpenSSL_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline long COpenSSL_SSL_OP_CIPHER_SERVER_PREFERENCE(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
static inline long COpenSSL_SSL_MODE_RELEASE_BUFFERS(void) { return SSL_MODE_RELEASE_BUFFERS; }
static inline long COpenSSL_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER(void) { return SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER; }
static inline long COpenSSL_SSL_MODE_ENABLE_PARTIAL_WRITE(void) { return SSL_MODE_ENABLE_PARTIAL_WRITE; }
// PeekTLS (TLSContext, TLSSession, CertificateBuilder):
// SSL_CTX_set1_groups_list is an SSL_CTX_ctrl macro.
static inline long COpenSSL_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) { return SSL_CTX_set1_groups_list(ctx, list); }
// SSL_OP_NO_TICKET is built by the SSL_OP_BIT() macro.
static inline long COpenSSL_SSL_OP_NO_TICKET(void) { return SSL_OP_NO_TICKET; }
// BIO_get_mem_ptr is a BIO_ctrl macro; PeekTLS reads the BUF_MEM capacity to release idle buffers.
static inline long COpenSSL_BIO_get_mem_ptr(BIO *b, BUF_MEM **pp) { return BIO_get_mem_ptr(b, pp); }
// sk_GENERAL_NAME_num / sk_GENERAL_NAME_value are type-checking stack macros.
static inline int COpenSSL_sk_GENERAL_NAME_num(const GENERAL_NAMES *names) { return sk_GENERAL_NAME_num(names); }
static inline GENERAL_NAME *COpenSSL_sk_GENERAL_NAME_value(const GENERAL_NAMES *names, int i) { return sk_GENERAL_NAME_value(names, i); }
// SSL_set0_verify_cert_store is an SSL_ctrl macro; the agent listener gives
// each session the current CA + CRL store (ClientTrustStore).
static inline long COpenSSL_SSL_set0_verify_cert_store(SSL *s, X509_STORE *st) { return SSL_set0_verify_cert_store(s, st); }
#endif
