"""The Starlette sidecar that X calls: CRC checks and Account Activity deliveries.

A delivery is recorded durably before the 200, then processed off the request path:

* ``app.py``: the endpoints (CRC, signed deliveries into ``webhook_inbox``, health,
  metrics);
* ``body.py``: parsing a body, and what jsonb could not store (kept as bytes, DEAD);
* ``server.py``: the uvicorn configuration (receive deadlines, connection limit);
* ``events.py``: splitting a delivery into inbox events; ``payload.py``: reading
  X's payload fields;
* ``handlers.py``: what one event does (per kind) and the outcomes recorded;
* ``dm_batch.py``: the set-based path for runs of plain inbound DMs;
* ``batch.py``: a batch of inbox rows in one transaction, and the retry loop;
* ``processor.py``: in-process processing right after a delivery;
* ``options.py``: the knobs (``IngestOptions``); ``metrics.py``: Prometheus text.

The conversation rules they apply live in :mod:`mktx_grpc.domain.conversations`.
"""
