/*
 * misuse.c: every misuse a C caller can make returns the right code, and the thread's last
 * error names the parameter. Run by crates/ffi/tests/c_programs.rs with a writable
 * directory as argv[1].
 */
#define _POSIX_C_SOURCE 200809L /* getpid */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lnshard.h"

static int failures;

static void expect(lnshard_result got, lnshard_result want, const char *needle, const char *what,
                   int line) {
    char msg[1024];
    size_t n = 0;
    msg[0] = 0;
    lnshard_last_error_message(msg, sizeof msg, &n);
    if (got != want) {
        fprintf(stderr, "misuse.c:%d: %s returned %u, want %u (%s)\n", line, what, (unsigned)got,
                (unsigned)want, msg);
        failures++;
    } else if (needle != NULL && strstr(msg, needle) == NULL) {
        fprintf(stderr, "misuse.c:%d: %s: message \"%s\" does not name \"%s\"\n", line, what, msg,
                needle);
        failures++;
    } else {
        printf("ok %-60.60s -> %u \"%s\"\n", what, (unsigned)got, msg);
    }
}

#define EXPECT(call, want, needle) expect((call), (want), (needle), #call, __LINE__)

static void log_cb(void *userdata, lnshard_log_level level, const char *target, const char *message) {
    (void)userdata;
    (void)level;
    (void)target;
    (void)message;
}

int main(int argc, char **argv) {
    lnshard_engine_config config;
    lnshard_engine *engine = NULL;
    lnshard_secret_key secret, zero_secret;
    lnshard_seed seed;
    lnshard_block_hash tip;
    lnshard_node_id zero_key, id;
    lnshard_channel_id channel;
    lnshard_payment_hash hash;
    lnshard_payment_secret payment_secret;
    lnshard_payment_id payment_id;
    uint8_t big[70000];
    char small[4], text[256];
    size_t n = 0;
    lnshard_route_hop hops[21];
    lnshard_channel_list *list = NULL;
    lnshard_channel_details details;
    uint64_t conn = 0;
    bool flag = false;
    lnshard_bytes *bytes = NULL;
    lnshard_confirmed_tx tx;
    uint8_t garbage[5] = {1, 2, 3, 4, 5};
    lnshard_store_callbacks store;

    if (argc < 2) {
        fprintf(stderr, "usage: misuse WRITABLE_DIR\n");
        return 2;
    }
    memset(secret.bytes, 0x11, sizeof secret.bytes);
    memset(zero_secret.bytes, 0, sizeof zero_secret.bytes);
    memset(seed.bytes, 0x22, sizeof seed.bytes);
    memset(tip.bytes, 0, sizeof tip.bytes);
    memset(zero_key.bytes, 0, sizeof zero_key.bytes);
    memset(big, 0, sizeof big);
    memset(channel.bytes, 0x33, sizeof channel.bytes);
    memset(hash.bytes, 0x44, sizeof hash.bytes);
    memset(payment_secret.bytes, 0x55, sizeof payment_secret.bytes);
    memset(payment_id.bytes, 0x66, sizeof payment_id.bytes);
    memset(hops, 0, sizeof hops);

    /* NULL pointers. */
    EXPECT(lnshard_engine_config_default(NULL), LNSHARD_RESULT_NULL_PARAMETER, "out");
    EXPECT(lnshard_engine_config_default(&config), LNSHARD_RESULT_OK, NULL);
    EXPECT(lnshard_engine_new(NULL, &secret, &seed, 0, &tip, &engine), LNSHARD_RESULT_NULL_PARAMETER,
           "parameter config is NULL");
    EXPECT(lnshard_engine_new(&config, NULL, &seed, 0, &tip, &engine), LNSHARD_RESULT_NULL_PARAMETER,
           "node_secret");
    EXPECT(lnshard_engine_new(&config, &secret, &seed, 0, NULL, &engine),
           LNSHARD_RESULT_NULL_PARAMETER, "best_hash");
    EXPECT(lnshard_engine_new(&config, &secret, &seed, 0, &tip, NULL), LNSHARD_RESULT_NULL_PARAMETER,
           "parameter out is NULL");
    EXPECT(lnshard_engine_node_id(NULL, &id), LNSHARD_RESULT_NULL_PARAMETER, "engine");

    /* Unknown enum values and out-of-range config fields. */
    config.network = 99;
    EXPECT(lnshard_engine_new(&config, &secret, &seed, 0, &tip, &engine),
           LNSHARD_RESULT_INVALID_PARAMETER, "config.network 99");
    config.network = LNSHARD_NETWORK_REGTEST;
    config.shards = 0;
    EXPECT(lnshard_engine_new(&config, &secret, &seed, 0, &tip, &engine),
           LNSHARD_RESULT_INVALID_PARAMETER, "config.shards 0");
    config.shards = 1;
    config.max_funding_satoshis = (uint64_t)1 << 24;
    EXPECT(lnshard_engine_new(&config, &secret, &seed, 0, &tip, &engine),
           LNSHARD_RESULT_INVALID_PARAMETER, "config.max_funding_satoshis 16777216");
    config.max_funding_satoshis = 1000000;
    config.to_self_delay = 5000;
    EXPECT(lnshard_engine_new(&config, &secret, &seed, 0, &tip, &engine),
           LNSHARD_RESULT_INVALID_PARAMETER, "config.to_self_delay 5000 outside 1..=2016");
    config.to_self_delay = 144;
    EXPECT(lnshard_result_message(12345, text, sizeof text, &n), LNSHARD_RESULT_INVALID_PARAMETER,
           "result 12345");
    EXPECT(lnshard_result_message(LNSHARD_RESULT_FULL, text, sizeof text, &n), LNSHARD_RESULT_OK,
           NULL);
    EXPECT(lnshard_set_log_callback(log_cb, NULL, 42), LNSHARD_RESULT_INVALID_PARAMETER,
           "max_level 42");

    /* A store vtable missing a callback. */
    store.userdata = NULL;
    store.read = NULL;
    store.write_batch = NULL;
    store.list = NULL;
    config.store = &store;
    EXPECT(lnshard_engine_new(&config, &secret, &seed, 0, &tip, &engine),
           LNSHARD_RESULT_NULL_PARAMETER, "config.store.read");
    config.store = NULL;

    /* Invalid UTF-8 in a string. */
    config.data_dir = "/tmp/\xff\xfe";
    EXPECT(lnshard_engine_new(&config, &secret, &seed, 0, &tip, &engine), LNSHARD_RESULT_INVALID_UTF8,
           "config.data_dir");
    /* A bad secret key (zero). */
    config.data_dir = argv[1]; /* the embedded store in a real directory */
    EXPECT(lnshard_engine_new(&config, &zero_secret, &seed, 0, &tip, &engine),
           LNSHARD_RESULT_INVALID_PARAMETER, "node_secret");
    EXPECT(lnshard_engine_new(&config, &secret, &seed, 0, &tip, &engine), LNSHARD_RESULT_OK, NULL);
    if (engine == NULL) {
        fprintf(stderr, "no engine\n");
        return 1;
    }
    EXPECT(lnshard_engine_node_id(engine, &id), LNSHARD_RESULT_OK, NULL);

    /* The data directory is this engine's while it lives: a second one is refused, naming
     * the holder's pid. */
    {
        lnshard_engine *second = NULL;
        char pid[64];
        snprintf(pid, sizeof pid, "locked by pid %ld", (long)getpid());
        EXPECT(lnshard_engine_new(&config, &secret, &seed, 0, &tip, &second),
               LNSHARD_RESULT_STORE_LOCKED, pid);
        if (second != NULL) {
            fprintf(stderr, "misuse.c: a second engine opened the locked data directory\n");
            failures++;
            lnshard_engine_free(second);
        }
    }

    /* Bad keys, NULL buffers and oversized lengths. */
    EXPECT(lnshard_engine_new_outbound_connection(engine, 5, &zero_key, &bytes),
           LNSHARD_RESULT_INVALID_PARAMETER, "their_node_id");
    EXPECT(lnshard_engine_new_outbound_connection(engine, 5, NULL, &bytes),
           LNSHARD_RESULT_NULL_PARAMETER, "their_node_id");
    EXPECT(lnshard_engine_handle_bytes(engine, 1, NULL, 5, &bytes), LNSHARD_RESULT_NULL_PARAMETER,
           "parameter bytes is NULL");
    EXPECT(lnshard_engine_wait_ready_connection(engine, 0, NULL, &flag),
           LNSHARD_RESULT_NULL_PARAMETER, "out_conn");
    EXPECT(lnshard_engine_wait_ready_connection(engine, 0, &conn, NULL),
           LNSHARD_RESULT_NULL_PARAMETER, "out_found");
    EXPECT(lnshard_engine_handle_bytes(engine, 1, big, (size_t)LNSHARD_MAX_READ_LEN + 1, &bytes),
           LNSHARD_RESULT_INVALID_PARAMETER, "bytes_len");
    EXPECT(lnshard_engine_send_payment(engine, hops, 21, &hash, &payment_secret, &payment_id),
           LNSHARD_RESULT_INVALID_PARAMETER, "hops_len 21");
    EXPECT(lnshard_engine_send_payment(engine, NULL, 1, &hash, &payment_secret, &payment_id),
           LNSHARD_RESULT_NULL_PARAMETER, "hops");
    EXPECT(lnshard_engine_send_payment(engine, hops, 1, &hash, &payment_secret, &payment_id),
           LNSHARD_RESULT_INVALID_PARAMETER, "hops[0].node_id");
    EXPECT(lnshard_engine_transactions_confirmed(engine, 1, NULL, 3), LNSHARD_RESULT_NULL_PARAMETER,
           "txs");
    EXPECT(lnshard_engine_transactions_confirmed(engine, 1, &tx, (size_t)1 << 40),
           LNSHARD_RESULT_INVALID_PARAMETER, "txs_len");
    tx.index = 1;
    tx.tx = garbage;
    tx.tx_len = sizeof garbage;
    EXPECT(lnshard_engine_transactions_confirmed(engine, 1, &tx, 1),
           LNSHARD_RESULT_INVALID_PARAMETER, "txs[0].tx (5 bytes) is not a serialized transaction");
    tx.tx_len = LNSHARD_MAX_TRANSACTION_LEN + 1;
    EXPECT(lnshard_engine_transactions_confirmed(engine, 1, &tx, 1),
           LNSHARD_RESULT_INVALID_PARAMETER, "txs[0].tx_len");
    EXPECT(lnshard_engine_funding_transaction_generated(engine, &channel, garbage, sizeof garbage),
           LNSHARD_RESULT_INVALID_PARAMETER, "tx (5 bytes)");

    /* Engine errors map to their codes. */
    EXPECT(lnshard_engine_close_channel(engine, &channel), LNSHARD_RESULT_UNKNOWN_CHANNEL,
           "close_channel");
    EXPECT(lnshard_engine_handle_bytes(engine, 77, garbage, 1, &bytes),
           LNSHARD_RESULT_UNKNOWN_CONNECTION, "77");
    EXPECT(lnshard_engine_create_channel(engine, &id, 100000, 0, 1, 2500, &channel),
           LNSHARD_RESULT_API_REFUSED, "not connected");

    /* Lists: an index past the end. */
    EXPECT(lnshard_engine_list_channels(engine, &list), LNSHARD_RESULT_OK, NULL);
    EXPECT(lnshard_channel_list_get(list, 0, &details), LNSHARD_RESULT_INVALID_PARAMETER,
           "index 0 not below the list length 0");
    lnshard_channel_list_free(list);

    /* The last error survives a too-small buffer. */
    EXPECT(lnshard_last_error_message(small, sizeof small, &n), LNSHARD_RESULT_BUFFER_TOO_SMALL,
           "index 0 not below");
    if (lnshard_last_error_length() != strlen("index 0 not below the list length 0")) {
        fprintf(stderr, "misuse.c: last error length %zu\n", lnshard_last_error_length());
        failures++;
    }

    /* The wallet, the bumper and the estimator: NULL pointers and missing callbacks. */
    {
        lnshard_wallet wallet;
        lnshard_bumper *bumper = NULL;
        lnshard_bytes *out_tx = NULL, *out_child = NULL;
        lnshard_fee_estimator estimator;
        lnshard_engine *other = NULL;
        lnshard_txid txid;
        memset(&wallet, 0, sizeof wallet);
        EXPECT(lnshard_engine_fund_channel(engine, NULL, NULL, 2500, &out_tx),
               LNSHARD_RESULT_NULL_PARAMETER, "parameter wallet is NULL");
        EXPECT(lnshard_engine_fund_channel(engine, &wallet, NULL, 2500, &out_tx),
               LNSHARD_RESULT_NULL_PARAMETER, "parameter wallet.list_spendable is NULL");
        EXPECT(lnshard_engine_bump(engine, &wallet, NULL, 0, &out_tx, &out_child),
               LNSHARD_RESULT_NULL_PARAMETER, "wallet.list_spendable");
        EXPECT(lnshard_bumper_new(NULL), LNSHARD_RESULT_NULL_PARAMETER, "out");
        EXPECT(lnshard_bumper_new(&bumper), LNSHARD_RESULT_OK, NULL);
        EXPECT(lnshard_bumper_handle(bumper, engine, &wallet, NULL, 0, &out_tx, &out_child),
               LNSHARD_RESULT_NULL_PARAMETER, "wallet.list_spendable");
        EXPECT(lnshard_bumper_handle((const lnshard_bumper *)engine, engine, &wallet, NULL, 0,
                                     &out_tx, &out_child),
               LNSHARD_RESULT_INVALID_HANDLE, "not a lnshard_bumper");
        EXPECT(lnshard_bumper_abandon(bumper, &wallet, NULL, &flag), LNSHARD_RESULT_NULL_PARAMETER,
               "wallet.list_spendable");
        EXPECT(lnshard_bumper_blocks_disconnected(NULL, 1), LNSHARD_RESULT_NULL_PARAMETER, "bumper");
        lnshard_bumper_free(bumper);
        EXPECT(lnshard_transaction_txid(garbage, sizeof garbage, &txid),
               LNSHARD_RESULT_INVALID_PARAMETER, "not a serialized transaction");
        EXPECT(lnshard_transaction_txid(garbage, sizeof garbage, NULL),
               LNSHARD_RESULT_NULL_PARAMETER, "out_txid");
        EXPECT(lnshard_wallet_sink_push_bytes(NULL, garbage, sizeof garbage),
               LNSHARD_RESULT_NULL_PARAMETER, "sink");
        estimator.userdata = NULL;
        estimator.estimate = NULL;
        config.fee_estimator = &estimator;
        EXPECT(lnshard_engine_new(&config, &secret, &seed, 0, &tip, &other),
               LNSHARD_RESULT_NULL_PARAMETER, "parameter config.fee_estimator.estimate is NULL");
        config.fee_estimator = NULL;
    }

    /* _free(NULL) is a no-op for every free function. */
    lnshard_engine_free(NULL);
    lnshard_bytes_free(NULL);
    lnshard_event_free(NULL);
    lnshard_channel_list_free(NULL);
    lnshard_bumper_free(NULL);
    if (lnshard_bytes_len(NULL) != 0 || lnshard_bytes_data(NULL) != NULL ||
        lnshard_channel_list_len(NULL) != 0 ||
        lnshard_event_get_kind(NULL) != LNSHARD_EVENT_KIND_UNKNOWN ||
        lnshard_engine_is_idle(NULL) || lnshard_engine_shard_count(NULL) != 0 ||
        lnshard_bumper_len(NULL) != 0) {
        fprintf(stderr, "misuse.c: an infallible getter mishandled NULL\n");
        failures++;
    }
    printf("ok free(NULL) no-ops\n");

    lnshard_engine_free(engine);
    if (failures != 0) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("all misuse checks passed\n");
    return 0;
}
