"""Live decoding: ``motordecode serve`` reads samples from a source, checks each and decodes it
through the run's :class:`~motordecode.decoders.base.Stream`, writes the velocity to a sink and
times every sample from its arrival to its velocity sent (``server.py``). Sources (``sources.py``):
a replayed recording; sinks (``sinks.py``): CSV or NPZ files, never destroying one; Redis and LSL:
``redis_io.py``, ``lsl_io.py``; latency statistics: ``timing.py``; ``motordecode replay``, the
producer that publishes a recording in the layout the sources read: ``replay.py``."""
