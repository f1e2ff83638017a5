/* A machine for lclock (SPEC section 9): Lamport, vector and hybrid logical clocks.
 * Build and run:  cc -O2 -o vm examples/impl/c/vm.c
 *                 lclock sim --impl ./vm --duration 60
 * lclock sends one JSON line per request on stdin; we answer each with one line on stdout.
 * The requests are small and regular, so a key finder does instead of a JSON library:
 * it accepts any spacing and key order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef long long i64;
static i64 lclock, vclock[1024], hl, hc;
static int me, n, has_vector, has_hlc;

/* The value after "key": (any spacing), or NULL. A "key" not followed by ':' is a value. */
static const char *find(const char *s, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    for (const char *p = strstr(s, pat); p; p = strstr(p + 1, pat)) {
        const char *q = p + strlen(pat);
        while (*q == ' ' || *q == '\t') q++;
        if (*q == ':') { q++; while (*q == ' ' || *q == '\t') q++; return q; }
    }
    return NULL;
}
static i64 num(const char *s, const char *key) { const char *p = find(s, key); return p ? strtoll(p, NULL, 10) : 0; }
static i64 max(i64 a, i64 b) { return a > b ? a : b; }
/* The i-th integer of a JSON list starting at p ('['). */
static i64 item(const char *p, int i) {
    p++;
    while (i-- > 0) p = strchr(p, ',') + 1;
    return strtoll(p, NULL, 10);
}

static void hlc_update(i64 pt, const char *m) {  /* HLC (Kulkarni et al. 2014) */
    i64 lm = m ? item(m, 0) : hl, cm = m ? item(m, 1) : hc, l = max(max(hl, lm), pt);
    if (!m) hc = l == hl ? hc + 1 : 0;
    else if (l == hl && l == lm) hc = max(hc, cm) + 1;
    else if (l == hl) hc = hc + 1;
    else if (l == lm) hc = cm + 1;
    else hc = 0;
    hl = l;
}

static void print_clocks(void) {
    printf("\"lclock\":%lld", lclock);
    if (has_vector) {
        printf(",\"vclock\":[");
        for (int i = 0; i < n; i++) printf(i ? ",%lld" : "%lld", vclock[i]);
        printf("]");
    }
    if (has_hlc) printf(",\"hlc\":[%lld,%lld]", hl, hc);
}

static void tick(const char *req) {
    const char *msg = find(req, "msg"), *what = find(req, "do");
    int send = what && !strncmp(what, "\"send\"", 6);
    if (msg) {  /* a receive: the message's clocks */
        lclock = max(lclock, num(msg, "lclock")) + 1;
        if (has_vector) { const char *v = find(msg, "vclock"); for (int i = 0; i < n; i++) vclock[i] = max(vclock[i], item(v, i)); }
        if (has_hlc) hlc_update(num(req, "pt"), find(msg, "hlc"));
    } else {  /* send or internal: one event */
        lclock++;
        if (has_hlc) hlc_update(num(req, "pt"), NULL);
    }
    if (has_vector) vclock[me - 1]++;
    printf("{\"type\":\"done\",\"tick\":%lld,", num(req, "tick"));
    print_clocks();
    if (send) { printf(",\"msg\":{"); print_clocks(); printf("}"); }
    printf("}\n");
}

int main(void) {
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        const char *type = find(line, "type");
        if (!type) return 1;
        if (!strncmp(type, "\"init\"", 6)) {
            me = (int)num(line, "machine"); n = (int)num(line, "machines");
            if (n < 1 || n > 1024) return 1;
            const char *c = find(line, "clocks");
            has_vector = c && strstr(c, "\"vector\"") != NULL && strstr(c, "\"vector\"") < strchr(c, ']');
            has_hlc = c && strstr(c, "\"hlc\"") != NULL && strstr(c, "\"hlc\"") < strchr(c, ']');
            printf("{\"type\":\"init_ok\"}\n");
        } else if (!strncmp(type, "\"tick\"", 6)) {
            tick(line);
        } else {
            printf("{\"type\":\"stop_ok\"}\n");
            fflush(stdout);
            return 0;
        }
        fflush(stdout);
    }
    return 0;
}
