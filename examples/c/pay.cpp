// pay.cpp: the same header from C++17. Two engines connect over BOLT 8 (encrypted bytes, as
// a socket would carry them), open a channel, and Alice pays Bob once.
//
// As in two_nodes.c the chain is simulated and the funding transaction is unsigned.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "lnshard.h"

namespace {

void check(lnshard_result r, const char *what) {
    if (r == LNSHARD_RESULT_OK) {
        return;
    }
    std::string msg(lnshard_last_error_length() + 1, '\0');
    size_t n = 0;
    lnshard_last_error_message(msg.data(), msg.size(), &n);
    msg.resize(n);
    std::fprintf(stderr, "pay.cpp: %s returned %u: %s\n", what, unsigned(r), msg.c_str());
    std::exit(1);
}
#define CHECK(call) check((call), #call)

// Owns an lnshard_bytes.
struct Bytes {
    lnshard_bytes *b = nullptr;
    Bytes() = default;
    Bytes(const Bytes &) = delete;
    Bytes &operator=(const Bytes &) = delete;
    ~Bytes() { lnshard_bytes_free(b); }
    const uint8_t *data() const { return lnshard_bytes_data(b); }
    size_t size() const { return lnshard_bytes_len(b); }
};

struct Node {
    const char *name;
    lnshard_engine *engine = nullptr;
    lnshard_node_id id = {};
    uint64_t conn = 0;  // this node's name for its connection to the other

    Node(const char *n, uint8_t secret_byte, uint32_t height, const lnshard_block_hash &tip)
        : name(n) {
        lnshard_engine_config config;
        CHECK(lnshard_engine_config_default(&config));
        config.shards = 1;
        lnshard_secret_key secret;
        lnshard_seed seed;
        std::memset(secret.bytes, secret_byte, sizeof secret.bytes);
        std::memset(seed.bytes, secret_byte ^ 0x33, sizeof seed.bytes);
        CHECK(lnshard_engine_new(&config, &secret, &seed, height, &tip, &engine));
        CHECK(lnshard_engine_node_id(engine, &id));
    }
    ~Node() { lnshard_engine_free(engine); }
    Node(const Node &) = delete;
    Node &operator=(const Node &) = delete;
};

uint32_t height = 500;
std::vector<std::vector<uint8_t>> mempool;
lnshard_channel_id channel_id;
uint64_t scid = 0;
int ready = 0, sent = 0, claimed = 0, failed = 0, closed = 0;
lnshard_payment_preimage preimage;
bool refuse = false;  // Bob fails payments back instead of claiming them

lnshard_block_hash tip_hash(uint32_t h) {
    lnshard_block_hash out;
    std::memset(out.bytes, 0x77, sizeof out.bytes);
    std::memcpy(out.bytes, &h, sizeof h);
    return out;
}

// Here each payment's hash doubles as its payment id (one payment per invoice).
lnshard_payment_id id_of(const lnshard_payment_hash &hash) {
    lnshard_payment_id id;
    std::memcpy(id.bytes, hash.bytes, sizeof id.bytes);
    return id;
}

void on_event(Node &self, lnshard_event *ev) {
    switch (lnshard_event_get_kind(ev)) {
    case LNSHARD_EVENT_KIND_FUNDING_GENERATION_READY: {
        lnshard_channel_id temporary_id;
        lnshard_txid utxo;
        std::memset(utxo.bytes, 0xcd, sizeof utxo.bytes);
        CHECK(lnshard_event_temporary_channel_id(ev, &temporary_id));
        Bytes tx;
        CHECK(lnshard_event_build_funding_transaction(ev, &utxo, 1, 600000, &tx.b));
        CHECK(lnshard_engine_funding_transaction_generated(self.engine, &temporary_id, tx.data(),
                                                           tx.size()));
        // Not broadcast here: the engine emits BROADCAST_TRANSACTION for it once the peer's
        // funding_signed arrives.
        break;
    }
    case LNSHARD_EVENT_KIND_CHANNEL_PENDING:
        CHECK(lnshard_event_channel_id(ev, &channel_id));
        break;
    case LNSHARD_EVENT_KIND_CHANNEL_READY: {
        bool found = false;
        CHECK(lnshard_event_short_channel_id(ev, &scid, &found));
        ready++;
        break;
    }
    case LNSHARD_EVENT_KIND_PAYMENT_CLAIMABLE:
        if (refuse) {
            lnshard_payment_hash hash;
            CHECK(lnshard_event_payment_hash(ev, &hash));
            CHECK(lnshard_engine_fail_htlc_backwards(self.engine, &hash));
        } else {
            CHECK(lnshard_engine_claim_funds(self.engine, &preimage));
        }
        break;
    case LNSHARD_EVENT_KIND_PAYMENT_CLAIMED:
        claimed++;
        break;
    case LNSHARD_EVENT_KIND_PAYMENT_SENT:
        sent++;
        break;
    case LNSHARD_EVENT_KIND_PAYMENT_FAILED: {
        lnshard_payment_failure failure;
        CHECK(lnshard_event_payment_failure(ev, &failure));
        std::printf("%s: payment failed back (failure code 0x%04x)\n", self.name,
                    unsigned(failure.failure_code));
        failed++;
        break;
    }
    case LNSHARD_EVENT_KIND_CHANNEL_CLOSED: {
        lnshard_closure_reason reason = LNSHARD_CLOSURE_REASON_UNKNOWN;
        CHECK(lnshard_event_closure_reason(ev, &reason));
        std::printf("%s: channel closed (reason %u)\n", self.name, unsigned(reason));
        closed++;
        break;
    }
    case LNSHARD_EVENT_KIND_BROADCAST_TRANSACTION: {
        Bytes tx;
        CHECK(lnshard_event_transaction(ev, &tx.b));
        std::printf("%s: broadcast a %zu-byte transaction\n", self.name, tx.size());
        mempool.emplace_back(tx.data(), tx.data() + tx.size());
        break;
    }
    default:
        break;
    }
}

// Carries encrypted bytes from `from`'s connection to `to`'s; returns how many moved.
size_t carry(Node &from, Node &to) {
    Bytes out;
    bool disconnect = false;
    CHECK(lnshard_engine_connection_outputs(from.engine, from.conn, &out.b, &disconnect));
    if (disconnect) {
        std::fprintf(stderr, "%s closed the connection\n", from.name);
        std::exit(1);
    }
    if (out.size() > 0) {
        Bytes reply;
        CHECK(lnshard_engine_handle_bytes(to.engine, to.conn, out.data(), out.size(), &reply.b));
    }
    return out.size();
}

size_t events(Node &n) {
    size_t count = 0;
    for (;;) {
        lnshard_event *ev = nullptr;
        CHECK(lnshard_engine_next_event(n.engine, &ev));
        if (ev == nullptr) {
            return count;
        }
        on_event(n, ev);
        lnshard_event_free(ev);
        count++;
    }
}

void settle(Node &a, Node &b) {
    for (int quiet = 0; quiet < 3;) {
        size_t moved = carry(a, b) + carry(b, a) + events(a) + events(b);
        bool idle = lnshard_engine_is_idle(a.engine) && lnshard_engine_is_idle(b.engine);
        quiet = (moved == 0 && idle) ? quiet + 1 : 0;
        if (moved == 0) {
            lnshard_event *ev = nullptr;
            CHECK(lnshard_engine_wait_event(a.engine, 1, &ev));
            if (ev != nullptr) {
                on_event(a, ev);
                lnshard_event_free(ev);
            }
        }
    }
}

void mine(Node &a, Node &b) {
    height++;
    lnshard_block_hash hash = tip_hash(height);
    std::vector<lnshard_confirmed_tx> txs;
    for (const auto &tx : mempool) {
        txs.push_back(lnshard_confirmed_tx{uint32_t(txs.size() + 1), tx.data(), tx.size()});
    }
    for (Node *n : {&a, &b}) {
        CHECK(lnshard_engine_transactions_confirmed(n->engine, height, txs.data(), txs.size()));
        CHECK(lnshard_engine_best_block_updated(n->engine, height, &hash));
    }
    mempool.clear();
    settle(a, b);
}

}  // namespace

int main() {
    lnshard_block_hash tip = tip_hash(height);
    Node alice("alice", 0x31, height, tip);
    Node bob("bob", 0x42, height, tip);
    alice.conn = 1;
    bob.conn = 9;

    // BOLT 8 handshake: act one, two, three, each handed over as bytes.
    Bytes act_one, act_two, act_three, nothing;
    CHECK(lnshard_engine_new_outbound_connection(alice.engine, alice.conn, &bob.id, &act_one.b));
    CHECK(lnshard_engine_new_inbound_connection(bob.engine, bob.conn));
    CHECK(lnshard_engine_handle_bytes(bob.engine, bob.conn, act_one.data(), act_one.size(),
                                      &act_two.b));
    CHECK(lnshard_engine_handle_bytes(alice.engine, alice.conn, act_two.data(), act_two.size(),
                                      &act_three.b));
    CHECK(lnshard_engine_handle_bytes(bob.engine, bob.conn, act_three.data(), act_three.size(),
                                      &nothing.b));
    lnshard_node_id seen;
    bool found = false;
    CHECK(lnshard_engine_connection_node_id(bob.engine, bob.conn, &seen, &found));
    if (!found || std::memcmp(seen.bytes, alice.id.bytes, sizeof seen.bytes) != 0) {
        std::fprintf(stderr, "bob does not know alice after the handshake\n");
        return 1;
    }
    settle(alice, bob);

    lnshard_channel_id temporary_id;
    CHECK(lnshard_engine_create_channel(alice.engine, &bob.id, 500000, 0, 7, 2500, &temporary_id));
    settle(alice, bob);
    for (int i = 0; i < 3; i++) {
        mine(alice, bob);
    }
    if (ready != 2) {
        std::fprintf(stderr, "channel not ready on both sides\n");
        return 1;
    }

    std::memset(preimage.bytes, 0x5e, sizeof preimage.bytes);
    lnshard_payment_hash hash;
    lnshard_payment_secret secret;
    CHECK(lnshard_engine_create_inbound_payment(bob.engine, &preimage, 25000000, true, &hash,
                                                &secret));
    lnshard_route_hop hop{};
    std::memcpy(hop.node_id, bob.id.bytes, sizeof hop.node_id);
    hop.short_channel_id = scid;
    hop.fee_msat = 25000000;
    hop.cltv_expiry_delta = 50;
    lnshard_payment_id id = id_of(hash);
    CHECK(lnshard_engine_send_payment(alice.engine, &hop, 1, &hash, &secret, &id));
    settle(alice, bob);
    if (sent != 1 || claimed != 1) {
        std::fprintf(stderr, "payment: %d sent, %d claimed\n", sent, claimed);
        return 1;
    }
    for (Node *n : {&alice, &bob}) {
        lnshard_channel_list *list = nullptr;
        CHECK(lnshard_engine_list_channels(n->engine, &list));
        lnshard_channel_details d;
        CHECK(lnshard_channel_list_get(list, 0, &d));
        std::printf("balance %s: %llu msat\n", n->name,
                    static_cast<unsigned long long>(d.to_local_msat));
        lnshard_channel_list_free(list);
    }

    // A second payment that Bob fails back, then Alice force-closes.
    refuse = true;
    lnshard_payment_hash hash2;
    lnshard_payment_secret secret2;
    lnshard_payment_preimage preimage2;
    std::memset(preimage2.bytes, 0x6f, sizeof preimage2.bytes);
    CHECK(lnshard_engine_create_inbound_payment(bob.engine, &preimage2, 1000000, true, &hash2,
                                                &secret2));
    hop.fee_msat = 1000000;
    lnshard_payment_id id2 = id_of(hash2);
    CHECK(lnshard_engine_send_payment(alice.engine, &hop, 1, &hash2, &secret2, &id2));
    settle(alice, bob);
    if (failed != 1) {
        std::fprintf(stderr, "the refused payment did not fail back\n");
        return 1;
    }
    CHECK(lnshard_engine_force_close_channel(alice.engine, &channel_id));
    settle(alice, bob);
    if (closed < 1) {
        std::fprintf(stderr, "force close did not close the channel\n");
        return 1;
    }
    CHECK(lnshard_engine_connection_closed(alice.engine, alice.conn));
    std::printf("done\n");
    return 0;
}
