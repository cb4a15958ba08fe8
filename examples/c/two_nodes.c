/*
 * two_nodes.c: two lnshard engines in one process, talking BOLT 8: the program carries the
 * encrypted bytes a socket would (lnshard_engine_connection_outputs from one engine,
 * lnshard_engine_handle_bytes into the other); each engine runs the handshake and its
 * shards encrypt and decrypt.
 *
 * Alice opens a channel to Bob, funding it from a (simulated) UTXO through the API; the
 * program mines fabricated blocks to confirm it, sends payments each way, prints both
 * balances and closes the channel cooperatively. Then Alice opens a second channel, pays
 * Bob, and Bob force-closes it: both engines' on-chain monitors take over (ON_CHAIN events),
 * and the program prints what each node can claim on chain (lnshard_engine_claimable_balances)
 * as Bob's delayed output matures and his sweep to his wallet's script confirms.
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
    lnshard_node_id id;
    uint64_t conn; /* this program's name for the node's one connection */
} node;

/* ---- The simulated chain: a mempool and a tip. ---- */
#define MAX_MEMPOOL 16
static lnshard_bytes *mempool[MAX_MEMPOOL];
static size_t mempool_len;
static uint32_t height = 100;

static void block_hash(uint32_t h, lnshard_block_hash *out) {
    memset(out->bytes, 0x42, sizeof out->bytes);
    out->bytes[0] = (uint8_t)h;
    out->bytes[1] = (uint8_t)(h >> 8);
    out->bytes[2] = (uint8_t)(h >> 16);
    out->bytes[3] = (uint8_t)(h >> 24);
}

/* The outpoints (txid and index, 36 bytes) spent by the chain and the mempool: a
 * transaction spending one again conflicts and is refused, first seen wins (as when both
 * sides of a channel broadcast their commitment: only one can confirm). */
#define MAX_SPENT 256
static uint8_t spent[MAX_SPENT][36];
static size_t spent_len;

/* Reads a Bitcoin varint at *at (below end); 0 and *ok = 0 when it does not fit. */
static uint64_t read_varint(const uint8_t *b, size_t *at, size_t end, int *ok) {
    uint8_t first;
    size_t n = 0, i;
    uint64_t v = 0;
    if (*at >= end) {
        *ok = 0;
        return 0;
    }
    first = b[(*at)++];
    if (first < 0xfd) {
        return first;
    }
    n = first == 0xfd ? 2 : first == 0xfe ? 4 : 8;
    if (end - *at < n) {
        *ok = 0;
        return 0;
    }
    for (i = 0; i < n; i++) {
        v |= (uint64_t)b[*at + i] << (8 * i);
    }
    *at += n;
    return v;
}

/* The outpoints a serialized transaction spends, up to `max`: their count, or -1 when it
 * does not parse. */
static int tx_inputs(const lnshard_bytes *tx, uint8_t (*out)[36], int max) {
    const uint8_t *b = lnshard_bytes_data(tx);
    size_t end = lnshard_bytes_len(tx), at = 4;
    int ok = 1, i;
    uint64_t count, script_len;
    if (end < 10) {
        return -1;
    }
    if (b[4] == 0x00 && b[5] == 0x01) {
        at = 6; /* segwit marker and flag */
    }
    count = read_varint(b, &at, end, &ok);
    if (!ok || count > (uint64_t)max) {
        return -1;
    }
    for (i = 0; i < (int)count; i++) {
        if (end - at < 36) {
            return -1;
        }
        memcpy(out[i], b + at, 36);
        at += 36;
        script_len = read_varint(b, &at, end, &ok);
        if (!ok || script_len > end - at || end - at - script_len < 4) {
            return -1;
        }
        at += (size_t)script_len + 4; /* script, sequence */
    }
    return (int)count;
}

static void broadcast(lnshard_bytes *tx) {
    uint8_t inputs[16][36];
    int n = tx_inputs(tx, inputs, 16), k;
    size_t i;
    for (i = 0; i < mempool_len; i++) {
        if (lnshard_bytes_len(mempool[i]) == lnshard_bytes_len(tx) &&
            memcmp(lnshard_bytes_data(mempool[i]), lnshard_bytes_data(tx), lnshard_bytes_len(tx)) == 0) {
            lnshard_bytes_free(tx); /* already in the mempool */
            return;
        }
    }
    if (n < 0) {
        fprintf(stderr, "a broadcast transaction does not parse\n");
        exit(1);
    }
    for (k = 0; k < n; k++) {
        for (i = 0; i < spent_len; i++) {
            if (memcmp(spent[i], inputs[k], 36) == 0) {
                printf("chain: refused a transaction spending an output already spent\n");
                lnshard_bytes_free(tx);
                return;
            }
        }
    }
    if (mempool_len == MAX_MEMPOOL || spent_len + (size_t)n > MAX_SPENT) {
        fprintf(stderr, "mempool full\n");
        exit(1);
    }
    for (k = 0; k < n; k++) {
        memcpy(spent[spent_len++], inputs[k], 36);
    }
    mempool[mempool_len++] = tx;
}

/* ---- What the program tracks. ---- */
typedef struct {
    lnshard_payment_preimage preimage;
    lnshard_payment_hash hash;
} invoice;
static invoice invoices[16];
static size_t invoices_len;
static lnshard_channel_id channel_id;
static int channel_pending, channels_ready, payments_sent, payments_claimed, channels_closed;
static int funding_spent, claims_confirmed, funding_count;
static uint64_t short_channel_id;

static void print_hex(const uint8_t *b, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        printf("%02x", b[i]);
    }
}

static const char *spend_kind_name(lnshard_funding_spend_kind k) {
    switch (k) {
    case LNSHARD_FUNDING_SPEND_KIND_COOPERATIVE:
        return "cooperative close";
    case LNSHARD_FUNDING_SPEND_KIND_HOLDER:
        return "our commitment";
    case LNSHARD_FUNDING_SPEND_KIND_COUNTERPARTY:
        return "the peer's commitment";
    case LNSHARD_FUNDING_SPEND_KIND_REVOKED:
        return "a REVOKED commitment";
    case LNSHARD_FUNDING_SPEND_KIND_FUTURE:
        return "a commitment newer than ours (data lost)";
    default:
        return "something else";
    }
}

/* What a channel's on-chain monitor concluded. */
static void handle_onchain(node *self, lnshard_event *ev) {
    lnshard_onchain_event o;
    CHECK(lnshard_event_onchain(ev, &o));
    switch (o.kind) {
    case LNSHARD_ONCHAIN_KIND_FUNDING_SPENT:
        funding_spent++;
        printf("%s: on chain: funding spent by %s (commitment %llu)\n", self->name,
               spend_kind_name(o.spend_kind), (unsigned long long)o.commitment_number);
        break;
    case LNSHARD_ONCHAIN_KIND_CLAIM_CONFIRMED:
        claims_confirmed++;
        printf("%s: on chain: claim confirmed, %llu sat to our sweep script\n", self->name,
               (unsigned long long)o.value_sat);
        break;
    case LNSHARD_ONCHAIN_KIND_OUTBOUND_HTLC_FULFILLED:
    case LNSHARD_ONCHAIN_KIND_OUTBOUND_HTLC_FAILED:
    case LNSHARD_ONCHAIN_KIND_INBOUND_HTLC_CLAIMED:
    case LNSHARD_ONCHAIN_KIND_INBOUND_HTLC_LOST:
        printf("%s: on chain: HTLC %llu resolved (kind %u, %llu msat)\n", self->name,
               (unsigned long long)o.htlc_id, (unsigned)o.kind,
               (unsigned long long)o.amount_msat);
        break;
    case LNSHARD_ONCHAIN_KIND_REVOKED_COMMITMENT_SEEN:
    case LNSHARD_ONCHAIN_KIND_FUTURE_COMMITMENT_SEEN:
        printf("%s: on chain: %s commitment %llu seen\n", self->name,
               o.kind == LNSHARD_ONCHAIN_KIND_REVOKED_COMMITMENT_SEEN ? "revoked" : "future",
               (unsigned long long)o.commitment_number);
        break;
    case LNSHARD_ONCHAIN_KIND_BUMP_NEEDED: {
        /* A zero-fee transaction (anchor channels): a wallet must add fees, by adding inputs
         * or spending the anchor with a child. This simulated chain needs no fees, so the
         * program mines it as is; a real application must never broadcast it alone. */
        lnshard_bytes *tx = NULL;
        CHECK(lnshard_event_transaction(ev, &tx));
        printf("%s: on chain: fees needed by height %u at %u sat/kw%s\n", self->name,
               (unsigned)o.deadline, (unsigned)o.feerate_per_kw,
               o.has_anchor ? " (anchor to spend)" : "");
        broadcast(tx);
        break;
    }
    default:
        printf("%s: on chain: event kind %u\n", self->name, (unsigned)o.kind);
        break;
    }
}

static void handle_event(node *self, lnshard_event *ev) {
    switch (lnshard_event_get_kind(ev)) {
    case LNSHARD_EVENT_KIND_FUNDING_GENERATION_READY: {
        /* Fund the channel from our (simulated) UTXO: txid ab..ab:0 worth 1.1M sat. */
        lnshard_channel_id temporary_id;
        lnshard_txid utxo_txid;
        uint64_t value = 0;
        lnshard_bytes *tx = NULL;
        memset(utxo_txid.bytes, 0xab, sizeof utxo_txid.bytes);
        utxo_txid.bytes[0] = (uint8_t)funding_count++; /* a new (simulated) UTXO per channel */
        CHECK(lnshard_event_temporary_channel_id(ev, &temporary_id));
        CHECK(lnshard_event_channel_value_satoshis(ev, &value));
        CHECK(lnshard_event_build_funding_transaction(ev, &utxo_txid, 0, 1100000, &tx));
        printf("%s: funding %llu sat with a %zu-byte transaction\n", self->name,
               (unsigned long long)value, lnshard_bytes_len(tx));
        CHECK(lnshard_engine_funding_transaction_generated(self->engine, &temporary_id,
                                                           lnshard_bytes_data(tx),
                                                           lnshard_bytes_len(tx)));
        /* Not broadcast here: the engine emits BROADCAST_TRANSACTION for it once the peer's
         * funding_signed arrives (below). */
        lnshard_bytes_free(tx);
        break;
    }
    case LNSHARD_EVENT_KIND_CHANNEL_PENDING:
        CHECK(lnshard_event_channel_id(ev, &channel_id));
        channel_pending++;
        printf("%s: channel pending ", self->name);
        print_hex(channel_id.bytes, sizeof channel_id.bytes);
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
        lnshard_payment_hash hash;
        uint64_t amount = 0;
        size_t i;
        CHECK(lnshard_event_payment_hash(ev, &hash));
        CHECK(lnshard_event_amount_msat(ev, &amount));
        for (i = 0; i < invoices_len; i++) {
            if (memcmp(invoices[i].hash.bytes, hash.bytes, sizeof hash.bytes) == 0) {
                CHECK(lnshard_engine_claim_funds(self->engine, &invoices[i].preimage));
                break;
            }
        }
        if (i == invoices_len) {
            CHECK(lnshard_engine_fail_htlc_backwards(self->engine, &hash));
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
               reason == LNSHARD_CLOSURE_REASON_COOPERATIVE_CLOSURE          ? "cooperative"
               : reason == LNSHARD_CLOSURE_REASON_HOLDER_FORCE_CLOSED       ? "we force-closed"
               : reason == LNSHARD_CLOSURE_REASON_COUNTERPARTY_FORCE_CLOSED ? "the peer force-closed"
               : reason == LNSHARD_CLOSURE_REASON_COMMITMENT_TX_CONFIRMED   ? "commitment confirmed"
                                                                            : "other");
        break;
    }
    case LNSHARD_EVENT_KIND_ON_CHAIN:
        handle_onchain(self, ev);
        break;
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
        lnshard_block_hash hash;
        size_t i;
        height++;
        block_hash(height, &hash);
        for (i = 0; i < mempool_len; i++) {
            txs[i].index = (uint32_t)(i + 1);
            txs[i].tx = lnshard_bytes_data(mempool[i]);
            txs[i].tx_len = lnshard_bytes_len(mempool[i]);
        }
        CHECK(lnshard_engine_transactions_confirmed(a->engine, height, txs, mempool_len));
        CHECK(lnshard_engine_transactions_confirmed(b->engine, height, txs, mempool_len));
        CHECK(lnshard_engine_best_block_updated(a->engine, height, &hash));
        CHECK(lnshard_engine_best_block_updated(b->engine, height, &hash));
        for (i = 0; i < mempool_len; i++) {
            lnshard_bytes_free(mempool[i]);
        }
        mempool_len = 0;
        settle(a, b);
    }
}

static void pay(node *from, node *to, uint64_t amount_msat, uint8_t tag) {
    invoice *inv = &invoices[invoices_len++];
    lnshard_payment_secret secret;
    lnshard_payment_id id;
    lnshard_route_hop hop;
    memset(inv->preimage.bytes, tag, sizeof inv->preimage.bytes);
    CHECK(lnshard_engine_create_inbound_payment(to->engine, &inv->preimage, amount_msat, true,
                                                &inv->hash, &secret));
    memcpy(hop.node_id, to->id.bytes, sizeof hop.node_id);
    hop.short_channel_id = short_channel_id;
    hop.fee_msat = amount_msat;
    hop.cltv_expiry_delta = 50;
    printf("%s pays %s %llu msat\n", from->name, to->name, (unsigned long long)amount_msat);
    /* The payment hash doubles as the payment id (unique here: one payment per invoice). */
    memcpy(id.bytes, inv->hash.bytes, sizeof id.bytes);
    CHECK(lnshard_engine_send_payment(from->engine, &hop, 1, &inv->hash, &secret, &id));
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

static const char *balance_kind_name(lnshard_balance_kind k) {
    switch (k) {
    case LNSHARD_BALANCE_KIND_CLAIMABLE_ON_CHANNEL_CLOSE:
        return "on close";
    case LNSHARD_BALANCE_KIND_CLAIMABLE_AWAITING_CONFIRMATIONS:
        return "awaiting confirmations";
    case LNSHARD_BALANCE_KIND_CONTENTIOUS_CLAIMABLE:
        return "contentious HTLC";
    case LNSHARD_BALANCE_KIND_COUNTERPARTY_REVOKED_OUTPUT_CLAIMABLE:
        return "revoked output";
    default:
        return "unknown";
    }
}

/* What each channel's on-chain state owes the node (open channels: what a close would
 * give; closed ones: what is still to claim or confirm). */
static void print_claimable(node *n) {
    lnshard_balance_list *list = NULL;
    size_t i, len;
    CHECK(lnshard_engine_claimable_balances(n->engine, &list));
    len = lnshard_balance_list_len(list);
    if (len == 0) {
        printf("claimable %s: nothing\n", n->name);
    }
    for (i = 0; i < len; i++) {
        lnshard_balance b;
        CHECK(lnshard_balance_list_get(list, i, &b));
        printf("claimable %s: %llu sat %s", n->name, (unsigned long long)b.amount_sat,
               balance_kind_name(b.kind));
        if (b.kind == LNSHARD_BALANCE_KIND_CLAIMABLE_AWAITING_CONFIRMATIONS) {
            printf(" (until height %u)", (unsigned)b.confirmation_height);
        }
        printf("\n");
    }
    lnshard_balance_list_free(list);
}

static void log_line(void *userdata, lnshard_log_level level, const char *target, const char *message) {
    (void)userdata;
    fprintf(stderr, "[log %u] %s: %s\n", (unsigned)level, target, message);
}

static void start(node *n, const char *name, uint8_t secret_byte) {
    lnshard_engine_config config;
    lnshard_secret_key secret;
    lnshard_seed seed;
    lnshard_block_hash tip;
    n->name = name;
    memset(secret.bytes, secret_byte, sizeof secret.bytes);
    memset(seed.bytes, secret_byte ^ 0x5a, sizeof seed.bytes);
    block_hash(height, &tip);
    CHECK(lnshard_engine_config_default(&config));
    config.shards = 2;
    config.to_self_delay = 12; /* the peer's delayed outputs wait 12 blocks (a short demo) */
    config.data_dir = NULL; /* in-memory store */
    CHECK(lnshard_engine_new(&config, &secret, &seed, height, &tip, &n->engine));
    CHECK(lnshard_engine_node_id(n->engine, &n->id));
    printf("%s: node ", name);
    print_hex(n->id.bytes, sizeof n->id.bytes);
    printf(" (%zu shards)\n", lnshard_engine_shard_count(n->engine));
    {
        /* On-chain claims pay the application's wallet: a P2WPKH script (OP_0, 20-byte key
         * hash; made up here). Not stored: set it at every start. Claims pay at least the
         * feerate given (sat per 1000 weight), more as their deadline nears. */
        uint8_t sweep[22];
        sweep[0] = 0x00;
        sweep[1] = 0x14;
        memset(sweep + 2, secret_byte, 20);
        CHECK(lnshard_engine_set_sweep_script(n->engine, sweep, sizeof sweep));
        CHECK(lnshard_engine_set_claim_feerate(n->engine, 1000));
    }
}

int main(void) {
    node alice, bob;
    lnshard_channel_id temporary_id;
    /* The library this program runs with is the one its header describes: while lnshard's
     * major version is 0, each minor version has its own ABI (and SONAME). */
    if (lnshard_version_number() != LNSHARD_VERSION_NUMBER) {
        fprintf(stderr, "built against lnshard %s, running with %s\n", LNSHARD_VERSION,
                lnshard_version());
        return 1;
    }
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

    /* Open a 1,000,000 sat channel; funding happens in handle_event. */
    CHECK(lnshard_engine_create_channel(alice.engine, &bob.id, 1000000, 0, 1, 2500, &temporary_id));
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

    CHECK(lnshard_engine_close_channel(alice.engine, &channel_id));
    settle(&alice, &bob);
    mine(&alice, &bob, 1);
    if (channels_closed != 2) {
        fprintf(stderr, "channel closed on %d sides\n", channels_closed);
        return 1;
    }

    /* A second channel, which Bob force-closes: the monitors resolve it on chain. */
    CHECK(lnshard_engine_create_channel(alice.engine, &bob.id, 500000, 0, 2, 2500, &temporary_id));
    settle(&alice, &bob);
    mine(&alice, &bob, 3);
    if (channels_ready != 4) {
        fprintf(stderr, "second channel not ready on both sides\n");
        return 1;
    }
    pay(&alice, &bob, 100000000, 7);
    print_claimable(&alice);
    print_claimable(&bob);
    CHECK(lnshard_engine_force_close_channel(bob.engine, &channel_id));
    drain_events(&bob); /* Bob's commitment reaches the mempool first */
    settle(&alice, &bob);
    mine(&alice, &bob, 1); /* Bob's commitment confirms */
    if (channels_closed != 4 || funding_spent < 2) {
        fprintf(stderr, "force close: %d closed, %d funding spends seen\n", channels_closed,
                funding_spent);
        return 1;
    }
    print_claimable(&alice);
    print_claimable(&bob);
    mine(&alice, &bob, 30); /* Bob's to_local matures, his sweep confirms, 6 deep */
    print_claimable(&alice);
    print_claimable(&bob);
    if (claims_confirmed < 1) {
        fprintf(stderr, "no claim confirmed\n");
        return 1;
    }
    lnshard_engine_free(alice.engine);
    lnshard_engine_free(bob.engine);
    CHECK(lnshard_set_log_callback(NULL, NULL, LNSHARD_LOG_LEVEL_INFO));
    printf("done\n");
    return 0;
}
