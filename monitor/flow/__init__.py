"""Flow: one connection and one request through the stages, without the proxy.

``engine`` classifies, identifies and decides (``plan_connection``, ``decide_request``);
``recording`` counts the ruling in ``metrics`` and queues its incident; ``blockpage`` renders
what a blocked person sees. The mitmproxy addons and the sensor are thin adapters over this.
Imports the district snapshot and every stage below it; nothing above.
"""
