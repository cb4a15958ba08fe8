/*
 * handles.c: what lnshard does with a handle that is not what the call expects.
 *
 * Every handle lnshard hands out (an engine, a byte buffer, an event, a list) is registered
 * under its type until its _free; every call checks the handle it is given against that
 * registry before touching anything behind it. So an engine used after lnshard_engine_free,
 * a lnshard_bytes passed where an engine is expected, or a pointer lnshard never handed out
 * returns LNSHARD_RESULT_INVALID_HANDLE (NULL, 0 or false for the calls that return those),
 * and lnshard_last_error_message names the type the call wanted. Freeing a handle twice is
 * still undefined behaviour: do not rely on this program's checks to find it.
 *
 * Run by crates/ffi/tests/c_programs.rs (also under valgrind: no call here reads freed
 * memory); `make run` in this directory builds and runs it too.
 */
#include <stdio.h>
#include <string.h>

#include "lnshard.h"

static int failures;

static void last_error(char *msg, size_t len) {
    size_t n = 0;
    msg[0] = 0;
    lnshard_last_error_message(msg, len, &n);
}

static void expect(lnshard_result got, lnshard_result want, const char *needle, const char *what,
                   int line) {
    char msg[512];
    last_error(msg, sizeof msg);
    if (got != want) {
        fprintf(stderr, "handles.c:%d: %s returned %u, want %u (%s)\n", line, what, (unsigned)got,
                (unsigned)want, msg);
        failures++;
    } else if (needle != NULL && strstr(msg, needle) == NULL) {
        fprintf(stderr, "handles.c:%d: %s: message \"%s\" does not name \"%s\"\n", line, what, msg,
                needle);
        failures++;
    } else {
        printf("ok %-64.64s -> %u \"%s\"\n", what, (unsigned)got, msg);
    }
}

/* A call that returns a size, a flag or a pointer: `ok` says whether it returned the
 * documented NULL/0/false; the last error must name `needle`. */
static void expect_empty(int ok, const char *needle, const char *what, int line) {
    char msg[512];
    last_error(msg, sizeof msg);
    if (!ok) {
        fprintf(stderr, "handles.c:%d: %s did not return NULL/0/false\n", line, what);
        failures++;
    } else if (strstr(msg, needle) == NULL) {
        fprintf(stderr, "handles.c:%d: %s: message \"%s\" does not name \"%s\"\n", line, what, msg,
                needle);
        failures++;
    } else {
        printf("ok %-64.64s -> empty \"%s\"\n", what, msg);
    }
}

#define EXPECT(call, want, needle) expect((call), (want), (needle), #call, __LINE__)
#define EXPECT_EMPTY(cond, needle) expect_empty((cond), (needle), #cond, __LINE__)

/* The secp256k1 generator: a valid public key to dial. */
static const lnshard_node_id G = {{0x02, 0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0,
                                   0x62, 0x95, 0xce, 0x87, 0x0b, 0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d,
                                   0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b, 0x16, 0xf8, 0x17, 0x98}};

static lnshard_engine *start(const lnshard_engine_config *config, uint8_t key_byte) {
    lnshard_secret_key secret;
    lnshard_seed seed;
    lnshard_block_hash tip;
    lnshard_engine *engine = NULL;
    memset(secret.bytes, key_byte, sizeof secret.bytes);
    memset(seed.bytes, 0x22, sizeof seed.bytes);
    memset(tip.bytes, 0, sizeof tip.bytes);
    if (lnshard_engine_new(config, &secret, &seed, 0, &tip, &engine) != LNSHARD_RESULT_OK) {
        char msg[512];
        last_error(msg, sizeof msg);
        fprintf(stderr, "lnshard_engine_new: %s\n", msg);
        return NULL;
    }
    return engine;
}

int main(void) {
    lnshard_engine_config config;
    lnshard_engine *engine, *other;
    lnshard_bytes *act_one = NULL;
    lnshard_channel_list *list = NULL;
    lnshard_bytes *out = NULL;
    lnshard_channel_details details;
    lnshard_event *event = NULL;
    lnshard_node_id id;
    lnshard_channel_id channel;
    bool flag = false;
    uint64_t not_a_handle[4] = {0, 0, 0, 0};
    memset(channel.bytes, 0, sizeof channel.bytes);

    lnshard_engine_config_default(&config);
    config.shards = 1;
    engine = start(&config, 0x11);
    if (engine == NULL) {
        return 1;
    }
    EXPECT(lnshard_engine_node_id(engine, &id), LNSHARD_RESULT_OK, NULL);
    EXPECT(lnshard_engine_health(engine), LNSHARD_RESULT_OK, NULL);
    EXPECT(lnshard_engine_new_outbound_connection(engine, 1, &G, &act_one), LNSHARD_RESULT_OK,
           NULL);
    EXPECT(lnshard_engine_list_channels(engine, &list), LNSHARD_RESULT_OK, NULL);

    /* A handle of another type where an engine is expected, and the other way round. */
    EXPECT(lnshard_engine_node_id((lnshard_engine *)act_one, &id), LNSHARD_RESULT_INVALID_HANDLE,
           "parameter engine is a lnshard_bytes, not a lnshard_engine");
    EXPECT(lnshard_engine_new_inbound_connection((lnshard_engine *)act_one, 2),
           LNSHARD_RESULT_INVALID_HANDLE, "not a lnshard_engine");
    EXPECT(lnshard_engine_next_event((lnshard_engine *)list, &event),
           LNSHARD_RESULT_INVALID_HANDLE, "is a lnshard_channel_list, not a lnshard_engine");
    EXPECT_EMPTY(lnshard_engine_shard_count((lnshard_engine *)act_one) == 0, "lnshard_engine");
    EXPECT_EMPTY(lnshard_bytes_len((const lnshard_bytes *)engine) == 0,
                 "parameter bytes is a lnshard_engine, not a lnshard_bytes");
    EXPECT_EMPTY(lnshard_bytes_data((const lnshard_bytes *)list) == NULL, "lnshard_bytes");
    EXPECT_EMPTY(lnshard_event_get_kind((const lnshard_event *)act_one) ==
                     LNSHARD_EVENT_KIND_UNKNOWN,
                 "is a lnshard_bytes, not a lnshard_event");
    EXPECT(lnshard_engine_connection_outputs((lnshard_engine *)list, 1, &out, &flag),
           LNSHARD_RESULT_INVALID_HANDLE, "not a lnshard_engine");
    EXPECT(lnshard_channel_list_get((const lnshard_channel_list *)act_one, 0, &details),
           LNSHARD_RESULT_INVALID_HANDLE, "not a lnshard_channel_list");

    /* A pointer lnshard never handed out. */
    EXPECT(lnshard_engine_node_id((lnshard_engine *)not_a_handle, &id),
           LNSHARD_RESULT_INVALID_HANDLE, "not a live lnshard_engine");

    /* Freeing through the wrong type frees nothing: the engine still works. */
    lnshard_bytes_free((lnshard_bytes *)engine);
    EXPECT(lnshard_engine_node_id(engine, &id), LNSHARD_RESULT_OK, NULL);

    /* A buffer used after lnshard_bytes_free. */
    if (lnshard_bytes_len(act_one) == 0) {
        fprintf(stderr, "handles.c: act one is empty\n");
        failures++;
    }
    lnshard_bytes_free(act_one);
    EXPECT_EMPTY(lnshard_bytes_len(act_one) == 0, "not a live lnshard_bytes");
    EXPECT_EMPTY(lnshard_bytes_data(act_one) == NULL, "lnshard_bytes");
    lnshard_channel_list_free(list);
    EXPECT(lnshard_channel_list_get(list, 0, &details), LNSHARD_RESULT_INVALID_HANDLE,
           "not a live lnshard_channel_list");

    /* The engine used after lnshard_engine_free. */
    lnshard_engine_free(engine);
    EXPECT(lnshard_engine_node_id(engine, &id), LNSHARD_RESULT_INVALID_HANDLE,
           "parameter engine is not a live lnshard_engine");
    EXPECT(lnshard_engine_new_inbound_connection(engine, 3), LNSHARD_RESULT_INVALID_HANDLE,
           "lnshard_engine");
    EXPECT(lnshard_engine_close_channel(engine, &channel), LNSHARD_RESULT_INVALID_HANDLE,
           "lnshard_engine");
    EXPECT(lnshard_engine_health(engine), LNSHARD_RESULT_INVALID_HANDLE, "lnshard_engine");
    EXPECT_EMPTY(lnshard_engine_shard_count(engine) == 0, "lnshard_engine");
    EXPECT_EMPTY(!lnshard_engine_is_idle(engine), "lnshard_engine");

    /* A new engine may reuse the freed one's memory or slot: the old handle still fails, the
     * new one works (the handle carries a generation). */
    other = start(&config, 0x12);
    if (other == NULL) {
        return 1;
    }
    EXPECT(lnshard_engine_node_id(engine, &id), LNSHARD_RESULT_INVALID_HANDLE, "lnshard_engine");
    EXPECT(lnshard_engine_node_id(other, &id), LNSHARD_RESULT_OK, NULL);
    lnshard_engine_free(other);

    if (failures != 0) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("all handle checks passed\n");
    return 0;
}
