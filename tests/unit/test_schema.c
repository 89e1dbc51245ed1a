/*
 * test_schema.c - building the event schema: type names, spec validation,
 * the field lookup (many fields, names that collide in the hash), roles and
 * their implicit fields, and that a failed call leaves the schema unchanged.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

/* The module's own test may look at the lookup table. */
#define RTS_SCHEMA_PRIVATE
#include "event/schema.h"
#include "test.h"

TEST(types)
{
    enum rts_field_type t;
    int i;

    CHECK_STR(rts_field_type_name(RTS_FT_STRING), "string");
    CHECK_STR(rts_field_type_name(RTS_FT_INT), "int");
    CHECK_STR(rts_field_type_name(RTS_FT_FLOAT), "float");
    CHECK_STR(rts_field_type_name(RTS_FT_BOOL), "bool");
    CHECK_STR(rts_field_type_name(RTS_FT_TIMESTAMP), "timestamp");
    CHECK_STR(rts_field_type_name((enum rts_field_type)0), "unknown");
    CHECK_STR(rts_field_type_name((enum rts_field_type)99), "unknown");
    for (i = RTS_FT_STRING; i <= RTS_FT_TIMESTAMP; i++) {
        CHECK_INT(rts_field_type_parse(rts_field_type_name((enum rts_field_type)i), &t), 0);
        CHECK_INT(t, i);
    }
    CHECK_INT(rts_field_type_parse("double", &t), -1);
    CHECK_INT(rts_field_type_parse("", &t), -1);
    CHECK_INT(rts_field_type_parse(NULL, &t), -1);
    CHECK_INT(rts_field_value_type(RTS_FT_STRING), RTS_T_STR);
    CHECK_INT(rts_field_value_type(RTS_FT_BOOL), RTS_T_BOOL);
    CHECK_INT(rts_field_value_type(RTS_FT_INT), RTS_T_NUM);
    CHECK_INT(rts_field_value_type(RTS_FT_FLOAT), RTS_T_NUM);
    CHECK_INT(rts_field_value_type(RTS_FT_TIMESTAMP), RTS_T_NUM);
}

TEST(spec_errors)
{
    struct rts_schema *s = rts_schema_new();
    struct rts_errbuf eb = {0};
    struct rts_field_spec f = {0};
    char longname[300];

    f.name = "a";
    f.type = RTS_FT_INT;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_OK);
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "field 'a' is declared twice");
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    f.name = "";
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "field name is empty");
    f.name = NULL;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    memset(longname, 'n', sizeof(longname));
    longname[sizeof(longname) - 1] = '\0';
    f.name = longname;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    f.name = "b";
    f.required = 1;
    f.has_default = 1;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "field 'b': a required field cannot have a default");
    f.required = 0;
    f.def_num = 1.5;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "field 'b': the default 1.5 is not an integer");
    f.def_num = NAN;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    f.def_num = 1;
    f.has_min = 1;
    f.min = 2;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "field 'b': the default 1 is outside min/max");
    f.has_default = 0;
    f.has_max = 1;
    f.max = 0;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "field 'b': min 2 is above max 0");
    f.max = NAN;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    f.has_min = f.has_max = 0;
    f.max_len = 3;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "field 'b': max_len applies to strings, not int");

    memset(&f, 0, sizeof(f));
    f.name = "s";
    f.type = RTS_FT_STRING;
    f.has_min = 1;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "field 's': min/max apply to numbers, not string");
    f.has_min = 0;
    f.has_default = 1;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL); /* def_str NULL */
    f.def_str = "toolong";
    f.max_len = 3;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    f.type = (enum rts_field_type)0;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);

    memset(&f, 0, sizeof(f));
    f.name = "flag";
    f.type = RTS_FT_BOOL;
    f.has_default = 1;
    f.def_num = 2;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    f.name = "ts";
    f.type = RTS_FT_TIMESTAMP;
    f.def_num = -1;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    CHECK_INT(rts_schema_nfields(s), 1);
    CHECK_INT(rts_schema_add(s, NULL, &eb), RTS_ERR_INVAL);

    /* A valid string default is copied. */
    {
        char def[4] = "FR";
        memset(&f, 0, sizeof(f));
        f.name = "country";
        f.type = RTS_FT_STRING;
        f.has_default = 1;
        f.def_str = def;
        f.max_len = 2;
        CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_OK);
        def[0] = 'X';
        CHECK_STR(rts_schema_field(s, 1)->def_str, "FR");
        CHECK(rts_schema_field(s, 1)->name != f.name);
    }
    rts_schema_free(s);
    rts_schema_free(NULL);
}

TEST(lookup)
{
    struct rts_schema *s = rts_schema_new();
    struct rts_field_spec f = {0};
    char name[32];
    int i;

    CHECK_INT(rts_schema_find(s, "x", 1), -1);
    f.type = RTS_FT_FLOAT;
    for (i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "f_%04d_x", i);
        f.name = name;
        CHECK_INT(rts_schema_add(s, &f, NULL), RTS_ERR_OK);
    }
    for (i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "f_%04d_x", i);
        CHECK_INT(rts_schema_find(s, name, strlen(name)), i);
        CHECK_STR(rts_schema_field(s, (size_t)i)->name, name);
    }
    CHECK_INT(rts_schema_find(s, "f_1000_x", 8), -1);
    CHECK_INT(rts_schema_find(s, "f_0001_", 7), -1);
    CHECK_INT(rts_schema_find(s, "f_0001_xy", 9), -1);
    CHECK_INT(rts_schema_find(s, "", 0), -1);
    CHECK_INT(rts_schema_find(s, NULL, 0), -1);
    CHECK(rts_schema_field(s, 1000) == NULL);
    CHECK_INT(rts_schema_nfields(s), 1000);
    rts_schema_free(s);

    /* Names that differ only in the middle share their hash input: found by probing. */
    s = rts_schema_new();
    for (i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "abcdefgh_%03d_ijklmnop", i);
        f.name = name;
        CHECK_INT(rts_schema_add(s, &f, NULL), RTS_ERR_OK);
    }
    for (i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "abcdefgh_%03d_ijklmnop", i);
        CHECK_INT(rts_schema_find(s, name, strlen(name)), i);
    }
    CHECK_INT(rts_schema_find(s, "abcdefgh_300_ijklmnop", 21), -1);
    rts_schema_free(s);

    /* Names of every length up to the limit; lookups by prefix fail. */
    s = rts_schema_new();
    {
        char nm[RTS_SCHEMA_MAX_NAME + 1];
        for (i = 1; i <= RTS_SCHEMA_MAX_NAME; i++) {
            memset(nm, 'a' + i % 26, (size_t)i);
            nm[i] = '\0';
            f.name = nm;
            CHECK_INT(rts_schema_add(s, &f, NULL), RTS_ERR_OK);
        }
        for (i = 1; i <= RTS_SCHEMA_MAX_NAME; i++) {
            memset(nm, 'a' + i % 26, (size_t)i);
            CHECK_INT(rts_schema_find(s, nm, (size_t)i), i - 1);
            nm[i - 1] = '#';
            CHECK_INT(rts_schema_find(s, nm, (size_t)i), -1);
        }
    }
    rts_schema_free(s);
}

TEST(roles)
{
    struct rts_schema *s = rts_schema_new();
    struct rts_errbuf eb = {0};
    struct rts_field_spec f = {0};

    f.name = "n";
    f.type = RTS_FT_INT;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_OK);
    f.name = "card";
    f.type = RTS_FT_STRING;
    f.required = 1;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_OK);
    CHECK_INT(rts_schema_role(s, RTS_ROLE_KEY), -1);

    /* Refused roles leave the schema as it was. */
    CHECK_INT(rts_schema_set_roles(s, "id", "n", NULL, &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "event.key: field 'n' is declared as int") != NULL);
    CHECK_INT(rts_schema_set_roles(s, "n", "card", NULL, &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "event.id: field 'n'") != NULL);
    CHECK_INT(rts_schema_set_roles(s, "id", "card", "n", &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "must be a timestamp") != NULL);
    CHECK_INT(rts_schema_set_roles(s, "id", NULL, NULL, &eb), RTS_ERR_INVAL);
    CHECK_INT(rts_schema_set_roles(s, "", "card", NULL, &eb), RTS_ERR_INVAL);
    CHECK_INT(rts_schema_nfields(s), 2);
    CHECK_INT(rts_schema_find(s, "id", 2), -1);

    CHECK_INT(rts_schema_set_roles(s, "id", "card", "ts", &eb), RTS_ERR_OK);
    CHECK_INT(rts_schema_nfields(s), 4);
    CHECK_INT(rts_schema_role(s, RTS_ROLE_ID), 2);
    CHECK_INT(rts_schema_role(s, RTS_ROLE_KEY), 1);
    CHECK_INT(rts_schema_role(s, RTS_ROLE_TIME), 3);
    CHECK_INT(rts_schema_role(s, 3), -1);
    CHECK_INT(rts_schema_role(s, -1), -1);
    CHECK(!rts_schema_field_implicit(s, 1));
    CHECK(rts_schema_field_implicit(s, 2));
    CHECK(rts_schema_field_implicit(s, 3));
    CHECK(!rts_schema_field_implicit(s, 9));
    CHECK_INT(rts_schema_field(s, 2)->type, RTS_FT_STRING);
    CHECK_INT(rts_schema_field(s, 2)->required, 1);
    CHECK_STR(rts_schema_field(s, 2)->name, "id");
    CHECK_INT(rts_schema_field(s, 3)->type, RTS_FT_TIMESTAMP);
    CHECK_INT(rts_schema_field(s, 3)->required, 0);
    CHECK_INT(rts_schema_find(s, "ts", 2), 3);

    /* Once only; no fields after. */
    CHECK_INT(rts_schema_set_roles(s, "id", "card", "ts", &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "event roles are already set");
    f.name = "late";
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_INVAL);
    CHECK_INT(rts_schema_nfields(s), 4);
    rts_schema_free(s);

    /* The time cannot also be the id or the key; a refusal adds nothing. */
    s = rts_schema_new();
    CHECK_INT(rts_schema_set_roles(s, "x", "k", "x", &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "event.time: field 'x' is also the id or key") != NULL);
    CHECK_INT(rts_schema_nfields(s), 0);
    CHECK_INT(rts_schema_find(s, "x", 1), -1);
    CHECK_INT(rts_schema_set_roles(s, NULL, "k", "k", &eb), RTS_ERR_INVAL);
    CHECK_INT(rts_schema_nfields(s), 0);
    CHECK_INT(rts_schema_set_roles(s, NULL, "k", "t", &eb), RTS_ERR_OK);
    CHECK_INT(rts_schema_nfields(s), 2);
    rts_schema_free(s);

    /* id == key, time absent; a key default must be a usable key. */
    s = rts_schema_new();
    CHECK_INT(rts_schema_set_roles(s, "k", "k", NULL, &eb), RTS_ERR_OK);
    CHECK_INT(rts_schema_nfields(s), 1);
    CHECK_INT(rts_schema_role(s, RTS_ROLE_ID), 0);
    CHECK_INT(rts_schema_role(s, RTS_ROLE_KEY), 0);
    CHECK_INT(rts_schema_role(s, RTS_ROLE_TIME), -1);
    rts_schema_free(s);
    s = rts_schema_new();
    memset(&f, 0, sizeof(f));
    f.name = "k";
    f.type = RTS_FT_STRING;
    f.has_default = 1;
    f.def_str = "";
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_OK);
    CHECK_INT(rts_schema_set_roles(s, NULL, "k", NULL, &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "must be 1 to 256 bytes") != NULL);
    rts_schema_free(s);
}

/* Typical schemas get a collision-free table: one probe per known key. */
TEST(perfect_table)
{
    static const char *const names[] = {
        "txn_id",  "card_id",   "ts", "amount",     "merchant_id", "mcc", "country",  "is_fraud",
        "channel", "device_id", "ip", "user_agent", "lat",         "lon", "currency", "entry_mode"};
    struct rts_field_spec f = {0};
    size_t n, i;

    for (n = 1; n <= sizeof(names) / sizeof(names[0]); n++) {
        struct rts_schema *s = rts_schema_new();
        f.type = RTS_FT_STRING;
        for (i = 0; i < n; i++) {
            f.name = names[i];
            CHECK_INT(rts_schema_add(s, &f, NULL), RTS_ERR_OK);
        }
        for (i = 0; i < n; i++) {
            uint64_t key = rts_schema_name_key(names[i], strlen(names[i]));
            uint32_t h = rts_schema_lut_slot(key, s->lut_seed, s->lut_shift);
            CHECK_INT(s->lut[h], i + 1);
        }
        rts_schema_free(s);
    }
}

int main(void)
{
    RUN(types);
    RUN(spec_errors);
    RUN(lookup);
    RUN(roles);
    RUN(perfect_table);
    return TEST_EXIT();
}
