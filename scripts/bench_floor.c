/* The crypto floor of one engram seal, timed in C: what the primitives cost with
 * no Python object or call overhead. Built and run by scripts/bench_engram.py.
 *
 * Each primitive is timed alone with its inputs ready, as the cheapest sound
 * form a C implementation would call it:
 *   sign     BIP-340 signature with a loaded key pair (libsecp256k1)
 *   sha256   SHA-256 of the serialized event (its id)
 *   chacha20 ChaCha20 over the padded body, the context re-keyed per message
 *   hmac     HMAC-SHA256(message key, nonce || ciphertext): two key pads + data
 *   hkdf     HKDF-expand to 76 bytes: three HMACs whose key pads were hashed
 *            once per conversation (what fleetsync's ConversationKey keeps)
 *   ecdh     the x coordinate of the shared point (libsecp256k1, no hashing)
 *   extract  HKDF-extract of the conversation key (salt pads hashed once) and
 *            hashing the new key's pads for later expands
 * A warm seal pays the first five; a cold one (a new conversation) all seven.
 *
 * usage: bench_floor PADDED_LEN EVENT_LEN ITERATIONS REPEATS
 * prints one JSON object: nanoseconds per call, best of REPEATS runs.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <secp256k1.h>
#include <secp256k1_ecdh.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile unsigned char sink;

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void fill(unsigned char *buf, size_t len, unsigned seed) {
    for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(seed * 131u + i * 7u + 1u);
}

/* HMAC pads of a 32-byte key, hashed once: the inner and outer states. */
typedef struct {
    SHA256_CTX inner, outer;
} pads_t;

static void pads_init(pads_t *p, const unsigned char key[32]) {
    unsigned char block[64];
    memset(block, 0x36, 64);
    for (int i = 0; i < 32; i++) block[i] ^= key[i];
    SHA256_Init(&p->inner);
    SHA256_Update(&p->inner, block, 64);
    memset(block, 0x5c, 64);
    for (int i = 0; i < 32; i++) block[i] ^= key[i];
    SHA256_Init(&p->outer);
    SHA256_Update(&p->outer, block, 64);
}

static void pads_mac(const pads_t *p, const unsigned char *a, size_t alen,
                     const unsigned char *b, size_t blen, unsigned char out[32]) {
    SHA256_CTX c = p->inner;
    unsigned char inner[32];
    SHA256_Update(&c, a, alen);
    if (blen) SHA256_Update(&c, b, blen);
    SHA256_Final(inner, &c);
    c = p->outer;
    SHA256_Update(&c, inner, 32);
    SHA256_Final(out, &c);
}

static int copy_x(unsigned char *out, const unsigned char *x, const unsigned char *y, void *data) {
    (void)y;
    (void)data;
    memcpy(out, x, 32);
    return 1;
}

/* Globals the timed bodies read, set up once in main. */
static secp256k1_context *ctx;
static secp256k1_keypair keypair;
static secp256k1_pubkey peer;
static unsigned char secret[32], msg32[32], aux32[32], sig[64], out32[32];
static unsigned char *padded, *ciphertext, *event, *nonce_ct;
static size_t padded_len, event_len;
static unsigned char chacha_key[32], chacha_iv[16], nonce[32], conv_key[32];
static EVP_CIPHER_CTX *cipher;
static pads_t conv_pads, salt_pads;

static void do_sign(void) {
    if (!secp256k1_schnorrsig_sign32(ctx, sig, msg32, &keypair, aux32)) abort();
    sink ^= sig[0];
}

static void do_sha256(void) {
    SHA256(event, event_len, out32);
    sink ^= out32[0];
}

static void do_chacha20(void) {
    int len = 0;
    EVP_EncryptInit_ex(cipher, NULL, NULL, chacha_key, chacha_iv);
    EVP_EncryptUpdate(cipher, ciphertext, &len, padded, (int)padded_len);
    sink ^= ciphertext[0];
}

static void do_hmac(void) {
    pads_t fresh;
    pads_init(&fresh, chacha_key);
    pads_mac(&fresh, nonce_ct, 32 + padded_len, NULL, 0, out32);
    sink ^= out32[0];
}

static void do_hkdf(void) {
    unsigned char t1[32], t2[32], t3[32], info[32 + 32 + 1];
    memcpy(info, nonce, 32);
    info[32] = 1;
    pads_mac(&conv_pads, info, 33, NULL, 0, t1);
    memcpy(info, t1, 32);
    memcpy(info + 32, nonce, 32);
    info[64] = 2;
    pads_mac(&conv_pads, info, 65, NULL, 0, t2);
    memcpy(info, t2, 32);
    info[64] = 3;
    pads_mac(&conv_pads, info, 65, NULL, 0, t3);
    sink ^= t3[0];
}

static void do_ecdh(void) {
    if (!secp256k1_ecdh(ctx, out32, &peer, secret, copy_x, NULL)) abort();
    sink ^= out32[0];
}

static void do_extract(void) {
    pads_t fresh;
    pads_mac(&salt_pads, out32, 32, NULL, 0, conv_key);
    pads_init(&fresh, conv_key);
    sink ^= conv_key[0];
}

static double best_ns(void (*body)(void), long iterations, int repeats) {
    double best = 1e300;
    for (int r = 0; r < repeats; r++) {
        double start = now_ns();
        for (long i = 0; i < iterations; i++) body();
        double per = (now_ns() - start) / (double)iterations;
        if (per < best) best = per;
    }
    return best;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s PADDED_LEN EVENT_LEN ITERATIONS REPEATS\n", argv[0]);
        return 2;
    }
    padded_len = (size_t)atol(argv[1]);
    event_len = (size_t)atol(argv[2]);
    long iterations = atol(argv[3]);
    int repeats = atoi(argv[4]);
    if (!padded_len || !event_len || iterations <= 0 || repeats <= 0) return 2;

    ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    fill(secret, 32, 1);
    fill(msg32, 32, 2);
    fill(aux32, 32, 3);
    if (!secp256k1_keypair_create(ctx, &keypair, secret)) return 1;
    unsigned char peer_secret[32];
    fill(peer_secret, 32, 4);
    if (!secp256k1_ec_pubkey_create(ctx, &peer, peer_secret)) return 1;

    padded = malloc(padded_len);
    ciphertext = malloc(padded_len);
    event = malloc(event_len);
    nonce_ct = malloc(32 + padded_len);
    fill(padded, padded_len, 5);
    fill(event, event_len, 6);
    fill(chacha_key, 32, 7);
    fill(chacha_iv, 16, 8);
    fill(nonce, 32, 9);
    fill(conv_key, 32, 10);
    fill(nonce_ct, 32 + padded_len, 11);
    pads_init(&conv_pads, conv_key);
    pads_init(&salt_pads, (const unsigned char *)"nip44-v2\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    cipher = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex(cipher, EVP_chacha20(), NULL, chacha_key, chacha_iv);

    printf("{\"sign\": %.1f, \"sha256\": %.1f, \"chacha20\": %.1f, \"hmac\": %.1f, "
           "\"hkdf\": %.1f, \"ecdh\": %.1f, \"extract\": %.1f}\n",
           best_ns(do_sign, iterations, repeats), best_ns(do_sha256, iterations * 4, repeats),
           best_ns(do_chacha20, iterations * 4, repeats), best_ns(do_hmac, iterations * 4, repeats),
           best_ns(do_hkdf, iterations * 4, repeats), best_ns(do_ecdh, iterations, repeats),
           best_ns(do_extract, iterations * 4, repeats));
    EVP_CIPHER_CTX_free(cipher);
    secp256k1_context_destroy(ctx);
    return 0;
}
