"""The TCP transport (issue 5): machines on different hosts, and only peers of the run.

- ``handshake``: the mutual HMAC challenge-response every connection must pass.
- ``mesh``: builds one machine's authenticated connections (dial lower ids, accept higher
  ones, retry with backoff; in vm mode also agree on the start) and guards the port during
  the run (``Gatekeeper``).
- ``runtime``: ``plan_cluster`` for the launcher (listeners bound up front, per-run secret)
  and the hooks the worker calls (``connect``, ``extra_fds``).
- ``peersock``: peer sockets that log frames lost with a failed connection.
- ``vm_cmd`` / ``merge_cmd``: ``lclock vm`` (one machine per terminal or host) and
  ``lclock merge`` (per-host folders into one run folder).
"""
