/*
 * bump.c: a C wallet behind lnshard's wallet callbacks (lnshard_wallet), funding an
 * anchor channel and bumping a force-closed commitment by CPFP; and a C fee estimator the
 * engines ask on every block (lnshard_fee_estimator).
 *
 * Two engines in one process talk BOLT 8 (the program carries the bytes a socket would,
 * as two_nodes.c does). Channels are option_anchors_zero_fee_htlc_tx: both engines offer
 * it (the default of lnshard_engine_config_default) and the program checks the bump
 * request names an anchor. Alice's wallet holds coins paid by a fabricated transaction to
 * P2WSH outputs whose witness script is OP_TRUE: "signing" one is putting the script in its
 * witness, so this program needs no cryptography. A real wallet signs its inputs with its
 * keys (for P2WPKH: a signature and a public key in the witness); lnshard never sees them.
 *
 * Alice funds the channel from her wallet (lnshard_engine_fund_channel), the fabricated
 * blocks confirm it, the estimator's lower background estimate makes Alice's engine lower
 * the commitment's feerate (update_fee), Alice pays Bob an HTLC that Bob holds, Alice
 * force-closes, and her engine asks for fees (an ON_CHAIN event of kind BUMP_NEEDED).
 * lnshard_engine_bump answers it: a child spending Alice's anchor (signed by her engine) and
 * a wallet coin (signed by the wallet), change to the wallet. The commitment and the child
 * are relayed together and mined. When the HTLC expires, her engine asks for fees for its
 * zero-fee HTLC-timeout transaction: lnshard_engine_bump completes it with a wallet coin and
 * change. The program prints every transaction as hex (crates/ffi/tests/c_programs.rs
 * verifies each input with libbitcoinconsensus).
 *
 * `bump rebump` answers every request with a lnshard_bumper instead: this chain's mempool
 * floor (MEMPOOL_FLOOR_PER_KW, checked on the package's real fee and weight) is above the
 * request's feerate, so the first package is refused; each block the engine asks again and
 * the bumper replaces the child with one spending the same coins with more fee (BIP 125)
 * until the package gets in and confirms; six blocks later the bumper releases the coins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lnshard.h"

#define CHECK(call) check((call), #call, __LINE__)

static void check(lnshard_result r, const char *what, int line) {
    char msg[1024];
    size_t n = 0;
    if (r == LNSHARD_RESULT_OK) {
        return;
    }
    if (lnshard_last_error_message(msg, sizeof msg, &n) != LNSHARD_RESULT_OK) {
        strcpy(msg, "(no message)");
    }
    fprintf(stderr, "bump.c:%d: %s returned %u: %s\n", line, what, (unsigned)r, msg);
    exit(1);
}

static void print_hex(const char *label, const uint8_t *b, size_t n) {
    size_t i;
    printf("%s: ", label);
    for (i = 0; i < n; i++) {
        printf("%02x", b[i]);
    }
    printf("\n");
}

/* The feerate the bump asks for (sat per 1000 weight): 20 sat/vB. */
#define BUMP_FEERATE_PER_KW 5000u
/* `rebump`: the chain's mempool refuses a package below this (sat per 1000 weight). */
#define MEMPOOL_FLOOR_PER_KW 5000u
/* What the estimator answers: the channel's commitment follows `background`. */
#define ESTIMATE_URGENT 4000u
#define ESTIMATE_NORMAL 2000u
#define ESTIMATE_BACKGROUND 1000u

/* ---- The fee estimator: fixed answers, counting its calls. ---- */
typedef struct {
    const char *name;
    unsigned calls;
} estimator_state;

static int estimate(void *userdata, lnshard_fee_estimates *out) {
    estimator_state *state = userdata;
    state->calls++;
    out->urgent = ESTIMATE_URGENT;
    out->normal = ESTIMATE_NORMAL;
    out->background = ESTIMATE_BACKGROUND;
    return 0;
}

/* ---- Alice's wallet: OP_TRUE coins. ---- */

/* P2WSH of the witness script OP_TRUE (0x51): OP_0, then SHA-256(0x51). */
static const uint8_t OP_TRUE_P2WSH[34] = {
    0x00, 0x20, 0x4a, 0xe8, 0x15, 0x72, 0xf0, 0x6e, 0x1b, 0x88, 0xfd, 0x5c,
    0xed, 0x7a, 0x1a, 0x00, 0x09, 0x45, 0x43, 0x2e, 0x83, 0xe1, 0x55, 0x1e,
    0x6f, 0x72, 0x1e, 0xe9, 0xc0, 0x0b, 0x8c, 0xc3, 0x32, 0x60};
/* The witness of an OP_TRUE input: its count (1), then the script (length 1, 0x51). The
 * satisfaction weight of such a coin is these 3 bytes. */
static const uint8_t OP_TRUE_WITNESS[3] = {0x01, 0x01, 0x51};
/* Change goes to a P2WPKH of the wallet's (a made-up key hash: never spent here). */
static uint8_t change_script[22];

#define COINS 3
typedef struct {
    lnshard_outpoint outpoint;
    uint64_t value_sat;
    int reserved;
} coin;

typedef struct {
    coin coins[COINS];
    size_t len;
    unsigned listed, reserved_calls, released_calls, signed_calls;
} wallet_state;

static int wallet_list_spendable(void *userdata, lnshard_wallet_sink *sink) {
    wallet_state *w = userdata;
    size_t i;
    w->listed++;
    for (i = 0; i < w->len; i++) {
        lnshard_utxo u;
        if (w->coins[i].reserved) {
            continue;
        }
        u.outpoint = w->coins[i].outpoint;
        u.value_sat = w->coins[i].value_sat;
        u.script_pubkey = OP_TRUE_P2WSH;
        u.script_pubkey_len = sizeof OP_TRUE_P2WSH;
        u.satisfaction_weight = sizeof OP_TRUE_WITNESS;
        if (lnshard_wallet_sink_push_utxo(sink, &u) != LNSHARD_RESULT_OK) {
            return -1;
        }
    }
    return LNSHARD_WALLET_OK;
}

static coin *find_coin(wallet_state *w, const lnshard_outpoint *o) {
    size_t i;
    for (i = 0; i < w->len; i++) {
        if (w->coins[i].outpoint.vout == o->vout &&
            memcmp(w->coins[i].outpoint.txid, o->txid, 32) == 0) {
            return &w->coins[i];
        }
    }
    return NULL;
}

/* All or none (a real wallet holds a lock here: other threads may reserve at once). */
static int wallet_reserve(void *userdata, const lnshard_reservation *purpose,
                          const lnshard_outpoint *outpoints, size_t len, size_t *out_conflict) {
    wallet_state *w = userdata;
    size_t i;
    w->reserved_calls++;
    for (i = 0; i < len; i++) {
        coin *c = find_coin(w, &outpoints[i]);
        if (c == NULL || c->reserved) {
            *out_conflict = i;
            return c == NULL ? LNSHARD_WALLET_UNKNOWN_UTXO : LNSHARD_WALLET_ALREADY_RESERVED;
        }
    }
    for (i = 0; i < len; i++) {
        find_coin(w, &outpoints[i])->reserved = 1;
    }
    printf("wallet: reserved %zu coin(s) for purpose %u\n", len, (unsigned)purpose->kind);
    return LNSHARD_WALLET_OK;
}

static int wallet_release(void *userdata, const lnshard_outpoint *outpoints, size_t len) {
    wallet_state *w = userdata;
    size_t i;
    w->released_calls++;
    for (i = 0; i < len; i++) {
        coin *c = find_coin(w, &outpoints[i]);
        if (c != NULL) {
            c->reserved = 0;
        }
    }
    return LNSHARD_WALLET_OK;
}

/* ---- Transaction bytes (a reader and a writer of the consensus serialization). ---- */
typedef struct {
    const uint8_t *b;
    size_t at, end;
    int ok;
} reader;

static uint64_t read_varint(reader *r) {
    uint8_t first;
    size_t n, i;
    uint64_t v = 0;
    if (r->at >= r->end) {
        r->ok = 0;
        return 0;
    }
    first = r->b[r->at++];
    if (first < 0xfd) {
        return first;
    }
    n = first == 0xfd ? 2 : first == 0xfe ? 4 : 8;
    if (r->end - r->at < n) {
        r->ok = 0;
        return 0;
    }
    for (i = 0; i < n; i++) {
        v |= (uint64_t)r->b[r->at + i] << (8 * i);
    }
    r->at += n;
    return v;
}

/* Skips n bytes; returns where they start. */
static size_t skip(reader *r, uint64_t n) {
    size_t start = r->at;
    if (!r->ok || n > r->end - r->at) {
        r->ok = 0;
        return start;
    }
    r->at += (size_t)n;
    return start;
}

typedef struct {
    uint8_t *b;
    size_t len, cap;
} writer;

static void put(writer *w, const uint8_t *data, size_t n) {
    if (w->len + n > w->cap) {
        size_t cap = (w->len + n) * 2;
        uint8_t *b = realloc(w->b, cap);
        if (b == NULL) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        w->b = b;
        w->cap = cap;
    }
    if (n > 0) {
        memcpy(w->b + w->len, data, n);
    }
    w->len += n;
}

static void put_varint(writer *w, uint64_t v) {
    uint8_t b[9];
    size_t n = 1, i;
    if (v < 0xfd) {
        b[0] = (uint8_t)v;
    } else {
        n = v <= 0xffff ? 3 : v <= 0xffffffffu ? 5 : 9;
        b[0] = n == 3 ? 0xfd : n == 5 ? 0xfe : 0xff;
        for (i = 1; i < n; i++) {
            b[i] = (uint8_t)(v >> (8 * (i - 1)));
        }
    }
    put(w, b, n);
}

#define MAX_INPUTS 64

/* Signs the wallet's inputs: those spending an OP_TRUE coin get the witness [OP_TRUE];
 * every other input keeps its witness (the anchor's, signed by the engine). The
 * transaction is read and written again in the segwit serialization. */
static int wallet_sign_inputs(void *userdata, const uint8_t *tx, size_t tx_len,
                              const lnshard_txout *prevouts, size_t prevouts_len,
                              lnshard_wallet_sink *sink) {
    wallet_state *w = userdata;
    reader r = {tx, 0, tx_len, 1};
    writer out = {NULL, 0, 0};
    size_t body_start, body_end, witness_start[MAX_INPUTS], witness_end[MAX_INPUTS];
    uint64_t inputs, outputs, i, j;
    int segwit, result;
    w->signed_calls++;
    skip(&r, 4); /* version */
    segwit = r.ok && r.end - r.at >= 2 && tx[r.at] == 0x00 && tx[r.at + 1] == 0x01;
    if (segwit) {
        skip(&r, 2);
    }
    body_start = r.at;
    inputs = read_varint(&r);
    if (!r.ok || inputs != prevouts_len || inputs > MAX_INPUTS) {
        return -1;
    }
    for (i = 0; i < inputs; i++) {
        skip(&r, 36);
        skip(&r, read_varint(&r)); /* scriptSig */
        skip(&r, 4);               /* sequence */
    }
    outputs = read_varint(&r);
    for (i = 0; i < outputs; i++) {
        skip(&r, 8);
        skip(&r, read_varint(&r));
    }
    body_end = r.at;
    for (i = 0; i < inputs; i++) {
        witness_start[i] = witness_end[i] = r.at;
        if (segwit) {
            uint64_t items = read_varint(&r);
            for (j = 0; j < items && r.ok; j++) {
                skip(&r, read_varint(&r));
            }
            witness_end[i] = r.at;
        }
    }
    skip(&r, 4); /* lock time */
    if (!r.ok || r.at != r.end) {
        return -1;
    }
    put(&out, tx, 4);
    put(&out, (const uint8_t *)"\x00\x01", 2);
    put(&out, tx + body_start, body_end - body_start);
    for (i = 0; i < inputs; i++) {
        int ours = prevouts[i].script_pubkey_len == sizeof OP_TRUE_P2WSH &&
                   memcmp(prevouts[i].script_pubkey, OP_TRUE_P2WSH, sizeof OP_TRUE_P2WSH) == 0;
        if (ours) {
            put(&out, OP_TRUE_WITNESS, sizeof OP_TRUE_WITNESS);
        } else if (witness_end[i] > witness_start[i]) {
            put(&out, tx + witness_start[i], witness_end[i] - witness_start[i]);
        } else {
            put_varint(&out, 0);
        }
    }
    put(&out, tx + tx_len - 4, 4);
    result = lnshard_wallet_sink_push_bytes(sink, out.b, out.len) == LNSHARD_RESULT_OK
                 ? LNSHARD_WALLET_OK
                 : -1;
    free(out.b);
    return result;
}

static int wallet_change_script(void *userdata, lnshard_wallet_sink *sink) {
    (void)userdata;
    return lnshard_wallet_sink_push_bytes(sink, change_script, sizeof change_script) ==
                   LNSHARD_RESULT_OK
               ? LNSHARD_WALLET_OK
               : -1;
}

static wallet_state alice_coins;
static lnshard_wallet alice_wallet;

/* The fabricated transaction paying the wallet's coins: one made-up input, one P2WSH
 * (OP_TRUE) output per coin. Returns its serialization (the caller frees it). */
static writer fabricate_wallet_funding(const uint64_t *values, size_t n) {
    writer w = {NULL, 0, 0};
    uint8_t made_up[36];
    size_t i, k;
    memset(made_up, 0x77, sizeof made_up);
    put(&w, (const uint8_t *)"\x02\x00\x00\x00", 4); /* version 2 */
    put_varint(&w, 1);
    put(&w, made_up, 36);
    put_varint(&w, 0);                               /* scriptSig */
    put(&w, (const uint8_t *)"\xff\xff\xff\xff", 4); /* sequence */
    put_varint(&w, n);
    for (i = 0; i < n; i++) {
        uint8_t value[8];
        for (k = 0; k < 8; k++) {
            value[k] = (uint8_t)(values[i] >> (8 * k));
        }
        put(&w, value, 8);
        put_varint(&w, sizeof OP_TRUE_P2WSH);
        put(&w, OP_TRUE_P2WSH, sizeof OP_TRUE_P2WSH);
    }
    put(&w, (const uint8_t *)"\x00\x00\x00\x00", 4); /* lock time */
    return w;
}

/* ---- Nodes, the simulated chain (as in two_nodes.c). ---- */
typedef struct {
    const char *name;
    lnshard_engine *engine;
    lnshard_node_id id;
    uint64_t conn;
    estimator_state estimator;
} node;

#define MAX_MEMPOOL 16
typedef struct {
    uint8_t *b;
    size_t len;
} raw_tx;
static raw_tx mempool[MAX_MEMPOOL];
static size_t mempool_len;
static uint32_t height = 100;

static void block_hash(uint32_t h, lnshard_block_hash *out) {
    memset(out->bytes, 0x42, sizeof out->bytes);
    out->bytes[0] = (uint8_t)h;
    out->bytes[1] = (uint8_t)(h >> 8);
    out->bytes[2] = (uint8_t)(h >> 16);
    out->bytes[3] = (uint8_t)(h >> 24);
}

/* Adds a copy of the transaction to the mempool (once). */
static void broadcast(const uint8_t *b, size_t len) {
    size_t i;
    for (i = 0; i < mempool_len; i++) {
        if (mempool[i].len == len && memcmp(mempool[i].b, b, len) == 0) {
            return;
        }
    }
    if (mempool_len == MAX_MEMPOOL) {
        fprintf(stderr, "mempool full\n");
        exit(1);
    }
    mempool[mempool_len].b = malloc(len);
    if (mempool[mempool_len].b == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memcpy(mempool[mempool_len].b, b, len);
    mempool[mempool_len].len = len;
    mempool_len++;
}

static void broadcast_bytes(const lnshard_bytes *tx) {
    broadcast(lnshard_bytes_data(tx), lnshard_bytes_len(tx));
}

static lnshard_channel_id channel_id;
static uint8_t funding_outpoint[36]; /* the channel's funding output: txid, index (LE) */
static uint64_t channel_value_sat;
static int rebump_mode;
static lnshard_bumper *bumper;
static int packages_refused, children_printed;
static lnshard_txid bumped_txid; /* the commitment the bumper bumps */

/* What the chain needs of a transaction: the outpoints it spends, its output values, its
 * weight. */
typedef struct {
    size_t inputs, outputs;
    uint8_t spends[MAX_INPUTS][36];
    uint64_t values[MAX_INPUTS];
    uint64_t weight;
} parsed_tx;

static int parse_tx(const uint8_t *tx, size_t len, parsed_tx *p) {
    reader r = {tx, 0, len, 1};
    size_t witness_start, i, k;
    int segwit;
    skip(&r, 4);
    segwit = r.ok && r.end - r.at >= 2 && tx[r.at] == 0x00 && tx[r.at + 1] == 0x01;
    if (segwit) {
        skip(&r, 2);
    }
    p->inputs = (size_t)read_varint(&r);
    if (!r.ok || p->inputs > MAX_INPUTS) {
        return 0;
    }
    for (i = 0; i < p->inputs; i++) {
        size_t at = skip(&r, 36);
        if (r.ok) {
            memcpy(p->spends[i], tx + at, 36);
        }
        skip(&r, read_varint(&r));
        skip(&r, 4);
    }
    p->outputs = (size_t)read_varint(&r);
    if (!r.ok || p->outputs > MAX_INPUTS) {
        return 0;
    }
    for (i = 0; i < p->outputs; i++) {
        size_t at = skip(&r, 8);
        p->values[i] = 0;
        for (k = 0; r.ok && k < 8; k++) {
            p->values[i] |= (uint64_t)tx[at + k] << (8 * k);
        }
        skip(&r, read_varint(&r));
    }
    witness_start = r.at;
    if (segwit) {
        for (i = 0; i < p->inputs; i++) {
            uint64_t items = read_varint(&r), j;
            for (j = 0; j < items && r.ok; j++) {
                skip(&r, read_varint(&r));
            }
        }
    }
    skip(&r, 4);
    if (!r.ok || r.at != r.end) {
        return 0;
    }
    /* Weight: the bytes without witness (marker, flag, witnesses) count four times. */
    p->weight = 3 * (uint64_t)(len - (segwit ? 2 + (r.at - 4 - witness_start) : 0)) + len;
    return 1;
}

static uint64_t sum_outputs(const parsed_tx *p) {
    uint64_t total = 0;
    size_t i;
    for (i = 0; i < p->outputs; i++) {
        total += p->values[i];
    }
    return total;
}

static int channels_ready, commitment_bumped, funding_spent, commitments_held, htlc_bumped;
static uint64_t short_channel_id;

/* Whether the transaction's first input spends the channel's funding output: a commitment
 * (or a cooperative close, which never happens here). */
static int spends_funding(const uint8_t *tx, size_t len) {
    reader r = {tx, 0, len, 1};
    skip(&r, 4);
    if (r.ok && r.end - r.at >= 2 && tx[r.at] == 0x00 && tx[r.at + 1] == 0x01) {
        skip(&r, 2);
    }
    if (read_varint(&r) == 0 || !r.ok || r.end - r.at < 36) {
        return 0;
    }
    return memcmp(tx + r.at, funding_outpoint, 36) == 0;
}

/* The package's feerate (sat per 1000 weight) from its real fees and weights: the
 * commitment spends the funding output, the child the commitment's anchor and wallet
 * coins. 0 when a parent is unknown. */
static uint64_t package_feerate(const lnshard_bytes *commitment, const lnshard_bytes *child) {
    parsed_tx parent, kid;
    lnshard_txid parent_txid;
    uint64_t inputs = 0, fee;
    size_t i;
    if (!parse_tx(lnshard_bytes_data(commitment), lnshard_bytes_len(commitment), &parent) ||
        !parse_tx(lnshard_bytes_data(child), lnshard_bytes_len(child), &kid)) {
        return 0;
    }
    CHECK(lnshard_transaction_txid(lnshard_bytes_data(commitment), lnshard_bytes_len(commitment),
                                   &parent_txid));
    for (i = 0; i < kid.inputs; i++) {
        uint32_t vout = (uint32_t)kid.spends[i][32] | (uint32_t)kid.spends[i][33] << 8 |
                        (uint32_t)kid.spends[i][34] << 16 | (uint32_t)kid.spends[i][35] << 24;
        lnshard_outpoint o;
        coin *c;
        memcpy(o.txid, kid.spends[i], 32);
        o.vout = vout;
        if (memcmp(o.txid, parent_txid.bytes, 32) == 0 && vout < parent.outputs) {
            inputs += parent.values[vout];
        } else if ((c = find_coin(&alice_coins, &o)) != NULL) {
            inputs += c->value_sat;
        } else {
            return 0;
        }
    }
    fee = (channel_value_sat - sum_outputs(&parent)) + (inputs - sum_outputs(&kid));
    return fee * 1000 / (parent.weight + kid.weight);
}

/* `rebump`: every request goes to the bumper; what it gives is relayed if the package
 * reaches the mempool floor. */
static void relay_with_bumper(node *self, lnshard_event *ev) {
    lnshard_bytes *commitment = NULL, *child = NULL;
    uint64_t feerate;
    char label[64];
    CHECK(lnshard_bumper_handle(bumper, self->engine, &alice_wallet, ev, height, &commitment,
                                &child));
    if (commitment == NULL || child == NULL) {
        lnshard_bytes_free(commitment);
        return; /* nothing to relay */
    }
    feerate = package_feerate(commitment, child);
    if (children_printed == 0) {
        print_hex("rebump commitment", lnshard_bytes_data(commitment),
                  lnshard_bytes_len(commitment));
        CHECK(lnshard_transaction_txid(lnshard_bytes_data(commitment),
                                       lnshard_bytes_len(commitment), &bumped_txid));
    }
    snprintf(label, sizeof label, "rebump child %d", children_printed++);
    print_hex(label, lnshard_bytes_data(child), lnshard_bytes_len(child));
    if (feerate < MEMPOOL_FLOOR_PER_KW) {
        packages_refused++;
        printf("chain: package at %llu sat/kw below the floor %u: refused\n",
               (unsigned long long)feerate, MEMPOOL_FLOOR_PER_KW);
    } else {
        printf("chain: package at %llu sat/kw accepted\n", (unsigned long long)feerate);
        broadcast_bytes(commitment);
        broadcast_bytes(child);
        commitment_bumped = 1;
    }
    lnshard_bytes_free(commitment);
    lnshard_bytes_free(child);
}

static void handle_onchain(node *self, lnshard_event *ev) {
    lnshard_onchain_event o;
    CHECK(lnshard_event_onchain(ev, &o));
    if (o.kind == LNSHARD_ONCHAIN_KIND_FUNDING_SPENT) {
        funding_spent++;
        printf("%s: on chain: funding spent (spend kind %u)\n", self->name,
               (unsigned)o.spend_kind);
        return;
    }
    if (o.kind != LNSHARD_ONCHAIN_KIND_BUMP_NEEDED) {
        printf("%s: on chain: event kind %u\n", self->name, (unsigned)o.kind);
        return;
    }
    printf("%s: on chain: fees needed by height %u at %u sat/kw (at most %llu sat)%s\n",
           self->name, (unsigned)o.deadline, (unsigned)o.feerate_per_kw,
           (unsigned long long)o.max_fee_sat, o.has_anchor ? ", anchor to spend" : "");
    if (strcmp(self->name, "alice") != 0) {
        /* Bob went on chain too (Alice's error message closed the channel for him): his
         * commitment conflicts with Alice's, and he has no wallet in this program. */
        printf("%s: no wallet here: not bumped\n", self->name);
        return;
    }
    if (!o.has_anchor) {
        /* Our HTLC-timeout transaction (zero fee; the peer signed it with
         * SIGHASH_SINGLE|ANYONECANPAY): completed with a wallet coin and change. */
        lnshard_bytes *htlc_tx = NULL, *none = NULL;
        if (rebump_mode || !commitment_bumped) {
            fprintf(stderr, "%s: the commitment of an anchor channel has our anchor\n",
                    self->name);
            exit(1);
        }
        if (htlc_bumped) {
            return; /* in the mempool already */
        }
        CHECK(lnshard_engine_bump(self->engine, &alice_wallet, ev, BUMP_FEERATE_PER_KW, &htlc_tx,
                                  &none));
        if (none != NULL) {
            fprintf(stderr, "an HTLC transaction's bump has no child\n");
            exit(1);
        }
        print_hex("htlc bump", lnshard_bytes_data(htlc_tx), lnshard_bytes_len(htlc_tx));
        broadcast_bytes(htlc_tx);
        lnshard_bytes_free(htlc_tx);
        htlc_bumped = 1;
        return;
    }
    if (rebump_mode) {
        relay_with_bumper(self, ev);
        return;
    }
    if (commitment_bumped) {
        /* Asked again every block until it confirms: the first package is in the mempool
         * already (`bump rebump` answers every request with a lnshard_bumper). */
        return;
    }
    {
        lnshard_bytes *commitment = NULL, *child = NULL;
        CHECK(lnshard_engine_bump(self->engine, &alice_wallet, ev, BUMP_FEERATE_PER_KW,
                                  &commitment, &child));
        if (child == NULL) {
            fprintf(stderr, "a commitment's bump has a child\n");
            exit(1);
        }
        printf("bump feerate: %u\n", BUMP_FEERATE_PER_KW);
        print_hex("bump commitment", lnshard_bytes_data(commitment),
                  lnshard_bytes_len(commitment));
        print_hex("bump child", lnshard_bytes_data(child), lnshard_bytes_len(child));
        /* A package: the parent first. */
        broadcast_bytes(commitment);
        broadcast_bytes(child);
        lnshard_bytes_free(commitment);
        lnshard_bytes_free(child);
        commitment_bumped = 1;
    }
}

static void handle_event(node *self, lnshard_event *ev) {
    switch (lnshard_event_get_kind(ev)) {
    case LNSHARD_EVENT_KIND_FUNDING_GENERATION_READY: {
        lnshard_bytes *tx = NULL;
        CHECK(lnshard_event_channel_value_satoshis(ev, &channel_value_sat));
        CHECK(lnshard_engine_fund_channel(self->engine, &alice_wallet, ev, 2500, &tx));
        print_hex("channel funding", lnshard_bytes_data(tx), lnshard_bytes_len(tx));
        /* Not broadcast here: the engine emits BROADCAST_TRANSACTION for it once the peer's
         * funding_signed arrives. */
        lnshard_bytes_free(tx);
        break;
    }
    case LNSHARD_EVENT_KIND_CHANNEL_PENDING: {
        uint32_t vout = 0;
        lnshard_txid funding_txid;
        CHECK(lnshard_event_channel_id(ev, &channel_id));
        CHECK(lnshard_event_funding_txo(ev, &funding_txid, &vout));
        memcpy(funding_outpoint, funding_txid.bytes, 32);
        funding_outpoint[32] = (uint8_t)vout;
        funding_outpoint[33] = (uint8_t)(vout >> 8);
        funding_outpoint[34] = (uint8_t)(vout >> 16);
        funding_outpoint[35] = (uint8_t)(vout >> 24);
        printf("%s: channel pending\n", self->name);
        break;
    }
    case LNSHARD_EVENT_KIND_CHANNEL_READY: {
        bool found = false;
        CHECK(lnshard_event_short_channel_id(ev, &short_channel_id, &found));
        channels_ready++;
        printf("%s: channel ready\n", self->name);
        break;
    }
    case LNSHARD_EVENT_KIND_PAYMENT_CLAIMABLE:
        /* Bob holds it (never claims nor fails it): the HTLC is on the commitment when
         * Alice force-closes, and Alice times it out on chain. */
        printf("%s: payment claimable: held\n", self->name);
        break;
    case LNSHARD_EVENT_KIND_CHANNEL_CLOSED:
        printf("%s: channel closed\n", self->name);
        break;
    case LNSHARD_EVENT_KIND_ON_CHAIN:
        handle_onchain(self, ev);
        break;
    case LNSHARD_EVENT_KIND_BROADCAST_TRANSACTION: {
        lnshard_bytes *tx = NULL;
        CHECK(lnshard_event_transaction(ev, &tx));
        if (spends_funding(lnshard_bytes_data(tx), lnshard_bytes_len(tx))) {
            /* This chain's mempool floor (say 20 sat/vB) is above what an anchor
             * commitment pays on its own: alone, it is refused. It gets in with a child
             * paying for both (the BUMP_NEEDED event). */
            commitments_held++;
            printf("chain: %s's commitment alone is below the mempool floor: refused\n",
                   self->name);
        } else {
            broadcast_bytes(tx);
        }
        lnshard_bytes_free(tx);
        break;
    }
    default:
        printf("%s: event %u\n", self->name, (unsigned)lnshard_event_get_kind(ev));
        break;
    }
}

static int move_bytes(node *from, node *to) {
    lnshard_bytes *out = NULL;
    bool disconnect = false;
    size_t n;
    CHECK(lnshard_engine_connection_outputs(from->engine, from->conn, &out, &disconnect));
    if (disconnect) {
        fprintf(stderr, "%s closed the connection to %s\n", from->name, to->name);
        exit(1);
    }
    n = lnshard_bytes_len(out);
    if (n > 0) {
        lnshard_bytes *reply = NULL;
        lnshard_result r =
            lnshard_engine_handle_bytes(to->engine, to->conn, lnshard_bytes_data(out), n, &reply);
        while (r == LNSHARD_RESULT_FULL) {
            uint64_t conn;
            bool found;
            CHECK(lnshard_engine_wait_ready_connection(to->engine, 1, &conn, &found));
            r = lnshard_engine_handle_bytes(to->engine, to->conn, NULL, 0, &reply);
        }
        CHECK(r);
        lnshard_bytes_free(reply);
    }
    lnshard_bytes_free(out);
    return n > 0;
}

static int drain_events(node *self) {
    int count = 0;
    for (;;) {
        lnshard_event *ev = NULL;
        CHECK(lnshard_engine_next_event(self->engine, &ev));
        if (ev == NULL) {
            return count;
        }
        handle_event(self, ev);
        lnshard_event_free(ev);
        count++;
    }
}

static void settle(node *a, node *b) {
    int quiet = 0;
    while (quiet < 3) {
        int moved = move_bytes(a, b) + move_bytes(b, a) + drain_events(a) + drain_events(b);
        if (moved == 0 && lnshard_engine_is_idle(a->engine) && lnshard_engine_is_idle(b->engine)) {
            quiet++;
        } else {
            quiet = 0;
        }
        if (moved == 0) {
            uint64_t conn;
            bool found;
            CHECK(lnshard_engine_wait_ready_connection(a->engine, 1, &conn, &found));
        }
    }
}

/* Mines `blocks` blocks: the mempool goes into the first. */
static void mine(node *a, node *b, int blocks) {
    int k;
    for (k = 0; k < blocks; k++) {
        lnshard_confirmed_tx txs[MAX_MEMPOOL];
        lnshard_block_hash hash;
        size_t i;
        height++;
        block_hash(height, &hash);
        for (i = 0; i < mempool_len; i++) {
            txs[i].index = (uint32_t)(i + 1);
            txs[i].tx = mempool[i].b;
            txs[i].tx_len = mempool[i].len;
        }
        CHECK(lnshard_engine_transactions_confirmed(a->engine, height, txs, mempool_len));
        CHECK(lnshard_engine_transactions_confirmed(b->engine, height, txs, mempool_len));
        CHECK(lnshard_engine_best_block_updated(a->engine, height, &hash));
        CHECK(lnshard_engine_best_block_updated(b->engine, height, &hash));
        if (bumper != NULL) {
            size_t forgotten = 0;
            CHECK(lnshard_bumper_block_connected(bumper, &alice_wallet, height, txs, mempool_len,
                                                 &forgotten));
            if (forgotten > 0) {
                printf("bumper: %zu bump(s) settled 6 deep: coins released\n", forgotten);
            }
        }
        for (i = 0; i < mempool_len; i++) {
            free(mempool[i].b);
        }
        mempool_len = 0;
        settle(a, b);
    }
}

static void start(node *n, const char *name, uint8_t secret_byte) {
    lnshard_engine_config config;
    lnshard_fee_estimator estimator;
    lnshard_secret_key secret;
    lnshard_seed seed;
    lnshard_block_hash tip;
    n->name = name;
    n->estimator.name = name;
    n->estimator.calls = 0;
    memset(secret.bytes, secret_byte, sizeof secret.bytes);
    memset(seed.bytes, secret_byte ^ 0x5a, sizeof seed.bytes);
    block_hash(height, &tip);
    CHECK(lnshard_engine_config_default(&config));
    config.shards = 2;
    config.negotiate_anchors = true; /* the default: option_anchors_zero_fee_htlc_tx */
    /* The engine asks the estimator at start and on every block (copied: this struct may
     * go; the userdata must stay). */
    estimator.userdata = &n->estimator;
    estimator.estimate = estimate;
    config.fee_estimator = &estimator;
    CHECK(lnshard_engine_new(&config, &secret, &seed, height, &tip, &n->engine));
    CHECK(lnshard_engine_node_id(n->engine, &n->id));
    {
        uint8_t sweep[22];
        sweep[0] = 0x00;
        sweep[1] = 0x14;
        memset(sweep + 2, secret_byte, 20);
        CHECK(lnshard_engine_set_sweep_script(n->engine, sweep, sizeof sweep));
    }
}

int main(int argc, char **argv) {
    node alice, bob;
    lnshard_channel_id temporary_id;
    static const uint64_t coin_values[COINS] = {700000, 300000, 20000};
    writer funding;
    size_t i;

    rebump_mode = argc > 1 && strcmp(argv[1], "rebump") == 0;
    if (rebump_mode) {
        CHECK(lnshard_bumper_new(&bumper));
    }
    /* Alice's wallet: three OP_TRUE coins paid by a fabricated transaction, mined below. */
    change_script[0] = 0x00;
    change_script[1] = 0x14;
    memset(change_script + 2, 0xc4, 20);
    funding = fabricate_wallet_funding(coin_values, COINS);
    alice_coins.len = COINS;
    for (i = 0; i < COINS; i++) {
        lnshard_txid txid;
        CHECK(lnshard_transaction_txid(funding.b, funding.len, &txid));
        memcpy(alice_coins.coins[i].outpoint.txid, txid.bytes, sizeof txid.bytes);
        alice_coins.coins[i].outpoint.vout = (uint32_t)i;
        alice_coins.coins[i].value_sat = coin_values[i];
        alice_coins.coins[i].reserved = 0;
    }
    alice_wallet.userdata = &alice_coins;
    alice_wallet.list_spendable = wallet_list_spendable;
    alice_wallet.reserve = wallet_reserve;
    alice_wallet.release = wallet_release;
    alice_wallet.sign_inputs = wallet_sign_inputs;
    alice_wallet.change_script = wallet_change_script;
    print_hex("wallet funding", funding.b, funding.len);
    print_hex("wallet change script", change_script, sizeof change_script);

    start(&alice, "alice", 0x11);
    start(&bob, "bob", 0x22);
    broadcast(funding.b, funding.len);
    free(funding.b);
    {
        lnshard_bytes *act_one = NULL, *act_two = NULL, *act_three = NULL, *nothing = NULL;
        alice.conn = 1;
        bob.conn = 7;
        CHECK(lnshard_engine_new_outbound_connection(alice.engine, alice.conn, &bob.id, &act_one));
        CHECK(lnshard_engine_new_inbound_connection(bob.engine, bob.conn));
        CHECK(lnshard_engine_handle_bytes(bob.engine, bob.conn, lnshard_bytes_data(act_one),
                                          lnshard_bytes_len(act_one), &act_two));
        CHECK(lnshard_engine_handle_bytes(alice.engine, alice.conn, lnshard_bytes_data(act_two),
                                          lnshard_bytes_len(act_two), &act_three));
        CHECK(lnshard_engine_handle_bytes(bob.engine, bob.conn, lnshard_bytes_data(act_three),
                                          lnshard_bytes_len(act_three), &nothing));
        lnshard_bytes_free(act_one);
        lnshard_bytes_free(act_two);
        lnshard_bytes_free(act_three);
        lnshard_bytes_free(nothing);
    }
    settle(&alice, &bob);
    mine(&alice, &bob, 1); /* the wallet's coins confirm */

    /* A 500,000 sat channel (100,000 sat pushed to Bob), funded from Alice's wallet in
     * handle_event. */
    CHECK(lnshard_engine_create_channel(alice.engine, &bob.id, 500000, 100000000, 1, 2500,
                                        &temporary_id));
    settle(&alice, &bob);
    mine(&alice, &bob, 4); /* minimum_depth 3; the next block's estimate lowers the feerate */
    if (channels_ready != 2) {
        fprintf(stderr, "channel not ready on both sides\n");
        return 1;
    }
    mine(&alice, &bob, 1);
    if (!rebump_mode) {
        /* An HTLC from Alice to Bob that Bob holds: it expires 50 blocks from now. */
        lnshard_payment_preimage preimage;
        lnshard_payment_hash hash;
        lnshard_payment_secret secret;
        lnshard_payment_id id;
        lnshard_route_hop hop;
        memset(preimage.bytes, 0x5e, sizeof preimage.bytes);
        CHECK(lnshard_engine_create_inbound_payment(bob.engine, &preimage, 20000000, true, &hash,
                                                    &secret));
        memcpy(hop.node_id, bob.id.bytes, sizeof hop.node_id);
        hop.short_channel_id = short_channel_id;
        hop.fee_msat = 20000000;
        hop.cltv_expiry_delta = 50;
        memcpy(id.bytes, hash.bytes, sizeof id.bytes); /* the hash doubles as the id */
        CHECK(lnshard_engine_send_payment(alice.engine, &hop, 1, &hash, &secret, &id));
        settle(&alice, &bob);
    }

    /* Alice force-closes: her engine asks for fees for her commitment (anchor channel). */
    CHECK(lnshard_engine_force_close_channel(alice.engine, &channel_id));
    settle(&alice, &bob);
    for (i = 0; i < 10 && !commitment_bumped; i++) {
        mine(&alice, &bob, 1); /* asked again on the next block */
    }
    if (!commitment_bumped) {
        fprintf(stderr, "no bump request answered\n");
        return 1;
    }
    mine(&alice, &bob, 1); /* the commitment and its child confirm together */
    if (funding_spent < 2) {
        fprintf(stderr, "the commitment did not confirm (%d funding spends seen)\n", funding_spent);
        return 1;
    }
    if (!rebump_mode) {
        /* Until the HTLC expires: then Alice's engine asks for fees for her HTLC-timeout. */
        for (i = 0; i < 80 && !htlc_bumped; i++) {
            mine(&alice, &bob, 1);
        }
        if (!htlc_bumped) {
            fprintf(stderr, "no HTLC bump request answered\n");
            return 1;
        }
        mine(&alice, &bob, 1); /* the completed HTLC-timeout confirms */
    }
    if (rebump_mode) {
        lnshard_bump_status status;
        bool found = false;
        CHECK(lnshard_bumper_status(bumper, &bumped_txid, &status, &found));
        if (!found || !status.settled) {
            fprintf(stderr, "the bump is in flight and settled\n");
            return 1;
        }
        printf("bumper: %u bumps, last at %u sat/kw paying %llu sat (cap %llu sat), %zu wallet "
               "coin(s), settled at height %u\n",
               (unsigned)status.bumps, (unsigned)status.feerate_per_kw,
               (unsigned long long)status.fee_sat, (unsigned long long)status.max_fee_sat,
               status.wallet_inputs, (unsigned)status.settled_at);
        mine(&alice, &bob, 6); /* six deep: the bumper releases the coins */
        printf("bumper: in flight %zu\n", lnshard_bumper_len(bumper));
        CHECK(lnshard_bumper_status(bumper, &bumped_txid, &status, &found));
        if (found) {
            fprintf(stderr, "a released bump is forgotten\n");
            return 1;
        }
        lnshard_bumper_free(bumper);
    }
    printf("wallet: listed %u times, reserved %u, released %u, signed %u\n", alice_coins.listed,
           alice_coins.reserved_calls, alice_coins.released_calls, alice_coins.signed_calls);
    printf("estimator calls: alice %u, bob %u (blocks mined: %u)\n", alice.estimator.calls,
           bob.estimator.calls, (unsigned)(height - 100));
    lnshard_engine_free(alice.engine);
    lnshard_engine_free(bob.engine);
    for (i = 0; i < mempool_len; i++) {
        free(mempool[i].b);
    }
    printf("done\n");
    return 0;
}
