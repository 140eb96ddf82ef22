"""Serving engines under load: an OpenAI-compatible server greenbench attaches to or launches
(``server``), the load that drives it and what each request saw (``load``).

Nothing here imports torch or a serving engine: the engine runs in its own process (often its own
virtual environment), and greenbench speaks to it over HTTP on the loopback address.
"""
