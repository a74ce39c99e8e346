// @pristine:module tls - BearSSL client and server over pr_conn, trust anchors, hostname checks
// @pristine:public
/*
 * tls: TLS 1.2 (BearSSL) over any pr_conn. pr_tls_client and pr_tls_server
 * wrap an inner connection (a TCP socket, a memory pipe), run the handshake
 * and hand back a new pr_conn whose read, write, shutdown and destroy speak
 * TLS. The TLS connection owns the inner one. One task at a time may use a
 * connection: records are pumped in order (pending records first, then the
 * read), so a protocol where both sides write a lot without reading must
 * interleave its reads.
 *
 * Verification: the chain is checked against trust anchors (the system
 * bundle, loaded once per process and shared; or a PEM file or PEM bytes
 * per call), the validity dates against the clock, and the host name (SNI
 * plus the certificate's names). IP-literal hosts are matched against the
 * certificate's iPAddress SANs and send no SNI. Only TLS 1.2 with ECDHE and
 * AEAD suites is offered (AES-GCM first when the CPU has AES-NI); TLS 1.3-
 * only peers fail with a "protocol version" message.
 *
 * Client certificates (mutual TLS): pr_tls_opts names a PEM chain and key
 * (RSA or EC), or a pr_tls_identity parsed once; a server requires them
 * with pr_tls_server_cfg_require_client_cert.
 *
 * Errors: handshake and record failures are PR_ETLS with pr_err_info's
 * tls_error set to BearSSL's code (or a PR_TLS_* code below) and msg
 * naming the reason. A peer's close_notify reads as PR_ECLOSED; a
 * transport EOF without it reads as PR_ETLS / PR_TLS_TRUNCATED.
 *
 * Closing: pr_conn_shutdown sends close_notify, which in TLS 1.2 ends both
 * directions: application data not yet read is discarded and later reads
 * give PR_ECLOSED. Read to the end first if the rest matters. Another task
 * may destroy a connection while one waits in its read: the reader wakes
 * with PR_ECLOSED.
 *
 * Memory: a connection holds BearSSL's engine (about 4 KiB) and its record
 * buffer, allocated apart and touched only as far as records reach: full
 * duplex (33,178 bytes, pr_tls_client's default) or half duplex (16,709,
 * pr_tls_opts.half_duplex; the HTTP client's default). The certificate
 * checker is freed after the handshake, and the stack pages the handshake
 * touched are given back.
 *
 * Built with PRISTINE_NO_TLS, the declarations stay and every call fails
 * with PR_ENOTSUP.
 */

/* pr_err_info.tls_error when the peer ended the transport without a
   close_notify: after the handshake (a truncation attack or a sloppy peer)
   or during it. Not a BearSSL code (those stay below 1000). */
#define PR_TLS_TRUNCATED 1000
/* pr_err_info.tls_error when the server asked for a client certificate,
   none is configured, and the server then ended the handshake. */
#define PR_TLS_NO_CLIENT_CERT 1001
/* pr_err_info.tls_error when the server ended the handshake (a fatal
   alert such as bad_certificate or unknown_ca, a close or a reset) after
   asking for the client certificate we have: it does not accept that
   certificate (its CA, its key, or none of the signatures the key can
   make). msg names the alert. */
#define PR_TLS_CLIENT_CERT_REFUSED 1002

/* Trust anchors parsed once from PEM and shared read-only by any number of
   client connections, on any thread; they must outlive those connections.
   Parsing a large bundle costs tens of ms: do it once, not per connect. */
typedef struct pr_tls_anchors pr_tls_anchors;

/* A client certificate chain and its private key, parsed once from PEM and
   shared read-only by any number of client connections, on any thread;
   it must outlive them. */
typedef struct pr_tls_identity pr_tls_identity;

/* Options of pr_tls_client. NULL or all-zero means defaults. */
typedef struct pr_tls_opts {
    const char *ca_file;   /* PEM file of trust anchors, read by this call; NULL = ca_pem or,
                              without it, the system bundle (SSL_CERT_FILE, else
                              /etc/ssl/certs/ca-certificates.crt), loaded once per process */
    const char *ca_pem;    /* PEM trust anchors in memory, copied by this call; NULL = none;
                              takes precedence over ca_file */
    size_t ca_pem_len;     /* bytes at ca_pem; 0 = strlen(ca_pem) */
    int insecure_skip_verify_DANGEROUS; /* 0 = verify; 1 = accept ANY certificate for ANY
                                           name (tests only: no authentication at all) */
    const char *alpn;      /* comma-separated protocols to offer, copied; NULL = "http/1.1";
                              "" = no ALPN. At most 8 names, 255 bytes */
    const pr_tls_anchors *anchors; /* parsed once by pr_tls_anchors_create, borrowed; takes
                                      precedence over ca_pem and ca_file */
    const char *cert_file; /* client certificate: PEM file of the chain, leaf first, read by this
                              call; NULL = cert_pem or, without it, no client certificate */
    const char *cert_pem;  /* the chain as PEM in memory, copied; takes precedence over cert_file */
    size_t cert_pem_len;   /* bytes at cert_pem; 0 = strlen(cert_pem) */
    const char *key_file;  /* the certificate's private key (RSA or EC, PKCS#8 or raw PEM), read
                              by this call; required with a certificate, refused without one */
    const char *key_pem;   /* the key as PEM in memory, copied (and wiped); takes precedence over
                              key_file */
    size_t key_pem_len;    /* bytes at key_pem; 0 = strlen(key_pem) */
    const pr_tls_identity *identity; /* parsed once by pr_tls_identity_create, borrowed; takes
                                        precedence over the cert_* and key_* fields */
    int half_duplex;       /* record buffer: 0 = auto: full duplex from pr_tls_client, half duplex
                              for pr_http_client's connections; -1 = full duplex: 33,178 bytes, one
                              part per direction, so a read can go on while a write is stuck (for
                              protocols where both sides send at once); 1 = half duplex: one
                              16,709-byte buffer for both directions, half the memory and the same
                              record sizes, but a write waits while a received record is unread
                              (PR_ESTATE when that record holds data: read it first) and a read
                              waits until our records are out. Enough for request-then-response
                              protocols such as HTTP/1.1 (the request is sent whole before the
                              response is read; an early answer after which the peer closes is
                              still read). Only the touched part counts in resident memory */
} pr_tls_opts;

/* A server certificate chain and private key, shared read-only by the
   server connections made with it; it must outlive them. */
typedef struct pr_tls_server_cfg pr_tls_server_cfg;

/* Start TLS as a client over inner and run the handshake.
   Params: out - receives the TLS connection (pr_conn_destroy frees it and
           inner); inner - a connected stream, owned by this call from now on
           (destroyed on failure too); host - the server's name for SNI and
           verification: a DNS name (one trailing dot is ignored) or an IP
           literal ("127.0.0.1", "::1", "[::1]"); opts - NULL for defaults;
           err - receives the detail of a failure (zeroed on success); NULL
           = not wanted; deadline - absolute ms for the handshake.
   Returns: PR_OK; PR_ETLS (handshake failed: err's tls_error holds
            BearSSL's code or PR_TLS_TRUNCATED, msg the reason: expired,
            unknown CA, bad hostname, protocol version, ...; tls_error
            PR_TLS_NO_CLIENT_CERT: the server requires a client certificate
            and none is configured; PR_TLS_CLIENT_CERT_REFUSED: the server
            refused the one we sent, msg naming its alert; retrying cures
            neither); PR_EIO (transport: err's sys_errno), PR_ECLOSED;
            PR_EINVAL (NULL out/inner/host, empty or over-long host, bad
            alpn, no certificate in ca_file/ca_pem, a client certificate
            without a usable key or the reverse); PR_ENOMEM; PR_ETIMEDOUT;
            PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_tls_server, pr_tls_alpn, pr_tls_global_cleanup. */
PRISTINE_API int pr_tls_client(pr_conn **out, pr_conn *inner, const char *host, const pr_tls_opts *opts,
                               pr_err_info *err, int64_t deadline);

/* Parse trust anchors once, for pr_tls_opts.anchors.
   Params: out - receives the anchors; ca_file - a PEM file, or NULL to use
           ca_pem; ca_pem, ca_pem_len - PEM in memory (ca_pem_len 0 =
           strlen), copied; err - NULL or receives the detail on failure.
   Returns: PR_OK; PR_EINVAL (NULL out, neither source, no certificate
            found); PR_EIO (file unreadable); PR_ENOMEM; PR_ENOTSUP (built
            with PRISTINE_NO_TLS).
   Blocks: no (reads the file; no network).
   Thread: any.
   See: pr_tls_anchors_destroy, pr_tls_client. */
PRISTINE_API int pr_tls_anchors_create(pr_tls_anchors **out, const char *ca_file, const char *ca_pem,
                                       size_t ca_pem_len, pr_err_info *err);

/* Free anchors from pr_tls_anchors_create. NULL is a no-op.
   Params: a - the anchors; no connection may still use them.
   Returns: nothing.
   Blocks: no.
   Thread: any.
   See: pr_tls_anchors_create. */
PRISTINE_API void pr_tls_anchors_destroy(pr_tls_anchors *a);

/* Parse a client certificate chain and its private key once, for
   pr_tls_opts.identity. Each comes from a file or from memory (the memory
   wins); the key must belong to the leaf certificate.
   Params: out - receives the identity; cert_file - PEM file of the chain,
           leaf first, or NULL to use cert_pem; cert_pem, cert_pem_len -
           the chain in memory (cert_pem_len 0 = strlen), copied; key_file,
           key_pem, key_pem_len - the RSA or EC private key (PKCS#8 or raw)
           the same way, copied; err - NULL or receives the detail on
           failure.
   Returns: PR_OK; PR_EINVAL (NULL out, no chain or no key given, no
            certificate found, no usable RSA or EC key found, a key that is
            not the leaf certificate's); PR_EIO (a file unreadable: err's
            sys_errno); PR_ENOMEM; PR_ENOTSUP (built with PRISTINE_NO_TLS).
   Blocks: no (reads the files; no network).
   Thread: any.
   See: pr_tls_identity_destroy, pr_tls_client. */
PRISTINE_API int pr_tls_identity_create(pr_tls_identity **out, const char *cert_file, const char *cert_pem,
                                        size_t cert_pem_len, const char *key_file, const char *key_pem,
                                        size_t key_pem_len, pr_err_info *err);

/* Free an identity from pr_tls_identity_create, wiping its key. NULL is a
   no-op.
   Params: id - the identity; no connection may still use it.
   Returns: nothing.
   Blocks: no.
   Thread: any.
   See: pr_tls_identity_create. */
PRISTINE_API void pr_tls_identity_destroy(pr_tls_identity *id);

/* Parse a server certificate chain and private key from PEM.
   Params: out - receives the configuration; cert_pem, cert_len - the chain,
           leaf first (cert_len 0 = strlen); key_pem, key_len - the RSA or EC
           private key, PKCS#8 or raw (key_len 0 = strlen). Both are copied;
           err - receives the detail of a failure; NULL = not wanted.
   Returns: PR_OK; PR_EINVAL (NULL argument, no certificate, no usable key,
            a key that is not the leaf certificate's); PR_ENOMEM;
            PR_ENOTSUP (built with PRISTINE_NO_TLS).
   Blocks: no.
   Thread: any.
   See: pr_tls_server, pr_tls_server_cfg_destroy. */
PRISTINE_API int pr_tls_server_cfg_create(pr_tls_server_cfg **out, const char *cert_pem, size_t cert_len,
                                          const char *key_pem, size_t key_len, pr_err_info *err);

/* Set the ALPN protocols the server accepts, in its order of preference.
   The default is "http/1.1". A client offering none of them still
   connects, with no protocol selected.
   Params: cfg - the configuration; alpn - comma-separated names, copied;
           "" or NULL = no ALPN.
   Returns: PR_OK; PR_EINVAL (cfg NULL, more than 8 names or 255 bytes);
            PR_ENOTSUP (built with PRISTINE_NO_TLS).
   Blocks: no.
   Thread: any, before the configuration is used.
   See: pr_tls_server_cfg_create. */
PRISTINE_API int pr_tls_server_cfg_set_alpn(pr_tls_server_cfg *cfg, const char *alpn);

/* Require every client to present a certificate that chains to one of the
   given CAs (mutual TLS). The server asks for it in the handshake, names
   these CAs, and checks the chain and its dates (not its names): a client
   with no certificate or an untrusted one fails pr_tls_server with
   PR_ETLS.
   Params: cfg - the configuration; ca_pem, ca_len - PEM trust anchors
           (ca_len 0 = strlen), copied; err - NULL or receives the detail
           on failure.
   Returns: PR_OK; PR_EINVAL (cfg or ca_pem NULL, no certificate found);
            PR_ENOMEM; PR_ENOTSUP (built with PRISTINE_NO_TLS).
   Blocks: no.
   Thread: any, before the configuration is used.
   See: pr_tls_server_cfg_create, pr_tls_opts. */
PRISTINE_API int pr_tls_server_cfg_require_client_cert(pr_tls_server_cfg *cfg, const char *ca_pem, size_t ca_len,
                                                       pr_err_info *err);

/* Free a server configuration. NULL is a no-op.
   Params: cfg - the configuration; no connection may still use it.
   Returns: nothing.
   Blocks: no.
   Thread: any.
   See: pr_tls_server_cfg_create. */
PRISTINE_API void pr_tls_server_cfg_destroy(pr_tls_server_cfg *cfg);

/* Start TLS as a server over inner and run the handshake.
   Params: out - receives the TLS connection; inner - a connected stream,
           owned by this call from now on (destroyed on failure too); cfg -
           chain and key, borrowed for the connection's life; err - receives
           the detail of a failure (zeroed on success); NULL = not wanted;
           deadline - absolute ms for the handshake.
   Returns: PR_OK; PR_ETLS (handshake failed, including the client closing
            during it; with pr_tls_server_cfg_require_client_cert, a client
            without a certificate, tls_error BR_ERR_NO_CLIENT_AUTH, or with
            an untrusted one, an X.509 code); PR_EIO, PR_ECLOSED (transport); PR_EINVAL (NULL
            argument); PR_ENOMEM; PR_ENOTSUP (no TLS in this build);
            PR_ETIMEDOUT; PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_tls_server_cfg_create, pr_tls_client. */
PRISTINE_API int pr_tls_server(pr_conn **out, pr_conn *inner, const pr_tls_server_cfg *cfg, pr_err_info *err,
                               int64_t deadline);

/* The ALPN protocol negotiated on a TLS connection.
   Params: c - a connection from pr_tls_client or pr_tls_server.
   Returns: the protocol name (valid while c lives); NULL when none was
            negotiated or c is not a TLS connection.
   Blocks: no.
   Thread: owner.
   See: pr_tls_opts. */
PRISTINE_API const char *pr_tls_alpn(const pr_conn *c);

/* Free the process-wide cache of the system trust bundle (it is loaded
   again on next use). For leak checkers and tests.
   Params: none.
   Returns: nothing.
   Blocks: no.
   Thread: any, while no TLS client connection exists.
   See: pr_tls_client. */
PRISTINE_API void pr_tls_global_cleanup(void);

// @pristine:impl
#ifndef PRISTINE_NO_TLS

/* ---- growable byte buffer (wiped on free: it may hold key material) ---- */
typedef struct pr__tls_bytes {
    unsigned char *p;
    size_t len, cap;
    int oom;
} pr__tls_bytes;

static void pr__tls_bytes_put(void *ctx, const void *src, size_t n) {
    pr__tls_bytes *b = (pr__tls_bytes *)ctx;
    if (b->oom || !n) return;
    if (n > b->cap - b->len) {
        size_t cap = PR__MAX(b->cap * 2, PR__MAX(b->len + n, (size_t)256));
        unsigned char *q = (unsigned char *)pr__realloc(b->p, b->cap, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void pr__tls_bytes_free(pr__tls_bytes *b) {
    if (b->p) {
        memset(b->p, 0, b->cap);
        pr__free(b->p, b->cap);
    }
    memset(b, 0, sizeof *b);
}

static int pr__tls_read_file(const char *path, pr__tls_bytes *out, pr_err_info *err) {
    unsigned char chunk[4096];
    size_t k;
    FILE *f = fopen(path, "rb");
    if (!f) return pr__err_set(err, PR_EIO, errno, "cannot open %s: %s", path, strerror(errno));
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) pr__tls_bytes_put(out, chunk, k);
    if (ferror(f)) {
        int e = errno;
        fclose(f);
        return pr__err_set(err, PR_EIO, e, "cannot read %s: %s", path, strerror(e));
    }
    fclose(f);
    if (out->oom) return pr__err_set(err, PR_ENOMEM, 0, "out of memory reading %s", path);
    return PR_OK;
}

/* ---- PEM: call fn for every object (name, DER bytes) ---- */
typedef int (*pr__tls_pem_fn)(void *ctx, const char *name, const unsigned char *der, size_t len);

static int pr__tls_pem_each(const char *pem, size_t len, pr__tls_pem_fn fn, void *ctx) {
    br_pem_decoder_context pc;
    pr__tls_bytes der;
    char name[128];
    const char *seg[2];
    size_t seglen[2];
    int s, in = 0, rc = PR_OK;
    memset(&der, 0, sizeof der);
    seg[0] = pem;
    seglen[0] = len;
    seg[1] = "\n"; /* the decoder needs a line end after the last END line */
    seglen[1] = 1;
    br_pem_decoder_init(&pc);
    for (s = 0; s < 2 && rc == PR_OK; s++) {
        const char *p = seg[s];
        size_t n = seglen[s];
        while (n > 0 && rc == PR_OK) {
            size_t k = br_pem_decoder_push(&pc, p, n);
            int ev = br_pem_decoder_event(&pc);
            p += k;
            n -= k;
            if (ev == BR_PEM_BEGIN_OBJ) {
                snprintf(name, sizeof name, "%s", br_pem_decoder_name(&pc));
                der.len = 0;
                in = 1;
                br_pem_decoder_setdest(&pc, pr__tls_bytes_put, &der);
            } else if (ev == BR_PEM_END_OBJ) {
                if (in) rc = der.oom ? PR_ENOMEM : fn(ctx, name, der.p, der.len);
                in = 0;
            } else if (ev == BR_PEM_ERROR) {
                in = 0; /* skip the broken object */
            } else if (k == 0) {
                break;
            }
        }
    }
    pr__tls_bytes_free(&der);
    return rc;
}

static int pr__tls_is_cert(const char *name) {
    return strcmp(name, "CERTIFICATE") == 0 || strcmp(name, "X509 CERTIFICATE") == 0;
}

/* ---- trust anchors ---- */
typedef struct pr__tls_tas {
    br_x509_trust_anchor *v;
    size_t n, cap;
} pr__tls_tas;

static size_t pr__tls_ta_bytes(const br_x509_trust_anchor *ta) {
    return ta->dn.len + (ta->pkey.key_type == BR_KEYTYPE_RSA ? ta->pkey.key.rsa.nlen + ta->pkey.key.rsa.elen
                                                             : ta->pkey.key.ec.qlen);
}

static void pr__tls_tas_free(pr__tls_tas *t) {
    size_t i;
    for (i = 0; i < t->n; i++) pr__free(t->v[i].dn.data, pr__tls_ta_bytes(&t->v[i]));
    if (t->v) pr__free(t->v, t->cap * sizeof *t->v);
    memset(t, 0, sizeof *t);
}

/* One certificate (DER) -> one anchor; undecodable certificates are skipped. */
static int pr__tls_ta_add(void *ctx, const char *name, const unsigned char *der, size_t len) {
    pr__tls_tas *t = (pr__tls_tas *)ctx;
    br_x509_decoder_context xd;
    pr__tls_bytes dn;
    br_x509_trust_anchor *ta;
    const br_x509_pkey *pk;
    unsigned char *mem;
    size_t keyn;
    int rc = PR_OK;
    if (!pr__tls_is_cert(name)) return PR_OK;
    memset(&dn, 0, sizeof dn);
    br_x509_decoder_init(&xd, pr__tls_bytes_put, &dn);
    br_x509_decoder_push(&xd, der, len);
    pk = br_x509_decoder_get_pkey(&xd);
    if (dn.oom) {
        rc = PR_ENOMEM;
        goto out;
    }
    if (!pk || (pk->key_type != BR_KEYTYPE_RSA && pk->key_type != BR_KEYTYPE_EC)) goto out;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        br_x509_trust_anchor *v =
            (br_x509_trust_anchor *)pr__realloc(t->v, t->cap * sizeof *t->v, cap * sizeof *t->v);
        if (!v) {
            rc = PR_ENOMEM;
            goto out;
        }
        t->v = v;
        t->cap = cap;
    }
    keyn = pk->key_type == BR_KEYTYPE_RSA ? pk->key.rsa.nlen + pk->key.rsa.elen : pk->key.ec.qlen;
    if (!(mem = (unsigned char *)pr__alloc(dn.len + keyn))) {
        rc = PR_ENOMEM;
        goto out;
    }
    ta = &t->v[t->n++];
    memset(ta, 0, sizeof *ta);
    if (dn.len) memcpy(mem, dn.p, dn.len);
    ta->dn.data = mem;
    ta->dn.len = dn.len;
    ta->flags = br_x509_decoder_isCA(&xd) ? BR_X509_TA_CA : 0;
    ta->pkey.key_type = pk->key_type;
    if (pk->key_type == BR_KEYTYPE_RSA) {
        ta->pkey.key.rsa.n = mem + dn.len;
        ta->pkey.key.rsa.nlen = pk->key.rsa.nlen;
        memcpy(ta->pkey.key.rsa.n, pk->key.rsa.n, pk->key.rsa.nlen);
        ta->pkey.key.rsa.e = mem + dn.len + pk->key.rsa.nlen;
        ta->pkey.key.rsa.elen = pk->key.rsa.elen;
        memcpy(ta->pkey.key.rsa.e, pk->key.rsa.e, pk->key.rsa.elen);
    } else {
        ta->pkey.key.ec.curve = pk->key.ec.curve;
        ta->pkey.key.ec.q = mem + dn.len;
        ta->pkey.key.ec.qlen = pk->key.ec.qlen;
        memcpy(ta->pkey.key.ec.q, pk->key.ec.q, pk->key.ec.qlen);
    }
out:
    pr__tls_bytes_free(&dn);
    return rc;
}

static int pr__tls_tas_load_pem(pr__tls_tas *t, const char *pem, size_t len, const char *what, pr_err_info *err) {
    int rc = pr__tls_pem_each(pem, len, pr__tls_ta_add, t);
    if (rc == PR_ENOMEM) return pr__err_set(err, rc, 0, "out of memory loading trust anchors");
    if (rc != PR_OK) return pr__err_set(err, rc, 0, "cannot load trust anchors from %s", what);
    return PR_OK;
}

static int pr__tls_tas_load_file(pr__tls_tas *t, const char *path, pr_err_info *err) {
    pr__tls_bytes b;
    int rc;
    memset(&b, 0, sizeof b);
    rc = pr__tls_read_file(path, &b, err);
    if (rc == PR_OK) rc = pr__tls_tas_load_pem(t, (const char *)b.p, b.len, path, err);
    pr__tls_bytes_free(&b);
    return rc;
}

/* Anchors from ca_pem (first) or ca_file; an empty set is an error. */
static int pr__tls_tas_load(pr__tls_tas *t, const char *ca_file, const char *ca_pem, size_t ca_pem_len,
                            pr_err_info *err) {
    int rc;
    if (ca_pem) rc = pr__tls_tas_load_pem(t, ca_pem, ca_pem_len ? ca_pem_len : strlen(ca_pem), "ca_pem", err);
    else rc = pr__tls_tas_load_file(t, ca_file, err);
    if (rc == PR_OK && t->n == 0)
        rc = pr__err_set(err, PR_EINVAL, 0, "no certificate found in %s", ca_pem ? "ca_pem" : ca_file);
    if (rc != PR_OK) pr__tls_tas_free(t);
    return rc;
}

struct pr_tls_anchors {
    pr__tls_tas tas;
};

int pr_tls_anchors_create(pr_tls_anchors **out, const char *ca_file, const char *ca_pem, size_t ca_pem_len,
                          pr_err_info *err) {
    pr_err_info scratch;
    pr_tls_anchors *a;
    int rc;
    if (!err) err = &scratch;
    memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || (!ca_file && !ca_pem))
        return pr__err_set(err, PR_EINVAL, 0, "pr_tls_anchors_create: out and ca_file or ca_pem are required");
    if (!(a = (pr_tls_anchors *)pr__calloc(1, sizeof *a)))
        return pr__err_set(err, PR_ENOMEM, 0, "out of memory loading trust anchors");
    if ((rc = pr__tls_tas_load(&a->tas, ca_file, ca_pem, ca_pem_len, err)) != PR_OK) {
        pr__free(a, sizeof *a);
        return rc;
    }
    *out = a;
    return PR_OK;
}

void pr_tls_anchors_destroy(pr_tls_anchors *a) {
    if (!a) return;
    pr__tls_tas_free(&a->tas);
    pr__free(a, sizeof *a);
}

/* ---- identities: a certificate chain and its private key ---- */
struct pr_tls_identity {
    br_x509_certificate *chain; /* DER copies, leaf first */
    size_t nchain, capchain;
    br_skey_decoder_context key; /* the key points into it */
    int key_type;                /* BR_KEYTYPE_RSA or _EC once a key was found */
    unsigned issuer_key_type;    /* the key type of the leaf's issuer (EC keys need it) */
};

static int pr__tls_chain_add(void *ctx, const char *name, const unsigned char *der, size_t len) {
    pr_tls_identity *id = (pr_tls_identity *)ctx;
    unsigned char *copy;
    if (!pr__tls_is_cert(name) || len == 0) return PR_OK;
    if (id->nchain == id->capchain) {
        size_t cap = id->capchain ? id->capchain * 2 : 4;
        br_x509_certificate *v =
            (br_x509_certificate *)pr__realloc(id->chain, id->capchain * sizeof *v, cap * sizeof *v);
        if (!v) return PR_ENOMEM;
        id->chain = v;
        id->capchain = cap;
    }
    if (!(copy = (unsigned char *)pr__alloc(len))) return PR_ENOMEM;
    memcpy(copy, der, len);
    id->chain[id->nchain].data = copy;
    id->chain[id->nchain].data_len = len;
    id->nchain++;
    return PR_OK;
}

static int pr__tls_key_add(void *ctx, const char *name, const unsigned char *der, size_t len) {
    pr_tls_identity *id = (pr_tls_identity *)ctx;
    if (id->key_type || !strstr(name, "PRIVATE KEY")) return PR_OK;
    br_skey_decoder_init(&id->key);
    br_skey_decoder_push(&id->key, der, len);
    if (br_skey_decoder_last_error(&id->key) == 0) id->key_type = br_skey_decoder_key_type(&id->key);
    return PR_OK;
}

/* Free the chain and wipe the key. */
static void pr__tls_id_free(pr_tls_identity *id) {
    size_t i;
    for (i = 0; i < id->nchain; i++) pr__free(id->chain[i].data, id->chain[i].data_len);
    if (id->chain) pr__free(id->chain, id->capchain * sizeof *id->chain);
    memset(id, 0, sizeof *id);
}

/* Big-endian integers a and b equal, leading zeros aside. */
static int pr__tls_same_int(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen) {
    while (alen > 0 && *a == 0) a++, alen--;
    while (blen > 0 && *b == 0) b++, blen--;
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* Whether the private key belongs to the leaf's public key pk. */
static int pr__tls_key_matches(const pr_tls_identity *id, const br_x509_pkey *pk) {
    unsigned char buf[1024]; /* an RSA modulus up to 8192 bits, or an EC point */
    int ok = 0;
    if (id->key_type == BR_KEYTYPE_RSA && pk->key_type == BR_KEYTYPE_RSA) {
        const br_rsa_private_key *sk = br_skey_decoder_get_rsa(&id->key);
        br_rsa_compute_modulus mod = br_rsa_compute_modulus_get_default();
        size_t n = mod(NULL, sk);
        ok = n > 0 && n <= sizeof buf && mod(buf, sk) == n &&
             pr__tls_same_int(buf, n, pk->key.rsa.n, pk->key.rsa.nlen);
    } else if (id->key_type == BR_KEYTYPE_EC && pk->key_type == BR_KEYTYPE_EC) {
        const br_ec_private_key *sk = br_skey_decoder_get_ec(&id->key);
        br_ec_public_key pub;
        size_t n = sk->curve == pk->key.ec.curve ? br_ec_compute_pub(br_ec_get_default(), &pub, buf, sk) : 0;
        ok = n > 0 && n == pk->key.ec.qlen && memcmp(buf, pk->key.ec.q, n) == 0;
    }
    memset(buf, 0, sizeof buf);
    return ok;
}

/* Parse a chain (cert, named cert_what in messages) and its key into id.
   On failure id is freed and err says why, prefixed with who. */
static int pr__tls_id_parse(pr_tls_identity *id, const char *cert, size_t cert_len, const char *cert_what,
                            const char *key, size_t key_len, const char *key_what, const char *who,
                            pr_err_info *err) {
    br_x509_decoder_context xd;
    const br_x509_pkey *pk;
    int rc = pr__tls_pem_each(cert, cert_len, pr__tls_chain_add, id);
    if (rc == PR_OK) rc = pr__tls_pem_each(key, key_len, pr__tls_key_add, id);
    if (rc != PR_OK) {
        pr__tls_id_free(id);
        return pr__err_set(err, rc, 0, "%s: %s", who, pr_strerror(rc));
    }
    if (id->nchain == 0) {
        rc = pr__err_set(err, PR_EINVAL, 0, "%s: no certificate in %s", who, cert_what);
    } else if (id->key_type != BR_KEYTYPE_RSA && id->key_type != BR_KEYTYPE_EC) {
        rc = pr__err_set(err, PR_EINVAL, 0, "%s: no RSA or EC private key in %s", who, key_what);
    } else {
        br_x509_decoder_init(&xd, NULL, NULL);
        br_x509_decoder_push(&xd, id->chain[0].data, id->chain[0].data_len);
        pk = br_x509_decoder_get_pkey(&xd);
        if (br_x509_decoder_last_error(&xd) != 0 || !pk)
            rc = pr__err_set(err, PR_EINVAL, 0, "%s: the leaf certificate in %s cannot be decoded", who, cert_what);
        else if (!pr__tls_key_matches(id, pk))
            rc = pr__err_set(err, PR_EINVAL, 0, "%s: the key in %s does not belong to the leaf certificate in %s",
                             who, key_what, cert_what);
        else
            id->issuer_key_type = (unsigned)br_x509_decoder_get_signer_key_type(&xd);
    }
    if (rc != PR_OK) pr__tls_id_free(id);
    return rc;
}

/* A new identity from files or memory (memory wins), for
   pr_tls_identity_create and pr_tls_client. */
static int pr__tls_id_new(pr_tls_identity **out, const char *cert_file, const char *cert_pem, size_t cert_pem_len,
                          const char *key_file, const char *key_pem, size_t key_pem_len, pr_err_info *err) {
    static const char who[] = "TLS client certificate";
    pr__tls_bytes cb, kb;
    pr_tls_identity *id = NULL;
    int rc = PR_OK;
    *out = NULL;
    if (!cert_file && !cert_pem)
        return pr__err_set(err, PR_EINVAL, 0, "%s: a key without a certificate (cert_file or cert_pem)", who);
    if (!key_file && !key_pem)
        return pr__err_set(err, PR_EINVAL, 0, "%s: a certificate without its key (key_file or key_pem)", who);
    memset(&cb, 0, sizeof cb);
    memset(&kb, 0, sizeof kb);
    if (!cert_pem) rc = pr__tls_read_file(cert_file, &cb, err);
    if (rc == PR_OK && !key_pem) rc = pr__tls_read_file(key_file, &kb, err);
    if (rc == PR_OK && !(id = (pr_tls_identity *)pr__calloc(1, sizeof *id)))
        rc = pr__err_set(err, PR_ENOMEM, 0, "%s: out of memory", who);
    if (rc == PR_OK)
        rc = pr__tls_id_parse(id, cert_pem ? cert_pem : (const char *)cb.p,
                              cert_pem ? (cert_pem_len ? cert_pem_len : strlen(cert_pem)) : cb.len,
                              cert_pem ? "cert_pem" : cert_file, key_pem ? key_pem : (const char *)kb.p,
                              key_pem ? (key_pem_len ? key_pem_len : strlen(key_pem)) : kb.len,
                              key_pem ? "key_pem" : key_file, who, err);
    pr__tls_bytes_free(&cb);
    pr__tls_bytes_free(&kb); /* wiped */
    if (rc != PR_OK) {
        if (id) pr__free(id, sizeof *id);
        return rc;
    }
    *out = id;
    return PR_OK;
}

int pr_tls_identity_create(pr_tls_identity **out, const char *cert_file, const char *cert_pem, size_t cert_pem_len,
                           const char *key_file, const char *key_pem, size_t key_pem_len, pr_err_info *err) {
    pr_err_info scratch;
    if (!err) err = &scratch;
    memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out) return pr__err_set(err, PR_EINVAL, 0, "pr_tls_identity_create: out is NULL");
    return pr__tls_id_new(out, cert_file, cert_pem, cert_pem_len, key_file, key_pem, key_pem_len, err);
}

void pr_tls_identity_destroy(pr_tls_identity *id) {
    if (!id) return;
    pr__tls_id_free(id);
    pr__free(id, sizeof *id);
}

/* The system bundle: loaded on first use, shared read-only afterwards. */
static pthread_mutex_t pr__tls_sys_mu = PTHREAD_MUTEX_INITIALIZER;
static pr__tls_tas pr__tls_sys;
static int pr__tls_sys_loaded;

static int pr__tls_system_anchors(const pr__tls_tas **out, pr_err_info *err) {
    int rc = PR_OK;
    pthread_mutex_lock(&pr__tls_sys_mu);
    if (!pr__tls_sys_loaded) {
        const char *path = getenv("SSL_CERT_FILE"), *from = " (SSL_CERT_FILE)";
        if (!path || !*path) {
            path = "/etc/ssl/certs/ca-certificates.crt";
            from = " (the system bundle)";
        }
        rc = pr__tls_tas_load(&pr__tls_sys, path, NULL, 0, err); /* an empty bundle is an error here too */
        if (rc == PR_OK) {
            pr__tls_sys_loaded = 1;
        } else if (err) {
            size_t n = strlen(err->msg);
            snprintf(err->msg + n, sizeof err->msg - n, "%s", from);
        }
    }
    pthread_mutex_unlock(&pr__tls_sys_mu);
    *out = &pr__tls_sys;
    return rc;
}

void pr_tls_global_cleanup(void) {
    pthread_mutex_lock(&pr__tls_sys_mu);
    pr__tls_tas_free(&pr__tls_sys);
    pr__tls_sys_loaded = 0;
    pthread_mutex_unlock(&pr__tls_sys_mu);
}

/* ---- iPAddress SAN check (BearSSL matches DNS names only) ---- */
static int pr__tls_der(const unsigned char **p, const unsigned char *e, int *tag, const unsigned char **v,
                       size_t *vlen) {
    const unsigned char *q = *p;
    size_t len;
    if (e - q < 2) return -1;
    *tag = *q++;
    len = *q++;
    if (len & 0x80) {
        int k = (int)(len & 0x7f);
        if (k == 0 || k > 4 || e - q < k) return -1;
        for (len = 0; k > 0; k--) len = (len << 8) | *q++;
    }
    if ((size_t)(e - q) < len) return -1;
    *v = q;
    *vlen = len;
    *p = q + len;
    return 0;
}

/* Read the element at *p (moving *p past it), which must have tag want, and
   give its contents as [*in, *in_end). -1 when malformed or another tag. */
static int pr__tls_der_in(const unsigned char **p, const unsigned char *e, int want, const unsigned char **in,
                          const unsigned char **in_end) {
    const unsigned char *v;
    size_t vlen;
    int tag;
    if (pr__tls_der(p, e, &tag, &v, &vlen) || tag != want) return -1;
    *in = v;
    *in_end = v + vlen;
    return 0;
}

/* Whether the certificate (DER) lists ip (4 or 16 bytes) as an iPAddress SAN. */
static int pr__tls_ip_in_sans(const unsigned char *der, size_t n, const unsigned char *ip, size_t iplen) {
    static const unsigned char san_oid[] = { 0x55, 0x1d, 0x11 };
    const unsigned char *p = der, *e = der + n, *v, *q, *qe;
    size_t vlen;
    int tag;
    if (pr__tls_der_in(&p, e, 0x30, &p, &e) || pr__tls_der_in(&p, e, 0x30, &p, &e))
        return 0;                                                           /* Certificate, TBSCertificate */
    while (p < e) {
        if (pr__tls_der(&p, e, &tag, &v, &vlen)) return 0;
        if (tag != 0xa3) continue;                                          /* [3] extensions */
        if (pr__tls_der_in(&v, v + vlen, 0x30, &q, &qe)) return 0;
        while (q < qe) {
            const unsigned char *x, *xe, *ov;
            size_t olen;
            if (pr__tls_der_in(&q, qe, 0x30, &x, &xe)) return 0;            /* Extension */
            if (pr__tls_der(&x, xe, &tag, &ov, &olen) || tag != 0x06) return 0;
            if (olen != sizeof san_oid || memcmp(ov, san_oid, olen) != 0) continue;
            if (pr__tls_der(&x, xe, &tag, &v, &vlen)) return 0;
            if (tag == 0x01 && pr__tls_der(&x, xe, &tag, &v, &vlen)) return 0; /* critical */
            if (tag != 0x04) return 0;
            if (pr__tls_der_in(&v, v + vlen, 0x30, &x, &xe)) return 0;      /* GeneralNames */
            while (x < xe) {
                if (pr__tls_der(&x, xe, &tag, &v, &vlen)) return 0;
                if (tag == 0x87 && vlen == iplen && memcmp(v, ip, iplen) == 0) return 1;
            }
            return 0;
        }
        return 0;
    }
    return 0;
}

/* ---- X.509 wrapper: the minimal engine plus IP-SAN checks, or "insecure" ---- */
typedef struct pr__tls_x509 {
    const br_x509_class *vtable; /* first: BearSSL passes &vtable around */
    br_x509_minimal_context mini;
    br_x509_decoder_context dec; /* insecure mode: decodes the leaf only */
    pr__tls_bytes leaf;          /* IP hosts: the leaf's DER */
    unsigned char ip[16];
    size_t iplen; /* 4 or 16 for an IP-literal host, else 0 */
    int insecure;
    int ip_mismatch;
    uint32_t ncert;
    char host[256]; /* the name checked, for messages ("(client)" on a server) */
    pr__tls_tas own; /* client: anchors from ca_file/ca_pem */
} pr__tls_x509;

#define PR__TLS_X(ctx) ((pr__tls_x509 *)(void *)(ctx))

static void pr__tls_x_start_chain(const br_x509_class **ctx, const char *server_name) {
    pr__tls_x509 *x = PR__TLS_X(ctx);
    x->ncert = 0;
    x->ip_mismatch = 0;
    x->leaf.len = 0;
    x->leaf.oom = 0;
    if (x->insecure) br_x509_decoder_init(&x->dec, NULL, NULL);
    else x->mini.vtable->start_chain(&x->mini.vtable, server_name);
}

static void pr__tls_x_start_cert(const br_x509_class **ctx, uint32_t length) {
    pr__tls_x509 *x = PR__TLS_X(ctx);
    if (!x->insecure) x->mini.vtable->start_cert(&x->mini.vtable, length);
}

static void pr__tls_x_append(const br_x509_class **ctx, const unsigned char *buf, size_t len) {
    pr__tls_x509 *x = PR__TLS_X(ctx);
    if (x->ncert == 0) {
        if (x->insecure) br_x509_decoder_push(&x->dec, buf, len);
        else if (x->iplen) pr__tls_bytes_put(&x->leaf, buf, len);
    }
    if (!x->insecure) x->mini.vtable->append(&x->mini.vtable, buf, len);
}

static void pr__tls_x_end_cert(const br_x509_class **ctx) {
    pr__tls_x509 *x = PR__TLS_X(ctx);
    if (!x->insecure) x->mini.vtable->end_cert(&x->mini.vtable);
    x->ncert++;
}

static unsigned pr__tls_x_end_chain(const br_x509_class **ctx) {
    pr__tls_x509 *x = PR__TLS_X(ctx);
    unsigned r;
    if (x->insecure) return (unsigned)br_x509_decoder_last_error(&x->dec);
    r = x->mini.vtable->end_chain(&x->mini.vtable);
    if (r != 0 && r != BR_ERR_X509_OK) return r;
    if (x->iplen) {
        if (x->leaf.oom) return BR_ERR_X509_LIMIT_EXCEEDED;
        if (!pr__tls_ip_in_sans(x->leaf.p, x->leaf.len, x->ip, x->iplen)) {
            x->ip_mismatch = 1;
            return BR_ERR_X509_BAD_SERVER_NAME;
        }
    }
    return 0;
}

static const br_x509_pkey *pr__tls_x_get_pkey(const br_x509_class *const *ctx, unsigned *usages) {
    pr__tls_x509 *x = PR__TLS_X(ctx);
    if (x->insecure) {
        if (usages) *usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
        return br_x509_decoder_get_pkey(&x->dec);
    }
    return x->mini.vtable->get_pkey(&x->mini.vtable, usages);
}

static const br_x509_class pr__tls_x509_vtable = {
    sizeof(pr__tls_x509), pr__tls_x_start_chain, pr__tls_x_start_cert, pr__tls_x_append,
    pr__tls_x_end_cert, pr__tls_x_end_chain, pr__tls_x_get_pkey
};

/* ---- client certificates: BearSSL's single-chain handler, wrapped to
   record that the server asked for one (even when we have none) ---- */
typedef struct pr__tls_cauth {
    const br_ssl_client_certificate_class *vtable; /* first: BearSSL passes &vtable around */
    const br_ssl_client_certificate_class **inner; /* the handler of our certificate; NULL = none */
    int asked; /* the server sent a CertificateRequest */
    int sent;  /* and we answered with a certificate */
} pr__tls_cauth;

#define PR__TLS_CA(ctx) ((pr__tls_cauth *)(void *)(ctx))

static void pr__tls_ca_start_names(const br_ssl_client_certificate_class **ctx) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    a->asked = 1;
    if (a->inner) (*a->inner)->start_name_list(a->inner);
}

static void pr__tls_ca_start_name(const br_ssl_client_certificate_class **ctx, size_t len) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    if (a->inner) (*a->inner)->start_name(a->inner, len);
}

static void pr__tls_ca_append_name(const br_ssl_client_certificate_class **ctx, const unsigned char *data,
                                   size_t len) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    if (a->inner) (*a->inner)->append_name(a->inner, data, len);
}

static void pr__tls_ca_end_name(const br_ssl_client_certificate_class **ctx) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    if (a->inner) (*a->inner)->end_name(a->inner);
}

static void pr__tls_ca_end_names(const br_ssl_client_certificate_class **ctx) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    if (a->inner) (*a->inner)->end_name_list(a->inner);
}

static void pr__tls_ca_choose(const br_ssl_client_certificate_class **ctx, const br_ssl_client_context *cc,
                              uint32_t auth_types, br_ssl_client_certificate *choices) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    memset(choices, 0, sizeof *choices); /* no chain: an empty Certificate message */
    if (a->inner) (*a->inner)->choose(a->inner, cc, auth_types, choices);
    a->sent = choices->chain_len > 0;
}

static uint32_t pr__tls_ca_do_keyx(const br_ssl_client_certificate_class **ctx, unsigned char *data, size_t *len) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    return a->inner ? (*a->inner)->do_keyx(a->inner, data, len) : 0;
}

static size_t pr__tls_ca_do_sign(const br_ssl_client_certificate_class **ctx, int hash_id, size_t hv_len,
                                 unsigned char *data, size_t len) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    return a->inner ? (*a->inner)->do_sign(a->inner, hash_id, hv_len, data, len) : 0;
}

static const br_ssl_client_certificate_class pr__tls_cauth_vtable = {
    sizeof(pr__tls_cauth), pr__tls_ca_start_names, pr__tls_ca_start_name, pr__tls_ca_append_name,
    pr__tls_ca_end_name, pr__tls_ca_end_names, pr__tls_ca_choose, pr__tls_ca_do_keyx, pr__tls_ca_do_sign
};

/* ---- connections ---- */
#define PR__TLS_MAX_ALPN 8

typedef struct pr__tls_conn {
    pr_conn base; /* first: the pr_conn handed out */
    pr_conn *inner;
    int server;
    int established; /* the handshake finished */
    int closing;     /* our close_notify is queued or sent */
    int wr_dead;     /* the transport refused writes after the peer left */
    int fatal;       /* sticky transport/truncation error, 0 = none */
    int busy;        /* tasks inside read/write/shutdown */
    int no_wait;     /* the transport cannot wait on both directions */
    int writing;     /* a task is pushing records out (or waiting to) */
    pr_task *duplex; /* the task waiting on both directions, if any */
    unsigned char first[5]; /* the peer's first bytes, to name a peer that does not speak TLS */
    size_t nfirst;
    int dead;        /* destroyed while busy: the last task out frees it */
    const char **alpn_names;  /* the engine's protocol names: NULL, pr__tls_alpn_http11 or our block */
    size_t alpn_size;         /* bytes of our block (names, then their text); 0 = none */
    size_t size;              /* bytes allocated for this record: the union holds only our role */
    pr__tls_x509 *x;          /* the chain check, for the handshake only (freed after it) */
    pr__tls_cauth cauth;      /* client: our certificate, if any, and whether the server asked */
    pr_tls_identity *own_id;  /* client: parsed from cert_* / key_* for this connection */
    unsigned char *iobuf;     /* BearSSL's record buffer, allocated to the mode's size (not zeroed:
                                 only the pages records reach are ever touched) */
    size_t iobuf_len;
    size_t iobuf_used;        /* end of the part records have reached, for the wipe on free */
    union {                   /* last: a client's record ends after u.c */
        br_ssl_client_context c;
        br_ssl_server_context s;
    } u;
} pr__tls_conn;

struct pr_tls_server_cfg {
    pr_tls_identity id;
    pr__tls_tas client_cas; /* n > 0: clients must present a certificate from these */
    char alpn[256];
};

static br_ssl_engine_context *pr__tls_eng(pr__tls_conn *t) { return t->server ? &t->u.s.eng : &t->u.c.eng; }

/* Note that records reached p[0..n) of the buffer (the wipe covers it). */
static void pr__tls_mark(pr__tls_conn *t, const unsigned char *p, size_t n) {
    size_t end = (size_t)(p - t->iobuf) + n;
    if (end > t->iobuf_used) t->iobuf_used = end;
}

/* Give the engine its record buffer: half (1) or full duplex. */
static int pr__tls_set_buffer(pr__tls_conn *t, int half) {
    t->iobuf_len = half ? BR_SSL_BUFSIZE_MONO : BR_SSL_BUFSIZE_BIDI;
    if (!(t->iobuf = (unsigned char *)pr__alloc(t->iobuf_len))) return PR_ENOMEM;
    br_ssl_engine_set_buffer(pr__tls_eng(t), t->iobuf, t->iobuf_len, !half);
    return PR_OK;
}

/* Split "a,b,c" into names (copied into buf). Returns the count or -1. */
static int pr__tls_alpn_parse(const char *list, char *buf, size_t bufn, const char **names) {
    size_t len = strlen(list);
    int n = 0;
    char *p;
    if (len >= bufn) return -1;
    memcpy(buf, list, len + 1);
    for (p = buf; *p;) {
        char *c = strchr(p, ',');
        if (c) *c = 0;
        if (*p) {
            if (n == PR__TLS_MAX_ALPN) return -1;
            names[n++] = p;
        }
        if (!c) break;
        p = c + 1;
    }
    return n;
}

static const char *pr__tls_alpn_http11[1] = { "http/1.1" };

/* Give the engine the protocol names of list (already checked by
   pr__tls_alpn_parse): the default list costs no memory, others one block. */
static int pr__tls_alpn_set(pr__tls_conn *t, const char *list) {
    const char *names[PR__TLS_MAX_ALPN];
    char buf[256];
    size_t len = strlen(list) + 1;
    int n = pr__tls_alpn_parse(list, buf, sizeof buf, names), i;
    if (n <= 0) return n < 0 ? PR_EINVAL : PR_OK;
    if (n == 1 && strcmp(names[0], "http/1.1") == 0) {
        t->alpn_names = pr__tls_alpn_http11;
    } else {
        char *text;
        t->alpn_size = (size_t)n * sizeof(char *) + len;
        if (!(t->alpn_names = (const char **)pr__alloc(t->alpn_size))) {
            t->alpn_size = 0;
            return PR_ENOMEM;
        }
        text = (char *)(t->alpn_names + n);
        memcpy(text, buf, len);
        for (i = 0; i < n; i++) t->alpn_names[i] = text + (names[i] - buf);
    }
    br_ssl_engine_set_protocol_names(pr__tls_eng(t), t->alpn_names, (size_t)n);
    return PR_OK;
}

static void pr__tls_setup_engine(br_ssl_engine_context *eng) {
    static const uint16_t aes_first[] = {
        BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    };
    static const uint16_t chacha_first[] = {
        BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    };
    int aesni = br_aes_x86ni_ctr_get_vtable() != NULL && br_ghash_pclmul_get() != 0;
    br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
    br_ssl_engine_set_suites(eng, aesni ? aes_first : chacha_first, sizeof aes_first / sizeof aes_first[0]);
    br_ssl_engine_add_flags(eng, BR_OPT_NO_RENEGOTIATION);
}

/* Mix OS randomness into the engine's seed (0.6 trusts RDRAND alone on x86). */
static void pr__tls_entropy(br_ssl_engine_context *eng) {
    unsigned char seed[32];
    size_t got = 0;
#if defined(__linux__)
    while (got < sizeof seed) {
        ssize_t r = getrandom(seed + got, sizeof seed - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
#endif
    if (got < sizeof seed) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            while (got < sizeof seed) {
                ssize_t r = read(fd, seed + got, sizeof seed - got);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) break;
                got += (size_t)r;
            }
            close(fd);
        }
    }
    if (got) br_ssl_engine_inject_entropy(eng, seed, got);
    memset(seed, 0, sizeof seed);
}

static const char *pr__tls_reason(int e) {
    switch (e) {
    case BR_ERR_BAD_PARAM: return "bad parameter (host name too long?)";
    case BR_ERR_UNSUPPORTED_VERSION:
    case BR_ERR_BAD_VERSION: return "unsupported protocol version (only TLS 1.2 is supported)";
    case BR_ERR_TOO_LARGE: return "record too large";
    case BR_ERR_BAD_MAC: return "bad record MAC (corrupted or forged data)";
    case BR_ERR_NO_RANDOM: return "no random source";
    case BR_ERR_BAD_CIPHER_SUITE: return "no common cipher suite";
    case BR_ERR_BAD_SNI: return "bad SNI from the client";
    case BR_ERR_BAD_SIGNATURE: return "bad signature in the key exchange";
    case BR_ERR_WRONG_KEY_USAGE: return "certificate key not usable with the chosen cipher suite";
    case BR_ERR_NO_CLIENT_AUTH: return "client certificate required";
    case BR_ERR_BAD_FINISHED: return "handshake Finished check failed";
    case BR_ERR_X509_EMPTY_CHAIN: return "peer sent no certificate";
    case BR_ERR_X509_BAD_SIGNATURE: return "certificate signature is invalid";
    case BR_ERR_X509_TIME_UNKNOWN: return "current time unknown for the certificate check";
    case BR_ERR_X509_EXPIRED: return "certificate expired or not yet valid";
    case BR_ERR_X509_DN_MISMATCH: return "certificate chain is broken (issuer does not match)";
    case BR_ERR_X509_BAD_SERVER_NAME: return "certificate does not match the host name (bad hostname)";
    case BR_ERR_X509_CRITICAL_EXTENSION: return "certificate has an unsupported critical extension";
    case BR_ERR_X509_NOT_CA: return "an issuing certificate is not a CA";
    case BR_ERR_X509_FORBIDDEN_KEY_USAGE: return "certificate key usage forbids this use";
    case BR_ERR_X509_WEAK_PUBLIC_KEY: return "certificate key is too weak";
    case BR_ERR_X509_NOT_TRUSTED: return "certificate signed by an unknown CA (not trusted)";
    case BR_ERR_X509_UNSUPPORTED: return "certificate uses an unsupported algorithm";
    case BR_ERR_X509_LIMIT_EXCEEDED: return "certificate chain too large";
    case BR_ERR_X509_WRONG_KEY_TYPE: return "certificate key type does not match its use";
    default: break;
    }
    if (e >= 33 && e < 64) return "malformed certificate";
    return "protocol error (malformed or unexpected message)";
}

static const char *pr__tls_alert(int a) {
    switch (a) {
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 22: return "record_overflow";
    case 40: return "handshake_failure: no common cipher suite or client certificate required";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 49: return "access_denied";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 70: return "protocol_version: protocol version not supported by the peer (TLS 1.3 only?)";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 90: return "user_canceled";
    case 100: return "no_renegotiation";
    case 110: return "unsupported_extension";
    case 112: return "unrecognized_name: the server does not know this host name";
    case 120: return "no_application_protocol: no common ALPN protocol";
    default: return "unknown alert";
    }
}

/* The handshake failed because the peer does not speak TLS (a wrong port
   or scheme): its first byte is no TLS record type (20-23). */
#define PR__TLS_NOT_TLS "TLS handshake failed: the peer does not speak TLS"
static int pr__tls_peer_not_tls(const pr__tls_conn *t) {
    return !t->established && t->nfirst > 0 && (t->first[0] < 20 || t->first[0] > 23);
}

/* Name what such a peer sent: plain HTTP, other text, or bytes. */
static void pr__tls_not_tls_err(pr__tls_conn *t) {
    size_t i;
    int text = 1;
    char shown[sizeof t->first + 1];
    for (i = 0; i < t->nfirst; i++) {
        unsigned char ch = t->first[i];
        if (ch < 0x20 || ch > 0x7e) text = 0;
        shown[i] = (char)ch;
    }
    shown[t->nfirst] = 0;
    if (t->nfirst == sizeof t->first && memcmp(t->first, "HTTP/", 5) == 0)
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s (it answered in plain HTTP)", PR__TLS_NOT_TLS);
    else if (text)
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s (it answered with text: \"%s...\")", PR__TLS_NOT_TLS, shown);
    else
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s (its first byte 0x%02x is no TLS record)", PR__TLS_NOT_TLS,
                    t->first[0]);
}

/* Record BearSSL error e as PR_ETLS with a readable message. */
static int pr__tls_fail(pr__tls_conn *t, int e) {
    const char *stage = t->established ? "TLS" : "TLS handshake";
    if (pr__tls_peer_not_tls(t)) {
        pr__tls_not_tls_err(t);
    } else if (e == BR_ERR_X509_LIMIT_EXCEEDED && t->x && t->x->leaf.oom) { /* no memory to keep the leaf for its IP SANs */
        pr__err_set(&t->base.err, PR_ENOMEM, 0, "%s failed: out of memory checking the certificate", stage);
        t->base.err.tls_error = e;
        return PR_ENOMEM;
    } else if (e >= BR_ERR_SEND_FATAL_ALERT) {
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s failed: we sent alert %d (%s)", stage, e - BR_ERR_SEND_FATAL_ALERT,
                    pr__tls_alert(e - BR_ERR_SEND_FATAL_ALERT));
    } else if (e >= BR_ERR_RECV_FATAL_ALERT) {
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s failed: peer sent alert %d (%s)", stage,
                    e - BR_ERR_RECV_FATAL_ALERT, pr__tls_alert(e - BR_ERR_RECV_FATAL_ALERT));
    } else if (e == BR_ERR_X509_BAD_SERVER_NAME && t->x && t->x->ip_mismatch) {
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s failed: certificate has no IP address SAN for %s (bad hostname)",
                    stage, t->x ? t->x->host : "");
    } else if (e == BR_ERR_X509_BAD_SERVER_NAME) {
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s failed: certificate does not match host %s (bad hostname)", stage,
                    t->x ? t->x->host : "");
    } else {
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s failed: %s (BearSSL error %d)", stage, pr__tls_reason(e), e);
    }
    t->base.err.tls_error = e;
    return PR_ETLS;
}

/* An error from the inner connection. Timeouts and cancellation leave the
   engine usable; anything else is sticky. */
static int pr__tls_transport(pr__tls_conn *t, int rc) {
    if (rc == PR_ETIMEDOUT || rc == PR_ECANCELED) { /* name the phase, as the http messages do */
        pr__err_set(&t->base.err, rc, 0, "TLS: %s %s%s", rc == PR_ETIMEDOUT ? "timed out" : "canceled",
                    t->established ? "on the connection" : "in the handshake",
                    rc == PR_ETIMEDOUT ? " (deadline)" : "");
        return rc;
    }
    t->base.err = t->inner->err;
    if (t->base.err.code != rc) pr__err_set(&t->base.err, rc, 0, "TLS transport: %s", pr_strerror(rc));
    t->fatal = rc;
    return rc;
}

/* The transport ended (EOF from the inner read). */
static int pr__tls_eof(pr__tls_conn *t) {
    if (t->closing) {
        pr__err_set(&t->base.err, PR_ECLOSED, 0, "TLS connection closed");
        return t->fatal = PR_ECLOSED;
    }
    if (pr__tls_peer_not_tls(t))
        pr__tls_not_tls_err(t);
    else if (!t->established)
        pr__err_set(&t->base.err, PR_ETLS, 0, "TLS handshake failed: peer closed the connection");
    else
        pr__err_set(&t->base.err, PR_ETLS, 0, "peer closed without close_notify (truncated)");
    t->base.err.tls_error = PR_TLS_TRUNCATED;
    return t->fatal = PR_ETLS;
}

/* Hand k > 0 bytes just read into the engine's record buffer p to it,
   keeping the first ones to name a peer that does not speak TLS. */
static void pr__tls_got(pr__tls_conn *t, const unsigned char *p, size_t k) {
    pr__tls_mark(t, p, k);
    if (t->nfirst < sizeof t->first) {
        size_t m = PR__MIN(k, sizeof t->first - t->nfirst);
        memcpy(t->first + t->nfirst, p, m);
        t->nfirst += m;
    }
    br_ssl_engine_recvrec_ack(pr__tls_eng(t), k);
}

/* Drive the engine until a state in want is reached (want 0: until no
   record is left to send). Pending records go out first. When a write is
   stuck and the engine could take a record, a task alone in the connection
   reads meanwhile and then waits on both directions (the full-duplex rule);
   a second task entering wakes it (pr__tls_enter) and it goes back to
   waiting on the write alone, since that task does the reading. */
static int pr__tls_pump(pr__tls_conn *t, unsigned want, int64_t deadline) {
    br_ssl_engine_context *eng = pr__tls_eng(t);
    for (;;) {
        unsigned st;
        unsigned char *p;
        size_t len;
        ptrdiff_t k;
        int ready, duplex, rc;
        if (t->dead) return PR_ECLOSED; /* destroyed by another task while we waited */
        if (t->fatal) return t->fatal;
        st = br_ssl_engine_current_state(eng);
        if (st & BR_SSL_CLOSED) {
            int e = br_ssl_engine_last_error(eng);
            if (e != 0) return pr__tls_fail(t, e);
            if (!t->established) {
                pr__err_set(&t->base.err, PR_ETLS, 0, "TLS handshake failed: peer closed the connection");
                t->base.err.tls_error = PR_TLS_TRUNCATED;
                return PR_ETLS;
            }
            return PR_ECLOSED;
        }
        if ((st & BR_SSL_SENDREC) && !t->writing) { /* writing: another task is pushing them */
            p = br_ssl_engine_sendrec_buf(eng, &len);
            pr__tls_mark(t, p, len);
            if (t->wr_dead) {
                /* A read still drains what the departed peer sent; a write must
                   not report data as sent that nobody will receive. */
                if (!(want & BR_SSL_RECVAPP))
                    return pr__err_set(&t->base.err, PR_ECLOSED, 0, "TLS write: the peer has gone");
                br_ssl_engine_sendrec_ack(eng, len);
                continue;
            }
            /* One try only when there is something else to do meanwhile: hand
               over data already decrypted, or (alone here) take in records. */
            ready = want & st & BR_SSL_RECVAPP;
            duplex = !ready && (st & BR_SSL_RECVREC) && t->busy == 1 && !t->no_wait;
            t->writing = 1;
            k = t->inner->ops->write(t->inner, p, len, ready || duplex ? 0 : deadline);
            t->writing = 0;
            if (t->dead) return PR_ECLOSED;
            if (k > 0) {
                br_ssl_engine_sendrec_ack(eng, (size_t)k);
                continue;
            }
            if (k == PR_ECLOSED && t->established) {
                t->wr_dead = 1; /* the peer left; what it sent can still be read */
                continue;
            }
            if (k != PR_ETIMEDOUT || !(ready || duplex)) return pr__tls_transport(t, k == 0 ? PR_EIO : (int)k);
            if (ready) return PR_OK; /* the record goes out on a later call */
            p = br_ssl_engine_recvrec_buf(eng, &len);
            k = t->inner->ops->read(t->inner, p, len, 0);
            if (t->dead) return PR_ECLOSED;
            if (k > 0) {
                pr__tls_got(t, p, (size_t)k);
                continue;
            }
            if (k == PR_ECLOSED) return pr__tls_eof(t);
            if (k != PR_ETIMEDOUT) return pr__tls_transport(t, k == 0 ? PR_EIO : (int)k);
            t->duplex = pr_self();
            t->writing = 1;
            rc = pr__net_conn_wait(t->inner, PR_WAIT_READ | PR_WAIT_WRITE, deadline);
            t->writing = 0;
            t->duplex = NULL;
            if (t->dead) return PR_ECLOSED;
            if (rc == PR_ENOTSUP) {
                t->no_wait = 1;
            } else if (rc == PR_EIO) { /* the poller's own failure: its errno, not the inner connection's */
                int e = errno;
                pr__err_set(&t->base.err, rc, e, "TLS transport: waiting on the socket: %s", strerror(e));
                return t->fatal = rc;
            } else if (rc != PR_OK) {
                return pr__tls_transport(t, rc);
            }
            continue;
        }
        if (want == 0 || (st & want)) return PR_OK;
        if (st & BR_SSL_RECVREC) {
            p = br_ssl_engine_recvrec_buf(eng, &len);
            k = t->inner->ops->read(t->inner, p, len, deadline);
            if (t->dead) return PR_ECLOSED;
            if (k > 0) {
                pr__tls_got(t, p, (size_t)k);
                continue;
            }
            if (k == PR_ECLOSED) return pr__tls_eof(t);
            return pr__tls_transport(t, k == 0 ? PR_EIO : (int)k);
        }
        if ((want & BR_SSL_SENDAPP) && (st & BR_SSL_RECVAPP))
            return pr__err_set(&t->base.err, PR_ESTATE, 0,
                               "TLS write in half duplex: received data is unread (read it first, or use full duplex)");
        pr__err_set(&t->base.err, PR_ESTATE, 0, "TLS engine cannot progress (state %u)", st);
        return PR_ESTATE;
    }
}

static ptrdiff_t pr__tls_read_in(pr_conn *c, void *buf, size_t n, int64_t deadline) {
    pr__tls_conn *t = (pr__tls_conn *)c;
    br_ssl_engine_context *eng = pr__tls_eng(t);
    unsigned char *p;
    size_t len;
    int rc = pr__tls_pump(t, BR_SSL_RECVAPP, deadline);
    if (rc != PR_OK) return rc;
    p = br_ssl_engine_recvapp_buf(eng, &len);
    len = PR__MIN(len, n);
    memcpy(buf, p, len);
    br_ssl_engine_recvapp_ack(eng, len);
    return (ptrdiff_t)len;
}

static ptrdiff_t pr__tls_write_in(pr_conn *c, const void *buf, size_t n, int64_t deadline) {
    pr__tls_conn *t = (pr__tls_conn *)c;
    br_ssl_engine_context *eng = pr__tls_eng(t);
    unsigned char *p;
    size_t len;
    int rc;
    if (t->closing) return pr__err_set(&t->base.err, PR_ESTATE, 0, "TLS write after shutdown");
    if ((rc = pr__tls_pump(t, BR_SSL_SENDAPP, deadline)) != PR_OK) return rc;
    p = br_ssl_engine_sendapp_buf(eng, &len);
    len = PR__MIN(len, n);
    pr__tls_mark(t, p, len);
    memcpy(p, buf, len);
    br_ssl_engine_sendapp_ack(eng, len);
    br_ssl_engine_flush(eng, 0);
    if ((rc = pr__tls_pump(t, 0, deadline)) != PR_OK) return rc;
    return (ptrdiff_t)len;
}

static void pr__tls_start_close(pr__tls_conn *t) {
    br_ssl_engine_context *eng = pr__tls_eng(t);
    unsigned char *p;
    size_t len;
    if (t->closing) return;
    while ((p = br_ssl_engine_recvapp_buf(eng, &len)) != NULL) br_ssl_engine_recvapp_ack(eng, len);
    br_ssl_engine_close(eng);
    t->closing = 1;
}

static int pr__tls_shutdown_in(pr_conn *c, int64_t deadline) {
    pr__tls_conn *t = (pr__tls_conn *)c;
    int rc;
    pr__tls_start_close(t);
    rc = pr__tls_pump(t, 0, deadline);
    if (rc == PR_ECLOSED) rc = PR_OK;
    if (rc == PR_OK) {
        rc = t->inner->ops->shutdown(t->inner, deadline);
        if (rc == PR_ECLOSED) rc = PR_OK;
    }
    return rc;
}

/* Free the chain checker and the anchors it used (own: from ca_file/ca_pem). */
static void pr__tls_x509_free(pr__tls_conn *t) {
    if (!t->x) return;
    pr__tls_tas_free(&t->x->own);
    pr__tls_bytes_free(&t->x->leaf);
    memset(t->x, 0, sizeof *t->x);
    pr__free(t->x, sizeof *t->x);
    t->x = NULL;
}

static void pr__tls_free(pr__tls_conn *t) {
    size_t n;
    if (t->iobuf) { /* wipe the pages records reached, and no other: they were never touched */
        size_t used = t->iobuf_used, page = 4096, over = (size_t)((uintptr_t)(t->iobuf + used) % page);
        if (over) used += page - over;
        memset(t->iobuf, 0, PR__MIN(used, t->iobuf_len));
        pr__free(t->iobuf, t->iobuf_len);
    }
    pr_tls_identity_destroy(t->own_id);
    pr__tls_x509_free(t);
    if (t->alpn_size) pr__free(t->alpn_names, t->alpn_size);
    n = t->size;
    memset(t, 0, n); /* session keys */
    pr__free(t, n);
}

/* Another task may destroy the connection while this one waits inside it
   (the way to abort a blocked read): destroy then closes the transport, which
   wakes us, and only marks t dead; the last task to leave frees it. */
static ptrdiff_t pr__tls_leave(pr__tls_conn *t, ptrdiff_t rc) {
    if (!t->dead) {
        t->busy--;
        return rc;
    }
    if (--t->busy == 0) pr__tls_free(t);
    return PR_ECLOSED;
}

/* A task enters the connection. One waiting on both directions is woken
   to wait on its write alone: reading is the newcomer's job now. */
static pr__tls_conn *pr__tls_enter(pr_conn *c) {
    pr__tls_conn *t = (pr__tls_conn *)c;
    t->busy++;
    if (t->duplex) {
        pr__sched_wake(t->duplex, PR_OK);
        t->duplex = NULL;
    }
    return t;
}

static ptrdiff_t pr__tls_read(pr_conn *c, void *buf, size_t n, int64_t deadline) {
    pr__tls_conn *t = pr__tls_enter(c);
    return pr__tls_leave(t, pr__tls_read_in(c, buf, n, deadline));
}

static ptrdiff_t pr__tls_write(pr_conn *c, const void *buf, size_t n, int64_t deadline) {
    pr__tls_conn *t = pr__tls_enter(c);
    return pr__tls_leave(t, pr__tls_write_in(c, buf, n, deadline));
}

static int pr__tls_shutdown(pr_conn *c, int64_t deadline) {
    pr__tls_conn *t = pr__tls_enter(c);
    return (int)pr__tls_leave(t, pr__tls_shutdown_in(c, deadline));
}

static void pr__tls_destroy(pr_conn *c) {
    pr__tls_conn *t = (pr__tls_conn *)c;
    if (t->dead) return;
    if (!t->busy && t->established && !t->closing && !t->fatal &&
        !(br_ssl_engine_current_state(pr__tls_eng(t)) & BR_SSL_CLOSED)) {
        pr__tls_start_close(t);
        (void)pr__tls_pump(t, 0, 0); /* best effort: one try, no waiting */
    }
    if (t->busy) t->dead = 1;
    pr_conn_destroy(t->inner); /* wakes a task waiting inside with PR_ECLOSED */
    t->inner = NULL;
    if (!t->busy) pr__tls_free(t);
}

static const pr_conn_ops pr__tls_ops = { pr__tls_read, pr__tls_write, pr__tls_shutdown, pr__tls_destroy };

static int pr__tls_handshake(pr__tls_conn *t, int64_t deadline) {
    int rc = pr__tls_pump(t, BR_SSL_SENDAPP | BR_SSL_RECVAPP, deadline);
    if (rc == PR_ECLOSED) {
        pr__err_set(&t->base.err, PR_ETLS, 0, "TLS handshake failed: peer closed the connection");
        t->base.err.tls_error = PR_TLS_TRUNCATED;
        rc = PR_ETLS;
    }
    if (rc == PR_OK) {
        t->established = 1;
        pr__tls_x509_free(t); /* renegotiation is off: the engine never checks a chain again */
    }
    return rc;
}

static pr__tls_conn *pr__tls_new(pr_conn *inner, int server) {
    size_t n = offsetof(pr__tls_conn, u) + (server ? sizeof(br_ssl_server_context) : sizeof(br_ssl_client_context));
    /* the checker first: the hole it leaves after the handshake fits the next one's */
    pr__tls_x509 *x = (pr__tls_x509 *)pr__calloc(1, sizeof *x);
    pr__tls_conn *t = x ? (pr__tls_conn *)pr__calloc(1, n) : NULL;
    if (!t) {
        if (x) pr__free(x, sizeof *x);
        return NULL;
    }
    t->size = n;
    t->x = x;
    t->base.ops = &pr__tls_ops;
    t->inner = inner;
    t->server = server;
    t->x->vtable = &pr__tls_x509_vtable;
    return t;
}

/* The start of pr_tls_client and pr_tls_server: clear *err and *out, check
   the arguments (ok; need names them), take inner and make the connection.
   On failure inner is destroyed and the code returned with err filled. */
static int pr__tls_begin(pr__tls_conn **tp, pr_conn **out, pr_conn *inner, int ok, int server, pr_err_info *err,
                         const char *need) {
    *tp = NULL;
    if (err) memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (ok && (*tp = pr__tls_new(inner, server)) != NULL) return PR_OK;
    pr_conn_destroy(inner);
    if (!ok) return pr__err_set(err, PR_EINVAL, 0, "%s are required", need);
    return pr__err_set(err, PR_ENOMEM, 0, "out of memory for a TLS connection");
}

static int pr__tls_warned_insecure;

/* The client handshake failed after the server asked for our certificate.
   When the server ended it (a fatal alert, a close, a reset), the
   certificate is why: we had none (PR_TLS_NO_CLIENT_CERT) or it was
   refused or unusable there (PR_TLS_CLIENT_CERT_REFUSED). Other failures
   keep their code. */
static int pr__tls_cauth_fail(pr__tls_conn *t, int rc) {
    pr_err_info *e = &t->base.err;
    int alert = rc == PR_ETLS && e->tls_error > BR_ERR_RECV_FATAL_ALERT && e->tls_error < BR_ERR_SEND_FATAL_ALERT
                    ? e->tls_error - BR_ERR_RECV_FATAL_ALERT
                    : 0;
    int gone = (rc == PR_ETLS && e->tls_error == PR_TLS_TRUNCATED) || rc == PR_ECLOSED ||
               (rc == PR_EIO && (e->sys_errno == ECONNRESET || e->sys_errno == EPIPE));
    char how[96];
    if (!alert && !gone) return rc;
    if (alert) snprintf(how, sizeof how, "it sent alert %d, %s", alert, pr__tls_alert(alert));
    else snprintf(how, sizeof how, "it closed the connection");
    if (t->cauth.sent)
        pr__err_set(e, PR_ETLS, 0, "TLS handshake failed: the server refused our client certificate (%s)", how);
    else if (t->cauth.inner) /* ours was not sent: the server accepts none of its signature algorithms */
        pr__err_set(e, PR_ETLS, 0, "TLS handshake failed: the server accepts no signature our client "
                                   "certificate's key can make (%s)", how);
    else
        pr__err_set(e, PR_ETLS, 0,
                    "TLS handshake failed: the server requires a client certificate and none is configured (%s)",
                    how);
    e->tls_error = t->cauth.inner ? PR_TLS_CLIENT_CERT_REFUSED : PR_TLS_NO_CLIENT_CERT;
    return PR_ETLS;
}

int pr_tls_client(pr_conn **out, pr_conn *inner, const char *host, const pr_tls_opts *opts, pr_err_info *err,
                  int64_t deadline) {
    pr_tls_opts o;
    pr_err_info scratch;
    pr__tls_conn *t = NULL;
    const pr__tls_tas *tas = NULL;
    const pr_tls_identity *id;
    br_ssl_engine_context *eng;
    const char *alpn;
    size_t hlen;
    int rc, nalpn;
    if (opts) o = *opts;
    else memset(&o, 0, sizeof o);
    if (!err) err = &scratch;
    if ((rc = pr__tls_begin(&t, out, inner, out && inner && host, 0, err, "pr_tls_client: out, inner and host")))
        return rc;
    /* host: "[v6]" -> "v6"; one trailing dot dropped; IP literals noted */
    hlen = strlen(host);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    if (hlen > 0 && host[hlen - 1] == '.') hlen--;
    if (hlen == 0 || hlen > 255) {
        rc = pr__err_set(err, PR_EINVAL, 0, "TLS host name is empty or longer than 255 bytes");
        goto fail;
    }
    memcpy(t->x->host, host, hlen);
    t->x->host[hlen] = 0;
    if (inet_pton(AF_INET, t->x->host, t->x->ip) == 1) t->x->iplen = 4;
    else if (inet_pton(AF_INET6, t->x->host, t->x->ip) == 1) t->x->iplen = 16;
    /* ALPN */
    alpn = o.alpn ? o.alpn : "http/1.1";
    {
        const char *names[PR__TLS_MAX_ALPN];
        char buf[256];
        nalpn = pr__tls_alpn_parse(alpn, buf, sizeof buf, names);
    }
    if (nalpn < 0) {
        rc = pr__err_set(err, PR_EINVAL, 0, "bad ALPN list (at most %d names, 255 bytes)", PR__TLS_MAX_ALPN);
        goto fail;
    }
    /* trust anchors */
    if (o.insecure_skip_verify_DANGEROUS) {
        t->x->insecure = 1;
        if (!__atomic_exchange_n(&pr__tls_warned_insecure, 1, __ATOMIC_RELAXED))
            PR__LOG(PR_LEVEL_WARN, "tls", "insecure_skip_verify_DANGEROUS: server certificates are NOT checked");
    } else if (o.anchors) {
        tas = &o.anchors->tas;
    } else if (o.ca_pem || o.ca_file) {
        if ((rc = pr__tls_tas_load(&t->x->own, o.ca_file, o.ca_pem, o.ca_pem_len, err)) != PR_OK) goto fail;
        tas = &t->x->own;
    } else if ((rc = pr__tls_system_anchors(&tas, err)) != PR_OK) {
        goto fail;
    }
    /* client certificate */
    id = o.identity;
    if (!id && (o.cert_file || o.cert_pem || o.key_file || o.key_pem)) {
        if ((rc = pr__tls_id_new(&t->own_id, o.cert_file, o.cert_pem, o.cert_pem_len, o.key_file, o.key_pem,
                                 o.key_pem_len, err)) != PR_OK)
            goto fail;
        id = t->own_id;
    }
    br_ssl_client_init_full(&t->u.c, &t->x->mini, tas ? tas->v : NULL, tas ? tas->n : 0);
    eng = &t->u.c.eng;
    pr__tls_setup_engine(eng);
    br_ssl_engine_set_x509(eng, &t->x->vtable);
    if (id && id->key_type == BR_KEYTYPE_RSA)
        br_ssl_client_set_single_rsa(&t->u.c, id->chain, id->nchain, br_skey_decoder_get_rsa(&id->key),
                                     br_rsa_pkcs1_sign_get_default());
    else if (id) /* ECDSA signatures only: every suite offered is ECDHE */
        br_ssl_client_set_single_ec(&t->u.c, id->chain, id->nchain, br_skey_decoder_get_ec(&id->key),
                                    BR_KEYTYPE_SIGN, id->issuer_key_type, br_ec_get_default(),
                                    br_ecdsa_sign_asn1_get_default());
    /* BearSSL 0.6 has no getter for the handler set_single_* installed: read it back */
    t->cauth.inner = id ? t->u.c.client_auth_vtable : NULL;
    t->cauth.vtable = &pr__tls_cauth_vtable;
    br_ssl_client_set_client_certificate(&t->u.c, &t->cauth.vtable);
    if (pr__tls_alpn_set(t, alpn) != PR_OK) {
        rc = pr__err_set(err, PR_ENOMEM, 0, "out of memory for the ALPN names");
        goto fail;
    }
    if (o.half_duplex > 1 || o.half_duplex < -1) {
        rc = pr__err_set(err, PR_EINVAL, 0, "pr_tls_opts.half_duplex is -1, 0 or 1");
        goto fail;
    }
    if (pr__tls_set_buffer(t, o.half_duplex > 0) != PR_OK) {
        rc = pr__err_set(err, PR_ENOMEM, 0, "out of memory for a TLS record buffer");
        goto fail;
    }
    pr__tls_entropy(eng);
    if (!br_ssl_client_reset(&t->u.c, t->x->iplen ? NULL : t->x->host, 0)) {
        rc = pr__tls_fail(t, br_ssl_engine_last_error(eng));
        *err = t->base.err;
        goto fail;
    }
    if ((rc = pr__tls_handshake(t, deadline)) != PR_OK) {
        if (t->cauth.asked) rc = pr__tls_cauth_fail(t, rc);
        *err = t->base.err;
        goto fail;
    }
    /* the handshake's deep frames (certificate checks, ECDHE) have returned:
       their stack pages need not stay resident for the connection's life */
    pr__coro_shed(pr_self() ? pr_self()->coro : NULL);
    *out = &t->base;
    return PR_OK;
fail:
    pr__tls_destroy(&t->base);
    return rc;
}

/* ---- server ---- */
void pr_tls_server_cfg_destroy(pr_tls_server_cfg *cfg) {
    if (!cfg) return;
    pr__tls_id_free(&cfg->id); /* wipes the private key */
    pr__tls_tas_free(&cfg->client_cas);
    pr__free(cfg, sizeof *cfg);
}

int pr_tls_server_cfg_create(pr_tls_server_cfg **out, const char *cert_pem, size_t cert_len, const char *key_pem,
                             size_t key_len, pr_err_info *err) {
    pr_tls_server_cfg *cfg;
    int rc;
    if (err) memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || !cert_pem || !key_pem)
        return pr__err_set(err, PR_EINVAL, 0, "pr_tls_server_cfg_create: out, cert_pem and key_pem are required");
    if (!(cfg = (pr_tls_server_cfg *)pr__calloc(1, sizeof *cfg)))
        return pr__err_set(err, PR_ENOMEM, 0, "out of memory for a TLS server configuration");
    snprintf(cfg->alpn, sizeof cfg->alpn, "%s", "http/1.1");
    rc = pr__tls_id_parse(&cfg->id, cert_pem, cert_len ? cert_len : strlen(cert_pem), "cert_pem", key_pem,
                          key_len ? key_len : strlen(key_pem), "key_pem", "TLS server configuration", err);
    if (rc != PR_OK) {
        pr__free(cfg, sizeof *cfg);
        return rc;
    }
    *out = cfg;
    return PR_OK;
}

int pr_tls_server_cfg_require_client_cert(pr_tls_server_cfg *cfg, const char *ca_pem, size_t ca_len,
                                          pr_err_info *err) {
    pr__tls_tas tas;
    int rc;
    if (err) memset(err, 0, sizeof *err);
    if (!cfg || !ca_pem)
        return pr__err_set(err, PR_EINVAL, 0, "pr_tls_server_cfg_require_client_cert: cfg and ca_pem are required");
    memset(&tas, 0, sizeof tas);
    if ((rc = pr__tls_tas_load(&tas, NULL, ca_pem, ca_len, err)) != PR_OK) return rc;
    pr__tls_tas_free(&cfg->client_cas);
    cfg->client_cas = tas;
    return PR_OK;
}

int pr_tls_server_cfg_set_alpn(pr_tls_server_cfg *cfg, const char *alpn) {
    char buf[256];
    const char *names[PR__TLS_MAX_ALPN];
    if (!cfg) return PR_EINVAL;
    if (!alpn) alpn = "";
    if (pr__tls_alpn_parse(alpn, buf, sizeof buf, names) < 0) return PR_EINVAL;
    snprintf(cfg->alpn, sizeof cfg->alpn, "%s", alpn);
    return PR_OK;
}

int pr_tls_server(pr_conn **out, pr_conn *inner, const pr_tls_server_cfg *cfg, pr_err_info *err,
                  int64_t deadline) {
    pr__tls_conn *t;
    br_ssl_engine_context *eng;
    int rc;
    if ((rc = pr__tls_begin(&t, out, inner, out && inner && cfg, 1, err, "pr_tls_server: out, inner and cfg")))
        return rc;
    snprintf(t->x->host, sizeof t->x->host, "%s", "(client)");
    if (cfg->id.key_type == BR_KEYTYPE_RSA)
        br_ssl_server_init_full_rsa(&t->u.s, cfg->id.chain, cfg->id.nchain, br_skey_decoder_get_rsa(&cfg->id.key));
    else
        br_ssl_server_init_full_ec(&t->u.s, cfg->id.chain, cfg->id.nchain, cfg->id.issuer_key_type,
                                   br_skey_decoder_get_ec(&cfg->id.key));
    eng = &t->u.s.eng;
    pr__tls_setup_engine(eng);
    if (cfg->client_cas.n > 0) { /* ask for a client chain and check it against these CAs */
        br_x509_minimal_init_full(&t->x->mini, cfg->client_cas.v, cfg->client_cas.n);
        br_ssl_engine_set_x509(eng, &t->x->vtable);
        br_ssl_server_set_trust_anchor_names_alt(&t->u.s, cfg->client_cas.v, cfg->client_cas.n);
        br_ssl_engine_set_default_rsavrfy(eng); /* for the client's CertificateVerify */
        br_ssl_engine_set_default_ecdsa(eng);
    }
    if (pr__tls_alpn_set(t, cfg->alpn) != PR_OK || pr__tls_set_buffer(t, 0) != PR_OK) {
        if (err) pr__err_set(err, PR_ENOMEM, 0, "out of memory for a TLS connection");
        pr__tls_destroy(&t->base);
        return PR_ENOMEM;
    }
    pr__tls_entropy(eng);
    if (!br_ssl_server_reset(&t->u.s)) rc = pr__tls_fail(t, br_ssl_engine_last_error(eng));
    else rc = pr__tls_handshake(t, deadline);
    if (rc != PR_OK) {
        PR__LOG(PR_LEVEL_DEBUG, "tls", "server handshake: %s", t->base.err.msg);
        if (err) *err = t->base.err;
        pr__tls_destroy(&t->base);
        return rc;
    }
    *out = &t->base;
    return PR_OK;
}

const char *pr_tls_alpn(const pr_conn *c) {
    pr__tls_conn *t;
    if (!c || c->ops != &pr__tls_ops) return NULL;
    t = (pr__tls_conn *)(void *)(uintptr_t)c;
    return br_ssl_engine_get_selected_protocol(pr__tls_eng(t));
}

#undef PR__TLS_X
#undef PR__TLS_CA
#undef PR__TLS_MAX_ALPN

#else /* PRISTINE_NO_TLS: the API is there, TLS is not */

int pr_tls_client(pr_conn **out, pr_conn *inner, const char *host, const pr_tls_opts *opts, pr_err_info *err,
                  int64_t deadline) {
    PR__UNUSED(host);
    PR__UNUSED(opts);
    PR__UNUSED(deadline);
    if (out) *out = NULL;
    pr_conn_destroy(inner);
    return pr__err_set(err, PR_ENOTSUP, 0, "TLS is not built in (PRISTINE_NO_TLS)");
}

int pr_tls_anchors_create(pr_tls_anchors **out, const char *ca_file, const char *ca_pem, size_t ca_pem_len,
                          pr_err_info *err) {
    PR__UNUSED(ca_file);
    PR__UNUSED(ca_pem);
    PR__UNUSED(ca_pem_len);
    if (out) *out = NULL;
    return pr__err_set(err, PR_ENOTSUP, 0, "TLS is not built in (PRISTINE_NO_TLS)");
}

void pr_tls_anchors_destroy(pr_tls_anchors *a) { PR__UNUSED(a); }

int pr_tls_identity_create(pr_tls_identity **out, const char *cert_file, const char *cert_pem, size_t cert_pem_len,
                           const char *key_file, const char *key_pem, size_t key_pem_len, pr_err_info *err) {
    PR__UNUSED(cert_file);
    PR__UNUSED(cert_pem);
    PR__UNUSED(cert_pem_len);
    PR__UNUSED(key_file);
    PR__UNUSED(key_pem);
    PR__UNUSED(key_pem_len);
    if (out) *out = NULL;
    return pr__err_set(err, PR_ENOTSUP, 0, "TLS is not built in (PRISTINE_NO_TLS)");
}

void pr_tls_identity_destroy(pr_tls_identity *id) { PR__UNUSED(id); }

int pr_tls_server_cfg_require_client_cert(pr_tls_server_cfg *cfg, const char *ca_pem, size_t ca_len,
                                          pr_err_info *err) {
    PR__UNUSED(cfg);
    PR__UNUSED(ca_pem);
    PR__UNUSED(ca_len);
    return pr__err_set(err, PR_ENOTSUP, 0, "TLS is not built in (PRISTINE_NO_TLS)");
}

int pr_tls_server_cfg_create(pr_tls_server_cfg **out, const char *cert_pem, size_t cert_len, const char *key_pem,
                             size_t key_len, pr_err_info *err) {
    PR__UNUSED(cert_pem);
    PR__UNUSED(cert_len);
    PR__UNUSED(key_pem);
    PR__UNUSED(key_len);
    if (out) *out = NULL;
    return pr__err_set(err, PR_ENOTSUP, 0, "TLS is not built in (PRISTINE_NO_TLS)");
}

int pr_tls_server_cfg_set_alpn(pr_tls_server_cfg *cfg, const char *alpn) {
    PR__UNUSED(cfg);
    PR__UNUSED(alpn);
    return PR_ENOTSUP;
}

void pr_tls_server_cfg_destroy(pr_tls_server_cfg *cfg) { PR__UNUSED(cfg); }

int pr_tls_server(pr_conn **out, pr_conn *inner, const pr_tls_server_cfg *cfg, pr_err_info *err,
                  int64_t deadline) {
    PR__UNUSED(cfg);
    PR__UNUSED(deadline);
    if (out) *out = NULL;
    pr_conn_destroy(inner);
    return pr__err_set(err, PR_ENOTSUP, 0, "TLS is not built in (PRISTINE_NO_TLS)");
}

const char *pr_tls_alpn(const pr_conn *c) {
    PR__UNUSED(c);
    return NULL;
}

void pr_tls_global_cleanup(void) {}

#endif /* PRISTINE_NO_TLS */
