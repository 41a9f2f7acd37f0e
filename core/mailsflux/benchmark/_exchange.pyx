# cython: language_level=3
"""The SMTP exchange alone: the floor of delivery, in C.

``exchange`` sends one ready message ``count`` times over ``connections``
connections, the way the engine's sessions send: PIPELINING when the server
offers it (RFC 2920: the envelope and DATA in one write, and after each
message's data the next envelope in the same write), one command a reply
otherwise. It does nothing else: no rendering, signing, spool or scheduling,
no Python object a message, the GIL released. Its CPU a message is what the
exchange itself costs on this machine and with this sink (on loopback the
kernel also runs the sink's side of TCP): the part of a whole job's CPU that
no change to the engine above the socket can remove.

Every reply is read and checked (250 to MAIL, RCPT and the end of data, 354
to DATA; every line of a reply): a message counts only when the server
accepted it, and the first unexpected reply ends the run with what it said.
Every wait (connect, each write, each reply) ends after ``timeout`` seconds
without progress, and a signal lets Python run its handlers, so Ctrl-C
stops it at once.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE


cdef extern from * nogil:
    """
    #include <errno.h>
    #include <poll.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <strings.h>
    #include <time.h>
    #include <unistd.h>
    #include <arpa/inet.h>
    #include <netinet/in.h>
    #include <netinet/tcp.h>
    #include <sys/resource.h>
    #include <sys/socket.h>
    #include <sys/time.h>

    #ifdef RUSAGE_THREAD
    #define MF_RUSAGE RUSAGE_THREAD
    #else
    #define MF_RUSAGE RUSAGE_SELF
    #endif
    #ifndef MSG_NOSIGNAL
    #define MSG_NOSIGNAL 0
    #endif

    /* A reply line longer than this ends the run (RFC 5321 4.5.3.1.5 allows 512). */
    #define MF_XBUF 4096

    /* Return values: 0 or more as each function says; -1 an error, described
       in r->error; -2 a Python signal handler raised (Ctrl-C), the exception
       set. Every caller passes a negative value on as it is. */

    typedef struct {
        int fd;
        long left;          /* messages whose envelope is not yet written */
        int expect[4];      /* reply codes awaited, in order (at most 4) */
        int nexpect, got, phase;
        char in[MF_XBUF];
        int inlen;
    } mf_xconn;

    typedef struct {
        const char *env; size_t envlen;       /* MAIL FROM, RCPT TO, DATA */
        const char *body; size_t bodylen;     /* dot-stuffed data and ".\\r\\n" */
        const char *both; size_t bothlen;     /* body then env: one write */
        const char *cmd[3]; size_t cmdlen[3]; /* env's three lines, one by one */
        /* With SIZE offered (RFC 1870), what env and both become, when set:
           the engine's sessions add SIZE= to MAIL FROM then. */
        const char *sized_env; size_t sized_envlen;
        const char *sized_both; size_t sized_bothlen;
        int pipelining, sized, timeout_ms;
        long delivered;
        char error[256];
    } mf_xrun;

    static long long mf_now_ms(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
    }

    /* A signal interrupted a wait: Python's handlers run now (the GIL is
       taken for that only), not when the whole exchange is over. */
    static int mf_signals(void) {
        PyGILState_STATE g = PyGILState_Ensure();
        int rc = PyErr_CheckSignals();
        PyGILState_Release(g);
        return rc < 0 ? -2 : 0;
    }

    /* send(), not write(): a server that hung up is an error, not a SIGPIPE.
       SO_SNDTIMEO bounds each wait for room in the socket. */
    static int mf_write_all(mf_xrun *r, int fd, const char *p, size_t n) {
        int k;
        while (n) {
            ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) {
                if ((k = mf_signals()) < 0) return k;
                continue;
            }
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                snprintf(r->error, sizeof r->error, "write: the server took nothing within the timeout");
                return -1;
            }
            if (w < 0) {
                snprintf(r->error, sizeof r->error, "write: %s", strerror(errno));
                return -1;
            }
            p += w; n -= (size_t)w;
        }
        return 0;
    }

    /* Next complete reply line of c->in: its code in *code, whether it is the
       last line of its reply in *last, its text (up to 120 bytes) in text.
       Returns 1 for a line, 0 when none is complete yet, -1 for a line that
       is no reply (the caller says so). */
    static int mf_line(mf_xconn *c, int *code, int *last, char *text) {
        char *nl = memchr(c->in, '\\n', (size_t)c->inlen);
        size_t n, keep;
        if (nl == NULL) {
            if (c->inlen < MF_XBUF) return 0;
            memcpy(text, c->in, 120);
            text[120] = 0;
            return -1;
        }
        n = (size_t)(nl - c->in) + 1;
        keep = n > 120 ? 120 : n;
        memcpy(text, c->in, keep);
        text[keep] = 0;
        while (keep && (text[keep - 1] == '\\n' || text[keep - 1] == '\\r')) text[--keep] = 0;
        if (n < 4 || c->in[0] < '2' || c->in[0] > '5' || c->in[1] < '0' || c->in[1] > '9'
            || c->in[2] < '0' || c->in[2] > '9'
            || (c->in[3] != ' ' && c->in[3] != '-' && c->in[3] != '\\r' && c->in[3] != '\\n'))
            return -1;
        *code = (c->in[0] - '0') * 100 + (c->in[1] - '0') * 10 + (c->in[2] - '0');
        *last = c->in[3] != '-';
        memmove(c->in, c->in + n, (size_t)c->inlen - n);
        c->inlen -= (int)n;
        return 1;
    }

    /* Read what c's socket holds: 0, or 1 when the server hung up (the
       caller takes the complete lines before it first). */
    static int mf_fill(mf_xconn *c, mf_xrun *r) {
        ssize_t m;
        int k;
        if (c->inlen == MF_XBUF) {
            snprintf(r->error, sizeof r->error, "a reply line longer than %d bytes", MF_XBUF);
            return -1;
        }
        for (;;) {
            m = read(c->fd, c->in + c->inlen, (size_t)(MF_XBUF - c->inlen));
            if (m < 0 && errno == EINTR) {
                if ((k = mf_signals()) < 0) return k;
                continue;
            }
            break;
        }
        if (m < 0) { snprintf(r->error, sizeof r->error, "read: %s", strerror(errno)); return -1; }
        if (m == 0) return 1;
        c->inlen += (int)m;
        return 0;
    }

    /* Wait for fds to be readable, for at most the time left to *deadline:
       what poll() returns (0: none ready, then the caller has timed out). */
    static int mf_wait(struct pollfd *ps, int n, long long deadline) {
        int k;
        for (;;) {
            long long left = deadline - mf_now_ms();
            if (left <= 0) return 0;
            k = poll(ps, (nfds_t)n, left > 60000 ? 60000 : (int)left);
            if (k < 0 && errno == EINTR) {
                if ((k = mf_signals()) < 0) return k;
                continue;
            }
            if (k == 0) continue;  /* the deadline decides */
            return k < 0 ? -1 : k;
        }
    }

    /* What Python's str.strip() takes away (the ASCII part of it). */
    static int mf_space(char ch) {
        return ch == ' ' || (ch >= '\\t' && ch <= '\\r') || (ch >= 0x1c && ch <= 0x1f);
    }

    /* Whether an EHLO reply line's text ("250-NAME params") names keyword
       kw, read as aiosmtplib reads it for the engine's sessions: the text
       after the code stripped, the keyword up to the first space. */
    static int mf_names(const char *text, const char *kw) {
        size_t n = strlen(kw), len = strlen(text);
        const char *s, *e, *sp;
        if (len < 4) return 0;
        s = text + 4; e = text + len;
        while (s < e && mf_space(*s)) s++;
        while (e > s && mf_space(e[-1])) e--;
        sp = memchr(s, ' ', (size_t)(e - s));
        if (sp != NULL) e = sp;
        return (size_t)(e - s) == n && strncasecmp(s, kw, n) == 0;
    }

    /* One whole reply, blocking (the greeting and EHLO); *pipe and *size set
       when an EHLO line after the first (the server's name) names PIPELINING
       and SIZE. Every line must carry the code ``want``. */
    static int mf_reply(mf_xconn *c, mf_xrun *r, int want, int *pipe, int *size, const char *what) {
        int code = 0, last = 0, k, line = 0;
        char text[128];
        struct pollfd p;
        long long deadline = mf_now_ms() + r->timeout_ms;
        for (;;) {
            k = mf_line(c, &code, &last, text);
            if (k < 0) { snprintf(r->error, sizeof r->error, "%s: not an SMTP reply: %.120s", what, text); return -1; }
            if (k == 0) {
                p.fd = c->fd; p.events = POLLIN; p.revents = 0;
                k = mf_wait(&p, 1, deadline);
                if (k == -2) return k;
                if (k < 0) { snprintf(r->error, sizeof r->error, "%s: poll: %s", what, strerror(errno)); return -1; }
                if (k == 0) { snprintf(r->error, sizeof r->error, "%s: no reply within the timeout", what); return -1; }
                k = mf_fill(c, r);
                if (k == 1) snprintf(r->error, sizeof r->error, "%s: the server closed the connection", what);
                if (k) return k < 0 ? k : -1;
                deadline = mf_now_ms() + r->timeout_ms;
                continue;
            }
            if (code != want) { snprintf(r->error, sizeof r->error, "%s: %.120s", what, text); return -1; }
            if (line++ > 0) {
                if (pipe != NULL && mf_names(text, "PIPELINING")) *pipe = 1;
                if (size != NULL && mf_names(text, "SIZE")) *size = 1;
            }
            if (last) return 0;
        }
    }

    /* Write what comes next on c, and set the replies it awaits. With
       PIPELINING: the first envelope; then each message's data with the next
       envelope (one write); the last message's data alone. Without: MAIL,
       RCPT, DATA and the data, each its own write awaiting its own reply
       (c->phase says which). */
    static int mf_next(mf_xconn *c, mf_xrun *r, int first) {
        static const int env3[3] = {250, 250, 354};
        const char *p; size_t n;
        c->nexpect = 0; c->got = 0;
        if (!r->pipelining) {
            if (c->phase == 3) { p = r->body; n = r->bodylen; }
            else { p = r->cmd[c->phase]; n = r->cmdlen[c->phase]; }
            c->expect[c->nexpect++] = c->phase == 2 ? 354 : 250;
        } else {
            if (first) {
                p = r->env; n = r->envlen;
            } else if (c->left > 0) {
                p = r->both; n = r->bothlen;
                c->expect[c->nexpect++] = 250;
            } else {
                p = r->body; n = r->bodylen;
                c->expect[c->nexpect++] = 250;
            }
            if (first || c->left > 0) {
                memcpy(c->expect + c->nexpect, env3, sizeof env3);
                c->nexpect += 3;
                c->left--;
            }
        }
        return mf_write_all(r, c->fd, p, n);
    }

    /* All c awaited has come: 1 when c is done, else what mf_next returns. */
    static int mf_advance(mf_xconn *c, mf_xrun *r) {
        if (!r->pipelining) {
            if (c->phase == 3) {
                r->delivered++;
                if (--c->left == 0) return 1;
            }
            c->phase = (c->phase + 1) & 3;
            return mf_next(c, r, 0);
        }
        if (c->nexpect == 1) return 1;  /* the last message's data was taken */
        return mf_next(c, r, 0);
    }

    /* Take the complete replies c holds, writing what each finished step
       calls for: 1 when c's messages are all taken, 0 when c awaits more. */
    static int mf_drain(mf_xconn *c, mf_xrun *r) {
        int code, last, k;
        char text[128];
        while ((k = mf_line(c, &code, &last, text)) > 0) {
            if (c->got >= c->nexpect) {
                snprintf(r->error, sizeof r->error, "a reply nothing asked for: %.120s", text);
                return -1;
            }
            if (code != c->expect[c->got]) {
                snprintf(r->error, sizeof r->error, "%s: %.120s",
                         c->expect[c->got] == 354 ? "DATA" : "MAIL, RCPT or end of data", text);
                return -1;
            }
            if (!last) continue;
            /* With PIPELINING, a 250 first of what a data write awaits: a message taken. */
            if (r->pipelining && c->got == 0 && c->nexpect != 3) r->delivered++;
            if (++c->got == c->nexpect) {
                k = mf_advance(c, r);
                if (k) return k;
            }
        }
        if (k < 0) {
            snprintf(r->error, sizeof r->error, "not an SMTP reply: %.120s", text);
            return -1;
        }
        return 0;
    }

    static int mf_connect(mf_xconn *c, mf_xrun *r, const struct sockaddr_in *sa, const char *host, int port) {
        struct timeval tv;
        int one = 1, k;
        tv.tv_sec = r->timeout_ms / 1000;
        tv.tv_usec = (r->timeout_ms % 1000) * 1000;
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c->fd < 0) {
            snprintf(r->error, sizeof r->error, "socket: %s", strerror(errno));
            return -1;
        }
        /* Bounds connect() and every write. */
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        /* As the engine's sessions (uvloop sets it on every TCP transport). */
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, (const struct sockaddr *)sa, sizeof *sa)) {
            if (errno == EINTR && (k = mf_signals()) < 0) return k;
            snprintf(r->error, sizeof r->error, "connect to %s:%d: %s", host, port,
                     errno == EINPROGRESS ? "no answer within the timeout" : strerror(errno));
            return -1;
        }
        return 0;
    }

    static int mf_exchange(mf_xrun *r, const char *host, int port, long count, int nconn,
                           double *user, double *sys, double *wall) {
        mf_xconn *cs = calloc((size_t)nconn, sizeof(mf_xconn));
        struct pollfd *ps = calloc((size_t)nconn, sizeof(struct pollfd));
        struct sockaddr_in sa;
        struct rusage u0, u1;
        struct timespec t0, t1;
        long long deadline;
        int i, k = 0, rc = -1, pipe = 1, sized = 1, active = 0;
        r->delivered = 0;
        r->error[0] = 0;
        if (cs == NULL || ps == NULL) { snprintf(r->error, sizeof r->error, "out of memory"); goto done; }
        for (i = 0; i < nconn; i++) cs[i].fd = -1;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((unsigned short)port);
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
            snprintf(r->error, sizeof r->error, "%s: not an IPv4 address", host);
            goto done;
        }
        for (i = 0; i < nconn; i++) {
            int has = 0, size = 0;
            cs[i].left = count / nconn + (i < count % nconn);
            if ((rc = mf_connect(&cs[i], r, &sa, host, port)) < 0) goto done;
            if ((rc = mf_reply(&cs[i], r, 220, NULL, NULL, "greeting")) < 0) goto done;
            if ((rc = mf_write_all(r, cs[i].fd, "EHLO mailsflux-bench.example\\r\\n", 30)) < 0) goto done;
            if ((rc = mf_reply(&cs[i], r, 250, &has, &size, "EHLO")) < 0) goto done;
            pipe = pipe && has;
            sized = sized && size;
        }
        rc = -1;
        r->pipelining = pipe;
        r->sized = sized && r->sized_env != NULL;
        if (r->sized) {
            r->env = r->sized_env; r->envlen = r->sized_envlen;
            r->both = r->sized_both; r->bothlen = r->sized_bothlen;
        }
        {
            const char *e = r->env, *q;
            for (i = 0; i < 3; i++) {
                q = memchr(e, '\\n', r->envlen - (size_t)(e - r->env));
                r->cmd[i] = e; r->cmdlen[i] = (size_t)(q - e) + 1; e = q + 1;
            }
        }
        getrusage(MF_RUSAGE, &u0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (i = 0; i < nconn; i++) {
            ps[i].fd = cs[i].fd;
            ps[i].events = POLLIN;
            /* What came with the EHLO reply counts too. */
            if ((k = mf_next(&cs[i], r, 1)) < 0 || (k = mf_drain(&cs[i], r)) < 0) { rc = k; goto done; }
            if (k == 1) ps[i].fd = -1;
            else active++;
        }
        deadline = mf_now_ms() + r->timeout_ms;
        while (active) {
            k = mf_wait(ps, nconn, deadline);
            if (k == -2) { rc = k; goto done; }
            if (k < 0) { snprintf(r->error, sizeof r->error, "poll: %s", strerror(errno)); goto done; }
            if (k == 0) { snprintf(r->error, sizeof r->error, "no reply within the timeout"); goto done; }
            deadline = mf_now_ms() + r->timeout_ms;
            for (i = 0; i < nconn; i++) {
                int eof;
                if (ps[i].fd < 0 || ps[i].revents == 0) continue;
                if ((eof = mf_fill(&cs[i], r)) < 0 || (k = mf_drain(&cs[i], r)) < 0) {
                    rc = eof < 0 ? eof : k;
                    goto done;
                }
                if (k == 1) {  /* this connection's messages are all taken */
                    ps[i].fd = -1;
                    active--;
                } else if (eof) {
                    snprintf(r->error, sizeof r->error, "the server closed the connection");
                    goto done;
                }
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        getrusage(MF_RUSAGE, &u1);
        *user = (double)(u1.ru_utime.tv_sec - u0.ru_utime.tv_sec) + (double)(u1.ru_utime.tv_usec - u0.ru_utime.tv_usec) / 1e6;
        *sys = (double)(u1.ru_stime.tv_sec - u0.ru_stime.tv_sec) + (double)(u1.ru_stime.tv_usec - u0.ru_stime.tv_usec) / 1e6;
        *wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        rc = 0;
    done:
        for (i = 0; cs != NULL && i < nconn; i++) {
            if (cs[i].fd >= 0) {
                if (rc == 0) send(cs[i].fd, "QUIT\\r\\n", 6, MSG_NOSIGNAL);
                close(cs[i].fd);
            }
        }
        free(cs);
        free(ps);
        return rc;
    }
    """
    ctypedef struct mf_xrun:
        const char *env
        size_t envlen
        const char *body
        size_t bodylen
        const char *both
        size_t bothlen
        const char *sized_env
        size_t sized_envlen
        const char *sized_both
        size_t sized_bothlen
        int pipelining
        int sized
        int timeout_ms
        long delivered
        char error[256]
    int mf_exchange(mf_xrun *r, const char *host, int port, long count, int nconn,
                    double *user, double *sys, double *wall) except -2


def exchange(
    str host not None,
    int port,
    bytes envelope not None,
    bytes data not None,
    long count,
    int connections = 8,
    double timeout = 30.0,
    bytes sized_envelope = None,
):
    """Send ``data`` (dot-stuffed, ending ``.\\r\\n``) ``count`` times with
    ``envelope`` (``MAIL FROM``, ``RCPT TO`` and ``DATA`` lines, CRLF each)
    over ``connections`` connections (no more than ``count``).

    Returns ``(delivered, user_s, system_s, wall_s, pipelining, error,
    sized)``: the CPU of the exchanges alone (this thread's, from the first
    envelope to the last reply: connecting and EHLO are left out, as the
    engine's sessions are long-lived), ``error`` empty or the first thing
    that went wrong (then the times are 0), and whether ``sized_envelope``
    went instead of ``envelope``: it does when one is given and every
    connection's EHLO offers SIZE (RFC 1870), as the engine's sessions add
    ``SIZE=`` to ``MAIL FROM`` then. ``timeout``: seconds any wait may last
    without progress.
    """
    if count < 1 or connections < 1:
        raise ValueError("count and connections must be at least 1")
    if not 0 < timeout <= 86400:
        raise ValueError("timeout must be more than 0 and at most 86400 seconds")
    for name, env in (("envelope", envelope), ("sized_envelope", sized_envelope)):
        if env is not None and (env.count(b"\r\n") != 3 or not env.endswith(b"\r\n")):
            raise ValueError(f"{name}: three CRLF-ended lines (MAIL FROM, RCPT TO, DATA)")
    if not data.endswith(b"\r\n.\r\n") and data != b".\r\n":
        raise ValueError("data must be dot-stuffed and end with CRLF . CRLF")
    cdef bytes both = data + envelope
    cdef bytes sized_both = None if sized_envelope is None else data + sized_envelope
    cdef bytes h = host.encode("ascii")
    cdef mf_xrun r
    cdef double user = 0, system = 0, wall = 0
    cdef int rc
    cdef const char *ch = PyBytes_AS_STRING(h)
    cdef int nconn = connections if connections < count else <int>count
    r.env = PyBytes_AS_STRING(envelope)
    r.envlen = <size_t>PyBytes_GET_SIZE(envelope)
    r.body = PyBytes_AS_STRING(data)
    r.bodylen = <size_t>PyBytes_GET_SIZE(data)
    r.both = PyBytes_AS_STRING(both)
    r.bothlen = <size_t>PyBytes_GET_SIZE(both)
    r.timeout_ms = max(1, <int>(timeout * 1000))
    r.sized_env = NULL
    r.sized_envlen = 0
    r.sized_both = NULL
    r.sized_bothlen = 0
    if sized_envelope is not None:
        r.sized_env = PyBytes_AS_STRING(sized_envelope)
        r.sized_envlen = <size_t>PyBytes_GET_SIZE(sized_envelope)
        r.sized_both = PyBytes_AS_STRING(sized_both)
        r.sized_bothlen = <size_t>PyBytes_GET_SIZE(sized_both)
    r.pipelining = 0
    r.sized = 0
    with nogil:
        rc = mf_exchange(&r, ch, port, count, nconn, &user, &system, &wall)
    err = r.error.decode("utf-8", "replace") if rc else ""
    return r.delivered, user, system, wall, bool(r.pipelining), err, bool(r.sized)
