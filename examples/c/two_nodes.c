/*
 * two_nodes.c: two lnshard engines in one process, talking BOLT 8: the program carries the
 * encrypted bytes a socket would (lnshard_engine_connection_outputs from one engine,
 * lnshard_engine_handle_bytes into the other); each engine runs the handshake and its
 * shards encrypt and decrypt.
 *
 * Alice opens a channel to Bob, funding it from a (simulated) UTXO through the API; the
 * program mines fabricated blocks to confirm it, sends payments each way, prints both
 * balances and closes the channel cooperatively.
 *
 * The funding transaction is built by lnshard_event_build_funding_transaction and is NOT
 * signed: this chain is simulated (blocks are just a height, a made-up hash and the
 * transactions), and the engine only checks that the transaction pays the channel's
 * funding script the right amount. A real wallet would sign it before broadcasting.
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
    fprintf(stderr, "two_nodes.c:%d: %s returned %u: %s\n", line, what, (unsigned)r, msg);
    exit(1);
}

typedef struct {
    const char *name;
    lnshard_engine *engine;
    uint8_t id[33];
    uint64_t conn; /* this program's name for the node's one connection */
} node;

/* ---- The simulated chain: a mempool and a tip. ---- */
#define MAX_MEMPOOL 16
static lnshard_bytes *mempool[MAX_MEMPOOL];
static size_t mempool_len;
static uint32_t height = 100;

static void block_hash(uint32_t h, uint8_t out[32]) {
    memset(out, 0x42, 32);
    out[0] = (uint8_t)h;
    out[1] = (uint8_t)(h >> 8);
    out[2] = (uint8_t)(h >> 16);
    out[3] = (uint8_t)(h >> 24);
}

static void broadcast(lnshard_bytes *tx) {
    size_t i;
    for (i = 0; i < mempool_len; i++) {
        if (lnshard_bytes_len(mempool[i]) == lnshard_bytes_len(tx) &&
            memcmp(lnshard_bytes_data(mempool[i]), lnshard_bytes_data(tx), lnshard_bytes_len(tx)) == 0) {
            lnshard_bytes_free(tx); /* already in the mempool */
            return;
        }
    }
    if (mempool_len == MAX_MEMPOOL) {
        fprintf(stderr, "mempool full\n");
        exit(1);
    }
    mempool[mempool_len++] = tx;
}

/* ---- What the program tracks. ---- */
typedef struct {
    uint8_t preimage[32];
    uint8_t hash[32];
} invoice;
static invoice invoices[16];
static size_t invoices_len;
static uint8_t channel_id[32];
static int channel_pending, channels_ready, payments_sent, payments_claimed, channels_closed;
static uint64_t short_channel_id;

static void print_hex(const uint8_t *b, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        printf("%02x", b[i]);
    }
}

static void handle_event(node *self, lnshard_event *ev) {
    switch (lnshard_event_get_kind(ev)) {
    case LNSHARD_EVENT_KIND_FUNDING_GENERATION_READY: {
        /* Fund the channel from our (simulated) UTXO: txid ab..ab:0 worth 1.1M sat. */
        uint8_t temporary_id[32], utxo_txid[32];
        uint64_t value = 0;
        lnshard_bytes *tx = NULL;
        memset(utxo_txid, 0xab, sizeof utxo_txid);
        CHECK(lnshard_event_temporary_channel_id(ev, temporary_id));
        CHECK(lnshard_event_channel_value_satoshis(ev, &value));
        CHECK(lnshard_event_build_funding_transaction(ev, utxo_txid, 0, 1100000, &tx));
        printf("%s: funding %llu sat with a %zu-byte transaction\n", self->name,
               (unsigned long long)value, lnshard_bytes_len(tx));
        CHECK(lnshard_engine_funding_transaction_generated(self->engine, temporary_id,
                                                           lnshard_bytes_data(tx),
                                                           lnshard_bytes_len(tx)));
        broadcast(tx);
        break;
    }
    case LNSHARD_EVENT_KIND_CHANNEL_PENDING:
        CHECK(lnshard_event_channel_id(ev, channel_id));
        channel_pending++;
        printf("%s: channel pending ", self->name);
        print_hex(channel_id, 32);
        printf("\n");
        break;
    case LNSHARD_EVENT_KIND_CHANNEL_READY: {
        bool found = false;
        CHECK(lnshard_event_short_channel_id(ev, &short_channel_id, &found));
        channels_ready++;
        printf("%s: channel ready, short channel id %llu\n", self->name,
               (unsigned long long)short_channel_id);
        break;
    }
    case LNSHARD_EVENT_KIND_PAYMENT_CLAIMABLE: {
        uint8_t hash[32];
        uint64_t amount = 0;
        size_t i;
        CHECK(lnshard_event_payment_hash(ev, hash));
        CHECK(lnshard_event_amount_msat(ev, &amount));
        for (i = 0; i < invoices_len; i++) {
            if (memcmp(invoices[i].hash, hash, 32) == 0) {
                CHECK(lnshard_engine_claim_funds(self->engine, invoices[i].preimage));
                break;
            }
        }
        if (i == invoices_len) {
            CHECK(lnshard_engine_fail_htlc_backwards(self->engine, hash));
        }
        break;
    }
    case LNSHARD_EVENT_KIND_PAYMENT_CLAIMED: {
        uint64_t amount = 0;
        CHECK(lnshard_event_amount_msat(ev, &amount));
        payments_claimed++;
        printf("%s: received %llu msat\n", self->name, (unsigned long long)amount);
        break;
    }
    case LNSHARD_EVENT_KIND_PAYMENT_SENT: {
        uint64_t fee = 0;
        CHECK(lnshard_event_fee_msat(ev, &fee));
        payments_sent++;
        printf("%s: payment sent (fee %llu msat)\n", self->name, (unsigned long long)fee);
        break;
    }
    case LNSHARD_EVENT_KIND_PAYMENT_FAILED: {
        lnshard_payment_failure failure;
        CHECK(lnshard_event_payment_failure(ev, &failure));
        fprintf(stderr, "%s: payment failed (local %d, code %u)\n", self->name, (int)failure.local,
                (unsigned)failure.failure_code);
        exit(1);
    }
    case LNSHARD_EVENT_KIND_CHANNEL_CLOSED: {
        lnshard_closure_reason reason = LNSHARD_CLOSURE_REASON_UNKNOWN;
        CHECK(lnshard_event_closure_reason(ev, &reason));
        channels_closed++;
        printf("%s: channel closed (%s)\n", self->name,
               reason == LNSHARD_CLOSURE_REASON_COOPERATIVE_CLOSURE ? "cooperative" : "other");
        break;
    }
    case LNSHARD_EVENT_KIND_BROADCAST_TRANSACTION: {
        lnshard_bytes *tx = NULL;
        CHECK(lnshard_event_transaction(ev, &tx));
        broadcast(tx);
        break;
    }
    default:
        printf("%s: event %u\n", self->name, (unsigned)lnshard_event_get_kind(ev));
        break;
    }
}

/* Carries the encrypted bytes `from` wrote to its connection into `to`'s connection;
 * returns how many moved. */
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
        /* Full: every byte was taken; the socket would not be read until this succeeds. */
        while (r == LNSHARD_RESULT_FULL) {
            uint64_t conn;
            bool found;
            CHECK(lnshard_engine_wait_ready_connection(to->engine, 1, &conn, &found));
            r = lnshard_engine_handle_bytes(to->engine, to->conn, NULL, 0, &reply);
        }
        CHECK(r);
        lnshard_bytes_free(reply); /* no handshake bytes once established */
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

/* Runs both nodes until nothing moves. */
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
            /* Wait up to 1 ms for a shard to write to a connection. */
            CHECK(lnshard_engine_wait_ready_connection(a->engine, 1, &conn, &found));
        }
    }
}

/* Mines `blocks` fabricated blocks: the mempool goes into the first. */
static void mine(node *a, node *b, int blocks) {
    int k;
    for (k = 0; k < blocks; k++) {
        lnshard_confirmed_tx txs[MAX_MEMPOOL];
        uint8_t hash[32];
        size_t i;
        height++;
        block_hash(height, hash);
        for (i = 0; i < mempool_len; i++) {
            txs[i].index = (uint32_t)(i + 1);
            txs[i].tx = lnshard_bytes_data(mempool[i]);
            txs[i].tx_len = lnshard_bytes_len(mempool[i]);
        }
        CHECK(lnshard_engine_transactions_confirmed(a->engine, height, txs, mempool_len));
        CHECK(lnshard_engine_transactions_confirmed(b->engine, height, txs, mempool_len));
        CHECK(lnshard_engine_best_block_updated(a->engine, height, hash));
        CHECK(lnshard_engine_best_block_updated(b->engine, height, hash));
        for (i = 0; i < mempool_len; i++) {
            lnshard_bytes_free(mempool[i]);
        }
        mempool_len = 0;
        settle(a, b);
    }
}

static void pay(node *from, node *to, uint64_t amount_msat, uint8_t tag) {
    invoice *inv = &invoices[invoices_len++];
    uint8_t secret[32];
    lnshard_route_hop hop;
    memset(inv->preimage, tag, 32);
    CHECK(lnshard_engine_create_inbound_payment(to->engine, inv->preimage, amount_msat, true,
                                                inv->hash, secret));
    memcpy(hop.node_id, to->id, 33);
    hop.short_channel_id = short_channel_id;
    hop.fee_msat = amount_msat;
    hop.cltv_expiry_delta = 50;
    printf("%s pays %s %llu msat\n", from->name, to->name, (unsigned long long)amount_msat);
    /* The payment hash doubles as the payment id. */
    CHECK(lnshard_engine_send_payment(from->engine, &hop, 1, inv->hash, secret, inv->hash));
    settle(from, to);
}

static void print_balance(node *n) {
    lnshard_channel_list *list = NULL;
    size_t i;
    CHECK(lnshard_engine_list_channels(n->engine, &list));
    for (i = 0; i < lnshard_channel_list_len(list); i++) {
        lnshard_channel_details d;
        CHECK(lnshard_channel_list_get(list, i, &d));
        printf("balance %s: %llu msat (peer %llu msat, can send %llu msat)\n", n->name,
               (unsigned long long)d.to_local_msat, (unsigned long long)d.to_remote_msat,
               (unsigned long long)d.outbound_capacity_msat);
    }
    lnshard_channel_list_free(list);
}

static void log_line(void *userdata, uint32_t level, const char *target, const char *message) {
    (void)userdata;
    fprintf(stderr, "[log %u] %s: %s\n", (unsigned)level, target, message);
}

static void start(node *n, const char *name, uint8_t secret_byte) {
    lnshard_engine_config config;
    uint8_t secret[32], seed[32], tip[32];
    n->name = name;
    memset(secret, secret_byte, sizeof secret);
    memset(seed, secret_byte ^ 0x5a, sizeof seed);
    block_hash(height, tip);
    CHECK(lnshard_engine_config_default(&config));
    config.shards = 2;
    config.data_dir = NULL; /* in-memory store */
    CHECK(lnshard_engine_new(&config, secret, seed, height, tip, &n->engine));
    CHECK(lnshard_engine_node_id(n->engine, n->id));
    printf("%s: node ", name);
    print_hex(n->id, 33);
    printf(" (%zu shards)\n", lnshard_engine_shard_count(n->engine));
}

int main(void) {
    node alice, bob;
    uint8_t temporary_id[32];
    printf("lnshard %s\n", lnshard_version());
    CHECK(lnshard_set_log_callback(log_line, NULL, LNSHARD_LOG_LEVEL_INFO));
    start(&alice, "alice", 0x11);
    start(&bob, "bob", 0x22);

    /* Connect: Alice dials Bob; the three handshake acts cross as bytes, then the engines'
     * encrypted init messages. */
    {
        lnshard_bytes *act_one = NULL, *act_two = NULL, *act_three = NULL, *nothing = NULL;
        alice.conn = 1;
        bob.conn = 7;
        CHECK(lnshard_engine_new_outbound_connection(alice.engine, alice.conn, bob.id, &act_one));
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

    /* Open a 1,000,000 sat channel; funding happens in handle_event. */
    CHECK(lnshard_engine_create_channel(alice.engine, bob.id, 1000000, 0, 1, 2500, temporary_id));
    settle(&alice, &bob);
    if (channel_pending != 2) {
        fprintf(stderr, "channel not pending on both sides\n");
        return 1;
    }
    mine(&alice, &bob, 3); /* minimum_depth 3 */
    if (channels_ready != 2) {
        fprintf(stderr, "channel not ready on both sides\n");
        return 1;
    }

    pay(&alice, &bob, 10000000, 1);
    pay(&alice, &bob, 20000000, 2);
    pay(&alice, &bob, 30000000, 3);
    pay(&bob, &alice, 5000000, 4);
    pay(&bob, &alice, 6000000, 5);
    pay(&bob, &alice, 7000000, 6);
    if (payments_sent != 6 || payments_claimed != 6) {
        fprintf(stderr, "payments: %d sent, %d claimed\n", payments_sent, payments_claimed);
        return 1;
    }
    print_balance(&alice);
    print_balance(&bob);

    CHECK(lnshard_engine_close_channel(alice.engine, channel_id));
    settle(&alice, &bob);
    mine(&alice, &bob, 1);
    if (channels_closed != 2) {
        fprintf(stderr, "channel closed on %d sides\n", channels_closed);
        return 1;
    }
    lnshard_engine_free(alice.engine);
    lnshard_engine_free(bob.engine);
    CHECK(lnshard_set_log_callback(NULL, NULL, LNSHARD_LOG_LEVEL_INFO));
    printf("done\n");
    return 0;
}
