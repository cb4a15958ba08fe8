/*
 * Built by crates/ffi/tests/c_programs.rs against an installed liblnshard, with only what
 * `pkg-config --cflags --libs lnshard` gives (and an rpath to the prefix's lib directory),
 * and run without LD_LIBRARY_PATH: the header's version macros agree with each other and
 * with the library loaded at run time, and an engine starts and stops.
 */
#include <lnshard.h>

#include <stdio.h>
#include <string.h>

#define STR2(x) #x
#define STR(x) STR2(x)

static int failures;

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "installed.c: %s\n", what);
        failures++;
    }
}

int main(void) {
    lnshard_engine_config config;
    lnshard_engine *engine = NULL;
    lnshard_secret_key secret;
    lnshard_seed seed;
    lnshard_block_hash tip;
    lnshard_node_id id;
    char text[128];
    size_t n = 0, i;

    /* The macros describe one version, and the library loaded is that version. */
    check(strcmp(LNSHARD_VERSION, STR(LNSHARD_VERSION_MAJOR) "." STR(LNSHARD_VERSION_MINOR) "." STR(
                                      LNSHARD_VERSION_PATCH)) == 0,
          "LNSHARD_VERSION is not MAJOR.MINOR.PATCH");
    check(LNSHARD_VERSION_NUMBER ==
              LNSHARD_VERSION_MAJOR * 1000000 + LNSHARD_VERSION_MINOR * 1000 + LNSHARD_VERSION_PATCH,
          "LNSHARD_VERSION_NUMBER is not MAJOR * 1000000 + MINOR * 1000 + PATCH");
    check(strcmp(lnshard_version(), LNSHARD_VERSION) == 0,
          "lnshard_version() differs from LNSHARD_VERSION");
    check(lnshard_version_number() == LNSHARD_VERSION_NUMBER,
          "lnshard_version_number() differs from LNSHARD_VERSION_NUMBER");

    /* A result code is passed as its enum. */
    check(lnshard_result_message(LNSHARD_RESULT_OK, text, sizeof text, &n) == LNSHARD_RESULT_OK &&
              strcmp(text, "ok") == 0,
          "lnshard_result_message(LNSHARD_RESULT_OK)");

    memset(secret.bytes, 0x11, sizeof secret.bytes);
    memset(seed.bytes, 0x22, sizeof seed.bytes);
    memset(tip.bytes, 0, sizeof tip.bytes);
    check(lnshard_engine_config_default(&config) == LNSHARD_RESULT_OK, "config_default");
    config.shards = 1;
    config.data_dir = NULL;
    check(lnshard_engine_new(&config, &secret, &seed, 0, &tip, &engine) == LNSHARD_RESULT_OK,
          "engine_new");
    check(lnshard_engine_node_id(engine, &id) == LNSHARD_RESULT_OK, "node_id");
    lnshard_engine_free(engine);

    printf("installed lnshard %s (header %s), node ", lnshard_version(), LNSHARD_VERSION);
    for (i = 0; i < sizeof id.bytes; i++) {
        printf("%02x", id.bytes[i]);
    }
    printf("\n");
    if (failures > 0) {
        return 1;
    }
    printf("all install checks passed\n");
    return 0;
}
