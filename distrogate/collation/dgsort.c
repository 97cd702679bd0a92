/* dgsort: sort a corpus under many locales with the running system's own glibc.
 *
 * Compiled on the host by distrogate (gcc -O2, no fortify, libc only, old symbol
 * versions) and shipped into each guest, so that every image sorts with its own
 * libc and its own locale data.
 *
 * usage: dgsort [-j JOBS] [-s STRIDE] [-O LOCALE:PATH]... CORPUS LOCALE...
 *   CORPUS   NUL-terminated UTF-8 strings ("-" reads standard input)
 *   LOCALE   locale names as `locale -a` prints them
 *   -j JOBS  worker processes (locales are shared among them)
 *   -O L:P   also write the order for locale L to file P: the sorted string
 *            indices as little-endian uint32 (strings the locale's charset
 *            cannot encode are left out)
 *   -s STRIDE  which adjacent pairs of the order strcoll_l verifies. Sampled pairs
 *            -- those with a supplementary-plane character (glibc's strcoll takes
 *            up to ~25 us for one) and those of two single characters from U+3400
 *            on (the big ranges of ideographs and syllables, compared at one
 *            position) -- only when the first string's corpus index is a multiple
 *            of STRIDE; every other pair always. 1 (default): every pair; 0: none.
 *
 * Output, one line per locale, in argument order:
 *   LOCALE \t STATUS \t CODESET \t INCLUDED \t TIES \t FINGERPRINT \t SECONDS
 *          \t CHECKED \t DISAGREEMENTS \t STRCOLL_SECONDS \t EXAMPLES
 * STATUS is "ok", "missing" (newlocale failed) or "error:<what>".
 * FINGERPRINT is two FNV-1a 64-bit hashes of the sorted index sequence.
 * Order: strxfrm key (strcmp), then the bytes of the string (as PostgreSQL
 * breaks ties of deterministic collations), so the order is total.
 * Verification: each adjacent pair (a, b) of that order that -s selects is compared
 * again the way PostgreSQL compares (strcoll_l, ties broken by strcmp); a pair that
 * this comparison puts the other way round is a disagreement between strxfrm and
 * strcoll. CHECKED counts the pairs verified (strcoll calls, STRCOLL_SECONDS),
 * DISAGREEMENTS the pairs it reverses; EXAMPLES lists the first few as "I,J" corpus
 * indices joined by ";" ("-" if none). SECONDS is the sort alone.
 */
#include <errno.h>
#include <iconv.h>
#include <langinfo.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINE_MAX_OUT 1024
#define MAX_DISAGREE_EXAMPLES 8
#define USAGE "usage: dgsort [-j JOBS] [-s STRIDE] [-O LOCALE:PATH]... CORPUS LOCALE...\n"

#if defined(DGSORT_OWN_START) && defined(__x86_64__)
/* Our own entry point, bound to the oldest __libc_start_main, so the binary also runs on
 * glibc older than 2.34 (whose crt1.o would require __libc_start_main@GLIBC_2.34).
 * Built with -nostartfiles; there are no constructors to run. */
__asm__(".symver __libc_start_main,__libc_start_main@GLIBC_2.2.5");
__asm__(".text\n"
        ".globl _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "  xor %ebp, %ebp\n"
        "  mov %rdx, %r9\n"
        "  pop %rsi\n"
        "  mov %rsp, %rdx\n"
        "  and $-16, %rsp\n"
        "  push %rax\n"
        "  push %rsp\n"
        "  xor %r8d, %r8d\n"
        "  xor %ecx, %ecx\n"
        "  lea main(%rip), %rdi\n"
        "  call *__libc_start_main@GOTPCREL(%rip)\n"
        "  hlt\n");
#endif

struct item {
    uint64_t head[2]; /* the key's first 16 bytes, big-endian, zero-padded */
    const char *key;
    const char *text;
    uint32_t index;
};

static char *corpus;
static size_t corpus_len;
static const char **strings;
static size_t nstrings;
static unsigned long strcoll_stride = 1;

static double now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "dgsort: out of memory (%zu bytes)\n", n);
        exit(3);
    }
    return p;
}

static void read_corpus(const char *path) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 1 << 20, n;
    if (!f) {
        fprintf(stderr, "dgsort: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    corpus = xmalloc(cap + 1);
    corpus_len = 0;
    while ((n = fread(corpus + corpus_len, 1, cap - corpus_len, f)) > 0) {
        corpus_len += n;
        if (corpus_len == cap) {
            cap *= 2;
            corpus = realloc(corpus, cap + 1);
            if (!corpus) {
                fprintf(stderr, "dgsort: out of memory reading corpus\n");
                exit(3);
            }
        }
    }
    if (f != stdin)
        fclose(f);
    if (corpus_len && corpus[corpus_len - 1] != '\0')
        corpus[corpus_len++] = '\0';
    nstrings = 0;
    for (size_t i = 0; i < corpus_len; i++)
        if (corpus[i] == '\0')
            nstrings++;
    strings = xmalloc(nstrings * sizeof *strings);
    size_t k = 0, start = 0;
    for (size_t i = 0; i < corpus_len; i++)
        if (corpus[i] == '\0') {
            strings[k++] = corpus + start;
            start = i + 1;
        }
}

/* Most comparisons are decided by the keys' first 16 bytes, kept in the item itself: integer
 * compares on the array being sorted, instead of strcmp through pointers into a large key
 * arena (cache misses, and vector code that an emulated CPU runs slowly). */
static uint64_t key_head(const char *key, size_t len, size_t at) {
    uint64_t v = 0;
    for (size_t i = at; i < at + 8; i++)
        v = (v << 8) | (i < len ? (unsigned char)key[i] : 0);
    return v;
}

static int cmp_item(const void *a, const void *b) {
    const struct item *x = a, *y = b;
    if (x->head[0] != y->head[0])
        return x->head[0] < y->head[0] ? -1 : 1;
    if (x->head[1] != y->head[1])
        return x->head[1] < y->head[1] ? -1 : 1;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    c = strcmp(x->text, y->text);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Append s to the arena, growing it; returns the offset. */
struct arena {
    char *buf;
    size_t len, cap;
};

static size_t arena_reserve(struct arena *a, size_t n) {
    if (a->len + n > a->cap) {
        size_t cap = a->cap ? a->cap : (1 << 20);
        while (a->len + n > cap)
            cap *= 2;
        a->buf = realloc(a->buf, cap);
        if (!a->buf) {
            fprintf(stderr, "dgsort: out of memory (arena %zu)\n", cap);
            exit(3);
        }
        a->cap = cap;
    }
    return a->len;
}

/* Whether a UTF-8 string has a supplementary-plane character (a four-byte sequence). */
static int supplementary(const char *utf8) {
    for (; *utf8; utf8++)
        if ((unsigned char)*utf8 >= 0xF0)
            return 1;
    return 0;
}

/* Whether a UTF-8 string is exactly one character of the BMP from U+3400 on (CJK ideographs,
 * Yi and Hangul syllables, ...): three bytes, the first at least 0xE3, and U+3400 or more. */
static int single_ideograph(const char *utf8) {
    const unsigned char *u = (const unsigned char *)utf8;
    if (u[0] < 0xE3 || u[0] > 0xEF || (u[1] & 0xC0) != 0x80 || (u[2] & 0xC0) != 0x80 || u[3])
        return 0;
    unsigned cp = ((u[0] & 0x0Fu) << 12) | ((u[1] & 0x3Fu) << 6) | (u[2] & 0x3Fu);
    return cp >= 0x3400;
}

/* Whether strcoll verifies only every strcoll_stride-th pair like (a, b): see -s. */
static int sampled_pair(const char *a, const char *b) {
    return supplementary(a) || supplementary(b) || (single_ideograph(a) && single_ideograph(b));
}

/* Compare the adjacent pairs of the sorted items that -s selects as PostgreSQL does (strcoll_l,
 * then strcmp for ties); count the pairs it puts the other way round and list the first few in
 * examples ("I,J;..." corpus indices, or "-"); *checked counts the pairs compared. */
static size_t check_strcoll(const struct item *items, size_t n, locale_t loc, char *examples,
                            size_t room, size_t *checked) {
    size_t count = 0, used = 0;
    examples[0] = '\0';
    *checked = 0;
    for (size_t j = 1; j < n && strcoll_stride; j++) {
        if (strcoll_stride > 1 && items[j - 1].index % strcoll_stride &&
            sampled_pair(strings[items[j - 1].index], strings[items[j].index]))
            continue;
        ++*checked;
        int c = strcoll_l(items[j - 1].text, items[j].text, loc);
        if (c == 0)
            c = strcmp(items[j - 1].text, items[j].text);
        if (c <= 0)
            continue;
        if (count < MAX_DISAGREE_EXAMPLES && used + 32 < room)
            used += (size_t)snprintf(examples + used, room - used, "%s%u,%u", count ? ";" : "",
                                     items[j - 1].index, items[j].index);
        count++;
    }
    if (!count)
        snprintf(examples, room, "-");
    return count;
}

static void sort_locale(const char *name, const char *order_path, char *out) {
    double t0 = now();
    locale_t loc = newlocale(LC_COLLATE_MASK | LC_CTYPE_MASK, name, (locale_t)0);
    if (!loc) {
        snprintf(out, LINE_MAX_OUT, "%s\tmissing\t-\t0\t0\t-\t0\t0\t0\t0\t-\n", name);
        return;
    }
    const char *codeset = nl_langinfo_l(CODESET, loc);
    char cs[64];
    snprintf(cs, sizeof cs, "%s", codeset && *codeset ? codeset : "?");
    int utf8 = strcmp(cs, "UTF-8") == 0;
    iconv_t cd = (iconv_t)-1;
    if (!utf8) {
        cd = iconv_open(cs, "UTF-8");
        if (cd == (iconv_t)-1) {
            snprintf(out, LINE_MAX_OUT, "%s\terror:iconv-%s\t%s\t0\t0\t-\t0\t0\t0\t0\t-\n", name,
                     cs, cs);
            freelocale(loc);
            return;
        }
    }
    struct arena text = {0}, keys = {0};
    size_t *text_off = xmalloc(nstrings * sizeof *text_off);
    size_t *key_off = xmalloc(nstrings * sizeof *key_off);
    uint32_t *idx = xmalloc(nstrings * sizeof *idx);
    size_t n = 0;
    for (size_t i = 0; i < nstrings; i++) {
        const char *s = strings[i];
        size_t off;
        if (utf8) {
            off = (size_t)-1; /* use the corpus bytes directly */
        } else {
            size_t inlen = strlen(s), room = inlen * 4 + 8;
            off = arena_reserve(&text, room);
            char *inp = (char *)s, *outp = text.buf + off;
            size_t inleft = inlen, outleft = room - 1;
            iconv(cd, NULL, NULL, NULL, NULL);
            if (iconv(cd, &inp, &inleft, &outp, &outleft) == (size_t)-1 ||
                iconv(cd, NULL, NULL, &outp, &outleft) == (size_t)-1)
                continue; /* not representable in this charset */
            *outp++ = '\0';
            text.len = (size_t)(outp - text.buf);
        }
        text_off[n] = off;
        idx[n] = (uint32_t)i;
        n++;
    }
    for (size_t j = 0; j < n; j++) {
        const char *s = text_off[j] == (size_t)-1 ? strings[idx[j]] : text.buf + text_off[j];
        size_t guess = strlen(s) * 24 + 32;
        size_t off = arena_reserve(&keys, guess);
        size_t need = strxfrm_l(keys.buf + off, s, guess, loc);
        if (need >= guess) {
            off = arena_reserve(&keys, need + 1);
            strxfrm_l(keys.buf + off, s, need + 1, loc);
        }
        key_off[j] = off;
        keys.len = off + need + 1;
    }
    struct item *items = xmalloc(n * sizeof *items);
    for (size_t j = 0; j < n; j++) {
        items[j].key = keys.buf + key_off[j];
        size_t klen = strlen(items[j].key);
        items[j].head[0] = key_head(items[j].key, klen, 0);
        items[j].head[1] = key_head(items[j].key, klen, 8);
        items[j].text = text_off[j] == (size_t)-1 ? strings[idx[j]] : text.buf + text_off[j];
        items[j].index = idx[j];
    }
    qsort(items, n, sizeof *items, cmp_item);
    uint64_t h1 = 1469598103934665603ULL, h2 = 7809847782465536322ULL;
    size_t ties = 0;
    for (size_t j = 0; j < n; j++) {
        uint32_t v = items[j].index;
        for (int b = 0; b < 4; b++) {
            unsigned char byte = (unsigned char)(v >> (8 * b));
            h1 = (h1 ^ byte) * 1099511628211ULL;
            h2 = (h2 ^ (byte ^ 0x5a)) * 0x100000001b3ULL + 0x9e3779b97f4a7c15ULL;
        }
        if (j && strcmp(items[j].key, items[j - 1].key) == 0)
            ties++;
    }
    if (order_path) {
        FILE *f = fopen(order_path, "wb");
        if (!f) {
            snprintf(out, LINE_MAX_OUT, "%s\terror:open-order\t%s\t0\t0\t-\t0\t0\t0\t0\t-\n",
                     name, cs);
            goto done;
        }
        for (size_t j = 0; j < n; j++) {
            uint32_t v = items[j].index;
            unsigned char b[4] = {v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >> 24) & 255};
            fwrite(b, 1, 4, f);
        }
        if (fclose(f) != 0) {
            snprintf(out, LINE_MAX_OUT, "%s\terror:write-order\t%s\t0\t0\t-\t0\t0\t0\t0\t-\n",
                     name, cs);
            goto done;
        }
    }
    double sorted_at = now();
    char examples[LINE_MAX_OUT / 2];
    size_t checked;
    size_t disagree = check_strcoll(items, n, loc, examples, sizeof examples, &checked);
    double t1 = now();
    snprintf(out, LINE_MAX_OUT,
             "%s\tok\t%s\t%zu\t%zu\t%016llx%016llx\t%.4f\t%zu\t%zu\t%.4f\t%s\n", name, cs, n,
             ties, (unsigned long long)h1, (unsigned long long)h2, sorted_at - t0, checked,
             disagree, t1 - sorted_at, examples);
done:
    free(items);
    free(idx);
    free(key_off);
    free(text_off);
    free(keys.buf);
    free(text.buf);
    if (cd != (iconv_t)-1)
        iconv_close(cd);
    freelocale(loc);
}

int main(int argc, char **argv) {
    int jobs = 1;
    const char **order_locale = xmalloc((size_t)argc * sizeof(char *));
    const char **order_path = xmalloc((size_t)argc * sizeof(char *));
    int norders = 0, opt;
    while ((opt = getopt(argc, argv, "j:s:O:")) != -1) {
        if (opt == 'j') {
            jobs = atoi(optarg);
            if (jobs < 1 || jobs > 64)
                jobs = 1;
        } else if (opt == 's') {
            strcoll_stride = strtoul(optarg, NULL, 10);
        } else if (opt == 'O') {
            char *colon = strrchr(optarg, ':');
            if (!colon) {
                fprintf(stderr, "dgsort: -O needs LOCALE:PATH\n");
                return 2;
            }
            *colon = '\0';
            order_locale[norders] = optarg;
            order_path[norders++] = colon + 1;
        } else {
            fputs(USAGE, stderr);
            return 2;
        }
    }
    if (argc - optind < 1) {
        fputs(USAGE, stderr);
        return 2;
    }
    read_corpus(argv[optind]);
    int nloc = argc - optind - 1;
    char **names = argv + optind + 1;
    if (nloc == 0)
        return 0;
    char *results = mmap(NULL, (size_t)nloc * LINE_MAX_OUT, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (results == MAP_FAILED) {
        fprintf(stderr, "dgsort: mmap: %s\n", strerror(errno));
        return 3;
    }
    memset(results, 0, (size_t)nloc * LINE_MAX_OUT);
    if (jobs > nloc)
        jobs = nloc;
    pid_t *pids = xmalloc((size_t)jobs * sizeof *pids);
    for (int w = 0; w < jobs; w++) {
        pid_t pid = jobs == 1 ? 0 : fork();
        if (pid < 0) {
            fprintf(stderr, "dgsort: fork: %s\n", strerror(errno));
            return 3;
        }
        if (pid == 0) {
            for (int i = w; i < nloc; i += jobs) {
                const char *path = NULL;
                for (int k = 0; k < norders; k++)
                    if (strcmp(order_locale[k], names[i]) == 0)
                        path = order_path[k];
                sort_locale(names[i], path, results + (size_t)i * LINE_MAX_OUT);
            }
            if (jobs == 1)
                break;
            _exit(0);
        }
        pids[w] = pid;
    }
    int failed = 0;
    if (jobs > 1)
        for (int w = 0; w < jobs; w++) {
            int status;
            if (waitpid(pids[w], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
                failed = 1;
        }
    for (int i = 0; i < nloc; i++) {
        const char *line = results + (size_t)i * LINE_MAX_OUT;
        if (*line)
            fputs(line, stdout);
        else
            printf("%s\terror:worker\t-\t0\t0\t-\t0\t0\t0\t0\t-\n", names[i]);
    }
    return failed ? 4 : 0;
}
