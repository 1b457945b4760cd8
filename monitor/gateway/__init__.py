"""Gateway: what a district's network needs besides the proxy, generated from the same catalogue
and configuration, so that only catalogue traffic reaches the proxy, spread over workers.

``pac`` writes the proxy auto-config file for explicit mode (catalogue hosts → the proxy,
everything else DIRECT); ``resolver`` the dnsmasq configuration that fills the nftables sets of
catalogue addresses for transparent mode, with ``safesearch`` names rewritten district-wide;
``nftables`` the ruleset that spreads clients over the workers by address; ``workers`` runs and
supervises them. Imports ``monitor.platforms`` and ``monitor.district``; nothing above.
"""
