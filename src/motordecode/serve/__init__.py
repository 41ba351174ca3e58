"""Live decoding: ``motordecode serve`` reads samples from a source, decodes each through the run's
:class:`~motordecode.decoders.base.Stream`, writes the velocity to a sink and times every sample
from its arrival to its velocity sent (``server.py``). Sources (``sources.py``): a replayed
recording; sinks (``sinks.py``): CSV or NPZ files; latency statistics: ``timing.py``."""
