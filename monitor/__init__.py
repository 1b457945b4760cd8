"""Network-side student activity monitor.

The packages follow one connection's way through the monitor; each layer imports only the ones
below it (``tests/test_layout.py`` checks this, ARCHITECTURE.md draws it):

* ``model``, ``yamlfile``: shared value types (people, decisions) and the YAML reader.
* ``platforms``: what a host *is* (catalogue, classifier, activity of a request).
* ``people``: who is behind an address (roster, devices, DHCP leases, identity).
* ``rules``: what to do (policy file, decision, teacher overrides, explanations).
* ``incidents``: what to remember (events, recorder and spool, store, retention, record of
  access).
* ``district``: one configuration directory loaded and reloaded as one snapshot.
* ``flow``: one connection and one request through the stages (plan, decide, record, metrics,
  block page), shared by the proxy's addons and the sensor.
* ``web``, ``sensor``: the counselors' review app; the passive sensor.
* ``cli``: the ``monitor`` command.
"""

__version__ = "0.1.0"
